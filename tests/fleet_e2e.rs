//! The fleet end to end (root, namespaces, a real `redis-server` from Debian, real nmap):
//! hosts A, B and C on one bridge with a Redis namespace, each running `portwarden daemon`
//! with its own LOG prefix and state directory, sharing bans through one stream.
//!
//! One test walks the whole story, in order, because each step builds on the bans of the one
//! before: a scan of A banned everywhere; an unban on B lifted everywhere; Redis down while A
//! bans two more (A at once, B and C after the restart, nothing lost or doubled; C's allowlist
//! holds one of them and wins); a hand-written entry without the right HMAC bans nobody; a
//! fourth host in cron mode joins late, gets the live bans on its first pass, publishes its
//! own ban and picks up a new one on its next pass; 10 000 validly signed bans in a burst hit
//! C's rate cap, which C reports; a fifth host, a daemon started last, gets the live bans at
//! start. Every wait has a deadline; durations are printed, never
//! asserted.

mod common;

use std::io::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::lab::{Background, SEED_PORTS, Setup, banned4, nmap, wait_for};
use portwarden::fleet::{FleetKey, FleetMessage, Kind};
use portwarden::netns::{Netns, Switch, unique_tag};

const NET: &str = "10.252.0";
const REDIS_PORT: &str = "6390";
const PASSWORD: &str = "fleet-test-password";
const KEY: &str = "fleet-test-key-0123456789abcdef";

/// `redis-server` inside the switch's namespace, no persistence, a password; stopped by PID.
fn start_redis(sw: &Switch, dir: &std::path::Path) -> Background {
    let mut cmd = sw.ns.command("redis-server");
    cmd.args([
        "--bind",
        &format!("{NET}.254"),
        "--port",
        REDIS_PORT,
        "--requirepass",
        PASSWORD,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
    ])
    .arg(dir);
    let r = Background::spawn("redis-server", &mut cmd, &dir.join("redis.log")).unwrap();
    let up = wait_for(Duration::from_secs(10), || {
        (redis_cli(sw, &["PING"]).trim() == "PONG").then_some(())
    });
    assert!(up.is_some(), "redis did not start:\n{}", r.output());
    r
}

fn redis_cli(sw: &Switch, args: &[&str]) -> String {
    sw.ns
        .command("redis-cli")
        .args([
            "-h",
            &format!("{NET}.254"),
            "-p",
            REDIS_PORT,
            "-a",
            PASSWORD,
            "--no-auth-warning",
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Feed raw RESP commands to `redis-cli --pipe` (10 000 XADDs at once).
fn redis_pipe(sw: &Switch, commands: &[Vec<String>]) -> String {
    let mut resp = Vec::new();
    for c in commands {
        write!(resp, "*{}\r\n", c.len()).unwrap();
        for a in c {
            write!(resp, "${}\r\n{a}\r\n", a.len()).unwrap();
        }
    }
    let mut child = sw
        .ns
        .command("redis-cli")
        .args([
            "-h",
            &format!("{NET}.254"),
            "-p",
            REDIS_PORT,
            "-a",
            PASSWORD,
            "--no-auth-warning",
            "--pipe",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&resp).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Host {
    name: String,
    ns: Netns,
    setup: Setup,
    addr: String,
}

fn fleet_config(host: &str, stream: &str, dir: &std::path::Path, extra_ban: &str) -> String {
    format!(
        "[[source]]\nkind = \"kmsg\"\npath = \"/dev/kmsg\"\n\n\
         [ban]\nprefix_sources = 0\n{extra_ban}\n\n\
         [fleet]\nredis = \"redis://{NET}.254:{REDIS_PORT}/0\"\npassword_file = \"{pw}\"\n\
         key_file = \"{key}\"\nstream = \"{stream}\"\nhost_id = \"{host}\"\n",
        pw = dir.join("password").display(),
        key = dir.join("key").display(),
    )
}

fn status(h: &Host) -> serde_json::Value {
    let out = h
        .setup
        .command(&h.ns, &["status", "--json"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

fn has(ns: &Netns, addr: &str) -> bool {
    banned4(ns).iter().any(|b| b == addr)
}

fn wait_banned(limit: Duration, ns: &Netns, addr: &str) -> Option<Duration> {
    let t = Instant::now();
    wait_for(limit, || has(ns, addr).then_some(())).map(|()| t.elapsed())
}

fn wait_gone(limit: Duration, ns: &Netns, addr: &str) -> Option<Duration> {
    let t = Instant::now();
    wait_for(limit, || (!has(ns, addr)).then_some(())).map(|()| t.elapsed())
}

fn store_count(h: &Host, sql: &str) -> i64 {
    use portwarden::store::ReadStore as _;
    h.setup
        .store()
        .connection()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_scan_seen_by_one_host_is_blocked_on_every_host() {
    if !common::e2e_ready(
        "fleet_e2e",
        &["nft", "nmap", "ip", "redis-server", "redis-cli"],
    ) {
        return;
    }
    portwarden::netns::enable_log_all_netns().unwrap();
    let tag = unique_tag();
    let stream = format!("pw:test:{tag}");
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("password"), format!("{PASSWORD}\n")).unwrap();
    std::fs::write(shared.path().join("key"), KEY).unwrap();
    let sw = Switch::create(&format!("pw-fl-{tag}-sw")).unwrap();
    sw.address(&format!("{NET}.254/24")).unwrap();
    let mut redis = start_redis(&sw, shared.path());

    let host = |name: &str, n: u8, extra_ban: &str| -> Host {
        let ns = Netns::create(&format!("pw-fl-{tag}-{name}")).unwrap();
        sw.attach(&ns, "eth0", &format!("{NET}.{n}/24")).unwrap();
        let setup = Setup::new(&fleet_config(name, &stream, shared.path(), extra_ban));
        setup.setup(&ns);
        Host {
            name: name.to_string(),
            ns,
            setup,
            addr: format!("{NET}.{n}"),
        }
    };
    let attacker = |n: u8| -> Netns {
        let ns = Netns::create(&format!("pw-fl-{tag}-x{n}")).unwrap();
        sw.attach(&ns, "eth0", &format!("{NET}.{n}/24")).unwrap();
        ns
    };
    let a = host("A", 1, "");
    let b = host("B", 2, "");
    let c = host("C", 3, &format!("allowlist = [\"{NET}.103\"]"));
    let daemons: Vec<Background> = [&a, &b, &c].iter().map(|h| h.setup.daemon(&h.ns)).collect();
    let (x1, x2, x3, x4) = (attacker(101), attacker(102), attacker(103), attacker(104));
    let (s1, s2, s3, s4) = (
        format!("{NET}.101"),
        format!("{NET}.102"),
        format!("{NET}.103"),
        format!("{NET}.104"),
    );
    let logs = || {
        daemons
            .iter()
            .map(|d| format!("--- {}\n{}", d.log.display(), d.output()))
            .collect::<Vec<_>>()
            .join("\n")
    };

    // 1. A real scan of A: banned on A, then on B and C through the stream.
    let (_, _, _, took, _) = nmap(&x1, &a.addr, SEED_PORTS);
    println!("nmap of A took {took:?}");
    assert!(
        wait_banned(Duration::from_secs(20), &a.ns, &s1).is_some(),
        "A did not ban {s1}:\n{}",
        logs()
    );
    let t_a = Instant::now();
    for h in [&b, &c] {
        let took = wait_banned(Duration::from_secs(10), &h.ns, &s1);
        assert!(
            took.is_some(),
            "{} did not get A's ban of {s1}:\n{}",
            h.name,
            logs()
        );
        println!(
            "{}: {s1} in the kernel set {:?} after A's (poll resolution 50 ms)",
            h.name,
            t_a.elapsed()
        );
    }
    assert_eq!(
        store_count(
            &b,
            &format!(
                "SELECT count(*) FROM bans WHERE target = '{s1}/32' AND origin = 'remote' AND origin_host = 'A'"
            )
        ),
        1,
        "B's store records the origin host"
    );

    // 2. An unban on B is lifted on A and C.
    b.setup.run(&b.ns, &["unban", &s1]);
    for h in [&a, &c] {
        let took = wait_gone(Duration::from_secs(10), &h.ns, &s1);
        assert!(
            took.is_some(),
            "{} kept {s1} after B's unban:\n{}",
            h.name,
            logs()
        );
        println!(
            "{}: B's unban of {s1} lifted after {:?}",
            h.name,
            took.unwrap()
        );
    }

    // 3. Redis down: A bans two more scanners locally at once; they wait in A's outbox.
    redis.stop();
    nmap(&x2, &a.addr, SEED_PORTS);
    nmap(&x3, &a.addr, SEED_PORTS);
    for s in [&s2, &s3] {
        assert!(
            wait_banned(Duration::from_secs(20), &a.ns, s).is_some(),
            "A did not ban {s} with Redis down:\n{}",
            logs()
        );
    }
    let outbox = status(&a)["fleet"]["outbox"].as_u64().unwrap_or(0);
    println!("A's outbox with Redis down: {outbox}");
    assert!(
        outbox >= 2,
        "A's bans must wait in its outbox: {}",
        status(&a)
    );
    assert!(!has(&b.ns, &s2) && !has(&c.ns, &s2));
    // Restarted (empty: no persistence): the outbox goes out, B and C catch up.
    let redis = start_redis(&sw, shared.path());
    for s in [&s2, &s3] {
        assert!(
            wait_banned(Duration::from_secs(15), &b.ns, s).is_some(),
            "B did not get {s} after the restart:\n{}",
            logs()
        );
    }
    assert!(
        wait_banned(Duration::from_secs(15), &c.ns, &s2).is_some(),
        "C did not get {s2}:\n{}",
        logs()
    );
    // C's allowlist holds s3: C read the message (its cursor is past it) and did not ban.
    let c_done = wait_for(Duration::from_secs(15), || {
        (store_count(
            &c,
            "SELECT count(*) FROM fleet_peers WHERE host = 'A' AND messages >= 3",
        ) == 1)
            .then_some(())
    });
    assert!(c_done.is_some(), "C did not read A's messages:\n{}", logs());
    assert!(
        !has(&c.ns, &s3),
        "C's allowlist must win over A's ban of {s3}"
    );
    assert_eq!(
        store_count(
            &c,
            &format!("SELECT count(*) FROM bans WHERE target = '{s3}/32'")
        ),
        0
    );
    assert_eq!(
        status(&a)["fleet"]["outbox"].as_u64(),
        Some(0),
        "A's outbox is empty once sent"
    );
    for h in [&b, &c] {
        assert_eq!(
            store_count(
                h,
                &format!("SELECT count(*) FROM bans WHERE target = '{s2}/32'")
            ),
            1,
            "{}: nothing lost, nothing doubled",
            h.name
        );
    }

    // 4. An entry XADDed by hand without the right HMAC bans nobody.
    let forged = format!("{NET}.105");
    let mut m = FleetMessage {
        kind: Kind::Ban,
        target: format!("{forged}/32").parse().unwrap(),
        since: jiff::Timestamp::now(),
        until: Some(jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)),
        reason: "forged".into(),
        evidence: String::new(),
        origin: "mallory".into(),
        seq: 1,
    };
    let wrong_key = FleetKey::new(b"not-the-fleet-key-at-all-000000".to_vec());
    let mut forged_fields: Vec<String> = vec!["XADD".into(), stream.clone(), "*".into()];
    for (k, v) in m.to_fields(&wrong_key) {
        forged_fields.push(k.to_string());
        forged_fields.push(v);
    }
    let mut unsigned = forged_fields.clone();
    unsigned.truncate(unsigned.len() - 2);
    redis_pipe(&sw, &[forged_fields, unsigned]);
    for h in [&a, &b, &c] {
        let refused = wait_for(Duration::from_secs(10), || {
            let n = status(h)["fleet"]["link"]["refused_bad_signature"]
                .as_str()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
            (n >= 2).then_some(n)
        });
        assert!(
            refused.is_some(),
            "{} did not count the forged entries: {}",
            h.name,
            status(h)
        );
        assert!(!has(&h.ns, &forged), "{} banned a forged target", h.name);
    }

    // 5. A fourth host, in cron mode, joins late: its first pass applies the live bans,
    //    publishes its own, and its next pass picks up a new one.
    let d = host("D", 4, "");
    let pass = |h: &Host| -> serde_json::Value {
        let out = h.setup.run(&h.ns, &["run", "--once", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        println!("D's pass: {}", v["fleet"]);
        v
    };
    pass(&d);
    assert!(
        has(&d.ns, &s2) && has(&d.ns, &s3),
        "the late joiner must get the live bans: {:?}",
        banned4(&d.ns)
    );
    assert!(!has(&d.ns, &s1), "{s1} was unbanned");
    nmap(&x4, &d.addr, SEED_PORTS);
    let first = wait_for(Duration::from_secs(20), || {
        let v = pass(&d);
        (v["fleet"]["published"].as_u64().unwrap_or(0) >= 1).then_some(v)
    });
    assert!(first.is_some(), "D did not publish its ban");
    assert!(has(&d.ns, &s4));
    for h in [&a, &b, &c] {
        assert!(
            wait_banned(Duration::from_secs(10), &h.ns, &s4).is_some(),
            "{} did not get D's ban:\n{}",
            h.name,
            logs()
        );
    }
    let manual = format!("{NET}.106");
    a.setup.run(&a.ns, &["ban", &manual, "--for", "1h"]);
    assert!(wait_banned(Duration::from_secs(10), &b.ns, &manual).is_some());
    let v = pass(&d);
    assert!(has(&d.ns, &manual), "D's next pass must apply A's ban: {v}");

    // 6. 10 000 validly signed bans in a burst: C's rate cap holds and is reported.
    let key = FleetKey::new(KEY.as_bytes().to_vec());
    let now = jiff::Timestamp::now();
    let burst: Vec<Vec<String>> = (0..10_000u32)
        .map(|i| {
            m = FleetMessage {
                kind: Kind::Ban,
                target: format!("10.200.{}.{}/32", i / 250, i % 250 + 1)
                    .parse()
                    .unwrap(),
                since: now,
                until: Some(now + jiff::SignedDuration::from_hours(1)),
                reason: "burst".into(),
                evidence: String::new(),
                origin: "burst".into(),
                seq: i64::from(i),
            };
            let mut c = vec!["XADD".to_string(), stream.clone(), "*".into()];
            for (k, v) in m.to_fields(&key) {
                c.push(k.to_string());
                c.push(v);
            }
            c
        })
        .collect();
    let t = Instant::now();
    println!(
        "burst: {}",
        redis_pipe(&sw, &burst).trim().replace('\n', " ")
    );
    let capped = wait_for(Duration::from_secs(120), || {
        let n = status(&c)["fleet"]["link"]["rate_limited"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        let banned =
            store_count(&c, "SELECT count(*) FROM bans WHERE origin_host = 'burst'") as u64;
        (n + banned >= 10_000).then_some((n, banned))
    });
    let (limited, banned) = capped.unwrap_or_else(|| {
        panic!(
            "C did not get through the burst: {}\n{}",
            status(&c),
            logs()
        )
    });
    println!(
        "C: burst of 10 000 read in {:?}: {banned} banned, {limited} over the cap",
        t.elapsed()
    );
    assert!(banned <= 60, "C's cap is 60 a minute, it banned {banned}");
    assert!(limited >= 9_940);
    let reported = wait_for(Duration::from_secs(5), || {
        daemons[2]
            .output()
            .contains("over the ban rate cap")
            .then_some(())
    });
    assert!(
        reported.is_some(),
        "C must report the cap:\n{}",
        daemons[2].output()
    );

    // 7. A fifth host, a daemon, started after all of this: it replays the retained stream
    //    at start and holds the live bans (the oldest first, within its own rate cap).
    let e = host("E", 5, "");
    let late = e.setup.daemon(&e.ns);
    for s in [&s2, &s3, &s4, &manual] {
        assert!(
            wait_banned(Duration::from_secs(30), &e.ns, s).is_some(),
            "the late daemon did not get {s}:\n{}",
            late.output()
        );
    }
    assert!(!has(&e.ns, &s1), "{s1} was unbanned before E joined");
    assert!(!has(&e.ns, &forged));
    drop(late);

    let text = c.setup.command(&c.ns, &["status"]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    println!("C's status:\n{text}");
    assert!(text.contains("peer:      A"), "{text}");
    drop(daemons);
    drop(redis);
}
