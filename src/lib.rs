//! portwarden: detect port scans from the kernel's netfilter LOG records and block the scanning
//! source with an nftables set whose elements expire in the kernel.
//!
//! ```text
//!  sources ──Record──▶ parse ──Probe──▶ detect ──Finding──▶ decide ──intent──▶ ban book ──▶ kernel sets
//!  kmsg / journal / file        trusted?      per-source state     allowlist,           one owner,     (enforce: nft)
//!  (cursor per source)          fields        bounded memory       escalation,          one order      store (SQLite)
//!                                                                   rate cap
//! ```
//!
//! # Layout
//!
//! | module | stage | in | out |
//! | --- | --- | --- | --- |
//! | [`source`] | read records, keep a cursor each | `/dev/kmsg`, `journalctl`, files | [`record::Record`] |
//! | [`parse`] | header (trust, time) and netfilter body | `Record` | [`record::Probe`] or a counted reason |
//! | [`detect`] | per-source state, scan rules, memory bound | `Probe` | [`record::Finding`] |
//! | [`decide`] | allowlist, escalation, rate cap; writes nothing | `Finding` + a read-only store view | an intent ([`decide::BanDecision`]) |
//! | [`bans`] | **the ban book**: the only writer of bans, store and kernel in one documented order; reconcile; operator ban/unban/import; list/status views | intents, operator requests | kernel set elements + store rows |
//! | [`enforce`] | the nftables table and sets behind the `Firewall` trait | elements | `nft` transactions |
//! | [`fleet`] | bans shared through a Redis stream: signed messages, the outbox publisher, the consumer; a peer's ban goes through `decide` and the ban book | outbox rows, stream entries | `XADD`s, remote intents |
//! | [`store`] | SQLite: bans, offences, cursors, detector state (read side for everyone, ban writes only through the book) | | |
//! | `engine` | the cron pass (`run --once`) and, beside it, the daemon loop (`engine::daemon`): timers, watchdog, reload | config, a ban book, a clock | checkpoints |
//! | `fail2ban` | the alternative method's filter, jail and action | config | files |
//! | `install` | the cron file and the systemd unit | config, state dir | files |
//! | `demo` | the seed lab in throwaway namespaces | | |
//! | [`metrics`] | Prometheus families fed by the engine and the daemon; the `GET /metrics` thread; the node_exporter textfile | events | exposition text |
//! | [`config`] | TOML → validated [`config::Config`] (nft names, family, LOG prefixes are typed here, once) | file | typed values |
//! | [`config_report`] | `config check/show/print-default`: every problem with its line, every value with its origin | file | text |
//! | [`report`] | `scan`: offline tally per source, table, HTML report, progress bar | files | [`report::ScanReport`] |
//! | [`manual`] | man pages and shell completions from the clap definition | [`clap::Command`] | files |
//! | [`clock`] | the wall clock behind a trait, shared by engine, daemon, book, decide, parser, CLI | | [`jiff::Timestamp`] |
//! | [`cli`] | one file per subcommand: parse arguments, call one library function, print | argv | exit code |
//! | [`netns`] | throwaway network namespaces for the demo and the tests (no production stage imports it) | | |
//! | [`input`] | the one bounded line reader (sources, `scan`); `scan`'s files, `-`, `.gz` | bytes | lines |
//! | `sys` | host facts production code asks (is a program on `$PATH`) | | |
//!
//! Where a ban gets written, and in what order: [`bans`], and nowhere else. No stage imports a
//! later one; only the ban book imports both `store` (write side) and `enforce`.
//!
//! The stages exchange only the types in [`record`]; side effects (firewall, store, clock) sit
//! behind traits with fakes so that every stage is tested without root. Public modules are the
//! ones the binary and the integration tests use; the rest are private.

pub mod bans;
pub mod cli;
pub mod clock;
pub mod config;
pub mod config_report;
pub mod decide;
mod demo;
pub mod detect;
pub mod enforce;
mod engine;
mod fail2ban;
pub mod fleet;
pub mod input;
mod install;
pub mod manual;
pub mod mapped;
pub mod metrics;
pub mod netns;
pub mod parse;
mod prefetch;
pub mod record;
pub mod report;
pub mod source;
pub mod store;
mod sys;
#[cfg(test)]
mod test_rng;
