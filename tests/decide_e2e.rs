//! The decide stage against a real host view and a real kernel set, in a namespace: the
//! allowlist holds for the target's default gateway, its own addresses and its resolvers (an
//! nmap decoy scan can name any of them), the ban-rate cap holds under a burst of scanners,
//! several scanners of one /24 ban the prefix, and the seed lab's own table can be used.
//!
//! The records come from a kern.log-style file that the test writes (kernel-tagged lines are
//! trusted from a file source), so that the sources can be addresses no packet could carry
//! (the target's own), and so that the test controls exactly how many scanners there are.
//! `portwarden setup` and `run --once` run inside the target namespace: the allowlist is read
//! from that namespace's /proc/net and the bans land in that namespace's table.

mod common;

use std::net::IpAddr;
use std::path::Path;

use portwarden::netns::{Lab, unique_tag};

const PORTS: [u16; 12] = [21, 22, 23, 25, 53, 80, 110, 135, 139, 443, 445, 3389];

/// Kernel-tagged LOG lines of a 12-port SYN scan from `src` to `dst`, stamped now.
fn scan_lines(prefix: &str, src: IpAddr, dst: IpAddr) -> String {
    let now = jiff::Timestamp::now();
    let stamp = now.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00");
    let mut out = String::new();
    for (i, port) in PORTS.iter().enumerate() {
        let (ipver, rest) = match src {
            IpAddr::V4(_) => ("", format!("LEN=44 TOS=0x00 PREC=0x00 TTL=43 ID={i}")),
            IpAddr::V6(_) => ("", "LEN=64 TC=0 HOPLIMIT=255 FLOWLBL=0".to_string()),
        };
        let (s, d) = (expand(src), expand(dst));
        out.push_str(&format!(
            "{stamp} target kernel: [  635.{i:06}] {prefix}{ipver}IN=vt OUT= MAC=be:9f:a3:6c:b5:1c:fe:41:27:a3:2a:4d:08:00 SRC={s} DST={d} {rest} PROTO=TCP SPT=44285 DPT={port} WINDOW=1024 RES=0x00 SYN URGP=0 \n"
        ));
    }
    out
}

/// The kernel prints IPv6 addresses fully expanded.
fn expand(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => a
            .segments()
            .iter()
            .map(|s| format!("{s:04x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

struct Target<'a> {
    lab: &'a Lab,
    config: std::path::PathBuf,
}

impl Target<'_> {
    fn portwarden(&self, args: &[&str]) -> (bool, String) {
        let out = self
            .lab
            .target
            .command(common::bin())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("PORTWARDEN_STATE_DIR")
            .env_remove("PORTWARDEN_CONFIG")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn banned(&self, set: &str) -> String {
        let out = self
            .lab
            .target
            .run("nft", ["list", "set", "inet", "portwarden", set])
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Writes the test's config (a file source, `extra` appended) and runs `portwarden setup` in
/// the target: the target, the log file and what setup printed.
fn setup_with<'a>(
    lab: &'a Lab,
    dir: &Path,
    prefix: &str,
    extra: &str,
) -> (Target<'a>, std::path::PathBuf, String) {
    let log = dir.join("kern.log");
    std::fs::write(&log, "").unwrap();
    let config = dir.join("portwarden.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\n[log]\nprefix = \"{prefix}\"\n[[source]]\nkind = \"file\"\npath = \"{}\"\n{extra}",
            dir.join("state").display(),
            log.display()
        ),
    )
    .unwrap();
    let target = Target { lab, config };
    let (ok, out) = target.portwarden(&["setup"]);
    assert!(ok, "setup: {out}");
    (target, log, out)
}

/// `setup_with` a LOG prefix no other test uses.
fn setup<'a>(lab: &'a Lab, dir: &Path, extra: &str) -> (Target<'a>, String, std::path::PathBuf) {
    let prefix = format!("pwt{}: ", unique_tag());
    let (target, log, _) = setup_with(lab, dir, &prefix, extra);
    (target, prefix, log)
}

fn resolvers() -> Vec<IpAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse().ok())
        .collect()
}

#[test]
fn gateway_own_addresses_and_resolvers_are_never_banned() {
    if !common::e2e_ready(
        "gateway_own_addresses_and_resolvers_are_never_banned",
        &["nft", "ip"],
    ) {
        return;
    }
    let lab = Lab::create("allow").unwrap();
    // The attacker's address is the target's default gateway (IPv4 and IPv6).
    lab.target
        .run("ip", ["route", "add", "default", "via", "10.250.0.2"])
        .unwrap();
    lab.target
        .run(
            "ip",
            ["-6", "route", "add", "default", "via", "fd00:250::2"],
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (target, prefix, log) = setup(&lab, dir.path(), "");

    let control: IpAddr = "198.51.100.9".parse().unwrap();
    let mut protected: Vec<IpAddr> = vec![
        lab.attacker_ip(false), // gateway
        lab.attacker_ip(true),  // IPv6 gateway
        lab.target_ip(false),   // own address (a decoy can name it)
        lab.target_ip(true),
        "127.0.0.1".parse().unwrap(),
    ];
    protected.extend(resolvers().into_iter().take(2));
    let mut lines = String::new();
    for src in protected.iter().chain([&control]) {
        let dst = if src.is_ipv6() {
            lab.target_ip(true)
        } else {
            lab.target_ip(false)
        };
        lines.push_str(&scan_lines(&prefix, *src, dst));
    }
    std::fs::write(&log, lines).unwrap();

    let (ok, out) = target.portwarden(&["run", "--once"]);
    assert!(ok, "run --once: {out}");
    println!("{out}");
    assert!(
        out.contains(&format!("{} allowlisted", protected.len())),
        "{out}"
    );
    // Addresses and prefixes alike.
    let v4 = target.banned("banned4") + &target.banned("banned4_nets");
    let v6 = target.banned("banned6") + &target.banned("banned6_nets");
    assert!(
        v4.contains("198.51.100.9"),
        "the control scanner must be banned: {v4}"
    );
    for p in &protected {
        assert!(
            !v4.contains(&p.to_string()) && !v6.contains(&p.to_string()),
            "{p} was banned: {v4}{v6}"
        );
    }
}

#[test]
fn the_ban_rate_cap_holds_under_a_burst_of_scanners() {
    if !common::e2e_ready(
        "the_ban_rate_cap_holds_under_a_burst_of_scanners",
        &["nft", "ip"],
    ) {
        return;
    }
    let lab = Lab::create("ratecap").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (target, prefix, log) = setup(
        &lab,
        dir.path(),
        "[ban]\nmax_bans_per_minute = 5\nallowlist_host = false\n",
    );
    // 30 scanners, each in its own /24 so that no prefix escalation folds them together.
    let mut lines = String::new();
    for i in 1..=30u8 {
        lines.push_str(&scan_lines(
            &prefix,
            IpAddr::from([100, 64, i, 7]),
            lab.target_ip(false),
        ));
    }
    std::fs::write(&log, lines).unwrap();

    let (ok, out) = target.portwarden(&["run", "--once"]);
    assert!(ok, "run --once: {out}");
    println!("{out}");
    assert!(out.contains("30 finding(s), 5 ban(s)"), "{out}");
    assert!(out.contains("25 rate-limited"), "{out}");
    let v4 = target.banned("banned4");
    let elements = v4.matches("100.64.").count();
    assert_eq!(
        elements, 5,
        "exactly the cap must be in the kernel set: {v4}"
    );

    // `list` shows the same 5 bans, in the kernel and in the store alike.
    let (ok, list) = target.portwarden(&["list", "--json"]);
    assert!(ok, "{list}");
    let listing: serde_json::Value = serde_json::from_str(&list).unwrap();
    let bans = listing["bans"].as_array().unwrap();
    assert_eq!(bans.len(), 5, "{list}");
    assert!(
        bans.iter()
            .all(|b| b["in_kernel"] == true && b["in_store"] == true),
        "{list}"
    );
}

#[test]
fn the_seed_labs_own_table_is_used_and_expiry_is_done_by_portwarden() {
    if !common::e2e_ready(
        "the_seed_labs_own_table_is_used_and_expiry_is_done_by_portwarden",
        &["nft", "ip"],
    ) {
        return;
    }
    let lab = Lab::create("seedtable").unwrap();
    // The seed lab's firewall, as its write-up builds it.
    let nft = |args: &[&str]| lab.target.run("nft", args).unwrap();
    nft(&["add", "table", "ip", "filter"]);
    nft(&[
        "add",
        "chain",
        "ip",
        "filter",
        "INPUT",
        "{ type filter hook input priority 0; policy accept; }",
    ]);
    nft(&[
        "add",
        "set",
        "ip",
        "filter",
        "blocked_ips",
        "{ type ipv4_addr; flags interval; }",
    ]);
    nft(&[
        "add",
        "rule",
        "ip",
        "filter",
        "INPUT",
        "ip",
        "saddr",
        "@blocked_ips",
        "drop",
    ]);
    nft(&[
        "add",
        "rule",
        "ip",
        "filter",
        "INPUT",
        "tcp",
        "flags",
        "syn",
        "log",
        "prefix",
        "\"SYN_SCAN_ATTEMPT--\"",
    ]);
    let chain = || {
        String::from_utf8_lossy(&nft(&["list", "chain", "ip", "filter", "INPUT"]).stdout)
            .into_owned()
    };
    let set = || {
        String::from_utf8_lossy(&nft(&["list", "set", "ip", "filter", "blocked_ips"]).stdout)
            .into_owned()
    };
    let chain_before = chain();

    let dir = tempfile::tempdir().unwrap();
    let (target, log, out) = setup_with(
        &lab,
        dir.path(),
        "SYN_SCAN_ATTEMPT--",
        "[firewall]\nfamily = \"ip\"\ntable = \"filter\"\nset4 = \"blocked_ips\"\n\
         [ban]\nduration = \"2s\"\nallowlist_host = false\n",
    );
    assert!(out.contains("not managed by portwarden"), "setup: {out}");

    // The lab's blocked_ips.txt is taken over; its bad line is reported, not fatal.
    let list = dir.path().join("blocked_ips.txt");
    std::fs::write(&list, "192.0.2.50\n# banned by hand\nnot-an-address\n").unwrap();
    let (ok, out) = target.portwarden(&["import", list.to_str().unwrap()]);
    assert!(ok, "import: {out}");
    assert!(
        out.contains("not-an-address"),
        "the bad line must be named: {out}"
    );
    assert!(set().contains("192.0.2.50"), "{}", set());

    // An IPv4 and an IPv6 scanner: the first goes into the lab's set (no timeout: the set has
    // no timeout flag), the second has no set to go to and is reported, not sent to nft.
    let mut lines = scan_lines(
        "SYN_SCAN_ATTEMPT--",
        lab.attacker_ip(false),
        lab.target_ip(false),
    );
    lines.push_str(&scan_lines(
        "SYN_SCAN_ATTEMPT--",
        lab.attacker_ip(true),
        lab.target_ip(true),
    ));
    std::fs::write(&log, lines).unwrap();
    let (ok, out) = target.portwarden(&["run", "--once"]);
    assert!(ok, "run --once: {out}");
    println!("{out}");
    assert!(
        out.contains("1 ban(s) [10.250.0.2/32]") && out.contains("1 no IPv6 set"),
        "{out}"
    );
    let s = set();
    assert!(s.contains("10.250.0.2") && !s.contains("timeout"), "{s}");

    // The kernel cannot expire it; a pass after the ban's end (2 s) lifts it. Passes are run
    // until one has (a condition with a deadline, not a sleep sized to the ban).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while set().contains("10.250.0.2") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let (ok, out) = target.portwarden(&["run", "--once"]);
        assert!(ok, "run --once: {out}");
        println!("{out}");
    }
    assert!(
        !set().contains("10.250.0.2"),
        "expired ban still in the lab's set: {}",
        set()
    );
    assert_eq!(
        chain(),
        chain_before,
        "the lab's own rules must be left alone"
    );
}

#[test]
fn several_scanners_of_one_prefix_ban_the_prefix() {
    if !common::e2e_ready(
        "several_scanners_of_one_prefix_ban_the_prefix",
        &["nft", "ip"],
    ) {
        return;
    }
    let lab = Lab::create("prefix").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (target, prefix, log) = setup(&lab, dir.path(), "[ban]\nallowlist_host = false\n");
    // Four scanners of 203.0.113.0/24 (the default `prefix_sources = 4`), and one elsewhere.
    let mut lines = String::new();
    for host in [11u8, 12, 13, 14] {
        lines.push_str(&scan_lines(
            &prefix,
            IpAddr::from([203, 0, 113, host]),
            lab.target_ip(false),
        ));
    }
    lines.push_str(&scan_lines(
        &prefix,
        "198.51.100.9".parse().unwrap(),
        lab.target_ip(false),
    ));
    std::fs::write(&log, lines).unwrap();

    let (ok, out) = target.portwarden(&["run", "--once"]);
    assert!(ok, "run --once: {out}");
    println!("{out}");
    // Addresses in banned4, prefixes in banned4_nets.
    let v4 = target.banned("banned4");
    let nets4 = target.banned("banned4_nets");
    println!("{v4}{nets4}");
    assert!(
        nets4.contains("203.0.113.0/24"),
        "the prefix must be banned: {nets4}"
    );
    for host in [11, 12, 13, 14] {
        assert!(
            !v4.contains(&format!("203.0.113.{host} ")),
            "members are folded into the prefix: {v4}"
        );
    }
    assert!(v4.contains("198.51.100.9"), "{v4}");
    // The store knows the prefix ban too (list shows kernel and store side by side).
    let listing = target.portwarden(&["list", "--json"]).1;
    assert!(listing.contains("203.0.113.0/24"), "{listing}");
}
