//! The few types the pipeline stages exchange, and nothing else.
//!
//! ```text
//! source ──Record──▶ parse ──Probe──▶ detect ──Finding──▶ decide ──Ban──▶ enforce / store
//! ```
//!
//! * [`Record`]: one raw line as a source read it, with where it came from. Parsing decides
//!   whether it is trusted (kernel-originated) from its header, never from its text.
//! * [`Probe`]: one netfilter LOG record, typed. Times are the record's own time so that
//!   replaying an old log gives the same answer as watching it live.
//! * [`Finding`]: the detector's verdict on one source, with the evidence behind it.
//! * [`Ban`]: what the decide stage asks the firewall and the store to do.
//!
//! Everything here is plain data (serde-serialisable where it crosses a process boundary:
//! JSON output, the store), so the stages stay testable in isolation.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// Which kind of source produced a [`Record`]; tells the parser which header to expect
/// when it cannot be told from the bytes alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// `/dev/kmsg`: `PRI,SEQ,USEC,FLAGS;MESSAGE`.
    Kmsg,
    /// `journalctl -o json _TRANSPORT=kernel`: one JSON object per line.
    Journal,
    /// A log file (syslog, kern.log, dmesg output) or standard input.
    File,
}

/// One raw record as read by a source. Borrowed: the hot path does not copy lines.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub kind: SourceKind,
    pub bytes: &'a [u8],
}

/// Transport protocol of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Sctp,
    /// Any other protocol, by number (the kernel prints `PROTO=47` for those it has no name for).
    Other(u8),
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
            Proto::Icmpv6 => "icmpv6",
            Proto::Sctp => "sctp",
            Proto::Other(_) => "other",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Proto::Other(n) => write!(f, "proto-{n}"),
            p => f.write_str(p.as_str()),
        }
    }
}

/// TCP flag bits, in wire order (FIN = 0x01 ... CWR = 0x80), as the kernel names them in a
/// LOG record (`CWR ECE URG ACK PSH RST SYN FIN`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;

    pub fn has(self, bits: u8) -> bool {
        self.0 & bits == bits
    }

    /// The scan technique these flags betray, for a TCP probe. ECE/CWR are ignored: nmap and
    /// ECN-capable stacks set them on ordinary SYNs.
    pub fn scan_type(self) -> ScanType {
        // Looked up, not matched: the detector and the report each ask once per record.
        Self::SCAN_TYPES[usize::from(self.0 & 0x3f)]
    }

    /// [`TcpFlags::classify`] of each value of the six flags it reads.
    const SCAN_TYPES: [ScanType; 64] = {
        let mut table = [ScanType::OtherTcp; 64];
        let mut core = 0;
        while core < 64 {
            table[core as usize] = Self::classify(core);
            core += 1;
        }
        table
    };

    const fn classify(core: u8) -> ScanType {
        match core {
            0 => ScanType::Null,
            c if c == Self::SYN => ScanType::Syn,
            c if c == Self::FIN => ScanType::Fin,
            c if c == Self::FIN | Self::PSH | Self::URG => ScanType::Xmas,
            c if c == Self::ACK => ScanType::Ack,
            c if c == Self::ACK | Self::FIN => ScanType::Maimon,
            c if c & (Self::SYN | Self::FIN) == (Self::SYN | Self::FIN) => ScanType::SynFin,
            c if c & Self::RST != 0 => ScanType::Rst,
            _ => ScanType::OtherTcp,
        }
    }
}

/// The scan technique of a probe or of a finding (the most common among its probes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ScanType {
    #[serde(rename = "SYN")]
    Syn,
    #[serde(rename = "FIN")]
    Fin,
    #[serde(rename = "NULL")]
    Null,
    #[serde(rename = "XMAS")]
    Xmas,
    #[serde(rename = "ACK")]
    Ack,
    #[serde(rename = "MAIMON")]
    Maimon,
    #[serde(rename = "SYNFIN")]
    SynFin,
    #[serde(rename = "RST")]
    Rst,
    #[serde(rename = "TCP")]
    OtherTcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "ICMP")]
    Icmp,
    #[serde(rename = "OTHER")]
    Other,
}

impl ScanType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScanType::Syn => "SYN",
            ScanType::Fin => "FIN",
            ScanType::Null => "NULL",
            ScanType::Xmas => "XMAS",
            ScanType::Ack => "ACK",
            ScanType::Maimon => "MAIMON",
            ScanType::SynFin => "SYNFIN",
            ScanType::Rst => "RST",
            ScanType::OtherTcp => "TCP",
            ScanType::Udp => "UDP",
            ScanType::Icmp => "ICMP",
            ScanType::Other => "OTHER",
        }
    }

    /// Flag combinations no ordinary TCP stack sends to open a connection.
    pub fn is_stealth(self) -> bool {
        matches!(
            self,
            ScanType::Fin | ScanType::Null | ScanType::Xmas | ScanType::Maimon | ScanType::SynFin
        )
    }
}

impl fmt::Display for ScanType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A network interface name as the kernel prints it (`IN=eth0`): at most IFNAMSIZ-1 = 15
/// bytes, kept inline so that a probe never allocates.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct IfName {
    len: u8,
    bytes: [u8; 15],
}

impl IfName {
    /// `None` when the name is longer than the kernel allows.
    pub fn new(name: &[u8]) -> Option<Self> {
        if name.len() > 15 {
            return None;
        }
        let mut bytes = [0u8; 15];
        bytes[..name.len()].copy_from_slice(name);
        Some(IfName {
            len: name.len() as u8,
            bytes,
        })
    }

    /// [`IfName::new`] of the first `len` bytes of `head` (a name and what follows it): one
    /// 16-byte load and a mask instead of a `memcpy` call of a few bytes (the parser's hot path).
    pub fn from_head(head: &[u8; 16], len: usize) -> Option<Self> {
        if len > 15 {
            return None;
        }
        let name = u128::from_le_bytes(*head) & ((1u128 << (8 * len)) - 1);
        let bytes = name.to_le_bytes();
        Some(IfName {
            len: len as u8,
            bytes: *bytes.first_chunk::<15>().expect("16 bytes"),
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

/// One netfilter LOG record, parsed and trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The record's own time (wall clock), not the time it was read.
    pub time: Timestamp,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: Proto,
    /// Source port (TCP/UDP/SCTP); `None` for ICMP and unknown protocols.
    pub sport: Option<u16>,
    /// Destination port (TCP/UDP/SCTP); for ICMP the detector uses `icmp_type` instead.
    pub dport: Option<u16>,
    /// ICMP / ICMPv6 type, when the protocol is ICMP.
    pub icmp_type: Option<u8>,
    /// TCP flags (zero for non-TCP).
    pub tcp_flags: TcpFlags,
    /// `IN=` interface (empty for locally generated packets).
    pub iface: IfName,
    /// IPv4 TTL or IPv6 HOPLIMIT.
    pub ttl: Option<u8>,
    /// TCP window.
    pub window: Option<u16>,
    /// IP packet length (`LEN=` of the IP header, the first one in the record).
    pub len: Option<u16>,
}

impl Probe {
    /// The scan technique this single packet betrays.
    pub fn scan_type(&self) -> ScanType {
        match self.proto {
            Proto::Tcp => self.tcp_flags.scan_type(),
            Proto::Udp => ScanType::Udp,
            Proto::Icmp | Proto::Icmpv6 => ScanType::Icmp,
            Proto::Sctp | Proto::Other(_) => ScanType::Other,
        }
    }
}

/// Which rule of the detector reached the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Many distinct failed probes within the short window.
    FastScan,
    /// Probes keep coming over a long session, too slowly for the short window.
    SlowScan,
    /// The sequential (Threshold Random Walk) score crossed its threshold.
    Sequential,
    /// One port across many destinations.
    Sweep,
    /// Many distinct failed probes over the long window (`detect.long_window`), across
    /// sessions: a scanner slower than a session.
    LowAndSlow,
    /// The kernel fast path banned the source in the packet path (its own LOG record).
    KernelFastpath,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::FastScan => "fast_scan",
            FindingKind::SlowScan => "slow_scan",
            FindingKind::Sequential => "sequential",
            FindingKind::Sweep => "sweep",
            FindingKind::LowAndSlow => "low_and_slow",
            FindingKind::KernelFastpath => "kernel_fastpath",
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A port a source probed, with how often.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortCount {
    pub proto: Proto,
    pub port: u16,
    pub count: u32,
}

/// What the detector saw of one source, enough for an operator to check the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Distinct `(dst, proto, dport)` probes.
    pub probes: u32,
    /// Distinct destination ports (all protocols).
    pub ports: u32,
    /// Distinct destination addresses.
    pub destinations: u32,
    /// Probes to ports nothing listens on, and to ports something does.
    pub failures: u32,
    pub successes: u32,
    /// LOG records seen from the source (retransmissions included).
    pub records: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// The most probed ports, most frequent first (bounded, for display).
    pub top_ports: Vec<PortCount>,
}

/// The detector's verdict on one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub source: IpAddr,
    pub kind: FindingKind,
    pub scan_type: ScanType,
    /// When the verdict was reached (the time of the probe that tipped it).
    pub detected_at: Timestamp,
    pub evidence: Evidence,
}

/// A ban the decide stage asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ban {
    /// An address (/32, /128) or a prefix when escalated.
    pub target: IpNet,
    pub since: Timestamp,
    /// `None`: permanent.
    pub duration: Option<SignedDuration>,
    pub reason: String,
    /// The finding behind it, when there is one (manual bans have none).
    pub finding: Option<Finding>,
}

impl Ban {
    pub fn until(&self) -> Option<Timestamp> {
        self.duration.and_then(|d| self.since.checked_add(d).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interface_name_read_with_what_follows_is_the_name() {
        let head: [u8; 16] = *b"eth0 OUT=\xff\x00abcde";
        for len in 0..=16 {
            assert_eq!(
                IfName::from_head(&head, len),
                IfName::new(&head[..len]),
                "{len}"
            );
        }
        assert_eq!(IfName::from_head(&head, 4).unwrap().as_bytes(), b"eth0");
        assert_eq!(IfName::from_head(&head, 16), None);
        assert_eq!(
            IfName::from_head(&[b'x'; 16], 15).unwrap().as_bytes(),
            &[b'x'; 15]
        );
    }

    #[test]
    fn scan_types_from_kernel_flag_words() {
        let cases = [
            (TcpFlags::SYN, ScanType::Syn),
            (TcpFlags::SYN | TcpFlags::ECE | TcpFlags::CWR, ScanType::Syn),
            (TcpFlags::FIN, ScanType::Fin),
            (0, ScanType::Null),
            (
                TcpFlags::URG | TcpFlags::PSH | TcpFlags::FIN,
                ScanType::Xmas,
            ),
            (TcpFlags::ACK, ScanType::Ack),
            (TcpFlags::ACK | TcpFlags::FIN, ScanType::Maimon),
            (TcpFlags::SYN | TcpFlags::FIN, ScanType::SynFin),
            (TcpFlags::RST, ScanType::Rst),
            (TcpFlags::ACK | TcpFlags::PSH, ScanType::OtherTcp),
        ];
        for (bits, want) in cases {
            assert_eq!(TcpFlags(bits).scan_type(), want, "flags {bits:#04x}");
        }
        // The table is the classification of every flag byte, ECE and CWR aside.
        for bits in 0..=u8::MAX {
            assert_eq!(
                TcpFlags(bits).scan_type(),
                TcpFlags::classify(bits & !(TcpFlags::ECE | TcpFlags::CWR)),
                "flags {bits:#04x}"
            );
        }
    }

    #[test]
    fn ifname_bounds() {
        assert_eq!(IfName::new(b"eth0").unwrap().as_bytes(), b"eth0");
        assert!(IfName::new(b"0123456789abcdef").is_none());
        assert!(IfName::new(b"").unwrap().is_empty());
    }
}
