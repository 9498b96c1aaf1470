//! The generated Fail2Ban filter, judged by Fail2Ban itself: `fail2ban-regex` over the captured
//! samples and the forged lines of `testdata/fail2ban/` (see its README for every line).
//!
//! In: the filter written by the real binary (`portwarden fail2ban install --dir TMP`). Out:
//! exact `Lines: N lines, I ignored, M matched, K missed` counts per file, and the addresses
//! Fail2Ban would ban. Needs only `fail2ban-regex`, not root.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Whether fail2ban-regex is here; a missing tool is a failure under PORTWARDEN_E2E=1.
fn ready(test: &str) -> bool {
    if portwarden::netns::on_path("fail2ban-regex") {
        return true;
    }
    if std::env::var("PORTWARDEN_E2E").as_deref() == Ok("1") {
        panic!("PORTWARDEN_E2E=1 but {test}: needs `fail2ban-regex` on PATH");
    }
    eprintln!("SKIPPED {test}: needs `fail2ban-regex` on PATH");
    false
}

/// Writes the filter with the real binary and returns its path (inside `dir`).
fn generated_filter(dir: &Path, extra: &[&str]) -> PathBuf {
    let out = common::portwarden(&dir.join("state"))
        .args(["fail2ban", "install", "--dir"])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "install failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("filter.d/portwarden.conf")
}

#[derive(Debug, PartialEq)]
struct Counts {
    lines: u64,
    ignored: u64,
    matched: u64,
    missed: u64,
}

/// Runs fail2ban-regex verbosely; returns the counts and its whole output.
fn fail2ban_regex(log: &Path, filter: &Path) -> (Counts, String) {
    let out = Command::new("fail2ban-regex")
        .args(["-v", "--print-all-missed"])
        .arg(log)
        .arg(filter)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "fail2ban-regex failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (parse_counts(&text), text)
}

/// `Lines: 21 lines, 0 ignored, 16 matched, 5 missed`.
fn parse_counts(text: &str) -> Counts {
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Lines: "))
        .unwrap_or_else(|| panic!("no `Lines:` in fail2ban-regex output:\n{text}"));
    let numbers: Vec<u64> = line
        .split(',')
        .map(|part| part.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(numbers.len(), 4, "{line}");
    Counts {
        lines: numbers[0],
        ignored: numbers[1],
        matched: numbers[2],
        missed: numbers[3],
    }
}

/// The addresses in fail2ban-regex's `-v` list of matches (`|      10.250.0.2  Tue Nov ...`).
fn matched_addresses(text: &str) -> std::collections::BTreeSet<String> {
    let start = text.find("Failregex:").expect("a Failregex section");
    let end = text[start..]
        .find("Ignoreregex:")
        .map_or(text.len(), |e| start + e);
    text[start..end]
        .lines()
        .filter_map(|l| l.strip_prefix("|      "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn counts(lines: u64, matched: u64) -> Counts {
    Counts {
        lines,
        ignored: 0,
        matched,
        missed: lines - matched,
    }
}

#[test]
fn counts_are_parsed_exactly() {
    assert_eq!(
        parse_counts("x\nLines: 21 lines, 0 ignored, 16 matched, 5 missed\n"),
        counts(21, 16)
    );
}

#[test]
fn every_kernel_scan_record_matches_and_bans_its_source() {
    if !ready("every_kernel_scan_record_matches_and_bans_its_source") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let filter = generated_filter(dir.path(), &[]);
    let cases: [(&str, Counts, &[&str]); 3] = [
        (
            "testdata/samples/syslog-rfc3339-nmap-sS-seed-12ports.txt",
            counts(12, 12),
            &["10.250.0.2"],
        ),
        (
            "testdata/fail2ban/bsd-kern.log",
            counts(60, 60),
            &["10.250.0.2", "10.250.0.77", "10.250.0.78"],
        ),
        // The kernel prints fd00:0250:0000:...:0002; Fail2Ban bans the normalised address.
        (
            "testdata/fail2ban/ipv6-kern.log",
            counts(8, 8),
            &["fd00:250::2"],
        ),
    ];
    for (file, want, addrs) in cases {
        let (got, text) = fail2ban_regex(&repo(file), &filter);
        assert_eq!(got, want, "{file}:\n{text}");
        let want_addrs: std::collections::BTreeSet<String> =
            addrs.iter().map(|a| a.to_string()).collect();
        assert_eq!(matched_addresses(&text), want_addrs, "{file}");
    }
}

#[test]
fn forged_user_space_lines_and_noise_never_match() {
    if !ready("forged_user_space_lines_and_noise_never_match") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let filter = generated_filter(dir.path(), &[]);
    let (got, text) = fail2ban_regex(&repo("testdata/fail2ban/forged-and-noise.log"), &filter);
    assert_eq!(got, counts(17, 0), "{text}");
}

#[test]
fn logger_dash_t_kernel_in_syslog_is_indistinguishable_as_documented() {
    if !ready("logger_dash_t_kernel_in_syslog_is_indistinguishable_as_documented") {
        return;
    }
    // Not a wish but a limit: this is why the jail reads kern.log or the kernel's journal only.
    let dir = tempfile::tempdir().unwrap();
    let filter = generated_filter(dir.path(), &[]);
    let (got, _) = fail2ban_regex(
        &repo("testdata/fail2ban/syslog-logger-forgery.log"),
        &filter,
    );
    assert_eq!(got, counts(1, 1));
}

#[test]
fn other_prefixes_are_escaped_and_match_only_their_own_lines() {
    if !ready("other_prefixes_are_escaped_and_match_only_their_own_lines") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The seed lab's prefix has no space before IN=.
    let seed = std::fs::read_to_string(repo(
        "testdata/samples/syslog-rfc3339-nmap-sS-seed-12ports.txt",
    ))
    .unwrap()
    .replace("] portwarden: IN=", "] SYN_SCAN_ATTEMPT--IN=");
    let seed_log = dir.path().join("seed-kern.log");
    std::fs::write(&seed_log, &seed).unwrap();

    let seed_dir = dir.path().join("seed");
    let seed_filter = generated_filter(&seed_dir, &["--prefix", "SYN_SCAN_ATTEMPT--"]);
    assert_eq!(fail2ban_regex(&seed_log, &seed_filter).0, counts(12, 12));
    let bsd = repo("testdata/fail2ban/bsd-kern.log");
    assert_eq!(fail2ban_regex(&bsd, &seed_filter).0, counts(60, 0));

    // `[UFW BLOCK] ` has regex metacharacters and a space at the end.
    let ufw_dir = dir.path().join("ufw");
    let ufw_filter = generated_filter(&ufw_dir, &["--prefix", "[UFW BLOCK] "]);
    let (got, text) = fail2ban_regex(&repo("testdata/fail2ban/forged-and-noise.log"), &ufw_filter);
    assert_eq!(got, counts(17, 1), "{text}");
    assert_eq!(
        matched_addresses(&text),
        ["10.9.9.7".to_string()].into_iter().collect()
    );
    // The default filter refuses the seed's prefix.
    let default_filter = generated_filter(&dir.path().join("default"), &[]);
    assert_eq!(fail2ban_regex(&seed_log, &default_filter).0, counts(12, 0));
}
