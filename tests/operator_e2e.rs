//! Root-only round trips of the operator logic and reconcile through a real nftables table,
//! inside a throwaway network namespace (never the host's ruleset): ban, import, list,
//! `nft flush ruleset`, reconcile (remaining time restored, expired ban not), unban.
//! Needs `enforce::nft` (NftFirewall::with_netns). Every change goes through the ban book.

mod common;

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use portwarden::bans::BanBook;
use portwarden::clock::FakeClock;
use portwarden::config::{BanConfig, FirewallConfig, LogPrefix, parse_net};
use portwarden::decide::HostAllowlist;
use portwarden::enforce::Firewall;
use portwarden::enforce::nft::NftFirewall;
use portwarden::netns::{Netns, unique_tag};
use portwarden::store::{ReadStore, Store, parse_blocklist};

#[test]
fn ban_flush_reconcile_unban_in_a_namespace() {
    if !common::e2e_ready("ban_flush_reconcile_unban_in_a_namespace", &["nft", "ip"]) {
        return;
    }
    let tag = unique_tag();
    let ns = Netns::create(&format!("pwop{tag}")).expect("netns");
    let prefix = LogPrefix::new(&format!("pwt{tag}: ")).unwrap();
    let mut fw = NftFirewall::new(&FirewallConfig::default(), &[prefix]).with_netns(ns.name());
    let tmp = tempfile::tempdir().unwrap();
    let now = Timestamp::now();
    let clock = Arc::new(FakeClock::new(now));
    let mut book = BanBook::new(
        Store::open(tmp.path()).unwrap(),
        Box::new(fw.clone()),
        &BanConfig::default(),
        clock.clone(),
    );
    let allow = HostAllowlist::default();
    let net = |s: &str| parse_net(s).unwrap();

    // Without a table, a manual ban refuses and says to run setup; it never creates one itself.
    let refused = book
        .ban_manually(&allow, net("198.51.100.0/24"), None, "e2e", false)
        .unwrap_err();
    assert!(
        refused.to_string().contains("portwarden setup"),
        "{refused}"
    );
    fw.setup().unwrap();
    book.ban_manually(
        &allow,
        net("198.51.100.0/24"),
        Some(SignedDuration::from_hours(2)),
        "e2e",
        false,
    )
    .unwrap();
    // Short ban: expired by the time of the reconcile below (which is told it is 1 h later).
    book.ban_manually(
        &allow,
        net("192.0.2.9"),
        Some(SignedDuration::from_mins(10)),
        "e2e",
        false,
    )
    .unwrap();
    let report = book
        .import(
            &allow,
            &parse_blocklist("203.0.113.5\n2001:db8::7\nbad line\n"),
            None,
            "e2e import",
            false,
        )
        .unwrap();
    assert_eq!(report.banned.len(), 2);
    assert_eq!(report.invalid.len(), 1);

    let l = book.listing("inet portwarden".into()).unwrap();
    println!("{}", portwarden::cli::list::render_text(&l));
    assert_eq!(l.bans.len(), 4);
    assert!(
        l.bans
            .iter()
            .all(|r| r.in_kernel == Some(true) && r.in_store)
    );

    // The kernel loses everything.
    ns.run("nft", ["flush", "ruleset"]).unwrap();
    let later = now + SignedDuration::from_hours(1);
    clock.set(later);
    let r = book.reconcile().unwrap().expect("not a dry run");
    println!("{r:?}");
    assert!(r.table_recreated);
    assert_eq!((r.restored, r.expired), (3, 1));
    let kernel = fw.list().unwrap();
    let prefix = kernel
        .iter()
        .find(|e| e.target == net("198.51.100.0/24"))
        .expect("prefix restored");
    let left = prefix.expires.expect("has a timeout");
    println!("198.51.100.0/24 restored with {left:#} left");
    assert!(left <= SignedDuration::from_hours(1) + SignedDuration::from_secs(1));
    assert!(kernel.iter().all(|e| e.target != net("192.0.2.9")));
    assert!(
        kernel
            .iter()
            .any(|e| e.target == net("2001:db8::7") && e.expires.is_none())
    );

    let out = book.unban(net("203.0.113.5")).unwrap();
    assert_eq!(out.lifted_in_store, 1);
    assert!(
        fw.list()
            .unwrap()
            .iter()
            .all(|e| e.target != net("203.0.113.5"))
    );
    assert_eq!(book.store().live_bans(later).unwrap().len(), 2);
}
