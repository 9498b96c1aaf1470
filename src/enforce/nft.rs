//! [`NftFirewall`]: the [`Firewall`] trait on the real `nft` binary.
//!
//! In: [`FirewallConfig`], the [`LogPrefix`], and the calls of the trait. Out: the nftables table
//! (by default `inet portwarden`: sets `banned4`/`banned6`, a rate-limited LOG rule and drop
//! rules at priority -10), elements in its sets, and `nft`'s own error text when it refuses.
//!
//! How, and why:
//! - `nft` is run without a shell; scripts go on stdin (`nft -f -`). Only [`NftFamily`],
//!   [`NftName`] and [`LogPrefix`] values (validated once, when the config was loaded; their
//!   rules are in [`crate::config::nftables`]), integers and `IpNet`s are ever formatted into
//!   a script. stderr is always kept and becomes the error. The `nftables` crate (a typed
//!   model of nft's JSON API plus helpers that spawn `nft -j`) was considered and not used:
//!   for a dozen fixed rules a typed JSON rule tree is much longer and harder to review than
//!   the nft script `setup --dry-run` prints.
//! - Reading is over netlink ([`super::netlink`]): `check` dumps the table's sets (flags, key
//!   type), chains (hook, priority) and rules (their comments), never the elements: even
//!   `nft -t list table` loads every element first (0.4 s with 100 000), and the daemon
//!   checks every two seconds.
//! - `setup` is one transaction (`table X {}; delete table X; table X {...}; add element ...`):
//!   it either builds the whole table or leaves the old one. When the table is already what
//!   this config makes it does nothing at all, so running it twice changes nothing. Every rule
//!   carries the comment `portwarden <hash>` (a hash of the rendered definition): a missing
//!   rule, a set with other flags, or a changed config makes `check` say `Incomplete`, and
//!   `setup` then rebuilds the table and re-adds the current bans with their remaining time.
//! - Set elements are written and listed over netlink ([`super::netlink`]), never by `nft`:
//!   nft 1.0.6 loads every element of every set before each command, so one `nft add element`
//!   into a set of 100 000 took about 2 s and a `ban` (a listing, then a write) 10 to 14 s.
//!   `nft` builds the table (`setup`, `teardown`, the fast path's lists), once per operation.
//! - Addresses go into hash sets (`banned4`/`banned6`, `flags timeout`): no overlap is
//!   possible, so nothing is read first; a ban is `add` (a no-op when present), `delete`, `add`
//!   with the new timeout in one transaction, so a re-ban gets its new timeout on any kernel.
//!   Prefixes go into interval sets beside them (`banned4_nets`/`banned6_nets`, `flags
//!   interval, timeout`). The kernel refuses an interval that overlaps another and fails the
//!   whole transaction, so a prefix ban reads its (small) interval set first: a prefix inside a
//!   banned one is skipped, a new prefix absorbs (deletes) the prefixes it covers, and one
//!   already present is deleted and re-added to get its new timeout. An address and a prefix
//!   holding it are separate elements of separate sets: each lasts as long as its own ban.
//!   `unban` deletes only what is there (a one-key lookup in a hash set, the listing of an
//!   interval set). An element expiring between the look and the transaction fails `delete`
//!   with ENOENT; both then look and plan once more.
//! - A table made by an older version (one interval set per family) checks as `Incomplete`,
//!   and `setup` rebuilds it, addresses and prefixes carried over into their new sets.
//! - The LOG rule logs new and invalid packets of every protocol but ICMP and ICMPv6 (not only
//!   TCP and UDP): an IP protocol scan (`nmap -sO`) is one packet per protocol number, and the
//!   detector counts distinct protocols; ICMP is left out because the detector ignores it (echo
//!   requests are monitoring, errors are answers). Its rule hash changes: a table made by an
//!   older version checks as `Incomplete`, and `setup` rebuilds it.
//! - A borrowed table (`manage_table = false`, the seed lab's `ip filter blocked_ips`) is only
//!   checked, never rewritten; it has one set per family, written as the kernel says it is
//!   (hash or interval); if it has no `timeout` flag, elements go in without a timeout and
//!   [`Firewall::supports_timeout`] says `false`: portwarden must unban them itself.
//! - The kernel fast path ([`FastpathRules`], `docs/fastpath.md`), in a table of our own only:
//!   sets `allow4`/`allow6` (interval, auto-merge), `served`, `probes4/6`, `newport4/6` and
//!   `fastban4/6` (dynamic, each with a `size`), a jump to chain `fastpath` before the LOG rule
//!   and chain `fastban` that logs with its own prefix and drops. Hash sets, because the packet
//!   path cannot add to an interval set; so the kernel's bans live beside `banned4/6`, get
//!   their own drop rules, are lifted by `unban` too, and are not listed as the book's bans.
//!   (They stay apart from `banned4/6` because a set the packet path adds to needs a `size`
//!   and a default timeout, which would cap the book's bans.)
//!   [`Firewall::sync_fastpath`] replaces the allowlist and served ports in one transaction
//!   and remembers them, so a rebuilt table gets them in its own.
//! - For tests and the demo, [`NftFirewall::with_netns`] runs `ip netns exec NAME nft ...`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use ipnet::IpNet;
use jiff::SignedDuration;

use super::netlink::{
    DESTROY_WHAT, Elem, KEY_IPV4_ADDR, KEY_IPV6_ADDR, NfSocket, NlError, Op, SetInfo,
};
use super::{BanElement, EnforceError, Firewall, SetElement, TableState};
use crate::config::{Config, FirewallConfig, LogPrefix, NftFamily, NftName};
use crate::record::Proto;

/// Per-source LOG budget: packets per second and burst (a scan still shows its first ports).
const LOG_PER_SOURCE_RATE: u32 = 10;
const LOG_PER_SOURCE_BURST: u32 = 20;
/// Sources the per-source meter tracks at once, and how long one is remembered.
const LOG_METER_SIZE: u32 = 65_536;
/// The longest element timeout given to nft: 365 days. nft 1.0.6 on kernel 6.x refuses
/// somewhere between 2 and 3.2 years ("value too large"); a longer ban is clamped, and the
/// store's reconcile re-adds it when the kernel drops it.
pub const MAX_TIMEOUT_SECS: i64 = 365 * 24 * 3600;

/// The kernel fast path's parameters (see `docs/fastpath.md`), from `[fastpath]`, `[detect]
/// fast_failures / window` and `[ban] duration`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastpathRules {
    /// The LOG prefix of a kernel ban record.
    pub log_prefix: LogPrefix,
    /// The new `(protocol, port)` probe within the window that bans a source: the same count
    /// at which user space reports a fast scan (`[detect] fast_failures`).
    pub threshold: u32,
    /// The window, whole seconds (at least 1).
    pub window_secs: u64,
    /// How long a kernel ban lasts, whole seconds.
    pub ban_secs: u64,
    /// Set sizes, per address family.
    pub max_bans: u32,
    pub max_sources: u32,
    pub max_probes: u32,
}

impl FastpathRules {
    /// From the config; `None` when `[fastpath] enabled = false` or the table is borrowed.
    pub fn from_config(config: &Config) -> Option<FastpathRules> {
        if !config.fastpath.enabled || !config.firewall.manage_table {
            return None;
        }
        let secs = |d: SignedDuration| {
            u64::try_from(d.as_secs() + i64::from(d.subsec_nanos() > 0)).unwrap_or(1)
        };
        Some(FastpathRules {
            log_prefix: config.fastpath.log_prefix.clone(),
            threshold: config.detect.fast_failures.max(1),
            window_secs: secs(config.detect.window).max(1),
            ban_secs: secs(config.ban.duration).clamp(1, MAX_TIMEOUT_SECS as u64),
            max_bans: config.fastpath.max_bans,
            max_sources: config.fastpath.max_sources,
            max_probes: config.fastpath.max_probes,
        })
    }

    /// The refill rate of the per-source token bucket, as nft writes it (`R/unit`):
    /// `threshold` per window, as a whole number per second, minute, hour or day, rounded up
    /// (the kernel is never stricter than the configured rate), in the unit that rounds
    /// least (the shorter one on a tie).
    pub fn rate(&self) -> String {
        let w = u128::from(self.window_secs.max(1));
        let t = u128::from(self.threshold.max(1));
        let (per_unit, unit, _) = [
            ("second", 1u128),
            ("minute", 60),
            ("hour", 3_600),
            ("day", 86_400),
        ]
        .into_iter()
        .map(|(unit, secs)| {
            let per_unit = (t * secs).div_ceil(w).max(1);
            // The rate per window this gives, scaled by `secs` to stay in integers:
            // compared as per_unit * w / secs, cross-multiplied over all units.
            (per_unit, unit, (per_unit * w * 86_400) / secs)
        })
        .min_by_key(|(_, _, effective)| *effective)
        .unwrap_or((t, "minute", 0));
        format!("{per_unit}/{unit}")
    }
}

/// The contents of the fast path's `allow4`/`allow6` and `served` sets: the allowlist and
/// the configured served ports.
type FastpathLists = (Vec<IpNet>, Vec<(Proto, u16)>);

/// What `setup` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupOutcome {
    /// The table was absent and has been created.
    Created,
    /// The table differed (the reason) and has been rebuilt; `kept` bans were carried over.
    Upgraded { reason: String, kept: usize },
    /// The table was already as this config makes it; nothing was changed.
    Unchanged,
    /// A borrowed table (`manage_table = false`): checked, not touched.
    Borrowed { timeout: bool },
}

/// What `teardown` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeardownOutcome {
    Removed,
    /// There was no table to remove.
    Absent,
    /// The table is the operator's (`manage_table = false`): left alone.
    NotOurs,
}

/// The firewall on `nft`.
#[derive(Debug, Clone)]
pub struct NftFirewall {
    nft: PathBuf,
    netns: Option<String>,
    family: NftFamily,
    table: NftName,
    /// The IPv4 set, when the family carries IPv4.
    set4: Option<NftName>,
    /// The IPv6 set, when the family carries IPv6 and one is configured.
    set6: Option<NftName>,
    manage: bool,
    forward: bool,
    log_prefix: LogPrefix,
    log_rate: u32,
    /// Whether the (borrowed) sets have the timeout flag; learnt by `check`/`setup`/`ban`.
    timeout_flag: Option<bool>,
    /// The kernel fast path, when on (never for a borrowed table).
    fastpath: Option<FastpathRules>,
    /// What the fast path's `allow4`/`allow6`/`served` sets were last given, so that a rebuilt
    /// table gets them in the same transaction.
    fastpath_lists: Option<FastpathLists>,
    /// The netlink socket for element writes and listings, opened at first use.
    sock: LazySocket,
    /// What the kernel said of each set (interval, timeout), learnt at first use and
    /// forgotten when `setup` rebuilds the table.
    kinds: std::collections::HashMap<String, SetInfo>,
    /// Whether the kernel takes `DESTROYSETELEM` (Linux 6.3+); `None` until tried.
    destroy: Option<bool>,
}

/// A netlink socket opened at first use; a clone opens its own.
#[derive(Debug, Default)]
struct LazySocket(Option<NfSocket>);

impl Clone for LazySocket {
    fn clone(&self) -> Self {
        LazySocket(None)
    }
}

impl NftFirewall {
    /// `prefixes` are `[log] prefixes`: the first one goes into the LOG rule
    /// (`portwarden: ` when there is none).
    pub fn new(cfg: &FirewallConfig, prefixes: &[LogPrefix]) -> NftFirewall {
        NftFirewall {
            nft: cfg.nft.clone(),
            netns: None,
            family: cfg.family,
            table: cfg.table.clone(),
            set4: cfg.family.carries_ipv4().then(|| cfg.set4.clone()),
            set6: if cfg.family.carries_ipv6() {
                cfg.set6.clone()
            } else {
                None
            },
            manage: cfg.manage_table,
            forward: cfg.forward,
            log_prefix: prefixes.first().cloned().unwrap_or_default(),
            log_rate: cfg.log_rate_per_second.max(1),
            timeout_flag: if cfg.manage_table { Some(true) } else { None },
            fastpath: None,
            fastpath_lists: None,
            sock: LazySocket::default(),
            kinds: std::collections::HashMap::new(),
            destroy: None,
        }
    }

    /// The firewall the whole config describes: [`NftFirewall::new`] plus the kernel fast
    /// path when `[fastpath]` turns it on and the table is portwarden's own.
    pub fn from_config(config: &Config) -> NftFirewall {
        NftFirewall::new(&config.firewall, &config.log.prefixes)
            .with_fastpath(FastpathRules::from_config(config))
    }

    /// Turn the kernel fast path on (`Some`) or off; ignored for a borrowed table.
    pub fn with_fastpath(mut self, rules: Option<FastpathRules>) -> NftFirewall {
        self.fastpath = rules.filter(|_| self.manage);
        self
    }

    /// The allowlist and served ports the fast path's sets get when `setup` builds or checks
    /// the table (in the same transaction as the table), and that a later rebuild reuses.
    pub fn with_fastpath_lists(mut self, allow: Vec<IpNet>, served: Vec<(Proto, u16)>) -> Self {
        self.fastpath_lists = Some((allow, served));
        self
    }

    /// Write as for a kernel before 6.3 (no `DESTROYSETELEM`), as the firewall does by itself
    /// once such a kernel refuses it: for tests of that path on newer kernels.
    #[doc(hidden)]
    pub fn without_destroy(mut self) -> NftFirewall {
        self.destroy = Some(false);
        self
    }

    /// Whether the table carries the kernel fast path.
    pub fn has_fastpath(&self) -> bool {
        self.fastpath.is_some()
    }

    /// Run every `nft` inside network namespace `name` (`ip netns exec NAME nft ...`).
    pub fn with_netns(mut self, name: &str) -> NftFirewall {
        self.netns = Some(name.to_string());
        self
    }

    /// `family table`, as nft names it.
    pub fn table_name(&self) -> String {
        format!("{} {}", self.family, self.table)
    }

    /// Whether portwarden owns (creates, rebuilds, removes) the table.
    pub fn manages_table(&self) -> bool {
        self.manage
    }

    /// The table definition `setup` loads (what `setup --dry-run` prints), as one nft script.
    pub fn ruleset(&self) -> Result<String, EnforceError> {
        self.validate()?;
        let body = self.definition(None);
        let marker = marker(&body);
        Ok(self.definition(Some(&marker)))
    }

    /// Create, check or rebuild the table; see the module doc.
    pub fn setup_report(&mut self) -> Result<SetupOutcome, EnforceError> {
        self.validate()?;
        self.kinds.clear();
        if !self.manage {
            return match self.check()? {
                TableState::Ready => Ok(SetupOutcome::Borrowed {
                    timeout: self.supports_timeout(),
                }),
                TableState::Missing => Err(EnforceError::BorrowedMissing(self.table_name())),
                TableState::Incomplete(why) => Err(EnforceError::Invalid(format!(
                    "{} ({why}); firewall.manage_table = false, so portwarden will not change it",
                    self.table_name()
                ))),
            };
        }
        let (outcome, keep) = match self.check()? {
            TableState::Ready => {
                if let Some((allow, served)) = self.fastpath_lists.clone() {
                    self.sync_fastpath(&allow, &served)?;
                }
                return Ok(SetupOutcome::Unchanged);
            }
            TableState::Missing => (SetupOutcome::Created, Vec::new()),
            TableState::Incomplete(reason) => {
                let keep = self.current_elements()?;
                (
                    SetupOutcome::Upgraded {
                        reason,
                        kept: keep.len(),
                    },
                    keep,
                )
            }
        };
        let mut script = format!(
            "table {t} {{}}\ndelete table {t}\n{}",
            self.ruleset()?,
            t = self.table_name()
        );
        let keep: Vec<BanElement> = keep
            .iter()
            .map(|e| BanElement {
                target: e.target,
                // Seconds are the listing's resolution; an element about to expire gets 1 s.
                timeout: e.expires.map(|d| d.max(SignedDuration::from_secs(1))),
            })
            .collect();
        let (adds, _) = plan_adds(&keep, &[]);
        self.timeout_flag = Some(true);
        self.push_elements(&mut script, &adds, "add", true)?;
        if let (Some(_), Some((allow, served))) = (&self.fastpath, &self.fastpath_lists) {
            script += &self.fastpath_sync_script(allow, served);
        }
        self.run(&["-f", "-"], Some(&script))?;
        self.kinds.clear();
        self.timeout_flag = Some(true);
        Ok(outcome)
    }

    /// Remove the table if portwarden owns it.
    pub fn teardown_report(&mut self) -> Result<TeardownOutcome, EnforceError> {
        self.validate()?;
        self.kinds.clear();
        if !self.manage {
            return Ok(TeardownOutcome::NotOurs);
        }
        match self.run(
            &["delete", "table", self.family.as_str(), &self.table],
            None,
        ) {
            Ok(_) => Ok(TeardownOutcome::Removed),
            Err(EnforceError::TableMissing(_)) => Ok(TeardownOutcome::Absent),
            Err(e) => Err(e),
        }
    }

    /// Read the sets' `timeout` flag now (a borrowed set may lack it).
    pub fn detect_timeout(&mut self) -> Result<bool, EnforceError> {
        if self.timeout_flag.is_none() {
            self.check()?;
        }
        Ok(self.timeout_flag.unwrap_or(false))
    }

    /// The one check the types cannot make: a family without a configured set (`ip6` with
    /// `set6 = ""`) has nothing to ban into. Names and the prefix were validated by the config.
    fn validate(&self) -> Result<(), EnforceError> {
        if self.set4.is_none() && self.set6.is_none() {
            return Err(EnforceError::Invalid(format!(
                "table {} has no set configured (firewall.set4 / firewall.set6)",
                self.table_name()
            )));
        }
        Ok(())
    }

    /// The table definition; every rule carries `comment "<marker>"` when given.
    fn definition(&self, marker: Option<&str>) -> String {
        let c = |rule: String| match marker {
            Some(m) => format!("\t\t{rule} comment \"{m}\"\n"),
            None => format!("\t\t{rule}\n"),
        };
        let mut s = format!("table {} {{\n", self.table_name());
        s += &format!(
            "\tlimit log_global {{\n\t\trate {r}/second burst {b} packets\n\t}}\n",
            r = self.log_rate,
            b = self.log_rate.saturating_mul(2)
        );
        let families: Vec<(&str, &str, &str, &str)> = [
            self.set4
                .as_deref()
                .map(|s| (s, "ipv4_addr", "ip", "log_meter4")),
            self.set6
                .as_deref()
                .map(|s| (s, "ipv6_addr", "ip6", "log_meter6")),
        ]
        .into_iter()
        .flatten()
        .collect();
        for (set, ty, _, meter) in &families {
            // Single addresses in a hash set (no overlap to check, any size), prefixes in an
            // interval set beside it.
            s += &format!(
                "\tset {set} {{\n\t\ttype {ty}\n\t\tflags timeout\n\t}}\n\
                 \tset {nets} {{\n\t\ttype {ty}\n\t\tflags interval, timeout\n\t}}\n\
                 \tset {meter} {{\n\t\ttype {ty}\n\t\tsize {LOG_METER_SIZE}\n\t\tflags dynamic, timeout\n\t\ttimeout 1m\n\t}}\n",
                nets = nets_set(set)
            );
        }
        let fast = self.fastpath.as_ref();
        if let Some(fp) = fast {
            s += &self.fastpath_sets(fp, &families);
        }
        s += "\tchain input {\n\t\ttype filter hook input priority -10; policy accept;\n";
        for (set, _, proto, _) in &families {
            s += &c(format!("{proto} saddr @{set} drop"));
            s += &c(format!("{proto} saddr @{} drop", nets_set(set)));
        }
        if fast.is_some() {
            for (_, _, proto, _) in &families {
                s += &c(format!("{proto} saddr @{} drop", fastban_set(proto)));
            }
        }
        s += &c("iif \"lo\" return".into());
        if fast.is_some() {
            // Before the LOG rule: the packet that trips a kernel ban is logged once, with the
            // fast path's prefix (see `docs/fastpath.md`).
            // Only a packet that opens something (conntrack `new`), addressed to this host
            // alone (not broadcast or multicast), of a protocol with ports the kernel's own
            // socket lookup knows.
            s +=
                &c("meta l4proto { tcp, udp } ct state new meta pkttype host jump fastpath".into());
        }
        for (_, _, proto, meter) in &families {
            s += &c(format!(
                "meta l4proto != {{ icmp, ipv6-icmp }} ct state new,invalid \
                 update @{meter} {{ {proto} saddr limit rate {LOG_PER_SOURCE_RATE}/second burst {LOG_PER_SOURCE_BURST} packets }} \
                 limit name \"log_global\" log prefix \"{}\"",
                self.log_prefix
            ));
        }
        s += "\t}\n";
        if let Some(fp) = fast {
            s += "\tchain fastpath {\n";
            // A SYN alone opens a TCP connection; a stray ACK or RST (stale conntrack after a
            // reboot) and the stealth scans are left to user space, which weighs them.
            s += &c("tcp flags & (fin | syn | rst | ack) != syn return".into());
            for (_, _, proto, _) in &families {
                s += &c(format!("{proto} saddr @{} return", allow_set(proto)));
            }
            // Served ports never count: the kernel's own socket lookup (a listening TCP socket
            // or a bound UDP one for this destination address and port, transparent or not),
            // and the ports `[detect] served_ports` names.
            s += &c("socket transparent 0 return".into());
            s += &c("socket transparent 1 return".into());
            s += &c(format!("meta l4proto . th dport @{SERVED_SET} return"));
            for (_, _, proto, _) in &families {
                let v = if *proto == "ip" { "4" } else { "6" };
                // The source's `threshold`-th new probe within the window is over a bucket of
                // `threshold - 1` (nft's `burst 0` means 5: a threshold of 1 needs no meter).
                let meter = if fp.threshold > 1 {
                    format!(
                        "update @newport{v} {{ {proto} saddr limit rate over {} burst {} packets }} ",
                        fp.rate(),
                        fp.threshold - 1
                    )
                } else {
                    String::new()
                };
                s += &c(format!(
                    "{proto} saddr . meta l4proto . th dport != @probes{v} \
                     add @probes{v} {{ {proto} saddr . meta l4proto . th dport }} \
                     {meter}add @fastban{v} {{ {proto} saddr }} goto fastban"
                ));
            }
            s += "\t}\n\tchain fastban {\n";
            s += &c(format!(
                "limit name \"fastban_log\" log prefix \"{}\"",
                fp.log_prefix
            ));
            s += &c("drop".into());
            s += "\t}\n";
        }
        if self.forward {
            s += "\tchain forward {\n\t\ttype filter hook forward priority -10; policy accept;\n";
            for (set, _, proto, _) in &families {
                s += &c(format!("{proto} saddr @{set} drop"));
                s += &c(format!("{proto} saddr @{} drop", nets_set(set)));
            }
            s += "\t}\n";
        }
        s += "}\n";
        s
    }

    /// The fast path's sets: the allowlist and served ports (written by
    /// [`Firewall::sync_fastpath`]), the probes and per-source meters it learns, and the bans
    /// it makes. Every dynamic set has a `size`: when one is full, `add` fails and the rule
    /// stops there (no ban, no drop; user space still judges).
    fn fastpath_sets(&self, fp: &FastpathRules, families: &[(&str, &str, &str, &str)]) -> String {
        let mut s = format!(
            "\tlimit fastban_log {{\n\t\trate {r}/second burst {b} packets\n\t}}\n\
             \tset {SERVED_SET} {{\n\t\ttype inet_proto . inet_service\n\t}}\n",
            r = self.log_rate,
            b = self.log_rate.saturating_mul(2)
        );
        for (_, ty, proto, _) in families {
            let v = if *proto == "ip" { "4" } else { "6" };
            s += &format!(
                "\tset allow{v} {{\n\t\ttype {ty}\n\t\tflags interval\n\t\tauto-merge\n\t}}\n\
                 \tset probes{v} {{\n\t\ttype {ty} . inet_proto . inet_service\n\t\tsize {probes}\n\t\tflags dynamic, timeout\n\t\ttimeout {w}s\n\t}}\n\
                 \tset newport{v} {{\n\t\ttype {ty}\n\t\tsize {sources}\n\t\tflags dynamic, timeout\n\t\ttimeout {w}s\n\t}}\n\
                 \tset fastban{v} {{\n\t\ttype {ty}\n\t\tsize {bans}\n\t\tflags dynamic, timeout\n\t\ttimeout {ban}s\n\t}}\n",
                probes = fp.max_probes,
                sources = fp.max_sources,
                bans = fp.max_bans,
                w = fp.window_secs,
                ban = fp.ban_secs,
            );
        }
        s
    }

    /// Rules expected per chain, for `check`: input, forward, fastpath, fastban.
    fn expected_rules(&self) -> [(&'static str, Option<&'static str>, usize); 4] {
        let n = usize::from(self.set4.is_some()) + usize::from(self.set6.is_some());
        let fast = self.fastpath.is_some();
        [
            (
                "input",
                Some("input"),
                3 * n + 1 + if fast { n + 1 } else { 0 },
            ),
            (
                "forward",
                Some("forward"),
                if self.forward { 2 * n } else { 0 },
            ),
            ("fastpath", None, if fast { 2 * n + 4 } else { 0 }),
            ("fastban", None, if fast { 2 } else { 0 }),
        ]
    }

    /// The fast path's sets of `family` holding `target` (`fastban4` / `fastban6`).
    fn fastban_for(&self, target: &IpNet) -> Option<&'static str> {
        self.fastpath.as_ref()?;
        let proto = match target {
            IpNet::V4(_) if self.set4.is_some() => "ip",
            IpNet::V6(_) if self.set6.is_some() => "ip6",
            _ => return None,
        };
        Some(fastban_set(proto))
    }

    /// The script that replaces the contents of `allow4`/`allow6`/`served` (one transaction).
    fn fastpath_sync_script(&self, allow: &[IpNet], served: &[(Proto, u16)]) -> String {
        let t = self.table_name();
        let mut s = String::new();
        let mut merged = IpNet::aggregate(&allow.iter().map(IpNet::trunc).collect());
        merged.sort();
        for (present, proto) in [(self.set4.is_some(), "ip"), (self.set6.is_some(), "ip6")] {
            if !present {
                continue;
            }
            let set = allow_set(proto);
            s += &format!("flush set {t} {set}\n");
            let items: Vec<String> = merged
                .iter()
                .filter(|n| n.addr().is_ipv6() == (proto == "ip6"))
                .map(|n| {
                    element_text(
                        &BanElement {
                            target: *n,
                            timeout: None,
                        },
                        false,
                    )
                })
                .collect();
            if !items.is_empty() {
                s += &format!("add element {t} {set} {{ {} }}\n", items.join(", "));
            }
        }
        s += &format!("flush set {t} {SERVED_SET}\n");
        let mut ports: Vec<String> = served
            .iter()
            .filter_map(|(p, port)| match p {
                Proto::Tcp | Proto::Udp => Some(format!("{} . {port}", p.as_str())),
                _ => None,
            })
            .collect();
        ports.sort();
        ports.dedup();
        if !ports.is_empty() {
            s += &format!("add element {t} {SERVED_SET} {{ {} }}\n", ports.join(", "));
        }
        s
    }

    /// Runs nft (inside the namespace if any) with `args`, `stdin` as its input; stdout on
    /// success, the mapped error with nft's stderr otherwise.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<String, EnforceError> {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.nft);
                c
            }
            None => Command::new(&self.nft),
        };
        cmd.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                EnforceError::NftMissing(self.nft.display().to_string())
            }
            std::io::ErrorKind::PermissionDenied => EnforceError::NotPermitted,
            _ => EnforceError::Io(e),
        })?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // nft may exit before reading everything (a syntax error): its stderr says why.
            if let Err(e) = pipe.write_all(text.as_bytes())
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                return Err(EnforceError::Io(e));
            }
        }
        let out = child.wait_with_output()?;
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if out.status.success() {
            if !stderr.is_empty() {
                tracing::warn!(nft = %self.nft.display(), "nft: {stderr}");
            }
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        Err(self.map_failure(stderr, out.status))
    }

    fn map_failure(&self, stderr: String, status: std::process::ExitStatus) -> EnforceError {
        if stderr.contains("Operation not permitted") {
            EnforceError::NotPermitted
        } else if stderr.contains("exec of") && stderr.contains("failed") {
            // `ip netns exec` could not start nft.
            EnforceError::NftMissing(self.nft.display().to_string())
        } else if stderr.contains("No such file or directory") {
            EnforceError::TableMissing(self.table_name())
        } else if stderr.is_empty() {
            EnforceError::Nft(format!("exited with {status} and no message"))
        } else {
            EnforceError::Nft(stderr)
        }
    }

    /// Elements of our sets as they are now (for `setup` to carry over); none without a table.
    fn current_elements(&mut self) -> Result<Vec<SetElement>, EnforceError> {
        match self.list() {
            Err(EnforceError::TableMissing(_)) => Ok(Vec::new()),
            other => other,
        }
    }

    fn set_for(&self, net: &IpNet) -> Result<&str, EnforceError> {
        let (set, what) = match net {
            IpNet::V4(_) => (self.set4.as_deref(), "IPv4 set (firewall.set4)"),
            IpNet::V6(_) => (self.set6.as_deref(), "IPv6 set (firewall.set6)"),
        };
        set.ok_or_else(|| {
            EnforceError::Invalid(format!(
                "table {} has no {what}: cannot ban or unban {net}",
                self.table_name()
            ))
        })
    }

    /// The netlink socket, opened (in the namespace, if any) at first use.
    fn nl(&mut self) -> Result<&mut NfSocket, EnforceError> {
        if self.sock.0.is_none() {
            let sock = NfSocket::open(self.netns.as_deref()).map_err(|e| match e.errno() {
                Some(libc::EPERM | libc::EACCES) => EnforceError::NotPermitted,
                _ => EnforceError::Kernel(e.to_string()),
            })?;
            self.sock.0 = Some(sock);
        }
        Ok(self.sock.0.as_mut().expect("opened above"))
    }

    /// What an error of the kernel means here: ENOENT is a missing table or set.
    fn nl_error(&mut self, e: NlError) -> EnforceError {
        match e.errno() {
            Some(libc::ENOENT) => EnforceError::TableMissing(self.table_name()),
            Some(libc::EPERM | libc::EACCES) => EnforceError::NotPermitted,
            _ => {
                // A socket that failed mid-conversation is not trusted with the next one.
                self.sock.0 = None;
                EnforceError::Kernel(e.to_string())
            }
        }
    }

    /// The kernel's word on `set` (interval? timeout?), cached; `None` when it does not exist.
    fn kind(&mut self, set: &str) -> Result<Option<SetInfo>, EnforceError> {
        if let Some(k) = self.kinds.get(set) {
            return Ok(Some(*k));
        }
        let (family, table) = (self.family, self.table.to_string());
        let answer = self.nl()?.set_info(family, &table, set);
        let info = answer.map_err(|e| self.nl_error(e))?;
        if let Some(i) = info {
            self.kinds.insert(set.to_string(), i);
        }
        Ok(info)
    }

    /// The set `net` goes into, and its kind: in a table of our own an address goes into the
    /// family's hash set and a prefix into the interval set beside it; a borrowed table has
    /// one set per family, of whatever kind its owner made.
    fn target_set(&mut self, net: &IpNet) -> Result<(String, SetInfo), EnforceError> {
        let base = self.set_for(net)?.to_string();
        let host = net.prefix_len() == net.max_prefix_len();
        let set = if self.manage && !host {
            nets_set(&base)
        } else {
            base
        };
        let info = self
            .kind(&set)?
            .ok_or_else(|| EnforceError::TableMissing(self.table_name()))?;
        if !host && !info.interval {
            return Err(EnforceError::Invalid(format!(
                "set {} {set} holds single addresses (no interval flag): cannot hold {net}",
                self.table_name()
            )));
        }
        Ok((set, info))
    }

    /// Elements of one set, dumped over netlink.
    fn list_set(&mut self, set: &str, interval: bool) -> Result<Vec<SetElement>, EnforceError> {
        let (family, table) = (self.family, self.table.to_string());
        let answer = self.nl()?.list(family, &table, set, interval);
        answer.map_err(|e| self.nl_error(e))
    }

    /// Runs `ops` as one transaction. A kernel without `DESTROYSETELEM` (before 6.3) refuses
    /// it with EINVAL: that is remembered, and the caller's plan is made again without it
    /// (as an ENOENT is: see [`NftFirewall::retry_on_vanished`]).
    fn apply(&mut self, ops: &[Op]) -> Result<(), EnforceError> {
        let (family, table) = (self.family, self.table.to_string());
        let answer = self.nl()?.apply(family, &table, ops);
        let uses_destroy = ops.iter().any(|o| matches!(o, Op::Destroy { .. }));
        match answer {
            Err(e) if e.errno() == Some(libc::EINVAL) && e.what.starts_with(DESTROY_WHAT) => {
                self.destroy = Some(false);
                Err(EnforceError::TableMissing(self.table_name()))
            }
            Ok(()) if uses_destroy => {
                self.destroy = Some(true);
                Ok(())
            }
            other => other.map_err(|e| self.nl_error(e)),
        }
    }

    /// Plans a transaction from the kernel's current state and runs it. An element that
    /// expires between the look and the transaction makes a `delete` fail with ENOENT
    /// (reported like a missing table): then look and plan once more; a table that is really
    /// gone fails the look.
    fn retry_on_vanished(
        &mut self,
        mut plan: impl FnMut(&mut Self) -> Result<Vec<Op>, EnforceError>,
    ) -> Result<(), EnforceError> {
        let mut attempt = 0;
        loop {
            let ops = plan(self)?;
            if ops.is_empty() {
                return Ok(());
            }
            match self.apply(&ops) {
                Err(EnforceError::TableMissing(_)) if attempt == 0 => attempt += 1,
                other => return other,
            }
        }
    }

    /// Appends `VERB element` statements (`add`, `delete`) to `script` (the elements of
    /// `setup`'s own transaction): addresses to the family's set, prefixes to the interval set
    /// beside it; the elements' timeouts only with `timeouts` and when the set takes them.
    fn push_elements(
        &self,
        script: &mut String,
        elements: &[BanElement],
        verb: &str,
        timeouts: bool,
    ) -> Result<(), EnforceError> {
        let timeout = timeouts && self.timeout_flag.unwrap_or(false);
        for v6 in [false, true] {
            for host in [true, false] {
                let items: Vec<String> = elements
                    .iter()
                    .filter(|e| e.target.addr().is_ipv6() == v6)
                    .filter(|e| (e.target.prefix_len() == e.target.max_prefix_len()) == host)
                    .map(|e| element_text(e, timeout))
                    .collect();
                let Some(first) = elements.iter().find(|e| e.target.addr().is_ipv6() == v6) else {
                    continue;
                };
                if items.is_empty() {
                    continue;
                }
                let base = self.set_for(&first.target)?;
                let set = if self.manage && !host {
                    nets_set(base)
                } else {
                    base.to_string()
                };
                script.push_str(&format!(
                    "{verb} element {} {set} {{ {} }}\n",
                    self.table_name(),
                    items.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// An element's timeout in milliseconds as the set takes it: whole seconds, rounded up, from
/// 1 s to [`MAX_TIMEOUT_SECS`]; none when the set has no timeouts or the ban is permanent.
fn timeout_ms(e: &BanElement, info: &SetInfo) -> Option<u64> {
    let t = e.timeout.filter(|_| info.timeout)?;
    let secs = (t.as_secs() + i64::from(t.subsec_nanos() > 0)).clamp(1, MAX_TIMEOUT_SECS);
    Some(secs as u64 * 1000)
}

impl Firewall for NftFirewall {
    fn setup(&mut self) -> Result<(), EnforceError> {
        self.setup_report().map(|_| ())
    }

    fn teardown(&mut self) -> Result<(), EnforceError> {
        self.teardown_report().map(|_| ())
    }

    fn check(&mut self) -> Result<TableState, EnforceError> {
        self.validate()?;
        // Over netlink, without elements: `nft -t list table` still loads every element
        // (0.4 s with 100 000), and the daemon checks every two seconds.
        let (family, table) = (self.family, self.table.to_string());
        let answer = self.nl()?.describe(family, &table);
        let Some(desc) = answer.map_err(|e| self.nl_error(e))? else {
            return Ok(TableState::Missing);
        };
        let set = |name: &str| desc.sets.iter().find(|s| s.name == name).map(|s| s.info);
        let mut problems = Vec::new();
        // Sets: present, right type, flags.
        let mut timeout_all = true;
        for (name, ty, ty_name) in [
            (&self.set4, KEY_IPV4_ADDR, "ipv4_addr"),
            (&self.set6, KEY_IPV6_ADDR, "ipv6_addr"),
        ] {
            let Some(name) = name else { continue };
            let Some(info) = set(name) else {
                problems.push(format!("set {name} is missing"));
                timeout_all = false;
                continue;
            };
            if info.key_type != ty {
                problems.push(format!("set {name} is not of type {ty_name}"));
            }
            timeout_all &= info.timeout;
            if self.manage {
                // Our own: addresses in a hash set, prefixes in an interval set beside it.
                if !info.timeout {
                    problems.push(format!("set {name} lacks flag timeout"));
                }
                if info.interval {
                    problems.push(format!(
                        "set {name} is an interval set (made by an older version)"
                    ));
                }
                let nets = nets_set(name);
                match set(&nets) {
                    Some(n) if n.interval && n.timeout && n.key_type == ty => {}
                    Some(_) => problems.push(format!(
                        "set {nets} is not an interval set of {ty_name} with timeouts"
                    )),
                    None => problems.push(format!("set {nets} is missing")),
                }
            }
        }
        if !self.manage {
            self.timeout_flag = Some(timeout_all);
            return Ok(if problems.is_empty() {
                TableState::Ready
            } else {
                TableState::Incomplete(problems.join("; "))
            });
        }
        // Chains and rules: the marker of this config on each, the expected count.
        let marker = marker(&self.definition(None));
        for (chain, hook, expected) in self.expected_rules() {
            let found = desc.chains.iter().find(|c| c.name == chain);
            match (found, expected) {
                (None, 0) => continue,
                (None, _) => {
                    problems.push(format!("chain {chain} is missing"));
                    continue;
                }
                (Some(_), 0) => {
                    problems.push(format!("chain {chain} is not wanted"));
                    continue;
                }
                (Some(_), _) if hook.is_none() => {}
                (Some(c), _) => {
                    // NF_INET_LOCAL_IN = 1, NF_INET_FORWARD = 2.
                    let number = match hook {
                        Some("input") => 1,
                        _ => 2,
                    };
                    if c.hook != Some((number, -10)) {
                        problems.push(format!(
                            "chain {chain} is not hook {} priority -10",
                            hook.unwrap_or_default()
                        ));
                    }
                }
            }
            let rules: Vec<_> = desc.rules.iter().filter(|r| r.chain == chain).collect();
            if rules.len() != expected {
                problems.push(format!(
                    "chain {chain} has {} rules, not {expected}",
                    rules.len()
                ));
            }
            if rules
                .iter()
                .any(|r| r.comment.as_deref() != Some(marker.as_str()))
            {
                problems.push(format!(
                    "chain {chain} holds rules of another version or config"
                ));
            }
        }
        self.timeout_flag = Some(true);
        Ok(if problems.is_empty() {
            TableState::Ready
        } else {
            TableState::Incomplete(problems.join("; "))
        })
    }

    fn ban(&mut self, elements: &[BanElement]) -> Result<(), EnforceError> {
        self.validate()?;
        if elements.is_empty() {
            return Ok(());
        }
        // Per set, in the order first named; the last element for a target wins.
        let mut by_set: Vec<(String, SetInfo, Vec<BanElement>)> = Vec::new();
        for e in elements {
            let e = BanElement {
                target: e.target.trunc(),
                timeout: e.timeout,
            };
            let (set, info) = self.target_set(&e.target)?;
            match by_set.iter_mut().find(|(s, _, _)| *s == set) {
                Some((_, _, v)) => v.push(e),
                None => by_set.push((set, info, vec![e])),
            }
        }
        self.retry_on_vanished(|fw| {
            let mut ops = Vec::new();
            for (set, info, wanted) in &by_set {
                if info.interval {
                    // An interval set refuses overlaps: read it, skip what a present prefix
                    // covers, delete what a new prefix covers or what gets a new timeout.
                    let current = fw.list_set(set, true)?;
                    let (adds, replaced) = plan_adds(wanted, &current);
                    if !replaced.is_empty() {
                        ops.push(Op::Delete {
                            set: set.clone(),
                            elems: replaced
                                .iter()
                                .flat_map(|t| Elem::for_net(t, true, None))
                                .collect(),
                        });
                    }
                    if !adds.is_empty() {
                        ops.push(Op::Add {
                            set: set.clone(),
                            elems: adds
                                .iter()
                                .flat_map(|e| Elem::for_net(&e.target, true, timeout_ms(e, info)))
                                .collect(),
                        });
                    }
                } else {
                    // A hash set: present or not, the element must end up with the new
                    // timeout, without reading the set first: destroy (delete, absent being no
                    // error) and add in one transaction; on kernels before 6.3, add (a no-op
                    // if present), delete, add.
                    let mut last = std::collections::HashMap::new();
                    for (i, e) in wanted.iter().enumerate() {
                        last.insert(e.target, i);
                    }
                    let unique: Vec<&BanElement> = wanted
                        .iter()
                        .enumerate()
                        .filter(|(i, e)| last.get(&e.target) == Some(i))
                        .map(|(_, e)| e)
                        .collect();
                    let keys: Vec<Elem> = unique
                        .iter()
                        .map(|e| Elem::addr(e.target.addr(), None))
                        .collect();
                    if fw.destroy == Some(false) {
                        ops.push(Op::Add {
                            set: set.clone(),
                            elems: keys.clone(),
                        });
                        ops.push(Op::Delete {
                            set: set.clone(),
                            elems: keys,
                        });
                    } else {
                        ops.push(Op::Destroy {
                            set: set.clone(),
                            elems: keys,
                        });
                    }
                    ops.push(Op::Add {
                        set: set.clone(),
                        elems: unique
                            .iter()
                            .map(|e| Elem::addr(e.target.addr(), timeout_ms(e, info)))
                            .collect(),
                    });
                }
            }
            Ok(ops)
        })
    }

    fn unban(&mut self, targets: &[IpNet]) -> Result<(), EnforceError> {
        self.validate()?;
        if targets.is_empty() {
            return Ok(());
        }
        let mut where_: Vec<(IpNet, String, SetInfo)> = Vec::new();
        for t in targets {
            let t = t.trunc();
            let (set, info) = self.target_set(&t)?;
            where_.push((t, set, info));
        }
        self.retry_on_vanished(|fw| {
            let (family, table) = (fw.family, fw.table.to_string());
            let mut deletes: Vec<(String, Vec<Elem>)> = Vec::new();
            let mut push =
                |set: &str, elems: Vec<Elem>| match deletes.iter_mut().find(|(s, _)| s == set) {
                    Some((_, v)) => v.extend(elems),
                    None => deletes.push((set.to_string(), elems)),
                };
            let mut listings: std::collections::HashMap<String, Vec<SetElement>> =
                std::collections::HashMap::new();
            for (t, set, info) in &where_ {
                if info.interval {
                    if !listings.contains_key(set) {
                        let l = fw.list_set(set, true)?;
                        listings.insert(set.clone(), l);
                    }
                    if listings[set].iter().any(|c| c.target == *t) {
                        push(set, Elem::for_net(t, true, None));
                    }
                } else {
                    let answer = fw.nl()?.contains(family, &table, set, t.addr());
                    if answer.map_err(|e| fw.nl_error(e))? {
                        push(set, vec![Elem::addr(t.addr(), None)]);
                    }
                }
                // A kernel ban of the fast path is lifted with the ban book's.
                if t.prefix_len() == t.max_prefix_len()
                    && let Some(fast) = fw.fastban_for(t)
                {
                    let answer = fw.nl()?.contains(family, &table, fast, t.addr());
                    if answer.map_err(|e| fw.nl_error(e))? {
                        push(fast, vec![Elem::addr(t.addr(), None)]);
                    }
                }
            }
            Ok(deletes
                .into_iter()
                .map(|(set, mut elems)| {
                    elems.dedup();
                    Op::Delete { set, elems }
                })
                .collect())
        })
    }

    fn list(&mut self) -> Result<Vec<SetElement>, EnforceError> {
        self.validate()?;
        let mut out = Vec::new();
        for base in [self.set4.clone(), self.set6.clone()].into_iter().flatten() {
            let base = base.to_string();
            let nets = self.manage.then(|| nets_set(&base));
            for set in std::iter::once(base.clone()).chain(nets) {
                let Some(info) = self.kind(&set)? else {
                    if set == base {
                        return Err(EnforceError::TableMissing(self.table_name()));
                    }
                    continue; // a table of an older version, before `setup` rebuilds it
                };
                out.extend(self.list_set(&set, info.interval)?);
            }
        }
        Ok(out)
    }

    fn supports_timeout(&self) -> bool {
        self.timeout_flag.unwrap_or(self.manage)
    }

    fn sync_fastpath(
        &mut self,
        allow: &[IpNet],
        served: &[(Proto, u16)],
    ) -> Result<(), EnforceError> {
        if self.fastpath.is_none() {
            return Ok(());
        }
        self.fastpath_lists = Some((allow.to_vec(), served.to_vec()));
        let script = self.fastpath_sync_script(allow, served);
        self.run(&["-f", "-"], Some(&script)).map(|_| ())
    }

    fn holds(&self, target: &IpNet) -> bool {
        self.set_for(target).is_ok()
    }
}

/// The fast path's set of configured served ports.
const SERVED_SET: &str = "served";

/// The interval set beside a table's own address set `set` that holds its prefixes.
fn nets_set(set: &str) -> String {
    format!("{set}_nets")
}

/// The fast path's ban set for an address family (`ip` / `ip6`).
fn fastban_set(proto: &str) -> &'static str {
    if proto == "ip" {
        "fastban4"
    } else {
        "fastban6"
    }
}

/// The fast path's allowlist set for an address family (`ip` / `ip6`).
fn allow_set(proto: &str) -> &'static str {
    if proto == "ip" { "allow4" } else { "allow6" }
}

/// A stable short hash of the definition (FNV-1a 64), the marker each rule carries.
fn marker(definition: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in definition.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("portwarden {h:016x}")
}

/// One element in nft syntax: the address alone for a host, `addr/len` for a prefix, and
/// `timeout Ns` (whole seconds, from 1 to [`MAX_TIMEOUT_SECS`]) when it has one and the set
/// takes timeouts.
fn element_text(e: &BanElement, with_timeout: bool) -> String {
    let net = e.target.trunc();
    let mut s = if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    };
    if with_timeout && let Some(t) = e.timeout {
        let secs = (t.as_secs() + i64::from(t.subsec_nanos() > 0)).clamp(1, MAX_TIMEOUT_SECS);
        s += &format!(" timeout {secs}s");
    }
    s
}

/// Given the wanted elements and the set's current ones: which to add, and which present
/// ones must go first (the same element, to get its new timeout, or one a new prefix covers).
/// Skipped: elements inside a larger prefix already present or in the batch, and earlier
/// duplicates in the batch (the last one wins). Linear in the sizes (times the number of
/// distinct prefix lengths), so that 100k bans plan in milliseconds.
fn plan_adds(wanted: &[BanElement], current: &[SetElement]) -> (Vec<BanElement>, Vec<IpNet>) {
    use std::collections::{BTreeSet, HashMap, HashSet};
    let batch: Vec<BanElement> = wanted
        .iter()
        .map(|e| BanElement {
            target: e.target.trunc(),
            timeout: e.timeout,
        })
        .collect();
    let last: HashMap<IpNet, usize> = batch
        .iter()
        .enumerate()
        .map(|(i, e)| (e.target, i))
        .collect();
    // Every prefix (current or wanted), and the lengths that occur, per address family.
    let all: HashSet<IpNet> = batch
        .iter()
        .map(|e| e.target)
        .chain(current.iter().map(|c| c.target))
        .collect();
    let lengths = |nets: &mut dyn Iterator<Item = IpNet>| -> BTreeSet<(bool, u8)> {
        nets.map(|n| (n.addr().is_ipv6(), n.prefix_len())).collect()
    };
    let all_lengths = lengths(&mut all.iter().copied());
    // A strictly larger prefix of `net` within `set` (whose lengths are `lens`).
    let covered_by = |net: &IpNet, set: &HashSet<IpNet>, lens: &BTreeSet<(bool, u8)>| {
        let v6 = net.addr().is_ipv6();
        lens.iter()
            .filter(|(f, len)| *f == v6 && *len < net.prefix_len())
            .any(|(_, len)| {
                IpNet::new(net.addr(), *len)
                    .map(|n| set.contains(&n.trunc()))
                    .unwrap_or(false)
            })
    };
    let adds: Vec<BanElement> = batch
        .iter()
        .enumerate()
        .filter(|(i, e)| {
            last.get(&e.target) == Some(i) && !covered_by(&e.target, &all, &all_lengths)
        })
        .map(|(_, e)| *e)
        .collect();
    let add_set: HashSet<IpNet> = adds.iter().map(|e| e.target).collect();
    let add_lengths = lengths(&mut add_set.iter().copied());
    let mut seen = HashSet::new();
    let replaced: Vec<IpNet> = current
        .iter()
        .map(|c| c.target)
        .filter(|t| add_set.contains(t) || covered_by(t, &add_set, &add_lengths))
        .filter(|t| seen.insert(*t))
        .collect();
    (adds, replaced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_net;

    fn net(s: &str) -> IpNet {
        parse_net(s).unwrap()
    }

    #[test]
    fn element_text_is_address_or_prefix_with_whole_seconds() {
        let e = |t: &str, secs: Option<SignedDuration>| BanElement {
            target: net(t),
            timeout: secs,
        };
        assert_eq!(element_text(&e("192.0.2.7", None), true), "192.0.2.7");
        assert_eq!(
            element_text(
                &e("198.51.100.0/24", Some(SignedDuration::from_secs(3600))),
                true
            ),
            "198.51.100.0/24 timeout 3600s"
        );
        assert_eq!(
            element_text(
                &e("2001:db8::1", Some(SignedDuration::from_millis(1500))),
                true
            ),
            "2001:db8::1 timeout 2s"
        );
        assert_eq!(
            element_text(&e("2001:db8::1", Some(SignedDuration::ZERO)), true),
            "2001:db8::1 timeout 1s"
        );
        assert_eq!(
            element_text(
                &e("192.0.2.7", Some(SignedDuration::from_hours(24 * 3650))),
                true
            ),
            "192.0.2.7 timeout 31536000s"
        );
        assert_eq!(
            element_text(&e("192.0.2.7", Some(SignedDuration::from_secs(9))), false),
            "192.0.2.7"
        );
    }

    #[test]
    fn plan_handles_overlaps_and_replacements() {
        let b = |t: &str| BanElement {
            target: net(t),
            timeout: Some(SignedDuration::from_secs(60)),
        };
        let cur = |t: &str| SetElement {
            target: net(t),
            expires: Some(SignedDuration::from_secs(5)),
        };
        let current = [cur("10.0.0.0/24"), cur("10.0.1.5"), cur("10.0.2.7")];
        let (adds, replaced) = plan_adds(
            &[
                b("10.0.0.9"),    // inside a banned prefix: skipped
                b("10.0.1.0/24"), // covers 10.0.1.5: replaces it
                b("10.0.1.6"),    // inside the new prefix: skipped
                b("10.0.2.7"),    // present: replaced with the new timeout
                b("10.0.3.1"),
            ],
            &current,
        );
        assert_eq!(
            adds.iter().map(|e| e.target).collect::<Vec<_>>(),
            vec![net("10.0.1.0/24"), net("10.0.2.7"), net("10.0.3.1")]
        );
        assert_eq!(replaced, vec![net("10.0.1.5"), net("10.0.2.7")]);
    }

    #[test]
    fn ruleset_for_the_default_config() {
        let fw = NftFirewall::new(&FirewallConfig::default(), &[]);
        let r = fw.ruleset().unwrap();
        assert!(r.starts_with("table inet portwarden {\n"), "{r}");
        assert!(
            r.contains("ip saddr @banned4 drop comment \"portwarden "),
            "{r}"
        );
        assert!(r.contains("ip6 saddr @banned6 drop"), "{r}");
        assert!(r.contains("log prefix \"portwarden: \""), "{r}");
        assert!(!r.contains("chain forward"), "{r}");
        // The marker follows the config.
        let fw2 = NftFirewall::new(
            &FirewallConfig {
                forward: true,
                ..FirewallConfig::default()
            },
            &[],
        );
        let r2 = fw2.ruleset().unwrap();
        assert!(r2.contains("chain forward"));
        assert_ne!(marker(&fw.definition(None)), marker(&fw2.definition(None)));
    }

    #[test]
    fn the_fast_path_follows_the_config() {
        let config = Config::default();
        let r = NftFirewall::from_config(&config).ruleset().unwrap();
        for needle in [
            "ip saddr @fastban4 drop",
            "ip6 saddr @fastban6 drop",
            "jump fastpath",
            "ip saddr @allow4 return",
            "socket transparent 0 return",
            "meta l4proto . th dport @served return",
            // fast_failures = 6: the 6th new port within 60 s is over a bucket of 5.
            "update @newport4 { ip saddr limit rate over 6/minute burst 5 packets } add @fastban4 { ip saddr } goto fastban",
            "log prefix \"portwarden-fastban: \"",
            "size 65536",
            "timeout 3600s",
        ] {
            assert!(r.contains(needle), "{needle} not in\n{r}");
        }
        // Before the LOG rule: the packet that bans is logged once, by the fast path.
        assert!(r.find("jump fastpath") < r.find("log prefix \"portwarden: \""));
        let off = |c: Config| {
            !NftFirewall::from_config(&c)
                .ruleset()
                .unwrap()
                .contains("fast")
        };
        let mut disabled = Config::default();
        disabled.fastpath.enabled = false;
        assert!(off(disabled));
        let mut borrowed = Config::default();
        borrowed.firewall.manage_table = false;
        assert!(FastpathRules::from_config(&borrowed).is_none());
        let mut one = Config::default();
        one.detect.fast_failures = 1;
        let r1 = NftFirewall::from_config(&one).ruleset().unwrap();
        assert!(!r1.contains("update @newport4"), "{r1}");
    }

    #[test]
    fn fast_path_rates_round_up_to_whole_units() {
        let rules = |threshold, window_secs| FastpathRules {
            log_prefix: LogPrefix::default(),
            threshold,
            window_secs,
            ban_secs: 3600,
            max_bans: 1,
            max_sources: 1,
            max_probes: 1,
        };
        assert_eq!(rules(6, 60).rate(), "6/minute");
        assert_eq!(rules(6, 30).rate(), "12/minute");
        assert_eq!(rules(10, 300).rate(), "2/minute");
        assert_eq!(rules(10, 90).rate(), "400/hour");
        assert_eq!(rules(12, 7200).rate(), "6/hour");
        assert_eq!(rules(5, 1).rate(), "5/second");
    }

    #[test]
    fn the_sync_script_merges_overlaps_and_keeps_families_apart() {
        let fw = NftFirewall::from_config(&Config::default());
        let script = fw.fastpath_sync_script(
            &[
                net("10.0.0.0/8"),
                net("10.1.2.3"),
                net("192.0.2.1"),
                net("::1"),
            ],
            &[
                (Proto::Tcp, 22),
                (Proto::Udp, 53),
                (Proto::Tcp, 22),
                (Proto::Icmp, 0),
            ],
        );
        assert_eq!(
            script,
            "flush set inet portwarden allow4\n\
             add element inet portwarden allow4 { 10.0.0.0/8, 192.0.2.1 }\n\
             flush set inet portwarden allow6\n\
             add element inet portwarden allow6 { ::1 }\n\
             flush set inet portwarden served\n\
             add element inet portwarden served { tcp . 22, udp . 53 }\n"
        );
    }

    #[test]
    fn refuses_unsafe_names_and_prefixes() {
        // They cannot reach a script: the types that `new` takes refuse them when built.
        assert!(NftName::new("x; flush ruleset").is_err());
        assert!(LogPrefix::new("a\" drop").is_err());
    }

    #[test]
    fn a_set_less_family_refuses_that_address_family() {
        let seed = FirewallConfig {
            family: NftFamily::Ip,
            table: NftName::new("filter").unwrap(),
            set4: NftName::new("blocked_ips").unwrap(),
            set6: None,
            manage_table: false,
            ..FirewallConfig::default()
        };
        let fw = NftFirewall::new(&seed, &[]);
        assert!(fw.set_for(&net("192.0.2.7")).is_ok());
        assert!(matches!(
            fw.set_for(&net("2001:db8::1")),
            Err(EnforceError::Invalid(_))
        ));
    }

    #[test]
    fn missing_nft_is_named() {
        let cfg = FirewallConfig {
            nft: "/nonexistent/nft".into(),
            ..FirewallConfig::default()
        };
        let mut fw = NftFirewall::new(&cfg, &[]);
        // (Only nft builds and removes the table; with no nft nothing can be changed.)
        assert!(matches!(
            fw.teardown_report(),
            Err(EnforceError::NftMissing(_))
        ));
    }
}
