//! The Grafana dashboard in `docs/grafana-portwarden.json` uses only metrics portwarden
//! exposes: every panel's PromQL (and the template variables' `label_values(...)`) is read,
//! its metric names are extracted, and each must be a sample name of the exposition the
//! library produces once every family has been fed. A dashboard naming a metric that does not
//! exist (a typo, a renamed family) fails this test.

use std::collections::BTreeSet;

use portwarden::metrics::{Metrics, sample_names};
use portwarden::parse::Reject;
use portwarden::record::{Evidence, Finding, FindingKind, ScanType};

const DASHBOARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/grafana-portwarden.json");

/// The exposition with every family fed once, as the engine and the daemon feed them.
fn exposition() -> String {
    let m = Metrics::new();
    let kmsg = m.source("kmsg:/dev/kmsg");
    kmsg.record(Ok(()));
    kmsg.record(Err(Reject::Untrusted));
    kmsg.probe_lag(0.01);
    kmsg.lost(1);
    let at = "2026-11-24T23:00:00Z".parse().unwrap();
    m.finding(&Finding {
        source: "198.51.100.7".parse().unwrap(),
        kind: FindingKind::FastScan,
        scan_type: ScanType::Syn,
        detected_at: at,
        evidence: Evidence {
            probes: 12,
            ports: 12,
            destinations: 1,
            failures: 12,
            successes: 0,
            records: 12,
            first_seen: at,
            last_seen: at,
            top_ports: Vec::new(),
        },
    });
    m.ban_added("scan", Some(0.003));
    m.active_bans(&[("banned4", 1), ("banned6", 0)]);
    m.checkpoint_committed(at);
    m.checkpoint_failed();
    m.encode().unwrap()
}

/// Remove the parts of a PromQL expression that hold no metric name: string literals,
/// label matchers `{...}`, ranges `[...]`, and the label lists of `by`, `without`, `on`,
/// `ignoring`, `group_left`, `group_right`.
fn strip(expr: &str) -> String {
    let mut out = String::new();
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                }
            }
            '{' => {
                for d in chars.by_ref() {
                    if d == '}' {
                        break;
                    }
                }
            }
            '[' => {
                for d in chars.by_ref() {
                    if d == ']' {
                        break;
                    }
                }
            }
            _ => out.push(c),
        }
    }
    // Label lists after grouping keywords.
    let mut result = String::new();
    let mut rest = out.as_str();
    'outer: while !rest.is_empty() {
        for kw in [
            "by",
            "without",
            "on",
            "ignoring",
            "group_left",
            "group_right",
        ] {
            if let Some(after) = rest.strip_prefix(kw) {
                let boundary_before = !result
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
                let trimmed = after.trim_start();
                if boundary_before
                    && trimmed.starts_with('(')
                    && let Some(close) = trimmed.find(')')
                {
                    rest = &trimmed[close + 1..];
                    result.push(' ');
                    continue 'outer;
                }
            }
        }
        let c = rest.chars().next().unwrap();
        result.push(c);
        rest = &rest[c.len_utf8()..];
    }
    result
}

/// The metric names of a PromQL expression.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "inf", "nan"];
    let text = strip(expr);
    let bytes = text.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < bytes.len()
                && ((bytes[i] as char).is_ascii_alphanumeric()
                    || bytes[i] == b'_'
                    || bytes[i] == b':')
            {
                i += 1;
            }
            let word = &text[start..i];
            let next = text[i..].trim_start().chars().next();
            let is_call = next == Some('(');
            let is_variable = start > 0 && bytes[start - 1] == b'$';
            if !is_call && !is_variable && !KEYWORDS.contains(&word.to_ascii_lowercase().as_str()) {
                names.insert(word.to_string());
            }
        } else if c.is_ascii_digit() || c == '.' {
            // A number (0.99, 60, 1e3): skip it whole.
            while i < bytes.len()
                && ((bytes[i] as char).is_ascii_alphanumeric() || bytes[i] == b'.')
            {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Every PromQL query of the dashboard: panel targets (rows' panels too) and the metric of
/// each `label_values(metric, label)` template query.
fn queries(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    fn panels(list: &serde_json::Value, out: &mut Vec<(String, String)>) {
        for p in list.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?").to_string();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((title.clone(), e.to_string()));
                }
            }
            panels(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dashboard["panels"], &mut out);
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let q = match &v["query"] {
            serde_json::Value::String(s) => s.clone(),
            other => other["query"].as_str().unwrap_or("").to_string(),
        };
        if let Some(args) = q.strip_prefix("label_values(") {
            let metric = args.split([',', ')']).next().unwrap_or("").trim();
            out.push((format!("variable {}", v["name"]), metric.to_string()));
        }
    }
    out
}

/// The names of `expr` that the exposition does not have.
fn unknown(expr: &str, exposed: &BTreeSet<String>) -> Vec<String> {
    metric_names(expr)
        .into_iter()
        .filter(|n| !exposed.contains(n))
        .collect()
}

#[test]
fn every_metric_the_dashboard_queries_is_exposed() {
    let text = std::fs::read_to_string(DASHBOARD).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let exposed = sample_names(&exposition());
    let queries = queries(&dashboard);
    assert!(queries.len() >= 12, "{queries:?}");
    let mut used = BTreeSet::new();
    let mut missing = Vec::new();
    for (panel, expr) in &queries {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{panel}: no metric in {expr}");
        for n in unknown(expr, &exposed) {
            missing.push(format!("{panel}: `{n}` in {expr}"));
        }
        used.extend(names);
    }
    assert!(
        missing.is_empty(),
        "the dashboard names metrics portwarden does not expose:\n{}\nexposed: {exposed:?}",
        missing.join("\n")
    );
    println!("{} queries, metrics used: {used:?}", queries.len());
    // The issue's families are all on the dashboard.
    for family in [
        "portwarden_records_total",
        "portwarden_records_rejected_total",
        "portwarden_probes_total",
        "portwarden_findings_total",
        "portwarden_bans_added_total",
        "portwarden_bans_lifted_total",
        "portwarden_bans_expired_total",
        "portwarden_bans_refused_total",
        "portwarden_active_bans",
        "portwarden_source_lag_seconds",
        "portwarden_ban_latency_seconds_bucket",
        "portwarden_records_lost_total",
    ] {
        assert!(used.contains(family), "{family} is not on the dashboard");
    }
}

#[test]
fn the_checker_finds_the_names_and_flags_an_unknown_one() {
    let exposed = sample_names(&exposition());
    let cases: &[(&str, &[&str])] = &[
        (
            r#"sum by (source) (rate(portwarden_records_total{instance=~"$instance"}[$__rate_interval]))"#,
            &["portwarden_records_total"],
        ),
        (
            r#"histogram_quantile(0.99, sum by (le) (rate(portwarden_ban_latency_seconds_bucket[5m])))"#,
            &["portwarden_ban_latency_seconds_bucket"],
        ),
        (
            "time() - max(portwarden_last_checkpoint_timestamp_seconds)",
            &["portwarden_last_checkpoint_timestamp_seconds"],
        ),
        (
            "portwarden_active_bans > 0 and on (instance) portwarden_build_info",
            &["portwarden_active_bans", "portwarden_build_info"],
        ),
        (
            "rate(portwarden_bans_total[5m]) * 60",
            &["portwarden_bans_total"],
        ),
    ];
    for (expr, want) in cases {
        let got: Vec<String> = metric_names(expr).into_iter().collect();
        assert_eq!(got, *want, "{expr}");
    }
    assert!(unknown("rate(portwarden_records_total[5m])", &exposed).is_empty());
    assert_eq!(
        unknown("rate(portwarden_bans_total[5m]) * 60", &exposed),
        ["portwarden_bans_total"],
        "a metric that does not exist must be flagged"
    );
    assert_eq!(
        unknown("portwarden_records", &exposed),
        ["portwarden_records"],
        "a counter is exposed by its _total sample only"
    );
}
