//! `portwarden scan [--json] [--prefix P] FILE...`: offline forensics over log files.
//!
//! Reads syslog / kern.log / dmesg / raw kmsg / `journalctl -o json` files (`-` for standard
//! input, `*.gz` decompressed), runs them through the same parse and detect stages as the live
//! modes, and reports the scanners it finds. It bans nothing and touches no state.
//!
//! Every rejected reason comes with the first line it was given for (file and line number, in
//! the JSON's `rejected_samples` and with `--explain`): an operator whose format is not
//! understood sees which lines and why. (Line numbers count the lines the reader passes on: after
//! an overlong line, which it skips, they are one short.)
//!
//! Success and failure of a probe: on another host's log, this host's listening sockets say
//! nothing, so only the configured `[detect] served_ports` count as served, unless `--local`
//! asks to read this host's `/proc/net` as well.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use jiff::Timestamp;
use serde::Serialize;

use super::Context;
use crate::config::LogPrefix;
use crate::detect::{PortScanDetector, ServedPorts};
use crate::input;
use crate::parse::{ParseContext, ParseStats, Parser};
use crate::record::{Finding, Record, SourceKind};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// LOG prefix that marks the records (repeatable; replaces the config's). An empty string
    /// accepts any netfilter LOG record.
    #[arg(long, value_name = "P")]
    pub prefix: Vec<String>,
    /// Also count this host's listening ports (from /proc/net) as served.
    #[arg(long)]
    pub local: bool,
    /// After the table, one line per reason a line was rejected: how many, and the first such
    /// line (file, line number, text), so that a format that is not understood shows itself.
    #[arg(long)]
    pub explain: bool,
    /// Log files to read; `-` is standard input, `*.gz` is decompressed.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// The `--json` document.
#[derive(Debug, Serialize)]
struct Report<'a> {
    scanners: Vec<ScannerRow>,
    files: &'a [PathBuf],
    lines: u64,
    records: u64,
    rejected: &'a std::collections::BTreeMap<crate::parse::Reject, u64>,
    /// The first line rejected for each reason.
    rejected_samples: &'a BTreeMap<crate::parse::Reject, RejectSample>,
    overlong_lines: u64,
    /// Files that could not be read to their end (what came before the error is counted).
    errors: &'a [FileError],
}

/// Where the first line rejected for a reason was, and what it said.
#[derive(Debug, Serialize)]
struct RejectSample {
    file: PathBuf,
    /// 1-based.
    line: u64,
    /// The line, lossily decoded, cut at [`SAMPLE_TEXT`] bytes.
    text: String,
}

/// Bytes of a rejected line kept as its sample.
const SAMPLE_TEXT: usize = 300;

/// A file `scan` could not read (or not to its end), and why.
#[derive(Debug, Serialize)]
struct FileError {
    file: PathBuf,
    error: String,
}

/// Exit code when some file could not be read: EX_NOINPUT. The report covers the rest.
pub const UNREADABLE: u8 = 66;

/// One finding, flattened for reports.
#[derive(Debug, Serialize)]
struct ScannerRow {
    source: std::net::IpAddr,
    kind: &'static str,
    scan_type: &'static str,
    ports: u32,
    probes: u32,
    destinations: u32,
    failures: u32,
    successes: u32,
    records: u64,
    first_seen: Timestamp,
    last_seen: Timestamp,
    detected_at: Timestamp,
    top_ports: Vec<String>,
}

impl From<&Finding> for ScannerRow {
    fn from(f: &Finding) -> Self {
        let e = &f.evidence;
        ScannerRow {
            source: f.source,
            kind: f.kind.as_str(),
            scan_type: f.scan_type.as_str(),
            ports: e.ports,
            probes: e.probes,
            destinations: e.destinations,
            failures: e.failures,
            successes: e.successes,
            records: e.records,
            first_seen: e.first_seen,
            last_seen: e.last_seen,
            detected_at: f.detected_at,
            top_ports: e
                .top_ports
                .iter()
                .map(|p| format!("{}/{}", p.proto, p.port))
                .collect(),
        }
    }
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let mut log = ctx.config.log.clone();
    if !args.prefix.is_empty() {
        log.prefixes = args
            .prefix
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| LogPrefix::new(p).context("--prefix"))
            .collect::<anyhow::Result<_>>()?;
    }
    let mut served = ctx.config.detect.served_ports.clone();
    if args.local {
        let local = ServedPorts::from_proc()
            .context("reading this host's listening ports from /proc/net")?;
        served.extend(local.iter());
    }

    // A file that cannot be opened or read to its end (missing, a directory, a truncated
    // `.gz`) does not sink the others: what could be read is reported, each bad file is named
    // (on stderr, and in the JSON), and the exit code says the report is incomplete.
    let mut parser = Parser::new(&log, ParseContext::at(ctx.clock.now()))
        .with_forwarded(ctx.config.detect.forwarded);
    let mut detector = PortScanDetector::new(&ctx.config.detect, ServedPorts::new(served));
    let mut stats = ParseStats::default();
    let mut overlong = 0;
    let mut errors = Vec::new();
    let mut samples: BTreeMap<crate::parse::Reject, RejectSample> = BTreeMap::new();
    for path in &args.files {
        let mut line_no = 0u64;
        let read = input::open_input(path).and_then(|reader| {
            input::for_each_line(reader, input::MAX_LINE_LEN, |line| {
                line_no += 1;
                let result = parser.parse(Record {
                    kind: SourceKind::File,
                    bytes: line,
                });
                stats.count(&result);
                match result {
                    Ok(probe) => {
                        detector.observe(&probe);
                    }
                    Err(reason) => {
                        samples.entry(reason).or_insert_with(|| RejectSample {
                            file: path.clone(),
                            line: line_no,
                            text: String::from_utf8_lossy(&line[..line.len().min(SAMPLE_TEXT)])
                                .trim_end()
                                .to_string(),
                        });
                    }
                }
            })
        });
        match read {
            Ok(n) => overlong += n,
            Err(e) => {
                // `open_input`'s errors already start with the path.
                let text = e.to_string();
                let shown = path.display().to_string();
                let error = if text.starts_with(&shown) {
                    text
                } else {
                    format!("{shown}: {text}")
                };
                eprintln!("portwarden: scan: cannot read all of {error}");
                errors.push(FileError {
                    file: path.clone(),
                    error,
                });
            }
        }
    }

    let mut findings = detector.findings();
    findings.sort_by(|a, b| {
        a.evidence
            .first_seen
            .cmp(&b.evidence.first_seen)
            .then(a.source.cmp(&b.source))
    });
    let rows: Vec<ScannerRow> = findings.iter().map(ScannerRow::from).collect();
    let mut out = std::io::stdout().lock();
    if args.json {
        let report = Report {
            scanners: rows,
            files: &args.files,
            lines: stats.lines,
            records: stats.parsed,
            rejected: &stats.rejected,
            rejected_samples: &samples,
            overlong_lines: overlong,
            errors: &errors,
        };
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write_table(&mut out, &rows)?;
        let rejected: Vec<String> = stats
            .rejected
            .iter()
            .map(|(k, v)| format!("{}={v}", k.as_str()))
            .collect();
        writeln!(
            out,
            "\n{} scanner(s); {} line(s) read, {} LOG record(s) parsed, rejected: {}{}",
            rows.len(),
            stats.lines,
            stats.parsed,
            if rejected.is_empty() {
                "none".to_string()
            } else {
                rejected.join(" ")
            },
            if overlong > 0 {
                format!(", {overlong} overlong line(s) skipped")
            } else {
                String::new()
            }
        )?;
        if args.explain {
            for (reason, n) in &stats.rejected {
                if let Some(sample) = samples.get(reason) {
                    writeln!(
                        out,
                        "{}: {n} line(s), first at {}:{}: {}",
                        reason.as_str(),
                        sample.file.display(),
                        sample.line,
                        sample.text
                    )?;
                }
            }
        }
        if !errors.is_empty() {
            let names: Vec<String> = errors.iter().map(|e| e.error.clone()).collect();
            writeln!(
                out,
                "INCOMPLETE: {} of {} file(s) could not be read to their end: {}",
                errors.len(),
                args.files.len(),
                names.join("; ")
            )?;
        }
    }
    if !errors.is_empty() {
        return Ok(ExitCode::from(UNREADABLE));
    }
    Ok(ExitCode::SUCCESS)
}

fn write_table(out: &mut impl Write, rows: &[ScannerRow]) -> std::io::Result<()> {
    if rows.is_empty() {
        return writeln!(out, "no scanners found");
    }
    let headers = [
        "SOURCE",
        "KIND",
        "TYPE",
        "PORTS",
        "FAIL/OK",
        "RECORDS",
        "FIRST SEEN",
        "LAST SEEN",
        "TOP PORTS",
    ];
    let cells: Vec<[String; 9]> = rows
        .iter()
        .map(|r| {
            [
                r.source.to_string(),
                r.kind.to_string(),
                r.scan_type.to_string(),
                r.ports.to_string(),
                format!("{}/{}", r.failures, r.successes),
                r.records.to_string(),
                short_time(r.first_seen),
                short_time(r.last_seen),
                r.top_ports
                    .iter()
                    .take(6)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(","),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cols: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i + 1 == cols.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s
    };
    writeln!(out, "{}", line(headers.to_vec()))?;
    for row in &cells {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// `2026-11-24 23:06:53.947` (UTC): enough to read, exact enough to order.
fn short_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S%.3fZ").to_string()
}
