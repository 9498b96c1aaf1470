//! Which ports this host serves: the line between a probe that *succeeds* (something answers)
//! and one that *fails* (RST / ICMP unreachable), which the success-aware scores rest on.
//!
//! In: a configured list (`detect.served_ports`) and/or the kernel's socket tables
//! `/proc/net/{tcp,tcp6,udp,udp6}` of the caller's network namespace. Out: [`ServedPorts`], a
//! constant-time `is_served(proto, port)` (two 8 KiB bitmaps for TCP and UDP, a short list for
//! the rest).
//!
//! Why these choices:
//! * TCP counts only `LISTEN` sockets (state `0A`) and UDP only unconnected bound sockets (state
//!   `07`): a connected socket is a client's, and it accepts nothing from a scanner.
//! * Sockets bound to a loopback address (`127.0.0.0/8`, `::1`, `::ffff:127.x`) are skipped: a
//!   probe from the network to such a port gets a RST, so it is a failure.
//! * The tables print addresses as 32-bit words in host byte order (`0100007F` is 127.0.0.1 on
//!   x86); each word is turned back into bytes with `to_ne_bytes`.
//! * A line that does not parse is skipped (counted in [`ProcParse`]), never fatal.
//! * It also knows the local ephemeral port range (`/proc/sys/net/ipv4/ip_local_port_range`
//!   of the caller's namespace, else Linux's default 32768-60999): a stray ACK or RST to a port
//!   in it belongs to one of this host's own past connections (after a conntrack flush), not to
//!   a scan.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::config::DetectConfig;
use crate::record::Proto;

const WORDS: usize = 65_536 / 64;

/// The set of `(proto, port)` this host serves.
#[derive(Clone, PartialEq, Eq)]
pub struct ServedPorts {
    tcp: Box<[u64]>,
    udp: Box<[u64]>,
    other: Vec<(Proto, u16)>,
    /// Nothing is known: every probe counts as a failure.
    unknown: bool,
    /// The local ephemeral port range (`net.ipv4.ip_local_port_range`, inclusive): the ports
    /// this host's own outgoing connections use.
    ephemeral: (u16, u16),
}

/// Linux's default `net.ipv4.ip_local_port_range`.
pub const DEFAULT_EPHEMERAL: (u16, u16) = (32768, 60999);

/// `32768\t60999\n` (`/proc/sys/net/ipv4/ip_local_port_range`): the inclusive range, low first.
pub fn parse_port_range(text: &str) -> Option<(u16, u16)> {
    let mut it = text.split_ascii_whitespace().map(|w| w.parse::<u16>().ok());
    let (lo, hi) = (it.next()??, it.next()??);
    (it.next().is_none() && lo <= hi).then_some((lo, hi))
}

/// What reading one `/proc/net` table found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcParse {
    /// Served ports found (listening TCP, bound UDP, not loopback-only).
    pub served: usize,
    /// Lines that did not parse.
    pub bad_lines: usize,
}

impl std::fmt::Debug for ServedPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.unknown {
            return f.write_str("ServedPorts(unknown)");
        }
        f.debug_set().entries(self.iter()).finish()
    }
}

impl ServedPorts {
    fn empty() -> Self {
        ServedPorts {
            tcp: vec![0u64; WORDS].into_boxed_slice(),
            udp: vec![0u64; WORDS].into_boxed_slice(),
            other: Vec::new(),
            unknown: false,
            ephemeral: DEFAULT_EPHEMERAL,
        }
    }

    /// Exactly these ports.
    pub fn new(ports: impl IntoIterator<Item = (Proto, u16)>) -> Self {
        let mut s = ServedPorts::empty();
        for (proto, port) in ports {
            s.insert(proto, port);
        }
        s
    }

    /// Success or failure cannot be told: every probe is scored as a failure (the distinct-port
    /// rules then behave like plain counting).
    pub fn unknown() -> Self {
        let mut s = ServedPorts::empty();
        s.unknown = true;
        s
    }

    /// Listening TCP and bound UDP sockets of the caller's network namespace. A missing table
    /// (IPv6 disabled) is skipped; any other read error is returned.
    pub fn from_proc() -> std::io::Result<Self> {
        Self::from_proc_dir(Path::new("/proc/net"))
    }

    /// [`from_proc`](Self::from_proc) on another directory laid out like `/proc/net`.
    pub fn from_proc_dir(dir: &Path) -> std::io::Result<Self> {
        let mut s = ServedPorts::empty();
        for (file, proto) in [
            ("tcp", Proto::Tcp),
            ("tcp6", Proto::Tcp),
            ("udp", Proto::Udp),
            ("udp6", Proto::Udp),
        ] {
            match std::fs::read_to_string(dir.join(file)) {
                Ok(text) => {
                    let parse = s.add_proc_table(&text, proto);
                    if parse.bad_lines > 0 {
                        tracing::debug!(
                            file,
                            bad_lines = parse.bad_lines,
                            "unparsed /proc/net lines"
                        );
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(s)
    }

    /// The listening TCP and bound UDP sockets, as `/proc/net` lists them, asked of the
    /// kernel over `NETLINK_SOCK_DIAG` (`inet_diag`, by state): about a tenth of a millisecond,
    /// where reading `/proc/net/tcp` walks every bucket of the established table (2 to 5 ms
    /// per file here) and the daemon rereads them as new ports are probed.
    pub fn from_sock_diag() -> std::io::Result<Self> {
        // TCP_LISTEN = 10; a bound, unconnected UDP socket is TCP_CLOSE = 7.
        let mut s = ServedPorts::empty();
        for (family, proto, state) in [
            (libc::AF_INET, Proto::Tcp, 10),
            (libc::AF_INET6, Proto::Tcp, 10),
            (libc::AF_INET, Proto::Udp, 7),
            (libc::AF_INET6, Proto::Udp, 7),
        ] {
            for (addr, port) in sock_diag_dump(family as u8, proto, state)? {
                if !is_loopback(addr) {
                    s.insert(proto, port);
                }
            }
        }
        Ok(s)
    }

    /// What the kernel says is served: [`ServedPorts::from_sock_diag`], else `/proc/net`.
    pub fn from_kernel() -> std::io::Result<Self> {
        Self::from_sock_diag().or_else(|e| {
            tracing::debug!(error = %e, "sock_diag refused: reading /proc/net");
            Self::from_proc()
        })
    }

    /// The configured list, plus the kernel's sockets when `served_ports_from_proc` is on. A
    /// read error is logged and the configured list alone is used.
    pub fn from_config(cfg: &DetectConfig) -> Self {
        let mut s = if cfg.served_ports_from_proc {
            match Self::from_kernel() {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "cannot read /proc/net/{{tcp,udp}}: scoring with detect.served_ports only"
                    );
                    ServedPorts::empty()
                }
            }
        } else {
            ServedPorts::empty()
        };
        for &(proto, port) in &cfg.served_ports {
            s.insert(proto, port);
        }
        match std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range") {
            Ok(text) => match parse_port_range(&text) {
                Some(range) => s.ephemeral = range,
                None => tracing::warn!(text, "unreadable ip_local_port_range: using 32768-60999"),
            },
            Err(e) => tracing::debug!(error = %e, "no ip_local_port_range: using 32768-60999"),
        }
        s
    }

    /// The same ports with another local ephemeral range.
    pub fn with_ephemeral(mut self, range: (u16, u16)) -> Self {
        self.ephemeral = range;
        self
    }

    /// Whether `port` lies in this host's ephemeral range (where its own outgoing connections
    /// have their local end).
    pub fn is_ephemeral(&self, port: u16) -> bool {
        (self.ephemeral.0..=self.ephemeral.1).contains(&port)
    }

    pub fn insert(&mut self, proto: Proto, port: u16) {
        let (w, b) = (port as usize / 64, port as usize % 64);
        match proto {
            Proto::Tcp => self.tcp[w] |= 1 << b,
            Proto::Udp => self.udp[w] |= 1 << b,
            p => {
                if !self.other.contains(&(p, port)) {
                    self.other.push((p, port));
                }
            }
        }
    }

    #[inline]
    pub fn is_served(&self, proto: Proto, port: u16) -> bool {
        if self.unknown {
            return false;
        }
        let (w, b) = (port as usize / 64, port as usize % 64);
        match proto {
            Proto::Tcp => self.tcp[w] >> b & 1 == 1,
            Proto::Udp => self.udp[w] >> b & 1 == 1,
            p => self.other.contains(&(p, port)),
        }
    }

    /// Whether this is [`ServedPorts::unknown`].
    pub fn is_unknown(&self) -> bool {
        self.unknown
    }

    /// Every served `(proto, port)`, TCP first, ascending.
    pub fn iter(&self) -> impl Iterator<Item = (Proto, u16)> + '_ {
        set_bits(Proto::Tcp, &self.tcp)
            .chain(set_bits(Proto::Udp, &self.udp))
            .chain(self.other.iter().copied())
    }

    /// Add the served sockets of one `/proc/net/{tcp,tcp6,udp,udp6}` table.
    pub fn add_proc_table(&mut self, text: &str, proto: Proto) -> ProcParse {
        let mut out = ProcParse::default();
        // TCP_LISTEN = 10, UDP bound-unconnected shows TCP_CLOSE = 7.
        let wanted = if proto == Proto::Tcp { 0x0A } else { 0x07 };
        for line in text.lines().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            match parse_proc_line(line) {
                Some((addr, port, state)) => {
                    if state == wanted && !is_loopback(addr) {
                        self.insert(proto, port);
                        out.served += 1;
                    }
                }
                None => out.bad_lines += 1,
            }
        }
        out
    }
}

fn set_bits(proto: Proto, map: &[u64]) -> impl Iterator<Item = (Proto, u16)> + '_ {
    (0..=u16::MAX)
        .filter(move |&p| map[p as usize / 64] >> (p as usize % 64) & 1 == 1)
        .map(move |p| (proto, p))
}

/// `SOCK_DIAG_BY_FAMILY` dump of the sockets of `family`/`proto` in `state`: their local
/// address and port (`struct inet_diag_req_v2` / `inet_diag_msg`, `linux/inet_diag.h`).
fn sock_diag_dump(family: u8, proto: Proto, state: u8) -> std::io::Result<Vec<(IpAddr, u16)>> {
    use crate::enforce::netlink::{NLMSG_DONE, NLMSG_ERROR, next_msg};
    use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST_DUMP: u16 = 0x1 | 0x300;
    let mut sock = Socket::new(NETLINK_SOCK_DIAG)?;
    sock.bind_auto()?;
    sock.connect(&SocketAddr::new(0, 0))?;
    let ipproto: u8 = if proto == Proto::Tcp { 6 } else { 17 };
    // nlmsghdr (16) + inet_diag_req_v2 (56): family, protocol, ext, pad, states, sockid.
    let mut req = Vec::with_capacity(72);
    req.extend_from_slice(&72u32.to_ne_bytes());
    req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req.extend_from_slice(&NLM_F_REQUEST_DUMP.to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    req.extend_from_slice(&[family, ipproto, 0, 0]);
    req.extend_from_slice(&(1u32 << state).to_ne_bytes());
    req.extend_from_slice(&[0u8; 48]);
    sock.send(&req, 0)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = {
            let mut slice = &mut buf[..];
            sock.recv(&mut slice, 0)?
        };
        let mut off = 0;
        while let Some((hdr, msg)) = next_msg(&buf[..n], &mut off) {
            match hdr.ty {
                NLMSG_DONE => return Ok(out),
                NLMSG_ERROR => {
                    let errno = msg
                        .get(..4)
                        .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    return Err(std::io::Error::from_raw_os_error(-errno.min(-1)));
                }
                _ if msg.len() >= 24 => {
                    // inet_diag_msg: family, state, timer, retrans, then the sockid:
                    // sport (be16), dport (be16), src (16 bytes), ...
                    let port = u16::from_be_bytes([msg[4], msg[5]]);
                    let addr = match msg[0] {
                        f if f == libc::AF_INET as u8 => {
                            IpAddr::from(<[u8; 4]>::try_from(&msg[8..12]).unwrap_or_default())
                        }
                        _ => IpAddr::from(<[u8; 16]>::try_from(&msg[8..24]).unwrap_or_default()),
                    };
                    out.push((addr, port));
                }
                _ => {}
            }
        }
    }
}

fn is_loopback(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v| v.is_loopback()),
    }
}

/// `sl local_address rem_address st ...` → (local address, local port, state).
fn parse_proc_line(line: &str) -> Option<(IpAddr, u16, u8)> {
    let mut fields = line.split_ascii_whitespace();
    let slot = fields.next()?;
    if !slot.ends_with(':') {
        return None;
    }
    let local = fields.next()?;
    let _remote = fields.next()?;
    let state = u8::from_str_radix(fields.next()?, 16).ok()?;
    let (addr_hex, port_hex) = local.split_once(':')?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    let addr = match addr_hex.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(addr_hex, 16).ok()?.to_ne_bytes(),
        )),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                let word = u32::from_str_radix(addr_hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some((addr, port, state))
}

#[cfg(test)]
mod tests {
    /// The kernel's socket dump and `/proc/net` both see a listener and a bound UDP socket
    /// this test opens (on all addresses: loopback-only ones are not served), and neither
    /// sees them once closed.
    #[test]
    fn sock_diag_sees_what_proc_sees() {
        let tcp = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let udp = std::net::UdpSocket::bind("[::]:0").unwrap();
        let (t, u) = (
            tcp.local_addr().unwrap().port(),
            udp.local_addr().unwrap().port(),
        );
        let diag = ServedPorts::from_sock_diag().unwrap();
        let proc = ServedPorts::from_proc().unwrap();
        for s in [&diag, &proc] {
            assert!(s.is_served(Proto::Tcp, t) && s.is_served(Proto::Udp, u));
        }
        drop((tcp, udp));
        let diag = ServedPorts::from_sock_diag().unwrap();
        assert!(!diag.is_served(Proto::Tcp, t) || !diag.is_served(Proto::Udp, u));
    }

    use super::*;

    // Captured from a Debian 12 host (x86_64): sshd on 0.0.0.0:22 and [::]:22, a resolver on
    // 127.0.0.53:53 (loopback only), an established client connection, a listener on
    // 127.0.0.1:631, and one mangled line.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18466 1 0000000000000000 100 0 0 10 0
   1: 3500007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000   991        0 17383 1 0000000000000000 100 0 0 10 5
   2: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 20011 1 0000000000000000 100 0 0 10 0
   3: 0F02000A:0016 0202000A:D3A6 01 00000000:00000000 02:0009C7A2 00000000     0        0 29960 4 0000000000000000 20 4 29 10 -1
   4: garbage
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18477 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18478 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18479 1 0000000000000000 100 0 0 10 0
   3: 0000000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18480 1 0000000000000000 100 0 0 10 0
";
    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  123: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   991        0 17382 2 0000000000000000 0
  200: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 17000 2 0000000000000000 0
  201: 0F02000A:A1B2 08080808:0035 01 00000000:00000000 00:00000000 00000000     0        0 17001 2 0000000000000000 0
";

    #[test]
    fn proc_tables_give_listening_non_loopback_ports() {
        let mut s = ServedPorts::new([]);
        let tcp = s.add_proc_table(TCP, Proto::Tcp);
        assert_eq!(
            tcp,
            ProcParse {
                served: 1,
                bad_lines: 1
            }
        );
        let tcp6 = s.add_proc_table(TCP6, Proto::Tcp);
        // ::1:8080 and ::ffff:127.0.0.1:8081 are loopback; the 34-digit address is malformed.
        assert_eq!(
            tcp6,
            ProcParse {
                served: 1,
                bad_lines: 1
            }
        );
        let udp = s.add_proc_table(UDP, Proto::Udp);
        assert_eq!(
            udp,
            ProcParse {
                served: 1,
                bad_lines: 0
            }
        );
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            vec![(Proto::Tcp, 22), (Proto::Udp, 68)]
        );
        assert!(!s.is_served(Proto::Tcp, 53));
        assert!(!s.is_served(Proto::Tcp, 631));
        assert!(!s.is_served(Proto::Tcp, 8080));
        assert!(!s.is_served(Proto::Udp, 22));
    }

    #[test]
    fn host_byte_order_addresses() {
        assert_eq!(
            parse_proc_line(TCP.lines().nth(4).unwrap()),
            Some(("10.0.2.15".parse().unwrap(), 22, 1))
        );
        assert_eq!(
            parse_proc_line(TCP6.lines().nth(2).unwrap()),
            Some(("::1".parse().unwrap(), 8080, 0x0A))
        );
    }

    #[test]
    fn new_unknown_and_other_protocols() {
        let s = ServedPorts::new([(Proto::Tcp, 443), (Proto::Sctp, 9), (Proto::Udp, 65535)]);
        assert!(s.is_served(Proto::Tcp, 443));
        assert!(s.is_served(Proto::Udp, 65535));
        assert!(s.is_served(Proto::Sctp, 9));
        assert!(!s.is_served(Proto::Udp, 443));
        let u = ServedPorts::unknown();
        assert!(u.is_unknown() && !u.is_served(Proto::Tcp, 443));
    }

    #[test]
    fn from_proc_reads_this_namespace() {
        // Whatever this machine serves, the call succeeds and agrees with a direct parse.
        // Other tests of this binary open and close listeners meanwhile: only a port served
        // both before and after the call must be in its answer.
        let direct = || {
            let mut d = ServedPorts::new([]);
            if let Ok(t) = std::fs::read_to_string("/proc/net/tcp") {
                d.add_proc_table(&t, Proto::Tcp);
            }
            d
        };
        let before = direct();
        let s = ServedPorts::from_proc().unwrap();
        let after = direct();
        for (p, port) in before.iter().filter(|(p, port)| after.is_served(*p, *port)) {
            assert!(s.is_served(p, port));
        }
    }

    #[test]
    fn from_config_adds_the_configured_list() {
        let cfg = DetectConfig {
            served_ports: vec![(Proto::Udp, 5353)],
            served_ports_from_proc: false,
            ..DetectConfig::default()
        };
        let s = ServedPorts::from_config(&cfg);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![(Proto::Udp, 5353)]);
    }
}
