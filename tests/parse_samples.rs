//! The parse stage against its sample logs, through the public API only.
//!
//! * `testdata/samples/*.txt`: real captures of nmap scans; every line must give the probe
//!   listed in `testdata/samples/expected.tsv` (and every line must be listed).
//! * `testdata/logs/*.log`: hand-written annotated logs; each case is a line preceded by
//!   `# expect: ...` (see `testdata/README.md` for the format and the directives).
//! * A file with a 1 MiB line and a 3 MiB one, read with `input::for_each_line`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use portwarden::config::{LogConfig, LogPrefix};
use portwarden::input::{MAX_LINE_LEN, for_each_line, open_input};
use portwarden::parse::{ParseContext, ParseStats, Parser, Reject};
use portwarden::record::{Probe, Record, SourceKind};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

const BOOT: &str = "2026-11-24T22:56:18.232109Z";

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or("-".to_string(), |v| v.to_string())
}

/// A probe's fields as the expectation files name them.
fn fields(p: &Probe) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("time", p.time.to_string()),
        ("src", p.src.to_string()),
        ("dst", p.dst.to_string()),
        ("proto", p.proto.to_string()),
        ("sport", opt(p.sport)),
        ("dport", opt(p.dport)),
        ("scan", p.scan_type().as_str().to_string()),
        ("ttl", opt(p.ttl)),
        ("window", opt(p.window)),
        ("len", opt(p.len)),
        ("icmp", opt(p.icmp_type)),
        ("iface", p.iface.to_string()),
    ])
}

#[test]
fn real_captures_match_expected_tsv() {
    let dir = testdata().join("samples");
    let table = std::fs::read_to_string(dir.join("expected.tsv")).unwrap();
    let columns = [
        "time", "src", "dst", "proto", "sport", "dport", "scan", "ttl", "window", "len", "iface",
    ];
    let mut expected: BTreeMap<(String, usize), Vec<String>> = BTreeMap::new();
    for row in table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let cells: Vec<&str> = row.split('\t').collect();
        assert_eq!(cells.len(), 2 + columns.len(), "{row}");
        let key = (cells[0].to_string(), cells[1].parse().unwrap());
        expected.insert(key, cells[2..].iter().map(|s| s.to_string()).collect());
    }
    let ctx = || ParseContext {
        now: ts("2026-11-24T23:30:00Z"),
        tz: TimeZone::UTC,
        boot_time: ts(BOOT),
    };
    let mut parser = Parser::new(&LogConfig::default(), ctx());
    let mut checked = 0;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 13, "{files:?}");
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let kinds: &[SourceKind] = if name.starts_with("kmsg-") {
            // A kmsg dump is also recognised in a file.
            &[SourceKind::Kmsg, SourceKind::File]
        } else {
            &[SourceKind::File]
        };
        let text = std::fs::read(path).unwrap();
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let want = expected
                .get(&(name.clone(), i + 1))
                .unwrap_or_else(|| panic!("{name}:{} has no row in expected.tsv", i + 1));
            for &kind in kinds {
                let probe = parser
                    .parse(Record { kind, bytes: line })
                    .unwrap_or_else(|r| panic!("{name}:{} ({kind:?}): {r:?}", i + 1));
                let got = fields(&probe);
                assert_eq!(probe.time, ts(&want[0]), "{name}:{} time", i + 1);
                for (col, want) in columns.iter().zip(want).skip(1) {
                    assert_eq!(&got[col], want, "{name}:{} {col}", i + 1);
                }
            }
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        expected.len(),
        "rows in expected.tsv without a line"
    );
    println!("{checked} captured records checked");
}

/// The settings an annotated log's directives change.
struct Settings {
    kind: SourceKind,
    prefixes: Vec<String>,
    accept_untrusted: bool,
    forwarded: bool,
    now: Timestamp,
    tz: TimeZone,
    boot: Timestamp,
}

impl Settings {
    fn parser(&self) -> Parser {
        let log = LogConfig {
            prefixes: self
                .prefixes
                .iter()
                .map(|p| LogPrefix::new(p).unwrap())
                .collect(),
            accept_untrusted: self.accept_untrusted,
        };
        Parser::new(
            &log,
            ParseContext {
                now: self.now,
                tz: self.tz.clone(),
                boot_time: self.boot,
            },
        )
        .with_forwarded(self.forwarded)
    }
}

/// `"a" "b c"` -> ["a", "b c"]; empty -> [].
fn quoted_list(s: &str) -> Vec<String> {
    s.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn run_annotated(path: &Path) -> (usize, ParseStats) {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let mut s = Settings {
        kind: SourceKind::File,
        prefixes: vec!["portwarden: ".to_string()],
        accept_untrusted: false,
        forwarded: false,
        now: ts("2026-11-24T23:30:00Z"),
        tz: TimeZone::UTC,
        boot: ts(BOOT),
    };
    let mut expect: Option<String> = None;
    let mut cases = 0;
    let mut stats = ParseStats::default();
    let text = std::fs::read(path).unwrap();
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        let at = format!("{name}:{}", i + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix(b"#") {
            let comment = String::from_utf8_lossy(comment);
            let comment = comment.trim_start();
            let Some((key, value)) = comment.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key {
                "expect" => {
                    assert!(expect.is_none(), "{at}: two expectations for one line");
                    expect = Some(value.to_string());
                }
                "source" => {
                    s.kind = match value {
                        "file" => SourceKind::File,
                        "kmsg" => SourceKind::Kmsg,
                        "journal" => SourceKind::Journal,
                        other => panic!("{at}: source {other}"),
                    }
                }
                "prefixes" => s.prefixes = quoted_list(value),
                "untrusted" => s.accept_untrusted = value == "accept",
                "forwarded" => s.forwarded = value == "on",
                "now" => s.now = ts(value),
                "tz" => s.tz = TimeZone::get(value).unwrap(),
                "boot" => s.boot = ts(value),
                _ => {}
            }
            continue;
        }
        let want = expect
            .take()
            .unwrap_or_else(|| panic!("{at}: a line without `# expect:` above it"));
        let got = s.parser().parse(Record {
            kind: s.kind,
            bytes: line,
        });
        stats.count(&got);
        cases += 1;
        if let Some(reason) = want.strip_prefix("reject=") {
            match got {
                Err(r) => assert_eq!(r.as_str(), reason, "{at}"),
                Ok(p) => panic!("{at}: want reject {reason}, got {p:?}"),
            }
            continue;
        }
        let probe = got.unwrap_or_else(|r| panic!("{at}: want a probe, got {r:?}"));
        let got = fields(&probe);
        for pair in want.split_whitespace() {
            let (key, value) = pair.split_once('=').unwrap();
            let have = got
                .get(key)
                .unwrap_or_else(|| panic!("{at}: unknown key {key}"));
            if key == "time" {
                assert_eq!(probe.time, ts(value), "{at}");
            } else {
                assert_eq!(have, value, "{at}: {key}");
            }
        }
    }
    assert!(expect.is_none(), "{name}: an expectation without a line");
    (cases, stats)
}

#[test]
fn annotated_logs_give_what_they_say() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(testdata().join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    let mut total = ParseStats::default();
    for path in &files {
        let (cases, stats) = run_annotated(path);
        assert!(cases >= 4, "{}: only {cases} cases", path.display());
        total.lines += stats.lines;
        total.parsed += stats.parsed;
        for (k, v) in stats.rejected {
            *total.rejected.entry(k).or_default() += v;
        }
    }
    println!("{}", serde_json::to_string(&total).unwrap());
    // Every reason but the two that cannot be written in a line file is exercised.
    for r in Reject::ALL {
        if !matches!(r, Reject::Empty | Reject::TooLong) {
            assert!(total.rejected.contains_key(&r), "no case for {r:?}");
        }
    }
}

#[test]
fn headers_captured_from_real_daemons_give_what_they_say() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(testdata().join("headers"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "rsyslog-ForwardFormat-over-tcp.log",
        "rsyslog-SyslogProtocol23Format.log",
        "rsyslog-TraditionalFileFormat.log",
        "rsyslog-FileFormat.log",
        "rsyslog-TraditionalForwardFormat-over-udp.log",
        "rsyslog-received-tcp-FileFormat.log",
        "rsyslog-received-udp-FileFormat.log",
        "busybox-syslogd.log",
        "journalctl-short.log",
        "journalctl-short-iso.log",
        "journalctl-short-precise.log",
        "journalctl-export.log",
        "journalctl-json.log",
    ] {
        assert!(names.iter().any(|n| n == want), "no {want} in {names:?}");
    }
    for path in &files {
        let (cases, stats) = run_annotated(path);
        // Every capture holds the 5 real records (4 of them probes) and, but for the
        // kern-only files, the forgery.
        assert!(cases >= 5, "{}: only {cases} cases", path.display());
        assert!(
            !stats.rejected.contains_key(&Reject::BadHeader)
                && !stats.rejected.contains_key(&Reject::BadTime),
            "{}: {:?}",
            path.display(),
            stats.rejected
        );
        println!(
            "{}: {}",
            path.display(),
            serde_json::to_string(&stats).unwrap()
        );
    }
}

#[test]
fn huge_lines_are_skipped_or_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kern.log");
    let good = b"2026-11-24T23:06:53.947768+00:00 vm kernel: portwarden: IN=vt OUT= SRC=10.250.0.2 DST=10.250.0.1 LEN=44 TTL=43 PROTO=TCP SPT=1 DPT=22 WINDOW=1024 RES=0x00 SYN URGP=0 ";
    let mut bytes = good.to_vec();
    bytes.push(b'\n');
    // 1 MiB: passed on by the reader, refused by the parser without being scanned.
    bytes.extend_from_slice(&good[..good.len() - 1]);
    bytes.extend(std::iter::repeat_n(b'A', MAX_LINE_LEN - good.len()));
    bytes.push(b'\n');
    // 3 MiB: never buffered whole, skipped by the reader.
    bytes.extend(std::iter::repeat_n(b'B', 3 << 20));
    bytes.push(b'\n');
    bytes.extend_from_slice(good);
    std::fs::write(&path, &bytes).unwrap();

    let mut parser = Parser::new(
        &LogConfig::default(),
        ParseContext {
            now: ts("2026-11-24T23:30:00Z"),
            tz: TimeZone::UTC,
            boot_time: ts(BOOT),
        },
    );
    let mut stats = ParseStats::default();
    let skipped = for_each_line(open_input(&path).unwrap(), MAX_LINE_LEN, |line| {
        let r = parser.parse(Record {
            kind: SourceKind::File,
            bytes: line,
        });
        stats.count(&r);
    })
    .unwrap();
    assert_eq!(skipped, 1);
    assert_eq!((stats.lines, stats.parsed), (3, 2));
    assert_eq!(stats.rejected.get(&Reject::TooLong), Some(&1));
}
