//! Sources that cannot be read, through the real binary: `run --once` and `status` on a file
//! source whose path does not exist (a typo), is a directory, a FIFO without a writer, a
//! character device (`/dev/zero`) or a gzip file, beside one good file.
//!
//! One rule for all of them: the pass reads the good source and is saved, the summary line
//! names each bad source and why, `run --once` exits 66 (EX_NOINPUT), and `status` says the same
//! per source. Before, a missing path was silent (exit 0), a directory gave an ERROR and exit 0,
//! and the FIFO and `/dev/zero` never returned (holding the run lock for every later pass).
//!
//! `run` never runs in the host's namespace (HELPER_RULES): each command runs inside a
//! throwaway network namespace, in dry run, with an `nft` that does not exist.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::lab::Setup;
use portwarden::netns::{Netns, unique_tag};

/// Runs `portwarden ARGS` in `ns` with a deadline (a pass that never ends fails the test
/// instead of hanging it): exit code, stdout, stderr.
fn run_with_deadline(s: &Setup, ns: &Netns, args: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = s
        .command(ns, args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            // `ip netns exec` execs the program: this PID is portwarden's own.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    (code, read(&out_path), read(&err_path))
}

#[test]
fn unreadable_file_sources_follow_one_rule() {
    if !common::e2e_ready("unreadable_file_sources_follow_one_rule", &["ip"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let good = d.join("kern.log");
    std::fs::write(
        &good,
        "2026-11-24T23:06:53.947768+00:00 vm kernel: link up\n",
    )
    .unwrap();
    let typo = d.join("kern.lgo");
    let directory = d.join("logs");
    std::fs::create_dir(&directory).unwrap();
    let fifo = d.join("fifo.log");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let gz = d.join("kern.log.2.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]).unwrap();
    let zero = std::path::PathBuf::from("/dev/zero");
    let bad = [
        (&typo, "does not exist"),
        (&directory, "is a directory"),
        (&fifo, "is a FIFO"),
        (&zero, "is a character device"),
        (&gz, "is gzip-compressed"),
    ];
    let mut sources = format!(
        "[[source]]\nkind = \"file\"\npath = \"{}\"\n",
        good.display()
    );
    for (path, _) in &bad {
        sources.push_str(&format!(
            "[[source]]\nkind = \"file\"\npath = \"{}\"\n",
            path.display()
        ));
    }
    let s = Setup::in_dir(
        tmp,
        format!("pwt{}: ", unique_tag()),
        &format!(
            "[ban]\ndry_run = true\n[firewall]\nnft = \"/nonexistent/portwarden-test/nft\"\n{sources}"
        ),
    );
    let ns = Netns::create(&format!("pwbad{}", unique_tag())).expect("netns");

    let (code, out, err) = run_with_deadline(&s, &ns, &["run", "--once"]);
    println!("run --once: {code:?}\n{out}\n{err}");
    assert_eq!(code, Some(66), "{out}\n{err}");
    assert!(
        out.contains("1 record(s) read"),
        "the good source is read: {out}"
    );
    assert!(out.contains("5 source error(s)"), "{out}");
    for (path, why) in &bad {
        let named = format!("file:{}: {} {why}", path.display(), path.display());
        assert!(
            out.contains(&named),
            "summary does not say `{named}`: {out}"
        );
    }

    // The pass was saved: a second one reads nothing new and says the same.
    let (code, out, _) = run_with_deadline(&s, &ns, &["run", "--once"]);
    assert_eq!(code, Some(66));
    assert!(
        out.contains("0 record(s) read") && out.contains("5 source error(s)"),
        "{out}"
    );

    let (code, out, err) = run_with_deadline(&s, &ns, &["status"]);
    println!("status: {code:?}\n{out}\n{err}");
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(
        out.contains(&format!("source:     file:{} readable", good.display())),
        "{out}"
    );
    for (path, why) in &bad {
        let line = format!(
            "source:     file:{} ERROR: {} {why}",
            path.display(),
            path.display()
        );
        assert!(out.contains(&line), "status does not say `{line}`: {out}");
    }
    assert!(
        out.contains("5 source error(s)"),
        "the last run's summary: {out}"
    );
}
