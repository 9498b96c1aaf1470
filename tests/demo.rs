//! `portwarden demo` end to end, as an operator runs it: the real binary builds the seed lab in
//! throwaway namespaces, scans with real nmap, must ban the scanner (the kernel fast path, on by
//! default, before most ports answered), and must see all 12 ports filtered on the second scan;
//! afterwards none of its namespaces may be left.

mod common;

use std::process::Command;

fn namespaces() -> String {
    String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip netns list")
            .stdout,
    )
    .into_owned()
}

/// Runs `portwarden demo ARGS` and checks what an operator must see: the ban, the first
/// scan's closed ports (at most 8), the second scan's 12 filtered ports, and no namespace left.
fn demo_must_ban(test: &str, args: &[&str]) {
    if !common::e2e_ready(test, &["nft", "nmap", "ip"]) {
        return;
    }
    // Other tests on this machine need the sysctl on at the same time; with it already on, the
    // demo leaves it as it is instead of restoring "0" under their feet.
    portwarden::netns::enable_log_all_netns().expect("enable nf_log_all_netns");
    let state = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = common::portwarden(state.path())
        .arg("demo")
        .args(args)
        .output()
        .expect("run portwarden demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n--- stderr ---\n{stderr}");
    println!(
        "demo {args:?} took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(out.status.success(), "demo failed: {}", out.status);
    assert!(
        stdout.contains("ban: 10.250.0.2 in set inet portwarden banned4"),
        "no ban in the output"
    );
    assert!(
        stdout.contains("second scan: 12 of 12 ports filtered"),
        "the second scan was not all filtered"
    );
    let nmap_lines = |state: &str| {
        stdout
            .lines()
            .filter(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.len() >= 2 && w[0].ends_with("/tcp") && w[1] == state
            })
            .count()
    };
    // nmap's own lines: the first scan's closed ports (the kernel fast path, on by default,
    // bans at the 6th: 5 closed, the rest filtered), the second's 12 filtered ones.
    let closed = nmap_lines("closed");
    println!("first scan: {closed} of 12 ports closed");
    assert!((1..=8).contains(&closed), "first scan: {closed} closed");
    assert_eq!(
        closed + nmap_lines("filtered"),
        24,
        "both scans, 12 ports each"
    );
    // The namespaces it announced are gone.
    let left = namespaces();
    for word in stdout.split_whitespace() {
        let name = word.trim_end_matches(';');
        if name.starts_with("pw-demo-") {
            assert!(!left.contains(name), "namespace {name} left behind: {left}");
        }
    }
}

#[test]
fn demo_daemon_bans_the_scanner_and_the_rescan_sees_12_filtered_ports() {
    demo_must_ban(
        "demo_daemon_bans_the_scanner_and_the_rescan_sees_12_filtered_ports",
        &[],
    );
}

#[test]
fn demo_cron_mode_bans_the_scanner_and_the_rescan_sees_12_filtered_ports() {
    demo_must_ban(
        "demo_cron_mode_bans_the_scanner_and_the_rescan_sees_12_filtered_ports",
        &["--cron"],
    );
}

#[test]
fn demo_names_each_missing_tool_and_its_package_before_touching_anything() {
    let state = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = common::portwarden(state.path())
        .arg("demo")
        .env("PATH", empty.path())
        .output()
        .expect("run portwarden demo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stderr}");
    assert!(!out.status.success());
    for hint in [
        "apt-get install nftables",
        "apt-get install nmap",
        "apt-get install iproute2",
    ] {
        assert!(stderr.contains(hint), "missing hint `{hint}`: {stderr}");
    }
    // Step 1 (the namespaces) prints its heading first: nothing may run before the check.
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
