//! portwarden: detect port scans from the kernel's netfilter LOG records and block the scanning
//! source with an nftables set whose elements expire in the kernel.
//!
//! ```text
//!  sources ──Record──▶ parse ──Probe──▶ detect ──Finding──▶ decide ──Ban──▶ enforce (nft)
//!  kmsg / journal / file        trusted?      per-source state     allowlist,        store (SQLite)
//!  (cursor per source)          fields        bounded memory       escalation,
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
//! | [`decide`] | allowlist, escalation, rate cap | `Finding` | [`record::Ban`] |
//! | [`enforce`] | the nftables table and sets | `Ban` | kernel set elements |
//! | [`engine`] | wires the stages for `run --once` and `daemon` | config, state dir | bans, checkpoints |
//! | [`store`] | SQLite: bans, offences, cursors, detector state | everything that must survive | |
//! | [`report`] | `scan`: offline tally per source, table, HTML report, progress bar | files | [`report::ScanReport`] |
//! | [`fail2ban`] | the alternative method's filter, jail and action | config | files |
//! | [`config`] | TOML → validated [`config::Config`] | file | typed values |
//! | [`config_report`] | `config check/show/print-default`: every problem with its line, every value with its origin | file | text |
//! | [`manual`] | man pages and shell completions from the clap definition | [`clap::Command`] | files |
//! | [`clock`] | the wall clock behind a trait (a fake for tests) | | [`jiff::Timestamp`] |
//! | [`cli`] | one file per subcommand | argv | exit code |
//! | [`netns`] | throwaway network namespaces for the demo and the tests | | |
//!
//! The stages exchange only the types in [`record`]; side effects (firewall, store, clock) sit
//! behind traits with fakes so that every stage is tested without root.

pub mod cli;
pub mod clock;
pub mod config;
pub mod config_report;
pub mod decide;
pub mod detect;
pub mod enforce;
pub mod engine;
pub mod fail2ban;
pub mod input;
pub mod manual;
pub mod netns;
pub mod parse;
pub mod record;
pub mod report;
pub mod source;
pub mod store;
