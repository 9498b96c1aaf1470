//! The engine: one instance of the whole pipeline, as `run --once` and `daemon` drive it.
//!
//! ```text
//! Source::read_available ──Record──▶ Parser ──Probe──▶ PortScanDetector ──Finding──▶ Decider
//!                                                                         │
//!       StoreTx (bans, offences, cursors, detector state: one transaction) ◀┴▶ Firewall (nft)
//! ```
//!
//! In: the validated config and the state directory. Out: bans in the kernel set and in the
//! store, and a [`PassSummary`] per pass.
//!
//! Why the order of a checkpoint is what it is: decisions are recorded in a store transaction,
//! sent to the firewall, and only then is the transaction (with the sources' new cursors and the
//! detector state) committed. If the firewall refuses, nothing is committed, so the next run
//! reads the same records again and retries; if the process dies after the firewall call but
//! before the commit, the next run re-detects the scan and finds the kernel element already
//! there (a ban is idempotent). Nothing is lost and nothing is banned twice in the store.
//!
//! Served ports are read from `/proc/net` at open and read again (at most once per
//! [`Engine::SERVED_REFRESH`]) when a probe reaches a port not known as served: a service
//! started after the daemon must not turn its first clients into failed probes, and a pass that
//! only sees served ports never rereads the tables.
//!
//! Findings far older than the ban they would earn (a first run over a week of kmsg history) are
//! recorded in the log but not banned: banning today for a scan last week protects nothing and
//! surprises the operator.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, SourceConfig};
use crate::decide::{BanDecision, Decider, HostAllowlist};
use crate::detect::{DetectorState, PortScanDetector, ServedPorts};
use crate::enforce::{Firewall, TableState};
use crate::parse::{ParseContext, ParseStats, Parser, Reject};
use crate::record::{Finding, Probe, Proto, Record};
use crate::source::{self, Cursor, Mode, ReadStats, Source};
use crate::store::{ReadStore, ReconcileReport, RunRecord, Store, reconcile};

/// What one pass (or one daemon checkpoint interval) did; the cron log's one line.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PassSummary {
    pub sources: usize,
    pub source_errors: usize,
    /// Each source that could not be read, as `id: why` (a missing file, a directory...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source_problems: Vec<String>,
    pub records: u64,
    pub lost: u64,
    pub parsed: u64,
    pub rejected: BTreeMap<&'static str, u64>,
    pub findings: u64,
    pub banned: Vec<String>,
    pub not_banned: BTreeMap<&'static str, u64>,
    pub restored: usize,
    pub expired: usize,
}

impl std::fmt::Display for PassSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let is_noise = |name: &str| Reject::from_name(name).is_some_and(Reject::is_noise);
        let other: u64 = self
            .rejected
            .iter()
            .filter(|(k, _)| is_noise(k))
            .map(|(_, v)| v)
            .sum();
        let refused: Vec<String> = self
            .rejected
            .iter()
            .filter(|(k, _)| !is_noise(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        write!(
            f,
            "{} source(s), {} record(s) read, {} LOG record(s) parsed, {} other line(s), refused: {}, {} finding(s), {} ban(s)",
            self.sources,
            self.records,
            self.parsed,
            other,
            if refused.is_empty() {
                "none".to_string()
            } else {
                refused.join(" ")
            },
            self.findings,
            self.banned.len()
        )?;
        if !self.banned.is_empty() {
            write!(f, " [{}]", self.banned.join(", "))?;
        }
        for (why, n) in &self.not_banned {
            write!(f, ", {n} {why}")?;
        }
        if self.restored > 0 {
            write!(f, ", {} ban(s) restored", self.restored)?;
        }
        if self.expired > 0 {
            write!(f, ", {} expired", self.expired)?;
        }
        if self.lost > 0 {
            write!(
                f,
                ", {} record(s) LOST (ring overrun or rotation)",
                self.lost
            )?;
        }
        if self.source_errors > 0 {
            write!(f, ", {} source error(s)", self.source_errors)?;
            if !self.source_problems.is_empty() {
                write!(f, " [{}]", self.source_problems.join("; "))?;
            }
        }
        Ok(())
    }
}

/// Holds `state_dir/run.lock` for as long as it lives, so that two runs (or a run and the
/// daemon) never work on the same state at once. The kernel drops the lock when the process
/// dies, so a crashed run never blocks the next one.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// `Ok(None)` when another process holds the lock.
    pub fn try_acquire(state_dir: &Path) -> anyhow::Result<Option<RunLock>> {
        crate::store::create_private_dir(state_dir)?;
        let path = state_dir.join("run.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(RunLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
    }
}

/// The pipeline with its state.
pub struct Engine {
    config: Config,
    parser: Parser,
    detector: PortScanDetector,
    /// The detector's served ports, and when they were read.
    served: ServedPorts,
    served_read_at: Instant,
    allowlist: HostAllowlist,
    store: Store,
    firewall: Box<dyn Firewall>,
    clock: SystemClock,
    stats: ParseStats,
    /// The sources to read: the configured ones, or the default one chosen at open.
    sources: Vec<SourceConfig>,
    /// Findings of the records read since the last checkpoint, waiting for a decision.
    pending: Vec<Finding>,
}

impl Engine {
    /// Open the store, restore the detector from it, and (unless dry-run) reconcile the
    /// firewall with the store: the table is recreated and live bans put back if they are gone.
    pub fn open(
        config: Config,
        state_dir: &Path,
        firewall: Box<dyn Firewall>,
    ) -> anyhow::Result<(Engine, Option<ReconcileReport>)> {
        let store = Store::open(state_dir)
            .with_context(|| format!("opening the store in {}", state_dir.display()))?;
        let served = ServedPorts::from_config(&config.detect);
        let served_read_at = Instant::now();
        let detector = match store.detector_state()? {
            Some(text) => match serde_json::from_str::<DetectorState>(&text) {
                Ok(state) => PortScanDetector::restore(&config.detect, served.clone(), state),
                Err(e) => {
                    tracing::warn!("stored detector state is unreadable ({e}); starting afresh");
                    PortScanDetector::new(&config.detect, served.clone())
                }
            },
            None => PortScanDetector::new(&config.detect, served.clone()),
        };
        let mut engine = Engine {
            parser: Parser::new(&config.log, ParseContext::system()),
            detector,
            served,
            served_read_at,
            allowlist: HostAllowlist::from_config(&config.ban),
            store,
            firewall,
            clock: SystemClock,
            stats: ParseStats::default(),
            pending: Vec::new(),
            sources: if config.sources.is_empty() {
                let chosen = source::default_config();
                tracing::info!(source = %source::id_of(&chosen), "no [[source]] configured; using this one");
                vec![chosen]
            } else {
                config.sources.clone()
            },
            config,
        };
        let report = engine.reconcile()?;
        Ok((engine, report))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The sources this engine reads (the configured ones, or the one chosen by default).
    pub fn sources(&self) -> &[SourceConfig] {
        &self.sources
    }

    /// Put the table and the live bans back if the kernel lost them. `None` in dry-run.
    pub fn reconcile(&mut self) -> anyhow::Result<Option<ReconcileReport>> {
        if self.config.ban.dry_run {
            return Ok(None);
        }
        let report = reconcile(self.firewall.as_mut(), &self.store, self.clock.now())
            .context("reconciling the firewall with the store")?;
        if report.repaired() {
            tracing::warn!(
                table_recreated = report.table_recreated,
                restored = report.restored,
                "the kernel had lost portwarden's table or bans; put back"
            );
        }
        Ok(Some(report))
    }

    /// Whether the firewall still holds the table (the daemon polls this to notice
    /// `nft flush ruleset`).
    pub fn firewall_ready(&mut self) -> anyhow::Result<bool> {
        if self.config.ban.dry_run {
            return Ok(true);
        }
        Ok(self.firewall.check()? == TableState::Ready)
    }

    /// The stored cursor of a source, if any and readable.
    pub fn stored_cursor(&self, source_id: &str) -> Option<Cursor> {
        let text = self.store.cursor(source_id).ok().flatten()?;
        match Cursor::from_store(&text) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(source = source_id, "{e}; reading from the start");
                None
            }
        }
    }

    /// Parse and detect one record. A finding is queued for the next [`Engine::checkpoint`].
    pub fn feed(&mut self, record: Record<'_>) -> Option<&Finding> {
        let result = self.parser.parse(record);
        self.stats.count(&result);
        let probe = result.ok()?;
        self.refresh_served_for(&probe);
        let finding = self.detector.observe(&probe)?;
        tracing::info!(
            source = %finding.source,
            kind = %finding.kind,
            scan_type = %finding.scan_type,
            ports = finding.evidence.ports,
            "scan detected"
        );
        self.pending.push(finding);
        self.pending.last()
    }

    /// Read the served ports again if `probe` reaches a port not known as served and the last
    /// read is older than [`Engine::SERVED_REFRESH`] (see the module doc).
    fn refresh_served_for(&mut self, probe: &Probe) {
        if !self.config.detect.served_ports_from_proc {
            return;
        }
        let port = match probe.proto {
            Proto::Tcp | Proto::Udp | Proto::Sctp => probe.dport,
            Proto::Icmp | Proto::Icmpv6 | Proto::Other(_) => None,
        };
        let Some(port) = port else { return };
        if self.served.is_served(probe.proto, port)
            || self.served_read_at.elapsed() < Self::SERVED_REFRESH
        {
            return;
        }
        self.refresh_served_ports();
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Decide on the pending findings and ban; with `full`, also save the sources' cursors and
    /// the detector state. All of it is one store transaction, committed only after the
    /// firewall took the bans (see the module doc).
    ///
    /// On any error nothing is committed and the findings stay pending for the next attempt:
    /// a finding is never dropped because nft or SQLite failed once.
    ///
    /// The daemon checkpoints with `full = false` on each finding, to ban at once without
    /// serialising the whole detector state every time (a flood of findings would otherwise
    /// stall it), and with `full = true` every [`Engine::DAEMON_CHECKPOINT`]. That is crash-safe:
    /// after a crash the older cursor and state are replayed, the scan is detected again and
    /// its ban is found already there.
    pub fn checkpoint(
        &mut self,
        mode: &str,
        started: Timestamp,
        cursors: &[(String, Option<Cursor>)],
        full: bool,
        summary: &mut PassSummary,
    ) -> anyhow::Result<()> {
        let findings = std::mem::take(&mut self.pending);
        let mut attempt = summary.clone();
        match self.try_checkpoint(mode, started, cursors, full, &findings, &mut attempt) {
            Ok(()) => {
                *summary = attempt;
                self.stats = ParseStats::default();
                Ok(())
            }
            Err(e) => {
                let mut retry = findings;
                retry.append(&mut self.pending);
                self.pending = retry;
                Err(e)
            }
        }
    }

    fn try_checkpoint(
        &mut self,
        mode: &str,
        started: Timestamp,
        cursors: &[(String, Option<Cursor>)],
        full: bool,
        findings: &[Finding],
        summary: &mut PassSummary,
    ) -> anyhow::Result<()> {
        let now = self.clock.now();
        let stale_after = self.config.ban.duration.max(self.config.detect.window);
        let mut decider =
            Decider::new(self.config.ban.clone(), self.allowlist.clone(), &self.clock);
        let borrowed_without_timeout =
            !self.config.ban.dry_run && !self.firewall.supports_timeout();

        let mut tx = self.store.transaction()?;
        let mut decisions = Vec::with_capacity(findings.len());
        let mut retry_later = Vec::new();
        for finding in findings {
            summary.findings += 1;
            if now.duration_since(finding.detected_at) > stale_after {
                tracing::info!(source = %finding.source, detected_at = %finding.detected_at, "old finding: logged, not banned");
                *summary.not_banned.entry("stale").or_default() += 1;
                continue;
            }
            if finding.source.is_ipv6() && self.config.firewall.set6.is_none() {
                // A borrowed IPv4-only table (the seed lab's `ip filter blocked_ips`): the
                // kernel has nowhere to put this ban, and trying would fail the whole batch.
                tracing::warn!(source = %finding.source, "IPv6 scanner, but the firewall has no IPv6 set (firewall.set6): not banned");
                *summary.not_banned.entry("no IPv6 set").or_default() += 1;
                continue;
            }
            let decision = decider.decide(&mut tx, finding)?;
            match &decision {
                BanDecision::Ban { ban, .. } => summary.banned.push(ban.target.to_string()),
                BanDecision::DryRun { ban, .. } => {
                    summary.banned.push(format!("{} (dry run)", ban.target))
                }
                BanDecision::Allowlisted { .. } => {
                    *summary.not_banned.entry("allowlisted").or_default() += 1
                }
                BanDecision::AlreadyBanned { .. } => {
                    *summary.not_banned.entry("already banned").or_default() += 1
                }
                BanDecision::RateLimited { source, .. } => {
                    *summary.not_banned.entry("rate-limited").or_default() += 1;
                    retry_later.push(*source);
                }
            }
            decisions.push(decision);
        }

        // A borrowed set without the timeout flag never expires anything: lift what is over.
        // Only real (not dry-run) bans that have an end, and only of a family the set holds.
        let mut lift = Vec::new();
        if borrowed_without_timeout {
            lift = tx
                .active_bans()?
                .into_iter()
                .filter(|b| !b.dry_run && b.until.is_some_and(|until| until <= now))
                .map(|b| b.target)
                .filter(|t| t.addr().is_ipv4() || self.config.firewall.set6.is_some())
                .collect();
        }
        summary.expired += tx.expire(now)?;

        if !self.config.ban.dry_run {
            if !lift.is_empty() {
                self.firewall.unban(&lift).context("lifting expired bans")?;
            }
            crate::decide::enforce(self.firewall.as_mut(), &decisions)
                .context("adding bans to the kernel set")?;
        }

        // A source over the ban-rate cap gets another chance at its next new probe.
        for source in retry_later {
            self.detector.clear_verdict(source);
        }
        if full {
            let detector_state = serde_json::to_string(&self.detector.snapshot())
                .context("serialising the detector state")?;
            for (id, cursor) in cursors {
                if let Some(c) = cursor {
                    tx.set_cursor(id, &c.to_store(), now)?;
                }
            }
            tx.set_detector_state(&detector_state, now)?;
        }
        // Counts since the last checkpoint: a daemon's summaries do not accumulate.
        summary.parsed += self.stats.parsed;
        for (k, v) in &self.stats.rejected {
            *summary.rejected.entry(k).or_default() += v;
        }
        tx.record_run(&RunRecord {
            mode: mode.to_string(),
            started,
            finished: now,
            records: summary.records,
            probes: summary.parsed,
            findings: summary.findings,
            bans: summary.banned.len() as u64,
            note: summary.to_string(),
        })?;
        tx.commit()?;
        Ok(())
    }

    /// Cron mode: read what is new on every source, decide, ban, save.
    pub fn pass(&mut self) -> anyhow::Result<PassSummary> {
        let started = self.clock.now();
        let mut summary = PassSummary::default();
        let mut cursors = Vec::new();
        let source_configs = self.sources.clone();
        for cfg in &source_configs {
            let id = source::id_of(cfg);
            let cursor = self.stored_cursor(&id);
            // One rule for every source that cannot be read (missing, a directory, unreadable,
            // not a log file): logged, named in the summary, counted; the others are read and
            // the pass is saved, and `run --once` exits non-zero.
            let mut src: Box<dyn Source> = match source::open(cfg, cursor, Mode::Once) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(source = %id, "{e}");
                    summary.source_errors += 1;
                    summary.source_problems.push(format!("{id}: {e}"));
                    continue;
                }
            };
            summary.sources += 1;
            match self.read_source(src.as_mut()) {
                Ok(stats) => {
                    summary.records += stats.records;
                    summary.lost += stats.lost;
                }
                Err(e) => {
                    tracing::error!(source = %id, "{e}");
                    summary.source_errors += 1;
                    summary.source_problems.push(format!("{id}: {e}"));
                }
            }
            cursors.push((id, src.cursor()));
        }
        self.checkpoint("once", started, &cursors, true, &mut summary)?;
        Ok(summary)
    }

    fn read_source(&mut self, src: &mut dyn Source) -> Result<ReadStats, source::SourceError> {
        src.read_available(&mut |record| {
            self.feed(record);
        })
    }

    /// At most one read of `/proc/net/{tcp,tcp6,udp,udp6}` per this interval when probes reach
    /// ports not known as served: a service is known as served from 250 ms after it started
    /// listening, and a flood of probes to closed ports costs at most four reads a second.
    pub const SERVED_REFRESH: Duration = Duration::from_millis(250);

    /// How often the daemon saves cursors and detector state when nothing was detected (a
    /// finding is decided and saved at once).
    pub const DAEMON_CHECKPOINT: SignedDuration = SignedDuration::from_secs(10);

    /// Re-read which ports this host serves (`/proc/net`): a service started after the daemon
    /// must count as served, or its clients' first connections would look like failures.
    /// The daemon also calls this now and then, so that a port that stopped being served
    /// counts as closed again (a newly served one is noticed at once, see the module doc).
    pub fn refresh_served_ports(&mut self) {
        self.served = ServedPorts::from_config(&self.config.detect);
        self.served_read_at = Instant::now();
        self.detector.set_served(self.served.clone());
    }

    /// Move the parser's notion of now forward (the daemon calls this now and then). BSD
    /// syslog stamps have no year, inferred from now: a parser that still believed it was
    /// November would date a December line to last year, and its finding would be too old
    /// to act on. The boot time behind kmsg stamps is also read again, in case the clock was
    /// stepped (NTP on a host without an RTC). The parser keeps no per-record state.
    pub fn refresh_clock(&mut self) {
        self.parser = Parser::new(&self.config.log, ParseContext::system());
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use ipnet::IpNet;

    use super::*;
    use crate::enforce::{BanElement, EnforceError, FakeFirewall, SetElement};
    use crate::record::SourceKind;

    /// The shared fake, reachable by the test after the engine took its box.
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<FakeFirewall>>);

    impl Firewall for Shared {
        fn setup(&mut self) -> Result<(), EnforceError> {
            self.0.borrow_mut().setup()
        }
        fn teardown(&mut self) -> Result<(), EnforceError> {
            self.0.borrow_mut().teardown()
        }
        fn check(&mut self) -> Result<TableState, EnforceError> {
            self.0.borrow_mut().check()
        }
        fn ban(&mut self, elements: &[BanElement]) -> Result<(), EnforceError> {
            self.0.borrow_mut().ban(elements)
        }
        fn unban(&mut self, targets: &[IpNet]) -> Result<(), EnforceError> {
            self.0.borrow_mut().unban(targets)
        }
        fn list(&mut self) -> Result<Vec<SetElement>, EnforceError> {
            self.0.borrow_mut().list()
        }
    }

    /// Kernel-tagged LOG lines of a 12-port SYN scan from `src`, stamped now.
    fn scan(src: &str) -> Vec<String> {
        let stamp = Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00");
        [21, 22, 23, 25, 53, 80, 110, 135, 139, 443, 445, 3389]
            .iter()
            .map(|port| {
                format!(
                    "{stamp} vm kernel: portwarden: IN=eth0 OUT= MAC= SRC={src} DST=192.0.2.1 LEN=44 \
                     TOS=0x00 PREC=0x00 TTL=43 ID=1 PROTO=TCP SPT=40000 DPT={port} WINDOW=1024 RES=0x00 SYN URGP=0"
                )
            })
            .collect()
    }

    fn engine(dir: &Path, fw: &Shared, ban: impl FnOnce(&mut crate::config::BanConfig)) -> Engine {
        let mut config = Config::default();
        config.ban.allowlist_host = false;
        config.detect.served_ports_from_proc = false;
        config.sources.clear();
        ban(&mut config.ban);
        Engine::open(config, dir, Box::new(fw.clone())).unwrap().0
    }

    fn feed(engine: &mut Engine, lines: &[String]) {
        for l in lines {
            engine.feed(Record {
                kind: SourceKind::File,
                bytes: l.as_bytes(),
            });
        }
    }

    #[test]
    fn a_refused_ban_keeps_its_finding_for_the_next_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let fw = Shared::default();
        let mut engine = engine(dir.path(), &fw, |_| {});
        feed(&mut engine, &scan("198.51.100.7"));
        assert!(engine.has_pending());

        fw.0.borrow_mut()
            .fail_next(EnforceError::Nft("Error: Could not process rule".into()));
        let mut summary = PassSummary::default();
        let err = engine
            .checkpoint("test", Timestamp::now(), &[], true, &mut summary)
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("Could not process rule"),
            "{err:#}"
        );
        assert!(engine.has_pending(), "the finding must survive the failure");
        assert!(
            engine.store.live_bans(Timestamp::now()).unwrap().is_empty(),
            "nothing committed"
        );
        assert_eq!(
            summary.findings, 0,
            "a failed attempt leaves the summary alone"
        );

        engine
            .checkpoint("test", Timestamp::now(), &[], true, &mut summary)
            .unwrap();
        assert!(!engine.has_pending());
        assert_eq!(summary.banned, vec!["198.51.100.7/32".to_string()]);
        assert!(fw.0.borrow().contains(&"198.51.100.7/32".parse().unwrap()));
        assert_eq!(engine.store.live_bans(Timestamp::now()).unwrap().len(), 1);
    }

    #[test]
    fn a_rate_limited_scanner_is_reported_again_at_its_next_probe() {
        let dir = tempfile::tempdir().unwrap();
        let fw = Shared::default();
        let mut engine = engine(dir.path(), &fw, |b| b.max_bans_per_minute = 1);
        feed(&mut engine, &scan("198.51.100.7"));
        let second = scan("203.0.113.9");
        feed(&mut engine, &second[..8]);
        let mut summary = PassSummary::default();
        engine
            .checkpoint("test", Timestamp::now(), &[], true, &mut summary)
            .unwrap();
        assert_eq!(summary.banned.len(), 1, "{summary}");
        assert_eq!(
            summary.not_banned.get("rate-limited"),
            Some(&1),
            "{summary}"
        );

        // The same scanner goes on: its next new port brings a new finding, not silence.
        feed(&mut engine, &second[8..9]);
        assert!(
            engine.has_pending(),
            "the capped scanner must be reported again"
        );
    }

    #[test]
    fn the_run_lock_creates_a_private_state_dir_and_excludes_a_second_run() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = RunLock::try_acquire(&state).unwrap();
        assert!(first.is_some());
        let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "bans and evidence are root's business only");
        assert!(
            RunLock::try_acquire(&state).unwrap().is_none(),
            "a second run must wait"
        );
        drop(first);
        assert!(RunLock::try_acquire(&state).unwrap().is_some());
    }
}
