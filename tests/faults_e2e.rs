//! Faults under the daemon, for real (root, throwaway namespaces, real nmap, the daemon on
//! `/dev/kmsg` inside the target namespace with its own LOG prefix and state directory):
//!
//! 1. `nft` failing for a while (`firewall.nft` points at a wrapper that refuses while a flag
//!    file exists and otherwise runs the real nft): bans still land, kernel and store, since
//!    they are written over netlink and nft only checks and builds the table. Then the kernel
//!    refusing a ban while nft fails: the table is replaced by one without the ban sets (its
//!    LOG rule kept), so the ban of an IPv6 scan fails and the daemon cannot rebuild the table;
//!    the finding is kept pending, nothing is recorded, and once nft works again the daemon
//!    rebuilds the table, restores the earlier ban and applies the pending one.
//! 2. The state directory's disk full (a 2 MiB tmpfs, filled up): the daemon says why it cannot
//!    save, still bans the scanner in the kernel from memory, and writes the ban to the store
//!    once there is room again.
//! 3. `ban`, `list` and `unban` from the CLI 1000 times in a loop while the daemon runs (and
//!    bans a real scanner meanwhile) and cron passes try to run: no "database is locked"
//!    reaches the user, every command succeeds (cron passes exit 0 or 75, "the daemon holds
//!    the lock"), and at the end the kernel set equals the store's live bans.
//!
//! No timed assertions: every wait is on a condition with a deadline.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::lab::{SEED_PORTS, Setup, banned4, banned6, nmap, wait_for};
use portwarden::netns::Lab;

const KMSG_SOURCE: &str = "[[source]]\nkind = \"kmsg\"\npath = \"/dev/kmsg\"\n";

fn real_nft() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("nft"))
        .find(|p| p.is_file())
        .expect("nft on PATH")
}

/// A wrapper around nft that fails while `flag` exists.
fn nft_switch(dir: &Path, flag: &Path) -> PathBuf {
    let path = dir.join("nft-switch");
    fs::write(
        &path,
        format!(
            "#!/bin/sh\nif [ -e '{}' ]; then echo 'Error: simulated nft outage' >&2; exit 1; fi\nexec '{}' \"$@\"\n",
            flag.display(),
            real_nft().display()
        ),
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn store_has_live_ban(s: &Setup, target: &str) -> bool {
    use portwarden::store::ReadStore as _;
    let store = s.store();
    store
        .live_bans(jiff::Timestamp::now())
        .unwrap()
        .iter()
        .any(|b| b.target.addr().to_string() == target)
}

#[test]
fn nft_failing_for_a_while_keeps_the_ban_pending_and_applies_it_later() {
    if !common::e2e_ready("nft_failing_for_a_while", &["nft", "ip", "nmap"]) {
        return;
    }
    portwarden::netns::enable_log_all_netns().unwrap();
    let lab = Lab::create("nftfail").unwrap();
    let s = Setup::new("");
    let flag = s.dir().join("nft-broken");
    let nft = nft_switch(s.dir(), &flag);
    s.write_config(&format!(
        "[firewall]\nnft = \"{}\"\n\n{KMSG_SOURCE}",
        nft.display()
    ));
    s.setup(&lab.target);
    let mut daemon = s.daemon(&lab.target);
    let attacker4 = lab.attacker_v4.to_string();
    let attacker6 = lab.attacker_v6.to_string();

    // nft failing: the ban still lands, over netlink.
    fs::write(&flag, "").unwrap();
    nmap(&lab.attacker, &lab.target_v4.to_string(), SEED_PORTS);
    let banned = wait_for(Duration::from_secs(30), || {
        (banned4(&lab.target).contains(&attacker4) && store_has_live_ban(&s, &attacker4))
            .then_some(())
    });
    assert!(
        banned.is_some(),
        "no ban while nft failed:\n{}",
        daemon.output()
    );

    // The kernel refuses (the ban sets are gone) and nft cannot rebuild the table.
    let broken = s.dir().join("broken.nft");
    fs::write(
        &broken,
        format!(
            "delete table inet portwarden\ntable inet portwarden {{\n\tchain input {{\n\t\t\
             type filter hook input priority -10; policy accept;\n\t\t\
             meta l4proto tcp ct state new log prefix \"{}\"\n\t}}\n}}\n",
            s.prefix
        ),
    )
    .unwrap();
    let out = lab
        .target
        .run("nft", ["-f", broken.to_str().unwrap()])
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    nmap(&lab.attacker, &lab.target_v6.to_string(), SEED_PORTS);
    let refused = wait_for(Duration::from_secs(30), || {
        let out = daemon.output();
        (out.contains("simulated nft outage") && out.contains(&attacker6)).then_some(())
    });
    assert!(
        refused.is_some(),
        "the daemon never tried (and failed) to ban {attacker6}:\n{}",
        daemon.output()
    );
    assert!(
        !banned6(&lab.target).contains(&attacker6),
        "banned although the set is gone?"
    );
    assert!(
        !store_has_live_ban(&s, &attacker6),
        "recorded although the kernel refused"
    );

    let repaired = Instant::now();
    fs::remove_file(&flag).unwrap();
    let banned = wait_for(Duration::from_secs(30), || {
        (banned6(&lab.target).contains(&attacker6) && banned4(&lab.target).contains(&attacker4))
            .then_some(())
    });
    assert!(
        banned.is_some(),
        "the pending ban (or the restored one) never landed after nft came back:\n{}",
        daemon.output()
    );
    println!(
        "table rebuilt, earlier ban restored and pending ban applied {:?} after nft came back",
        repaired.elapsed()
    );
    let stored = wait_for(Duration::from_secs(10), || {
        store_has_live_ban(&s, &attacker6).then_some(())
    });
    assert!(stored.is_some(), "in the kernel but not in the store");
    daemon.stop();
}

/// A tmpfs of `size` mounted on `dir` for as long as it lives (unmounted on drop, also when
/// the test panics). Only this test's own temporary directory is mounted over.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs on {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fill the file system holding `dir` with `dir/ballast` until it refuses.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write as _;
    let path = dir.join("ballast");
    let mut f = fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    path
}

#[test]
fn a_full_state_disk_still_bans_from_memory_and_saves_when_there_is_room() {
    if !common::e2e_ready("a_full_state_disk", &["nft", "ip", "nmap", "mount"]) {
        return;
    }
    portwarden::netns::enable_log_all_netns().unwrap();
    let lab = Lab::create("diskfull").unwrap();
    let s = Setup::new(KMSG_SOURCE);
    let _tmpfs = Tmpfs::mount(&s.state_dir, "2m");
    s.setup(&lab.target);
    let mut daemon = s.daemon(&lab.target);
    let attacker = lab.attacker_v4.to_string();

    let ballast = fill(&s.state_dir);
    nmap(&lab.attacker, &lab.target_v4.to_string(), SEED_PORTS);
    let banned = wait_for(Duration::from_secs(30), || {
        banned4(&lab.target).contains(&attacker).then_some(())
    });
    assert!(
        banned.is_some(),
        "a full disk kept the scanner out of the kernel set:\n{}",
        daemon.output()
    );
    let said = wait_for(Duration::from_secs(30), || {
        let out = daemon.output();
        (out.contains("disk is full") || out.contains("No space left")).then_some(())
    });
    assert!(
        said.is_some(),
        "the daemon never said the disk is full:\n{}",
        daemon.output()
    );
    assert!(
        daemon.exited().is_none(),
        "the daemon died:\n{}",
        daemon.output()
    );
    if let Some(line) = daemon.output().lines().find(|l| l.contains("full")) {
        println!("the daemon said: {line}");
    }

    fs::remove_file(&ballast).unwrap();
    let saved = wait_for(Duration::from_secs(30), || {
        store_has_live_ban(&s, &attacker).then_some(())
    });
    assert!(
        saved.is_some(),
        "the ban never reached the store once there was room:\n{}",
        daemon.output()
    );
    daemon.stop();
}

#[test]
fn cli_in_a_loop_while_the_daemon_and_cron_work_never_sees_a_locked_database() {
    if !common::e2e_ready("cli_in_a_loop", &["nft", "ip", "nmap"]) {
        return;
    }
    portwarden::netns::enable_log_all_netns().unwrap();
    let lab = Lab::create("cliloop").unwrap();
    let s = Setup::new(KMSG_SOURCE);
    s.setup(&lab.target);
    let mut daemon = s.daemon(&lab.target);
    let attacker = lab.attacker_v4.to_string();

    // Cron passes every 100 ms meanwhile, on their own thread, until told to stop.
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let mut pass = s.command(&lab.target, &["run", "--once"]);
    let cron = std::thread::scope(|scope| {
        let h = scope.spawn(move || {
            let mut runs = Vec::new();
            loop {
                let out = pass.output().unwrap();
                runs.push((
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                ));
                match stopped.recv_timeout(Duration::from_millis(100)) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                    _ => return runs,
                }
            }
        });
        let started = Instant::now();
        for i in 0..1000u32 {
            let target = format!("198.51.100.{}", i % 50 + 1);
            for args in [
                vec!["ban", target.as_str(), "--for", "1h"],
                vec!["list", "--json"],
                vec!["unban", target.as_str()],
            ] {
                if args[0] == "list" && i % 10 != 0 {
                    continue;
                }
                let out = s.command(&lab.target, &args).output().unwrap();
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(
                    out.status.success() && !text.contains("locked"),
                    "iteration {i}: portwarden {args:?} ({}):\n{text}",
                    out.status
                );
            }
            if i == 100 {
                // The daemon bans a real scanner while the loop goes on.
                nmap(&lab.attacker, &lab.target_v4.to_string(), SEED_PORTS);
            }
        }
        println!(
            "1000 ban/unban rounds (100 lists) took {:?}",
            started.elapsed()
        );
        let _ = stop.send(());
        h.join().unwrap()
    });
    for (code, stderr) in &cron {
        assert!(
            matches!(code, Some(0) | Some(75)) && !stderr.contains("locked"),
            "a cron pass failed ({code:?}): {stderr}"
        );
    }
    println!(
        "{} cron passes meanwhile ({} skipped: the daemon holds the lock)",
        cron.len(),
        cron.iter().filter(|(c, _)| *c == Some(75)).count()
    );
    let banned = wait_for(Duration::from_secs(20), || {
        banned4(&lab.target).contains(&attacker).then_some(())
    });
    assert!(
        banned.is_some(),
        "the scanner was not banned:\n{}",
        daemon.output()
    );

    // The kernel set equals the store's live bans.
    let out = s.run(&lab.target, &["list", "--json"]);
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = listing["bans"].as_array().unwrap();
    assert!(
        rows.iter()
            .all(|r| r["in_kernel"] == true && r["in_store"] == true),
        "kernel and store differ:\n{listing:#}"
    );
    let mut kernel = banned4(&lab.target);
    kernel.sort();
    assert_eq!(
        kernel,
        vec![attacker.clone()],
        "only the scanner is left banned"
    );
    daemon.stop();
}
