//! `portwarden scan [--json] [--explain] [--html FILE] [--prefix P] FILE...`: offline forensics
//! over log files. A skin over [`crate::report`]: it builds the settings from the config and the
//! flags, calls [`report::scan_files`], and prints the table, the JSON or writes the HTML page.
//!
//! Every rejected reason comes with the first line it was given for (file and line number, in
//! the JSON's `rejected_samples` and with `--explain`): an operator whose format is not
//! understood sees which lines and why. A file that cannot be read to its end is named (stderr,
//! the JSON's `errors`, an `INCOMPLETE` line), the rest is reported, and the exit code is 66.
//!
//! Success and failure of a probe: on another host's log, this host's listening sockets say
//! nothing, so only the configured `[detect] served_ports` count as served, unless `--local`
//! asks to read this host's `/proc/net` as well.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::Context;
use crate::config::LogPrefix;
use crate::detect::ServedPorts;
use crate::report::{self, ScanSettings};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML report (timeline, scan types, ports, findings) here.
    #[arg(long, value_name = "REPORT")]
    pub html: Option<PathBuf>,
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
        let local = ServedPorts::from_kernel()
            .context("reading this host's listening ports from /proc/net")?;
        served.extend(local.iter());
    }
    let settings = ScanSettings {
        log,
        detect: ctx.config.detect.clone(),
        served: ServedPorts::new(served),
        timeline: args.html.is_some(),
        now: ctx.clock.now(),
    };
    let progress = report::progress::for_stderr();
    let result = report::scan_files(&args.files, &settings, progress.as_ref());

    if let Some(path) = &args.html {
        let page = report::html::render(&result, ctx.clock.now());
        std::fs::write(path, page)
            .with_context(|| format!("writing the HTML report to {}", path.display()))?;
    }
    // Buffered: stdout is line-buffered, and a report of a few hundred scanners is tens of
    // thousands of lines, each a write(2) of its own (28 742 for the throughput bench's).
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &result)?;
        writeln!(out)?;
    } else {
        report::table::write_table(&mut out, &result)?;
        if args.explain {
            report::table::write_explain(&mut out, &result)?;
        }
        if !result.errors.is_empty() {
            let names: Vec<&str> = result.errors.iter().map(|e| e.error.as_str()).collect();
            writeln!(
                out,
                "INCOMPLETE: {} of {} file(s) could not be read to their end: {}",
                result.errors.len(),
                args.files.len(),
                names.join("; ")
            )?;
        }
    }
    out.flush()?;
    for e in &result.errors {
        eprintln!("portwarden: scan: cannot read all of {}", e.error);
    }
    Ok(if result.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(UNREADABLE)
    })
}

/// Exit code when some file could not be read: EX_NOINPUT. The report covers the rest.
pub const UNREADABLE: u8 = 66;
