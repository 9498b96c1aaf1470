//! Stage `detect`: decides which sources are scanning, from their probes alone.
//!
//! In: [`Probe`]s in record-time order (per source; small disorder is tolerated). Out: a
//! [`Finding`] the moment a source first reaches a verdict, and on demand every verdict with its
//! evidence brought up to date ([`PortScanDetector::findings`]), the statistics, and a
//! serialisable [`DetectorState`] that a later cron run continues from.
//!
//! # What is counted
//!
//! * A *probe* is the first packet from a source to one `(dst, proto, dport)` within its
//!   session; more packets to it (SYN retransmissions, a busy client's new connections) add
//!   records, not probes. The session ends after `slow_gap` of silence by record time.
//! * A probe *fails* when this host serves nothing on that port ([`ServedPorts`]), and
//!   *succeeds* otherwise. A failed SYN/UDP probe weighs 1, a stealth one (FIN, NULL, XMAS,
//!   Maimon, SYN+FIN) `stealth_weight`. A TCP packet of an established connection (ACK or RST
//!   set, no SYN) is a *stray* weighing `stray_weight` when it looks like one of this host's own
//!   past connections (to a served port or a port in the local ephemeral range, or from a port
//!   below 1024): after a reboot or a conntrack flush those reach the LOG rule as new. A lone
//!   ACK that fits none of that (`nmap -sA`: ephemeral source port, closed well-known
//!   destination) weighs as a stealth probe.
//! * An IP protocol probe (`nmap -sO`: a record with `PROTO=47`, `PROTO=ESP`, ..., no ports) is
//!   a probe of `(dst, protocol, 0)`: distinct protocol numbers add up like distinct ports.
//! * ICMP records are counted in [`DetectStats::ignored`] and otherwise ignored: an ICMP type
//!   is not a service, echo requests are what monitoring sends, and netfilter logs ICMP errors
//!   that are answers rather than probes.

//! # The rules (see `state.rs` for the exact arithmetic)
//!
//! sweep (one port over many destinations), fast scan (weighted failures within `window`),
//! slow scan (weighted failures within the session), sequential (weighted failures minus
//! successes within the session: Threshold Random Walk, Jung et al. 2004). The first to trip
//! names the finding; a source is reported once per session.
//!
//! Beside the sessions, low and slow (`long.rs`): distinct failed probes of a source over
//! `long_window` (24 h), across sessions, for sources whose probes are further apart than
//! `slow_gap` (each would otherwise start a session of one probe). A finding of any rule uses
//! that evidence up.
//!
//! # Time
//!
//! Only the records' own times are used: replaying an old log gives the same findings as
//! watching it live. The detector's clock is the latest record time seen; every `window` of it,
//! sources silent for `slow_gap` are dropped (their verdicts, if any, are kept for
//! [`PortScanDetector::findings`]).
//!
//! # Memory
//!
//! At most `max_sources` sources of at most `max_probes_per_source` entries. When the table is
//! full a new source takes the slot of the least suspicious of 8 randomly sampled sources
//! (expired ones first, then the lowest closeness to a verdict, then the stalest), the
//! approximated-LRU idea of Redis: O(1) per eviction, and a spoofed flood of one-probe sources
//! displaces its own kind rather than a scanner half-way to its verdict. Slots are reused in
//! place, so after warm-up a probe allocates nothing but a finding when one is reached.
//! The long-horizon table has the same bound on sources and at most 32 probes of 8 bytes
//! each per source (figures in `long.rs`).

mod long;
mod served;
pub(crate) mod state;

use std::collections::VecDeque;
use std::net::IpAddr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::DetectConfig;
use crate::record::{Evidence, Finding, FindingKind, Probe, Proto};

pub use long::LONG_CAPACITY;
use long::{LongEntry, LongHorizon};
pub use served::{ProcParse, ServedPorts};
use state::{Rules, Seen, SourceState, Verdict, WeightClass};

/// Sources sampled per eviction.
const EVICTION_SAMPLES: usize = 8;
/// Ports listed in a finding's `top_ports`.
const TOP_PORTS: usize = 10;
/// Version of [`DetectorState`]'s layout; a state of another version is not restored.
pub const STATE_VERSION: u32 = 1;

/// What the detector has done, for `status` and the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectStats {
    /// Sources tracked now.
    pub sources: usize,
    /// Most sources tracked at once.
    pub peak_sources: usize,
    /// Records fed to [`PortScanDetector::observe`].
    pub records: u64,
    /// Distinct probes among them.
    pub probes: u64,
    /// ICMP records: not scored.
    pub ignored: u64,
    /// Verdicts reached.
    pub findings: u64,
    /// Sources dropped to make room (the memory bound at work).
    pub evicted: u64,
    /// Sources whose session ended (silent for `slow_gap`).
    pub expired: u64,
    /// Verdicts of dropped sources that no longer fit in the kept list (bounded by
    /// `max_sources`).
    pub findings_dropped: u64,
    /// Sources in the long-horizon (low-and-slow) table.
    #[serde(default)]
    pub long_sources: usize,
}

/// The detector's state, for a later run to continue from (cron mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorState {
    version: u32,
    /// Latest record time seen, µs since the epoch (`None`: nothing seen yet).
    clock_us: Option<i64>,
    sources: Vec<SourceState>,
    stats: DetectStats,
    /// The long-horizon table (absent in states written before it existed).
    #[serde(default)]
    long: Vec<LongEntry>,
}

impl DetectorState {
    /// Sources in the state.
    pub fn sources(&self) -> usize {
        self.sources.len()
    }
}

/// The port-scan detector: bounded per-source state and the rules over it.
#[derive(Debug)]
pub struct PortScanDetector {
    rules: Rules,
    max_sources: usize,
    served: ServedPorts,
    slots: Vec<SourceState>,
    /// Slot of each tracked source. foldhash with a per-process random seed: several times
    /// faster than SipHash on the hot path, and its seed keeps blind collision floods of
    /// spoofed sources out (the table is also bounded by `max_sources`).
    index: foldhash::HashMap<IpAddr, usize>,
    /// Verdicts of sources no longer tracked, oldest first.
    archived: VecDeque<Finding>,
    clock_us: Option<i64>,
    next_sweep_us: i64,
    rng: u64,
    stats: DetectStats,
    long: LongHorizon,
}

fn rules_of(cfg: &DetectConfig) -> Rules {
    let micros = |d: jiff::SignedDuration| d.as_micros().clamp(1, i64::MAX as i128) as i64;
    Rules {
        window_us: micros(cfg.window),
        gap_us: micros(cfg.slow_gap),
        slow_window_us: micros(cfg.slow_window),
        fast: f64::from(cfg.fast_failures.max(1)),
        slow: f64::from(cfg.slow_failures.max(1)),
        sequential: if cfg.sequential_threshold > 0.0 {
            cfg.sequential_threshold
        } else {
            1.0
        },
        sweep: cfg.sweep_destinations.max(1),
        stealth_weight: cfg.stealth_weight,
        stray_weight: cfg.stray_weight,
        max_probes: cfg.max_probes_per_source.max(1),
    }
}

fn timestamp(us: i64) -> Timestamp {
    // Values come from valid Timestamps; a corrupt restored state falls back to the epoch.
    Timestamp::from_microsecond(us).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn finding_of(s: &SourceState) -> Option<Finding> {
    let v = s.verdict?;
    let (probes, failures, first_seen) = (s.probes, s.failures, timestamp(s.first_us));
    Some(Finding {
        source: s.addr,
        kind: v.kind,
        scan_type: s.scan_type(),
        detected_at: timestamp(v.at_us),
        evidence: Evidence {
            probes,
            ports: s.ports,
            destinations: s.destinations,
            failures,
            successes: s.successes,
            records: s.records,
            first_seen,
            last_seen: timestamp(s.last_us),
            top_ports: s.top_ports(TOP_PORTS),
        },
    })
}

impl PortScanDetector {
    pub fn new(cfg: &DetectConfig, served: ServedPorts) -> Self {
        let max_sources = cfg.max_sources.max(1);
        let prealloc = max_sources.min(4096);
        PortScanDetector {
            rules: rules_of(cfg),
            max_sources,
            served,
            slots: Vec::with_capacity(prealloc),
            index: foldhash::HashMap::with_capacity_and_hasher(prealloc, Default::default()),
            archived: VecDeque::new(),
            clock_us: None,
            next_sweep_us: i64::MIN,
            rng: 0x9E37_79B9_7F4A_7C15,
            stats: DetectStats::default(),
            long: LongHorizon::new(
                cfg.long_window.as_micros().clamp(1, i64::MAX as i128) as i64,
                cfg.long_failures,
                max_sources,
            ),
        }
    }

    /// Replace the served ports (the daemon refreshes them from `/proc` now and then); probes
    /// already seen keep their classification.
    pub fn set_served(&mut self, served: ServedPorts) {
        self.served = served;
    }

    /// Start loading the state of `src` into the cache, for a probe of it about to be fed: a
    /// hint, with no effect on what the detector decides (see [`crate::prefetch`]).
    #[inline]
    pub(crate) fn prefetch(&self, src: &IpAddr) {
        if let Some(&i) = self.index.get(src) {
            let state = &self.slots[i];
            crate::prefetch::lines(state, crate::prefetch::lines_of::<SourceState>());
            // The remembered probes: a record most often repeats one of the first.
            crate::prefetch::lines(state.entries.as_ptr(), 1);
        }
    }

    /// Feed one probe. Returns the finding exactly when its source first reaches a verdict
    /// (once per source until its state expires).
    pub fn observe(&mut self, probe: &Probe) -> Option<Finding> {
        self.stats.records += 1;
        let port = match probe.proto {
            Proto::Tcp | Proto::Udp | Proto::Sctp => probe.dport,
            // An IP protocol probe (`nmap -sO`): the protocol number is what is probed.
            Proto::Other(_) => Some(0),
            Proto::Icmp | Proto::Icmpv6 => None,
        };
        let Some(port) = port else {
            self.stats.ignored += 1;
            return None;
        };
        let t = probe.time.as_microsecond();
        let clock = self.clock_us.map_or(t, |c| c.max(t));
        self.clock_us = Some(clock);
        if clock >= self.next_sweep_us {
            self.expire(clock);
            self.next_sweep_us = clock.saturating_add(self.rules.window_us);
        }

        let i = match self.index.get(&probe.src) {
            Some(&i) => {
                if t.saturating_sub(self.slots[i].last_us) > self.rules.gap_us {
                    // Silent for longer than a session: start afresh.
                    self.archive(i);
                    self.stats.expired += 1;
                    self.slots[i].reset(probe.src, t);
                }
                i
            }
            None => self.admit(probe.src, t),
        };
        let scan_type = probe.scan_type();
        // Looked up once: a failure is a probe of a port not served, and a probe of a served
        // port is one of the signs of a packet of this host's own connections.
        let served = self.served.is_served(probe.proto, port);
        let seen = Seen {
            dst: &probe.dst,
            proto: probe.proto,
            port,
            time_us: t,
            failure: !served,
            scan_type,
            class: WeightClass::of(
                scan_type,
                probe.tcp_flags,
                self.looks_like_own_connection(probe, served, port),
            ),
        };
        let source = &mut self.slots[i];
        let before = source.probes;
        let undecided = source.verdict.is_none();
        let mut verdict = source.observe(seen, &self.rules);
        let new_probe = source.probes != before;
        self.stats.probes += u64::from(new_probe);
        // The long horizon: every new failed probe that carries weight, while the source has
        // no verdict this session.
        if undecided
            && verdict.is_none()
            && new_probe
            && seen.failure
            && self.rules.weight(seen.class) > 0.0
            && let Some((count, first_us)) =
                self.long
                    .observe(probe.src, probe.dst, probe.proto, port, t)
        {
            source.verdict = Some(Verdict {
                kind: FindingKind::LowAndSlow,
                at_us: t,
            });
            // The session holds only the last probe or two: the evidence is the long table's.
            source.probes = source.probes.max(count);
            source.failures = source.failures.max(count);
            source.first_us = source.first_us.min(first_us);
            verdict = Some(FindingKind::LowAndSlow);
        }
        self.stats.long_sources = self.long.sources();
        verdict?;
        // The evidence has made a verdict: the next one needs new evidence.
        self.long.clear(probe.src);
        self.stats.findings += 1;
        finding_of(&self.slots[i])
    }

    /// The kernel fast path banned `probe.src` at `probe` (its ban record): the probe counts
    /// as evidence, and the verdict is the kernel's (a later fast-scan verdict on the same
    /// evidence would only repeat it). `None` for a probe without a port (never logged by
    /// the fast path).
    pub fn kernel_ban(&mut self, probe: &Probe) -> Option<Finding> {
        // A verdict the same packet reached in user space is superseded by the kernel's.
        let _ = self.observe(probe);
        let i = *self.index.get(&probe.src)?;
        let slot = self.slots.get_mut(i)?;
        if slot.verdict.is_none() {
            self.stats.findings += 1;
        }
        slot.verdict = Some(Verdict {
            kind: FindingKind::KernelFastpath,
            at_us: probe.time.as_microsecond(),
        });
        self.long.clear(probe.src);
        finding_of(slot)
    }

    /// Whether a TCP packet could belong to one of this host's own connections, from its
    /// ports: it goes to a served port (a client of ours) or to a port in the local ephemeral
    /// range (a server we were talking to), or it comes from a well-known service port (below
    /// 1024). After a conntrack flush or a reboot those packets reach the LOG rule as new;
    /// a lone ACK from an ephemeral port to a closed well-known port fits none of this.
    /// `served`: whether `port` is served (the caller looked it up already).
    fn looks_like_own_connection(&self, probe: &Probe, served: bool, port: u16) -> bool {
        served || self.served.is_ephemeral(port) || probe.sport.is_some_and(|p| p < 1024)
    }

    /// Every source with a verdict so far (those still tracked with their evidence brought
    /// up to date, then those dropped since), in order of detection.
    pub fn findings(&self) -> Vec<Finding> {
        let mut out: Vec<Finding> = self.archived.iter().cloned().collect();
        out.extend(self.slots.iter().filter_map(finding_of));
        out.sort_by_key(|f| f.detected_at);
        out
    }

    /// Forget the verdict on `source` (its evidence stays), so that its next new probe reports
    /// it again. The engine calls this when a finding could not be acted on (the ban-rate cap):
    /// the source must get another chance to be banned, not a 30-minute free pass.
    pub fn clear_verdict(&mut self, source: IpAddr) {
        if let Some(slot) = self.index.get(&source).and_then(|&i| self.slots.get_mut(i)) {
            slot.verdict = None;
        }
    }

    /// The state of every tracked source, for a later run.
    pub fn snapshot(&self) -> DetectorState {
        DetectorState {
            version: STATE_VERSION,
            clock_us: self.clock_us,
            sources: self.slots.clone(),
            stats: self.stats,
            long: self.long.entries(),
        }
    }

    /// Continue from a snapshot under a (possibly changed) configuration. A state of another
    /// version is ignored with a warning; sources and entries beyond the configured bounds are
    /// dropped, the least suspicious first.
    pub fn restore(cfg: &DetectConfig, served: ServedPorts, state: DetectorState) -> Self {
        let mut d = PortScanDetector::new(cfg, served);
        if state.version != STATE_VERSION {
            tracing::warn!(
                found = state.version,
                expected = STATE_VERSION,
                "detector state of another version: starting afresh"
            );
            return d;
        }
        d.clock_us = state.clock_us;
        d.stats = state.stats;
        d.long.restore(state.long);
        let mut sources = state.sources;
        for s in &mut sources {
            if s.entries.len() > d.rules.max_probes {
                s.entries.sort_by_key(|e| e.last_us);
                let excess = s.entries.len() - d.rules.max_probes;
                s.entries.drain(..excess);
            }
            s.evaluate(&d.rules, None);
        }
        sources.sort_by(|a, b| b.closeness.total_cmp(&a.closeness));
        for s in sources {
            if d.index.contains_key(&s.addr) {
                continue;
            }
            if d.slots.len() >= d.max_sources {
                d.stats.evicted += 1;
                if let Some(f) = finding_of(&s) {
                    d.keep_finding(f);
                }
                continue;
            }
            d.index.insert(s.addr, d.slots.len());
            d.slots.push(s);
        }
        d.stats.sources = d.slots.len();
        d.stats.peak_sources = d.stats.peak_sources.max(d.slots.len());
        d
    }

    pub fn stats(&self) -> DetectStats {
        self.stats
    }

    /// A slot for a new source: a free one, else the least suspicious of a sample.
    fn admit(&mut self, addr: IpAddr, t: i64) -> usize {
        if self.slots.len() < self.max_sources {
            let i = self.slots.len();
            self.slots.push(SourceState::new(addr, t));
            self.index.insert(addr, i);
            self.stats.sources = self.slots.len();
            self.stats.peak_sources = self.stats.peak_sources.max(self.slots.len());
            return i;
        }
        let victim = self.pick_victim();
        self.archive(victim);
        let old = self.slots[victim].addr;
        let stale = self
            .clock_us
            .unwrap_or(t)
            .saturating_sub(self.slots[victim].last_us)
            > self.rules.gap_us;
        if stale {
            self.stats.expired += 1;
        } else {
            self.stats.evicted += 1;
        }
        self.index.remove(&old);
        self.slots[victim].reset(addr, t);
        self.index.insert(addr, victim);
        victim
    }

    /// Among a few random slots: an expired one, else the lowest closeness, else the stalest.
    fn pick_victim(&mut self) -> usize {
        let n = self.slots.len();
        let cutoff = self
            .clock_us
            .unwrap_or(i64::MIN)
            .saturating_sub(self.rules.gap_us);
        let mut best = self.random_below(n);
        let key = |s: &SourceState| {
            let stale = s.last_us < cutoff;
            (!stale, s.closeness, s.last_us)
        };
        for _ in 1..EVICTION_SAMPLES {
            let c = self.random_below(n);
            let (kc, kb) = (key(&self.slots[c]), key(&self.slots[best]));
            if (kc.0, kc.1, kc.2).partial_cmp(&(kb.0, kb.1, kb.2)) == Some(std::cmp::Ordering::Less)
            {
                best = c;
            }
        }
        best
    }

    /// xorshift64*: deterministic, so a replay evicts the same sources.
    fn random_below(&mut self, n: usize) -> usize {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((r >> 32) as usize * n) >> 32
    }

    /// Keep the verdict of a slot about to be reused or dropped.
    fn archive(&mut self, i: usize) {
        if let Some(f) = finding_of(&self.slots[i]) {
            self.keep_finding(f);
        }
    }

    fn keep_finding(&mut self, f: Finding) {
        if self.archived.len() >= self.max_sources {
            self.archived.pop_front();
            self.stats.findings_dropped += 1;
        }
        self.archived.push_back(f);
    }

    /// Drop every source silent for a whole session.
    fn expire(&mut self, clock: i64) {
        let cutoff = clock.saturating_sub(self.rules.gap_us);
        let mut i = 0;
        while i < self.slots.len() {
            if self.slots[i].last_us < cutoff {
                self.archive(i);
                let gone = self.slots.swap_remove(i);
                self.index.remove(&gone.addr);
                if let Some(moved) = self.slots.get(i) {
                    self.index.insert(moved.addr, i);
                }
                self.stats.expired += 1;
            } else {
                i += 1;
            }
        }
        self.stats.sources = self.slots.len();
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use jiff::SignedDuration;

    use super::*;
    use crate::record::{FindingKind, IfName, ScanType, TcpFlags};

    const BOOT: &str = "2026-11-24T22:56:18Z";

    /// Just enough of a kmsg / RFC 3339 syslog netfilter line for these tests (the real parser
    /// is the parse stage's).
    fn parse_line(line: &str) -> Probe {
        let (time, body) = if let Some((head, body)) = line.split_once(';') {
            let usec: i64 = head.split(',').nth(2).unwrap().parse().unwrap();
            let boot: Timestamp = BOOT.parse().unwrap();
            (boot + SignedDuration::from_micros(usec), body)
        } else {
            let (stamp, body) = line.split_once(' ').unwrap();
            (stamp.parse().unwrap(), body)
        };
        let field = |k: &str| {
            body.split_ascii_whitespace()
                .find_map(|w| w.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
        };
        let mut flags = 0u8;
        for w in body.split_ascii_whitespace() {
            flags |= match w {
                "FIN" => TcpFlags::FIN,
                "SYN" => TcpFlags::SYN,
                "RST" => TcpFlags::RST,
                "PSH" => TcpFlags::PSH,
                "ACK" => TcpFlags::ACK,
                "URG" => TcpFlags::URG,
                "ECE" => TcpFlags::ECE,
                "CWR" => TcpFlags::CWR,
                _ => 0,
            };
        }
        let proto = match field("PROTO").unwrap() {
            "TCP" => Proto::Tcp,
            "UDP" => Proto::Udp,
            "ICMP" => Proto::Icmp,
            "UDPLITE" => Proto::Other(136),
            "AH" => Proto::Other(51),
            "ESP" => Proto::Other(50),
            n => Proto::Other(n.parse().unwrap()),
        };
        let ported = matches!(proto, Proto::Tcp | Proto::Udp);
        Probe {
            time,
            src: field("SRC").unwrap().parse().unwrap(),
            dst: field("DST").unwrap().parse().unwrap(),
            proto,
            sport: field("SPT").filter(|_| ported).map(|v| v.parse().unwrap()),
            dport: field("DPT").filter(|_| ported).map(|v| v.parse().unwrap()),
            icmp_type: None,
            tcp_flags: TcpFlags(if proto == Proto::Tcp { flags } else { 0 }),
            iface: IfName::new(b"vt").unwrap(),
            ttl: None,
            window: None,
            len: None,
        }
    }

    fn sample(name: &str) -> Vec<Probe> {
        let path = format!("{}/testdata/samples/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(parse_line)
            .collect()
    }

    fn t0() -> Timestamp {
        "2026-11-24T12:00:00Z".parse().unwrap()
    }

    pub(super) fn syn(src: &str, dst: &str, dport: u16, time: Timestamp) -> Probe {
        Probe {
            time,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            proto: Proto::Tcp,
            sport: Some(40000),
            dport: Some(dport),
            icmp_type: None,
            tcp_flags: TcpFlags(TcpFlags::SYN),
            iface: IfName::new(b"eth0").unwrap(),
            ttl: Some(64),
            window: Some(64240),
            len: Some(60),
        }
    }

    const SEED_PORTS: [u16; 12] = [21, 22, 23, 25, 53, 80, 110, 135, 139, 443, 445, 3389];

    fn detector(served: ServedPorts) -> PortScanDetector {
        PortScanDetector::new(&DetectConfig::default(), served)
    }

    /// Feed everything; (index of each probe that produced a finding, the finding).
    fn run(d: &mut PortScanDetector, probes: &[Probe]) -> Vec<(usize, Finding)> {
        probes
            .iter()
            .enumerate()
            .filter_map(|(i, p)| d.observe(p).map(|f| (i, f)))
            .collect()
    }

    #[test]
    fn seed_lab_scan_is_caught_within_eight_probes() {
        for file in [
            "kmsg-nmap-sS-seed-12ports.txt",
            "syslog-rfc3339-nmap-sS-seed-12ports.txt",
        ] {
            let probes = sample(file);
            assert_eq!(probes.len(), 12);
            let mut d = detector(ServedPorts::new([]));
            let found = run(&mut d, &probes);
            assert_eq!(found.len(), 1, "{file}: {found:?}");
            let (i, f) = &found[0];
            assert!(*i < 8, "{file}: caught at probe {}", i + 1);
            assert_eq!(f.kind, FindingKind::FastScan);
            assert_eq!(f.scan_type, ScanType::Syn);
            assert_eq!(f.source, "10.250.0.2".parse::<IpAddr>().unwrap());
            assert_eq!(f.detected_at, probes[*i].time);
            // Evidence is brought up to date with the probes after the verdict.
            let all = d.findings();
            assert_eq!(all.len(), 1);
            let e = &all[0].evidence;
            assert_eq!((e.probes, e.ports, e.destinations), (12, 12, 1));
            assert_eq!((e.failures, e.successes, e.records), (12, 0, 12));
            assert_eq!(e.first_seen, probes[0].time);
            assert_eq!(e.last_seen, probes[11].time);
            assert_eq!(e.top_ports.len(), TOP_PORTS);
            eprintln!("{file}: caught at probe {}", i + 1);
        }
    }

    #[test]
    fn replay_is_independent_of_the_wall_clock() {
        // The same scan shifted by a year gives the same verdicts at the same probes.
        let probes = sample("kmsg-nmap-sS-seed-12ports.txt");
        let shifted: Vec<Probe> = probes
            .iter()
            .map(|p| Probe {
                time: p.time - SignedDuration::from_hours(24 * 365),
                ..*p
            })
            .collect();
        let a = run(&mut detector(ServedPorts::new([])), &probes);
        let b = run(&mut detector(ServedPorts::new([])), &shifted);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].0, b[0].0);
        assert_eq!(a[0].1.kind, b[0].1.kind);
    }

    #[test]
    fn paranoid_t1_scan_is_caught_before_it_ends() {
        // nmap -T1: one probe every 15 s.
        let probes: Vec<Probe> = SEED_PORTS
            .iter()
            .enumerate()
            .map(|(i, &port)| {
                syn(
                    "203.0.113.5",
                    "192.0.2.1",
                    port,
                    t0() + SignedDuration::from_secs(15 * i as i64),
                )
            })
            .collect();
        let found = run(&mut detector(ServedPorts::new([(Proto::Tcp, 22)])), &probes);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].0 < 11, "caught at probe {}", found[0].0 + 1);
        eprintln!(
            "-T1: caught at probe {} by {}",
            found[0].0 + 1,
            found[0].1.kind
        );
    }

    #[test]
    fn sneaky_t0_scan_with_open_ports_is_caught() {
        // nmap -T0: 5 minutes between probes; 4 open ports among 16.
        let served = ServedPorts::new([22, 80, 443, 25].map(|p| (Proto::Tcp, p)));
        let ports = [
            21, 22, 23, 25, 53, 80, 110, 135, 139, 443, 445, 3389, 8080, 8443, 5900, 6379,
        ];
        let probes: Vec<Probe> = ports
            .iter()
            .enumerate()
            .map(|(i, &port)| {
                syn(
                    "203.0.113.6",
                    "192.0.2.1",
                    port,
                    t0() + SignedDuration::from_mins(5 * i as i64),
                )
            })
            .collect();
        let found = run(&mut detector(served), &probes);
        assert_eq!(found.len(), 1, "{found:?}");
        eprintln!(
            "-T0: caught at probe {} by {}",
            found[0].0 + 1,
            found[0].1.kind
        );
    }

    #[test]
    fn thousand_port_scans_are_caught() {
        for (label, gap_us) in [("-T4", 500), ("-T2", 400_000)] {
            let probes: Vec<Probe> = (1..=1000u16)
                .map(|port| {
                    syn(
                        "203.0.113.7",
                        "192.0.2.1",
                        port,
                        t0() + SignedDuration::from_micros(gap_us * i64::from(port)),
                    )
                })
                .collect();
            let mut d = detector(ServedPorts::new([(Proto::Tcp, 22), (Proto::Tcp, 80)]));
            let found = run(&mut d, &probes);
            assert_eq!(found.len(), 1, "{label}");
            assert!(found[0].0 < 8, "{label}: caught at {}", found[0].0 + 1);
            let f = &d.findings()[0];
            assert_eq!(f.evidence.probes, 1000);
            assert_eq!(f.evidence.successes, 2);
            assert!(f.evidence.top_ports.len() <= TOP_PORTS);
        }
    }

    #[test]
    fn stealth_scans_are_caught_within_three_probes() {
        for (file, scan_type) in [
            ("kmsg-nmap-sF.txt", ScanType::Fin),
            ("kmsg-nmap-sN.txt", ScanType::Null),
            ("kmsg-nmap-sX.txt", ScanType::Xmas),
            ("kmsg-nmap-sM.txt", ScanType::Maimon),
        ] {
            let probes = sample(file);
            let found = run(&mut detector(ServedPorts::new([])), &probes);
            assert_eq!(found.len(), 1, "{file}");
            assert!(found[0].0 < 3, "{file}: caught at {}", found[0].0 + 1);
            assert_eq!(found[0].1.scan_type, scan_type, "{file}");
        }
    }

    fn ack(src: &str, sport: u16, dport: u16, flags: u8, time: Timestamp) -> Probe {
        Probe {
            sport: Some(sport),
            tcp_flags: TcpFlags(flags),
            ..syn(src, "192.0.2.1", dport, time)
        }
    }

    #[test]
    fn ack_scan_of_four_closed_ports_is_caught() {
        // The real 4-port -sA sample (source port 35428, closed well-known ports): no past
        // connection of this host looks like that, so each ACK weighs as a stealth probe.
        let probes = sample("kmsg-nmap-sA.txt");
        let found = run(&mut detector(ServedPorts::new([])), &probes);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].0 < 3, "caught at probe {}", found[0].0 + 1);
        assert_eq!(found[0].1.scan_type, ScanType::Ack);
        eprintln!("-sA of 4 ports: caught at probe {}", found[0].0 + 1);
        // -sW (window scan) sends the same ACKs.
        let found = run(
            &mut detector(ServedPorts::new([])),
            &sample("kmsg-nmap-sW.txt"),
        );
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn strays_after_a_conntrack_flush_are_weak() {
        let served = ServedPorts::new([(Proto::Tcp, 22), (Proto::Tcp, 443)]);
        // This host held 30 connections to a busy server (port 8080, not well-known); after a
        // flush the server's next packets (ACK, PSH ACK, FIN ACK, RST) reach 30 of this
        // host's ephemeral ports.
        let flags = [
            TcpFlags::ACK,
            TcpFlags::ACK | TcpFlags::PSH,
            TcpFlags::ACK | TcpFlags::FIN,
            TcpFlags::RST,
            TcpFlags::RST | TcpFlags::ACK,
        ];
        let server: Vec<Probe> = (0..30u16)
            .map(|i| {
                ack(
                    "198.51.100.80",
                    8080,
                    40_000 + 7 * i,
                    flags[usize::from(i) % flags.len()],
                    t0() + SignedDuration::from_millis(i64::from(i)),
                )
            })
            .collect();
        let mut d = detector(served.clone());
        assert!(run(&mut d, &server).is_empty());
        assert_eq!(d.stats().probes, 30);
        // ... also from a well-known port (a web server) to ports outside the range.
        let web: Vec<Probe> = (0..30u16)
            .map(|i| ack("198.51.100.81", 443, 1024 + i, TcpFlags::ACK, t0()))
            .collect();
        assert!(run(&mut detector(served.clone()), &web).is_empty());
        // A busy client's packets to a served port: one probe, a success.
        let client: Vec<Probe> = (0..30u16)
            .map(|i| ack("198.51.100.82", 50_000 + i, 443, TcpFlags::ACK, t0()))
            .collect();
        assert!(run(&mut detector(served.clone()), &client).is_empty());
        // Another ephemeral range: the same ports are outside it, so they count in full.
        let narrow = served.clone().with_ephemeral((61_000, 61_999));
        assert_eq!(run(&mut detector(narrow), &server).len(), 1);
        // An ACK to a closed well-known port from an ephemeral port is a probe like any other.
        let scan: Vec<Probe> = [21, 23, 25]
            .into_iter()
            .map(|p| ack("203.0.113.8", 45_000, p, TcpFlags::ACK, t0()))
            .collect();
        let found = run(&mut detector(served), &scan);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, 2, "3 ACKs of weight 2");
    }

    #[test]
    fn ip_protocol_scan_is_caught() {
        // The real `nmap -sO -p 1,2,4,6,17,41,47,50,51,89,103,112,132,136,255` capture: one
        // record per protocol (TCP, UDP and ICMP as ordinary packets), AH/ESP/UDPLITE named.
        let probes = sample("kmsg-nmap-sO.txt");
        let mut d = detector(ServedPorts::new([]));
        let found = run(&mut d, &probes);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].0 < 8, "caught at record {}", found[0].0 + 1);
        assert_eq!(found[0].1.scan_type, ScanType::Other);
        let e = &d.findings()[0].evidence;
        assert_eq!(e.probes, 14, "15 records, ICMP not scored");
        eprintln!(
            "-sO of 15 protocols: caught at record {}, {} probes",
            found[0].0 + 1,
            e.probes
        );
        // A tunnel peer: GRE, ESP and OSPF all day long is three probes, not a scan.
        let peer: Vec<Probe> = (0..600)
            .map(|i| Probe {
                proto: Proto::Other([47, 50, 89][i % 3]),
                sport: None,
                dport: None,
                tcp_flags: TcpFlags(0),
                ..syn(
                    "198.51.100.90",
                    "192.0.2.1",
                    0,
                    t0() + SignedDuration::from_secs(i as i64),
                )
            })
            .collect();
        let mut d = detector(ServedPorts::new([]));
        assert!(run(&mut d, &peer).is_empty());
        assert_eq!(d.stats().probes, 3);
    }

    #[test]
    fn udp_and_ipv6_scans_are_caught() {
        let probes = sample("kmsg-nmap-sU.txt");
        let found = run(&mut detector(ServedPorts::new([])), &probes);
        // 4 ports, some probed twice: 4 probes, below the fast threshold of 6.
        assert!(found.is_empty(), "{found:?}");
        let six: Vec<Probe> = (0..6u16)
            .map(|i| Probe {
                proto: Proto::Udp,
                tcp_flags: TcpFlags(0),
                ..syn("2001:db8::66", "2001:db8::1", 100 + i, t0())
            })
            .collect();
        let found = run(&mut detector(ServedPorts::new([])), &six);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1.scan_type, ScanType::Udp);
    }

    #[test]
    fn busy_client_to_one_or_two_ports_is_not_a_scanner() {
        for served in [
            ServedPorts::new([(Proto::Tcp, 443), (Proto::Tcp, 80)]),
            ServedPorts::new([]),
        ] {
            let probes: Vec<Probe> = (0..200)
                .map(|i| {
                    let port = if i % 3 == 0 { 80 } else { 443 };
                    syn(
                        "198.51.100.20",
                        "192.0.2.1",
                        port,
                        t0() + SignedDuration::from_millis(300 * i),
                    )
                })
                .collect();
            let mut d = detector(served);
            assert!(run(&mut d, &probes).is_empty());
            let s = d.stats();
            assert_eq!((s.records, s.probes), (200, 2));
        }
    }

    #[test]
    fn monitoring_host_is_not_a_scanner() {
        // Checks 5 ports every minute for 6 hours; 2 of them closed, then all of them closed.
        for served in [
            ServedPorts::new([(Proto::Tcp, 22), (Proto::Tcp, 80), (Proto::Tcp, 443)]),
            ServedPorts::new([]),
        ] {
            let mut d = detector(served);
            for minute in 0..360 {
                for (k, port) in [22, 80, 443, 3306, 5432].into_iter().enumerate() {
                    let t = t0() + SignedDuration::from_secs(60 * minute + k as i64);
                    assert!(
                        d.observe(&syn("198.51.100.30", "192.0.2.1", port, t))
                            .is_none()
                    );
                }
            }
            assert!(d.findings().is_empty());
        }
    }

    #[test]
    fn open_ports_are_not_an_alibi_and_are_no_crime() {
        // 2 open among 12: still a scanner, fast or slow (15 s apart).
        let served = ServedPorts::new([(Proto::Tcp, 22), (Proto::Tcp, 443)]);
        for gap in [1, 15_000_000] {
            let probes: Vec<Probe> = SEED_PORTS
                .iter()
                .enumerate()
                .map(|(i, &p)| {
                    syn(
                        "203.0.113.9",
                        "192.0.2.1",
                        p,
                        t0() + SignedDuration::from_micros(gap * i as i64),
                    )
                })
                .collect();
            let found = run(&mut detector(served.clone()), &probes);
            assert_eq!(found.len(), 1, "gap {gap} µs");
        }
        // A client that only ever reaches open ports, 40 of them, fast: never a scanner.
        let open: Vec<(Proto, u16)> = (8000..8040).map(|p| (Proto::Tcp, p)).collect();
        let probes: Vec<Probe> = (8000..8040u16)
            .map(|p| {
                syn(
                    "198.51.100.40",
                    "192.0.2.1",
                    p,
                    t0() + SignedDuration::from_millis(i64::from(p)),
                )
            })
            .collect();
        assert!(run(&mut detector(ServedPorts::new(open)), &probes).is_empty());
    }

    #[test]
    fn decoys_are_tracked_independently() {
        // The real sample: 3 sources, 2 ports each: no verdict, 3 sources tracked.
        let probes = sample("kmsg-nmap-sS-decoys.txt");
        let mut d = detector(ServedPorts::new([]));
        assert!(run(&mut d, &probes).is_empty());
        assert_eq!(d.stats().sources, 3);
        // The seed scan with two decoys: three findings, one per source.
        let after = probes[probes.len() - 1].time + SignedDuration::from_secs(1);
        let mut interleaved = Vec::new();
        for (i, &port) in SEED_PORTS.iter().enumerate() {
            for src in ["10.250.0.77", "10.250.0.78", "10.250.0.2"] {
                interleaved.push(syn(
                    src,
                    "10.250.0.1",
                    port,
                    after + SignedDuration::from_micros(i as i64 * 100),
                ));
            }
        }
        let found = run(&mut d, &interleaved);
        let mut sources: Vec<IpAddr> = found.iter().map(|(_, f)| f.source).collect();
        sources.sort();
        assert_eq!(sources.len(), 3);
        sources.dedup();
        assert_eq!(sources.len(), 3);
    }

    #[test]
    fn sweep_of_one_port_across_destinations() {
        let probes: Vec<Probe> = (1..=20u8)
            .map(|h| {
                let dst = IpAddr::V4(Ipv4Addr::new(192, 0, 2, h));
                Probe {
                    dst,
                    ..syn(
                        "203.0.113.10",
                        "192.0.2.1",
                        3389,
                        t0() + SignedDuration::from_millis(i64::from(h) * 20),
                    )
                }
            })
            .collect();
        let found = run(&mut detector(ServedPorts::new([])), &probes);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1.kind, FindingKind::Sweep);
        assert_eq!(found[0].0, 5, "the 6th destination");
        // Stealth sweep: named a sweep, too, though the fast rule trips first.
        let fin: Vec<Probe> = probes
            .iter()
            .map(|p| Probe {
                tcp_flags: TcpFlags(TcpFlags::FIN),
                src: "203.0.113.11".parse().unwrap(),
                ..*p
            })
            .collect();
        let found = run(&mut detector(ServedPorts::new([])), &fin);
        assert_eq!(found[0].1.kind, FindingKind::Sweep);
    }

    #[test]
    fn one_verdict_per_session_and_state_expires_by_record_time() {
        let mut d = detector(ServedPorts::new([]));
        let scan = |start: Timestamp, ports: std::ops::Range<u16>| -> Vec<Probe> {
            ports
                .map(|p| syn("203.0.113.12", "192.0.2.1", p, start))
                .collect()
        };
        assert_eq!(run(&mut d, &scan(t0(), 1..30)).len(), 1);
        // Five probes more, 20 minutes later: same session, no second verdict.
        assert!(run(&mut d, &scan(t0() + SignedDuration::from_mins(20), 30..35)).is_empty());
        // 31 minutes of silence later, a new scan: a new verdict.
        let later = t0() + SignedDuration::from_mins(51);
        assert_eq!(run(&mut d, &scan(later, 100..110)).len(), 1);
        assert_eq!(d.findings().len(), 2);
        assert_eq!(d.stats().expired, 1);
        // Another source, far later, lets the periodic sweep drop the silent one.
        d.observe(&syn(
            "198.51.100.1",
            "192.0.2.1",
            22,
            later + SignedDuration::from_hours(2),
        ));
        assert_eq!(d.stats().sources, 1);
        assert_eq!(d.findings().len(), 2, "verdicts survive their sources");
        // Probes spread 31 minutes apart from one source never add up in a session (the long
        // horizon is what catches those: off here, see `low_and_slow_is_caught_...`).
        let no_long = DetectConfig {
            long_failures: 0,
            ..DetectConfig::default()
        };
        let mut d = PortScanDetector::new(&no_long, ServedPorts::new([]));
        for i in 0..40 {
            let t = t0() + SignedDuration::from_mins(31 * i);
            assert!(
                d.observe(&syn("198.51.100.2", "192.0.2.1", 1000 + i as u16, t))
                    .is_none()
            );
        }
    }

    #[test]
    fn small_disorder_is_tolerated() {
        let mut probes = sample("kmsg-nmap-sS-seed-12ports.txt");
        probes.swap(0, 3);
        probes.swap(5, 6);
        probes.reverse();
        let found = run(&mut detector(ServedPorts::new([])), &probes);
        assert_eq!(found.len(), 1);
        assert!(found[0].0 < 8);
    }

    #[test]
    fn icmp_is_counted_and_ignored() {
        let mut d = detector(ServedPorts::new([]));
        for ty in 0..20u8 {
            let p = Probe {
                proto: Proto::Icmp,
                dport: None,
                sport: None,
                icmp_type: Some(ty),
                tcp_flags: TcpFlags(0),
                ..syn("203.0.113.13", "192.0.2.1", 0, t0())
            };
            assert!(d.observe(&p).is_none());
        }
        let s = d.stats();
        assert_eq!((s.records, s.ignored, s.sources), (20, 20, 0));
    }

    #[test]
    fn snapshot_carries_a_scan_across_runs() {
        // nmap -T1 straddling two cron runs: 4 probes in the first, the rest in the second.
        let probes: Vec<Probe> = SEED_PORTS
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                syn(
                    "203.0.113.14",
                    "192.0.2.1",
                    p,
                    t0() + SignedDuration::from_secs(15 * i as i64),
                )
            })
            .collect();
        let cfg = DetectConfig::default();
        let mut first = PortScanDetector::new(&cfg, ServedPorts::new([]));
        assert!(run(&mut first, &probes[..4]).is_empty());
        let json = serde_json::to_string(&first.snapshot()).unwrap();
        let state: DetectorState = serde_json::from_str(&json).unwrap();
        assert_eq!(state.sources(), 1);
        let mut second = PortScanDetector::restore(&cfg, ServedPorts::new([]), state);
        let found = run(&mut second, &probes[4..]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1.evidence.probes, 6);
        assert_eq!(second.stats().records, 12);
        // Restoring under a smaller configuration keeps the bounds.
        let small = DetectConfig {
            max_sources: 1,
            max_probes_per_source: 2,
            ..cfg.clone()
        };
        let mut many = PortScanDetector::new(&cfg, ServedPorts::new([]));
        run(&mut many, &probes[..5]);
        many.observe(&syn("198.51.100.3", "192.0.2.1", 443, t0()));
        let d = PortScanDetector::restore(&small, ServedPorts::new([]), many.snapshot());
        assert_eq!(d.stats().sources, 1);
        assert_eq!(
            d.slots[0].addr,
            "203.0.113.14".parse::<IpAddr>().unwrap(),
            "the closer one stays"
        );
        assert_eq!(d.slots[0].entries.len(), 2);
        // Another version starts afresh.
        let mut other = first.snapshot();
        other.version = STATE_VERSION + 1;
        assert_eq!(
            PortScanDetector::restore(&cfg, ServedPorts::new([]), other)
                .stats()
                .sources,
            0
        );
    }

    /// One SYN every `gap` from `src` to `ports` (closed), starting at `start`.
    fn slow(src: &str, ports: &[u16], start: Timestamp, gap: SignedDuration) -> Vec<Probe> {
        ports
            .iter()
            .enumerate()
            .map(|(i, &p)| syn(src, "192.0.2.1", p, start + gap * i as i32))
            .collect()
    }

    #[test]
    fn low_and_slow_is_caught_over_the_long_window() {
        // About 20 distinct closed ports over 15 hours, one every 45 minutes: every probe
        // starts a new session, so only the long horizon sees them.
        let ports: Vec<u16> = (0..20).map(|i| 1000 + 37 * i).collect();
        let probes = slow("203.0.113.30", &ports, t0(), SignedDuration::from_mins(45));
        let mut d = detector(ServedPorts::new([]));
        let found = run(&mut d, &probes);
        assert_eq!(found.len(), 1, "{found:?}");
        let (i, f) = &found[0];
        assert_eq!(*i, 11, "the 12th probe, 8 h 15 min in");
        assert_eq!(f.kind, FindingKind::LowAndSlow);
        assert_eq!((f.evidence.probes, f.evidence.failures), (12, 12));
        assert_eq!(f.evidence.first_seen, t0());
        eprintln!(
            "low and slow (45 min apart): caught at probe {} after {}",
            i + 1,
            f.detected_at - t0()
        );
        // The evidence is used up: 8 more probes make no second verdict yet, 4 more do.
        let more: Vec<u16> = (0..12).map(|i| 5000 + i).collect();
        let after = probes[19].time + SignedDuration::from_mins(45);
        let found = run(
            &mut d,
            &slow("203.0.113.30", &more, after, SignedDuration::from_mins(45)),
        );
        assert_eq!(found.iter().map(|f| f.0).collect::<Vec<_>>(), vec![3]);
    }

    #[test]
    fn long_horizon_spares_monitors_and_rare_mistakes() {
        let mut d = detector(ServedPorts::new([(Proto::Tcp, 443)]));
        // A monitor checks the same 5 closed ports every hour for two days.
        for hour in 0..48 {
            let start = t0() + SignedDuration::from_hours(hour);
            let round = slow(
                "198.51.100.31",
                &[3306, 5432, 6379, 9200, 11211],
                start,
                SignedDuration::from_secs(1),
            );
            assert!(run(&mut d, &round).is_empty());
        }
        // A client that hits one new closed port every 3 hours (8 a day) for two days.
        let mistakes: Vec<u16> = (0..16).map(|i| 7000 + i).collect();
        let probes = slow(
            "198.51.100.32",
            &mistakes,
            t0(),
            SignedDuration::from_hours(3),
        );
        assert!(run(&mut d, &probes).is_empty());
        // Strays weigh nothing and never reach the long table.
        let strays: Vec<Probe> = (0..40u16)
            .map(|i| Probe {
                sport: Some(443),
                tcp_flags: TcpFlags(TcpFlags::ACK),
                ..syn(
                    "198.51.100.33",
                    "192.0.2.1",
                    40_000 + i,
                    t0() + SignedDuration::from_mins(40 * i64::from(i)),
                )
            })
            .collect();
        assert!(run(&mut d, &strays).is_empty());
        // Off with long_failures = 0.
        let cfg = DetectConfig {
            long_failures: 0,
            ..DetectConfig::default()
        };
        let ports: Vec<u16> = (0..20).map(|i| 1000 + i).collect();
        let probes = slow("203.0.113.34", &ports, t0(), SignedDuration::from_mins(45));
        let mut off = PortScanDetector::new(&cfg, ServedPorts::new([]));
        assert!(run(&mut off, &probes).is_empty());
        assert_eq!(off.stats().long_sources, 0);
    }

    #[test]
    fn spoofed_flood_does_not_flush_a_slow_scanner() {
        let cfg = DetectConfig {
            max_sources: 1000,
            ..DetectConfig::default()
        };
        let mut d = PortScanDetector::new(&cfg, ServedPorts::new([]));
        let ports: Vec<u16> = (0..12).map(|i| 2000 + i).collect();
        let scan = slow("203.0.113.35", &ports, t0(), SignedDuration::from_mins(40));
        assert!(run(&mut d, &scan[..10]).is_empty());
        // 200 000 spoofed one-probe sources between its 10th and 11th probe.
        let mut rng = Rng(99);
        let flood_start = scan[9].time + SignedDuration::from_secs(1);
        for i in 0..200_000i64 {
            let r = rng.next();
            let p = Probe {
                src: IpAddr::V4(Ipv4Addr::from(r as u32)),
                ..syn(
                    "0.0.0.0",
                    "192.0.2.1",
                    (r >> 32) as u16,
                    flood_start + SignedDuration::from_micros(i * 100),
                )
            };
            d.observe(&p);
        }
        assert!(d.stats().long_sources <= 1000);
        let found = run(&mut d, &scan[10..]);
        assert_eq!(found.len(), 1, "the scanner survived the flood");
        assert_eq!(found[0].1.kind, FindingKind::LowAndSlow);
        eprintln!(
            "long table after a 200k-source flood: {} sources, at most {} bytes each",
            d.stats().long_sources,
            std::mem::size_of::<LongEntry>() + LONG_CAPACITY * 8 + 40
        );
    }

    #[test]
    fn the_long_table_survives_a_cron_run() {
        let cfg = DetectConfig::default();
        let ports: Vec<u16> = (0..12).map(|i| 3000 + i).collect();
        let scan = slow("203.0.113.36", &ports, t0(), SignedDuration::from_mins(50));
        let mut first = PortScanDetector::new(&cfg, ServedPorts::new([]));
        assert!(run(&mut first, &scan[..11]).is_empty());
        let json = serde_json::to_string(&first.snapshot()).unwrap();
        let mut second = PortScanDetector::restore(
            &cfg,
            ServedPorts::new([]),
            serde_json::from_str(&json).unwrap(),
        );
        assert_eq!(run(&mut second, &scan[11..]).len(), 1);
        // A state written before the table existed still restores.
        let mut old: serde_json::Value = serde_json::from_str(&json).unwrap();
        old.as_object_mut().unwrap().remove("long");
        let state: DetectorState = serde_json::from_value(old).unwrap();
        assert_eq!(state.sources(), first.snapshot().sources());
    }

    /// A deterministic generator for the synthetic floods.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn eviction_keeps_the_sources_closest_to_a_verdict() {
        let cfg = DetectConfig {
            max_sources: 100,
            ..DetectConfig::default()
        };
        let mut d = PortScanDetector::new(&cfg, ServedPorts::new([(Proto::Tcp, 443)]));
        // A suspect with 5 failures (one short of a verdict), then 10 000 one-probe sources.
        for p in 1..=5 {
            d.observe(&syn("203.0.113.15", "192.0.2.1", p, t0()));
        }
        let mut rng = Rng(7);
        for i in 0..10_000 {
            let src = IpAddr::V4(Ipv4Addr::from(rng.next() as u32));
            let port = if i % 2 == 0 {
                443
            } else {
                1000 + (i % 7) as u16
            };
            let p = Probe {
                src,
                ..syn(
                    "0.0.0.0",
                    "192.0.2.1",
                    port,
                    t0() + SignedDuration::from_millis(i),
                )
            };
            d.observe(&p);
            assert!(d.stats().sources <= 100);
        }
        assert!(d.stats().evicted >= 9_900);
        let f = d.observe(&syn(
            "203.0.113.15",
            "192.0.2.1",
            6,
            t0() + SignedDuration::from_secs(11),
        ));
        assert_eq!(f.map(|f| f.evidence.probes), Some(6));
    }

    #[test]
    fn spoofed_flood_stays_bounded_and_the_scanner_is_still_caught() {
        let cfg = DetectConfig {
            max_sources: 10_000,
            ..DetectConfig::default()
        };
        let mut d = PortScanDetector::new(&cfg, ServedPorts::new([]));
        let mut rng = Rng(0x1234_5678);
        let mut caught = None;
        let mut scanner_probes = 0usize;
        for i in 0..1_000_000u64 {
            let t = t0() + SignedDuration::from_micros(i as i64 * 10);
            let p = if i % 1000 == 0 {
                scanner_probes += 1;
                syn("203.0.113.66", "192.0.2.1", (i / 1000) as u16 + 1, t)
            } else {
                let r = rng.next();
                Probe {
                    src: IpAddr::V4(Ipv4Addr::from(r as u32)),
                    ..syn("0.0.0.0", "192.0.2.1", (r >> 32) as u16, t)
                }
            };
            if let Some(f) = d.observe(&p)
                && f.source == "203.0.113.66".parse::<IpAddr>().unwrap()
            {
                caught.get_or_insert(scanner_probes);
            }
            assert!(d.slots.len() <= 10_000 && d.index.len() <= 10_000);
        }
        let s = d.stats();
        eprintln!("flood: {s:?}; scanner caught at its probe {caught:?}");
        assert!(caught.is_some());
        assert_eq!(s.peak_sources, 10_000);
    }

    #[test]
    fn throughput_on_a_million_probes() {
        // Prints the figure; run with `--release -- --nocapture` for a meaningful one.
        let mut rng = Rng(42);
        let sources: Vec<IpAddr> = (0..20_000)
            .map(|_| IpAddr::V4(Ipv4Addr::from(rng.next() as u32)))
            .collect();
        let probes: Vec<Probe> = (0..1_000_000u64)
            .map(|i| {
                let r = rng.next();
                let src = sources[(r % sources.len() as u64) as usize];
                let port = if r & 0x300 == 0 {
                    (r >> 40) as u16
                } else {
                    443
                };
                Probe {
                    src,
                    ..syn(
                        "0.0.0.0",
                        "192.0.2.1",
                        port,
                        t0() + SignedDuration::from_micros(i as i64 * 50),
                    )
                }
            })
            .collect();
        let mut d = detector(ServedPorts::new([(Proto::Tcp, 443)]));
        let start = std::time::Instant::now();
        let mut findings = 0;
        for p in &probes {
            findings += usize::from(d.observe(p).is_some());
        }
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "detect: {} probes in {secs:.3} s = {:.0} probes/s ({findings} findings, {:?})",
            probes.len(),
            probes.len() as f64 / secs,
            d.stats()
        );
        assert_eq!(d.stats().records, 1_000_000);
    }
}
/// What a full checkpoint costs at the detector's bound, printed (not asserted: times belong
/// in benchmarks): `cargo test --release --lib detect::at_the_bound -- --ignored
/// --nocapture`. Ignored by default: it is a measurement. The daemon's thread pays the
/// snapshot; JSON and store writes are the saving thread's (`engine::saver`).
#[cfg(test)]
mod at_the_bound {
    use super::*;

    #[test]
    #[ignore]
    fn snapshot_and_json_of_a_full_detector() {
        let cfg = DetectConfig::default();
        let mut d = PortScanDetector::new(&cfg, ServedPorts::new([]));
        let t0: Timestamp = "2026-11-24T23:00:00Z".parse().unwrap();
        let n = u32::try_from(cfg.max_sources).unwrap();
        for s in 0..n {
            let src = std::net::Ipv4Addr::from(0x0a00_0000 + s).to_string();
            let time = t0 + jiff::SignedDuration::from_millis(i64::from(s));
            for p in 0..4u16 {
                d.observe(&super::tests::syn(&src, "192.0.2.1", 1000 + p, time));
            }
        }
        let t = std::time::Instant::now();
        let snap = d.snapshot();
        let snapshot = t.elapsed();
        let json = serde_json::to_string(&snap).unwrap();
        println!(
            "{} sources of 4 probes: snapshot {snapshot:?}, JSON {:?}, {} bytes",
            snap.sources(),
            t.elapsed() - snapshot,
            json.len()
        );
        let dir = tempfile::tempdir().unwrap();
        let mut store = crate::store::Store::open(dir.path()).unwrap();
        for round in 1..=3 {
            let t = std::time::Instant::now();
            let mut tx = store.transaction().unwrap();
            tx.set_detector_state(&json, t0).unwrap();
            tx.commit().unwrap();
            println!("store write {round}: {:?}", t.elapsed());
        }
        let back: DetectorState = serde_json::from_str(&json).unwrap();
        assert_eq!(back.sources(), cfg.max_sources);
    }
}
