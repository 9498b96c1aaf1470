//! The state kept per source, and the rules that read it.
//!
//! In: one probe at a time for one source, already classified as a failure or a success and
//! weighed by its flags. Out: whether a rule newly trips ([`FindingKind`]), and a *closeness*
//! (0 = nothing suspicious, 1 = at a verdict) that eviction uses to keep the sources that
//! matter.
//!
//! A source remembers up to `max_probes_per_source` distinct `(dst, proto, port)` entries,
//! each with its first and last record time. An entry is forgotten when it has not been seen for
//! `slow_window` (or, when the table is full, the least recently seen one goes first); the
//! whole state goes when the source is silent for `slow_gap` (the detector sees to that). Every
//! rule is a function of the remembered entries, evaluated only when a *new* entry arrives, in
//! one pass:
//!
//! | rule | reads | trips when |
//! | --- | --- | --- |
//! | sweep | failed entries first seen within `window` for this probe's `(proto, port)` | distinct destinations ≥ `sweep_destinations` |
//! | fast scan | failed entries first seen within `window` | weighted sum ≥ `fast_failures` |
//! | slow scan | failed entries first seen within `slow_window` | weighted sum ≥ `slow_failures` |
//! | sequential | entries first seen within `slow_window` | weighted failures − successes ≥ `sequential_threshold` |
//!
//! The sequential rule is Threshold Random Walk (Jung et al. 2004) made robust for a firewall
//! log: each distinct probe moves the walk up (failure) or down (success) by one step; unlike the
//! original it forgets steps older than `slow_window`, so that a long-lived client's rare mistakes
//! never add up, and a repeat of a known probe moves nothing, so a monitoring host that checks
//! the same closed port every minute stays where it is.
//!
//! Times are microseconds since the Unix epoch, taken from the records. `now` is the latest
//! record time of the source, so a record that arrives slightly out of order neither moves the
//! clock back nor falls out of the window it belongs to.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::record::{FindingKind, PortCount, Proto, ScanType, TcpFlags};

/// Every [`ScanType`], in the order of [`scan_index`].
pub(crate) const SCAN_TYPES: [ScanType; 12] = [
    ScanType::Syn,
    ScanType::Fin,
    ScanType::Null,
    ScanType::Xmas,
    ScanType::Ack,
    ScanType::Maimon,
    ScanType::SynFin,
    ScanType::Rst,
    ScanType::OtherTcp,
    ScanType::Udp,
    ScanType::Icmp,
    ScanType::Other,
];

pub(crate) fn scan_index(t: ScanType) -> usize {
    match t {
        ScanType::Syn => 0,
        ScanType::Fin => 1,
        ScanType::Null => 2,
        ScanType::Xmas => 3,
        ScanType::Ack => 4,
        ScanType::Maimon => 5,
        ScanType::SynFin => 6,
        ScanType::Rst => 7,
        ScanType::OtherTcp => 8,
        ScanType::Udp => 9,
        ScanType::Icmp => 10,
        ScanType::Other => 11,
    }
}

/// How much a failed probe weighs, from its flags and where it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum WeightClass {
    /// SYN, UDP, SCTP, an IP protocol probe, other TCP flag sets: 1.
    Normal,
    /// FIN, NULL, XMAS, Maimon, SYN+FIN, and a lone ACK that cannot be a stray:
    /// `stealth_weight`.
    Stealth,
    /// A packet of an established connection (ACK or RST set, no SYN) that looks like one of
    /// this host's own past connections: `stray_weight`.
    Stray,
}

impl WeightClass {
    /// `own_connection`: the packet could belong to a connection this host had before its
    /// conntrack table was flushed (the detector decides from the ports; see `mod.rs`).
    pub(crate) fn of(t: ScanType, flags: TcpFlags, own_connection: bool) -> Self {
        let mid_connection = !flags.has(TcpFlags::SYN)
            && (flags.has(TcpFlags::ACK) || flags.has(TcpFlags::RST))
            && t != ScanType::Udp;
        if mid_connection && own_connection {
            WeightClass::Stray
        } else if t.is_stealth() || t == ScanType::Ack {
            WeightClass::Stealth
        } else {
            WeightClass::Normal
        }
    }
}

/// The thresholds of [`crate::config::DetectConfig`] in the units the hot path uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    pub window_us: i64,
    pub gap_us: i64,
    pub slow_window_us: i64,
    pub fast: f64,
    pub slow: f64,
    pub sequential: f64,
    pub sweep: u32,
    pub stealth_weight: f64,
    pub stray_weight: f64,
    pub max_probes: usize,
}

impl Rules {
    pub(crate) fn weight(&self, class: WeightClass) -> f64 {
        match class {
            WeightClass::Normal => 1.0,
            WeightClass::Stealth => self.stealth_weight,
            WeightClass::Stray => self.stray_weight,
        }
    }
}

/// Sums are of weights such as 0.5, 1 and 2; compare with a little slack for configured
/// weights that are not exact in binary.
const EPSILON: f64 = 1e-9;

/// One distinct `(dst, proto, port)` a source probed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct ProbeEntry {
    pub dst: IpAddr,
    pub proto: Proto,
    pub port: u16,
    pub failure: bool,
    pub class: WeightClass,
    pub first_us: i64,
    pub last_us: i64,
    pub records: u32,
}

/// A verdict reached for a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Verdict {
    pub kind: FindingKind,
    pub at_us: i64,
}

/// Everything known about one source during its session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SourceState {
    pub addr: IpAddr,
    pub first_us: i64,
    pub last_us: i64,
    pub entries: Vec<ProbeEntry>,
    /// Counters over the whole session (they go on counting past `max_probes_per_source`;
    /// beyond it, a forgotten probe that recurs is counted again).
    pub probes: u32,
    pub ports: u32,
    pub destinations: u32,
    pub failures: u32,
    pub successes: u32,
    pub records: u64,
    /// Distinct probes per scan type, indexed by [`scan_index`].
    pub scan_types: [u32; 12],
    /// 0 (nothing suspicious) .. 1 (verdict); eviction keeps the highest.
    pub closeness: f32,
    pub verdict: Option<Verdict>,
}

/// One probe, as the per-source state sees it. The destination is borrowed from the probe:
/// an `IpAddr` (17 bytes, alignment 1) is copied byte by byte, and copying it here and again
/// into the call cost 68 instructions per record (cachegrind, the throughput bench's log).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen<'a> {
    pub dst: &'a IpAddr,
    pub proto: Proto,
    pub port: u16,
    pub time_us: i64,
    pub failure: bool,
    pub scan_type: ScanType,
    pub class: WeightClass,
}

impl SourceState {
    pub(crate) fn new(addr: IpAddr, time_us: i64) -> Self {
        SourceState {
            addr,
            first_us: time_us,
            last_us: time_us,
            entries: Vec::with_capacity(4),
            probes: 0,
            ports: 0,
            destinations: 0,
            failures: 0,
            successes: 0,
            records: 0,
            scan_types: [0; 12],
            closeness: 0.0,
            verdict: None,
        }
    }

    /// Start a new session in place, keeping the entry table's allocation.
    pub(crate) fn reset(&mut self, addr: IpAddr, time_us: i64) {
        let mut entries = std::mem::take(&mut self.entries);
        entries.clear();
        *self = SourceState {
            entries,
            ..SourceState::new(addr, time_us)
        };
    }

    /// Account one record. Returns the rule that newly tripped, if any (never twice).
    pub(crate) fn observe(&mut self, seen: Seen, rules: &Rules) -> Option<FindingKind> {
        self.records += 1;
        self.last_us = self.last_us.max(seen.time_us);
        self.first_us = self.first_us.min(seen.time_us);

        // Most records repeat a known probe: find it comparing the port first (two bytes) and
        // the address (seventeen) only on a match.
        if let Some(e) = self
            .entries
            .iter_mut()
            .find(|e| e.port == seen.port && e.proto == seen.proto && e.dst == *seen.dst)
        {
            // A retransmission or another connection to a known port: a record, not a probe.
            e.records = e.records.saturating_add(1);
            e.last_us = e.last_us.max(seen.time_us);
            e.first_us = e.first_us.min(seen.time_us);
            return None;
        }
        let mut port_seen = false;
        let mut dst_seen = false;
        for e in &self.entries {
            port_seen |= e.port == seen.port && e.proto == seen.proto;
            dst_seen |= e.dst == *seen.dst;
        }

        self.probes = self.probes.saturating_add(1);
        self.ports += u32::from(!port_seen);
        self.destinations += u32::from(!dst_seen);
        if seen.failure {
            self.failures = self.failures.saturating_add(1);
        } else {
            self.successes = self.successes.saturating_add(1);
        }
        let slot = &mut self.scan_types[scan_index(seen.scan_type)];
        *slot = slot.saturating_add(1);

        let entry = ProbeEntry {
            dst: *seen.dst,
            proto: seen.proto,
            port: seen.port,
            failure: seen.failure,
            class: seen.class,
            first_us: seen.time_us,
            last_us: seen.time_us,
            records: 1,
        };
        self.forget_before(self.last_us.saturating_sub(rules.slow_window_us));
        if self.entries.len() >= rules.max_probes.max(1) {
            // Full: the least recently seen entry makes room (the table is small; O(n)).
            if let Some(oldest) = self.entries.iter_mut().min_by_key(|e| e.last_us) {
                *oldest = entry;
            }
        } else {
            self.entries.push(entry);
        }

        let kind = self.evaluate(rules, Some((seen.proto, seen.port)));
        match (self.verdict, kind) {
            (None, Some(kind)) => {
                self.verdict = Some(Verdict {
                    kind,
                    at_us: seen.time_us,
                });
                Some(kind)
            }
            _ => None,
        }
    }

    /// Forget entries not seen since `cutoff_us`.
    pub(crate) fn forget_before(&mut self, cutoff_us: i64) {
        if self.entries.iter().any(|e| e.last_us < cutoff_us) {
            self.entries.retain(|e| e.last_us >= cutoff_us);
        }
    }

    /// Run the rules over the remembered entries, update `closeness`, and say which rule
    /// trips (sweep, fast, slow, sequential, in that order). `probed` is the `(proto, port)` of
    /// the probe that just arrived (the sweep rule looks at it).
    pub(crate) fn evaluate(
        &mut self,
        rules: &Rules,
        probed: Option<(Proto, u16)>,
    ) -> Option<FindingKind> {
        let now = self.last_us;
        let window_start = now.saturating_sub(rules.window_us);
        let slow_start = now.saturating_sub(rules.slow_window_us);
        let mut window_failed = 0.0f64;
        let mut window_ports_differ = false;
        let mut same_port_destinations = 0u32;
        let mut session_failed = 0.0f64;
        let mut session_succeeded = 0.0f64;
        for e in &self.entries {
            if e.first_us < slow_start {
                // Long known (a monitoring host's daily round): neither raises nor lowers.
                continue;
            }
            if !e.failure {
                session_succeeded += 1.0;
                continue;
            }
            let w = rules.weight(e.class);
            session_failed += w;
            if e.first_us >= window_start {
                window_failed += w;
                if probed == Some((e.proto, e.port)) {
                    same_port_destinations += 1;
                } else {
                    window_ports_differ = true;
                }
            }
        }
        let walk = session_failed - session_succeeded;
        let closeness = (window_failed / rules.fast)
            .max(session_failed / rules.slow)
            .max(walk / rules.sequential)
            .max(f64::from(same_port_destinations) / f64::from(rules.sweep.max(1)));
        self.closeness = if self.verdict.is_some() {
            // A source with a verdict is kept above every undecided one.
            1.0 + closeness.clamp(0.0, 1.0) as f32
        } else {
            closeness.clamp(0.0, 1.0) as f32
        };

        let sweep = same_port_destinations >= 2;
        if sweep && same_port_destinations >= rules.sweep {
            Some(FindingKind::Sweep)
        } else if window_failed + EPSILON >= rules.fast {
            // Failures all on one port across several destinations: a sweep, named as one.
            Some(if sweep && !window_ports_differ {
                FindingKind::Sweep
            } else {
                FindingKind::FastScan
            })
        } else if session_failed + EPSILON >= rules.slow {
            Some(FindingKind::SlowScan)
        } else if walk + EPSILON >= rules.sequential {
            Some(FindingKind::Sequential)
        } else {
            None
        }
    }

    /// The most common scan type among the source's probes (ties: the first in
    /// [`SCAN_TYPES`], SYN first).
    pub(crate) fn scan_type(&self) -> ScanType {
        let mut best = 0;
        for (i, &n) in self.scan_types.iter().enumerate() {
            if n > self.scan_types[best] {
                best = i;
            }
        }
        SCAN_TYPES[best]
    }

    /// The most probed `(proto, port)`s by records, most first, at most `limit`.
    pub(crate) fn top_ports(&self, limit: usize) -> Vec<PortCount> {
        let mut counts: Vec<PortCount> = Vec::new();
        for e in &self.entries {
            match counts
                .iter_mut()
                .find(|c| c.port == e.port && c.proto == e.proto)
            {
                Some(c) => c.count = c.count.saturating_add(e.records),
                None => counts.push(PortCount {
                    proto: e.proto,
                    port: e.port,
                    count: e.records,
                }),
            }
        }
        counts.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(a.port.cmp(&b.port))
                .then(a.proto.cmp(&b.proto))
        });
        counts.truncate(limit);
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            window_us: 60_000_000,
            gap_us: 1_800_000_000,
            slow_window_us: 7_200_000_000,
            fast: 6.0,
            slow: 10.0,
            sequential: 6.0,
            sweep: 6,
            stealth_weight: 2.0,
            stray_weight: 0.5,
            max_probes: 4,
        }
    }

    const DST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    fn seen(port: u16, t: i64, failure: bool) -> Seen<'static> {
        Seen {
            dst: &DST,
            proto: Proto::Tcp,
            port,
            time_us: t,
            failure,
            scan_type: ScanType::Syn,
            class: WeightClass::Normal,
        }
    }

    #[test]
    fn memory_figures_in_the_docs_hold() {
        // DetectConfig::max_sources documents ~200 bytes per source (this plus the index
        // entry) and 48 per remembered probe.
        assert!(std::mem::size_of::<ProbeEntry>() <= 48);
        assert!(std::mem::size_of::<SourceState>() <= 160);
    }

    #[test]
    fn table_is_bounded_and_forgets_least_recent() {
        let r = rules();
        let mut s = SourceState::new("198.51.100.9".parse().unwrap(), 0);
        for (i, port) in [1u16, 2, 3, 4, 5].into_iter().enumerate() {
            s.observe(seen(port, i as i64, false), &r);
        }
        assert_eq!(s.entries.len(), 4);
        assert!(!s.entries.iter().any(|e| e.port == 1));
        assert_eq!(s.probes, 5);
        // Port 2 again is a record of a known probe.
        s.observe(seen(2, 10, false), &r);
        assert_eq!((s.probes, s.records), (5, 6));
    }

    #[test]
    fn walk_goes_down_on_success_and_closeness_follows() {
        let r = Rules {
            max_probes: 64,
            ..rules()
        };
        let mut s = SourceState::new("198.51.100.9".parse().unwrap(), 0);
        for p in 0..3 {
            s.observe(seen(p, 0, true), &r);
        }
        let c = s.closeness;
        assert!((c - 0.5).abs() < 1e-6, "{c}");
        for p in 10..13 {
            s.observe(seen(p, 0, false), &r);
        }
        // Fast rule still sees 3 failures of 6.
        assert!((s.closeness - 0.5).abs() < 1e-6);
        assert_eq!(s.scan_type(), ScanType::Syn);
    }

    #[test]
    fn entries_older_than_the_session_are_forgotten() {
        let r = Rules {
            max_probes: 64,
            ..rules()
        };
        let mut s = SourceState::new("198.51.100.9".parse().unwrap(), 0);
        for p in 0..5 {
            assert_eq!(s.observe(seen(p, 0, true), &r), None);
        }
        // 2 h 1 min later (the source kept talking elsewhere), five more: no verdict.
        for p in 5..10 {
            assert_eq!(s.observe(seen(p, 7_260_000_000, true), &r), None);
        }
        assert_eq!(s.entries.len(), 5);
    }
}
