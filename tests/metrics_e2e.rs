//! End to end, the metrics with real parts only: `portwarden daemon` on `/dev/kmsg` INSIDE a
//! throwaway target namespace (its own config, state directory and LOG prefix) serves
//! `GET /metrics` on 127.0.0.1 of that namespace while a real nmap scan comes from an attacker
//! namespace; the test scrapes it from inside the namespace (a thread that joined it:
//! `tests/common/scrape.rs`) during and after the scan. And `run --once` writes the node_exporter
//! textfile, and the next pass continues its counters.
//!
//! What each test proves:
//! 1. the endpoint answers during a scan (the pipeline and the server do not wait on each
//!    other), and afterwards its counters moved as they should: records and probes read from
//!    kmsg, one `fast_scan`/`SYN` finding, one ban added, one active ban in `banned4`, the
//!    record-to-ban latency observed (printed); `GET /` is a 404. After a SIGHUP reload the
//!    counters are still there and keep moving (a forged line is counted `untrusted`).
//! 2. `run --once` with `[metrics] textfile` writes the families atomically (no temporary file
//!    left), with the ban counted; a second pass keeps the counters (never lower) and reports
//!    the active ban.
//!
//! No timed assertions: the latency is printed. Deadlines only stop a test that would hang.

mod common;

use std::time::{Duration, Instant};

use common::lab::{SEED_PORTS, Setup, banned4, nmap, wait_for};
use common::scrape::{self, value};
use portwarden::netns::Lab;

const KMSG_SOURCE: &str = "[[source]]\nkind = \"kmsg\"\npath = \"/dev/kmsg\"\n";
/// The source label of that source (`source::id_of`).
const KMSG_ID: &str = "kmsg:/dev/kmsg";
/// Loopback of the target namespace: nothing else listens there.
const LISTEN: &str = "127.0.0.1:9809";

fn lab(label: &str) -> Lab {
    portwarden::netns::enable_log_all_netns().unwrap();
    Lab::create(label).unwrap()
}

/// Test 1: scrape the daemon's endpoint during and after the seed lab's scan.
#[test]
fn the_daemon_serves_counters_that_follow_a_real_scan() {
    if !common::e2e_ready(
        "the_daemon_serves_counters_that_follow_a_real_scan",
        &["nft", "ip", "nmap"],
    ) {
        return;
    }
    let lab = lab("mt");
    let s = Setup::new(&format!(
        "{KMSG_SOURCE}\n[metrics]\nlisten = \"{LISTEN}\"\n"
    ));
    s.setup(&lab.target);
    let target = lab.target_v4.to_string();
    let attacker = lab.attacker_v4.to_string();
    let mut daemon = s.daemon(&lab.target);
    assert!(
        daemon
            .output()
            .contains(&format!("metrics on http://{LISTEN}/metrics")),
        "{}",
        daemon.output()
    );

    let before = scrape::metrics(&lab.target, LISTEN).unwrap();
    assert_eq!(
        value(
            &before,
            "portwarden_bans_added_total",
            &[("reason", "scan")]
        ),
        Some(0.0)
    );
    let missing = scrape::get(&lab.target, LISTEN, "/").unwrap();
    assert!(missing.starts_with("HTTP/1.0 404"), "{missing}");

    // Scrape while nmap runs: every scrape must be answered.
    let mut during = 0;
    let (closed, text) = std::thread::scope(|scope| {
        let scan = scope.spawn(|| nmap(&lab.attacker, &target, SEED_PORTS));
        while !scan.is_finished() {
            let body = scrape::metrics(&lab.target, LISTEN)
                .unwrap_or_else(|e| panic!("scrape during the scan: {e}\n{}", daemon.output()));
            assert!(body.contains("portwarden_records_total"), "{body}");
            during += 1;
            // A scraper's pace, faster than any real one; a tight loop would compete with the
            // daemon for the CPU and blur the latency printed below.
            std::thread::sleep(Duration::from_millis(20));
        }
        let (_, closed, _, took, text) = scan.join().unwrap();
        println!("nmap took {took:?}; {during} scrapes answered meanwhile");
        (closed, text)
    });
    assert_eq!(closed, 12, "first scan:\n{text}");
    assert!(during >= 1);

    // After the scan: wait until the ban is in the metrics (and the kernel set).
    let scanned = Instant::now();
    let after = wait_for(Duration::from_secs(20), || {
        let body = scrape::metrics(&lab.target, LISTEN).ok()?;
        (value(&body, "portwarden_bans_added_total", &[("reason", "scan")]) == Some(1.0)
            && value(&body, "portwarden_active_bans", &[("set", "banned4")]) == Some(1.0))
        .then_some(body)
    })
    .unwrap_or_else(|| {
        panic!(
            "no ban in the metrics; last scrape:\n{}\ndaemon:\n{}",
            scrape::metrics(&lab.target, LISTEN).unwrap_or_default(),
            daemon.output()
        )
    });
    println!(
        "ban in the metrics {:?} after nmap ended",
        scanned.elapsed()
    );
    assert!(banned4(&lab.target).contains(&attacker));

    let src = [("source", KMSG_ID)];
    let records = value(&after, "portwarden_records_total", &src).unwrap();
    let probes = value(&after, "portwarden_probes_total", &src).unwrap();
    let mismatched = value(
        &after,
        "portwarden_records_rejected_total",
        &[("source", KMSG_ID), ("reason", "prefix_mismatch")],
    )
    .unwrap();
    println!("records {records}, probes {probes}, other tests' LOG records {mismatched}");
    assert!(records > 0.0);
    assert!(probes >= 12.0, "the seed scan's 12 SYNs: {probes}");
    assert!(records >= probes);
    let fast = value(
        &after,
        "portwarden_findings_total",
        &[("rule", "fast_scan"), ("scan_type", "SYN")],
    );
    assert!(fast.is_some_and(|n| n >= 1.0), "{after}");
    let count = value(&after, "portwarden_ban_latency_seconds_count", &[]).unwrap();
    let sum = value(&after, "portwarden_ban_latency_seconds_sum", &[]).unwrap();
    assert!(count >= 1.0, "{after}");
    println!(
        "record-to-ban latency: {count} ban(s), mean {:.4} s",
        sum / count
    );
    let lag = value(&after, "portwarden_source_lag_seconds", &src).unwrap();
    println!("source lag at the newest probe: {lag:.4} s");
    assert_eq!(
        value(
            &after,
            "portwarden_firewall_elements_total",
            &[("change", "added")]
        ),
        Some(1.0)
    );
    assert!(
        value(&after, "portwarden_last_checkpoint_timestamp_seconds", &[]).is_some_and(|t| t > 0.0)
    );

    // A reload (SIGHUP) keeps the same metrics: nothing goes back, and the reloaded engine
    // feeds the endpoint. A LOG-looking line written to the ring from user space shows it: it
    // must be counted as `untrusted` after the reload.
    let untrusted = [("source", KMSG_ID), ("reason", "untrusted")];
    let untrusted_before = value(&after, "portwarden_records_rejected_total", &untrusted).unwrap();
    let pid = daemon.pid().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let reloaded = wait_for(Duration::from_secs(20), || {
        daemon
            .output()
            .contains("configuration reloaded")
            .then_some(())
    });
    assert!(reloaded.is_some(), "no reload:\n{}", daemon.output());
    std::fs::write(
        "/dev/kmsg",
        format!(
            "<4>{}IN=vt OUT= MAC= SRC=10.99.0.9 DST=10.250.0.1 LEN=44 TOS=0x00 PREC=0x00 TTL=43 \
             ID=1 PROTO=TCP SPT=40000 DPT=9 WINDOW=1024 RES=0x00 SYN URGP=0\n",
            s.prefix
        ),
    )
    .unwrap();
    let after_reload = wait_for(Duration::from_secs(20), || {
        let body = scrape::metrics(&lab.target, LISTEN).ok()?;
        (value(&body, "portwarden_records_rejected_total", &untrusted)? > untrusted_before)
            .then_some(body)
    })
    .unwrap_or_else(|| {
        panic!(
            "the reloaded daemon does not feed the endpoint:\n{}",
            daemon.output()
        )
    });
    assert_eq!(
        value(
            &after_reload,
            "portwarden_bans_added_total",
            &[("reason", "scan")]
        ),
        Some(1.0),
        "counters survive the reload"
    );
    assert!(value(&after_reload, "portwarden_records_total", &src).unwrap() > records);

    let status = daemon.stop().expect("daemon status");
    assert!(
        status.success(),
        "daemon exit: {status}\n{}",
        daemon.output()
    );
}

/// Test 2: the cron pass writes the node_exporter textfile and continues its counters.
#[test]
fn run_once_writes_the_textfile_and_the_next_pass_continues_it() {
    if !common::e2e_ready(
        "run_once_writes_the_textfile_and_the_next_pass_continues_it",
        &["nft", "ip", "nmap"],
    ) {
        return;
    }
    let lab = lab("mc");
    let s = Setup::new("");
    let textfile = s.dir().join("node-exporter").join("portwarden.prom");
    std::fs::create_dir(textfile.parent().unwrap()).unwrap();
    s.write_config(&format!(
        "{KMSG_SOURCE}\n[metrics]\ntextfile = \"{}\"\n",
        textfile.display()
    ));
    s.setup(&lab.target);
    let target = lab.target_v4.to_string();
    let attacker = lab.attacker_v4.to_string();

    let (_, closed, _, _, text) = nmap(&lab.attacker, &target, SEED_PORTS);
    assert_eq!(closed, 12, "first scan:\n{text}");
    // The records reach the ring asynchronously: wait until all 12 are there.
    let logged = wait_for(Duration::from_secs(20), || {
        (common::lab::kmsg_records_with(&[&s.prefix, &format!("SRC={attacker} ")]) >= 12)
            .then_some(())
    });
    assert!(
        logged.is_some(),
        "the scan's LOG records never reached the ring"
    );

    let (summary, _) = s.run_once(&lab.target);
    assert_eq!(summary.banned(), vec![format!("{attacker}/32")]);
    let first = std::fs::read_to_string(&textfile).unwrap();
    println!("textfile after the first pass:\n{first}");
    let leftovers: Vec<_> = std::fs::read_dir(textfile.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["portwarden.prom"], "no temporary file left");
    assert!(first.contains("# TYPE portwarden_records_total counter"));
    assert!(
        !first.contains("# EOF"),
        "Prometheus text format for node_exporter"
    );
    let src = [("source", KMSG_ID)];
    let records1 = value(&first, "portwarden_records_total", &src).unwrap();
    assert!(value(&first, "portwarden_probes_total", &src).unwrap() >= 12.0);
    assert_eq!(
        value(&first, "portwarden_bans_added_total", &[("reason", "scan")]),
        Some(1.0)
    );
    assert_eq!(
        value(&first, "portwarden_active_bans", &[("set", "banned4")]),
        Some(1.0)
    );
    assert!(
        value(
            &first,
            "portwarden_findings_total",
            &[("rule", "fast_scan")]
        )
        .is_some_and(|n| n >= 1.0)
    );
    assert_eq!(
        value(&first, "portwarden_ban_latency_seconds_count", &[]),
        Some(1.0)
    );

    // The next pass: nothing new to ban, the counters continue (never lower), the ban is live.
    let (again, _) = s.run_once(&lab.target);
    assert!(again.banned().is_empty());
    let second = std::fs::read_to_string(&textfile).unwrap();
    let records2 = value(&second, "portwarden_records_total", &src).unwrap();
    println!("records_total: {records1} after the first pass, {records2} after the second");
    assert!(records2 >= records1);
    assert_eq!(
        value(
            &second,
            "portwarden_bans_added_total",
            &[("reason", "scan")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&second, "portwarden_ban_latency_seconds_count", &[]),
        Some(1.0)
    );
    assert_eq!(
        value(&second, "portwarden_active_bans", &[("set", "banned4")]),
        Some(1.0)
    );
}
