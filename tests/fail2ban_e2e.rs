//! End to end, the alternative method with real parts only: the kernel logs nmap's probes in a
//! throwaway target namespace, a real `rsyslogd` (imkmsg) writes them to a temporary kern.log, a
//! real `fail2ban-server` running INSIDE the target namespace reads it with the files
//! `portwarden fail2ban install` wrote, and bans through nftables; the next scan sees every port
//! `filtered`. Once with Fail2Ban's `nftables-allports`, once with portwarden's own sets.
//!
//! Isolation: Fail2Ban gets its own config dir (a copy of /etc/fail2ban's base files, no jail.d
//! of the host) and its own socket, pid file, database and log under a tempdir; rsyslogd its own
//! config, pid file and work directory. The host's /etc/fail2ban, /run/fail2ban and ruleset are
//! never touched. Every process is killed on drop, every namespace deleted, also on failure.

mod common;

use common::daemons::Background;
use common::fail2ban::{PrivateFail2ban, error_lines, fail2ban_client, wait_for_jail};
use common::lab::{read, wait_for};

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use portwarden::netns::{Lab, Netns};

/// The seed lab's ports.
const PORTS: &str = "21,22,23,25,53,80,110,135,139,443,445,3389";

/// nmap from the attacker; returns (ports reported `filtered`, ports reported `closed`, output).
fn nmap(attacker: &Netns, target: &str, v6: bool) -> (usize, usize, String) {
    let mut args = vec!["-sS", "-T4", "-Pn", "-n", "-p", PORTS, "-oG", "-"];
    if v6 {
        args.insert(0, "-6");
    }
    args.push(target);
    let out = attacker.run("nmap", &args).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // `Ports: 21/closed/tcp//ftp///, ...` and, for the rest, `Ignored State: filtered (12)`.
    let mut filtered = text.matches("/filtered/").count();
    let mut closed = text.matches("/closed/").count();
    for (state, n) in [("filtered", &mut filtered), ("closed", &mut closed)] {
        if let Some(rest) = text.split(&format!("Ignored State: {state} (")).nth(1) {
            *n += rest
                .split(')')
                .next()
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or(0);
        }
    }
    (filtered, closed, text)
}

fn ruleset_of(ns: &Netns) -> String {
    let out = ns.run("nft", ["list", "ruleset"]).unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the target namespace needs besides the LOG rule for the `portwarden` action: the table
/// and sets `portwarden setup` makes (written here by hand so this test stands alone).
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

fn scan_is_banned(action: &str) {
    let test = format!("fail2ban_e2e_{action}");
    if !common::e2e_ready(
        &test,
        &[
            "nft",
            "ip",
            "nmap",
            "rsyslogd",
            "fail2ban-server",
            "fail2ban-client",
        ],
    ) {
        return;
    }
    portwarden::netns::enable_log_all_netns().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let lab = Lab::create("f2b").unwrap();
    let prefix = format!("pwt{}: ", portwarden::netns::unique_tag());

    // The target logs new and invalid TCP/UDP packets (all its ports are closed).
    let mut rules = format!(
        "table inet pwf2blog {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    \
         iifname \"{}\" meta l4proto {{ tcp, udp }} ct state new,invalid log prefix \"{prefix}\"\n  }}\n}}\n",
        Lab::TARGET_IF
    );
    if action == "portwarden" {
        rules.push_str(PORTWARDEN_TABLE);
    }
    let rules_path = dir.join("target.nft");
    std::fs::write(&rules_path, &rules).unwrap();
    lab.target
        .run("nft", ["-f", rules_path.to_str().unwrap()])
        .unwrap();

    // rsyslogd: kernel-facility lines with this test's prefix only, to our own kern.log.
    let kern_log = dir.join("kern.log");
    std::fs::write(&kern_log, "").unwrap();
    let rsyslog_conf = dir.join("rsyslog.conf");
    std::fs::write(
        &rsyslog_conf,
        format!(
            "global(workDirectory=\"{d}\")\n\
             module(load=\"imkmsg\")\n\
             if ($syslogfacility-text == \"kern\" and $msg contains \"{prefix}\") then {{\n\
               action(type=\"omfile\" file=\"{log}\" template=\"RSYSLOG_FileFormat\")\n\
             }}\n",
            d = dir.display(),
            log = kern_log.display()
        ),
    )
    .unwrap();
    let mut rsyslogd = Command::new("rsyslogd");
    rsyslogd
        .arg("-n")
        .arg("-f")
        .arg(&rsyslog_conf)
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"));
    let _rsyslogd = Background::spawn("rsyslogd", &mut rsyslogd, &dir.join("rsyslogd.out"))
        .expect("start rsyslogd");

    // Fail2Ban: base files, then ours, then private runtime paths.
    let f2b = PrivateFail2ban::create(dir);
    let (sock, f2b_log) = (f2b.sock.clone(), f2b.log.clone());
    let installed = f2b.install(
        &dir.join("state"),
        &[
            "--action",
            action,
            "--prefix",
            &prefix,
            "--logpath",
            kern_log.to_str().unwrap(),
        ],
    );
    println!("{installed}");

    let server = f2b.start_server(&lab.target);
    let started = Instant::now();
    let status = wait_for_jail(&sock, "portwarden", Duration::from_secs(60));
    assert!(
        status.is_some(),
        "jail did not start; fail2ban log:\n{}\nserver output:\n{}",
        read(&f2b_log),
        read(&f2b.server_out)
    );
    println!("fail2ban-server ready after {:?}", started.elapsed());

    // First scan: every port answers (closed), and gets logged.
    let (filtered, closed, text) = nmap(&lab.attacker, &lab.target_v4.to_string(), false);
    assert_eq!((filtered, closed), (0, 12), "first scan:\n{text}");
    let scanned = Instant::now();
    let attacker = lab.attacker_v4.to_string();
    let banned = wait_for(Duration::from_secs(60), || {
        fail2ban_client(&sock, &["status", "portwarden"]).filter(|s| {
            s.lines()
                .any(|l| l.contains("Banned IP list") && l.contains(&attacker))
        })
    });
    assert!(
        banned.is_some(),
        "not banned; kern.log:\n{}\nfail2ban log:\n{}",
        read(&kern_log),
        read(&f2b_log)
    );
    println!(
        "IPv4 ban seen by fail2ban-client {:?} after the scan ended",
        scanned.elapsed()
    );
    let kern_lines = read(&kern_log)
        .lines()
        .filter(|l| l.contains(&prefix))
        .count();
    println!("kern.log lines with the prefix: {kern_lines}");
    assert!(kern_lines >= 12, "{}", read(&kern_log));

    // fail2ban-client lists the ban a moment before the action has run: wait for the kernel.
    let ruleset = wait_for(Duration::from_secs(30), || {
        Some(ruleset_of(&lab.target)).filter(|r| r.contains(&attacker))
    })
    .unwrap_or_else(|| {
        panic!(
            "{attacker} not in the ruleset:\n{}",
            ruleset_of(&lab.target)
        )
    });
    println!(
        "IPv4 ban in the kernel {:?} after the scan ended",
        scanned.elapsed()
    );
    if action == "portwarden" {
        let set = lab
            .target
            .run("nft", ["list", "set", "inet", "portwarden", "banned4"])
            .unwrap();
        let set = String::from_utf8_lossy(&set.stdout).into_owned();
        assert!(
            set.contains(&format!("{attacker} timeout 1h")),
            "element with the jail's bantime as timeout:\n{set}"
        );
    } else {
        assert!(ruleset.contains("table inet f2b-table"), "{ruleset}");
    }

    // Second scan: every port filtered.
    let (filtered, closed, text) = nmap(&lab.attacker, &lab.target_v4.to_string(), false);
    assert_eq!((filtered, closed), (12, 0), "after the ban:\n{text}");

    // IPv6: the kernel prints the source fully expanded; Fail2Ban bans the normalised address.
    let (_, closed6, text) = nmap(&lab.attacker, &lab.target_v6.to_string(), true);
    assert_eq!(closed6, 12, "first IPv6 scan:\n{text}");
    let attacker6 = lab.attacker_v6.to_string();
    let banned6 = wait_for(Duration::from_secs(60), || {
        fail2ban_client(&sock, &["status", "portwarden"]).filter(|s| {
            s.lines()
                .any(|l| l.contains("Banned IP list") && l.contains(&attacker6))
        })
    });
    assert!(
        banned6.is_some(),
        "IPv6 not banned; kern.log:\n{}\nfail2ban log:\n{}",
        read(&kern_log),
        read(&f2b_log)
    );
    wait_for(Duration::from_secs(30), || {
        Some(ruleset_of(&lab.target)).filter(|r| r.contains(&attacker6))
    })
    .unwrap_or_else(|| {
        panic!(
            "{attacker6} not in the ruleset:\n{}",
            ruleset_of(&lab.target)
        )
    });
    let (filtered6, closed6, text) = nmap(&lab.attacker, &lab.target_v6.to_string(), true);
    // With portwarden's table the whole source is dropped, neighbour solicitations included, so
    // nmap may find the host down instead of 12 filtered ports; either way nothing answers.
    let host_down = text.contains("(0 hosts up)");
    println!("IPv6 scan after the ban: {filtered6} filtered, host down: {host_down}");
    assert_eq!(closed6, 0, "after the IPv6 ban:\n{text}");
    assert!(filtered6 == 12 || host_down, "after the IPv6 ban:\n{text}");

    // `ip netns exec` execs fail2ban-server, so the child's pid is the server's.
    let rss = read(Path::new(&format!(
        "/proc/{}/status",
        server.pid().expect("fail2ban-server pid")
    )))
    .lines()
    .find(|l| l.starts_with("VmRSS:"))
    .map(str::to_string);
    println!("fail2ban-server {rss:?}");

    // Unban through Fail2Ban lifts the kernel ban too.
    assert!(fail2ban_client(&sock, &["set", "portwarden", "unbanip", &attacker]).is_some());
    let lifted = wait_for(Duration::from_secs(30), || {
        Some(()).filter(|()| !ruleset_of(&lab.target).contains(&attacker))
    });
    assert!(lifted.is_some(), "{}", ruleset_of(&lab.target));
    // No ERROR forgiven (see `error_lines`): the status polls above start only once the
    // server lists the jail, so an UnknownJailException here is a fault, not a race.
    let log = read(&f2b_log);
    let errors = error_lines(&log);
    assert!(errors.is_empty(), "fail2ban errors:\n{}", errors.join("\n"));
    let _ = fail2ban_client(&sock, &["stop"]);
}

#[test]
fn fail2ban_with_nftables_allports_bans_a_real_scan() {
    scan_is_banned("nftables-allports");
}

#[test]
fn fail2ban_with_portwarden_sets_bans_a_real_scan() {
    scan_is_banned("portwarden");
}
