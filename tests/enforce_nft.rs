//! Root-only tests of the enforce stage on real nftables: `NftFirewall` and `portwarden
//! setup/teardown`, each in its own network namespace (never the host's ruleset).
//!
//! Covered: setup is idempotent and teardown removes only our table; an older table is
//! upgraded without losing bans; ban/unban/list round-trips (IPv4, IPv6, prefixes, overlaps,
//! timeouts) checked against `nft list set`; 100k bans in one transaction (time printed); a
//! listing is whole right after a bulk insert and while another writer bans and unbans;
//! `setup --dry-run` touches nothing; the seed lab's `ip filter blocked_ips` is used and left
//! intact; and real traffic: a banned attacker's SYN gets no answer, an unbanned one gets RST.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use ipnet::IpNet;
use jiff::SignedDuration;
use portwarden::config::{FirewallConfig, LogPrefix};
use portwarden::enforce::{
    BanElement, EnforceError, Firewall, NftFirewall, SetElement, SetupOutcome, TableState,
};
use portwarden::netns::{Lab, Netns, unique_tag};

fn ns(label: &str) -> Netns {
    Netns::create(&format!("pwe-{label}-{}", unique_tag())).expect("create namespace")
}

fn nft(ns: &Netns, args: &[&str]) -> String {
    let out = ns.run("nft", args).expect("nft in namespace");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn nft_script(ns: &Netns, script: &str) {
    let path = std::env::temp_dir().join(format!("pwe-{}.nft", unique_tag()));
    std::fs::write(&path, script).unwrap();
    let r = ns.run("nft", ["-f", path.to_str().unwrap()]);
    std::fs::remove_file(&path).ok();
    r.expect("load nft script");
}

/// The firewall `cfg` describes, with the rest of the config at its defaults (so the kernel
/// fast path is on for a table of portwarden's own, as the CLI's `setup` makes it).
fn fw(ns: &Netns, cfg: &FirewallConfig) -> NftFirewall {
    let config = portwarden::config::Config {
        firewall: cfg.clone(),
        ..portwarden::config::Config::default()
    };
    NftFirewall::from_config(&config).with_netns(ns.name())
}

/// The portwarden binary inside the namespace, with `config` (or none) and a throwaway state.
fn cli(ns: &Netns, config: Option<&Path>, args: &[&str]) -> Output {
    let state = tempfile::tempdir().unwrap();
    let mut c: Command = ns.command(common::bin());
    c.args(args)
        .env("PORTWARDEN_STATE_DIR", state.path())
        .env(
            "PORTWARDEN_CONFIG",
            config.map_or("/dev/null".into(), |p| p.to_path_buf()),
        )
        .env_remove("RUST_LOG");
    let out = c.output().expect("run portwarden");
    eprintln!(
        "portwarden {args:?}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn net(s: &str) -> IpNet {
    portwarden::config::parse_net(s).unwrap()
}

fn ban(target: &str, secs: Option<i64>) -> BanElement {
    BanElement {
        target: net(target),
        timeout: secs.map(SignedDuration::from_secs),
    }
}

/// One-hour bans of `n` IPv4 addresses from `first` on, `step` apart.
fn address_bans(first: u32, n: u32, step: u32) -> Vec<BanElement> {
    (0..n)
        .map(|i| BanElement {
            target: IpNet::from(IpAddr::V4(Ipv4Addr::from(first + i * step))),
            timeout: Some(SignedDuration::from_secs(3600)),
        })
        .collect()
}

fn find(list: &[SetElement], target: &str) -> Option<SetElement> {
    list.iter().copied().find(|e| e.target == net(target))
}

#[test]
fn setup_is_idempotent_and_teardown_removes_only_our_table() {
    if !common::e2e_ready("setup_is_idempotent", &["nft", "ip"]) {
        return;
    }
    let ns = ns("idem");
    nft_script(
        &ns,
        "table inet other {\n chain c { type filter hook input priority 0; policy accept; }\n}\n",
    );
    let out = cli(&ns, None, &["setup"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("created table inet portwarden"));
    // Bans in the set must not make the second run differ either.
    let mut f = fw(&ns, &FirewallConfig::default());
    f.ban(&[ban("192.0.2.7", Some(3600)), ban("2001:db8::/64", None)])
        .unwrap();
    let first = nft(&ns, &["list", "ruleset"]);
    let first_terse = nft(&ns, &["-t", "list", "table", "inet", "portwarden"]);
    let out = cli(&ns, None, &["setup"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing changed"));
    let second = nft(&ns, &["list", "ruleset"]);
    // Element expiry counts down between listings; compare everything else.
    let strip = |s: &str| -> String {
        s.lines()
            .filter(|l| !l.contains("elements ="))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&first), strip(&second));
    // Without the elements (`-t`), the table listing is byte for byte the same.
    assert_eq!(
        first_terse,
        nft(&ns, &["-t", "list", "table", "inet", "portwarden"])
    );
    assert_eq!(f.check().unwrap(), TableState::Ready);
    assert!(f.supports_timeout());

    let out = cli(&ns, None, &["teardown"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed table inet portwarden"));
    let after = nft(&ns, &["list", "ruleset"]);
    assert!(!after.contains("portwarden"), "{after}");
    assert!(after.contains("table inet other"), "{after}");
    let out = cli(&ns, None, &["teardown"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("does not exist"));
    assert_eq!(f.check().unwrap(), TableState::Missing);
    assert!(matches!(
        f.ban(&[ban("192.0.2.8", None)]),
        Err(EnforceError::TableMissing(_))
    ));
}

#[test]
fn setup_upgrades_an_older_table_and_keeps_bans() {
    if !common::e2e_ready("setup_upgrades_an_older_table", &["nft", "ip"]) {
        return;
    }
    let ns = ns("upg");
    // An "older version": addresses and prefixes in one interval set per family (as before
    // the hash sets), no LOG rule, no markers.
    nft_script(
        &ns,
        "table inet portwarden {
	set banned4 { type ipv4_addr; flags interval, timeout; }
	set banned6 { type ipv6_addr; flags interval, timeout; }
	chain input {
		type filter hook input priority -10; policy accept;
		ip saddr @banned4 drop
		ip6 saddr @banned6 drop
	}
}
add element inet portwarden banned4 { 192.0.2.7 timeout 1h, 192.0.2.8, 198.51.100.0/24 timeout 1h }
add element inet portwarden banned6 { 2001:db8::5 timeout 10m }
",
    );
    let mut f = fw(&ns, &FirewallConfig::default());
    assert!(matches!(f.check().unwrap(), TableState::Incomplete(_)));
    match f.setup_report().unwrap() {
        SetupOutcome::Upgraded { reason, kept } => {
            eprintln!("upgraded: {reason}");
            assert_eq!(kept, 4);
        }
        other => panic!("expected an upgrade, got {other:?}"),
    }
    assert_eq!(f.check().unwrap(), TableState::Ready);
    let list = f.list().unwrap();
    let a = find(&list, "192.0.2.7").expect("timed ban kept");
    let left = a.expires.unwrap();
    assert!(left > SignedDuration::from_secs(3500) && left <= SignedDuration::from_secs(3600));
    assert_eq!(find(&list, "192.0.2.8").unwrap().expires, None);
    assert!(find(&list, "2001:db8::5").unwrap().expires.is_some());
    assert!(find(&list, "198.51.100.0/24").unwrap().expires.is_some());
    let set = nft(&ns, &["list", "set", "inet", "portwarden", "banned4"]);
    assert!(set.contains("flags timeout"), "{set}");
    assert!(!set.contains("interval"), "{set}");
    assert!(set.contains("192.0.2.8"), "{set}");
    let nets = nft(&ns, &["list", "set", "inet", "portwarden", "banned4_nets"]);
    assert!(nets.contains("198.51.100.0/24"), "{nets}");

    // A rule deleted by hand is noticed and restored, bans again kept.
    let json = nft(&ns, &["-a", "list", "chain", "inet", "portwarden", "input"]);
    let handle = json
        .lines()
        .find(|l| l.contains("log prefix"))
        .and_then(|l| l.rsplit("# handle ").next())
        .unwrap()
        .trim()
        .to_string();
    nft(
        &ns,
        &[
            "delete",
            "rule",
            "inet",
            "portwarden",
            "input",
            "handle",
            &handle,
        ],
    );
    assert!(matches!(f.check().unwrap(), TableState::Incomplete(_)));
    assert!(matches!(
        f.setup_report().unwrap(),
        SetupOutcome::Upgraded { kept: 4, .. }
    ));
    assert_eq!(f.check().unwrap(), TableState::Ready);
    assert_eq!(f.list().unwrap().len(), 4);
}

#[test]
fn ban_unban_list_round_trip() {
    if !common::e2e_ready("ban_unban_list_round_trip", &["nft", "ip"]) {
        return;
    }
    round_trip(false);
}

/// The same, writing as for a kernel before 6.3 (add, delete, add instead of destroy, add).
#[test]
fn ban_unban_list_round_trip_without_destroy() {
    if !common::e2e_ready("ban_unban_list_round_trip_without_destroy", &["nft", "ip"]) {
        return;
    }
    round_trip(true);
}

fn round_trip(legacy: bool) {
    let ns = ns(if legacy { "rtl" } else { "rt" });
    let mut f = fw(&ns, &FirewallConfig::default());
    if legacy {
        f = f.without_destroy();
    }
    assert!(matches!(
        f.ban(&[ban("192.0.2.7", Some(60))]),
        Err(EnforceError::TableMissing(_))
    ));
    f.setup().unwrap();
    f.ban(&[
        ban("192.0.2.7", Some(3600)),
        ban("198.51.100.0/24", Some(600)),
        ban("2001:db8::1", None),
        ban("2001:db8:1::/64", Some(60)),
        ban("203.0.113.9", None),
    ])
    .unwrap();
    // Addresses in the hash sets, prefixes in the interval sets beside them.
    let set4 = nft(&ns, &["list", "set", "inet", "portwarden", "banned4"]);
    let set6 = nft(&ns, &["list", "set", "inet", "portwarden", "banned6"]);
    let nets4 = nft(&ns, &["list", "set", "inet", "portwarden", "banned4_nets"]);
    let nets6 = nft(&ns, &["list", "set", "inet", "portwarden", "banned6_nets"]);
    eprintln!("{set4}{set6}{nets4}{nets6}");
    assert!(set4.contains("192.0.2.7 timeout 1h"), "{set4}");
    assert!(nets4.contains("198.51.100.0/24 timeout 10m"), "{nets4}");
    assert!(
        set4.contains("203.0.113.9,") || set4.contains("203.0.113.9 }"),
        "{set4}"
    );
    assert!(set6.contains("2001:db8::1"), "{set6}");
    assert!(nets6.contains("2001:db8:1::/64 timeout 1m"), "{nets6}");
    let list = f.list().unwrap();
    assert_eq!(list.len(), 5);
    assert!(find(&list, "192.0.2.7").unwrap().expires.unwrap() > SignedDuration::from_secs(3590));
    assert_eq!(find(&list, "2001:db8::1").unwrap().expires, None);

    // Re-ban: the new timeout, shorter or longer. An address and a prefix holding it are
    // separate elements (of separate sets): each lasts as long as its own ban, so lifting the
    // prefix never lifts the address's own ban.
    f.ban(&[
        ban("192.0.2.7", Some(60)),
        ban("198.51.100.77", Some(60)),
        ban("203.0.113.0/24", Some(7200)),
        ban("2001:db8::1", Some(7200)),
    ])
    .unwrap();
    let list = f.list().unwrap();
    assert!(find(&list, "192.0.2.7").unwrap().expires.unwrap() <= SignedDuration::from_secs(60));
    assert!(find(&list, "2001:db8::1").unwrap().expires.unwrap() > SignedDuration::from_secs(7100));
    assert!(find(&list, "198.51.100.77").is_some());
    assert!(find(&list, "203.0.113.9").is_some());
    assert!(find(&list, "203.0.113.0/24").is_some());
    assert_eq!(list.len(), 7);

    // Unban, absent ones included: no error.
    f.unban(&[net("192.0.2.7"), net("2001:db8:1::/64"), net("192.0.2.99")])
        .unwrap();
    let set4 = nft(&ns, &["list", "set", "inet", "portwarden", "banned4"]);
    let nets6 = nft(&ns, &["list", "set", "inet", "portwarden", "banned6_nets"]);
    assert!(!set4.contains("192.0.2.7"), "{set4}");
    assert!(!nets6.contains("2001:db8:1::"), "{nets6}");
    assert_eq!(f.list().unwrap().len(), 5);
    // An unban of a prefix that is not banned as such (only inside a larger one): no error,
    // nothing lifted.
    f.unban(&[net("203.0.113.128/25")]).unwrap();
    assert_eq!(f.list().unwrap().len(), 5);
}

#[test]
fn hundred_thousand_bans_in_one_transaction() {
    if !common::e2e_ready("hundred_thousand_bans", &["nft", "ip"]) {
        return;
    }
    let ns = ns("100k");
    let mut f = fw(&ns, &FirewallConfig::default());
    f.setup().unwrap();
    let bans: Vec<BanElement> = (0..100_000u32)
        .map(|i| BanElement {
            target: IpNet::from(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i * 2))),
            timeout: Some(SignedDuration::from_secs(3600 + i64::from(i % 100))),
        })
        .collect();
    let t = Instant::now();
    f.ban(&bans).unwrap();
    let ban_time = t.elapsed();
    let t = Instant::now();
    let list = f.list().unwrap();
    let list_time = t.elapsed();
    println!(
        "100k bans: ban (list + one transaction) {ban_time:?}, list {list_time:?}, {} elements",
        list.len()
    );
    eprintln!(
        "100k bans: ban (list + one transaction) {ban_time:?}, list {list_time:?}, {} elements",
        list.len()
    );
    assert_eq!(list.len(), 100_000);
}

/// A listing holds every element exactly once: right after a bulk insert (the kernel rehashes
/// a grown hash set in the background, and a dump meanwhile repeats some elements and misses
/// others) and while another writer bans and unbans. An inconsistent dump is taken again; a
/// listing may give up (an error) when every attempt was disturbed, but never answers wrong.
#[test]
fn a_listing_holds_each_element_once_despite_changes() {
    if !common::e2e_ready("a_listing_holds_each_element_once", &["nft", "ip"]) {
        return;
    }
    let ns = ns("dumpintr");
    let mut f = fw(&ns, &FirewallConfig::default());
    f.setup().unwrap();
    let stay = address_bans(0x0a00_0000, 30_000, 1);
    let whole = |list: &[SetElement]| {
        let mut ours: Vec<IpNet> = list
            .iter()
            .map(|e| e.target)
            .filter(|t| matches!(t.addr(), IpAddr::V4(a) if a.octets()[0] == 10))
            .collect();
        let n = ours.len();
        ours.sort();
        ours.dedup();
        assert_eq!(n, ours.len(), "an element listed twice");
        assert_eq!(ours.len(), stay.len(), "an element missing");
    };
    // Listed at once after the insert: without the retries, this listing repeated about 3 000
    // elements (in place of as many others) in each of three runs.
    f.ban(&stay).unwrap();
    whole(&f.list().unwrap());

    /// Tells the other writer to stop when dropped: also when an assertion fails, so that the
    /// scope below ends instead of waiting for it forever.
    struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (whole_listings, gave_up, toggles) = std::thread::scope(|scope| {
        let churn = scope.spawn(|| {
            // Another writer, faster than the daemon's cap of one ban a second: a batch of 50
            // bans and their lifting every 100 ms, on addresses outside 10.0.0.0/8.
            let mut other = fw(&ns, &FirewallConfig::default());
            let mut toggles = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(100));
                let batch = address_bans(0xac10_0000 + (toggles % 64) * 64, 50, 1);
                other.ban(&batch).unwrap();
                let targets: Vec<IpNet> = batch.iter().map(|b| b.target).collect();
                other.unban(&targets).unwrap();
                toggles += 1;
            }
            toggles
        });
        let _stop = StopOnDrop(&stop);
        let (mut whole_listings, mut gave_up) = (0, 0);
        for _ in 0..20 {
            match f.list() {
                Ok(list) => {
                    whole(&list);
                    whole_listings += 1;
                }
                Err(e) if e.to_string().contains("changed during each") => gave_up += 1,
                Err(e) => panic!("{e}"),
            }
        }
        drop(_stop);
        (whole_listings, gave_up, churn.join().unwrap())
    });
    println!(
        "{whole_listings} whole listings of 30 000 elements, {gave_up} given up, during {toggles} \
         ban+unban batches"
    );
    assert!(toggles > 0, "the other writer never ran");
    assert!(whole_listings > 0, "no listing got through");
}

#[test]
fn dry_run_touches_nothing() {
    if !common::e2e_ready("dry_run_touches_nothing", &["nft", "ip"]) {
        return;
    }
    let ns = ns("dry");
    let before = nft(&ns, &["list", "ruleset"]);
    let out = cli(&ns, None, &["setup", "--dry-run"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("table inet portwarden {"), "{text}");
    assert!(text.contains("log prefix \"portwarden: \""), "{text}");
    assert_eq!(before, nft(&ns, &["list", "ruleset"]));
    // What it prints is a loadable ruleset, the very one setup loads.
    nft_script(&ns, &text);
    let mut f = fw(&ns, &FirewallConfig::default());
    assert_eq!(f.check().unwrap(), TableState::Ready);
}

const SEED_TABLE: &str = "table ip filter {
	set blocked_ips {
		type ipv4_addr
		flags interval
	}
	chain INPUT {
		type filter hook input priority filter; policy accept;
		tcp flags syn log prefix \"SYN_SCAN_ATTEMPT--\"
		ip saddr @blocked_ips drop
	}
}
add element ip filter blocked_ips { 192.0.2.50 }
";

#[test]
fn seed_lab_table_is_used_and_left_intact() {
    if !common::e2e_ready("seed_lab_table", &["nft", "ip"]) {
        return;
    }
    let ns = ns("seed");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("portwarden.toml");
    std::fs::write(
        &config,
        "[log]\nprefix = \"SYN_SCAN_ATTEMPT--\"\n[firewall]\nfamily = \"ip\"\ntable = \"filter\"\nset4 = \"blocked_ips\"\nmanage_table = false\n",
    )
    .unwrap();
    // Before the operator made it: an actionable error, nothing created.
    let out = cli(&ns, Some(&config), &["setup"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("manage_table"));
    assert_eq!(nft(&ns, &["list", "ruleset"]), "");

    nft_script(&ns, SEED_TABLE);
    let before = nft(&ns, &["-t", "list", "ruleset"]);
    let out = cli(&ns, Some(&config), &["setup"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("no timeout flag"));
    assert_eq!(before, nft(&ns, &["-t", "list", "ruleset"]));

    let cfg = portwarden::config::Config::from_file(&config).unwrap();
    let mut f = NftFirewall::new(&cfg.firewall, &cfg.log.prefixes).with_netns(ns.name());
    assert_eq!(f.check().unwrap(), TableState::Ready);
    assert!(!f.supports_timeout());
    f.ban(&[ban("10.250.0.2", Some(3600)), ban("198.51.100.0/24", None)])
        .unwrap();
    let set = nft(&ns, &["list", "set", "ip", "filter", "blocked_ips"]);
    assert!(set.contains("10.250.0.2"), "{set}");
    assert!(!set.contains("timeout"), "{set}");
    let list = f.list().unwrap();
    assert_eq!(list.len(), 3);
    assert!(list.iter().all(|e| e.expires.is_none()));
    assert!(matches!(
        f.ban(&[ban("2001:db8::1", None)]),
        Err(EnforceError::Invalid(_))
    ));
    f.unban(&[net("10.250.0.2")]).unwrap();

    let out = cli(&ns, Some(&config), &["teardown"]);
    assert!(out.status.success());
    let after = nft(&ns, &["-t", "list", "ruleset"]);
    assert_eq!(before, after);
    let set = nft(&ns, &["list", "set", "ip", "filter", "blocked_ips"]);
    assert!(
        set.contains("192.0.2.50") && set.contains("198.51.100.0/24"),
        "{set}"
    );
}

/// nmap's verdict on `port` of `target`, seen from the attacker.
fn nmap_state(lab: &Lab, v6: bool, port: u16) -> String {
    let target = lab.target_ip(v6).to_string();
    let port = port.to_string();
    let mut args = vec!["-n", "-Pn", "-sT", "--max-retries", "1", "-p", &port];
    if v6 {
        args.push("-6");
    }
    args.push(&target);
    let out = lab.attacker.run("nmap", &args).expect("nmap");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{port}/tcp")))
        .unwrap_or_else(|| panic!("no port line in nmap output: {text}"))
        .to_string();
    line.split_whitespace().nth(1).unwrap_or("").to_string()
}

#[test]
fn banned_attacker_gets_no_answer() {
    if !common::e2e_ready("banned_attacker_gets_no_answer", &["nft", "ip", "nmap"]) {
        return;
    }
    let lab = Lab::create("enf").expect("lab");
    let mut f = fw(&lab.target, &FirewallConfig::default());
    f.setup().unwrap();
    for v6 in [false, true] {
        assert_eq!(nmap_state(&lab, v6, 22), "closed", "unbanned, v6={v6}");
        let target = IpNet::from(lab.attacker_ip(v6));
        f.ban(&[BanElement {
            target,
            timeout: Some(SignedDuration::from_secs(600)),
        }])
        .unwrap();
        assert_eq!(nmap_state(&lab, v6, 22), "filtered", "banned, v6={v6}");
        f.unban(&[target]).unwrap();
        assert_eq!(
            nmap_state(&lab, v6, 22),
            "closed",
            "unbanned again, v6={v6}"
        );
    }
}

/// Kernel ring lines carrying `prefix` (waits up to 5 s for `want` of them to show up).
fn kernel_lines(prefix: &str, want: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let out = Command::new("dmesg").output().expect("dmesg");
        let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(prefix))
            .map(str::to_string)
            .collect();
        if want(&lines) || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn log_rule_records_new_probes_but_not_loopback_or_banned() {
    if !common::e2e_ready("log_rule_records_probes", &["nft", "ip", "nmap", "dmesg"]) {
        return;
    }
    portwarden::netns::enable_log_all_netns().expect("nf_log_all_netns");
    let lab = Lab::create("log").expect("lab");
    let prefix = format!("pwt{}: ", unique_tag());
    let log_prefix = LogPrefix::new(&prefix).unwrap();
    let mut f =
        NftFirewall::new(&FirewallConfig::default(), &[log_prefix]).with_netns(lab.target.name());
    f.setup().unwrap();
    let target4 = lab.target_v4.to_string();
    let target6 = lab.target_v6.to_string();
    let scan = |ns: &Netns, args: &[&str]| {
        let out = ns.run("nmap", args).expect("nmap");
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    };
    // Connect probes (SYN, ct state new) over IPv4 and IPv6, and a FIN probe (ct state
    // invalid) sent at the IP layer.
    scan(
        &lab.attacker,
        &["-n", "-Pn", "-sT", "-p", "20-23", &target4],
    );
    scan(
        &lab.attacker,
        &["-n", "-Pn", "-sT", "-6", "-p", "24", &target6],
    );
    scan(
        &lab.attacker,
        &["-n", "-Pn", "-sF", "--send-ip", "-p", "25", &target4],
    );
    // Loopback inside the target: never logged.
    scan(&lab.target, &["-n", "-Pn", "-sT", "-p", "26", "127.0.0.1"]);
    let lines = kernel_lines(&prefix, |l| {
        l.iter().any(|x| x.contains("DPT=25")) && l.iter().any(|x| x.contains("DPT=24"))
    });
    eprintln!("{}", lines.join("\n"));
    for port in 20..=23 {
        assert!(
            lines
                .iter()
                .any(|l| l.contains("SRC=10.250.0.2") && l.contains(&format!("DPT={port} "))),
            "no record of the probe to {port}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("DPT=24 ") && l.contains("SRC=fd00:"))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("DPT=25 ") && l.contains(" FIN ")),
        "the FIN probe (ct state invalid) was not logged"
    );
    assert!(
        !lines.iter().any(|l| l.contains("DPT=26 ")),
        "loopback logged"
    );

    // A banned source is dropped before the LOG rule.
    f.ban(&[BanElement {
        target: IpNet::from(lab.attacker_ip(false)),
        timeout: Some(SignedDuration::from_secs(600)),
    }])
    .unwrap();
    scan(
        &lab.attacker,
        &[
            "-n",
            "-Pn",
            "-sT",
            "--max-retries",
            "0",
            "-p",
            "27",
            &target4,
        ],
    );
    // The unbanned IPv6 address of the same attacker still logs: it marks the end of the wait.
    scan(
        &lab.attacker,
        &["-n", "-Pn", "-sT", "-6", "-p", "28", &target6],
    );
    let lines = kernel_lines(&prefix, |l| l.iter().any(|x| x.contains("DPT=28 ")));
    assert!(lines.iter().any(|l| l.contains("DPT=28 ")));
    assert!(
        !lines.iter().any(|l| l.contains("DPT=27 ")),
        "banned source logged"
    );
}
