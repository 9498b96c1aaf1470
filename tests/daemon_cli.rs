//! The daemon as a process, without root: a dry-run configuration (no firewall is touched; the
//! `nft` path does not even exist) following a large file. SIGTERM in the middle of the
//! backlog must stop it promptly and cleanly, with its position saved, and a restart must
//! resume from there rather than read the file again.
//!
//! This guards a real bug: a reader thread blocked on the full channel while the main thread,
//! asked to stop, waited to join it — forever.
//!
//! As root (CI), the daemon runs inside a throwaway network namespace all the same: a daemon
//! never runs in the host's namespace when the test could do otherwise.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn write_backlog(path: &std::path::Path, lines: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..lines {
        // Ordinary kernel chatter: every line is a record the reader must hand over.
        writeln!(
            f,
            "2026-11-24T23:06:53.947768+00:00 vm kernel: [  635.715659] e1000e eth0: link event {i}"
        )
        .unwrap();
    }
}

fn wait_exit(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn sigterm(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sigterm_during_a_large_backlog_stops_cleanly_and_a_restart_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kern.log");
    write_backlog(&log, 600_000);
    let config = dir.path().join("portwarden.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\n[ban]\ndry_run = true\n[firewall]\nnft = \"/nonexistent/portwarden-test/nft\"\n\
             [[source]]\nkind = \"file\"\npath = \"{}\"\n",
            dir.path().join("state").display(),
            log.display()
        ),
    )
    .unwrap();
    // As root: in a network namespace of this test's own (deleted on drop).
    let ns = portwarden::netns::is_root().then(|| {
        portwarden::netns::Netns::create(&format!("pwdc{}", portwarden::netns::unique_tag()))
            .expect("netns")
    });
    // Its stderr goes to a file the test reads while it runs: the daemon says `following`
    // once its signal handlers are installed and its readers started, the condition waited
    // on before any SIGTERM (a SIGTERM before the handlers would kill it uncleanly).
    let daemon = |stderr: &std::path::Path| {
        let mut c = match &ns {
            Some(ns) => ns.command(common::bin()),
            None => Command::new(common::bin()),
        };
        c.arg("--config")
            .arg(&config)
            .arg("daemon")
            .env_remove("PORTWARDEN_STATE_DIR")
            .env_remove("PORTWARDEN_CONFIG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(stderr).unwrap());
        c
    };
    let following = |child: &mut std::process::Child, stderr: &std::path::Path| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(stderr).unwrap_or_default();
            if text.contains("portwarden daemon: following") {
                return;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the daemon exited ({status}) before following: {text}");
            }
            assert!(
                Instant::now() < deadline,
                "the daemon never started following: {text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    let first_err = dir.path().join("first.err");
    let mut first = daemon(&first_err).spawn().unwrap();
    following(&mut first, &first_err);
    let asked = Instant::now();
    sigterm(first.id());
    let status = wait_exit(&mut first, Duration::from_secs(60));
    let Some(status) = status else {
        let _ = first.kill();
        panic!("the daemon did not stop within 60 s of SIGTERM");
    };
    let stderr = std::fs::read_to_string(&first_err).unwrap();
    println!("stopped {:?} after SIGTERM: {status}", asked.elapsed());
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("stopped; state saved"), "{stderr}");

    // The restart reads on from the saved cursor: the whole backlog is read once in all.
    let store = portwarden::store::Store::open(&dir.path().join("state")).unwrap();
    use portwarden::store::ReadStore as _;
    let records_first: i64 = store
        .connection()
        .query_row(
            "SELECT COALESCE(SUM(records), 0) FROM runs WHERE mode = 'daemon'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    drop(store);
    let second_err = dir.path().join("second.err");
    let mut second = daemon(&second_err).spawn().unwrap();
    let started = Instant::now();
    following(&mut second, &second_err);
    let store_records = || -> i64 {
        let store = portwarden::store::Store::open(&dir.path().join("state")).unwrap();
        store
            .connection()
            .query_row(
                "SELECT COALESCE(SUM(records), 0) FROM runs WHERE mode = 'daemon'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    // Let it catch up (a checkpoint every 10 s), then stop it.
    while store_records() < 600_000 && started.elapsed() < Duration::from_secs(90) {
        std::thread::sleep(Duration::from_millis(500));
    }
    sigterm(second.id());
    let status = wait_exit(&mut second, Duration::from_secs(60)).expect("second daemon stops");
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&second_err).unwrap_or_default()
    );
    let total = store_records();
    println!("first run read {records_first} records before it stopped; both runs {total}");
    assert!(records_first > 0, "the first run saved nothing");
    assert_eq!(
        total, 600_000,
        "every line read exactly once across the restart"
    );
}
