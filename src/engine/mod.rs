//! The engine: one instance of the whole pipeline, and the two ways it runs: the cron pass
//! ([`Engine::pass`], `run --once`) here, and the daemon's loop beside it ([`daemon`]).
//!
//! ```text
//! Source::read_available ──Record──▶ Parser ──Probe──▶ PortScanDetector ──Finding──▶ Decider
//!                                                                                     │ intent
//!            ban book batch (bans, offences, cursors, detector state, run record) ◀──┘
//!            = one store transaction + one kernel batch, in the book's order
//! ```
//!
//! In: the validated config, a [`BanBook`] (the store and the firewall) and a clock. Out: bans
//! in the kernel set and in the store, and a [`PassSummary`] per pass.
//!
//! A checkpoint is one batch of the ban book: the decisions, the sources' new cursors and the
//! detector state are written together and committed only after the kernel took the bans
//! (the order and what a crash at each point leaves are in [`crate::bans`]). If the firewall
//! refuses, nothing is committed, so the next attempt reads the same records again; nothing is
//! lost and nothing is banned twice in the store. The daemon's periodic full checkpoints hand
//! cursors and state, taken together once the batch committed, to a thread that writes them
//! ([`saver`]); its last one is written inline.
//!
//! Served ports are read from `/proc/net` at open and read again (at most once per
//! [`Engine::SERVED_REFRESH`]) when a probe reaches a port not known as served: a service
//! started after the daemon must not turn its first clients into failed probes, and a pass that
//! only sees served ports never rereads the tables.
//!
//! Findings far older than the ban they would earn (a first run over a week of kmsg history) are
//! recorded in the log but not banned: banning today for a scan last week protects nothing and
//! surprises the operator.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ipnet::IpNet;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::bans::{BanBook, ReconcileReport};
use crate::clock::SharedClock;
use crate::config::{Config, SourceConfig};
use crate::decide::{BAN_GRACE, BanDecision, Decider, HostAllowlist};
use crate::detect::{DetectorState, PortScanDetector, ServedPorts};
use crate::enforce::FastpathRules;
use crate::metrics::{Metrics, Refusal, SourceMetrics};
use crate::parse::{ParseContext, ParseStats, Parsed, Parser, Reject};
use crate::record::{Finding, Probe, Proto, Record};
use crate::source::{self, Cursor, Mode, ReadStats, Source};
use crate::store::{ReadStore, RunRecord};

pub mod daemon;
mod saver;

/// An error and its causes on one line, as `main` prints them: "outer: inner: root cause".
/// A cause whose text the line already ends with is not repeated (a typed error that shows
/// its `io::Error` in its own message and also returns it as its source would otherwise
/// print `Is a directory (os error 21): Is a directory (os error 21)`).
pub fn error_chain(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Why a finding was not banned, as a pass counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum NotBanned {
    /// Far older than the ban it would earn (see the module doc).
    #[serde(rename = "stale")]
    Stale,
    /// The firewall has no set for the source's family (a borrowed IPv4-only table).
    #[serde(rename = "no IPv6 set")]
    NoSetForFamily,
    #[serde(rename = "allowlisted")]
    Allowlisted,
    #[serde(rename = "already banned")]
    AlreadyBanned,
    #[serde(rename = "rate-limited")]
    RateLimited,
}

impl NotBanned {
    /// The `reason` label of `portwarden_bans_refused_total`.
    pub fn refusal(self) -> Refusal {
        match self {
            NotBanned::Stale => Refusal::Stale,
            NotBanned::NoSetForFamily => Refusal::NoSetForFamily,
            NotBanned::Allowlisted => Refusal::Allowlisted,
            NotBanned::AlreadyBanned => Refusal::AlreadyBanned,
            NotBanned::RateLimited => Refusal::RateLimited,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NotBanned::Stale => "stale",
            NotBanned::NoSetForFamily => "no IPv6 set",
            NotBanned::Allowlisted => "allowlisted",
            NotBanned::AlreadyBanned => "already banned",
            NotBanned::RateLimited => "rate-limited",
        }
    }
}

impl std::fmt::Display for NotBanned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    pub rejected: BTreeMap<Reject, u64>,
    pub findings: u64,
    pub banned: Vec<String>,
    pub not_banned: BTreeMap<NotBanned, u64>,
    pub restored: usize,
    pub expired: usize,
    /// What the fleet brought and took (`None`: no `[fleet]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<crate::fleet::FleetSummary>,
}

impl std::fmt::Display for PassSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let other: u64 = self
            .rejected
            .iter()
            .filter(|(k, _)| k.is_noise())
            .map(|(_, v)| v)
            .sum();
        let refused: Vec<String> = self
            .rejected
            .iter()
            .filter(|(k, _)| !k.is_noise())
            .map(|(k, v)| format!("{}={v}", k.as_str()))
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
        if let Some(fleet) = &self.fleet {
            write!(f, "; {fleet}")?;
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
    /// `Ok(None)` when another process holds the lock. The holder writes its pid and `mode`
    /// (`once`, `daemon`) into the file, for `status` ([`RunLock::holder`]).
    pub fn try_acquire(state_dir: &Path, mode: &str) -> anyhow::Result<Option<RunLock>> {
        crate::store::create_private_dir(state_dir)?;
        let path = state_dir.join("run.lock");
        let mut file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {
                use std::io::Write as _;
                // Only the holder writes; a failure here only costs `status` its detail.
                let _ = file.set_len(0);
                let _ = writeln!(file, "{} {mode}", std::process::id());
                Ok(Some(RunLock { _file: file }))
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
    }

    /// Who holds the lock in `state_dir` right now, as `pid mode` (`None`: nobody, or no
    /// lock file). Probes with a shared lock, which never blocks and is dropped at once.
    pub fn holder(state_dir: &Path) -> Option<String> {
        let path = state_dir.join("run.lock");
        let file = File::open(&path).ok()?;
        match file.try_lock_shared() {
            Ok(()) => None,
            Err(_) => Some(
                std::fs::read_to_string(&path)
                    .ok()
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| "another process".to_string()),
            ),
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
    decider: Decider,
    book: BanBook,
    clock: SharedClock,
    stats: ParseStats,
    /// The sources to read: the configured ones, or the default one chosen at open.
    sources: Vec<SourceConfig>,
    /// Findings of the records read since the last checkpoint, waiting for a decision.
    pending: Vec<Finding>,
    /// When each recently banned source's ban started (see [`Engine::feed`]).
    ban_started: HashMap<IpAddr, Timestamp>,
    /// The metrics this engine feeds (the daemon's outlive a reload: [`Engine::with_metrics`]).
    metrics: Arc<Metrics>,
    /// Each source's counters, by the index of the source in [`Engine::sources`].
    source_metrics: Vec<SourceMetrics>,
    /// The source whose records [`Engine::feed`] is given (see [`Engine::feed_from`]).
    current_source: usize,
    /// Refused fleet messages and capped remote bans are logged at most once a minute.
    fleet_log: FleetLog,
    /// Where exact counts of the live bans are asked for when they are not counted inline
    /// (see [`Engine::count_live_bans_in_background`]).
    live_count: Option<std::sync::mpsc::Sender<()>>,
    /// Where full checkpoints send the cursors and detector state when they are not written
    /// inline (see [`Engine::save_state_in_background`]).
    state_saver: Option<saver::StateSaver>,
}

/// IPv4 and IPv6 figures labelled with the kernel sets `set4` and `set6` they are about.
fn per_set<'a>(set4: &'a str, set6: Option<&'a str>, v4: i64, v6: i64) -> Vec<(&'a str, i64)> {
    let mut per_set = vec![(set4, v4)];
    if let Some(set6) = set6 {
        per_set.push((set6, v6));
    }
    per_set
}

/// Set `portwarden_active_bans` to the live bans of `store` at `now`, per kernel set.
fn publish_active_bans(
    store: &dyn ReadStore,
    metrics: &Metrics,
    (set4, set6): &(String, Option<String>),
    now: Timestamp,
) -> anyhow::Result<()> {
    let (v4, v6) = store.count_live(now)?;
    metrics.active_bans(&per_set(set4, set6.as_deref(), v4 as i64, v6 as i64));
    Ok(())
}

/// Logs fleet trouble (refused messages, remote bans over the rate cap) at most once per
/// [`FleetLog::EVERY`] for each kind, with how many were held back since.
#[derive(Debug, Default)]
struct FleetLog {
    last: BTreeMap<&'static str, Instant>,
    held: BTreeMap<&'static str, u64>,
}

impl FleetLog {
    const EVERY: Duration = Duration::from_secs(60);

    fn note(&mut self, summary: &crate::fleet::FleetSummary, example: Option<&str>) {
        let refused: u64 = summary.refused.values().sum();
        let capped = summary.not_banned.get("rate-limited").copied().unwrap_or(0);
        for (kind, n) in [("refused", refused), ("capped", capped)] {
            if n == 0 {
                continue;
            }
            let held = self.held.entry(kind).or_default();
            *held += n;
            if self
                .last
                .get(kind)
                .is_some_and(|t| t.elapsed() < Self::EVERY)
            {
                continue;
            }
            let line = match kind {
                "refused" => format!(
                    "fleet: {held} message(s) refused (bad signature, malformed or invalid target){}",
                    example.map(|e| format!(", e.g. {e}")).unwrap_or_default()
                ),
                _ => format!("fleet: {held} remote ban(s) over the ban rate cap: not applied"),
            };
            tracing::warn!("{line}");
            eprintln!("portwarden: {line}");
            *held = 0;
            self.last.insert(kind, Instant::now());
        }
    }
}

/// What a checkpoint did, published to the metrics only once its batch committed (a failed
/// checkpoint is retried with the same findings, which must not count twice).
#[derive(Default)]
struct CheckpointEvents {
    /// `(reason label, time of the record that tipped the finding)`.
    added: Vec<(&'static str, Timestamp)>,
    superseded: u64,
    refused: Vec<Refusal>,
}

impl Engine {
    /// Restore the detector from the book's store and (unless dry-run) reconcile the firewall
    /// with the store: the table is recreated and live bans put back if they are gone.
    pub fn open(
        config: Config,
        book: BanBook,
        clock: SharedClock,
    ) -> anyhow::Result<(Engine, Option<ReconcileReport>)> {
        let served = ServedPorts::from_config(&config.detect);
        let served_read_at = Instant::now();
        let detector = match book.store().detector_state()? {
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
            parser: parser_for(&config, clock.now()),
            detector,
            served,
            served_read_at,
            decider: Decider::new(
                config.ban.clone(),
                HostAllowlist::from_config(&config.ban),
                clock.clone(),
            ),
            book,
            clock,
            stats: ParseStats::default(),
            pending: Vec::new(),
            ban_started: HashMap::new(),
            metrics: Arc::new(Metrics::new()),
            source_metrics: Vec::new(),
            current_source: 0,
            fleet_log: FleetLog::default(),
            live_count: None,
            state_saver: None,
            sources: if config.sources.is_empty() {
                let chosen = source::default_config();
                tracing::info!(source = %source::id_of(&chosen), "no [[source]] configured; using this one");
                vec![chosen]
            } else {
                config.sources.clone()
            },
            config,
        };
        engine.source_metrics = engine.resolve_source_metrics();
        engine.load_ban_starts()?;
        let report = engine.reconcile()?;
        Ok((engine, report))
    }

    /// Remember when the recent bans of single sources started, lifted ones included: a
    /// source probing again after its ban took effect means the ban no longer holds.
    /// "Recent" is the detector's slow window: a verdict older than a session is gone anyway.
    fn load_ban_starts(&mut self) -> anyhow::Result<()> {
        let since = self
            .clock
            .now()
            .checked_sub(
                self.config
                    .detect
                    .slow_window
                    .max(self.config.detect.slow_gap),
            )
            .unwrap_or(Timestamp::MIN);
        for ban in self.book.store().bans_since(since)? {
            if ban.dry_run || ban.target.prefix_len() != ban.target.max_prefix_len() {
                continue;
            }
            self.ban_started.insert(ban.target.addr(), ban.since);
        }
        Ok(())
    }

    /// [`Engine::open`] on the state directory's store and the firewall the config describes.
    pub fn open_in(
        config: Config,
        state_dir: &Path,
        clock: SharedClock,
    ) -> anyhow::Result<(Engine, Option<ReconcileReport>)> {
        let book = BanBook::open(&config, state_dir, clock.clone())
            .with_context(|| format!("opening the store in {}", state_dir.display()))?;
        Engine::open(config, book, clock)
    }

    /// Feed `metrics` instead of this engine's own (the daemon keeps one set across reloads,
    /// so that its counters never go back).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Engine {
        self.metrics = metrics;
        self.source_metrics = self.resolve_source_metrics();
        self
    }

    /// The metrics this engine feeds.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    fn resolve_source_metrics(&self) -> Vec<SourceMetrics> {
        self.sources
            .iter()
            .map(|cfg| self.metrics.source(&source::id_of(cfg)))
            .collect()
    }

    /// Records the source at `index` could not hand out (a kmsg ring overrun).
    pub fn count_lost(&self, index: usize, lost: u64) {
        if let Some(m) = self.source_metrics.get(index) {
            m.lost(lost);
        }
    }

    /// Refresh `portwarden_active_bans` with an exact count of the store's live bans: here, or
    /// on the counting thread when there is one.
    fn recount_active_bans(&mut self, now: Timestamp) {
        if let Some(tx) = &self.live_count {
            if tx.send(()).is_ok() {
                return;
            }
            tracing::warn!("the thread counting live bans is gone: counting them here");
            self.live_count = None;
            if let Err(e) = self.book.store().set_wal_autocheckpoint(true) {
                tracing::warn!("cannot have commits copy the write-ahead log back again: {e}");
            }
        }
        if let Err(e) = publish_active_bans(self.book.store(), &self.metrics, &self.sets(), now) {
            tracing::warn!("cannot count the live bans for the metrics: {e:#}");
        }
    }

    /// Count the live bans for `portwarden_active_bans` on a thread of its own with its own
    /// connection to the store in `state_dir` (the daemon's choice). The count reads every live
    /// ban (about 20 ms with 100 000 of them): on the daemon's thread, a ban whose record
    /// arrived meanwhile waited for it. Between two counts the gauge is counted up by the new
    /// bans; a count that raced a commit is put right by the next (every
    /// [`Engine::DAEMON_CHECKPOINT`]). The same thread copies the store's write-ahead log
    /// back into the database after each count, which the engine's own commits then no longer
    /// do (an fsync of 3 to 4 ms, on the ban path). The thread ends when this engine is
    /// dropped.
    pub fn count_live_bans_in_background(&mut self, state_dir: &Path) -> anyhow::Result<()> {
        let store = crate::store::Store::open(state_dir)
            .with_context(|| format!("opening the store in {}", state_dir.display()))?;
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (metrics, clock, sets) = (self.metrics.clone(), self.clock.clone(), self.sets());
        std::thread::Builder::new()
            .name("live-ban-count".into())
            .spawn(move || {
                // A figure for the metrics must not take a core from the bans: nice 10 for
                // this thread alone (Linux sets the niceness per thread; best effort).
                // SAFETY: setpriority reads no memory of ours; `0` names the calling thread.
                let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
                // Requests that queued up while counting are answered by one count.
                while rx.recv().is_ok() {
                    while rx.try_recv().is_ok() {}
                    if let Err(e) = publish_active_bans(&store, &metrics, &sets, clock.now()) {
                        tracing::warn!("cannot count the live bans for the metrics: {e:#}");
                    }
                    if let Err(e) = store.checkpoint_wal() {
                        tracing::warn!("cannot copy the store's write-ahead log back: {e}");
                    }
                }
            })
            .context("starting the thread that counts live bans")?;
        // Only once the thread runs: without it, the log would grow without end.
        if let Err(e) = self.book.store().set_wal_autocheckpoint(false) {
            tracing::warn!("the store's commits keep copying the write-ahead log back: {e}");
        }
        self.live_count = Some(tx);
        Ok(())
    }

    /// Have full checkpoints write the cursors and the detector state on a thread of its own
    /// with its own connection to the store in `state_dir` (the daemon's choice; see
    /// [`saver`]): serialising and writing the state took up to tens of milliseconds of the
    /// daemon's thread every [`Engine::DAEMON_CHECKPOINT`] with many sources. Does nothing if
    /// the thread runs already.
    pub fn save_state_in_background(&mut self, state_dir: &Path) -> anyhow::Result<()> {
        if self.state_saver.is_none() {
            self.state_saver = Some(saver::StateSaver::start(state_dir, self.metrics.clone())?);
        }
        Ok(())
    }

    /// Write what the saving thread holds and stop it: full checkpoints write inline again.
    /// Before the daemon's last checkpoint (at shutdown or a reload), so that no older save
    /// lands after it.
    pub fn save_state_inline(&mut self) {
        if let Some(mut saver) = self.state_saver.take() {
            saver.finish();
        }
    }

    /// The kernel sets of this engine's firewall: IPv4, and IPv6 when there is one.
    fn sets(&self) -> (String, Option<String>) {
        let fw = &self.config.firewall;
        (
            fw.set4.as_str().to_string(),
            fw.set6.as_ref().map(|s| s.as_str().to_string()),
        )
    }

    /// IPv4 and IPv6 figures labelled with the kernel sets they are about.
    fn per_set(&self, v4: i64, v6: i64) -> Vec<(&str, i64)> {
        let fw = &self.config.firewall;
        per_set(
            fw.set4.as_str(),
            fw.set6.as_ref().map(|s| s.as_str()),
            v4,
            v6,
        )
    }

    /// The sources this engine reads (the configured ones, or the one chosen by default).
    pub fn sources(&self) -> &[SourceConfig] {
        &self.sources
    }

    /// Put the table and the live bans back if the kernel lost them. `None` in dry-run.
    pub fn reconcile(&mut self) -> anyhow::Result<Option<ReconcileReport>> {
        let Some(report) = self
            .book
            .reconcile()
            .context("reconciling the firewall with the store")?
        else {
            return Ok(None);
        };
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
        Ok(self.book.table_ready()?)
    }

    /// The stored cursor of a source, if any and readable.
    pub fn stored_cursor(&self, source_id: &str) -> Option<Cursor> {
        let text = self.book.store().cursor(source_id).ok().flatten()?;
        match Cursor::from_store(&text) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(source = source_id, "{e}; reading from the start");
                None
            }
        }
    }

    /// Parse and detect one record. A finding is queued for the next [`Engine::checkpoint`].
    ///
    /// A probe from a source this engine knows as banned, dated more than
    /// [`BAN_GRACE`] after its ban started, means the kernel is no longer dropping it: the
    /// operator unbanned it (`portwarden unban`, from another process) or deleted the element
    /// by hand. Its verdict is cleared, so the evidence it keeps bringing reaches a new
    /// finding, and decide gives it a new ban (rule 2 there).
    pub fn feed(&mut self, record: Record<'_>) -> Option<&Finding> {
        let parsed = self.parser.parse_event(record);
        if let Some(m) = self.source_metrics.get(self.current_source) {
            m.record(parsed.as_ref().map(|_| ()).map_err(|r| *r));
        }
        let (probe, kernel_ban) = match parsed {
            Ok(Parsed::Probe(p)) => (p, false),
            Ok(Parsed::KernelBan(p)) => (p, true),
            Err(r) => {
                self.stats.count(&Err(r));
                return None;
            }
        };
        self.stats.count(&Ok(probe));
        if let Some(m) = self.source_metrics.get(self.current_source) {
            m.probe_lag(self.clock.now().duration_since(probe.time).as_secs_f64());
        }
        if let Some(&since) = self.ban_started.get(&probe.src)
            && since
                .checked_add(BAN_GRACE)
                .is_ok_and(|held_from| probe.time > held_from)
        {
            tracing::info!(source = %probe.src, banned_at = %since, "probe from a banned source after its ban took effect: the ban was lifted; judging it afresh");
            self.ban_started.remove(&probe.src);
            self.detector.clear_verdict(probe.src);
        }
        self.refresh_served_for(&probe);
        let finding = if kernel_ban {
            // The kernel banned it in the packet path: the ban book records it (reason,
            // evidence, offence count) and escalates a repeat offender in the ban set.
            self.detector.kernel_ban(&probe)?
        } else {
            self.detector.observe(&probe)?
        };
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

    /// [`Engine::feed`] a record of the source at `index` in [`Engine::sources`] (the index
    /// only labels the metrics).
    pub fn feed_from(&mut self, index: usize, record: Record<'_>) -> Option<&Finding> {
        self.current_source = index;
        self.feed(record)
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

    /// The sources of the findings waiting for a checkpoint, each once, in arrival order.
    pub fn pending_sources(&self) -> Vec<std::net::IpAddr> {
        let mut out = Vec::new();
        for f in &self.pending {
            if !out.contains(&f.source) {
                out.push(f.source);
            }
        }
        out
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
    /// its ban is found already there. With [`Engine::save_state_in_background`], a full
    /// checkpoint commits the decisions only and then hands cursors and state to the saving
    /// thread.
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
                self.metrics.checkpoint_failed();
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
        let stale_after = self.config.ban.duration.max(self.config.detect.window);
        let mut batch = self.book.batch()?;
        let now = batch.now();
        let mut retry_later = Vec::new();
        let mut banned_now = Vec::new();
        let mut events = CheckpointEvents::default();
        for finding in findings {
            summary.findings += 1;
            if now.duration_since(finding.detected_at) > stale_after {
                tracing::info!(source = %finding.source, detected_at = %finding.detected_at, "old finding: logged, not banned");
                *summary.not_banned.entry(NotBanned::Stale).or_default() += 1;
                events.refused.push(Refusal::Stale);
                continue;
            }
            if !batch.can_ban(&finding.source.into()) {
                // A borrowed IPv4-only table (the seed lab's `ip filter blocked_ips`): the
                // kernel has nowhere to put this ban, and trying would fail the whole batch.
                tracing::warn!(source = %finding.source, "IPv6 scanner, but the firewall has no IPv6 set (firewall.set6): not banned");
                *summary
                    .not_banned
                    .entry(NotBanned::NoSetForFamily)
                    .or_default() += 1;
                events.refused.push(Refusal::NoSetForFamily);
                continue;
            }
            let decision = self.decider.decide(batch.view(), finding)?;
            batch.record(finding, &decision)?;
            let not_banned = match &decision {
                BanDecision::Ban {
                    ban,
                    prefix,
                    supersedes,
                    ..
                } => {
                    summary.banned.push(ban.target.to_string());
                    banned_now.push((finding.source, ban.since));
                    let reason = if *prefix { "prefix" } else { "scan" };
                    events.added.push((reason, finding.detected_at));
                    events.superseded += supersedes.len() as u64;
                    None
                }
                BanDecision::DryRun { ban, .. } => {
                    summary.banned.push(format!("{} (dry run)", ban.target));
                    events.added.push(("dry_run", finding.detected_at));
                    None
                }
                BanDecision::Allowlisted { .. } => Some(NotBanned::Allowlisted),
                BanDecision::AlreadyBanned { .. } => Some(NotBanned::AlreadyBanned),
                BanDecision::RateLimited { source, .. } => {
                    retry_later.push(*source);
                    Some(NotBanned::RateLimited)
                }
            };
            if let Some(why) = not_banned {
                *summary.not_banned.entry(why).or_default() += 1;
                events.refused.push(why.refusal());
            }
        }
        let expired = batch.expire()?;
        summary.expired += expired;

        if full {
            let horizon = now
                .checked_sub(
                    self.config
                        .detect
                        .slow_window
                        .max(self.config.detect.slow_gap),
                )
                .unwrap_or(Timestamp::MIN);
            self.ban_started.retain(|_, since| *since >= horizon);
            if self.state_saver.is_none() {
                let detector_state = serde_json::to_string(&self.detector.snapshot())
                    .context("serialising the detector state")?;
                for (id, cursor) in cursors {
                    if let Some(c) = cursor {
                        batch.set_cursor(id, &c.to_store())?;
                    }
                }
                batch.set_detector_state(&detector_state)?;
            }
        }
        // Counts since the last checkpoint: a daemon's summaries do not accumulate.
        summary.parsed += self.stats.parsed;
        for (k, v) in &self.stats.rejected {
            *summary.rejected.entry(*k).or_default() += v;
        }
        batch.record_run(&RunRecord {
            mode: mode.to_string(),
            started,
            finished: now,
            records: summary.records,
            probes: summary.parsed,
            findings: summary.findings,
            bans: summary.banned.len() as u64,
            note: summary.to_string(),
        })?;
        let applied = batch
            .commit()
            .context("applying the checkpoint (kernel, then store)")?;
        // A source over the ban-rate cap gets another chance at its next new probe.
        for source in retry_later {
            self.detector.clear_verdict(source);
        }
        if full && let Some(saver) = &self.state_saver {
            // Every finding up to these cursors is decided and its ban committed: the state
            // and cursors of this moment go to the saving thread, together.
            saver.submit(saver::SaveJob {
                state: self.detector.snapshot(),
                cursors: cursors
                    .iter()
                    .filter_map(|(id, c)| Some((id.clone(), c.as_ref()?.to_store())))
                    .collect(),
                at: now,
            });
        }
        let new_v4 = banned_now.iter().filter(|(s, _)| s.is_ipv4()).count() as i64;
        let new_v6 = banned_now.len() as i64 - new_v4;
        self.ban_started.extend(banned_now);

        let committed = self.clock.now();
        for finding in findings {
            self.metrics.finding(finding);
        }
        for (reason, record_time) in &events.added {
            let latency = committed.duration_since(*record_time).as_secs_f64();
            self.metrics.ban_added(reason, Some(latency));
        }
        self.metrics.bans_lifted("superseded", events.superseded);
        self.metrics.bans_expired(expired as u64);
        for why in events.refused {
            self.metrics.refused(why, 1);
        }
        self.metrics.applied(applied);
        self.metrics.checkpoint_committed(committed);
        if full || expired > 0 || events.superseded > 0 {
            // Counting live bans reads the store (20 ms with 100 000 of them): on full
            // checkpoints and when bans went away.
            self.recount_active_bans(committed);
        } else if new_v4 + new_v6 > 0 {
            // New bans are counted in; the next full checkpoint (every
            // `DAEMON_CHECKPOINT`) sets the exact figure again (a re-ban is one ban, not two).
            self.metrics.add_active_bans(&self.per_set(new_v4, new_v6));
        }
        Ok(())
    }

    /// The `[fleet]` section, if any.
    pub fn fleet_config(&self) -> Option<&crate::fleet::FleetConfig> {
        self.config.fleet.as_ref()
    }

    /// Apply stream entries read from the fleet (see [`crate::fleet`]): each is verified, a
    /// ban goes through [`Decider::decide_remote`] and the ban book, an unban lifts; the last
    /// entry's ID is saved as the fleet cursor in the same batch. Without `[fleet]` nothing
    /// happens.
    pub fn apply_fleet(
        &mut self,
        entries: &[crate::fleet::Entry],
    ) -> anyhow::Result<crate::fleet::FleetSummary> {
        use crate::decide::{RemoteBan, RemoteDecision};
        use crate::fleet::{FleetMessage, FleetSummary, Kind};
        let mut summary = FleetSummary::default();
        let (Some(fc), Some(last)) = (self.config.fleet.clone(), entries.last()) else {
            return Ok(summary);
        };
        let mut example = None;
        let mut batch = self.book.batch()?;
        let now = batch.now();
        for e in entries {
            summary.messages += 1;
            let m = match FleetMessage::from_fields(&fc.key, &e.fields) {
                Ok(m) => m,
                Err(why) => {
                    *summary.refused.entry(why.counter().into()).or_default() += 1;
                    example.get_or_insert_with(|| format!("entry {}: {why}", e.id));
                    continue;
                }
            };
            if m.origin == fc.host_id {
                summary.own += 1;
                continue;
            }
            batch
                .store_tx()
                .saw_peer(&m.origin, e.added_at().unwrap_or(now))?;
            if m.kind == Kind::Unban {
                if batch.remote_unban(m.target)? > 0 {
                    summary.unbanned.push(m.target.to_string());
                }
                continue;
            }
            let not_banned = if !batch.can_ban(&m.target) {
                "no IPv6 set"
            } else {
                let remote = RemoteBan {
                    target: m.target,
                    until: m.until,
                    reason: m.reason.clone(),
                    origin: m.origin.clone(),
                };
                match self.decider.decide_remote(batch.view(), &remote)? {
                    RemoteDecision::Ban { ban, supersedes } => {
                        for t in supersedes {
                            batch.remote_unban(t)?;
                        }
                        batch.remote_ban(&ban, &m.origin)?;
                        summary.banned.push(ban.target.to_string());
                        continue;
                    }
                    RemoteDecision::DryRun { ban } => {
                        batch.remote_ban(&ban, &m.origin)?;
                        "dry run"
                    }
                    RemoteDecision::Allowlisted { .. } => "allowlisted",
                    RemoteDecision::Expired => "expired",
                    RemoteDecision::AlreadyBanned { .. } => "already banned",
                    RemoteDecision::RateLimited => "rate-limited",
                }
            };
            *summary.not_banned.entry(not_banned.into()).or_default() += 1;
        }
        for (k, n) in &summary.refused {
            batch
                .store_tx()
                .add_fleet_count(&format!("refused_{k}"), *n, now)?;
        }
        if let Some(n) = summary.not_banned.get("rate-limited") {
            batch.store_tx().add_fleet_count("rate_limited", *n, now)?;
        }
        batch.set_cursor(&crate::fleet::cursor_name(&fc), &last.id)?;
        batch.commit().context("applying the fleet's bans")?;
        self.metrics.fleet(&summary);
        let now = self.clock.now();
        let lag = last
            .added_at()
            .map_or(0.0, |t| now.duration_since(t).as_secs_f64());
        let hour_ago = now
            .checked_sub(SignedDuration::from_hours(1))
            .unwrap_or(Timestamp::MIN);
        let peers = self
            .book
            .store()
            .fleet_peers_since(hour_ago)
            .map_or(0, |p| p.len() as u64);
        self.metrics.fleet_applied(lag, peers);
        self.fleet_log.note(&summary, example.as_deref());
        Ok(summary)
    }

    /// The fleet's last applied stream ID (`0`, the stream's start, for a host that never
    /// read it: a late joiner replays the retained stream).
    pub fn fleet_cursor(&self) -> String {
        self.config
            .fleet
            .as_ref()
            .and_then(|fc| {
                self.book
                    .store()
                    .cursor(&crate::fleet::cursor_name(fc))
                    .ok()
                    .flatten()
            })
            .unwrap_or_else(|| "0".to_string())
    }

    /// Cron mode's share of the fleet: read and apply what arrived since the cursor.
    fn fleet_consume(
        &mut self,
        link: &mut crate::fleet::Link,
    ) -> anyhow::Result<crate::fleet::FleetSummary> {
        let mut total = crate::fleet::FleetSummary::default();
        loop {
            let entries = link.read(&self.fleet_cursor(), crate::fleet::READ_COUNT, None)?;
            if entries.is_empty() {
                return Ok(total);
            }
            let s = self.apply_fleet(&entries)?;
            total.messages += s.messages;
            total.own += s.own;
            total.banned.extend(s.banned);
            total.unbanned.extend(s.unbanned);
            for (k, n) in s.not_banned {
                *total.not_banned.entry(k).or_default() += n;
            }
            for (k, n) in s.refused {
                *total.refused.entry(k).or_default() += n;
            }
        }
    }

    /// Cron mode: read what is new on every source, decide, ban, save; with `[fleet]`, first
    /// apply the peers' bans that arrived since the last pass, and last publish the outbox.
    /// Redis being unreachable is reported in the summary and changes nothing else.
    pub fn pass(&mut self) -> anyhow::Result<PassSummary> {
        let mut fleet_link = None;
        let mut fleet = None;
        if let Some(fc) = self.config.fleet.clone() {
            let mut fs = crate::fleet::FleetSummary::default();
            match crate::fleet::Link::connect(&fc, Duration::from_secs(5)) {
                Ok(mut link) => {
                    let store = self.book.store();
                    let _ = store.set_fleet_state(
                        "last_pass_connected",
                        &self.clock.now().to_string(),
                        self.clock.now(),
                    );
                    if fc.consume {
                        match self.fleet_consume(&mut link) {
                            Ok(s) => fs = s,
                            Err(e) => fs.error = Some(format!("{e:#}")),
                        }
                    }
                    fleet_link = Some(link);
                }
                Err(e) => {
                    tracing::warn!("fleet: cannot reach redis: {e}; local bans wait in the outbox");
                    let _ = self.book.store().set_fleet_state(
                        "last_error",
                        &e.to_string(),
                        self.clock.now(),
                    );
                    fs.error = Some(e.to_string());
                }
            }
            fleet = Some(fs);
        }
        let mut summary = self.local_pass()?;
        let publish = self.config.fleet.as_ref().is_some_and(|fc| fc.publish);
        if let (true, Some(fs), Some(link)) = (publish, fleet.as_mut(), fleet_link.as_mut()) {
            match crate::fleet::publish_outbox(self.book.store(), link) {
                Ok(n) => {
                    fs.published = n as u64;
                    self.metrics.fleet(&crate::fleet::FleetSummary {
                        published: fs.published,
                        ..Default::default()
                    });
                }
                Err(e) => fs.error = Some(e.to_string()),
            }
        }
        summary.fleet = fleet;
        Ok(summary)
    }

    fn local_pass(&mut self) -> anyhow::Result<PassSummary> {
        let started = self.clock.now();
        if let Err(e) = self.sync_fastpath() {
            tracing::error!("{e:#}");
        }
        let mut summary = PassSummary::default();
        let mut cursors = Vec::new();
        let source_configs = self.sources.clone();
        for (index, cfg) in source_configs.iter().enumerate() {
            self.current_source = index;
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
                    self.count_lost(index, stats.lost);
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
        self.parser = parser_for(&self.config, self.clock.now());
    }

    /// Mirror the allowlist (configured CIDRs, and with `allowlist_host` loopback, this
    /// host's addresses, gateways and resolvers, read afresh) and the configured served ports
    /// into the kernel fast path's sets, through the ban book. Cron calls it every pass, the
    /// daemon at start, on reload and every [`Engine::FASTPATH_SYNC`].
    pub fn sync_fastpath(&mut self) -> anyhow::Result<()> {
        if FastpathRules::from_config(&self.config).is_none() {
            return Ok(());
        }
        let allow: Vec<IpNet> = HostAllowlist::from_config(&self.config.ban)
            .entries
            .iter()
            .map(|(n, _)| *n)
            .collect();
        self.book
            .sync_fastpath(&allow, &self.config.detect.served_ports)
            .context("writing the fast path's allowlist and served ports to the kernel")
    }

    /// How often the daemon mirrors the allowlist into the fast path's sets again (a new
    /// address, gateway or resolver of this host).
    pub const FASTPATH_SYNC: Duration = Duration::from_secs(30);
}

/// The parser for `config`: its prefixes, and the fast path's ban records when it is on.
fn parser_for(config: &Config, now: Timestamp) -> Parser {
    let fast = FastpathRules::from_config(config).map(|_| &config.fastpath.log_prefix);
    Parser::new(&config.log, ParseContext::at(now))
        .with_forwarded(config.detect.forwarded)
        .with_kernel_bans(fast)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{Clock, FakeClock};
    use crate::enforce::fake::{FakeFirewall, SharedFake, shared};
    use crate::enforce::{EnforceError, Firewall};
    use crate::record::{FindingKind, SourceKind};
    use crate::store::Store;

    /// The instant the tests' clock starts at, and their records are stamped with.
    const NOW: &str = "2026-11-24T23:00:00Z";

    /// Kernel-tagged LOG lines of a 12-port SYN scan from `src`, stamped now.
    fn scan(src: &str) -> Vec<String> {
        scan_at(
            src,
            NOW.parse().unwrap(),
            &[21, 22, 23, 25, 53, 80, 110, 135, 139, 443, 445, 3389],
        )
    }

    /// LOG lines of a SYN scan of `ports` from `src`, stamped `at`.
    fn scan_at(src: &str, at: Timestamp, ports: &[u16]) -> Vec<String> {
        let stamp = at.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00");
        ports
            .iter()
            .map(|port| {
                format!(
                    "{stamp} vm kernel: portwarden: IN=eth0 OUT= MAC= SRC={src} DST=192.0.2.1 LEN=44 \
                     TOS=0x00 PREC=0x00 TTL=43 ID=1 PROTO=TCP SPT=40000 DPT={port} WINDOW=1024 RES=0x00 SYN URGP=0"
                )
            })
            .collect()
    }

    fn engine(
        dir: &Path,
        fw: &SharedFake,
        ban: impl FnOnce(&mut crate::config::BanConfig),
    ) -> Engine {
        let clock = Arc::new(FakeClock::new(NOW.parse().unwrap()));
        engine_on(dir, fw, &clock, ban)
    }

    /// An engine (a process) over the store in `dir`, the firewall `fw`, on `clock`.
    fn engine_on(
        dir: &Path,
        fw: &SharedFake,
        clock: &Arc<FakeClock>,
        ban: impl FnOnce(&mut crate::config::BanConfig),
    ) -> Engine {
        let mut config = Config::default();
        config.ban.allowlist_host = false;
        config.detect.served_ports_from_proc = false;
        config.sources.clear();
        ban(&mut config.ban);
        let clock: SharedClock = clock.clone();
        let book = BanBook::new(
            Store::open(dir).unwrap(),
            Box::new(fw.clone()),
            &config.ban,
            clock.clone(),
        );
        Engine::open(config, book, clock).unwrap().0
    }

    fn shared_fake() -> SharedFake {
        shared(FakeFirewall::new())
    }

    fn feed(engine: &mut Engine, lines: &[String]) {
        for l in lines {
            engine.feed(Record {
                kind: SourceKind::File,
                bytes: l.as_bytes(),
            });
        }
    }

    /// The kernel fast path's record of its ban (the 6th new port, after five the LOG rule
    /// logged) becomes a `kernel_fastpath` finding, banned by the book with its reason; the
    /// same record without the fast path configured is no probe at all.
    #[test]
    fn a_kernel_ban_record_is_banned_through_the_book() {
        let dir = tempfile::tempdir().unwrap();
        let fw = shared_fake();
        let mut engine = engine(dir.path(), &fw, |_| {});
        let mut lines = scan_at("198.51.100.9", NOW.parse().unwrap(), &[21, 22, 23, 25, 53]);
        let ban_record = scan_at("198.51.100.9", NOW.parse().unwrap(), &[80])[0]
            .replace("portwarden: ", "portwarden-fastban: ");
        feed(&mut engine, &lines);
        assert!(!engine.has_pending(), "five ports are below the threshold");
        lines = vec![ban_record.clone()];
        feed(&mut engine, &lines);
        assert_eq!(engine.pending.len(), 1);
        assert_eq!(engine.pending[0].kind, FindingKind::KernelFastpath);
        assert_eq!(engine.pending[0].evidence.failures, 6);
        checkpoint(&mut engine);
        let live = engine.book.store().live_bans(engine.clock.now()).unwrap();
        assert_eq!(live.len(), 1);
        assert!(
            live[0]
                .reason
                .starts_with("kernel_fastpath SYN scan from 198.51.100.9"),
            "{}",
            live[0].reason
        );
        assert!(
            fw.lock()
                .unwrap()
                .list()
                .unwrap()
                .iter()
                .any(|e| e.target == "198.51.100.9/32".parse::<IpNet>().unwrap())
        );

        // Fast path off: the prefix is not ours, the record counts for nothing.
        let dir2 = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.fastpath.enabled = false;
        let mut off = self::engine(dir2.path(), &shared_fake(), |_| {});
        off.parser = parser_for(&config, NOW.parse().unwrap());
        feed(&mut off, &[ban_record]);
        assert!(!off.has_pending());
        assert_eq!(off.stats.parsed, 0);
    }

    #[test]
    fn a_refused_ban_keeps_its_finding_for_the_next_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let fw = shared_fake();
        let mut engine = engine(dir.path(), &fw, |_| {});
        feed(&mut engine, &scan("198.51.100.7"));
        assert!(engine.has_pending());

        fw.lock()
            .unwrap()
            .fail_next(EnforceError::Nft("Error: Could not process rule".into()));
        let mut summary = PassSummary::default();
        let err = engine
            .checkpoint("test", engine.clock.now(), &[], true, &mut summary)
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("Could not process rule"),
            "{err:#}"
        );
        assert!(engine.has_pending(), "the finding must survive the failure");
        assert!(
            engine
                .book
                .store()
                .live_bans(engine.clock.now())
                .unwrap()
                .is_empty(),
            "nothing committed"
        );
        assert_eq!(
            summary.findings, 0,
            "a failed attempt leaves the summary alone"
        );

        engine
            .checkpoint("test", engine.clock.now(), &[], true, &mut summary)
            .unwrap();
        assert!(!engine.has_pending());
        assert_eq!(summary.banned, vec!["198.51.100.7/32".to_string()]);
        assert!(kernel_has(&fw, "198.51.100.7/32"));
        assert_eq!(
            engine
                .book
                .store()
                .live_bans(engine.clock.now())
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn a_rate_limited_scanner_is_reported_again_at_its_next_probe() {
        let dir = tempfile::tempdir().unwrap();
        let fw = shared_fake();
        let mut engine = engine(dir.path(), &fw, |b| b.max_bans_per_minute = 1);
        feed(&mut engine, &scan("198.51.100.7"));
        let second = scan("203.0.113.9");
        feed(&mut engine, &second[..8]);
        let mut summary = PassSummary::default();
        engine
            .checkpoint("test", engine.clock.now(), &[], true, &mut summary)
            .unwrap();
        assert_eq!(summary.banned.len(), 1, "{summary}");
        assert_eq!(
            summary.not_banned.get(&NotBanned::RateLimited),
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
        assert_eq!(RunLock::holder(&state), None);
        let first = RunLock::try_acquire(&state, "once").unwrap();
        assert!(first.is_some());
        assert_eq!(
            RunLock::holder(&state),
            Some(format!("{} once", std::process::id()))
        );
        let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "bans and evidence are root's business only");
        assert!(
            RunLock::try_acquire(&state, "daemon").unwrap().is_none(),
            "a second run must wait"
        );
        drop(first);
        assert_eq!(RunLock::holder(&state), None);
        assert!(RunLock::try_acquire(&state, "once").unwrap().is_some());
    }
    /// A state directory, a kernel and a clock: what one host's engines share.
    fn host() -> (tempfile::TempDir, SharedFake, Arc<FakeClock>) {
        (
            tempfile::tempdir().unwrap(),
            shared_fake(),
            Arc::new(FakeClock::new(NOW.parse().unwrap())),
        )
    }

    fn kernel_has(fw: &SharedFake, target: &str) -> bool {
        fw.lock().unwrap().contains(&target.parse().unwrap())
    }

    /// What `portwarden unban` does from another process while this engine runs.
    fn unban_elsewhere(dir: &Path, fw: &SharedFake, clock: &Arc<FakeClock>, target: &str) {
        let mut book = BanBook::new(
            Store::open(dir).unwrap(),
            Box::new(fw.clone()),
            &crate::config::BanConfig::default(),
            clock.clone(),
        );
        let out = book
            .unban(crate::config::parse_net(target).unwrap())
            .unwrap();
        assert_eq!(out.lifted_in_store, 1);
    }

    fn checkpoint(engine: &mut Engine) -> PassSummary {
        let mut summary = PassSummary::default();
        let now = engine.clock.now();
        engine
            .checkpoint("test", now, &[], true, &mut summary)
            .unwrap();
        summary
    }

    #[test]
    fn an_unbanned_scanner_that_scans_again_is_banned_again() {
        let (dir, fw, clock) = host();
        let mut engine = engine_on(dir.path(), &fw, &clock, |_| {});
        feed(&mut engine, &scan("198.51.100.7"));
        assert_eq!(checkpoint(&mut engine).banned, ["198.51.100.7/32"]);

        // A minute later the operator unbans it; another minute later it scans 100 new ports.
        clock.advance(SignedDuration::from_mins(1));
        unban_elsewhere(dir.path(), &fw, &clock, "198.51.100.7");
        assert!(!kernel_has(&fw, "198.51.100.7/32"));
        clock.advance(SignedDuration::from_mins(1));
        let ports: Vec<u16> = (2000..2100).collect();
        feed(&mut engine, &scan_at("198.51.100.7", clock.now(), &ports));
        assert!(
            engine.has_pending(),
            "new evidence must reach a new verdict"
        );
        let summary = checkpoint(&mut engine);
        assert_eq!(summary.banned, ["198.51.100.7/32"], "{summary}");
        assert!(kernel_has(&fw, "198.51.100.7/32"));
        let live = engine.book.store().live_bans(clock.now()).unwrap();
        assert_eq!(live.len(), 1);
        assert!(live[0].reason.contains("offence 2"), "{}", live[0].reason);
    }

    #[test]
    fn an_element_deleted_by_hand_is_banned_again_on_new_evidence() {
        let (dir, fw, clock) = host();
        let mut engine = engine_on(dir.path(), &fw, &clock, |_| {});
        feed(&mut engine, &scan("198.51.100.7"));
        checkpoint(&mut engine);
        // `nft delete element`: the kernel forgets it, the store still says live.
        fw.lock()
            .unwrap()
            .unban(&["198.51.100.7/32".parse().unwrap()])
            .unwrap();
        clock.advance(SignedDuration::from_mins(2));
        let ports: Vec<u16> = (2000..2010).collect();
        feed(&mut engine, &scan_at("198.51.100.7", clock.now(), &ports));
        let summary = checkpoint(&mut engine);
        assert_eq!(summary.banned, ["198.51.100.7/32"], "{summary}");
        assert!(kernel_has(&fw, "198.51.100.7/32"));
        assert_eq!(
            engine.book.store().live_bans(clock.now()).unwrap().len(),
            1,
            "the stale store ban was replaced, not doubled"
        );
    }

    #[test]
    fn cron_mode_bans_again_after_an_unban_between_passes() {
        let (dir, fw, clock) = host();
        let mut pass1 = engine_on(dir.path(), &fw, &clock, |_| {});
        feed(&mut pass1, &scan("198.51.100.7"));
        checkpoint(&mut pass1);
        drop(pass1);
        clock.advance(SignedDuration::from_mins(1));
        unban_elsewhere(dir.path(), &fw, &clock, "198.51.100.7");
        clock.advance(SignedDuration::from_mins(1));
        // The next pass continues the detector from the store, verdict included.
        let mut pass2 = engine_on(dir.path(), &fw, &clock, |_| {});
        let ports: Vec<u16> = (2000..2010).collect();
        feed(&mut pass2, &scan_at("198.51.100.7", clock.now(), &ports));
        let summary = checkpoint(&mut pass2);
        assert_eq!(summary.banned, ["198.51.100.7/32"], "{summary}");
    }

    #[test]
    fn records_that_earned_a_ban_do_not_ban_again_when_read_again() {
        let (dir, fw, clock) = host();
        let mut engine = engine_on(dir.path(), &fw, &clock, |_| {});
        let lines = scan("198.51.100.7");
        feed(&mut engine, &lines[..8]);
        checkpoint(&mut engine);
        // The rest of the same scan (in flight, or re-read by a pass), dated before the ban.
        clock.advance(SignedDuration::from_mins(5));
        feed(&mut engine, &lines[8..]);
        let summary = checkpoint(&mut engine);
        assert!(summary.banned.is_empty(), "{summary}");
    }

    /// The value of one sample of the engine's exposition.
    fn sample(engine: &Engine, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let text = engine.metrics().encode().unwrap();
        text.lines()
            .filter_map(crate::metrics::parse_sample)
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
            })
            .map(|s| s.value)
    }

    /// Waits (up to 10 s) for `portwarden_active_bans{set="banned4"}` to read `want`.
    fn wait_for_active_bans(engine: &Engine, want: f64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = None;
        while Instant::now() < deadline {
            seen = sample(engine, "portwarden_active_bans", &[("set", "banned4")]);
            if seen == Some(want) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("active bans: {seen:?}, expected {want}");
    }

    #[test]
    fn live_bans_counted_in_the_background_follow_the_store() {
        let (dir, fw, clock) = host();
        let mut engine = engine_on(dir.path(), &fw, &clock, |_| {});
        engine.count_live_bans_in_background(dir.path()).unwrap();
        feed(&mut engine, &scan("198.51.100.7"));
        checkpoint(&mut engine);
        wait_for_active_bans(&engine, 1.0);
        feed(&mut engine, &scan("198.51.100.8"));
        checkpoint(&mut engine);
        wait_for_active_bans(&engine, 2.0);
        // Lifted by another process: the next full checkpoint's count, on the counting
        // thread's own connection, sees it.
        clock.advance(SignedDuration::from_mins(1));
        unban_elsewhere(dir.path(), &fw, &clock, "198.51.100.7");
        checkpoint(&mut engine);
        wait_for_active_bans(&engine, 1.0);
        // Expired: counted out without a full checkpoint.
        clock.advance(SignedDuration::from_hours(2));
        let mut summary = PassSummary::default();
        let now = engine.clock.now();
        engine
            .checkpoint("test", now, &[], false, &mut summary)
            .unwrap();
        assert_eq!(summary.expired, 1);
        wait_for_active_bans(&engine, 0.0);
    }

    /// The daemon's full checkpoints hand the cursors and the detector state to the saving
    /// thread: the engine's own commit writes neither, they reach the store together, and
    /// stopping the thread writes what it holds before the last, inline save.
    #[test]
    fn full_checkpoints_save_state_and_cursors_on_the_saving_thread() {
        let (dir, fw, clock) = host();
        let mut engine = engine_on(dir.path(), &fw, &clock, |_| {});
        engine.save_state_in_background(dir.path()).unwrap();
        let kmsg = |seq| Cursor::Kmsg { seq, boot_id: None };
        let full = |engine: &mut Engine, seq: u64| {
            let mut summary = PassSummary::default();
            let now = engine.clock.now();
            let cursors = [("kmsg".to_string(), Some(kmsg(seq)))];
            engine
                .checkpoint("test", now, &cursors, true, &mut summary)
                .unwrap();
        };
        let saved = |dir: &Path| {
            let store = Store::open(dir).unwrap();
            let state = store.detector_state().unwrap().map(|text| {
                serde_json::from_str::<DetectorState>(&text)
                    .unwrap()
                    .sources()
            });
            (store.cursor("kmsg").unwrap(), state)
        };
        feed(&mut engine, &scan("198.51.100.7"));
        full(&mut engine, 12);
        assert!(kernel_has(&fw, "198.51.100.7/32"), "the ban is not delayed");
        let saver = engine.state_saver.as_ref().unwrap();
        assert_eq!(saver.wait_for(1, Duration::from_secs(10)), (1, 0));
        assert_eq!(saved(dir.path()), (Some(kmsg(12).to_store()), Some(1)));

        feed(&mut engine, &scan("198.51.100.8"));
        full(&mut engine, 24);
        // Stopped before the last save: what it held is written first, then the last one.
        engine.save_state_inline();
        assert_eq!(saved(dir.path()), (Some(kmsg(24).to_store()), Some(2)));
        feed(&mut engine, &scan("198.51.100.9"));
        full(&mut engine, 36);
        assert!(engine.state_saver.is_none());
        assert_eq!(saved(dir.path()), (Some(kmsg(36).to_store()), Some(3)));
    }

    /// What a full checkpoint holds the daemon's thread for at the detector's bound, written
    /// inline and handed to the saving thread, printed (a measurement, not asserted):
    /// `cargo test --release --lib engine::tests::full_checkpoint_at_the_bound -- --ignored
    /// --nocapture`.
    #[test]
    #[ignore]
    fn full_checkpoint_at_the_bound() {
        for background in [false, true, false, true] {
            let (dir, fw, clock) = host();
            let mut engine = engine_on(dir.path(), &fw, &clock, |_| {});
            if background {
                engine.save_state_in_background(dir.path()).unwrap();
            }
            let n = u32::try_from(engine.config.detect.max_sources).unwrap();
            for s in 0..n {
                let src = std::net::Ipv4Addr::from(0x0a00_0000 + s).to_string();
                feed(
                    &mut engine,
                    &scan_at(&src, NOW.parse().unwrap(), &[1, 2, 3, 4]),
                );
            }
            let mut times = Vec::new();
            for _ in 0..3 {
                let t = Instant::now();
                let mut summary = PassSummary::default();
                let now = engine.clock.now();
                engine
                    .checkpoint("test", now, &[], true, &mut summary)
                    .unwrap();
                times.push(t.elapsed());
                if let Some(saver) = &engine.state_saver {
                    saver.wait_for(times.len() as u64, Duration::from_secs(60));
                }
            }
            println!(
                "{n} sources, state saved {}: full checkpoints took {times:?} of the engine's thread",
                if background {
                    "in the background"
                } else {
                    "inline"
                }
            );
        }
    }

    #[test]
    fn a_checkpoint_feeds_the_metrics_once_it_committed() {
        let (dir, fw, clock) = host();
        let mut engine = engine_on(dir.path(), &fw, &clock, |_| {});
        let mut lines = scan("198.51.100.7");
        lines.push("not a LOG record".to_string());
        for l in &lines {
            engine.feed_from(
                0,
                Record {
                    kind: SourceKind::File,
                    bytes: l.as_bytes(),
                },
            );
        }
        // The firewall refuses once: nothing may be counted as found or banned yet.
        fw.lock()
            .unwrap()
            .fail_next(EnforceError::Nft("Error: Could not process rule".into()));
        clock.advance(SignedDuration::from_millis(40));
        let mut summary = PassSummary::default();
        let now = engine.clock.now();
        assert!(
            engine
                .checkpoint("test", now, &[], true, &mut summary)
                .is_err()
        );
        assert_eq!(
            sample(&engine, "portwarden_checkpoint_failures_total", &[]),
            Some(1.0)
        );
        assert_eq!(sample(&engine, "portwarden_findings_total", &[]), None);
        checkpoint(&mut engine);

        let id = crate::source::id_of(&engine.sources()[0]);
        let src = [("source", id.as_str())];
        assert_eq!(
            sample(&engine, "portwarden_records_total", &src),
            Some(13.0)
        );
        assert_eq!(sample(&engine, "portwarden_probes_total", &src), Some(12.0));
        assert_eq!(
            sample(
                &engine,
                "portwarden_records_rejected_total",
                &[("source", id.as_str()), ("reason", "bad_header")]
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &engine,
                "portwarden_findings_total",
                &[("rule", "fast_scan"), ("scan_type", "SYN")]
            ),
            Some(1.0),
            "one finding, counted once despite the retry"
        );
        assert_eq!(
            sample(
                &engine,
                "portwarden_bans_added_total",
                &[("reason", "scan")]
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(&engine, "portwarden_active_bans", &[("set", "banned4")]),
            Some(1.0)
        );
        assert_eq!(
            sample(&engine, "portwarden_active_bans", &[("set", "banned6")]),
            Some(0.0)
        );
        assert_eq!(
            sample(&engine, "portwarden_ban_latency_seconds_count", &[]),
            Some(1.0)
        );
        // The records were stamped NOW and the ban committed 40 ms later.
        assert_eq!(
            sample(
                &engine,
                "portwarden_ban_latency_seconds_bucket",
                &[("le", "0.032")]
            ),
            Some(0.0)
        );
        assert_eq!(
            sample(
                &engine,
                "portwarden_ban_latency_seconds_bucket",
                &[("le", "0.064")]
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &engine,
                "portwarden_firewall_elements_total",
                &[("change", "added")]
            ),
            Some(1.0)
        );

        // Over the ban-rate cap: refused, by reason.
        let dir = tempfile::tempdir().unwrap();
        let mut capped = engine_on(dir.path(), &shared_fake(), &clock, |b| {
            b.max_bans_per_minute = 1
        });
        feed(
            &mut capped,
            &scan_at("198.51.100.7", clock.now(), &[21, 22, 23, 25, 53, 80]),
        );
        feed(
            &mut capped,
            &scan_at("203.0.113.9", clock.now(), &[21, 22, 23, 25, 53, 80]),
        );
        checkpoint(&mut capped);
        assert_eq!(
            sample(
                &capped,
                "portwarden_bans_refused_total",
                &[("reason", "rate_limited")]
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &capped,
                "portwarden_bans_added_total",
                &[("reason", "scan")]
            ),
            Some(1.0)
        );
    }
}
