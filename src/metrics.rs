//! Prometheus metrics: the registry and its typed families, fed by the engine (records, probes,
//! rejects, findings, ring overruns, source lag), by the ban book's committed batches (bans
//! added, lifted, expired, refused; kernel elements; record-to-ban latency) and by the daemon
//! loop; served over HTTP by the daemon ([`MetricsServer`]) and written by a cron pass to a
//! node_exporter textfile ([`Metrics::write_textfile`]).
//!
//! In: events from the pipeline. Out: the exposition text (OpenMetrics for the endpoint,
//! Prometheus text for the textfile, which node_exporter's parser reads).
//!
//! # The families
//!
//! | sample | type | labels | what |
//! | --- | --- | --- | --- |
//! | `portwarden_records_total` | counter | `source` | records read |
//! | `portwarden_records_rejected_total` | counter | `source`, `reason` | records that are not probes, by [`Reject`] |
//! | `portwarden_records_lost_total` | counter | `source` | records the source could not hand out (kmsg ring overruns) |
//! | `portwarden_probes_total` | counter | `source` | LOG records parsed into probes |
//! | `portwarden_source_lag_seconds` | gauge | `source` | how far behind its record's own time the newest probe was processed |
//! | `portwarden_findings_total` | counter | `rule`, `scan_type` | scans detected |
//! | `portwarden_bans_added_total` | counter | `reason` | `scan`, `prefix` (escalated to a prefix), `dry_run` |
//! | `portwarden_bans_lifted_total` | counter | `reason` | `superseded` (a prefix ban replaced its addresses' bans) |
//! | `portwarden_bans_expired_total` | counter | `reason` | `timeout` |
//! | `portwarden_bans_refused_total` | counter | `reason` | findings not banned: `allowlisted`, `already_banned`, `rate_limited`, `stale`, `no_set_for_family` |
//! | `portwarden_firewall_elements_total` | counter | `change` | kernel set elements `added`/`removed` by committed batches |
//! | `portwarden_active_bans` | gauge | `set` | live bans in the store, per kernel set |
//! | `portwarden_ban_latency_seconds` | histogram | | from the record that tipped a finding to the commit of its ban |
//! | `portwarden_checkpoint_failures_total` | counter | | checkpoints the firewall or the store refused (retried) |
//! | `portwarden_last_checkpoint_timestamp_seconds` | gauge | | when the last checkpoint (daemon) or pass (cron) committed |
//! | `portwarden_build_info` | gauge | `version` | always 1 |
//!
//! No label holds an address: a scanner flood cannot grow the exposition. The series of fixed
//! labels (the reasons, the changes) exist at 0 from the start.
//!
//! # The hot path
//!
//! Per record the engine touches only counters it resolved once per source ([`SourceMetrics`]:
//! atomics behind an `Arc`, an array indexed by the reject reason), and per probe one gauge
//! (and one read of the clock for it): no lock, no allocation, no label lookup. Findings and
//! bans (rare) go through the families, after their batch committed.
//!
//! The source lag is measured when a probe is processed: the engine's clock minus the probe's
//! own time (for kmsg: boot time plus the printk stamp). It includes time spent waiting behind
//! a ban in the daemon's one pipeline thread (an `nft` call), which is what it is for; it is
//! not updated while no probe comes.
//!
//! # Cron mode
//!
//! Each `run --once` is a new process, but counters must not restart at every pass or
//! `rate()` would undercount. So a pass first reads the previous textfile (its own output) and
//! continues its counters and its histogram from there ([`Metrics::continue_from_textfile`]);
//! gauges are the pass's own. Deleting the file restarts the counters, which Prometheus reads
//! as a counter reset. The file is written atomically: a temporary file in the same directory,
//! fsync, rename; node_exporter reads only `*.prom`, so it never sees the temporary file.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::parse::Reject;
use crate::record::Finding;

/// A label set: names and values (values never hold an address).
pub type Labels = Vec<(String, String)>;

type FloatGauge = Gauge<f64, AtomicU64>;

/// Errors of the metrics endpoint and the textfile.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot listen for metrics on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot write the metrics textfile {path}: {source}")]
    Textfile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode the metrics")]
    Encode(#[from] std::fmt::Error),
}

/// The upper bounds of the record-to-ban latency buckets, in seconds: 1 ms to about 9 minutes
/// (the daemon bans in milliseconds; a cron pass within its minute, plus the pass).
fn latency_bounds() -> Vec<f64> {
    (0..20).map(|i| 0.001 * 2f64.powi(i)).collect()
}

/// A classic histogram that can continue from the counts a previous process wrote (the
/// crate's own histogram cannot be seeded). Observed only on bans, so a mutex is fine.
#[derive(Debug, Clone)]
pub struct SeededHistogram {
    inner: Arc<Mutex<HistogramState>>,
}

#[derive(Debug, Clone, PartialEq)]
struct HistogramState {
    sum: f64,
    count: u64,
    /// `(upper bound, observations in this bucket only)`, the last bound `+Inf`.
    buckets: Vec<(f64, u64)>,
}

impl SeededHistogram {
    fn new(bounds: Vec<f64>) -> SeededHistogram {
        let mut buckets: Vec<(f64, u64)> = bounds.into_iter().map(|b| (b, 0)).collect();
        buckets.push((f64::INFINITY, 0));
        SeededHistogram {
            inner: Arc::new(Mutex::new(HistogramState {
                sum: 0.0,
                count: 0,
                buckets,
            })),
        }
    }

    pub fn observe(&self, v: f64) {
        // A poisoned lock only means another thread panicked mid-update of plain numbers.
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        s.sum += v;
        s.count += 1;
        if let Some(b) = s.buckets.iter_mut().find(|(bound, _)| v <= *bound) {
            b.1 += 1;
        }
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).count
    }

    /// Add a previous process's sum, count and cumulative bucket counts (by upper bound).
    /// Bounds this histogram does not have are ignored (their observations stay in `count`).
    fn add_previous(&self, sum: f64, count: u64, cumulative: &[(f64, u64)]) {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        s.sum += sum;
        s.count += count;
        let mut sorted = cumulative.to_vec();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut below = 0;
        for (bound, cum) in sorted {
            let here = cum.saturating_sub(below);
            below = below.max(cum);
            if let Some(b) = s.buckets.iter_mut().find(|(b, _)| *b == bound) {
                b.1 += here;
            }
        }
    }
}

impl TypedMetric for SeededHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for SeededHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let s = self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone();
        encoder.encode_histogram::<NoLabelSet>(
            s.sum,
            s.count,
            &s.buckets,
            None::<&HashMap<usize, Exemplar<NoLabelSet, f64>>>,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// One source's counters, resolved once so that a record costs two atomic increments.
#[derive(Debug, Clone)]
pub struct SourceMetrics {
    records: Counter,
    probes: Counter,
    lost: Counter,
    lag: FloatGauge,
    /// Indexed by `Reject as usize`.
    rejected: Vec<Counter>,
}

impl SourceMetrics {
    /// Count one record and what the parser made of it; `lag` is computed by the caller only
    /// for probes (see [`SourceMetrics::probe_lag`]).
    #[inline]
    pub fn record(&self, result: Result<(), Reject>) {
        self.records.inc();
        match result {
            Ok(()) => {
                self.probes.inc();
            }
            Err(r) => {
                if let Some(c) = self.rejected.get(r as usize) {
                    c.inc();
                }
            }
        }
    }

    /// How far behind its own time the newest probe was processed, in seconds.
    #[inline]
    pub fn probe_lag(&self, seconds: f64) {
        self.lag.set(seconds.max(0.0));
    }

    /// Records the source could not hand out (a kmsg ring overrun).
    pub fn lost(&self, n: u64) {
        if n > 0 {
            self.lost.inc_by(n);
        }
    }
}

/// Why a finding was not banned, as the metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Allowlisted,
    AlreadyBanned,
    RateLimited,
    Stale,
    NoSetForFamily,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Allowlisted => "allowlisted",
            Refusal::AlreadyBanned => "already_banned",
            Refusal::RateLimited => "rate_limited",
            Refusal::Stale => "stale",
            Refusal::NoSetForFamily => "no_set_for_family",
        }
    }

    pub const ALL: [Refusal; 5] = [
        Refusal::Allowlisted,
        Refusal::AlreadyBanned,
        Refusal::RateLimited,
        Refusal::Stale,
        Refusal::NoSetForFamily,
    ];
}

/// Every family portwarden exposes (see the module doc).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    records: Family<Labels, Counter>,
    rejected: Family<Labels, Counter>,
    lost: Family<Labels, Counter>,
    probes: Family<Labels, Counter>,
    lag: Family<Labels, FloatGauge>,
    findings: Family<Labels, Counter>,
    bans_added: Family<Labels, Counter>,
    bans_lifted: Family<Labels, Counter>,
    bans_expired: Family<Labels, Counter>,
    bans_refused: Family<Labels, Counter>,
    elements: Family<Labels, Counter>,
    active_bans: Family<Labels, Gauge>,
    fleet_messages: Family<Labels, Counter>,
    fleet_link_up: Family<Labels, Gauge>,
    fleet_outbox: Gauge,
    fleet_lag: FloatGauge,
    fleet_peers: Gauge,
    latency: SeededHistogram,
    checkpoint_failures: Counter,
    last_checkpoint: FloatGauge,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            records: Family::default(),
            rejected: Family::default(),
            lost: Family::default(),
            probes: Family::default(),
            lag: Family::default(),
            findings: Family::default(),
            bans_added: Family::default(),
            bans_lifted: Family::default(),
            bans_expired: Family::default(),
            bans_refused: Family::default(),
            elements: Family::default(),
            active_bans: Family::default(),
            fleet_messages: Family::default(),
            fleet_link_up: Family::default(),
            fleet_outbox: Gauge::default(),
            fleet_lag: FloatGauge::default(),
            fleet_peers: Gauge::default(),
            latency: SeededHistogram::new(latency_bounds()),
            checkpoint_failures: Counter::default(),
            last_checkpoint: FloatGauge::default(),
            registry: Registry::default(),
        };
        let build_info: Family<Labels, Gauge> = Family::default();
        build_info
            .get_or_create(&labels(&[("version", env!("CARGO_PKG_VERSION"))]))
            .set(1);
        let r = &mut registry;
        r.register(
            "portwarden_records",
            "Records read, per source",
            m.records.clone(),
        );
        r.register(
            "portwarden_records_rejected",
            "Records that are not probes, per source and reason",
            m.rejected.clone(),
        );
        r.register(
            "portwarden_records_lost",
            "Records a source could not hand out (kmsg ring overruns), per source",
            m.lost.clone(),
        );
        r.register(
            "portwarden_probes",
            "LOG records parsed into probes, per source",
            m.probes.clone(),
        );
        r.register(
            "portwarden_source_lag_seconds",
            "Seconds between the newest probe's own time and its processing, per source",
            m.lag.clone(),
        );
        r.register(
            "portwarden_findings",
            "Scans detected, per rule and scan type",
            m.findings.clone(),
        );
        r.register(
            "portwarden_bans_added",
            "Bans added, per reason",
            m.bans_added.clone(),
        );
        r.register(
            "portwarden_bans_lifted",
            "Bans lifted by this process, per reason",
            m.bans_lifted.clone(),
        );
        r.register(
            "portwarden_bans_expired",
            "Bans that ran out, per reason",
            m.bans_expired.clone(),
        );
        r.register(
            "portwarden_bans_refused",
            "Findings not banned, per reason",
            m.bans_refused.clone(),
        );
        r.register(
            "portwarden_firewall_elements",
            "Kernel set elements changed by committed batches",
            m.elements.clone(),
        );
        r.register(
            "portwarden_active_bans",
            "Live bans in the store, per kernel set",
            m.active_bans.clone(),
        );
        r.register(
            "portwarden_ban_latency_seconds",
            "Seconds from the record that tipped a finding to the commit of its ban",
            m.latency.clone(),
        );
        r.register(
            "portwarden_checkpoint_failures",
            "Checkpoints the firewall or the store refused (retried)",
            m.checkpoint_failures.clone(),
        );
        r.register(
            "portwarden_last_checkpoint_timestamp_seconds",
            "Unix time of the last committed checkpoint or pass",
            m.last_checkpoint.clone(),
        );
        r.register(
            "portwarden_fleet_messages",
            "Fleet stream messages: published by this host, or read from peers by outcome (banned, unbanned, own, not_banned, refused) and reason",
            m.fleet_messages.clone(),
        );
        r.register(
            "portwarden_fleet_link_up",
            "Whether the daemon's fleet link to Redis is up (1) or not (0), per role (publisher, consumer)",
            m.fleet_link_up.clone(),
        );
        r.register(
            "portwarden_fleet_outbox",
            "Fleet messages waiting in the store's outbox to be published",
            m.fleet_outbox.clone(),
        );
        r.register(
            "portwarden_fleet_lag_seconds",
            "Seconds between the newest fleet entry applied and its addition to the stream",
            m.fleet_lag.clone(),
        );
        r.register(
            "portwarden_fleet_peers",
            "Fleet peers heard from in the last hour",
            m.fleet_peers.clone(),
        );
        r.register(
            "portwarden_build_info",
            "The running version (always 1)",
            build_info,
        );
        // The series of fixed labels exist from the start, at 0: a query over them never
        // finds nothing, and `rate()` sees the first event.
        for reason in ["scan", "prefix", "dry_run"] {
            m.bans_added
                .get_or_create_owned(&labels(&[("reason", reason)]));
        }
        m.bans_lifted
            .get_or_create_owned(&labels(&[("reason", "superseded")]));
        m.bans_expired
            .get_or_create_owned(&labels(&[("reason", "timeout")]));
        for why in Refusal::ALL {
            m.bans_refused
                .get_or_create_owned(&labels(&[("reason", why.as_str())]));
        }
        for change in ["added", "removed"] {
            m.elements
                .get_or_create_owned(&labels(&[("change", change)]));
        }
        Metrics { registry, ..m }
    }

    /// What one application of fleet messages (or one publishing pass) did: counted by
    /// outcome and reason. Reasons are a fixed vocabulary (see [`crate::fleet::FleetSummary`]),
    /// never an address or a host name.
    pub fn fleet(&self, summary: &crate::fleet::FleetSummary) {
        let count = |outcome: &str, reason: &str, n: u64| {
            if n > 0 {
                self.fleet_messages
                    .get_or_create(&labels(&[("outcome", outcome), ("reason", reason)]))
                    .inc_by(n);
            }
        };
        count("published", "", summary.published);
        count("own", "", summary.own);
        count("banned", "", summary.banned.len() as u64);
        count("unbanned", "", summary.unbanned.len() as u64);
        for (why, n) in &summary.not_banned {
            count("not_banned", &why.replace([' ', '-'], "_"), *n);
        }
        for (why, n) in &summary.refused {
            count("refused", why, *n);
        }
    }

    /// The fleet link of `role` (`publisher`, `consumer`) went up or down.
    pub fn fleet_link(&self, role: &str, up: bool) {
        self.fleet_link_up
            .get_or_create(&labels(&[("role", role)]))
            .set(i64::from(up));
    }

    /// After fleet entries were applied: how far behind the stream this host is, and how many
    /// peers it heard from in the last hour.
    pub fn fleet_applied(&self, lag_seconds: f64, peers: u64) {
        self.fleet_lag.set(lag_seconds.max(0.0));
        self.fleet_peers
            .set(i64::try_from(peers).unwrap_or(i64::MAX));
    }

    /// Messages waiting in the outbox.
    pub fn fleet_outbox(&self, n: u64) {
        self.fleet_outbox.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The counters of the source `id`, resolved once (see the module doc).
    pub fn source(&self, id: &str) -> SourceMetrics {
        let l = labels(&[("source", id)]);
        let mut rejected = vec![Counter::default(); Reject::ALL.len()];
        for r in Reject::ALL {
            let c = self
                .rejected
                .get_or_create_owned(&labels(&[("source", id), ("reason", r.as_str())]));
            if let Some(slot) = rejected.get_mut(r as usize) {
                *slot = c;
            }
        }
        SourceMetrics {
            records: self.records.get_or_create_owned(&l),
            probes: self.probes.get_or_create_owned(&l),
            lost: self.lost.get_or_create_owned(&l),
            lag: self.lag.get_or_create_owned(&l),
            rejected,
        }
    }

    pub fn finding(&self, finding: &Finding) {
        self.findings
            .get_or_create(&labels(&[
                ("rule", finding.kind.as_str()),
                ("scan_type", finding.scan_type.as_str()),
            ]))
            .inc();
    }

    /// A ban committed: `reason` is `scan`, `prefix` or `dry_run`; `latency` from its record.
    pub fn ban_added(&self, reason: &str, latency: Option<f64>) {
        self.bans_added
            .get_or_create(&labels(&[("reason", reason)]))
            .inc();
        if let Some(s) = latency {
            self.latency.observe(s.max(0.0));
        }
    }

    pub fn bans_lifted(&self, reason: &str, n: u64) {
        if n > 0 {
            self.bans_lifted
                .get_or_create(&labels(&[("reason", reason)]))
                .inc_by(n);
        }
    }

    pub fn bans_expired(&self, n: u64) {
        if n > 0 {
            self.bans_expired
                .get_or_create(&labels(&[("reason", "timeout")]))
                .inc_by(n);
        }
    }

    pub fn refused(&self, why: Refusal, n: u64) {
        if n > 0 {
            self.bans_refused
                .get_or_create(&labels(&[("reason", why.as_str())]))
                .inc_by(n);
        }
    }

    /// What a committed batch changed in the kernel ([`crate::bans::Applied`]).
    pub fn applied(&self, applied: crate::bans::Applied) {
        for (change, n) in [("added", applied.added), ("removed", applied.removed)] {
            if n > 0 {
                self.elements
                    .get_or_create(&labels(&[("change", change)]))
                    .inc_by(n as u64);
            }
        }
    }

    /// Add to `portwarden_active_bans` (new bans between two exact counts).
    pub fn add_active_bans(&self, per_set: &[(&str, i64)]) {
        for (set, n) in per_set {
            self.active_bans
                .get_or_create(&labels(&[("set", set)]))
                .inc_by(*n);
        }
    }

    /// Live bans per kernel set, as counted after a checkpoint (every set named is set, so a
    /// set that emptied reads 0).
    pub fn active_bans(&self, per_set: &[(&str, i64)]) {
        for (set, n) in per_set {
            self.active_bans
                .get_or_create(&labels(&[("set", set)]))
                .set(*n);
        }
    }

    pub fn checkpoint_failed(&self) {
        self.checkpoint_failures.inc();
    }

    pub fn checkpoint_committed(&self, at: jiff::Timestamp) {
        self.last_checkpoint
            .set(at.as_millisecond() as f64 / 1000.0);
    }

    /// Observations of the latency histogram so far.
    pub fn ban_latency_count(&self) -> u64 {
        self.latency.count()
    }

    /// The OpenMetrics exposition (what the endpoint serves).
    pub fn encode(&self) -> Result<String, MetricsError> {
        let mut out = String::with_capacity(8192);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// The Prometheus text exposition (what node_exporter's textfile collector parses): the
    /// OpenMetrics text with counter families named by their `_total` samples, and without
    /// `# EOF` and `# UNIT`, which the Prometheus text format does not have.
    pub fn encode_prometheus_text(&self) -> Result<String, MetricsError> {
        let open = self.encode()?;
        let mut counters = Vec::new();
        for line in open.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ")
                && let Some(name) = rest.strip_suffix(" counter")
            {
                counters.push(name.to_string());
            }
        }
        let mut out = String::with_capacity(open.len() + 64);
        for line in open.lines() {
            if line == "# EOF" || line.starts_with("# UNIT ") {
                continue;
            }
            let renamed = ["# HELP ", "# TYPE "].iter().find_map(|tag| {
                let rest = line.strip_prefix(tag)?;
                let (name, tail) = rest.split_once(' ')?;
                counters
                    .iter()
                    .any(|c| c == name)
                    .then(|| format!("{tag}{name}_total {tail}"))
            });
            match renamed {
                Some(l) => writeln!(out, "{l}")?,
                None => writeln!(out, "{line}")?,
            }
        }
        Ok(out)
    }

    /// Write the Prometheus text exposition to `path` atomically: a temporary file in the
    /// same directory (node_exporter reads only `*.prom`, so never this one), fsync, rename.
    /// The temporary file is created exclusively (`O_EXCL`), so a symlink planted at its name
    /// is never followed.
    pub fn write_textfile(&self, path: &Path) -> Result<(), MetricsError> {
        let err = |source| MetricsError::Textfile {
            path: path.to_path_buf(),
            source,
        };
        let text = self.encode_prometheus_text()?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "portwarden.prom".to_string());
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = create_new(&tmp).or_else(|e| {
                if e.kind() != std::io::ErrorKind::AlreadyExists {
                    return Err(e);
                }
                // Left by a crashed run, or planted (a symlink, in a directory another user
                // may write): unlinking removes the entry itself, never what it points to.
                std::fs::remove_file(&tmp)?;
                create_new(&tmp)
            })?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            drop(f);
            use std::os::unix::fs::PermissionsExt;
            // node_exporter runs as its own user; the file names no address.
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(e)
        })
    }

    /// Continue the counters and the latency histogram from a previous pass's textfile (see
    /// the module doc). A missing file is a fresh start; lines that are not ours are skipped.
    pub fn continue_from_textfile(&self, path: &Path) -> Result<(), MetricsError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(MetricsError::Textfile {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let families: [(&str, &Family<Labels, Counter>); 11] = [
            ("portwarden_fleet_messages_total", &self.fleet_messages),
            ("portwarden_records_total", &self.records),
            ("portwarden_records_rejected_total", &self.rejected),
            ("portwarden_records_lost_total", &self.lost),
            ("portwarden_probes_total", &self.probes),
            ("portwarden_findings_total", &self.findings),
            ("portwarden_bans_added_total", &self.bans_added),
            ("portwarden_bans_lifted_total", &self.bans_lifted),
            ("portwarden_bans_expired_total", &self.bans_expired),
            ("portwarden_bans_refused_total", &self.bans_refused),
            ("portwarden_firewall_elements_total", &self.elements),
        ];
        let (mut sum, mut count, mut buckets) = (0.0, 0, Vec::new());
        for line in text.lines() {
            let Some(sample) = parse_sample(line) else {
                continue;
            };
            if let Some((_, family)) = families.iter().find(|(n, _)| *n == sample.name) {
                family
                    .get_or_create(&sample.labels)
                    .inc_by(sample.value as u64);
                continue;
            }
            match sample.name {
                "portwarden_checkpoint_failures_total" => {
                    self.checkpoint_failures.inc_by(sample.value as u64);
                }
                "portwarden_ban_latency_seconds_sum" => sum = sample.value,
                "portwarden_ban_latency_seconds_count" => count = sample.value as u64,
                "portwarden_ban_latency_seconds_bucket" => {
                    let le = sample.labels.iter().find(|(k, _)| k == "le");
                    let bound = match le.map(|(_, v)| v.as_str()) {
                        Some("+Inf") => Some(f64::INFINITY),
                        Some(v) => v.parse().ok(),
                        None => None,
                    };
                    if let Some(b) = bound {
                        buckets.push((b, sample.value as u64));
                    }
                }
                _ => {}
            }
        }
        if count > 0 {
            self.latency.add_previous(sum, count, &buckets);
        }
        Ok(())
    }
}

/// One sample line of the text exposition.
#[derive(Debug, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    pub labels: Labels,
    pub value: f64,
}

/// Create `path` only if nothing (not even a dangling symlink) is there: `O_CREAT|O_EXCL`.
fn create_new(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
}

/// Parse `name{k="v",...} value` (the exposition this module writes: label values without
/// escaped quotes). `None` for comments, blank lines and anything else.
pub fn parse_sample(line: &str) -> Option<Sample<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (head, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match head.split_once('{') {
        None => (head, Vec::new()),
        Some((name, rest)) => {
            let body = rest.strip_suffix('}')?;
            let mut labels = Vec::new();
            for pair in body.split("\",").filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once("=\"")?;
                labels.push((k.trim().to_string(), v.trim_end_matches('"').to_string()));
            }
            (name, labels)
        }
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// The largest request the endpoint reads; anything longer gets 431 and is closed.
pub const MAX_REQUEST: usize = 8 * 1024;
/// How long a client may take to send its request or read the answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// The daemon's metrics endpoint: a std-only HTTP/1.0 server on its own thread, one client at
/// a time (a scraper per minute needs no more), `GET /metrics` and nothing else. It reads the
/// metrics' atomics and never touches the pipeline's thread, so a slow or hostile client can
/// only delay other scrapes, by at most [`CLIENT_TIMEOUT`] each.
pub struct MetricsServer {
    addr: SocketAddr,
    _thread: JoinHandle<()>,
}

impl MetricsServer {
    /// Bind `addr` now (a taken port is a startup error) and serve on a thread.
    pub fn start(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<MetricsServer, MetricsError> {
        let listener =
            TcpListener::bind(addr).map_err(|source| MetricsError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| MetricsError::Bind { addr, source })?;
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    match stream {
                        Ok(s) => {
                            if let Err(e) = answer(s, &metrics) {
                                tracing::debug!("metrics client: {e}");
                            }
                        }
                        Err(e) => {
                            tracing::warn!("metrics endpoint: accept failed: {e}");
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
            })
            .map_err(|source| MetricsError::Bind { addr, source })?;
        Ok(MetricsServer {
            addr,
            _thread: thread,
        })
    }

    /// Where it listens (the bound port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Read one request (at most [`MAX_REQUEST`] bytes), answer, close.
fn answer(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut len = 0;
    let head_end = loop {
        if let Some(end) = find_head_end(&buf[..len]) {
            break Some(end);
        }
        if len == buf.len() {
            break None;
        }
        let n = stream.read(&mut buf[len..])?;
        if n == 0 {
            return Ok(());
        }
        len += n;
    };
    let (status, content_type, body) = match head_end {
        None => (
            "431 Request Header Fields Too Large",
            "text/plain",
            "request too large\n".to_string(),
        ),
        Some(end) => route(&buf[..end], metrics),
    };
    let head = format!(
        "HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

fn find_head_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n")
}

fn route(head: &[u8], metrics: &Metrics) -> (&'static str, &'static str, String) {
    let text = String::from_utf8_lossy(head);
    let mut parts = text.lines().next().unwrap_or("").split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => match metrics.encode() {
            Ok(body) => (
                "200 OK",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                body,
            ),
            Err(e) => ("500 Internal Server Error", "text/plain", format!("{e}\n")),
        },
        ("GET", _) => (
            "404 Not Found",
            "text/plain",
            "not found: try /metrics\n".into(),
        ),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".into()),
    }
}

/// The names of the samples an exposition holds (`portwarden_records_total`,
/// `portwarden_ban_latency_seconds_bucket`, ...), for checks such as the dashboard test.
pub fn sample_names(exposition: &str) -> std::collections::BTreeSet<String> {
    exposition
        .lines()
        .filter_map(parse_sample)
        .map(|s| s.name.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Evidence, FindingKind, ScanType};

    fn finding() -> Finding {
        Finding {
            source: "198.51.100.7".parse().unwrap(),
            kind: FindingKind::FastScan,
            scan_type: ScanType::Syn,
            detected_at: "2026-11-24T23:00:00Z".parse().unwrap(),
            evidence: Evidence {
                probes: 12,
                ports: 12,
                destinations: 1,
                failures: 12,
                successes: 0,
                records: 12,
                first_seen: "2026-11-24T23:00:00Z".parse().unwrap(),
                last_seen: "2026-11-24T23:00:00Z".parse().unwrap(),
                top_ports: Vec::new(),
            },
        }
    }

    /// Labels a sample must have.
    type Want<'a> = &'a [(&'a str, &'a str)];
    /// A parsed sample's name, number of labels and value.
    type Parsed = (&'static str, usize, f64);

    fn value(text: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
        text.lines().filter_map(parse_sample).find_map(|s| {
            (s.name == name
                && want
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v)))
            .then_some(s.value)
        })
    }

    /// Every family with one event each, as a pipeline would feed them.
    fn fed() -> Metrics {
        let m = Metrics::new();
        let kmsg = m.source("kmsg");
        kmsg.record(Ok(()));
        kmsg.probe_lag(0.25);
        kmsg.record(Err(Reject::PrefixMismatch));
        kmsg.record(Err(Reject::PrefixMismatch));
        kmsg.lost(3);
        m.finding(&finding());
        m.ban_added("scan", Some(0.004));
        m.bans_lifted("superseded", 2);
        m.bans_expired(1);
        m.refused(Refusal::RateLimited, 1);
        m.applied(crate::bans::Applied {
            added: 1,
            removed: 2,
            ..Default::default()
        });
        m.active_bans(&[("banned4", 1), ("banned6", 0)]);
        m
    }

    #[test]
    fn each_family_shows_what_it_was_fed() {
        let text = fed().encode().unwrap();
        let cases: &[(&str, Want, f64)] = &[
            ("portwarden_records_total", &[("source", "kmsg")], 3.0),
            ("portwarden_probes_total", &[("source", "kmsg")], 1.0),
            (
                "portwarden_records_rejected_total",
                &[("source", "kmsg"), ("reason", "prefix_mismatch")],
                2.0,
            ),
            (
                "portwarden_records_rejected_total",
                &[("source", "kmsg"), ("reason", "untrusted")],
                0.0,
            ),
            ("portwarden_records_lost_total", &[("source", "kmsg")], 3.0),
            ("portwarden_source_lag_seconds", &[("source", "kmsg")], 0.25),
            (
                "portwarden_findings_total",
                &[("rule", "fast_scan"), ("scan_type", "SYN")],
                1.0,
            ),
            ("portwarden_bans_added_total", &[("reason", "scan")], 1.0),
            (
                "portwarden_bans_lifted_total",
                &[("reason", "superseded")],
                2.0,
            ),
            (
                "portwarden_bans_expired_total",
                &[("reason", "timeout")],
                1.0,
            ),
            (
                "portwarden_bans_refused_total",
                &[("reason", "rate_limited")],
                1.0,
            ),
            (
                "portwarden_firewall_elements_total",
                &[("change", "removed")],
                2.0,
            ),
            ("portwarden_active_bans", &[("set", "banned4")], 1.0),
            ("portwarden_active_bans", &[("set", "banned6")], 0.0),
            ("portwarden_ban_latency_seconds_count", &[], 1.0),
            (
                "portwarden_ban_latency_seconds_bucket",
                &[("le", "0.004")],
                1.0,
            ),
            (
                "portwarden_ban_latency_seconds_bucket",
                &[("le", "0.002")],
                0.0,
            ),
            (
                "portwarden_build_info",
                &[("version", env!("CARGO_PKG_VERSION"))],
                1.0,
            ),
        ];
        for (name, labels, want) in cases {
            assert_eq!(
                value(&text, name, labels),
                Some(*want),
                "{name} {labels:?}\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    }

    #[test]
    fn fleet_messages_are_counted_by_outcome_and_reason() {
        let m = Metrics::new();
        let mut summary = crate::fleet::FleetSummary {
            messages: 6,
            own: 1,
            banned: vec!["198.51.100.7/32".into()],
            published: 2,
            ..Default::default()
        };
        summary.not_banned.insert("rate-limited".into(), 3);
        summary.refused.insert("bad_signature".into(), 1);
        m.fleet(&summary);
        m.fleet(&summary);
        let text = m.encode().unwrap();
        for (labels, want) in [
            (&[("outcome", "published"), ("reason", "")][..], 4.0),
            (&[("outcome", "own"), ("reason", "")][..], 2.0),
            (&[("outcome", "banned"), ("reason", "")][..], 2.0),
            (
                &[("outcome", "not_banned"), ("reason", "rate_limited")][..],
                6.0,
            ),
            (
                &[("outcome", "refused"), ("reason", "bad_signature")][..],
                2.0,
            ),
        ] {
            assert_eq!(
                value(&text, "portwarden_fleet_messages_total", labels),
                Some(want),
                "{labels:?}\n{text}"
            );
        }
        // No address ever becomes a label.
        assert!(!text.contains("198.51.100.7"), "{text}");
        m.fleet_link("consumer", true);
        m.fleet_link("publisher", false);
        m.fleet_outbox(5);
        let text = m.encode().unwrap();
        assert_eq!(
            value(&text, "portwarden_fleet_link_up", &[("role", "consumer")]),
            Some(1.0)
        );
        assert_eq!(
            value(&text, "portwarden_fleet_link_up", &[("role", "publisher")]),
            Some(0.0)
        );
        assert_eq!(value(&text, "portwarden_fleet_outbox", &[]), Some(5.0));
        m.fleet_applied(0.25, 3);
        let text = m.encode().unwrap();
        assert_eq!(
            value(&text, "portwarden_fleet_lag_seconds", &[]),
            Some(0.25)
        );
        assert_eq!(value(&text, "portwarden_fleet_peers", &[]), Some(3.0));
    }

    #[test]
    fn a_reject_reason_is_counted_under_its_own_label() {
        let m = Metrics::new();
        let s = m.source("file:/var/log/kern.log");
        for r in Reject::ALL {
            s.record(Err(r));
        }
        let text = m.encode().unwrap();
        for r in Reject::ALL {
            assert_eq!(
                value(
                    &text,
                    "portwarden_records_rejected_total",
                    &[("source", "file:/var/log/kern.log"), ("reason", r.as_str())]
                ),
                Some(1.0),
                "{r:?}"
            );
        }
    }

    #[test]
    fn the_textfile_is_prometheus_text_with_counters_typed_by_their_samples() {
        let text = fed().encode_prometheus_text().unwrap();
        assert!(!text.contains("# EOF"));
        assert!(
            text.contains("# TYPE portwarden_records_total counter\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE portwarden_active_bans gauge\n"));
        assert!(text.contains("# TYPE portwarden_ban_latency_seconds histogram\n"));
        assert_eq!(sample_names(&text), sample_names(&fed().encode().unwrap()));
    }

    #[test]
    fn the_textfile_is_replaced_atomically_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portwarden.prom");
        std::fs::write(&path, "old\n").unwrap();
        // A reader holding the old file keeps the old content: rename, not truncate-and-write.
        let mut old = std::fs::File::open(&path).unwrap();
        let m = fed();
        m.write_textfile(&path).unwrap();
        let mut held = String::new();
        old.read_to_string(&mut held).unwrap();
        assert_eq!(held, "old\n", "the old inode was replaced, not rewritten");
        let now = std::fs::read_to_string(&path).unwrap();
        assert_eq!(now, m.encode_prometheus_text().unwrap());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["portwarden.prom"], "no temporary file left");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "node_exporter must be able to read it");
    }

    #[test]
    fn a_symlink_planted_at_the_temporary_name_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let path = dir.path().join("portwarden.prom");
        let tmp = dir
            .path()
            .join(format!(".portwarden.prom.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        let m = fed();
        m.write_textfile(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            m.encode_prometheus_text().unwrap()
        );
        assert!(!tmp.exists() && std::fs::symlink_metadata(&tmp).is_err());
    }

    #[test]
    fn a_textfile_in_a_missing_directory_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent").join("portwarden.prom");
        let err = fed().write_textfile(&path).unwrap_err();
        assert!(err.to_string().contains("absent/portwarden.prom"), "{err}");
    }

    #[test]
    fn a_pass_continues_the_counters_and_the_histogram_of_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portwarden.prom");
        fed().write_textfile(&path).unwrap();
        let next = fed();
        next.continue_from_textfile(&path).unwrap();
        let text = next.encode().unwrap();
        assert_eq!(
            value(&text, "portwarden_records_total", &[("source", "kmsg")]),
            Some(6.0)
        );
        assert_eq!(
            value(&text, "portwarden_findings_total", &[("rule", "fast_scan")]),
            Some(2.0)
        );
        assert_eq!(
            value(&text, "portwarden_ban_latency_seconds_count", &[]),
            Some(2.0)
        );
        assert_eq!(
            value(
                &text,
                "portwarden_ban_latency_seconds_bucket",
                &[("le", "0.004")]
            ),
            Some(2.0)
        );
        assert_eq!(
            value(
                &text,
                "portwarden_ban_latency_seconds_bucket",
                &[("le", "+Inf")]
            ),
            Some(2.0)
        );
        // Gauges are the pass's own.
        assert_eq!(
            value(&text, "portwarden_active_bans", &[("set", "banned4")]),
            Some(1.0)
        );
        // No file yet: a fresh start.
        Metrics::new()
            .continue_from_textfile(&dir.path().join("none.prom"))
            .unwrap();
    }

    fn get(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(request).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn the_endpoint_serves_get_metrics_and_nothing_else() {
        let m = Arc::new(fed());
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), m.clone()).unwrap();
        let addr = server.local_addr();
        let ok = get(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.0 200 OK\r\n"), "{ok}");
        assert!(ok.contains("application/openmetrics-text"));
        assert!(
            ok.contains("portwarden_records_total{source=\"kmsg\"} 3"),
            "{ok}"
        );
        let missing = get(addr, b"GET / HTTP/1.1\r\n\r\n");
        assert!(missing.starts_with("HTTP/1.0 404"), "{missing}");
        let post = get(addr, b"POST /metrics HTTP/1.1\r\n\r\n");
        assert!(post.starts_with("HTTP/1.0 405"), "{post}");
        let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_REQUEST));
        let mut s = TcpStream::connect(addr).unwrap();
        let _ = s.write_all(&huge);
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        assert!(out.starts_with("HTTP/1.0 431"), "{out}");
        // The server still answers after each of those.
        assert!(get(addr, b"GET /metrics HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 200"));
    }

    #[test]
    fn samples_parse_from_real_exposition_lines() {
        let cases: &[(&str, Option<Parsed>)] = &[
            (
                "portwarden_records_total{source=\"kmsg\"} 12",
                Some(("portwarden_records_total", 1, 12.0)),
            ),
            (
                "portwarden_ban_latency_seconds_bucket{le=\"+Inf\"} 1",
                Some(("portwarden_ban_latency_seconds_bucket", 1, 1.0)),
            ),
            (
                "portwarden_ban_latency_seconds_sum 0.004",
                Some(("portwarden_ban_latency_seconds_sum", 0, 0.004)),
            ),
            (
                "portwarden_records_rejected_total{source=\"file:/var/log/kern.log\",reason=\"bad_header\"} 2",
                Some(("portwarden_records_rejected_total", 2, 2.0)),
            ),
            ("# TYPE portwarden_records counter", None),
            ("# EOF", None),
            ("", None),
        ];
        for (line, want) in cases {
            let got = parse_sample(line).map(|s| (s.name, s.labels.len(), s.value));
            assert_eq!(got, *want, "{line}");
        }
    }
}
