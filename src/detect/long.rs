//! The long-horizon (low-and-slow) rule: distinct failed probes of one source over a long
//! window (`detect.long_window`, default 24 h), across sessions.
//!
//! In: every *new* failed probe of a source that carries weight (strays do not), with its
//! time. Out: whether the source now has `long_failures` distinct failed probes within the
//! window.
//!
//! Why a table of its own: a source that probes one closed port every 30-60 minutes starts a
//! new session with every probe (sessions end after `slow_gap` of silence), so the session
//! rules never see more than one probe of it; and keeping whole sessions for a day would cost
//! what a session costs (~200 bytes + 48 per probe) for every source seen in a day.
//!
//! Memory: per source, an address, a length and at most [`LONG_CAPACITY`] probes as a 32-bit
//! hash of `(destination, protocol, port)` and a 32-bit first-seen time in seconds: 8 bytes a
//! probe, a [`LongEntry`] with a full list is at most 304 bytes; with its index entry about
//! 350 bytes a source. At most `max_sources` sources (the same bound as the session table), so
//! 16384 sources take at most about 5.6 MiB (a flood of one-probe sources about 2 MiB). When
//! the table is full a new source takes the slot of the one with the fewest live probes among
//! 8 sampled (then the stalest): a spoofed flood of one-probe sources displaces its own kind,
//! not a slow scanner with 10 probes to its name (the test
//! `spoofed_flood_does_not_flush_a_slow_scanner`: 200 000 spoofed sources through a table of
//! 1000). A hash collision can only
//! merge two probes into one (count one fewer), never invent one.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::record::Proto;

/// Distinct failed probes remembered per source; `long_failures` may not exceed it.
pub const LONG_CAPACITY: usize = 32;

/// One source's failed probes over the long window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LongEntry {
    pub addr: IpAddr,
    /// `(hash of (dst, proto, port), first seen in seconds since the epoch)`, oldest first.
    pub probes: Vec<(u32, u32)>,
    /// Latest probe time, seconds since the epoch.
    pub last_s: u32,
}

impl LongEntry {
    fn live(&self, cutoff_s: u32) -> usize {
        self.probes.iter().filter(|p| p.1 >= cutoff_s).count()
    }
}

/// The per-source long-window table, bounded by `max_sources`.
#[derive(Debug)]
pub(crate) struct LongHorizon {
    window_s: u32,
    threshold: usize,
    max_sources: usize,
    slots: Vec<LongEntry>,
    index: HashMap<IpAddr, usize>,
    rng: u64,
}

/// FNV-1a over the address bytes, the protocol number and the port: stable across runs and
/// Rust versions, so a restored state agrees with a new one.
fn key_hash(dst: IpAddr, proto: Proto, port: u16) -> u32 {
    let proto_number = match proto {
        Proto::Tcp => 6,
        Proto::Udp => 17,
        Proto::Icmp => 1,
        Proto::Icmpv6 => 58,
        Proto::Sctp => 132,
        Proto::Other(n) => n,
    };
    let mut h: u32 = 0x811c_9dc5;
    let mut eat = |b: u8| {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    };
    match dst {
        IpAddr::V4(a) => a.octets().into_iter().for_each(&mut eat),
        IpAddr::V6(a) => a.octets().into_iter().for_each(&mut eat),
    }
    eat(proto_number);
    port.to_be_bytes().into_iter().for_each(&mut eat);
    h
}

/// Seconds since the epoch, saturated into u32 (until 2106).
fn seconds(us: i64) -> u32 {
    (us / 1_000_000).clamp(0, i64::from(u32::MAX)) as u32
}

impl LongHorizon {
    /// `threshold` 0 turns the rule off (nothing is kept).
    pub(crate) fn new(window_us: i64, threshold: u32, max_sources: usize) -> Self {
        LongHorizon {
            window_s: seconds(window_us).max(1),
            threshold: (threshold as usize).min(LONG_CAPACITY),
            max_sources: max_sources.max(1),
            slots: Vec::new(),
            index: HashMap::new(),
            rng: 0x2545_F491_4F6C_DD1D,
        }
    }

    pub(crate) fn sources(&self) -> usize {
        self.slots.len()
    }

    /// Account a new failed probe. When the source reaches the threshold with it: the number
    /// of distinct failed probes in the window and when the oldest was first seen (µs).
    pub(crate) fn observe(
        &mut self,
        addr: IpAddr,
        dst: IpAddr,
        proto: Proto,
        port: u16,
        time_us: i64,
    ) -> Option<(u32, i64)> {
        if self.threshold == 0 {
            return None;
        }
        let now = seconds(time_us);
        let cutoff = now.saturating_sub(self.window_s);
        let i = match self.index.get(&addr) {
            Some(&i) => i,
            None => self.admit(addr, cutoff),
        };
        let entry = &mut self.slots[i];
        entry.last_s = entry.last_s.max(now);
        entry.probes.retain(|p| p.1 >= cutoff);
        let h = key_hash(dst, proto, port);
        if !entry.probes.iter().any(|p| p.0 == h) {
            if entry.probes.len() >= LONG_CAPACITY {
                entry.probes.remove(0);
            }
            entry.probes.push((h, now));
        }
        let first = entry.probes.first().map_or(now, |p| p.1);
        (entry.probes.len() >= self.threshold)
            .then(|| (entry.probes.len() as u32, i64::from(first) * 1_000_000))
    }

    /// Forget a source's probes: a verdict has used them as its evidence.
    pub(crate) fn clear(&mut self, addr: IpAddr) {
        if let Some(&i) = self.index.get(&addr) {
            self.slots[i].probes.clear();
        }
    }

    fn admit(&mut self, addr: IpAddr, cutoff: u32) -> usize {
        let fresh = LongEntry {
            addr,
            probes: Vec::new(),
            last_s: 0,
        };
        if self.slots.len() < self.max_sources {
            self.slots.push(fresh);
            self.index.insert(addr, self.slots.len() - 1);
            return self.slots.len() - 1;
        }
        let n = self.slots.len();
        let mut best = self.random_below(n);
        for _ in 1..8 {
            let c = self.random_below(n);
            let key = |e: &LongEntry| (e.live(cutoff), e.last_s);
            if key(&self.slots[c]) < key(&self.slots[best]) {
                best = c;
            }
        }
        let old = self.slots[best].addr;
        self.index.remove(&old);
        self.slots[best] = fresh;
        self.index.insert(addr, best);
        best
    }

    fn random_below(&mut self, n: usize) -> usize {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((r >> 32) as usize * n) >> 32
    }

    /// The entries, for a snapshot.
    pub(crate) fn entries(&self) -> Vec<LongEntry> {
        self.slots.clone()
    }

    /// Continue from a snapshot's entries (the most loaded first when they do not all fit).
    pub(crate) fn restore(&mut self, mut entries: Vec<LongEntry>) {
        entries.sort_by_key(|e| std::cmp::Reverse(e.probes.len()));
        for mut e in entries {
            if self.slots.len() >= self.max_sources || self.index.contains_key(&e.addr) {
                continue;
            }
            e.probes.truncate(LONG_CAPACITY);
            self.index.insert(e.addr, self.slots.len());
            self.slots.push(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_figure_in_the_docs_holds() {
        // The doc's 304 bytes: the struct plus a full probe list.
        let full =
            std::mem::size_of::<LongEntry>() + LONG_CAPACITY * std::mem::size_of::<(u32, u32)>();
        assert!(full <= 304, "{full}");
    }

    #[test]
    fn counts_distinct_probes_within_the_window_only() {
        let hour = 3_600_000_000i64;
        let mut l = LongHorizon::new(24 * hour, 3, 10);
        let a: IpAddr = "203.0.113.20".parse().unwrap();
        let dst: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(l.observe(a, dst, Proto::Tcp, 1, 0), None);
        assert_eq!(
            l.observe(a, dst, Proto::Tcp, 1, hour),
            None,
            "a repeat is no new probe"
        );
        assert_eq!(l.observe(a, dst, Proto::Tcp, 2, 2 * hour), None);
        // 25 h after the first, it has left the window.
        assert_eq!(l.observe(a, dst, Proto::Tcp, 3, 25 * hour), None);
        assert_eq!(
            l.observe(a, dst, Proto::Udp, 3, 26 * hour),
            Some((3, 2 * hour))
        );
        l.clear(a);
        assert_eq!(l.observe(a, dst, Proto::Tcp, 4, 27 * hour), None);
        // Off.
        let mut off = LongHorizon::new(24 * hour, 0, 10);
        assert_eq!(off.observe(a, dst, Proto::Tcp, 1, 0), None);
        assert_eq!(off.sources(), 0);
    }
}
