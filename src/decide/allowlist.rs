//! The allowlist: addresses the decide stage never bans, whatever the detector says.
//!
//! In: the configured CIDRs (`ban.allowlist`) and, when `ban.allowlist_host` is on, what the
//! host itself depends on, read once without a shell: loopback, its own addresses
//! (`/proc/net/if_inet6`, the `/32 host LOCAL` entries of `/proc/net/fib_trie`), its default
//! gateways (`/proc/net/route`, `/proc/net/ipv6_route`) and its resolvers (`/etc/resolv.conf`).
//! Out: a [`HostAllowlist`] that answers "is this address (or does this prefix touch anything)
//! allowlisted, and by which entry".
//!
//! Why the host's own neighbours: an attacker who can spoof sources (an nmap decoy scan,
//! `-D`) can make the gateway or the resolver look like a scanner; banning them would cut the
//! host off. A file that cannot be read is logged and skipped: the configured entries still
//! apply.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use ipnet::IpNet;
use serde::Serialize;

use crate::config::BanConfig;

/// Why an entry is on the list (for `status` and log messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowReason {
    Configured,
    Loopback,
    OwnAddress,
    Gateway,
    Resolver,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostAllowlist {
    pub entries: Vec<(IpNet, AllowReason)>,
}

impl HostAllowlist {
    /// Built from explicit entries (tests, or a caller that gathered them itself).
    pub fn new(entries: Vec<(IpNet, AllowReason)>) -> HostAllowlist {
        HostAllowlist { entries }
    }

    /// The configured entries, plus the host's own when `allowlist_host` is on.
    pub fn from_config(config: &BanConfig) -> HostAllowlist {
        let mut list = HostAllowlist::new(
            config
                .allowlist
                .iter()
                .map(|n| (*n, AllowReason::Configured))
                .collect(),
        );
        if config.allowlist_host {
            list.add_host(Path::new("/proc"), Path::new("/etc/resolv.conf"));
        }
        list
    }

    /// Add loopback and what `proc` (normally `/proc`) and `resolv_conf` say about this host.
    pub fn add_host(&mut self, proc: &Path, resolv_conf: &Path) {
        let loopback: [IpNet; 2] = [
            IpNet::from(ipnet::Ipv4Net::new(Ipv4Addr::LOCALHOST, 8).unwrap_or_default()),
            IpNet::from(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ];
        for n in loopback {
            self.push(n, AllowReason::Loopback);
        }
        let read = |path: &Path| match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read; the allowlist goes without it");
                String::new()
            }
        };
        let net = proc.join("net");
        for a in parse_if_inet6(&read(&net.join("if_inet6")))
            .into_iter()
            .chain(parse_fib_trie_local(&read(&net.join("fib_trie"))))
        {
            self.push(a.into(), AllowReason::OwnAddress);
        }
        for a in parse_route_gateways(&read(&net.join("route")))
            .into_iter()
            .chain(parse_ipv6_route_gateways(&read(&net.join("ipv6_route"))))
        {
            self.push(a.into(), AllowReason::Gateway);
        }
        for a in parse_resolv_conf(&read(resolv_conf)) {
            self.push(a.into(), AllowReason::Resolver);
        }
    }

    fn push(&mut self, net: IpNet, why: AllowReason) {
        let net = net.trunc();
        if !self.entries.iter().any(|(n, _)| *n == net) {
            self.entries.push((net, why));
        }
    }

    /// The entry containing `addr`, if any. IPv4-mapped IPv6 addresses are checked as IPv4.
    pub fn matching(&self, addr: IpAddr) -> Option<(IpNet, AllowReason)> {
        let addr = canonical(addr);
        self.entries
            .iter()
            .copied()
            .find(|(n, _)| n.contains(&addr))
    }

    /// An entry that overlaps `target` (inside it, or containing it): banning `target` would
    /// ban something allowlisted.
    pub fn overlapping(&self, target: IpNet) -> Option<(IpNet, AllowReason)> {
        self.entries
            .iter()
            .copied()
            .find(|(n, _)| n.contains(&target) || target.contains(n))
    }
}

fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn hex_v6(s: &str) -> Option<Ipv6Addr> {
    (s.len() == 32)
        .then(|| u128::from_str_radix(s, 16).ok())
        .flatten()
        .map(Ipv6Addr::from)
}

/// `/proc/net/if_inet6`: `ADDR(32 hex) IFINDEX PREFIXLEN SCOPE FLAGS NAME` per line.
pub fn parse_if_inet6(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next().and_then(hex_v6))
        .map(IpAddr::V6)
        .collect()
}

/// `/proc/net/fib_trie`: the address on a `|-- A.B.C.D` line followed by `/32 host LOCAL`.
pub fn parse_fib_trie_local(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("|-- ") {
            last = rest.trim().parse().ok();
        } else if t.starts_with("/32 host LOCAL")
            && let Some(a) = last.map(IpAddr::V4).filter(|a| !out.contains(a))
        {
            out.push(a);
        }
    }
    out
}

/// `/proc/net/route`: gateways of default routes (destination and mask 0). Fields are hex in
/// the kernel's byte order.
pub fn parse_route_gateways(text: &str) -> Vec<IpAddr> {
    let hex4 = |s: &str| {
        u32::from_str_radix(s, 16)
            .ok()
            .map(|v| Ipv4Addr::from(v.to_ne_bytes()))
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dest, gw, mask) = (hex4(f.get(1)?)?, hex4(f.get(2)?)?, hex4(f.get(7)?)?);
            (dest.is_unspecified() && mask.is_unspecified() && !gw.is_unspecified())
                .then_some(IpAddr::V4(gw))
        })
        .collect()
}

/// `/proc/net/ipv6_route`: `DEST LEN SRC LEN NEXTHOP METRIC REF USE FLAGS IFACE`; the next hop
/// of `::/0` routes.
pub fn parse_ipv6_route_gateways(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = hex_v6(f.first()?)?;
            let hop = hex_v6(f.get(4)?)?;
            (dest.is_unspecified() && *f.get(1)? == "00" && !hop.is_unspecified())
                .then_some(IpAddr::V6(hop))
        })
        .fold(Vec::new(), |mut v, a| {
            if !v.contains(&a) {
                v.push(a);
            }
            v
        })
}

/// `nameserver` lines of resolv.conf (a `%zone` suffix is dropped).
pub fn parse_resolv_conf(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            let addr = words.next()?;
            addr.split('%').next()?.parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIB_TRIE: &str = "Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
     +-- 192.168.56.0/24 2 0 2
        |-- 192.168.56.0
           /24 link UNICAST
        |-- 192.168.56.20
           /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
        |-- 192.168.56.20
           /32 host LOCAL
";
    const ROUTE: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0138A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0038A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
";
    const IPV6_ROUTE: &str = "\
20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0
";
    const IF_INET6: &str = "\
00000000000000000000000000000001 01 80 10 80       lo
20010db8000000000000000000000020 02 40 00 80     eth0
";
    const RESOLV: &str =
        "# generated\nnameserver 192.168.56.53\nnameserver fe80::53%eth0\nsearch lab\n";

    fn host() -> HostAllowlist {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("net");
        std::fs::create_dir(&net).unwrap();
        std::fs::write(net.join("fib_trie"), FIB_TRIE).unwrap();
        std::fs::write(net.join("route"), ROUTE).unwrap();
        std::fs::write(net.join("ipv6_route"), IPV6_ROUTE).unwrap();
        std::fs::write(net.join("if_inet6"), IF_INET6).unwrap();
        let resolv = dir.path().join("resolv.conf");
        std::fs::write(&resolv, RESOLV).unwrap();
        let mut list = HostAllowlist::new(vec![(
            "203.0.113.0/24".parse().unwrap(),
            AllowReason::Configured,
        )]);
        list.add_host(dir.path(), &resolv);
        list
    }

    #[test]
    fn parsers_read_real_proc_shapes() {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        assert_eq!(
            parse_fib_trie_local(FIB_TRIE),
            [ip("127.0.0.1"), ip("192.168.56.20")]
        );
        if cfg!(target_endian = "little") {
            assert_eq!(parse_route_gateways(ROUTE), [ip("192.168.56.1")]);
        }
        assert_eq!(parse_ipv6_route_gateways(IPV6_ROUTE), [ip("fe80::1")]);
        assert_eq!(parse_if_inet6(IF_INET6), [ip("::1"), ip("2001:db8::20")]);
        assert_eq!(
            parse_resolv_conf(RESOLV),
            [ip("192.168.56.53"), ip("fe80::53")]
        );
    }

    #[test]
    fn allowlist_covers_host_neighbours_and_configured() {
        let list = host();
        let why = |s: &str| list.matching(s.parse().unwrap()).map(|(_, r)| r);
        if cfg!(target_endian = "little") {
            assert_eq!(why("192.168.56.1"), Some(AllowReason::Gateway));
        }
        assert_eq!(why("192.168.56.20"), Some(AllowReason::OwnAddress));
        assert_eq!(why("2001:db8::20"), Some(AllowReason::OwnAddress));
        assert_eq!(why("192.168.56.53"), Some(AllowReason::Resolver));
        assert_eq!(why("fe80::53"), Some(AllowReason::Resolver));
        assert_eq!(why("fe80::1"), Some(AllowReason::Gateway));
        assert_eq!(why("203.0.113.77"), Some(AllowReason::Configured));
        assert_eq!(why("127.0.0.9"), Some(AllowReason::Loopback));
        assert_eq!(why("::1"), Some(AllowReason::Loopback));
        assert_eq!(why("::ffff:127.0.0.1"), Some(AllowReason::Loopback));
        assert_eq!(why("192.168.56.101"), None);
        assert_eq!(why("2001:db8::21"), None);
    }

    #[test]
    fn prefix_overlap_both_ways() {
        let list = host();
        let n = |s: &str| -> IpNet { s.parse().unwrap() };
        // The attacker's /24 holds the host's own address and gateway.
        assert!(list.overlapping(n("192.168.56.0/24")).is_some());
        // A host inside a configured /24.
        assert!(list.overlapping(n("203.0.113.9/32")).is_some());
        assert!(list.overlapping(n("198.51.100.0/24")).is_none());
    }

    #[test]
    fn gathers_this_host_without_a_shell() {
        let list = HostAllowlist::from_config(&BanConfig::default());
        for (net, why) in &list.entries {
            println!("{net} {why:?}");
        }
        assert!(list.matching("127.0.0.1".parse().unwrap()).is_some());
        assert!(list.matching("::1".parse().unwrap()).is_some());
    }

    #[test]
    fn missing_files_leave_loopback_and_configured() {
        let mut list = HostAllowlist::default();
        list.add_host(Path::new("/nonexistent"), Path::new("/nonexistent/resolv"));
        assert_eq!(list.entries.len(), 2);
    }
}
