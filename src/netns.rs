//! Throwaway network namespaces for `portwarden demo` and the root-only tests.
//!
//! A [`Lab`] is the seed lab in miniature: two namespaces, `attacker` and `target`, joined by a
//! veth pair (`va` in the attacker, `vt` in the target) with IPv4 and IPv6 addresses. The veth
//! ends are created directly inside the namespaces, so their names never clash with the host's
//! or with another lab's. Everything is removed on drop, also when a test panics, and the
//! host's own ruleset and interfaces are never touched.
//!
//! Every command runs without a shell (`Command` with separate arguments). Names are made
//! unique per process and per lab so that tests can run in parallel.

use std::ffi::OsStr;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// A process-unique short tag (`<pid>x<n>`), for namespace names and per-test log prefixes.
pub fn unique_tag() -> String {
    format!(
        "{}x{}",
        std::process::id(),
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs a command, returning its output, or an error that carries its stderr.
pub fn run_checked<I, S>(program: &str, args: I) -> io::Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args
        .into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect();
    let out = Command::new(program)
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run {program}: {e}")))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{program} {} failed ({}): {}",
            args.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

/// One network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// `ip netns add NAME`, with loopback up.
    pub fn create(name: &str) -> io::Result<Netns> {
        run_checked("ip", ["netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
        };
        ns.run("ip", ["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs inside the namespace (`ip netns exec NAME PROGRAM ...`).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Runs a command inside the namespace; an error carries its stderr.
    pub fn run<I, S>(&self, program: &str, args: I) -> io::Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all: Vec<std::ffi::OsString> = vec![
            "netns".into(),
            "exec".into(),
            self.name.clone().into(),
            program.into(),
        ];
        all.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        run_checked("ip", all)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its interfaces, its nftables ruleset and, with them,
        // its half of any veth pair. Errors cannot be returned from drop; report them.
        if let Err(e) = run_checked("ip", ["netns", "delete", &self.name]) {
            eprintln!(
                "warning: could not delete network namespace {}: {e}",
                self.name
            );
        }
    }
}

/// The seed lab's two hosts, joined by a veth pair.
#[derive(Debug)]
pub struct Lab {
    pub target: Netns,
    pub attacker: Netns,
    pub target_v4: Ipv4Addr,
    pub attacker_v4: Ipv4Addr,
    pub target_v6: Ipv6Addr,
    pub attacker_v6: Ipv6Addr,
}

impl Lab {
    /// Interface names inside the namespaces.
    pub const TARGET_IF: &'static str = "vt";
    pub const ATTACKER_IF: &'static str = "va";

    /// Creates `pw-<label>-<tag>-t` and `...-a` with 10.250.0.1/.2 and fd00:250::1/::2 (the
    /// addresses of the captured samples; they live only inside these namespaces).
    pub fn create(label: &str) -> io::Result<Lab> {
        let tag = unique_tag();
        let target = Netns::create(&format!("pw-{label}-{tag}-t"))?;
        let attacker = Netns::create(&format!("pw-{label}-{tag}-a"))?;
        let lab = Lab {
            target,
            attacker,
            target_v4: Ipv4Addr::new(10, 250, 0, 1),
            attacker_v4: Ipv4Addr::new(10, 250, 0, 2),
            target_v6: Ipv6Addr::new(0xfd00, 0x250, 0, 0, 0, 0, 0, 1),
            attacker_v6: Ipv6Addr::new(0xfd00, 0x250, 0, 0, 0, 0, 0, 2),
        };
        run_checked(
            "ip",
            [
                "-n",
                lab.target.name(),
                "link",
                "add",
                Self::TARGET_IF,
                "type",
                "veth",
                "peer",
                "name",
                Self::ATTACKER_IF,
                "netns",
                lab.attacker.name(),
            ],
        )?;
        for (ns, ifname, v4, v6) in [
            (&lab.target, Self::TARGET_IF, lab.target_v4, lab.target_v6),
            (
                &lab.attacker,
                Self::ATTACKER_IF,
                lab.attacker_v4,
                lab.attacker_v6,
            ),
        ] {
            ns.run("ip", ["addr", "add", &format!("{v4}/24"), "dev", ifname])?;
            ns.run(
                "ip",
                [
                    "-6",
                    "addr",
                    "add",
                    &format!("{v6}/64"),
                    "dev",
                    ifname,
                    "nodad",
                ],
            )?;
            ns.run("ip", ["link", "set", ifname, "up"])?;
        }
        Ok(lab)
    }

    pub fn target_ip(&self, v6: bool) -> IpAddr {
        if v6 {
            self.target_v6.into()
        } else {
            self.target_v4.into()
        }
    }

    pub fn attacker_ip(&self, v6: bool) -> IpAddr {
        if v6 {
            self.attacker_v6.into()
        } else {
            self.attacker_v4.into()
        }
    }
}

/// A switch: a namespace of its own holding a bridge (`br0`), to which other namespaces are
/// attached by veth pairs (`eth0`-like end in the namespace, `pN` on the bridge). For the
/// fleet tests: several hosts, their attackers and a Redis server on one LAN. Deleting the
/// switch's namespace deletes the bridge and every bridge-side veth end, and with them the
/// other ends.
#[derive(Debug)]
pub struct Switch {
    pub ns: Netns,
    ports: AtomicU32,
}

impl Switch {
    /// `ip netns add NAME` with `br0` up in it.
    pub fn create(name: &str) -> io::Result<Switch> {
        let ns = Netns::create(name)?;
        ns.run("ip", ["link", "add", "br0", "type", "bridge"])?;
        ns.run("ip", ["link", "set", "br0", "up"])?;
        Ok(Switch {
            ns,
            ports: AtomicU32::new(0),
        })
    }

    /// Give the switch's own namespace an address on the bridge (`10.0.0.254/24`), for a
    /// server running in it.
    pub fn address(&self, cidr: &str) -> io::Result<()> {
        self.ns.run("ip", ["addr", "add", cidr, "dev", "br0"])?;
        Ok(())
    }

    /// Plug `ns` into the bridge as interface `ifname` with address `cidr` (`10.0.0.1/24`).
    pub fn attach(&self, ns: &Netns, ifname: &str, cidr: &str) -> io::Result<()> {
        let port = format!("p{}", self.ports.fetch_add(1, Ordering::Relaxed));
        run_checked(
            "ip",
            [
                "-n",
                ns.name(),
                "link",
                "add",
                ifname,
                "type",
                "veth",
                "peer",
                "name",
                &port,
                "netns",
                self.ns.name(),
            ],
        )?;
        self.ns.run("ip", ["link", "set", &port, "master", "br0"])?;
        self.ns.run("ip", ["link", "set", &port, "up"])?;
        ns.run("ip", ["addr", "add", cidr, "dev", ifname])?;
        ns.run("ip", ["link", "set", ifname, "up"])?;
        Ok(())
    }
}

/// Makes LOG records from every namespace reach the global kernel ring (off by default: only
/// the initial namespace logs). Returns the previous value so a caller can restore it.
pub fn enable_log_all_netns() -> io::Result<String> {
    let path = Path::new("/proc/sys/net/netfilter/nf_log_all_netns");
    let before = std::fs::read_to_string(path)?.trim().to_string();
    if before != "1" {
        std::fs::write(path, "1")?;
    }
    Ok(before)
}

/// Whether a program is on `$PATH`, for the demo's and the tests' prerequisite checks (the
/// production helper, re-exported here so that they find every check in one place).
pub use crate::sys::on_path;

/// Whether this process runs with effective uid 0.
pub fn is_root() -> bool {
    // /proc/self/status "Uid:\treal\teffective\t..."; avoids a libc dependency for one call.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|rest| rest.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}
