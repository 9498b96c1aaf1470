//! The terminal table of `portwarden scan`: one row per source (its rules and scan types, total
//! distinct ports, records, sessions, first and last seen, most probed ports), then one summary
//! line with the parse counts.
//!
//! In: a [`ScanReport`]. Out: text on any writer. Columns are padded to their widest cell; the
//! last column is not padded, so lines carry no trailing blanks.

use std::io::Write;

use jiff::Timestamp;

use super::ScanReport;

/// Write the table and the summary line.
pub fn write_table(out: &mut impl Write, report: &ScanReport) -> std::io::Result<()> {
    if report.scanners.is_empty() {
        writeln!(out, "no scanners found")?;
    } else {
        let headers = [
            "SOURCE",
            "RULES",
            "TYPES",
            "PORTS",
            "RECORDS",
            "SESSIONS",
            "FIRST SEEN",
            "LAST SEEN",
            "TOP PORTS",
        ];
        let cells: Vec<[String; 9]> = report
            .scanners
            .iter()
            .map(|s| {
                [
                    s.source.to_string(),
                    s.rules.join(","),
                    s.scan_types.join(","),
                    s.ports.to_string(),
                    s.records.to_string(),
                    s.sessions.to_string(),
                    short_time(s.first_seen),
                    short_time(s.last_seen),
                    s.top_ports
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
        let line = |cols: &[&str]| -> String {
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
        writeln!(out, "{}", line(&headers))?;
        for row in &cells {
            let cols: Vec<&str> = row.iter().map(String::as_str).collect();
            writeln!(out, "{}", line(&cols))?;
        }
    }
    writeln!(out, "\n{}", summary_line(report))
}

/// `2 scanner(s); 30 line(s) read, 24 LOG record(s) parsed, rejected: untrusted=6`.
pub fn summary_line(report: &ScanReport) -> String {
    let rejected: Vec<String> = report
        .rejected
        .iter()
        .map(|(k, v)| format!("{}={v}", k.as_str()))
        .collect();
    format!(
        "{} scanner(s); {} line(s) read, {} LOG record(s) parsed, rejected: {}{}{}",
        report.scanners.len(),
        report.lines,
        report.records,
        if rejected.is_empty() {
            "none".to_string()
        } else {
            rejected.join(" ")
        },
        if report.overlong_lines > 0 {
            format!(", {} overlong line(s) skipped", report.overlong_lines)
        } else {
            String::new()
        },
        if report.untallied_sources > 0 {
            format!(
                ", {} source(s) beyond [detect] max_sources reported from their findings only",
                report.untallied_sources
            )
        } else {
            String::new()
        }
    )
}

/// `--explain`: per rejected reason, how many lines and the first one (file:line: text).
pub fn write_explain(out: &mut impl Write, report: &ScanReport) -> std::io::Result<()> {
    for (reason, n) in &report.rejected {
        if let Some(sample) = report.rejected_samples.get(reason) {
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
    Ok(())
}

/// `2026-11-24 23:06:53.947Z` (UTC): enough to read, exact enough to order.
pub fn short_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S%.3fZ").to_string()
}
