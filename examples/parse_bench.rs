//! Parse throughput on ~1M synthetic lines per header format: `cargo run --release --example
//! parse_bench [LINES]`. Prints lines/s; asserts nothing about speed (timings here are noisy).
//!
//! The lines vary source address, ports and flags so that the parser cannot benefit from
//! identical input; they are generated in memory first so that only parsing is timed.

use std::time::Instant;

use jiff::tz::TimeZone;
use portwarden::config::LogConfig;
use portwarden::parse::{ParseContext, ParseStats, Parser};
use portwarden::record::{Record, SourceKind};

fn body(i: usize) -> String {
    let flags = ["SYN", "FIN", "ACK", "URG PSH FIN", ""][i % 5];
    format!(
        "portwarden: IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=10.{}.{}.{} DST=192.0.2.10 LEN=44 TOS=0x00 PREC=0x00 TTL={} ID={} PROTO=TCP SPT={} DPT={} WINDOW=1024 RES=0x00 {flags} URGP=0 ",
        (i >> 16) & 255,
        (i >> 8) & 255,
        i & 255,
        32 + i % 200,
        i % 65536,
        1024 + i % 60000,
        i % 65536,
    )
}

/// A header format: its name, source kind, and how to wrap a message in it.
type Format = (&'static str, SourceKind, fn(usize, &str) -> String);

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let ctx = || ParseContext {
        now: "2026-11-24T23:30:00Z".parse().expect("valid timestamp"),
        tz: TimeZone::UTC,
        boot_time: "2026-11-24T22:56:18Z".parse().expect("valid timestamp"),
    };
    let formats: [Format; 5] = [
        ("kmsg", SourceKind::Kmsg, |i, b| {
            format!("4,{i},{},-;{b}", 635_715_659 + i)
        }),
        ("rfc3339", SourceKind::File, |i, b| {
            format!(
                "2026-11-24T23:06:53.{:06}+00:00 vm kernel: [  635.715659] {b}",
                i % 1_000_000
            )
        }),
        ("bsd", SourceKind::File, |_, b| {
            format!("Nov 24 23:06:53 vm kernel: {b}")
        }),
        ("dmesg", SourceKind::File, |i, b| {
            format!("[{:>5}.{:06}] {b}", 635 + i / 1_000_000, i % 1_000_000)
        }),
        ("journal", SourceKind::Journal, |i, b| {
            format!(
                r#"{{"__REALTIME_TIMESTAMP":"{}","_TRANSPORT":"kernel","PRIORITY":"4","MESSAGE":"{b}"}}"#,
                1_795_561_613_947_768u64 + i as u64
            )
        }),
    ];
    println!("parse throughput, {n} lines per format");
    for (name, kind, make) in formats {
        let lines: Vec<String> = (0..n).map(|i| make(i, &body(i))).collect();
        let bytes: usize = lines.iter().map(|l| l.len()).sum();
        let mut parser = Parser::new(&LogConfig::default(), ctx());
        let mut stats = ParseStats::default();
        let start = Instant::now();
        for line in &lines {
            let r = parser.parse(Record {
                kind,
                bytes: line.as_bytes(),
            });
            stats.count(&r);
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name:>8}: {:>10.0} lines/s  {:>7.1} MB/s  ({} parsed, {} rejected, {:.3} s)",
            n as f64 / secs,
            bytes as f64 / secs / 1e6,
            stats.parsed,
            stats.lines - stats.parsed,
            secs,
        );
    }
}
