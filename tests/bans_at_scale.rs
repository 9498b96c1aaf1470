//! Bans at scale (root, throwaway namespaces, the real binary): with 100 000 elements present,
//! `ban`, `unban`, `list` and reconcile behave exactly as with an empty set. One scenario runs
//! twice, on an empty table and on one holding 100 000 imported bans, with the same
//! assertions; only correctness is checked here, the times belong in `bench/set_size.sh`.

mod common;

use std::process::Output;

use common::lab::Setup;
use portwarden::netns::{Netns, unique_tag};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: Output, what: &str) -> String {
    println!("{what}: exit {:?}", out.status.code());
    assert!(
        out.status.success(),
        "{what}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Whether `nft get element` finds `elem` in `set` of `inet portwarden`.
fn kernel_has(ns: &Netns, set: &str, elem: &str) -> bool {
    ns.run(
        "nft",
        [
            "get",
            "element",
            "inet",
            "portwarden",
            set,
            &format!("{{ {elem} }}"),
        ],
    )
    .map(|o| o.status.success())
    .unwrap_or(false)
}

/// The number of elements `nft` lists in `set`.
fn kernel_count(ns: &Netns, set: &str) -> usize {
    let out = ns
        .run("nft", ["-j", "list", "set", "inet", "portwarden", set])
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get("set"))
        .map(|s| s.get("elem").and_then(|e| e.as_array()).map_or(0, Vec::len))
        .sum()
}

/// `list --json`'s bans: (target, in_kernel, in_store, reason).
fn listed(s: &Setup, ns: &Netns) -> Vec<(String, bool, bool, String)> {
    let out = ok(s.run(ns, &["list", "--json"]), "list --json");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["bans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["target"].as_str().unwrap().to_string(),
                b["in_kernel"].as_bool().unwrap(),
                b["in_store"].as_bool().unwrap(),
                b["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The scenario, on a table holding `present` imported bans (addresses in 10.0.0.0/8).
fn scenario(present: u32) {
    let ns = Netns::create(&format!("pwscale-{present}-{}", unique_tag())).expect("namespace");
    let s = Setup::new("");
    s.setup(&ns);
    if present > 0 {
        let list = s.dir().join("blocklist.txt");
        let mut body = String::with_capacity(present as usize * 14);
        for i in 0..present {
            let a = std::net::Ipv4Addr::from(0x0a00_0000 + 2 * i + 2);
            body.push_str(&format!("{a}\n"));
        }
        std::fs::write(&list, body).unwrap();
        let out = ok(
            s.run(&ns, &["import", "--for", "1d", list.to_str().unwrap()]),
            "import",
        );
        assert!(out.contains(&format!("banned {present} ")), "{out}");
    }
    assert_eq!(kernel_count(&ns, "banned4"), present as usize);
    let before = listed(&s, &ns);
    assert_eq!(before.len(), present as usize);
    assert!(before.iter().all(|(_, k, st, _)| *k && *st));

    // A ban: in the kernel, in the store, listed with its reason.
    ok(
        s.run(&ns, &["ban", "--for", "1h", "198.18.0.7"]),
        "ban an address",
    );
    ok(
        s.run(&ns, &["ban", "--for", "1h", "198.18.1.0/24"]),
        "ban a prefix",
    );
    assert!(kernel_has(&ns, "banned4", "198.18.0.7"));
    assert!(kernel_has(&ns, "banned4_nets", "198.18.1.0/24"));
    let after = listed(&s, &ns);
    assert_eq!(after.len(), present as usize + 2);
    for target in ["198.18.0.7/32", "198.18.1.0/24"] {
        let row = after.iter().find(|(t, ..)| t == target).expect(target);
        assert!(row.1 && row.2, "{row:?}");
        assert_eq!(row.3, "manual ban");
    }
    // Again, with a longer time: still one element, one ban.
    ok(
        s.run(&ns, &["ban", "--for", "2h", "198.18.0.7"]),
        "ban again",
    );
    assert_eq!(listed(&s, &ns).len(), present as usize + 2);
    assert_eq!(kernel_count(&ns, "banned4"), present as usize + 1);

    // Unban: gone from kernel and store; an absent one is no error.
    ok(s.run(&ns, &["unban", "198.18.0.7"]), "unban an address");
    ok(s.run(&ns, &["unban", "198.18.1.0/24"]), "unban a prefix");
    assert!(!kernel_has(&ns, "banned4", "198.18.0.7"));
    assert!(!kernel_has(&ns, "banned4_nets", "198.18.1.0/24"));
    let out = s.run(&ns, &["unban", "198.18.0.9"]);
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(listed(&s, &ns).len(), present as usize);
    assert_eq!(kernel_count(&ns, "banned4"), present as usize);

    // Reconcile: the kernel set emptied behind portwarden's back, a pass restores every ban.
    let out = ns
        .run("nft", ["flush", "set", "inet", "portwarden", "banned4"])
        .unwrap();
    assert!(out.status.success());
    assert_eq!(kernel_count(&ns, "banned4"), 0);
    let (summary, _) = s.run_once(&ns);
    assert_eq!(summary.0["restored"], present, "{:?}", summary.0);
    assert_eq!(kernel_count(&ns, "banned4"), present as usize);
    let last = listed(&s, &ns);
    assert_eq!(last.len(), present as usize);
    assert!(last.iter().all(|(_, k, st, _)| *k && *st));
}

#[test]
fn ban_unban_list_reconcile_on_an_empty_table() {
    if !common::e2e_ready("bans_at_scale_empty", &["nft", "ip"]) {
        return;
    }
    scenario(0);
}

#[test]
fn ban_unban_list_reconcile_with_100_000_elements_present() {
    if !common::e2e_ready("bans_at_scale_100k", &["nft", "ip"]) {
        return;
    }
    scenario(100_000);
}
