//! The kernel ring overruns the daemon, for real: `portwarden daemon` on `/dev/kmsg` inside a
//! throwaway target namespace is stopped with SIGSTOP while more LOG records than the whole
//! ring holds are written (a flood ping from the attacker namespace, each echo request logged
//! without any limit by a rule of this test's own table: ICMP, which portwarden's own LOG rule
//! leaves alone, so its per-source and global LOG limits stay untouched), then continued. It must say that records were
//! lost, count them in its run record, and go on: a seed scan afterwards is banned.
//!
//! This test floods the one kernel ring every test shares, so it lives alone in its own test
//! binary (cargo runs test binaries one after another, and this one holds a single test): no
//! other test's records are in flight while it runs.

mod common;

use std::time::{Duration, Instant};

use common::lab::{SEED_PORTS, Setup, banned4, nmap, wait_for};
use portwarden::netns::Lab;

/// The size of the kernel's log ring, in bytes (`syslog(2)`, SYSLOG_ACTION_SIZE_BUFFER).
fn ring_size() -> usize {
    // SAFETY: action 10 only returns the size; the buffer is not touched.
    let n = unsafe { libc::klogctl(10, std::ptr::null_mut(), 0) };
    assert!(n > 0, "klogctl(SIZE_BUFFER) failed");
    n as usize
}

#[test]
fn a_ring_overrun_is_reported_counted_and_survived() {
    if !common::e2e_ready("a_ring_overrun", &["nft", "ip", "nmap", "ping"]) {
        return;
    }
    portwarden::netns::enable_log_all_netns().unwrap();
    let lab = Lab::create("overrun").unwrap();
    let s = Setup::new("[[source]]\nkind = \"kmsg\"\npath = \"/dev/kmsg\"\n");
    s.setup(&lab.target);
    // An unlimited LOG rule of this test's own table, for the flood (another prefix: these
    // records are not ours, they only push ours out of the ring).
    let flood_prefix = format!("{}flood: ", s.prefix.trim_end_matches(": "));
    let script = format!(
        "table inet overrun {{\n chain input {{\n  type filter hook input priority 10;\n  \
         icmp type echo-request log prefix \"{flood_prefix}\"\n }}\n}}\n"
    );
    let mut nft = lab
        .target
        .command("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    nft.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(nft.wait().unwrap().success(), "flood rule");

    let mut daemon = s.daemon(&lab.target);
    let pid = daemon.pid().expect("running") as libc::pid_t;
    // One LOG record takes well over 100 bytes of the ring: this is several rings' worth.
    let packets = ring_size() / 100 * 3;
    println!(
        "ring of {} bytes; sending {packets} logged packets",
        ring_size()
    );

    // SAFETY: signals to the daemon's own pid, which this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let sent = Instant::now();
    let count = packets.to_string();
    let target = lab.target_v4.to_string();
    let out = lab
        .attacker
        .run("ping", ["-f", "-q", "-c", count.as_str(), target.as_str()])
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("flood sent in {:?}", sent.elapsed());
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);

    let said = wait_for(Duration::from_secs(30), || {
        daemon.output().contains("LOST").then_some(())
    });
    assert!(
        said.is_some(),
        "the daemon never reported the loss:\n{}",
        daemon.output()
    );
    if let Some(line) = daemon.output().lines().find(|l| l.contains("LOST")) {
        println!("the daemon said: {line}");
    }

    // It goes on: the seed scan is banned.
    let attacker = lab.attacker_v4.to_string();
    nmap(&lab.attacker, &lab.target_v4.to_string(), SEED_PORTS);
    let banned = wait_for(Duration::from_secs(30), || {
        banned4(&lab.target).contains(&attacker).then_some(())
    });
    if banned.is_none() {
        let ours = common::lab::kmsg_lines_with(&[s.prefix.as_str(), "PROTO=TCP"]);
        let runs: Vec<String> = {
            use portwarden::store::ReadStore as _;
            let store = s.store();
            let mut st = store
                .connection()
                .prepare("SELECT mode, records, probes, findings, bans, note FROM runs")
                .unwrap();
            st.query_map([], |r| {
                Ok(format!(
                    "{} rec={} probes={} findings={} bans={} {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, String>(5)?
                ))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect()
        };
        panic!(
            "not banned after the overrun; {} TCP records of ours in the ring: {:?}\nruns: {runs:#?}\ndaemon:\n{}",
            ours.len(),
            ours.iter().take(3).collect::<Vec<_>>(),
            daemon.output()
        );
    }
    // And it counted the loss in a run record (saved at the next full checkpoint or the stop).
    daemon.stop();
    use portwarden::store::ReadStore as _;
    let store = s.store();
    let noted = store
        .connection()
        .query_row(
            "SELECT count(*) FROM runs WHERE note LIKE '%LOST%'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap();
    assert!(noted > 0, "no run record counts the loss");
}
