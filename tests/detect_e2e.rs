//! End to end, the detection classes of issue 10 with real parts only: `portwarden daemon` and
//! `portwarden run --once` INSIDE a throwaway target namespace (own config, state directory and
//! LOG prefix, `portwarden setup` done there), real nmap and real TCP connections from an
//! attacker namespace, the kernel's LOG records read from `/dev/kmsg`, `conntrack -F` run in
//! the target namespace.
//!
//! What each test proves:
//! 1. `nmap -sA` of 4 closed ports is banned by the daemon (lone ACKs from an ephemeral port to
//!    closed well-known ports are no strays).
//! 2. `nmap -sO` (an IP protocol scan) is banned by the daemon: the LOG rule logs every
//!    protocol but ICMP, and distinct protocol numbers count as probes.
//! 3. `conntrack -F` while the target holds 30 open connections to a busy server: the server's
//!    next packets reach 30 of the target's ephemeral ports untracked and are logged, and
//!    nobody is banned (they are strays).
//! 4. `conntrack -F` while a busy client holds 30 connections to a port the target serves:
//!    nobody is banned.
//! 5. the target makes 200 outbound connections to 200 ports with an OUTPUT LOG rule of the
//!    same prefix: the records are refused as `outbound`, no finding.
//! 6. an operator's `portwarden unban` while the daemon runs, then a new scan of other ports
//!    from the same source: banned again (before the fix, the source was immune until
//!    silent for `slow_gap`).
//!
//! No timed assertions: timings are printed. Deadlines only stop a test that would otherwise
//! hang; "nobody banned" is checked after every record is in the ring, by a `run --once` pass
//! over all of them (its JSON summary says what it parsed, refused and found).

mod common;

use std::time::{Duration, Instant};

use common::lab::{self, Background, Setup, banned4, kmsg_records_with, wait_for};
use portwarden::netns::{Lab, Netns};

const KMSG_SOURCE: &str = "[[source]]\nkind = \"kmsg\"\npath = \"/dev/kmsg\"\n";

/// A lab whose target runs portwarden over `/dev/kmsg`, `portwarden setup` done.
fn kmsg_lab(label: &str) -> (Lab, Setup, String, String) {
    portwarden::netns::enable_log_all_netns().unwrap();
    let lab = Lab::create(label).unwrap();
    let s = Setup::new(KMSG_SOURCE);
    s.setup(&lab.target);
    let target = lab.target_v4.to_string();
    let attacker = lab.attacker_v4.to_string();
    (lab, s, target, attacker)
}

fn banned4_within(limit: Duration, ns: &Netns, addr: &str) -> bool {
    wait_for(limit, || {
        banned4(ns).iter().any(|b| b == addr).then_some(())
    })
    .is_some()
}

/// `nmap ARGS -Pn -n TARGET` from `ns`: its output.
fn nmap(ns: &Netns, args: &[&str], target: &str) -> String {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-Pn", "-n", target]);
    let out = ns.run("nmap", &all).unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Test 1.
#[test]
fn ack_scan_of_four_ports_is_banned() {
    if !common::e2e_ready("ack_scan_of_four_ports_is_banned", &["nft", "ip", "nmap"]) {
        return;
    }
    let (lab, s, target, attacker) = kmsg_lab("ack");
    let mut daemon = s.daemon(&lab.target);
    let started = Instant::now();
    let text = nmap(
        &lab.attacker,
        &["-sA", "-T3", "-p", "21,22,80,443"],
        &target,
    );
    assert!(text.contains("unfiltered"), "{text}");
    assert!(
        banned4_within(Duration::from_secs(20), &lab.target, &attacker),
        "-sA not banned; daemon:\n{}",
        daemon.output()
    );
    println!(
        "-sA of 4 ports banned {:?} after nmap started",
        started.elapsed()
    );
    let text = nmap(
        &lab.attacker,
        &["-sA", "-T4", "-p", "21,22,80,443"],
        &target,
    );
    assert!(
        text.contains("filtered") && !text.contains("unfiltered"),
        "after the ban:\n{text}"
    );
    assert!(daemon.stop().unwrap().success(), "{}", daemon.output());
}

/// Test 2.
#[test]
fn ip_protocol_scan_is_banned() {
    if !common::e2e_ready("ip_protocol_scan_is_banned", &["nft", "ip", "nmap"]) {
        return;
    }
    let (lab, s, target, attacker) = kmsg_lab("proto");
    let mut daemon = s.daemon(&lab.target);
    let started = Instant::now();
    let text = nmap(
        &lab.attacker,
        &[
            "-sO",
            "-T4",
            "--max-retries",
            "0",
            "-p",
            "1,2,4,6,17,41,47,50,51,89,103,112,132,136,255",
        ],
        &target,
    );
    assert!(text.contains("PROTOCOL"), "{text}");
    assert!(
        banned4_within(Duration::from_secs(20), &lab.target, &attacker),
        "-sO not banned; daemon:\n{}",
        daemon.output()
    );
    println!(
        "-sO of 15 protocols banned {:?} after nmap started",
        started.elapsed()
    );
    let records = kmsg_records_with(&[&s.prefix, &format!("SRC={attacker}")]);
    println!("{records} LOG records of the scan in the ring");
    assert!(daemon.stop().unwrap().success(), "{}", daemon.output());
}

/// A Python TCP server on `addr:port` in `ns`; once `n` clients are connected, with `talk` it
/// writes one byte to each in turn every 100 ms for as long as they stay (so that after a
/// conntrack flush each connection's next packet is logged, at a pace the LOG rule's
/// per-source limit of 10/s lets through), without it only reads. Ready when it prints
/// `listening`.
fn busy_server(ns: &Netns, s: &Setup, addr: &str, port: u16, n: usize, talk: bool) -> Background {
    let script = format!(
        "import socket, time\n\
         srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         srv.bind(('{addr}', {port})); srv.listen(64)\n\
         print('listening', flush=True)\n\
         conns = [srv.accept()[0] for _ in range({n})]\n\
         print('serving', len(conns), flush=True)\n\
         for c in conns: c.setblocking(False)\n\
         while conns:\n\
         \x20   for c in list(conns):\n\
         \x20       try:\n\
         \x20           if {talk}: c.send(b'x')\n\
         \x20           else: c.recv(4096)\n\
         \x20       except BlockingIOError: pass\n\
         \x20       except OSError: conns.remove(c)\n\
         \x20       time.sleep(0.1 if {talk} else 0.003)\n",
        talk = if talk { "True" } else { "False" },
    );
    let mut cmd = ns.command("python3");
    cmd.args(["-u", "-c", &script]);
    let server = Background::spawn(
        "busy server",
        &mut cmd,
        &s.dir().join(format!("server-{port}.log")),
    )
    .unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || output_contains(
            &server,
            "listening"
        ))
        .is_some(),
        "server: {}",
        server.output()
    );
    server
}

/// A Python client in `ns` holding `n` connections to `addr:port`, reading (and, with
/// `chatty`, writing a byte on each in turn every 100 ms) until killed.
fn busy_client(ns: &Netns, s: &Setup, addr: &str, port: u16, n: usize, chatty: bool) -> Background {
    let script = format!(
        "import socket, time, select\n\
         conns = [socket.create_connection(('{addr}', {port}), timeout=5) for _ in range({n})]\n\
         print('connected', len(conns), flush=True)\n\
         while True:\n\
         \x20   for c in conns:\n\
         \x20       r, _, _ = select.select([c], [], [], 0)\n\
         \x20       if r: c.recv(4096)\n\
         \x20       if {chatty}: c.send(b'y')\n\
         \x20       time.sleep(0.1 if {chatty} else 0.003)\n",
        chatty = if chatty { "True" } else { "False" },
    );
    let mut cmd = ns.command("python3");
    cmd.args(["-u", "-c", &script]);
    Background::spawn(
        "busy client",
        &mut cmd,
        &s.dir().join(format!("client-{port}.log")),
    )
    .unwrap()
}

fn output_contains(b: &Background, needle: &str) -> Option<()> {
    b.output().contains(needle).then_some(())
}

/// `conntrack -F` in `ns`, then wait until at least `want` LOG records from `src` with the
/// test's prefix are in the ring; returns how many there are.
fn flush_and_wait_for_records(ns: &Netns, s: &Setup, src: &str, want: usize) -> usize {
    let before = kmsg_records_with(&[&s.prefix, &format!("SRC={src} ")]);
    let out = ns.run("conntrack", ["-F"]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "conntrack -F: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let got = wait_for(Duration::from_secs(30), || {
        let n = kmsg_records_with(&[&s.prefix, &format!("SRC={src} ")]) - before;
        (n >= want).then_some(n)
    });
    got.unwrap_or_else(|| panic!("fewer than {want} LOG records from {src} after the flush"))
}

/// Test 3.
#[test]
fn conntrack_flush_with_connections_to_a_busy_server_bans_nobody() {
    if !common::e2e_ready(
        "conntrack_flush_with_connections_to_a_busy_server_bans_nobody",
        &["nft", "ip", "conntrack", "python3"],
    ) {
        return;
    }
    let (lab, s, _target, attacker) = kmsg_lab("ctsrv");
    // The busy server lives in the attacker namespace; the target is its client.
    let server = busy_server(&lab.attacker, &s, &attacker, 8080, 30, true);
    let client = busy_client(&lab.target, &s, &attacker, 8080, 30, false);
    assert!(
        wait_for(Duration::from_secs(20), || output_contains(
            &server,
            "serving 30"
        ))
        .is_some(),
        "server: {}\nclient: {}",
        server.output(),
        client.output()
    );
    let records = flush_and_wait_for_records(&lab.target, &s, &attacker, 30);
    let ephemeral: Vec<u16> = lab::kmsg_lines_with(&[&s.prefix, &format!("SRC={attacker} ")])
        .iter()
        .filter_map(|l| l.split(" DPT=").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    println!(
        "{records} LOG records of the server's packets after the flush, to {} distinct ports of the target (e.g. {:?})",
        {
            let mut d = ephemeral.clone();
            d.sort();
            d.dedup();
            d.len()
        },
        &ephemeral[..ephemeral.len().min(5)]
    );
    let (summary, _) = s.run_once(&lab.target);
    println!("run --once: {}", summary.0);
    assert!(summary.num("parsed") >= 30, "{}", summary.0);
    assert_eq!(summary.num("findings"), 0, "{}", summary.0);
    assert!(summary.banned().is_empty(), "{}", summary.0);
    assert!(!banned4(&lab.target).contains(&attacker));
}

/// Test 4.
#[test]
fn conntrack_flush_with_a_busy_client_bans_nobody() {
    if !common::e2e_ready(
        "conntrack_flush_with_a_busy_client_bans_nobody",
        &["nft", "ip", "conntrack", "python3"],
    ) {
        return;
    }
    let (lab, s, target, attacker) = kmsg_lab("ctcli");
    // The target serves port 8080 (a sink: were it to answer first after the flush, its own
    // outgoing packet would make the connection known again and the client's would not be
    // logged); a busy client holds 30 connections and writes on each in turn.
    let server = busy_server(&lab.target, &s, &target, 8080, 30, false);
    let client = busy_client(&lab.attacker, &s, &target, 8080, 30, true);
    assert!(
        wait_for(Duration::from_secs(20), || output_contains(
            &client,
            "connected 30"
        ))
        .is_some(),
        "server: {}\nclient: {}",
        server.output(),
        client.output()
    );
    let records = flush_and_wait_for_records(&lab.target, &s, &attacker, 30);
    println!("{records} LOG records of the client's packets after the flush");
    let (summary, _) = s.run_once(&lab.target);
    println!("run --once: {}", summary.0);
    assert!(summary.num("parsed") >= 30, "{}", summary.0);
    assert_eq!(summary.num("findings"), 0, "{}", summary.0);
    assert!(summary.banned().is_empty(), "{}", summary.0);
    assert!(!banned4(&lab.target).contains(&attacker));
}

/// Test 5.
#[test]
fn outbound_connections_under_an_output_log_rule_are_not_a_scan() {
    if !common::e2e_ready(
        "outbound_connections_under_an_output_log_rule_are_not_a_scan",
        &["nft", "ip", "python3"],
    ) {
        return;
    }
    let (lab, s, target, attacker) = kmsg_lab("out");
    // An OUTPUT-chain LOG rule with portwarden's own prefix, as UFW's [UFW AUDIT] of outgoing
    // connections would be with `--prefix ''`.
    let rules = format!(
        "table inet pwtest_out {{\n  chain output {{\n    type filter hook output priority 0; policy accept;\n    \
         meta l4proto tcp ct state new log prefix \"{}\"\n  }}\n}}\n",
        s.prefix
    );
    let mut nft = lab.target.command("nft");
    nft.args(["-f", "-"]).stdin(std::process::Stdio::piped());
    let mut child = nft.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), rules.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    // 200 connections to 200 (closed) ports of the other namespace.
    let script = format!(
        "import socket\n\
         for p in range(2000, 2200):\n\
         \x20   s = socket.socket(); s.settimeout(2)\n\
         \x20   try: s.connect(('{attacker}', p))\n\
         \x20   except OSError: pass\n\
         \x20   s.close()\n"
    );
    let out = lab
        .target
        .command("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logged = wait_for(Duration::from_secs(20), || {
        let n = kmsg_records_with(&[&s.prefix, &format!("SRC={target} "), "IN= "]);
        (n >= 200).then_some(n)
    })
    .expect("200 outbound LOG records");
    let (summary, _) = s.run_once(&lab.target);
    println!("{logged} outbound LOG records; run --once: {}", summary.0);
    assert!(summary.rejected("outbound") >= 200, "{}", summary.0);
    assert_eq!(summary.num("findings"), 0, "{}", summary.0);
    assert!(summary.banned().is_empty(), "{}", summary.0);
}

/// Test 6.
#[test]
fn an_unbanned_scanner_that_scans_again_is_banned_again() {
    if !common::e2e_ready(
        "an_unbanned_scanner_that_scans_again_is_banned_again",
        &["nft", "ip", "nmap"],
    ) {
        return;
    }
    let (lab, s, target, attacker) = kmsg_lab("unban");
    let mut daemon = s.daemon(&lab.target);
    nmap(&lab.attacker, &["-sS", "-T4", "-p", "21-32"], &target);
    assert!(
        banned4_within(Duration::from_secs(20), &lab.target, &attacker),
        "first scan not banned; daemon:\n{}",
        daemon.output()
    );
    let out = s.run(&lab.target, &["unban", &attacker]);
    println!("unban: {}", String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        !banned4(&lab.target).iter().any(|b| b == &attacker),
        "unban left the element"
    );
    // The rescan must start after the ban's grace (records up to 2 s after a ban started are
    // taken as in flight): not a wait on another process, a point in time to pass.
    let banned_at = {
        use portwarden::store::ReadStore as _;
        s.store().recent_bans(5).unwrap()[0].since
    };
    let grace_over = banned_at + jiff::SignedDuration::from_secs(3);
    wait_for(Duration::from_secs(10), || {
        (jiff::Timestamp::now() > grace_over).then_some(())
    })
    .expect("the clock moves");
    let rescan = Instant::now();
    let text = nmap(&lab.attacker, &["-sS", "-T4", "-p", "1000-1100"], &target);
    let nmap_took = rescan.elapsed();
    assert!(
        banned4_within(Duration::from_secs(20), &lab.target, &attacker),
        "the rescan after the unban was not banned; nmap:\n{text}\ndaemon:\n{}",
        daemon.output()
    );
    println!(
        "banned again {:?} after the rescan started (nmap ran {nmap_took:?})",
        rescan.elapsed()
    );
    let list = s.run(&lab.target, &["list", "--json"]);
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("offence 2"), "{list}");
    daemon.stop();
}
