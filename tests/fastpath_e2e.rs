//! End to end, the kernel fast path (docs/fastpath.md) with real parts only: `portwarden
//! setup` (and the daemon or `run --once`) INSIDE a throwaway target namespace, real nmap from
//! an attacker namespace, the kernel's sets read with `nft -j` inside the namespace.
//!
//! What each test proves:
//! 1. `nmap -sS -T4` (its default 1000 ports) and `-T5 -p 1-1000` see at most 8 closed ports
//!    (the kernel bans at the `fast_failures`-th new port: 5 with the default 6), the rescan
//!    sees only `filtered`; IPv4 and IPv6. No user space runs: the kernel alone does it.
//! 2. a client making 300 connections to a served port (learnt by the kernel's own socket
//!    lookup) after 5 closed ones is never banned, by the kernel or by the daemon.
//! 3. an nmap decoy scan (`-D`) naming the target's gateway and an allowlisted address bans
//!    the scanner and neither decoy (`allow4`/`allow6`, written by `setup`); IPv4 and IPv6.
//! 4. the daemon records a kernel ban through the ban book: `list --json` shows it with reason
//!    `kernel_fastpath`; after `unban` (which also lifts the kernel's element) a rescan is
//!    banned again, as a second offence with the escalated duration.
//! 5. cron mode: `run --once` after a scan records the kernel's ban the same way.
//! 6. `[fastpath] max_bans` caps the kernel's ban set: a flood of new sources past it is not
//!    banned by the kernel (nft's `add` into a full set fails and the rule stops there).
//!
//! No timed assertions: figures are printed. Deadlines only stop a test that would hang.

mod common;

use std::time::Duration;

use common::lab::{self, Setup, nmap_with, set_elements, wait_for};
use portwarden::netns::{Lab, Netns};

const KMSG_SOURCE: &str = "[[source]]\nkind = \"kmsg\"\npath = \"/dev/kmsg\"\n";

fn lab(label: &str) -> Lab {
    portwarden::netns::enable_log_all_netns().unwrap();
    Lab::create(label).unwrap()
}

/// Forget every kernel ban and what the fast path learnt, in `ns` (between two scans).
fn reset_fastpath(ns: &Netns) {
    for set in [
        "fastban4", "fastban6", "probes4", "probes6", "newport4", "newport6",
    ] {
        ns.run("nft", ["flush", "set", "inet", "portwarden", set])
            .unwrap();
    }
}

fn e2e(test: &str) -> bool {
    common::e2e_ready(test, &["nft", "ip", "nmap", "python3"])
}

/// Test 1: the kernel alone, IPv4 and IPv6, -T4 and -T5.
#[test]
fn nmap_t4_and_t5_see_at_most_8_closed_ports_then_only_filtered() {
    if !e2e("nmap_t4_and_t5_see_at_most_8_closed_ports_then_only_filtered") {
        return;
    }
    let lab = lab("fp1");
    let s = Setup::with_fastpath("");
    s.setup(&lab.target);
    let ruleset = lab
        .target
        .run("nft", ["list", "table", "inet", "portwarden"])
        .unwrap();
    println!("{}", String::from_utf8_lossy(&ruleset.stdout));
    for v6 in [false, true] {
        let target = lab.target_ip(v6).to_string();
        let attacker = lab.attacker_ip(v6).to_string();
        let fastban = if v6 { "fastban6" } else { "fastban4" };
        // `--max-retries 1`: nmap re-probes a silent port up to 6 times at -T4, which makes a
        // mostly filtered scan take minutes; answered (closed) ports are unaffected.
        // `--min-rate 1000`: once its probes go unanswered, nmap -T4 slows down to a crawl
        // (this -T4 scan took 211 s without it, 21 s for the rescan); a floor on the rate
        // only puts more probes in flight, and the kernel judges each packet as it arrives,
        // so it can only make the fast path's task harder, never easier.
        for options in [
            &["-T4", "--max-retries", "1", "--min-rate", "1000"][..],
            &[
                "-T5",
                "-p",
                "1-1000",
                "--max-retries",
                "1",
                "--min-rate",
                "1000",
            ][..],
        ] {
            reset_fastpath(&lab.target);
            let (filtered, closed, open, took, text) = nmap_with(&lab.attacker, &target, options);
            println!(
                "nmap {options:?} {target}: {closed} closed, {filtered} filtered, {open} open in {took:?}"
            );
            assert!(closed <= 8, "{closed} closed ports seen:\n{text}");
            assert!(closed >= 1, "the first probes must be answered:\n{text}");
            assert_eq!(open, 0, "{text}");
            assert!(
                set_elements(&lab.target, fastban).contains(&attacker),
                "{attacker} not in {fastban}: {:?}",
                set_elements(&lab.target, fastban)
            );
            let (filtered2, closed2, open2, _, text2) = nmap_with(&lab.attacker, &target, options);
            println!("rescan: {closed2} closed, {filtered2} filtered, {open2} open");
            assert_eq!((closed2, open2), (0, 0), "{text2}");
            // IPv6: the ban drops the banned source's neighbour solicitations too, so nmap
            // finds no route to the host ("0 hosts up"): nothing answered either way.
            if !(v6 && text2.contains("(0 hosts up)")) {
                assert_eq!(filtered2, filtered + closed, "{text2}");
            }
        }
    }
}

/// Test 2: a busy client of a served port, with the daemon running too.
#[test]
fn a_busy_client_of_a_served_port_is_never_banned() {
    if !e2e("a_busy_client_of_a_served_port_is_never_banned") {
        return;
    }
    let lab = lab("fp2");
    let s = Setup::with_fastpath(KMSG_SOURCE);
    s.setup(&lab.target);
    let target = lab.target_v4.to_string();
    let attacker = lab.attacker_v4.to_string();
    let mut daemon = s.daemon(&lab.target);
    // Bound to the wildcard address: the kernel's socket lookup must find it for any
    // destination address of this host.
    let mut http = lab.target.command("python3");
    http.args(["-m", "http.server", "8080", "--directory"])
        .arg(s.dir());
    let _http =
        lab::Background::spawn("http.server", &mut http, &s.dir().join("http.log")).unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || lab::listens(&lab.target, 8080)
            .then_some(()))
        .is_some(),
        "http.server did not listen"
    );
    // 5 closed ports (one below the threshold of 6), then 300 connections to the served one:
    // if it counted, the first would be the 6th new port and ban the client.
    let out = lab::busy_client(&lab.attacker, &target);
    let ok = String::from_utf8_lossy(&out.stdout).trim().to_string();
    println!("client: {ok} HTTP requests answered");
    assert!(
        out.status.success(),
        "client failed: {}\nfastban4: {:?}",
        String::from_utf8_lossy(&out.stderr),
        set_elements(&lab.target, "fastban4")
    );
    assert_eq!(ok, "300");
    // The daemon reads within milliseconds; give a wrong ban time to show.
    std::thread::sleep(Duration::from_secs(2));
    assert!(!set_elements(&lab.target, "fastban4").contains(&attacker));
    assert!(!set_elements(&lab.target, "banned4").contains(&attacker));
    // The same client probing a 6th closed port is banned by the kernel: it was counting.
    let (_, closed, _, _, text) = nmap_with(&lab.attacker, &target, &["-T4", "-p", "2001-2010"]);
    println!("then nmap 2001-2010: {closed} closed");
    assert!(closed <= 1, "{text}");
    assert!(set_elements(&lab.target, "fastban4").contains(&attacker));
    assert_eq!(daemon.exited(), None, "{}", daemon.output());
    daemon.stop();
}

/// Test 3: decoys naming the gateway and an allowlisted address, IPv4 and IPv6.
#[test]
fn a_decoy_scan_bans_neither_the_gateway_nor_an_allowlisted_address() {
    if !e2e("a_decoy_scan_bans_neither_the_gateway_nor_an_allowlisted_address") {
        return;
    }
    let lab = lab("fp3");
    // The target's default gateways (addresses no namespace holds: nmap forges them).
    lab.target
        .run("ip", ["route", "add", "default", "via", "10.250.0.254"])
        .unwrap();
    lab.target
        .run(
            "ip",
            ["-6", "route", "add", "default", "via", "fd00:250::fe"],
        )
        .unwrap();
    let s = Setup::with_fastpath("[ban]\nallowlist = [\"10.250.0.77/32\", \"fd00:250::77/128\"]\n");
    s.setup(&lab.target);
    println!("allow4: {:?}", set_elements(&lab.target, "allow4"));
    println!("allow6: {:?}", set_elements(&lab.target, "allow6"));
    for (v6, gateway, allowed) in [
        (false, "10.250.0.254", "10.250.0.77"),
        (true, "fd00:250::fe", "fd00:250::77"),
    ] {
        let target = lab.target_ip(v6).to_string();
        let attacker = lab.attacker_ip(v6).to_string();
        let fastban = if v6 { "fastban6" } else { "fastban4" };
        let decoys = format!("{gateway},{allowed},ME");
        let (filtered, closed, _, _, text) = nmap_with(
            &lab.attacker,
            &target,
            &["-T4", "-p", "1-100", "--max-retries", "1", "-D", &decoys],
        );
        println!("decoy scan of {target} ({decoys}): {closed} closed, {filtered} filtered");
        let banned = set_elements(&lab.target, fastban);
        println!("{fastban}: {banned:?}");
        assert!(banned.contains(&attacker), "{banned:?}\n{text}");
        assert!(
            !banned.iter().any(|b| b == gateway || b == allowed),
            "{banned:?}"
        );
        assert!(closed <= 8, "{text}");
    }
}

/// The bans `list --json` shows in `ns`.
fn list_json(s: &Setup, ns: &Netns) -> Vec<serde_json::Value> {
    let out = s.run(ns, &["list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["bans"].as_array().cloned().unwrap_or_default()
}

fn ban_of(s: &Setup, ns: &Netns, target: &str) -> Option<serde_json::Value> {
    list_json(s, ns).into_iter().find(|b| {
        b["target"]
            .as_str()
            .is_some_and(|t| t == target || t.strip_suffix("/32") == Some(target))
    })
}

/// Test 4: the daemon records a kernel ban and escalates a repeat offence.
#[test]
fn the_daemon_records_a_kernel_ban_and_escalates_a_repeat() {
    if !e2e("the_daemon_records_a_kernel_ban_and_escalates_a_repeat") {
        return;
    }
    let lab = lab("fp4");
    // A repeat offence comes back after its ban, when user space has long forgotten the first
    // scan (a session ends after `slow_gap` of silence). Here the ban is lifted at once, so
    // the window and the session gap are 2 s and the long horizon is off: then the second
    // scan, like the first, is the kernel's to judge, not user space's memory of the first.
    let s = Setup::with_fastpath(&format!(
        "{KMSG_SOURCE}[ban]\nduration = \"10m\"\n\n\
         [detect]\nwindow = \"2s\"\nslow_gap = \"2s\"\nlong_failures = 0\n"
    ));
    s.setup(&lab.target);
    let target = lab.target_v4.to_string();
    let attacker = lab.attacker_v4.to_string();
    let mut daemon = s.daemon(&lab.target);
    let mut durations = Vec::new();
    for round in 1..=2 {
        let (_, closed, _, _, text) = nmap_with(
            &lab.attacker,
            &target,
            &["-T4", "-p", "1-100", "--max-retries", "1"],
        );
        println!("round {round}: nmap saw {closed} closed");
        assert!(closed <= 8, "{text}");
        let ban = wait_for(Duration::from_secs(20), || {
            ban_of(&s, &lab.target, &attacker).filter(|b| b["in_store"] == true)
        })
        .unwrap_or_else(|| panic!("no ban in list --json; daemon:\n{}", daemon.output()));
        println!("round {round}: {ban}");
        let reason = ban["reason"].as_str().unwrap_or_default().to_string();
        assert!(reason.contains("kernel_fastpath"), "{reason}");
        assert_eq!(ban["in_kernel"], true, "{ban}");
        durations.push(ban["remaining_secs"].as_i64().unwrap_or(0));
        if round == 1 {
            assert!(!reason.contains("offence"), "{reason}");
            // Lift it: the book's element and the kernel's.
            s.run(&lab.target, &["unban", &attacker]);
            assert!(!set_elements(&lab.target, "fastban4").contains(&attacker));
            assert!(ban_of(&s, &lab.target, &attacker).is_none());
            // The kernel forgot the probes too (its window is 2 s); the offence is remembered.
            reset_fastpath(&lab.target);
            // Not a wait for a condition: the scenario's time between the two offences, longer
            // than the session gap.
            std::thread::sleep(Duration::from_secs(3));
        }
    }
    println!("ban durations (s left): {durations:?}");
    let last = ban_of(&s, &lab.target, &attacker).unwrap();
    assert!(
        last["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("offence 2"),
        "{last}"
    );
    assert!(
        durations[1] > durations[0],
        "the repeat offence was not escalated: {durations:?}"
    );
    let store = s.store();
    use portwarden::store::ReadStore as _;
    let n: i64 = store
        .connection()
        .query_row(
            "SELECT COUNT(*) FROM findings WHERE kind = 'kernel_fastpath'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(n >= 2, "{n} kernel_fastpath findings in the store");
    let status = s.run(&lab.target, &["status", "--json"]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("kernel_fastpath"), "{status}");
    daemon.stop();
}

/// Test 5: cron mode records the kernel's ban too.
#[test]
fn run_once_records_a_kernel_ban() {
    if !e2e("run_once_records_a_kernel_ban") {
        return;
    }
    let lab = lab("fp5");
    let s = Setup::with_fastpath(KMSG_SOURCE);
    s.setup(&lab.target);
    // The first pass starts the kmsg cursor at the ring's end. A short scan right before the
    // next pass: the ring is small and shared with every other test, and a pass reads only
    // what is still in it.
    s.run_once(&lab.target);
    let target = lab.target_v6.to_string();
    let attacker = lab.attacker_v6.to_string();
    let (_, closed, _, _, text) = nmap_with(
        &lab.attacker,
        &target,
        &["-T4", "-p", "1-20", "--max-retries", "1"],
    );
    println!("nmap -6 saw {closed} closed");
    assert!(closed <= 8, "{text}");
    let (summary, _) = s.run_once(&lab.target);
    assert!(
        summary.banned().iter().any(|b| b.starts_with(&attacker)),
        "{:?}",
        summary.0
    );
    let ban = ban_of(&s, &lab.target, &attacker)
        .or_else(|| {
            list_json(&s, &lab.target).into_iter().find(|b| {
                b["target"]
                    .as_str()
                    .is_some_and(|t| t.starts_with(&attacker))
            })
        })
        .expect("ban listed");
    println!("{ban}");
    assert!(
        ban["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("kernel_fastpath")
    );
}

/// Test 6: the kernel's ban set stops at `max_bans`.
#[test]
fn the_kernel_ban_set_stops_at_its_cap() {
    if !e2e("the_kernel_ban_set_stops_at_its_cap") {
        return;
    }
    let lab = lab("fp6");
    // Keys before the first header go into `[fastpath]`.
    let s = Setup::with_fastpath("max_bans = 3\n\n[detect]\nfast_failures = 2\n");
    s.setup(&lab.target);
    let target = lab.target_v4.to_string();
    // Five scanners, each its own address on the attacker's side.
    let mut banned = Vec::new();
    for i in 10..15 {
        let addr = format!("10.250.0.{i}");
        lab.attacker
            .run(
                "ip",
                [
                    "addr",
                    "add",
                    &format!("{addr}/24"),
                    "dev",
                    Lab::ATTACKER_IF,
                ],
            )
            .unwrap();
        let (_, closed, _, _, _) = nmap_with(
            &lab.attacker,
            &target,
            &["-T4", "-p", "1-20", "-S", &addr, "-e", Lab::ATTACKER_IF],
        );
        let now = set_elements(&lab.target, "fastban4");
        println!("scanner {addr}: nmap saw {closed} closed; fastban4 {now:?}");
        banned = now;
    }
    assert_eq!(banned.len(), 3, "{banned:?}");
    assert_eq!(
        banned,
        vec!["10.250.0.10", "10.250.0.11", "10.250.0.12"],
        "the first three stay, the rest are not added"
    );
}
