//! End to end, the two automated modes with real parts only: `portwarden daemon` and
//! `portwarden run --once` run INSIDE a throwaway target namespace (their own config, state
//! directory and LOG prefix), real nmap scans from an attacker namespace, the kernel's LOG
//! records read from `/dev/kmsg`, from a kern.log written by a real rsyslogd, from files the test
//! writes and rotates, and from a real journal file read by the real `journalctl`.
//!
//! What each test proves:
//! 1. daemon + kmsg: the seed lab's scan is banned (latency printed), a rescan sees 12
//!    `filtered`, `nft flush ruleset` is repaired by the daemon, SIGTERM exits 0 with the ban in
//!    the store.
//! 2. cron mode + rsyslogd's kern.log (file source): ban and filtered rescan.
//! 3. a busy legitimate client of a port the target serves (known from the namespace's
//!    `/proc/net`), plus a few closed ports, is never banned.
//! 4. forged records (`logger -t kernel`, user-space writes to `/dev/kmsg`) ban nobody: kern.log
//!    never gets them and the kmsg ones are counted `untrusted`; the syslog file does get them,
//!    indistinguishable from kernel lines (the documented reason not to read it).
//! 5. rotation by rename and by copytruncate between `run --once` passes: every record read
//!    exactly once.
//!    5b: the same rotations while the daemon follows the file.
//! 6. a scan split across two `run --once` passes is caught by the second.
//! 7. the journal source against the real `journalctl` on a journal file made by
//!    `systemd-journal-remote`: kernel entries count, syslog ones are refused, the cursor
//!    resumes exactly; 7b. the daemon following it (`journalctl --follow`).
//! 8. the daemon's SIGHUP reload, its lock (a cron pass beside it exits 75), and a restart that
//!    resumes after its cursor (each ring record parsed exactly once).
//! 9. a real `nmap -T1` scan (15 s between probes) is banned by the daemon before it ends.
//!
//! No timed assertions: timings are printed. Deadlines (20-60 s) only stop a test that would
//! otherwise hang.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::lab::{
    self, JOURNAL_REMOTE, Rsyslogd, SEED_PORTS, Setup, append, banned4, copy_then_truncate,
    journal_append, nmap, wait_for,
};
use portwarden::netns::{Lab, Netns};
use portwarden::store::ReadStore;

const KMSG_SOURCE: &str = "[[source]]\nkind = \"kmsg\"\npath = \"/dev/kmsg\"\n";

fn file_source(path: &Path) -> String {
    format!(
        "[[source]]\nkind = \"file\"\npath = \"{}\"\n",
        path.display()
    )
}

fn lab(label: &str) -> Lab {
    portwarden::netns::enable_log_all_netns().unwrap();
    Lab::create(label).unwrap()
}

/// A lab (see [`lab`]) whose target runs portwarden over `/dev/kmsg` (config: [`KMSG_SOURCE`]
/// then `extra`), `portwarden setup` done: (the lab, its `Setup`, the target's IPv4 address,
/// the attacker's IPv4 address).
fn kmsg_lab(label: &str, extra: &str) -> (Lab, Setup, String, String) {
    let lab = lab(label);
    let s = Setup::new(&format!("{KMSG_SOURCE}{extra}"));
    let target = lab.target_v4.to_string();
    let attacker = lab.attacker_v4.to_string();
    s.setup(&lab.target);
    (lab, s, target, attacker)
}

/// Whether `addr` shows up in `banned4` of `ns` within `limit`.
fn banned4_within(limit: Duration, ns: &Netns, addr: &str) -> bool {
    wait_for(limit, || {
        banned4(ns).iter().any(|b| b == addr).then_some(())
    })
    .is_some()
}

/// For the tests that write the records themselves (no attacker): a namespace of its own
/// (`label` and a unique tag) and a `Setup` with a unique LOG prefix in a fresh tempdir, whose
/// config reads the sources `sources(tempdir)` returns; `portwarden setup` has run in it.
fn namespace_and_setup(label: &str, sources: impl FnOnce(&Path) -> String) -> (Netns, Setup) {
    let ns = Netns::create(&format!("{label}{}", portwarden::netns::unique_tag())).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let sources = sources(tmp.path());
    let s = Setup::in_dir(
        tmp,
        format!("pwt{}: ", portwarden::netns::unique_tag()),
        &sources,
    );
    s.setup(&ns);
    (ns, s)
}

/// Test 1: The seed lab's scenario with the daemon following /dev/kmsg.
#[test]
fn daemon_kmsg_bans_the_seed_scan_and_survives_a_flush() {
    if !common::e2e_ready(
        "daemon_kmsg_bans_the_seed_scan_and_survives_a_flush",
        &["nft", "ip", "nmap"],
    ) {
        return;
    }
    let (lab, s, target, attacker) = kmsg_lab("d", "");
    let mut daemon = s.daemon(&lab.target);

    let (filtered, closed, _, took, text) = nmap(&lab.attacker, &target, SEED_PORTS);
    let scanned = Instant::now();
    println!("first scan: {closed} closed, {filtered} filtered, nmap took {took:?}");
    assert_eq!(closed, 12, "first scan:\n{text}");
    assert!(
        banned4_within(Duration::from_secs(20), &lab.target, &attacker),
        "{attacker} not banned; daemon:\n{}",
        daemon.output()
    );
    println!(
        "ban in the kernel set {:?} after nmap ended",
        scanned.elapsed()
    );
    // The element expires in the kernel: the default first ban is 1 h.
    let set: serde_json::Value =
        serde_json::from_str(&lab::set_json(&lab.target, "banned4")).unwrap();
    let timeouts: Vec<u64> = set["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|i| i["set"]["elem"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["elem"]["timeout"].as_u64())
        .collect();
    assert_eq!(timeouts, vec![3600], "{set}");

    let (filtered, closed, _, _, text) = nmap(&lab.attacker, &target, SEED_PORTS);
    assert_eq!((filtered, closed), (12, 0), "after the ban:\n{text}");

    // Someone flushes the whole ruleset: the daemon puts the table and the ban back.
    lab.target.run("nft", ["flush", "ruleset"]).unwrap();
    assert!(!banned4(&lab.target).contains(&attacker));
    let flushed = Instant::now();
    assert!(
        banned4_within(Duration::from_secs(20), &lab.target, &attacker),
        "table/ban not restored; daemon:\n{}",
        daemon.output()
    );
    println!(
        "table and ban restored {:?} after `nft flush ruleset`",
        flushed.elapsed()
    );
    let (filtered, closed, _, _, text) = nmap(&lab.attacker, &target, SEED_PORTS);
    assert_eq!((filtered, closed), (12, 0), "after the restore:\n{text}");

    let status = daemon.stop().expect("daemon status");
    println!("daemon output:\n{}", daemon.output());
    assert!(status.success(), "daemon exit: {status}");
    assert!(daemon.output().contains("stopped; state saved"));
    // Every LOG record was parsed once (the rescans were dropped before the LOG rule).
    let in_ring = lab::kmsg_records_with(&[&s.prefix, "SRC="]);
    let parsed = s.daemon_parsed_since(jiff::Timestamp::UNIX_EPOCH);
    println!("{in_ring} LOG records with the prefix in the ring; the daemon parsed {parsed}");
    assert_eq!(parsed as usize, in_ring);
    let live = s
        .store()
        .live_bans(jiff::Timestamp::now())
        .unwrap()
        .into_iter()
        .map(|b| b.target.to_string())
        .collect::<Vec<_>>();
    assert!(
        live.iter()
            .any(|t| t == &attacker || t == &format!("{attacker}/32")),
        "store after SIGTERM: {live:?}"
    );
}

/// Test 2: Cron mode over the kern.log a real rsyslogd writes.
#[test]
fn run_once_over_rsyslog_kern_log_bans_the_seed_scan() {
    if !common::e2e_ready(
        "run_once_over_rsyslog_kern_log_bans_the_seed_scan",
        &["nft", "ip", "nmap", "rsyslogd"],
    ) {
        return;
    }
    let lab = lab("r");
    // Declared before rsyslogd, so that rsyslogd is stopped before its directory is removed.
    let s = Setup::new("");
    let prefix = s.prefix.clone();
    let rsyslogd = Rsyslogd::start(s.dir(), &prefix);
    s.write_config(&file_source(&rsyslogd.kern_log));
    let target = lab.target_v4.to_string();
    let attacker = lab.attacker_v4.to_string();
    s.setup(&lab.target);

    let (_, closed, _, _, text) = nmap(&lab.attacker, &target, SEED_PORTS);
    assert_eq!(closed, 12, "first scan:\n{text}");
    let scanned = Instant::now();
    let logged = wait_for(Duration::from_secs(20), || {
        (lab::lines_with(&rsyslogd.kern_log, &format!("SRC={attacker} ")) >= 12).then_some(())
    });
    assert!(
        logged.is_some(),
        "kern.log:\n{}\nrsyslogd:\n{}",
        lab::read(&rsyslogd.kern_log),
        rsyslogd.process.output()
    );
    println!(
        "12 records in kern.log {:?} after nmap ended",
        scanned.elapsed()
    );

    let (summary, took) = s.run_once(&lab.target);
    assert!(summary.num("parsed") >= 12);
    assert_eq!(summary.banned(), vec![format!("{attacker}/32")]);
    assert!(banned4(&lab.target).contains(&attacker));
    println!(
        "banned by run --once ({took:?}) {:?} after nmap ended",
        scanned.elapsed()
    );
    let (filtered, closed, _, _, text) = nmap(&lab.attacker, &target, SEED_PORTS);
    assert_eq!((filtered, closed), (12, 0), "after the ban:\n{text}");

    // The next pass reads only what is new: the 12 filtered probes of the rescan were dropped
    // before the LOG rule (the drop rule comes first), so nothing new to parse.
    let (again, took) = s.run_once(&lab.target);
    println!("second pass took {took:?}");
    assert_eq!(again.num("parsed"), 0);
    assert!(again.banned().is_empty());
}

/// Test 3: A busy client of a served port (and a few closed ones) is never banned by the daemon,
/// which learns the served port from the namespace's /proc/net; the service starts after the
/// daemon, as a service restarted while portwarden runs would.
#[test]
fn daemon_never_bans_a_busy_client_of_a_served_port() {
    if !common::e2e_ready(
        "daemon_never_bans_a_busy_client_of_a_served_port",
        &["nft", "ip", "nmap", "python3"],
    ) {
        return;
    }
    let (lab, s, target, attacker) = kmsg_lab("c", "");
    let mut daemon = s.daemon(&lab.target);

    let www = s.dir().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello\n").unwrap();
    let mut http = lab.target.command("python3");
    http.args([
        "-m",
        "http.server",
        "8080",
        "--bind",
        &target,
        "--directory",
    ])
    .arg(&www);
    let _http =
        lab::Background::spawn("http.server", &mut http, &s.dir().join("http.log")).unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || lab::listens(&lab.target, 8080)
            .then_some(()))
        .is_some(),
        "http.server did not listen"
    );
    // The daemon rereads the served ports at most every 250 ms (Engine::SERVED_REFRESH), when a
    // probe reaches a port it does not know as served. Not a wait on another process: the
    // condition is time itself, that any read of /proc/net made before the server listened is
    // more than 250 ms old when the first probe comes (a sleep is the exact way to get it).
    std::thread::sleep(Duration::from_millis(500));

    // A client that checks 5 closed ports (below the fast-scan threshold of 6) and then makes
    // 300 HTTP requests: if port 8080 were not known as served, its probe would be the 6th
    // failure and the client would be banned.
    let started = Instant::now();
    let out = lab::busy_client(&lab.attacker, &target);
    let ok = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success(),
        "client failed: {}\nbanned: {:?}\ndaemon:\n{}",
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or(""),
        banned4(&lab.target),
        daemon.output()
    );
    println!(
        "client: {ok} HTTP requests answered in {:?}",
        started.elapsed()
    );
    assert_eq!(ok, "300");
    // A sentinel instead of a sleep: an IPv6 scan from the same attacker, logged after every
    // record of the client. kmsg is one ordered stream and a finding is banned at once, so
    // once the sentinel is banned the daemon has read and decided on all of the client's
    // records: if the client were to be banned, it would be by now.
    let attacker6 = lab.attacker_v6.to_string();
    nmap(&lab.attacker, &lab.target_v6.to_string(), SEED_PORTS);
    assert!(
        wait_for(Duration::from_secs(30), || lab::banned6(&lab.target)
            .contains(&attacker6)
            .then_some(()))
        .is_some(),
        "the IPv6 sentinel scan was not banned; daemon:\n{}",
        daemon.output()
    );
    assert!(
        !banned4(&lab.target).contains(&attacker),
        "the busy client was banned; daemon:\n{}",
        daemon.output()
    );
    assert_eq!(daemon.exited(), None, "{}", daemon.output());

    // The same daemon still bans a real scan from that host: it was reading all along.
    let (_, closed, _, _, text) = nmap(&lab.attacker, &target, SEED_PORTS);
    assert_eq!(closed, 12, "{text}");
    assert!(
        banned4_within(Duration::from_secs(20), &lab.target, &attacker),
        "scan not banned; daemon:\n{}",
        daemon.output()
    );
    let status = daemon.stop().unwrap();
    println!("daemon output:\n{}", daemon.output());
    assert!(status.success());
}

/// A kernel-looking LOG body from `src` to `dport` of the lab's target, after `prefix`.
fn log_body(prefix: &str, src: &str, dport: u32, id: u32) -> String {
    format!(
        "{prefix}IN=vt OUT= MAC= SRC={src} DST=10.250.0.1 LEN=44 TOS=0x00 PREC=0x00 TTL=43 \
         ID={id} PROTO=TCP SPT=40000 DPT={dport} WINDOW=1024 RES=0x00 SYN URGP=0"
    )
}

/// Test 4: Forged records ban nobody.
#[test]
fn forged_records_ban_nobody() {
    if !common::e2e_ready(
        "forged_records_ban_nobody",
        &["nft", "ip", "rsyslogd", "logger"],
    ) {
        return;
    }
    let lab = lab("f");
    let s = Setup::new("");
    let prefix = s.prefix.clone();
    let rsyslogd = Rsyslogd::start(s.dir(), &prefix);
    let sources = format!("{KMSG_SOURCE}\n{}", file_source(&rsyslogd.kern_log));
    s.write_config(&sources);
    s.setup(&lab.target);
    let forger = "10.250.0.66";

    // Through syslog(3)'s socket, tagged `kernel`, half of them claiming the kern facility.
    for i in 0..20u32 {
        let mut logger = std::process::Command::new("logger");
        logger
            .arg("-u")
            .arg(&rsyslogd.socket)
            .args(["-t", "kernel"]);
        if i % 2 == 1 {
            logger.args(["-p", "kern.warning"]);
        }
        let status = logger
            .arg(log_body(&prefix, forger, 1000 + i, i))
            .status()
            .unwrap();
        assert!(status.success());
    }
    // Straight into the kernel ring from user space, claiming level 4.
    for i in 0..20u32 {
        std::fs::write(
            "/dev/kmsg",
            format!("<4>{}\n", log_body(&prefix, forger, 2000 + i, 100 + i)),
        )
        .unwrap();
    }
    let needle = format!("SRC={forger} ");
    let all = wait_for(Duration::from_secs(20), || {
        (lab::lines_with(&rsyslogd.syslog, &needle) >= 40).then_some(())
    });
    assert!(
        all.is_some(),
        "syslog:\n{}\nrsyslogd:\n{}",
        lab::read(&rsyslogd.syslog),
        rsyslogd.process.output()
    );
    // kern.log gets none of them: rsyslog files user-space `kern` messages under `user`.
    assert_eq!(
        lab::lines_with(&rsyslogd.kern_log, &needle),
        0,
        "{}",
        lab::read(&rsyslogd.kern_log)
    );

    let (summary, took) = s.run_once(&lab.target);
    println!("run --once over kmsg + kern.log took {took:?}");
    assert!(summary.banned().is_empty());
    assert_eq!(summary.num("findings"), 0);
    assert_eq!(summary.num("parsed"), 0);
    assert_eq!(summary.rejected("untrusted"), 20, "{}", summary.0);
    assert!(banned4(&lab.target).is_empty());
    // The cron log's line says so too (a fresh state reads the same records again).
    let fresh = Setup::in_dir(tempfile::tempdir().unwrap(), prefix.clone(), &sources);
    let human = fresh.run(&lab.target, &["run", "--once"]);
    let line = String::from_utf8_lossy(&human.stdout).trim().to_string();
    println!("{line}");
    assert!(line.contains("untrusted=20"), "{line}");
    assert!(line.contains(" 0 ban(s)"), "{line}");

    // The syslog file holds all 40, with the very header of a kernel line: nothing in it tells
    // them apart, which is why the file source warns about /var/log/syslog and the docs point
    // at kern.log, /dev/kmsg or the journal. A dry run over it shows what reading it would do.
    let forged_line = lab::read(&rsyslogd.syslog)
        .lines()
        .find(|l| l.contains(&needle))
        .unwrap()
        .to_string();
    println!("a forged line in the syslog file: {forged_line}");
    assert!(forged_line.contains(" kernel: "));
    let dry = Setup::in_dir(
        tempfile::tempdir().unwrap(),
        prefix.clone(),
        &format!("{}\n[ban]\ndry_run = true\n", file_source(&rsyslogd.syslog)),
    );
    let (summary, _) = dry.run_once(&lab.target);
    println!(
        "NOTE: over the syslog file, {} forged line(s) pass as kernel records (untrusted: {})",
        summary.num("parsed"),
        summary.rejected("untrusted")
    );
    assert_eq!(summary.num("parsed"), 40);
}

/// `n` kernel-looking syslog lines (RFC 3339 stamp, tag `kernel`), each from its own source
/// (one probe each: no finding), numbered from `first`.
fn kernel_lines(prefix: &str, first: u32, n: u32) -> String {
    let now = jiff::Timestamp::now();
    (first..first + n)
        .map(|i| {
            let src = format!("10.251.{}.{}", i / 250, i % 250 + 1);
            format!(
                "{} vm kernel: {}\n",
                now.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00"),
                log_body(prefix, &src, 22, i)
            )
        })
        .collect()
}

/// The kern.log of the rotation tests, `kern.log` in `dir` with `kern.log.1` beside it, which
/// the test writes (`kernel_lines`) and rotates as rsyslogd and logrotate would.
struct RotatedLog {
    path: PathBuf,
    rotated: PathBuf,
    prefix: String,
    /// The number of the next line (each line comes from its own source address).
    next: u32,
    /// Complete lines written so far, to either file: what a reader must read, once.
    written: u64,
}

impl RotatedLog {
    fn in_dir(dir: &Path, prefix: &str) -> RotatedLog {
        RotatedLog {
            path: dir.join("kern.log"),
            rotated: dir.join("kern.log.1"),
            prefix: prefix.to_string(),
            next: 0,
            written: 0,
        }
    }

    /// The text of `n` new lines, numbered on (not counted as written).
    fn new_lines(&mut self, n: u32) -> String {
        let text = kernel_lines(&self.prefix, self.next, n);
        self.next += n;
        text
    }

    /// Appends `n` new lines to the live file.
    fn write(&mut self, n: u32) {
        let text = self.new_lines(n);
        append(&self.path, &text);
        self.written += u64::from(n);
    }

    /// Rotation by rename, 15 lines: 5 more lines, the file is renamed away, the writer appends
    /// 3 more to it before it reopens, and the new file gets 7.
    fn rename_with_late_writes(&mut self) {
        self.write(5);
        std::fs::rename(&self.path, &self.rotated).unwrap();
        let late = self.new_lines(3);
        append(&self.rotated, &late);
        self.written += 3;
        self.write(7);
    }

    /// 4 lines, then a 5th written in two parts: `meanwhile` runs, given the complete lines
    /// written so far, while only the first half (no newline yet) is in the file.
    fn write_a_line_in_two_parts(&mut self, meanwhile: impl FnOnce(u64)) {
        let partial = self.new_lines(1);
        let (head, tail) = partial.split_at(partial.len() / 2);
        self.write(4);
        append(&self.path, head);
        meanwhile(self.written);
        append(&self.path, tail);
        self.written += 1;
    }

    /// logrotate's `copytruncate` onto `kern.log.1`.
    fn copytruncate(&self) {
        copy_then_truncate(&self.path, &self.rotated);
    }
}

/// Test 5: Rotation by rename and by copytruncate between `run --once` passes over a file source:
/// each record is read exactly once.
#[test]
fn run_once_follows_rotation_without_loss_or_repeat() {
    if !common::e2e_ready(
        "run_once_follows_rotation_without_loss_or_repeat",
        &["nft", "ip"],
    ) {
        return;
    }
    let (ns, s) = namespace_and_setup("pwrot", |dir| file_source(&dir.join("kern.log")));
    let mut log = RotatedLog::in_dir(s.dir(), &s.prefix);
    let mut read = 0u64;
    let pass = |what: &str, expect: u64, written: u64, read: &mut u64| {
        let (summary, took) = s.run_once(&ns);
        println!("{what}: {} record(s) in {took:?}", summary.num("parsed"));
        assert_eq!(summary.num("parsed"), expect, "{what}: {}", summary.0);
        assert_eq!(summary.num("records"), expect, "{what}: {}", summary.0);
        assert_eq!(summary.num("lost"), 0, "{what}");
        assert_eq!(summary.num("findings"), 0, "{what}");
        *read += summary.num("parsed");
        assert_eq!(*read, written, "{what}: read so far vs written");
    };

    log.write(10);
    pass("first pass", 10, log.written, &mut read);

    log.rename_with_late_writes();
    pass("after a rename rotation", 15, log.written, &mut read);
    pass("nothing new", 0, log.written, &mut read);

    // A line being written (no newline yet) is not read until it is complete.
    log.write_a_line_in_two_parts(|written| {
        pass("with a partial last line", 4, written, &mut read);
    });
    pass("the line completed", 1, log.written, &mut read);

    // copytruncate: copied away, truncated to 0, then 2 new lines (shorter than before).
    std::fs::rename(&log.rotated, s.dir().join("kern.log.2")).unwrap();
    log.copytruncate();
    log.write(2);
    pass("after copytruncate", 2, log.written, &mut read);

    // copytruncate again, this time rewritten past the old offset before the next pass: told
    // apart by the hash of the first line.
    log.write(3);
    pass("before the second copytruncate", 3, log.written, &mut read);
    log.copytruncate();
    log.write(20);
    pass(
        "after copytruncate and a longer rewrite",
        20,
        log.written,
        &mut read,
    );

    // Rename to a new empty file, then lines only in the new file.
    std::fs::rename(&log.path, &log.rotated).unwrap();
    append(&log.path, "");
    pass("rotated to an empty file", 0, log.written, &mut read);
    log.write(6);
    pass("lines in the new file", 6, log.written, &mut read);
    println!(
        "{} lines written, {read} records read, each once",
        log.written
    );
}

/// Test 6: A scan split across two `run --once` passes: 4 probes, a pass (no ban), 4 more, a pass
/// (ban: 8 failed probes within the 60 s window, the threshold is 6). The detector state the
/// first pass saved carries the first 4.
#[test]
fn a_scan_split_across_two_passes_is_caught() {
    if !common::e2e_ready(
        "a_scan_split_across_two_passes_is_caught",
        &["nft", "ip", "nmap"],
    ) {
        return;
    }
    let (lab, s, target, attacker) = kmsg_lab("s", "");

    let started = Instant::now();
    let (_, closed, _, _, text) = nmap(&lab.attacker, &target, "21,22,23,25");
    assert_eq!(closed, 4, "{text}");
    let (first, took1) = s.run_once(&lab.target);
    assert_eq!(first.num("parsed"), 4, "{}", first.0);
    assert_eq!(first.num("findings"), 0);
    assert!(first.banned().is_empty());
    assert!(banned4(&lab.target).is_empty());

    let (_, closed, _, _, text) = nmap(&lab.attacker, &target, "53,80,110,135");
    assert_eq!(closed, 4, "{text}");
    let (second, took2) = s.run_once(&lab.target);
    println!(
        "passes took {took1:?} and {took2:?}; the scan's halves {:?} apart at most",
        started.elapsed()
    );
    assert_eq!(second.num("parsed"), 4, "{}", second.0);
    assert_eq!(second.banned(), vec![format!("{attacker}/32")]);
    assert!(banned4(&lab.target).contains(&attacker));
    let (filtered, closed, _, _, text) = nmap(&lab.attacker, &target, SEED_PORTS);
    assert_eq!((filtered, closed), (12, 0), "{text}");
}

/// One entry of a journal export stream (the format `systemd-journal-remote` reads).
fn export_entry(realtime_us: i64, boot_id: &str, transport: &str, message: &str) -> String {
    format!(
        "__REALTIME_TIMESTAMP={realtime_us}\n__MONOTONIC_TIMESTAMP={realtime_us}\n\
         _BOOT_ID={boot_id}\n_TRANSPORT={transport}\nSYSLOG_IDENTIFIER=kernel\nPRIORITY=4\n\
         MESSAGE={message}\n\n"
    )
}

/// A journal source over the journal files in `dir`; `extra_args` is appended to its `args`
/// (each a quoted string with a leading comma).
fn journal_source(dir: &Path, extra_args: &str) -> String {
    format!(
        "[[source]]\nkind = \"journal\"\njournalctl = \"journalctl\"\nargs = [\"--directory={}\"{extra_args}]\n",
        dir.display()
    )
}

/// For the journal tests: a namespace and a `Setup` whose journal source reads the directory
/// `journal/` of its tempdir, and the journal file there the test appends to.
fn journal_lab(label: &str) -> (Netns, Setup, PathBuf) {
    let (ns, s) = namespace_and_setup(label, |dir| {
        let journal_dir = dir.join("journal");
        std::fs::create_dir_all(&journal_dir).unwrap();
        journal_source(&journal_dir, "")
    });
    let journal = s.dir().join("journal").join("remote.journal");
    (ns, s, journal)
}

/// Test 7: The journal source with the real `journalctl` over a real journal file.
#[test]
fn journal_source_counts_kernel_entries_and_resumes_after_its_cursor() {
    if !common::e2e_ready(
        "journal_source_counts_kernel_entries_and_resumes_after_its_cursor",
        &["nft", "ip", "journalctl", JOURNAL_REMOTE],
    ) {
        return;
    }
    let (ns, s, journal) = journal_lab("pwjr");
    let prefix = s.prefix.clone();
    // The same journal read with the syslog entries too (journalctl ORs the two matches), in
    // dry run: the parser must refuse them itself.
    let with_syslog = Setup::in_dir(
        tempfile::tempdir().unwrap(),
        prefix.clone(),
        &format!(
            "{}\n[ban]\ndry_run = true\n",
            journal_source(journal.parent().unwrap(), ", \"_TRANSPORT=syslog\"")
        ),
    );
    let boot_id = lab::this_boot_id();
    let scanner = "10.250.0.77";
    let forger = "10.250.0.88";
    let now = jiff::Timestamp::now().as_microsecond();
    // Kernel entries from the scanner to `ports`, and syslog entries of the same text from the
    // forger to twice as many ports.
    let batch = |ports: std::ops::Range<u32>, t0: i64| {
        let mut text = String::new();
        for (k, p) in ports.clone().enumerate() {
            let t = t0 + k as i64 * 1000;
            text.push_str(&export_entry(
                t,
                &boot_id,
                "kernel",
                &log_body(&prefix, scanner, p, p),
            ));
            for q in [p, p + 100] {
                text.push_str(&export_entry(
                    t + 1,
                    &boot_id,
                    "syslog",
                    &log_body(&prefix, forger, q, q),
                ));
            }
        }
        text
    };

    journal_append(s.dir(), &journal, &batch(21..25, now - 2_000_000));
    let (a1, took) = s.run_once(&ns);
    println!("journal pass 1 took {took:?}");
    assert_eq!(
        (a1.num("records"), a1.num("parsed")),
        (4, 4),
        "only kernel entries are asked for: {}",
        a1.0
    );
    assert_eq!(a1.num("findings"), 0);
    let (b1, _) = with_syslog.run_once(&ns);
    assert_eq!(b1.num("records"), 12, "{}", b1.0);
    assert_eq!(b1.num("parsed"), 4);
    assert_eq!(b1.rejected("untrusted"), 8);
    assert!(b1.banned().is_empty());

    // Appended to the same journal file: the next passes see only the new entries.
    journal_append(s.dir(), &journal, &batch(25..29, now - 1_000_000));
    let (a2, took) = s.run_once(&ns);
    println!("journal pass 2 took {took:?}");
    assert_eq!((a2.num("records"), a2.num("parsed")), (4, 4), "{}", a2.0);
    assert_eq!(a2.banned(), vec![format!("{scanner}/32")]);
    assert!(banned4(&ns).contains(&scanner.to_string()));
    assert!(!banned4(&ns).contains(&forger.to_string()));
    let (b2, _) = with_syslog.run_once(&ns);
    assert_eq!(b2.num("records"), 12, "{}", b2.0);
    assert_eq!(b2.rejected("untrusted"), 8);
    assert_eq!(b2.banned(), vec![format!("{scanner}/32 (dry run)")]);

    let (a3, _) = s.run_once(&ns);
    assert_eq!(a3.num("records"), 0, "{}", a3.0);
}

/// Six probes of one scanner to ports 1..=6: a finding, so the daemon checkpoints and says so.
fn scan_lines(prefix: &str, scanner: &str) -> String {
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00");
    (1..=6)
        .map(|p| format!("{now} vm kernel: {}\n", log_body(prefix, scanner, p, p)))
        .collect()
}

/// Test 5b: The same rotations while the daemon follows the file. Each step ends with a small scan
/// from a step's own scanner: once the daemon has banned it, it has read everything before it,
/// and the next step may rotate. At the end the store's run records add up to every line
/// written, once.
#[test]
fn daemon_follows_rotation_without_loss_or_repeat() {
    if !common::e2e_ready(
        "daemon_follows_rotation_without_loss_or_repeat",
        &["nft", "ip"],
    ) {
        return;
    }
    let (ns, s) = namespace_and_setup("pwdrot", |dir| file_source(&dir.join("kern.log")));
    let mut log = RotatedLog::in_dir(s.dir(), &s.prefix);
    append(&log.path, "");
    let mut daemon = s.daemon(&ns);
    let mut step = 0u32;
    let mut scan_and_wait = |path: &Path, what: &str| {
        step += 1;
        let scanner = format!("10.252.{step}.1");
        append(path, &scan_lines(&s.prefix, &scanner));
        let needle = format!("[{scanner}/32]");
        let seen = wait_for(Duration::from_secs(20), || {
            daemon.output().contains(&needle).then_some(())
        });
        assert!(
            seen.is_some(),
            "{what}: {scanner} not banned:\n{}",
            daemon.output()
        );
        println!("{what}: read up to its end");
    };

    log.write(10);
    scan_and_wait(&log.path, "first lines");

    log.rename_with_late_writes();
    scan_and_wait(&log.path, "rename rotation");

    log.write_a_line_in_two_parts(|_| std::thread::sleep(Duration::from_millis(500)));
    scan_and_wait(&log.path, "a line written in two parts");

    log.copytruncate();
    log.write(2);
    scan_and_wait(&log.path, "copytruncate");

    log.copytruncate();
    log.write(40);
    scan_and_wait(&log.path, "copytruncate and a longer rewrite");

    let status = daemon.stop().unwrap();
    println!("daemon output:\n{}", daemon.output());
    assert!(status.success());
    let written = log.written;
    let scans = u64::from(step) * 6;
    let (records, probes): (i64, i64) = s
        .store()
        .connection()
        .query_row(
            "SELECT COALESCE(SUM(records), 0), COALESCE(SUM(probes), 0) FROM runs WHERE mode = 'daemon'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    println!(
        "{} lines written ({written} + {scans} scan lines); the daemon's runs: {records} records, {probes} parsed",
        written + scans
    );
    assert_eq!(probes as u64, written + scans);
    assert_eq!(records as u64, written + scans);
}

/// Beyond the seven: the daemon's other duties. A dry-run daemon decides without touching the
/// set; SIGHUP with dry run switched off reloads the config and the next scanner (the
/// attacker's IPv6 address) is banned for real; `run --once` meanwhile finds the lock taken
/// (exit 75); after SIGTERM a restarted daemon resumes after its cursor, finds the live ban in
/// the store and re-detects nothing.
#[test]
fn daemon_reloads_on_sighup_holds_the_lock_and_resumes() {
    if !common::e2e_ready(
        "daemon_reloads_on_sighup_holds_the_lock_and_resumes",
        &["nft", "ip", "nmap", "kill"],
    ) {
        return;
    }
    let (lab, s, _, attacker) = kmsg_lab("h", "\n[ban]\ndry_run = true\n");
    let attacker6 = lab.attacker_v6.to_string();
    let mut daemon = s.daemon(&lab.target);

    let (_, closed, _, _, text) = nmap(&lab.attacker, &lab.target_v4.to_string(), SEED_PORTS);
    assert_eq!(closed, 12, "{text}");
    let needle = format!("[{attacker}/32 (dry run)]");
    let decided = wait_for(Duration::from_secs(20), || {
        daemon.output().contains(&needle).then_some(())
    });
    assert!(
        decided.is_some(),
        "no dry-run decision:\n{}",
        daemon.output()
    );
    assert!(banned4(&lab.target).is_empty(), "dry run touched the set");

    // While the daemon runs, a cron pass steps aside.
    let locked = s.command(&lab.target, &["run", "--once"]).output().unwrap();
    println!(
        "run --once beside the daemon: {} {}",
        locked.status,
        String::from_utf8_lossy(&locked.stderr).trim()
    );
    assert_eq!(locked.status.code(), Some(75));

    // Reload with dry run off.
    s.write_config(KMSG_SOURCE);
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &daemon.pid().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let reloaded = wait_for(Duration::from_secs(20), || {
        daemon
            .output()
            .contains("configuration reloaded")
            .then_some(())
    });
    assert!(reloaded.is_some(), "no reload:\n{}", daemon.output());
    let (_, closed, _, _, text) = nmap(&lab.attacker, &lab.target_v6.to_string(), SEED_PORTS);
    assert_eq!(closed, 12, "{text}");
    let scanned = Instant::now();
    let banned = wait_for(Duration::from_secs(20), || {
        lab::banned6(&lab.target).contains(&attacker6).then_some(())
    });
    assert!(
        banned.is_some(),
        "IPv6 scanner not banned after the reload:\n{}",
        daemon.output()
    );
    println!("IPv6 ban {:?} after nmap ended", scanned.elapsed());
    assert!(banned4(&lab.target).is_empty());

    let status = daemon.stop().unwrap();
    assert!(status.success(), "{status}:\n{}", daemon.output());
    println!("first daemon:\n{}", daemon.output());
    // Each LOG record of the two scans was parsed exactly once, across the reload.
    let in_ring = lab::kmsg_records_with(&[&s.prefix, "SRC="]);
    let parsed = s.daemon_parsed_since(jiff::Timestamp::UNIX_EPOCH);
    println!("{in_ring} LOG records with the prefix in the ring; the daemon parsed {parsed}");
    assert!(in_ring >= 24);
    assert_eq!(parsed as usize, in_ring, "records lost or read twice");

    // Restarted: the store's live ban is counted, and nothing read before is read again.
    let restarted = jiff::Timestamp::now();
    let mut again = s.daemon(&lab.target);
    // Wait for its first periodic checkpoint (every 10 s) rather than a while: its readers have
    // then long had their first pass over the ring, and what they read is in the store.
    let checkpointed = wait_for(Duration::from_secs(30), || {
        let store = s.store();
        let n: i64 = store
            .connection()
            .query_row(
                "SELECT COUNT(*) FROM runs WHERE mode = 'daemon' AND started_us >= ?1",
                [restarted.as_microsecond()],
                |r| r.get(0),
            )
            .unwrap();
        (n > 0).then_some(())
    });
    assert!(
        checkpointed.is_some(),
        "no checkpoint from the restarted daemon:\n{}",
        again.output()
    );
    let status = again.stop().unwrap();
    let out = again.output();
    println!("second daemon:\n{out}");
    assert!(status.success());
    assert!(out.contains("1 live ban(s) in the store"), "{out}");
    assert!(
        !out.contains("finding(s)"),
        "re-detected after a restart:\n{out}"
    );
    assert_eq!(
        s.daemon_parsed_since(restarted),
        0,
        "the restarted daemon read old records again"
    );
}

/// Test 7b: the daemon follows the journal (`journalctl --follow`): kernel entries appended
/// while it runs are banned on, syslog entries of the same text are not even asked for, and
/// an entry already read before a restart is not read again.
#[test]
fn daemon_follows_the_journal() {
    if !common::e2e_ready(
        "daemon_follows_the_journal",
        &["nft", "ip", "journalctl", JOURNAL_REMOTE],
    ) {
        return;
    }
    let (ns, s, journal) = journal_lab("pwjd");
    let prefix = s.prefix.clone();
    let boot_id = lab::this_boot_id();
    let entries = |src: &str, transport: &str, ports: std::ops::Range<u32>| -> String {
        let now = jiff::Timestamp::now().as_microsecond();
        ports
            .map(|p| {
                export_entry(
                    now + i64::from(p),
                    &boot_id,
                    transport,
                    &log_body(&prefix, src, p, p),
                )
            })
            .collect()
    };
    // The journal must exist before journalctl is asked to follow it.
    journal_append(s.dir(), &journal, &entries("10.250.0.90", "kernel", 1..2));
    let mut daemon = s.daemon(&ns);

    journal_append(
        s.dir(),
        &journal,
        &format!(
            "{}{}",
            entries("10.250.0.88", "syslog", 1..13),
            entries("10.250.0.77", "kernel", 21..24)
        ),
    );
    journal_append(s.dir(), &journal, &entries("10.250.0.77", "kernel", 24..30));
    let appended = Instant::now();
    assert!(
        banned4_within(Duration::from_secs(30), &ns, "10.250.0.77"),
        "not banned:\n{}",
        daemon.output()
    );
    println!(
        "banned {:?} after the entries were appended",
        appended.elapsed()
    );
    assert!(!banned4(&ns).contains(&"10.250.0.88".to_string()));
    let status = daemon.stop().unwrap();
    println!("daemon:\n{}", daemon.output());
    assert!(status.success());
    // 1 + 3 + 6 kernel entries, each parsed once.
    assert_eq!(s.daemon_parsed_since(jiff::Timestamp::UNIX_EPOCH), 10);

    let restarted = jiff::Timestamp::now();
    let mut again = s.daemon(&ns);
    journal_append(s.dir(), &journal, &entries("10.250.0.91", "kernel", 40..42));
    // Nothing is banned on: wait for the daemon's periodic checkpoint to record the reads.
    let seen = wait_for(Duration::from_secs(30), || {
        (s.daemon_parsed_since(restarted) >= 2).then_some(())
    });
    assert!(seen.is_some(), "new entries not read:\n{}", again.output());
    let status = again.stop().unwrap();
    println!("restarted daemon:\n{}", again.output());
    assert!(status.success());
    assert_eq!(
        s.daemon_parsed_since(restarted),
        2,
        "after a restart, only the 2 new entries"
    );
}

/// Test 9: a real `nmap -T1` (a probe every 15 s) of the seed lab's 12 ports is banned by the
/// daemon before the scan ends: no fast-window rule can see it, the sequential and slow rules
/// must. The scan would take about 3 minutes; the test stops it once the ban is in.
#[test]
fn daemon_bans_a_t1_scan_before_it_ends() {
    if !common::e2e_ready(
        "daemon_bans_a_t1_scan_before_it_ends",
        &["nft", "ip", "nmap"],
    ) {
        return;
    }
    let (lab, s, target, attacker) = kmsg_lab("t1", "");
    let daemon = s.daemon(&lab.target);

    let log = s.dir().join("nmap-t1.log");
    let mut scan = common::daemons::Background::spawn(
        "nmap -T1",
        lab.attacker
            .command("nmap")
            .args(["-sS", "-T1", "-Pn", "-n", "-p", SEED_PORTS, &target]),
        &log,
    )
    .unwrap();
    let started = Instant::now();
    let banned = wait_for(Duration::from_secs(240), || {
        if let Some(status) = scan.exited() {
            panic!(
                "nmap -T1 ended ({status}) before the ban:\n{}\ndaemon:\n{}",
                scan.output(),
                daemon.output()
            );
        }
        banned4(&lab.target).contains(&attacker).then_some(())
    });
    assert!(banned.is_some(), "not banned; daemon:\n{}", daemon.output());
    let records = lab::kmsg_records_with(&[&s.prefix, "SRC="]);
    println!(
        "nmap -T1 banned {:?} after it started, after {records} LOG records, with the scan still running",
        started.elapsed()
    );
    assert!(scan.exited().is_none(), "the scan must still be running");
    assert!(
        records < SEED_PORTS.split(',').count(),
        "banned only after all 12 probes"
    );
    // The ban's reason names the rule: the fast window never holds enough of a -T1 scan.
    let reasons: Vec<String> = s
        .store()
        .live_bans(jiff::Timestamp::now())
        .unwrap()
        .into_iter()
        .map(|b| b.reason)
        .collect();
    println!("ban reason: {reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("sequential") || r.starts_with("slow_scan")),
        "a -T1 scan is caught by the slow rules: {reasons:?}"
    );
}
