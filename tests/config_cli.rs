//! `portwarden config check|show|print-default`, `--log-format` and the exit codes, through
//! the real binary.

mod common;

use std::process::Output;

fn run(state: &std::path::Path, args: &[&str]) -> Output {
    common::portwarden(state).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_lists_every_problem_with_file_line_key_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("portwarden.toml");
    std::fs::write(
        &file,
        "# a comment\n[detect]\nwindw = \"60s\"\nfast_failures = 0\n\n[ban]\nduration = \"2h\"\nmax_duration = \"1h\"\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let out = run(dir.path(), &["config", "check", "--config", f]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with(&format!("{f}:3: key `detect.windw`: unknown field")),
        "{stdout}"
    );
    assert!(lines[0].contains("fix: did you mean `window`?"), "{stdout}");
    assert!(
        lines[1].starts_with(&format!("{f}:4: key `detect.fast_failures`")),
        "{stdout}"
    );
    assert!(
        lines[1].contains("fix: give a number of 1 or more"),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with(&format!("{f}:8: key `ban.max_duration`")),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).contains("3 problem(s)"),
        "{}",
        text(&out.stderr)
    );

    // The example file is fine; so is no file at all (built-in defaults).
    let example = format!(
        "{}/docs/portwarden.example.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = run(dir.path(), &["config", "check", "--config", &example]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).ends_with(": OK\n"));
}

#[test]
fn print_default_is_the_documented_example() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["config", "print-default"]);
    assert!(out.status.success());
    let example = std::fs::read(format!(
        "{}/docs/portwarden.example.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert_eq!(out.stdout, example);
}

#[test]
fn show_names_where_each_value_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(&file, "[detect]\n\nwindow = \"2m\"\n").unwrap();
    let f = file.to_str().unwrap();
    let out = common::portwarden(dir.path())
        .env("PORTWARDEN_STATE_DIR", "/srv/state-from-env")
        .args(["config", "show", "--config", f])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(&format!("# config file: {f} (flag --config)")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("window = \"2m\"  # file {f}:3\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains("fast_failures = 6  # default\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("state_dir = \"/srv/state-from-env\"  # environment PORTWARDEN_STATE_DIR"),
        "{stdout}"
    );
    let out = common::portwarden(dir.path())
        .args(["config", "show", "--config", f, "--state-dir", "/srv/flag"])
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains("state_dir = \"/srv/flag\"  # flag --state-dir"),
        "{}",
        text(&out.stdout)
    );
    // The environment's config file, when no flag names one.
    let out = common::portwarden(dir.path())
        .env("PORTWARDEN_CONFIG", f)
        .args(["config", "show"])
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains("(environment PORTWARDEN_CONFIG)"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn json_log_format_writes_one_object_per_line_and_text_has_no_colour_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let example = format!(
        "{}/docs/portwarden.example.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = run(
        dir.path(),
        &[
            "-v",
            "--log-format",
            "json",
            "config",
            "check",
            "--config",
            &example,
        ],
    );
    assert!(out.status.success());
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(!lines.is_empty(), "no log line");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(v["level"], "INFO", "{line}");
        assert_eq!(v["fields"]["message"], "checking the config file", "{line}");
    }
    let out = run(dir.path(), &["-v", "config", "check", "--config", &example]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("INFO") && stderr.contains("checking the config file"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\x1b'),
        "colour codes off a terminal: {stderr:?}"
    );
}

#[test]
fn documented_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    // 2: usage.
    let out = run(dir.path(), &["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(dir.path(), &["--log-format", "xml", "config", "show"]);
    assert_eq!(out.status.code(), Some(2));
    // 1: an error, with a message.
    let out = run(dir.path(), &["ban", "not-an-address"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("portwarden: error: "));
    // 66: scan could not read a file to its end (the rest is reported).
    let out = run(dir.path(), &["scan", "/nonexistent/kern.log"]);
    assert_eq!(out.status.code(), Some(66));
    assert!(text(&out.stderr).contains("/nonexistent/kern.log"));
    // The codes are in --help (and so in the man page).
    let out = run(dir.path(), &["--help"]);
    let help = text(&out.stdout);
    for code in [
        "  0   success",
        "  1   error",
        "  2   usage error",
        "  66  `scan`",
        "  75  `run --once`",
    ] {
        assert!(help.contains(code), "{code} not in --help:\n{help}");
    }
}
