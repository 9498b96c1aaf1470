//! The HTML report of `portwarden scan --html FILE`: one self-contained page that a person
//! opens in any browser, mails, or attaches to a ticket.
//!
//! In: a [`ScanReport`]. Out: one HTML5 string. Sections: a summary, an SVG timeline of the
//! records of each scanner (one lane per source, a dot per time bucket, its area the number
//! of records, its colour the source's main scan type), the scan types, the most probed ports,
//! the table of scanners (one row per source) and the table of findings with their evidence.
//!
//! Self-contained means: inline CSS, inline SVG, no script, no external reference of any kind
//! (no `src=`, no `href=`, no fonts, no `http`), so it renders the same offline and leaks no
//! request when opened. Every text from the input (addresses, file names) is escaped.

use std::fmt::Write as _;

use jiff::Timestamp;

use super::table::short_time;
use super::{ScanReport, SourceReport};

/// Lanes drawn in the timeline; more scanners are listed in the tables and counted.
pub const MAX_LANES: usize = 100;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 200.0;
const RIGHT: f64 = 60.0;
const LANE: f64 = 22.0;
const TOP: f64 = 10.0;
const AXIS: f64 = 40.0;

/// Escape text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The colour of a scan type (the same in every plot and in the tables' swatches).
fn colour(scan_type: &str) -> &'static str {
    match scan_type {
        "SYN" => "#1f77b4",
        "FIN" => "#ff7f0e",
        "NULL" => "#2ca02c",
        "XMAS" => "#d62728",
        "ACK" => "#9467bd",
        "MAIMON" => "#8c564b",
        "SYNFIN" => "#e377c2",
        "RST" => "#7f7f7f",
        "TCP" => "#bcbd22",
        "UDP" => "#17becf",
        "ICMP" => "#6b8e23",
        _ => "#555555",
    }
}

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
.meta { color: #555; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #eef2f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.3em; }
svg text { font-family: system-ui, sans-serif; font-size: 12px; fill: #222; }
svg .grid { stroke: #ddd; }
svg .span { stroke: #bbb; stroke-width: 2; }
";

/// Render the whole page. `generated` is printed in the header (the caller passes now).
pub fn render(report: &ScanReport, generated: Timestamp) -> String {
    let mut h = String::with_capacity(16 * 1024);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.push_str("<title>portwarden scan report</title>\n<style>");
    h.push_str(STYLE);
    h.push_str("</style>\n</head>\n<body>\n<h1>portwarden scan report</h1>\n");
    summary(&mut h, report, generated);
    timeline(&mut h, report);
    scan_types(&mut h, report);
    ports(&mut h, report);
    scanners_table(&mut h, report);
    findings_table(&mut h, report);
    h.push_str("</body>\n</html>\n");
    h
}

fn summary(h: &mut String, r: &ScanReport, generated: Timestamp) {
    let sessions: u32 = r.scanners.iter().map(|s| s.sessions).sum();
    let files: Vec<String> = r
        .files
        .iter()
        .map(|f| format!("<code>{}</code>", escape(&f.display().to_string())))
        .collect();
    let rejected: Vec<String> = r
        .rejected
        .iter()
        .map(|(k, v)| format!("{}={v}", escape(k.as_str())))
        .collect();
    let _ = writeln!(
        h,
        "<p class=\"meta\" id=\"summary\"><strong>{} scanner(s)</strong> in {} session(s); \
         {} line(s) read, {} LOG record(s) parsed, rejected: {}.<br>Files: {}.<br>\
         Generated {} by portwarden {}.</p>",
        r.scanners.len(),
        sessions,
        r.lines,
        r.records,
        if rejected.is_empty() {
            "none".to_string()
        } else {
            rejected.join(" ")
        },
        files.join(", "),
        escape(&short_time(generated)),
        env!("CARGO_PKG_VERSION"),
    );
    if r.untallied_sources > 0 {
        let _ = writeln!(
            h,
            "<p class=\"meta\">{} source(s) beyond <code>[detect] max_sources</code> are \
             reported from their findings only (no timeline).</p>",
            r.untallied_sources
        );
    }
}

/// Time labels: the shortest format that tells the ticks of `span_us` apart.
fn tick_label(t: Timestamp, span_us: i64) -> String {
    let fmt = if span_us < 10_000_000 {
        "%H:%M:%S%.3f"
    } else if span_us < 86_400_000_000 {
        "%H:%M:%S"
    } else {
        "%m-%d %H:%M"
    };
    t.strftime(fmt).to_string()
}

fn timeline(h: &mut String, r: &ScanReport) {
    h.push_str("<section id=\"timeline\">\n<h2>Timeline of probes per scanner</h2>\n");
    if r.scanners.is_empty() {
        h.push_str("<p>No scanners found: nothing to plot.</p>\n</section>\n");
        return;
    }
    let lanes: Vec<(&SourceReport, &super::Timeline)> = r
        .scanners
        .iter()
        .zip(&r.timelines)
        .take(MAX_LANES)
        .collect();
    let t0 = lanes
        .iter()
        .map(|(s, _)| s.first_seen.as_microsecond())
        .min()
        .unwrap_or(0);
    let t1 = lanes
        .iter()
        .map(|(s, _)| s.last_seen.as_microsecond())
        .max()
        .unwrap_or(0);
    // A scan within one instant still gets a visible axis: one second around it.
    let (t0, t1) = if t1 - t0 < 1_000 {
        (t0 - 500_000, t1 + 500_000)
    } else {
        (t0, t1)
    };
    let span = (t1 - t0) as f64;
    let plot = WIDTH - LEFT - RIGHT;
    // A margin of the largest dot's radius on both sides, so no dot covers a label.
    let pad = 10.0;
    let x = |t: i64| LEFT + pad + ((t - t0) as f64 / span).clamp(0.0, 1.0) * (plot - 2.0 * pad);
    let height = TOP + LANE * lanes.len() as f64 + AXIS;
    let max_count = lanes
        .iter()
        .flat_map(|(_, tl)| tl.counts.values().copied())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let _ = writeln!(
        h,
        "<svg id=\"timeline-plot\" role=\"img\" aria-label=\"records per scanner over time\" \
         width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\">"
    );
    // Vertical grid and time axis: five ticks.
    let axis_y = TOP + LANE * lanes.len() as f64;
    for k in 0..=4 {
        let t = t0 + (t1 - t0) * k / 4;
        let xt = x(t);
        let _ = writeln!(
            h,
            "<line class=\"grid\" x1=\"{xt:.1}\" y1=\"{TOP}\" x2=\"{xt:.1}\" y2=\"{axis_y}\"/>\
             <text x=\"{xt:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            axis_y + 16.0,
            escape(&tick_label(
                Timestamp::from_microsecond(t).unwrap_or(Timestamp::UNIX_EPOCH),
                t1 - t0
            )),
        );
    }
    let _ = writeln!(
        h,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">time (UTC), from {} to {}</text>",
        LEFT + plot / 2.0,
        axis_y + 34.0,
        escape(&short_time(
            Timestamp::from_microsecond(t0).unwrap_or(Timestamp::UNIX_EPOCH)
        )),
        escape(&short_time(
            Timestamp::from_microsecond(t1).unwrap_or(Timestamp::UNIX_EPOCH)
        )),
    );
    for (i, (s, tl)) in lanes.iter().enumerate() {
        let y = TOP + LANE * i as f64 + LANE / 2.0;
        let main_type = s.scan_types.first().copied().unwrap_or("OTHER");
        let c = colour(main_type);
        let _ = writeln!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <line class=\"span\" x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>",
            LEFT - 8.0,
            y + 4.0,
            escape(&s.source.to_string()),
            x(s.first_seen.as_microsecond()),
            x(s.last_seen.as_microsecond()),
        );
        let first = s.first_seen.as_microsecond();
        let last = s.last_seen.as_microsecond();
        for (&bucket, &n) in &tl.counts {
            let centre = (bucket.saturating_mul(tl.bucket_us))
                .saturating_add(tl.bucket_us / 2)
                .clamp(first, last);
            let radius = 2.5 + 6.5 * (n as f64 / max_count).sqrt();
            let _ = writeln!(
                h,
                "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"{radius:.1}\" fill=\"{c}\" \
                 fill-opacity=\"0.75\"><title>{}: {n} record(s) around {}</title></circle>",
                x(centre),
                escape(&s.source.to_string()),
                escape(&short_time(
                    Timestamp::from_microsecond(centre).unwrap_or(Timestamp::UNIX_EPOCH)
                )),
            );
        }
    }
    h.push_str("</svg>\n");
    if r.scanners.len() > MAX_LANES {
        let _ = writeln!(
            h,
            "<p class=\"meta\">The first {MAX_LANES} scanners are plotted; all {} are in the tables below.</p>",
            r.scanners.len()
        );
    }
    h.push_str("<p class=\"meta\">One lane per scanner; a dot's area is the number of LOG records in its time bucket, its colour the scanner's main scan type; the grey line spans first to last record.</p>\n</section>\n");
}

/// A horizontal bar chart: `(label, value, colour)`.
fn bars(h: &mut String, id: &str, label: &str, rows: &[(String, u64, &str)]) {
    if rows.is_empty() {
        h.push_str("<p>None.</p>\n");
        return;
    }
    let max = rows.iter().map(|r| r.1).max().unwrap_or(1).max(1) as f64;
    let row_h = 20.0;
    let height = row_h * rows.len() as f64 + 10.0;
    let left = 110.0;
    let plot = 600.0;
    let _ = writeln!(
        h,
        "<svg id=\"{id}\" role=\"img\" aria-label=\"{}\" width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\">",
        escape(label),
        left + plot + 80.0,
        left + plot + 80.0
    );
    for (i, (name, value, c)) in rows.iter().enumerate() {
        let y = 5.0 + row_h * i as f64;
        let w = (*value as f64 / max * plot).max(1.0);
        let _ = writeln!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{left}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{c}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{value}</text>",
            left - 6.0,
            y + 13.0,
            escape(name),
            y + 2.0,
            row_h - 4.0,
            left + w + 6.0,
            y + 13.0,
        );
    }
    h.push_str("</svg>\n");
}

fn scan_types(h: &mut String, r: &ScanReport) {
    h.push_str("<section id=\"scan-types\">\n<h2>Scan types</h2>\n");
    let rows: Vec<(String, u64, &str)> = r
        .scan_types
        .iter()
        .map(|t| (t.scan_type.to_string(), t.records, colour(t.scan_type)))
        .collect();
    bars(h, "scan-types-plot", "records by scan type", &rows);
    h.push_str("<p class=\"meta\">LOG records of the scanners by the scan technique their TCP flags betray (SYN: <code>-sS</code>/<code>-sT</code>; FIN, NULL, XMAS, MAIMON: stealth scans; ACK: <code>-sA</code>/<code>-sW</code>).</p>\n</section>\n");
}

fn ports(h: &mut String, r: &ScanReport) {
    h.push_str("<section id=\"ports\">\n<h2>Most-probed ports</h2>\n");
    let rows: Vec<(String, u64, &str)> = r
        .top_ports
        .iter()
        .map(|p| (p.port.clone(), p.records, "#4a6fa5"))
        .collect();
    bars(h, "ports-plot", "most probed ports", &rows);
    if !r.top_ports.is_empty() {
        h.push_str(
            "<table id=\"ports-table\">\n<tr><th>port</th><th>records</th><th>scanners</th></tr>\n",
        );
        for p in &r.top_ports {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                escape(&p.port),
                p.records,
                p.scanners
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</section>\n");
}

fn swatch(scan_type: &str) -> String {
    format!(
        "<span class=\"swatch\" style=\"background:{}\"></span>{}",
        colour(scan_type),
        escape(scan_type)
    )
}

fn scanners_table(h: &mut String, r: &ScanReport) {
    h.push_str("<section id=\"scanners\">\n<h2>Scanners</h2>\n");
    if r.scanners.is_empty() {
        h.push_str("<p id=\"no-scanners\">No scanners found.</p>\n</section>\n");
        return;
    }
    h.push_str(
        "<table id=\"scanners-table\">\n<tr><th>source</th><th>rules</th><th>scan types</th>\
         <th>ports</th><th>records</th><th>sessions</th><th>first seen</th><th>last seen</th>\
         <th>most probed ports</th></tr>\n",
    );
    for s in &r.scanners {
        let types: Vec<String> = s.scan_types.iter().map(|t| swatch(t)).collect();
        let _ = writeln!(
            h,
            "<tr class=\"scanner\"><td class=\"source\">{}</td><td>{}</td><td>{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&s.source.to_string()),
            escape(&s.rules.join(", ")),
            types.join(" "),
            s.ports,
            s.records,
            s.sessions,
            escape(&short_time(s.first_seen)),
            escape(&short_time(s.last_seen)),
            escape(&s.top_ports.join(", ")),
        );
    }
    h.push_str("</table>\n</section>\n");
}

fn findings_table(h: &mut String, r: &ScanReport) {
    h.push_str("<section id=\"findings\">\n<h2>Findings and their evidence</h2>\n");
    if r.scanners.is_empty() {
        h.push_str("<p>No findings.</p>\n</section>\n");
        return;
    }
    h.push_str(
        "<table id=\"findings-table\">\n<tr><th>source</th><th>rule</th><th>scan type</th>\
         <th>detected at</th><th>distinct probes</th><th>ports</th><th>destinations</th>\
         <th>failed / served</th><th>records</th><th>first seen</th><th>last seen</th>\
         <th>most probed ports</th></tr>\n",
    );
    for s in &r.scanners {
        for f in &s.findings {
            let _ = writeln!(
                h,
                "<tr class=\"finding\"><td class=\"source\">{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{} / {}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td></tr>",
                escape(&s.source.to_string()),
                escape(f.kind),
                swatch(f.scan_type),
                escape(&short_time(f.detected_at)),
                f.probes,
                f.ports,
                f.destinations,
                f.failures,
                f.successes,
                f.records,
                escape(&short_time(f.first_seen)),
                escape(&short_time(f.last_seen)),
                escape(&f.top_ports.join(", ")),
            );
        }
    }
    h.push_str("</table>\n<p class=\"meta\">A probe is the first packet to a distinct (destination, protocol, port); it failed when nothing served that port. One row per session that reached a verdict.</p>\n</section>\n");
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::report::{FindingRow, PortTally, Timeline, TypeCount};

    fn report(source: &str) -> ScanReport {
        let t = Timestamp::from_second(1_800_000_000).unwrap();
        let finding = FindingRow {
            kind: "fast_scan",
            scan_type: "SYN",
            ports: 12,
            probes: 12,
            destinations: 1,
            failures: 12,
            successes: 0,
            records: 12,
            first_seen: t,
            last_seen: t,
            detected_at: t,
            top_ports: vec!["tcp/22".into()],
        };
        let mut counts = BTreeMap::new();
        counts.insert(1_800_000_000, 12);
        ScanReport {
            scanners: vec![SourceReport {
                source: source.parse().unwrap(),
                rules: vec!["fast_scan"],
                scan_types: vec!["SYN"],
                ports: 12,
                records: 12,
                sessions: 1,
                first_seen: t,
                last_seen: t,
                top_ports: vec!["tcp/22".into()],
                findings: vec![finding],
            }],
            files: vec!["/tmp/<evil>&\"log\".txt".into()],
            lines: 12,
            records: 12,
            rejected: BTreeMap::new(),
            rejected_samples: BTreeMap::new(),
            overlong_lines: 0,
            untallied_sources: 0,
            scan_types: vec![TypeCount {
                scan_type: "SYN",
                records: 12,
            }],
            top_ports: vec![PortTally {
                port: "tcp/22".into(),
                records: 1,
                scanners: 1,
            }],
            timelines: vec![Timeline {
                bucket_us: 1_000_000,
                counts,
            }],
        }
    }

    #[test]
    fn the_page_is_self_contained_and_escaped() {
        let page = render(&report("10.250.0.2"), Timestamp::UNIX_EPOCH);
        for banned in [
            "<script", "src=", "href=", "http:", "https:", "url(", "@import",
        ] {
            assert!(!page.contains(banned), "{banned} in the page");
        }
        assert!(page.contains("/tmp/&lt;evil&gt;&amp;&quot;log&quot;.txt"));
        assert!(!page.contains("<evil>"));
        assert!(page.contains("<td class=\"source\">10.250.0.2</td>"));
        assert_eq!(page.matches("<circle ").count(), 1);
        assert!(page.contains("id=\"scanners-table\""));
        assert!(page.contains("id=\"findings-table\""));
    }

    #[test]
    fn an_empty_report_still_renders() {
        let mut r = report("10.250.0.2");
        r.scanners.clear();
        r.timelines.clear();
        r.scan_types.clear();
        r.top_ports.clear();
        let page = render(&r, Timestamp::UNIX_EPOCH);
        assert!(page.contains("No scanners found"));
        assert!(page.ends_with("</html>\n"));
    }

    #[test]
    fn escape_covers_markup_characters() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
    }
}
