//! End to end, `portwarden fail2ban install --backend systemd` with real parts only: a real
//! journal file (made by `systemd-journal-remote` from an export stream, as journald would
//! store them) holds kernel-transport netfilter LOG records from an attacker and syslog-transport
//! entries of the very same text (identifier `kernel`, no pid) from a forger; a real
//! `fail2ban-server` 1.0.2, systemd backend, reads it with the generated filter and jail inside
//! a throwaway network namespace and bans through the generated `portwarden-nftables` action.
//! The attacker is banned, in Fail2Ban and in the namespace's kernel set; the forger is not.
//! `fail2ban-regex` on the same journal shows that the forger's entries DO match the failregex
//! (Fail2Ban formats them as `HOST kernel: [stamp] ...` too): `journalmatch = _TRANSPORT=kernel`
//! is what refuses them.
//!
//! No journald runs here, so the jail's `backend = systemd` is pointed at the test's journal
//! directory by a `jail.d/portwarden.local` override (`backend = systemd[journalpath=DIR]`),
//! the way an operator overrides a shipped jail; the generated files are used as written.
//!
//! Isolation: Fail2Ban gets its own config dir (a copy of /etc/fail2ban's base files, no jail.d
//! of the host) and its own socket, pid file, database and log under a tempdir. The host's
//! /etc/fail2ban, /run/fail2ban, journal and ruleset are never touched. The server is killed on
//! drop and the namespace deleted, also on failure.

mod common;

use common::fail2ban::{PrivateFail2ban, error_lines, fail2ban_client, wait_for_jail};
use common::lab::{read, wait_for};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::lab::{JOURNAL_REMOTE, journal_append, this_boot_id};
use portwarden::netns::Netns;

/// The value of `|- Total failed:` (or another counter) in `fail2ban-client status JAIL`.
fn counter(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.split(&format!("{name}:")).nth(1))
        .and_then(|v| v.trim().parse().ok())
}

/// The addresses after `Banned IP list:`.
fn banned_list(status: &str) -> Vec<String> {
    status
        .lines()
        .find_map(|l| l.split("Banned IP list:").nth(1))
        .map(|v| v.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The Python that runs `fail2ban-server` (its `#!` line): the one that must import
/// `systemd.journal` (Debian's python3-systemd), which may not be the `python3` on PATH.
fn fail2ban_python() -> Option<PathBuf> {
    let server = std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join("fail2ban-server"))
        .find(|p| p.is_file())?;
    let first = read(&server).lines().next()?.to_string();
    let interp = first.strip_prefix("#!")?.split_whitespace().next()?;
    Some(PathBuf::from(interp))
}

/// Whether Fail2Ban's systemd backend can load; like `e2e_ready`, a failure under
/// `PORTWARDEN_E2E=1`.
fn python_systemd_ready(test: &str) -> bool {
    let python = fail2ban_python().unwrap_or_else(|| PathBuf::from("python3"));
    let ok = Command::new(&python)
        .args(["-c", "import systemd.journal"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    let why = format!(
        "{test}: needs the systemd.journal module for {} (Debian: python3-systemd)",
        python.display()
    );
    if std::env::var("PORTWARDEN_E2E").as_deref() == Ok("1") {
        panic!("PORTWARDEN_E2E=1 but {why}");
    }
    eprintln!("SKIPPED {why} (set PORTWARDEN_E2E=1 to make this a failure)");
    false
}

/// The kernel's netfilter LOG text as journald stores it in MESSAGE (no syslog header, no
/// printk stamp).
fn log_message(prefix: &str, src: &str, dport: u32) -> String {
    format!(
        "{prefix}IN=vt OUT= MAC=02:00:00:00:00:01:02:00:00:00:00:02:08:00 SRC={src} DST=10.250.0.1 \
         LEN=44 TOS=0x00 PREC=0x00 TTL=43 ID={dport} PROTO=TCP SPT=40000 DPT={dport} WINDOW=1024 \
         RES=0x00 SYN URGP=0"
    )
}

/// One entry of a journal export stream with the fields journald gives a kernel record
/// (`_TRANSPORT=kernel`, identifier `kernel`, facility 0, no pid). A syslog-transport entry
/// with the same fields is what a local user gets with a syslog message claiming to be the
/// kernel (journald would add `_PID`; leaving it out makes it format exactly like the kernel's).
fn export_entry(
    realtime_us: i64,
    monotonic_us: i64,
    boot_id: &str,
    transport: &str,
    message: &str,
) -> String {
    format!(
        "__REALTIME_TIMESTAMP={realtime_us}\n__MONOTONIC_TIMESTAMP={monotonic_us}\n\
         _BOOT_ID={boot_id}\n_HOSTNAME=pwvm\n_TRANSPORT={transport}\n\
         SYSLOG_IDENTIFIER=kernel\nSYSLOG_FACILITY=0\nPRIORITY=4\nMESSAGE={message}\n\n"
    )
}

/// Microseconds since boot, as the kernel stamps its records.
fn uptime_us() -> i64 {
    let up = read(Path::new("/proc/uptime"));
    let secs: f64 = up
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap();
    (secs * 1e6) as i64
}

/// What the namespace needs for the `portwarden` action: the table and sets `portwarden setup`
/// makes (written here by hand so this test stands alone).
const PORTWARDEN_TABLE: &str = "table inet portwarden {
  set banned4 { type ipv4_addr; flags timeout; }
  set banned6 { type ipv6_addr; flags timeout; }
  chain input {
    type filter hook input priority -10; policy accept;
    ip saddr @banned4 drop
    ip6 saddr @banned6 drop
  }
}
";

#[test]
fn fail2ban_systemd_backend_bans_kernel_entries_only() {
    let test = "fail2ban_systemd_backend_bans_kernel_entries_only";
    if !common::e2e_ready(
        test,
        &[
            "fail2ban-server",
            "fail2ban-client",
            "fail2ban-regex",
            "nft",
            "ip",
            JOURNAL_REMOTE,
        ],
    ) || !python_systemd_ready(test)
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let tag = portwarden::netns::unique_tag();
    let prefix = format!("pwt{tag}: ");
    let ns = Netns::create(&format!("pwfj{tag}")).unwrap();
    let rules = dir.join("ns.nft");
    std::fs::write(&rules, PORTWARDEN_TABLE).unwrap();
    ns.run("nft", ["-f", rules.to_str().unwrap()]).unwrap();

    // Fail2Ban: base files, the generated ones, the journal override, private runtime paths.
    let f2b = PrivateFail2ban::create(dir);
    let (conf, sock, f2b_log) = (f2b.conf.clone(), f2b.sock.clone(), f2b.log.clone());
    f2b.install(
        &dir.join("state"),
        &[
            "--action",
            "portwarden",
            "--backend",
            "systemd",
            "--prefix",
            &prefix,
        ],
    );
    let jail = read(&conf.join("jail.d/portwarden.conf"));
    let filter = read(&conf.join("filter.d/portwarden.conf"));
    assert!(jail.contains("\nbackend = systemd\n"), "{jail}");
    assert!(!jail.contains("logpath"), "{jail}");
    assert!(
        filter.contains("\njournalmatch = _TRANSPORT=kernel\n"),
        "{filter}"
    );
    let journal_dir = dir.join("journal");
    std::fs::create_dir_all(&journal_dir).unwrap();
    std::fs::write(
        conf.join("jail.d/portwarden.local"),
        format!(
            "[portwarden]\nbackend = systemd[journalpath={}]\n",
            journal_dir.display()
        ),
    )
    .unwrap();

    // The journal exists before the server opens it: one kernel record without the prefix.
    let journal = journal_dir.join("remote.journal");
    let boot_id = this_boot_id();
    let now = || jiff::Timestamp::now().as_microsecond();
    journal_append(
        dir,
        &journal,
        &export_entry(
            now(),
            uptime_us(),
            &boot_id,
            "kernel",
            "virtio_net virtio0 eth0: link up",
        ),
    );

    let _server = f2b.start_server(&ns);
    let started = Instant::now();
    // Ready once the journal reader has caught up and follows new entries.
    let ready = wait_for_jail(&sock, "portwarden", Duration::from_secs(60)).and_then(|_| {
        wait_for(Duration::from_secs(60), || {
            Some(()).filter(|()| read(&f2b_log).contains("Jail is in operation now"))
        })
    });
    assert!(
        ready.is_some(),
        "jail did not start; fail2ban log:\n{}\nserver output:\n{}",
        read(&f2b_log),
        read(&f2b.server_out)
    );
    println!(
        "fail2ban-server following the journal after {:?}",
        started.elapsed()
    );

    // 12 syslog entries from the forger first, then 12 kernel entries from the attacker: once
    // Fail2Ban has counted all 12 of the latter, it has read past all of the former.
    let attacker = "10.250.0.77";
    let forger = "10.250.0.88";
    let (t0, m0) = (now(), uptime_us());
    let mut text = String::new();
    for (k, (transport, src)) in std::iter::repeat_n(("syslog", forger), 12)
        .chain(std::iter::repeat_n(("kernel", attacker), 12))
        .enumerate()
    {
        let k = k as i64;
        text.push_str(&export_entry(
            t0 + k * 1000,
            m0 + k * 1000,
            &boot_id,
            transport,
            &log_message(&prefix, src, 20 + k as u32),
        ));
    }
    journal_append(dir, &journal, &text);
    let appended = Instant::now();

    let status = wait_for(Duration::from_secs(60), || {
        fail2ban_client(&sock, &["status", "portwarden"]).filter(|s| {
            counter(s, "Total failed") == Some(12) && banned_list(s).contains(&attacker.into())
        })
    })
    .unwrap_or_else(|| {
        panic!(
            "attacker not banned after 12 failures; status:\n{:?}\nfail2ban log:\n{}",
            fail2ban_client(&sock, &["status", "portwarden"]),
            read(&f2b_log)
        )
    });
    println!(
        "ban seen by fail2ban-client {:?} after the append:\n{status}",
        appended.elapsed()
    );
    assert_eq!(banned_list(&status), vec![attacker.to_string()], "{status}");
    assert_eq!(counter(&status, "Total banned"), Some(1), "{status}");

    // The action ran in the namespace: the element with the jail's bantime as its timeout.
    let set = wait_for(Duration::from_secs(30), || {
        let out = ns
            .run("nft", ["list", "set", "inet", "portwarden", "banned4"])
            .unwrap();
        Some(String::from_utf8_lossy(&out.stdout).into_owned()).filter(|s| s.contains(attacker))
    })
    .unwrap_or_else(|| {
        panic!(
            "{attacker} not in banned4; fail2ban log:\n{}",
            read(&f2b_log)
        )
    });
    println!(
        "ban in the namespace's kernel set {:?} after the append",
        appended.elapsed()
    );
    assert!(set.contains(&format!("{attacker} timeout 1h")), "{set}");
    assert!(!set.contains(forger), "{set}");

    // Fail2Ban presented the kernel entries as `pwvm kernel: [ stamp] PREFIX...`; it never saw
    // the syslog ones.
    let log = read(&f2b_log);
    let found = |ip: &str| {
        log.lines()
            .filter(|l| l.contains("[portwarden] Found ") && l.contains(ip))
            .count()
    };
    assert_eq!(found(attacker), 12, "{log}");
    assert_eq!(found(forger), 0, "{log}");
    // No ERROR forgiven (see `error_lines`): the jail's status is asked only once the server
    // lists it, so an UnknownJailException here is a fault, not a race.
    let errors = error_lines(&log);
    assert!(errors.is_empty(), "fail2ban errors:\n{}", errors.join("\n"));

    // The control: asked for the syslog transport instead, the same filter matches all 12 of the
    // forger's entries. The failregex cannot refuse them; journalmatch does.
    let regex = |journalmatch: &str| {
        let out = Command::new("fail2ban-regex")
            .args(["-m", journalmatch])
            .arg(format!(
                "systemd-journal[journalpath={}]",
                journal_dir.display()
            ))
            .arg(conf.join("filter.d/portwarden.conf"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}");
        text.lines()
            .find(|l| l.starts_with("Lines:"))
            .map(str::to_string)
            .unwrap_or(text)
    };
    let syslog_lines = regex("_TRANSPORT=syslog");
    let kernel_lines = regex("_TRANSPORT=kernel");
    println!("fail2ban-regex, syslog transport: {syslog_lines}");
    println!("fail2ban-regex, kernel transport: {kernel_lines}");
    assert!(
        syslog_lines.starts_with("Lines: 12 lines, 0 ignored, 12 matched, 0 missed"),
        "{syslog_lines}"
    );
    assert!(
        kernel_lines.starts_with("Lines: 13 lines, 0 ignored, 12 matched, 1 missed"),
        "{kernel_lines}"
    );
    let _ = fail2ban_client(&sock, &["stop"]);
}
