//! The live sources against the real things: the kernel's `/dev/kmsg`, real journal files made
//! by `systemd-journal-remote` and read by `journalctl`, and log files rotated by rename and by
//! copytruncate while they are being followed. Each test checks the exact sequence of records:
//! none lost, none read twice, across passes and across a "restart" from a saved cursor.
//!
//! `/dev/kmsg` is shared by everyone testing on this machine at once, so each kmsg test writes
//! lines with its own unique prefix and looks only at those.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::lab::{JOURNAL_REMOTE, append, copy_then_truncate, journal_append, this_boot_id};
use portwarden::source::{
    Cursor, FileSource, JournalSource, KmsgSource, Mode, ReadStats, Source, SourceError,
};

/// One pass, the records as strings.
fn pass(src: &mut dyn Source) -> (Vec<String>, ReadStats) {
    let mut out = Vec::new();
    let stats = src
        .read_available(&mut |r| out.push(String::from_utf8_lossy(r.bytes).into_owned()))
        .unwrap();
    (out, stats)
}

/// What the store would keep, and what it would give back after a restart.
fn saved(src: &dyn Source) -> Cursor {
    let text = src.cursor().expect("a cursor after reading").to_store();
    Cursor::from_store(&text).unwrap()
}

// ---------------------------------------------------------------------------------------------
// kmsg

fn kmsg_write(line: &str) {
    // One write() is one record. Without the newline the kernel keeps the record open for a
    // continuation and readers do not see it until the next record closes it.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/kmsg")
        .unwrap();
    f.write_all(format!("{line}\n").as_bytes()).unwrap();
}

/// The message part of kmsg records that carry `prefix`.
fn with_prefix(records: &[String], prefix: &str) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| r.split_once(';').map(|(_, msg)| msg))
        .filter(|m| m.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

#[test]
fn kmsg_hands_out_each_record_once_and_resumes_from_its_cursor() {
    if !common::e2e_ready("kmsg_hands_out_each_record_once", &[]) {
        return;
    }
    let prefix = format!("pwt{}: ", portwarden::netns::unique_tag());
    let first: Vec<String> = (0..20).map(|i| format!("{prefix}n={i:03}")).collect();
    for l in &first {
        kmsg_write(l);
    }
    let dev = Path::new("/dev/kmsg");
    let mut src = KmsgSource::open(dev, None).unwrap();
    assert_eq!(src.id(), "kmsg:/dev/kmsg");
    let t = Instant::now();
    let (records, stats) = pass(&mut src);
    println!(
        "first pass: {} records, {} bytes, lost {} in {:?}",
        stats.records,
        stats.bytes,
        stats.lost,
        t.elapsed()
    );
    assert_eq!(with_prefix(&records, &prefix), first);
    // User-space writes land with facility 1 (user): PRI = 8 + level. The parser uses that.
    let ours: Vec<&String> = records.iter().filter(|r| r.contains(&prefix)).collect();
    assert!(
        ours.iter()
            .all(|r| r.split(',').next().unwrap().parse::<u32>().unwrap() >> 3 == 1)
    );
    // Caught up: a second pass on the same source finds none of ours.
    let (again, _) = pass(&mut src);
    assert!(with_prefix(&again, &prefix).is_empty());

    // "Restart": a new source from the stored cursor sees only what came after.
    let cursor = saved(&src);
    let Cursor::Kmsg { seq: saved_seq, .. } = cursor else {
        panic!("not a kmsg cursor: {cursor:?}")
    };
    drop(src);
    let second: Vec<String> = (20..30).map(|i| format!("{prefix}n={i:03}")).collect();
    for l in &second {
        kmsg_write(l);
    }
    let mut resumed = KmsgSource::open(dev, Some(cursor)).unwrap();
    let (records, stats) = pass(&mut resumed);
    assert_eq!(with_prefix(&records, &prefix), second);
    assert_eq!(stats.lost, 0, "the ring did not wrap in between");
    for r in &records {
        let seq = portwarden::source::kmsg::record_seq(r.as_bytes()).unwrap();
        assert!(
            seq > saved_seq,
            "record {seq} at or before the cursor {saved_seq}"
        );
    }
}

#[test]
fn kmsg_cursor_of_another_boot_reads_the_ring_from_its_start() {
    if !common::e2e_ready("kmsg_cursor_of_another_boot", &[]) {
        return;
    }
    let prefix = format!("pwt{}: ", portwarden::netns::unique_tag());
    kmsg_write(&format!("{prefix}before"));
    let stale = Cursor::Kmsg {
        seq: u64::MAX - 1,
        boot_id: Some("00000000-0000-0000-0000-000000000000".into()),
    };
    let mut src = KmsgSource::open(Path::new("/dev/kmsg"), Some(stale)).unwrap();
    let (records, _) = pass(&mut src);
    assert_eq!(with_prefix(&records, &prefix), [format!("{prefix}before")]);
}

#[test]
fn kmsg_daemon_mode_wakes_on_a_new_record() {
    if !common::e2e_ready("kmsg_daemon_mode_wakes", &[]) {
        return;
    }
    let prefix = format!("pwt{}: ", portwarden::netns::unique_tag());
    let mut src = KmsgSource::open(Path::new("/dev/kmsg"), None).unwrap();
    pass(&mut src); // catch up with the ring
    let p = prefix.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        kmsg_write(&format!("{p}wake"));
    });
    let t = Instant::now();
    let mut got = Vec::new();
    for _ in 0..100 {
        src.wait(Duration::from_secs(5)).unwrap();
        let (records, _) = pass(&mut src);
        got.extend(with_prefix(&records, &prefix));
        if !got.is_empty() {
            break;
        }
    }
    writer.join().unwrap();
    println!(
        "kmsg: woke and read the record {:?} after the start",
        t.elapsed()
    );
    assert_eq!(got, [format!("{prefix}wake")]);
}

// ---------------------------------------------------------------------------------------------
// journal

/// Entries in the journal export format (`KEY=value` lines, a blank line after each).
fn export(entries: &[(&str, &str, &str)], realtime_start: u64) -> String {
    let mut s = String::new();
    for (i, (boot, transport, message)) in entries.iter().enumerate() {
        s.push_str(&format!(
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID={boot}\n\
             _TRANSPORT={transport}\nSYSLOG_IDENTIFIER=kernel\nPRIORITY=4\nMESSAGE={message}\n\n",
            realtime_start + i as u64,
            1000 + realtime_start % 1_000_000 + i as u64,
        ));
    }
    s
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn field(json: &str, key: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v[key].as_str().unwrap_or_default().to_string()
}

fn journal_ready(test: &str) -> bool {
    if !common::e2e_ready(test, &["journalctl"]) {
        return false;
    }
    if !Path::new(JOURNAL_REMOTE).exists() {
        eprintln!("SKIPPED {test}: needs {JOURNAL_REMOTE}");
        return false;
    }
    true
}

#[test]
fn journal_reads_kernel_entries_of_every_boot_and_resumes_after_its_cursor() {
    if !journal_ready("journal_reads_kernel_entries") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let jdir = dir.path().join("journal");
    std::fs::create_dir(&jdir).unwrap();
    let file = jdir.join("kern.journal");
    let this_boot = this_boot_id();
    let old_boot = "0123456789abcdef0123456789abcdef";
    let tag = format!("pwt{}: ", portwarden::netns::unique_tag());
    let m = |s: &str| format!("{tag}{s} IN=eth0 SRC=192.0.2.7 DST=192.0.2.1 PROTO=TCP DPT=22 SYN");
    let t0 = now_us() - 10_000_000;
    let (k1, k2, forged, k3) = (m("k1"), m("k2"), m("forged"), m("k3"));
    journal_append(
        dir.path(),
        &file,
        &export(
            &[
                (old_boot, "kernel", &k1),
                (&this_boot, "kernel", &k2),
                (&this_boot, "syslog", &forged),
                (&this_boot, "kernel", &k3),
            ],
            t0,
        ),
    );
    let args = vec![format!("--directory={}", jdir.display())];
    let mut src = JournalSource::new(Path::new("journalctl"), &args, None, Mode::Once);
    let (records, stats) = pass(&mut src);
    println!("journal first pass: {stats:?}");
    let messages: Vec<String> = records.iter().map(|r| field(r, "MESSAGE")).collect();
    // Kernel entries of both boots (`-k` would have kept only the latest boot's); the
    // syslog-transport forgery is not asked for.
    assert_eq!(messages, [k1.clone(), k2.clone(), k3.clone()]);
    assert!(records.iter().all(|r| field(r, "_TRANSPORT") == "kernel"));
    assert_eq!(stats.records, 3);

    // Forensics: asking for syslog too returns every entry, each telling its transport so
    // that the parser can refuse the forged one.
    let mut all_args = args.clone();
    all_args.push("_TRANSPORT=syslog".into());
    let mut all = JournalSource::new(Path::new("journalctl"), &all_args, None, Mode::Once);
    let (records, _) = pass(&mut all);
    let tagged: Vec<(String, String)> = records
        .iter()
        .map(|r| (field(r, "_TRANSPORT"), field(r, "MESSAGE")))
        .collect();
    assert_eq!(
        tagged,
        [
            ("kernel".to_string(), k1.clone()),
            ("kernel".to_string(), k2.clone()),
            ("syslog".to_string(), forged.clone()),
            ("kernel".to_string(), k3.clone()),
        ]
    );

    // Caught up: the same source finds nothing new.
    let (again, _) = pass(&mut src);
    assert!(again.is_empty(), "{again:?}");

    // Restart from the stored cursor after more entries arrived: only those.
    let cursor = saved(&src);
    assert!(matches!(&cursor, Cursor::Journal { cursor } if cursor.starts_with("s=")));
    drop(src);
    let (k4, k5) = (m("k4"), m("k5"));
    journal_append(
        dir.path(),
        &file,
        &export(
            &[
                (&this_boot, "kernel", &k4),
                (&this_boot, "syslog", &m("forged2")),
                (&this_boot, "kernel", &k5),
            ],
            t0 + 100,
        ),
    );
    // And a second journal file in the same directory, later still.
    let k6 = m("k6");
    journal_append(
        dir.path(),
        &jdir.join("second.journal"),
        &export(&[(&this_boot, "kernel", &k6)], t0 + 200),
    );
    let mut resumed = JournalSource::new(Path::new("journalctl"), &args, Some(cursor), Mode::Once);
    let (records, _) = pass(&mut resumed);
    let messages: Vec<String> = records.iter().map(|r| field(r, "MESSAGE")).collect();
    assert_eq!(messages, [k4, k5, k6]);
}

#[test]
fn journal_follow_mode_streams_new_entries() {
    if !journal_ready("journal_follow_mode_streams") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let jdir = dir.path().join("journal");
    std::fs::create_dir(&jdir).unwrap();
    let file = jdir.join("kern.journal");
    let boot = "0123456789abcdef0123456789abcdef";
    let tag = format!("pwt{}: ", portwarden::netns::unique_tag());
    let t0 = now_us() - 10_000_000;
    let first = format!("{tag}first");
    journal_append(dir.path(), &file, &export(&[(boot, "kernel", &first)], t0));
    let args = vec![format!("--directory={}", jdir.display())];
    let mut src = JournalSource::new(Path::new("journalctl"), &args, None, Mode::Follow);
    let mut got = Vec::new();
    let collect_until = |src: &mut JournalSource, got: &mut Vec<String>, n: usize| {
        for _ in 0..200 {
            let (records, _) = pass(src);
            got.extend(records.iter().map(|r| field(r, "MESSAGE")));
            if got.len() >= n {
                break;
            }
            src.wait(Duration::from_millis(100)).unwrap();
        }
    };
    let t = Instant::now();
    collect_until(&mut src, &mut got, 1);
    println!("journal --follow: first entry after {:?}", t.elapsed());
    let (second, third) = (format!("{tag}second"), format!("{tag}third"));
    journal_append(
        dir.path(),
        &file,
        &export(
            &[
                (boot, "kernel", &second),
                (boot, "syslog", "x"),
                (boot, "kernel", &third),
            ],
            t0 + 10,
        ),
    );
    let t = Instant::now();
    collect_until(&mut src, &mut got, 3);
    println!("journal --follow: appended entries after {:?}", t.elapsed());
    assert_eq!(got, [first, second, third.clone()]);
    // The cursor follows the stream.
    let Some(Cursor::Journal { cursor }) = src.cursor() else {
        panic!("no journal cursor")
    };
    let out = std::process::Command::new("journalctl")
        .args(["-o", "json", "--no-pager", "-n", "1"])
        .arg(format!("--directory={}", jdir.display()))
        .arg("_TRANSPORT=kernel")
        .output()
        .unwrap();
    let last = String::from_utf8(out.stdout).unwrap();
    assert_eq!(field(last.trim(), "__CURSOR"), cursor);
    assert_eq!(field(last.trim(), "MESSAGE"), third);
}

// ---------------------------------------------------------------------------------------------
// file

fn numbered(range: std::ops::Range<u32>) -> String {
    range.map(|i| format!("line {i:06}\n")).collect()
}

fn expect(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("line {i:06}")).collect()
}

/// logrotate's `copytruncate`: copy the content aside, then truncate the file in place.
fn copytruncate(path: &Path) {
    // Like logrotate, the copy is a new file (older ones were shifted away first).
    let _ = std::fs::remove_file(rotated(path));
    copy_then_truncate(path, &rotated(path));
}

fn rotated(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".1");
    PathBuf::from(s)
}

fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino()
}

#[test]
fn file_rotation_by_rename_between_passes_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("kern.log");
    append(&p, &numbered(0..50));
    let mut src = FileSource::open(&p, None).unwrap();
    assert_eq!(pass(&mut src).0, expect(0..50));
    // The writer adds to the old file, it is renamed away, a new one is started.
    append(&p, &numbered(50..60));
    let old_ino = inode(&p);
    std::fs::rename(&p, rotated(&p)).unwrap();
    append(&p, &numbered(60..80));
    assert_ne!(inode(&p), old_ino);
    assert_eq!(pass(&mut src).0, expect(50..80));
    assert!(pass(&mut src).0.is_empty());
    append(&p, &numbered(80..90));
    assert_eq!(pass(&mut src).0, expect(80..90));
    assert!(matches!(src.cursor(), Some(Cursor::File { ino, .. }) if ino == inode(&p)));
}

#[test]
fn file_rotation_by_rename_in_the_middle_of_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("kern.log");
    append(&p, &numbered(0..100));
    let mut src = FileSource::open(&p, None).unwrap();
    let mut out = Vec::new();
    let mut n = 0;
    src.read_available(&mut |r| {
        out.push(String::from_utf8_lossy(r.bytes).into_owned());
        n += 1;
        if n == 30 {
            // While the source is handing out line 29: more lines, rotate, new file, and an
            // unterminated last line in the old one that the writer never finishes.
            append(&p, &numbered(100..120));
            append(&p, "line 000120");
            std::fs::rename(&p, rotated(&p)).unwrap();
            append(&p, &numbered(121..140));
        }
    })
    .unwrap();
    // Lines 121..140 of the new file come in the same pass, after the old file's end.
    let mut want = expect(0..120);
    want.extend(expect(121..140));
    assert_eq!(out, want);
    // The old file is kept for a late writer (rsyslog until its HUP): its unfinished last
    // line is not handed out while the writer may still finish it...
    assert!(pass(&mut src).0.is_empty());
    // ...and once nothing touched it for the linger (shortened here), the line is handed out
    // and the file closed.
    src.set_rotated_linger(Duration::ZERO);
    assert_eq!(pass(&mut src).0, ["line 000120"]);
    append(&p, &numbered(140..150));
    assert_eq!(pass(&mut src).0, expect(140..150));
    assert!(pass(&mut src).0.is_empty());
}

#[test]
fn file_copytruncate_shorter_and_longer_than_the_old_offset() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("kern.log");
    append(&p, &numbered(0..30));
    let mut src = FileSource::open(&p, None).unwrap();
    assert_eq!(pass(&mut src).0, expect(0..30));
    let ino = inode(&p);

    // Truncated, then fewer bytes than we had read: the size tells.
    copytruncate(&p);
    append(&p, &numbered(30..35));
    assert_eq!(inode(&p), ino, "copytruncate keeps the inode");
    assert_eq!(pass(&mut src).0, expect(30..35));

    // Truncated, then more bytes than we had read before the next pass: only the first line
    // (hashed in the cursor) tells.
    copytruncate(&p);
    append(&p, &numbered(35..100));
    assert_eq!(pass(&mut src).0, expect(35..100));
    assert!(pass(&mut src).0.is_empty());

    // The same, across a restart from the stored cursor.
    let cursor = saved(&src);
    drop(src);
    copytruncate(&p);
    append(&p, &numbered(100..200));
    let mut resumed = FileSource::open(&p, Some(cursor)).unwrap();
    assert_eq!(pass(&mut resumed).0, expect(100..200));
}

#[test]
fn file_resumes_from_its_cursor_even_when_rotated_while_down() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("kern.log");
    append(&p, &numbered(0..10));
    append(&p, "line 0000"); // partial: not handed out, not skipped
    let mut src = FileSource::open(&p, None).unwrap();
    assert_eq!(pass(&mut src).0, expect(0..10));
    let cursor = saved(&src);
    drop(src);

    // Restart in place.
    append(&p, "10\n");
    append(&p, &numbered(11..20));
    let mut src = FileSource::open(&p, Some(cursor)).unwrap();
    assert_eq!(pass(&mut src).0, expect(0..20)[10..]);
    let cursor = saved(&src);
    drop(src);

    // Down while the log grew and was rotated by rename: the rotated file is found beside
    // the path by its inode and finished first.
    append(&p, &numbered(20..25));
    std::fs::rename(&p, dir.path().join("kern.log-20261124")).unwrap();
    append(&p, &numbered(25..40));
    let mut src = FileSource::open(&p, Some(cursor)).unwrap();
    assert_eq!(pass(&mut src).0, expect(20..40));
    // The rotated file, idle, is let go of; the new one continues.
    append(&p, &numbered(40..45));
    assert_eq!(pass(&mut src).0, expect(40..45));
}

#[test]
fn file_follow_waits_for_a_missing_file_and_survives_rotations_while_written() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("kern.log");
    let mut src = FileSource::open(&p, None).unwrap();
    // A missing file is an error of each pass (a typo must show), and the source still waits
    // for it and reads it once it appears.
    let missing = src.read_available(&mut |_| {});
    assert!(
        matches!(missing, Err(SourceError::Missing { .. })),
        "{missing:?}"
    );

    // A writer in another thread: lines, sometimes partial writes, rotations of both kinds.
    // It rotates only after the reader has seen a line written since the previous rotation,
    // so that every rotated file was noticed (two renames between two looks would hide the
    // middle file from any follower).
    let seen = Arc::new(AtomicU64::new(0));
    let total: u32 = 3000;
    let writer = {
        let p = p.clone();
        let seen = Arc::clone(&seen);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .unwrap();
            let mut rotations = 0;
            for i in 0..total {
                let line = format!("line {i:06}\n");
                if i % 7 == 0 {
                    // A line written in two pieces: the reader may see half of it.
                    f.write_all(&line.as_bytes()[..4]).unwrap();
                    f.flush().unwrap();
                    f.write_all(&line.as_bytes()[4..]).unwrap();
                } else {
                    f.write_all(line.as_bytes()).unwrap();
                }
                if i % 500 == 499 {
                    // Bounded, so that a reader that lost lines fails the test, not hangs it.
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while seen.load(Ordering::SeqCst) < u64::from(i) && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    rotations += 1;
                    if rotations % 2 == 1 {
                        drop(f);
                        std::fs::rename(&p, rotated(&p)).unwrap();
                    } else {
                        copytruncate(&p);
                        drop(f);
                    }
                    f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&p)
                        .unwrap();
                }
            }
            rotations
        })
    };
    let t = Instant::now();
    let mut got: Vec<String> = Vec::new();
    let mut passes = 0;
    while got.len() < total as usize && t.elapsed() < Duration::from_secs(90) {
        src.wait(Duration::from_millis(500)).unwrap();
        let read =
            src.read_available(&mut |r| got.push(String::from_utf8_lossy(r.bytes).into_owned()));
        match read {
            // Before the writer's first line.
            Err(SourceError::Missing { .. }) if got.is_empty() => {}
            other => {
                other.unwrap();
            }
        }
        if let Some(last) = got.last()
            && let Some(n) = last
                .strip_prefix("line ")
                .and_then(|n| n.parse::<u64>().ok())
        {
            seen.store(n, Ordering::SeqCst);
        }
        passes += 1;
    }
    let rotations = writer.join().unwrap();
    println!(
        "follow: {} lines, {rotations} rotations, {passes} passes, {:?}",
        got.len(),
        t.elapsed()
    );
    assert_eq!(got, expect(0..total));
}
