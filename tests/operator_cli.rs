//! The operator commands (`ban`, `unban`, `import`, `list`, `status`) driven through the real
//! binary, for what runs without root and without touching any firewall: input validation,
//! the allowlist refusal, `import --dry-run`, and `list`/`status` on an empty store when the
//! firewall cannot be reached (an `nft` path that does not exist). Root-only round trips through
//! a real nftables set in a network namespace live with the enforce tests.

mod common;

use std::path::Path;
use std::process::Output;

fn run(state: &Path, config: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = common::portwarden(state);
    if let Some(c) = config {
        cmd.env("PORTWARDEN_CONFIG", c);
    }
    cmd.args(args).output().expect("run portwarden")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A table no host has: the firewall calls of these tests fail cleanly, as root (the table
/// does not exist: netlink lookups only, nothing is written) or not (no CAP_NET_ADMIN).
const ABSENT_TABLE: &str = "pwtest_absent_table";

/// A config whose firewall cannot be reached: no nft, and a table that does not exist.
fn unreachable_firewall(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("portwarden.toml");
    std::fs::write(
        &path,
        format!(
            "[firewall]\nnft = \"/nonexistent/portwarden-test/nft\"\ntable = \"{ABSENT_TABLE}\"\n\
             [ban]\nallowlist_host = false\n"
        ),
    )
    .unwrap();
    path
}

/// The error of a firewall call on [`unreachable_firewall`].
fn is_unreachable(error: &str) -> bool {
    error.contains(&format!("table inet {ABSENT_TABLE} does not exist"))
        || error.contains("CAP_NET_ADMIN")
}

#[test]
fn bad_targets_are_named_and_nothing_is_touched() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    for args in [
        &["ban", "not-an-ip"][..],
        &["ban", "10.0.0.1/8"],
        &["ban", "192.0.2.300"],
        &["unban", "2001:db8::/129"],
    ] {
        let out = run(&state, None, args);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(&format!("`{}`", args[1])), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = run(&state, None, &["ban", "192.0.2.7", "--for", "forever"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("`forever`"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !state.exists(),
        "a rejected command must not create the state dir"
    );
}

#[test]
fn manual_ban_of_loopback_is_refused_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    // Default config: allowlist_host is on, so loopback is allowlisted.
    let out = run(&state, None, &["ban", "127.0.0.1"]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("allowlisted") && err.contains("--force"),
        "{err}"
    );
    assert!(!state.exists());
}

#[test]
fn import_dry_run_reports_lines_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let file = tmp.path().join("blocked_ips.txt");
    std::fs::write(
        &file,
        "# from the seed lab\n192.168.56.101\n\nnot-an-ip\n2001:db8::7\n192.168.56.101\n127.0.0.1\n",
    )
    .unwrap();
    let out = run(
        &state,
        None,
        &["import", file.to_str().unwrap(), "--dry-run"],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("blocked_ips.txt:4: `not-an-ip`"),
        "{stderr}"
    );
    assert!(stderr.contains("127.0.0.1/32 is allowlisted"), "{stderr}");
    assert!(
        stdout.contains("would ban 2 ")
            && stdout.contains("1 allowlisted")
            && stdout.contains("1 invalid line(s)")
            && stdout.contains("1 duplicate(s)"),
        "{stdout}"
    );
    assert!(!state.exists(), "dry run wrote state");
}

#[test]
fn list_json_on_an_empty_store_reports_the_firewall_error() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let config = unreachable_firewall(tmp.path());
    let out = run(&state, Some(&config), &["list", "--json"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("list --json is JSON");
    assert_eq!(v["bans"], serde_json::json!([]));
    assert_eq!(v["table"], format!("inet {ABSENT_TABLE}"));
    let fw_err = v["firewall_error"].as_str().expect("firewall_error");
    assert!(is_unreachable(fw_err), "{fw_err}");
    assert!(stderr.contains("cannot read the kernel set"), "{stderr}");
    // The store was created for the listing.
    assert!(state.join("state.db").exists());
}

#[test]
fn status_json_shows_store_and_firewall_error() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let config = unreachable_firewall(tmp.path());
    let out = run(&state, Some(&config), &["status", "--json"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("status --json is JSON");
    assert_eq!(v["store"]["live_bans"], 0);
    assert!(v["store"]["schema_version"].as_u64().unwrap() >= 2);
    assert_eq!(v["state_dir"], state.to_str().unwrap());
    assert_eq!(v["config_path"], config.to_str().unwrap());
    assert_eq!(v["firewall"]["ready"], false);
    // As root the table is looked up (netlink, read only) and found missing; without root the
    // lookup itself is refused.
    let state_or_error = format!("{} {}", v["firewall"]["state"], v["firewall"]["error"]);
    assert!(
        state_or_error.contains("missing") || is_unreachable(&state_or_error),
        "{state_or_error}"
    );
}

#[test]
fn dry_run_config_records_manual_bans_without_a_firewall() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let config = tmp.path().join("dry.toml");
    std::fs::write(
        &config,
        "[firewall]\nnft = \"/nonexistent/portwarden-test/nft\"\n[ban]\ndry_run = true\nallowlist_host = false\n",
    )
    .unwrap();
    let out = run(
        &state,
        Some(&config),
        &["ban", "198.51.100.7", "--for", "10m"],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("dry run"), "{stdout}");
    let out = run(&state, Some(&config), &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["store"]["last_run"]["mode"], "ban");
    // Dry-run bans are recorded but never live.
    assert_eq!(v["store"]["live_bans"], 0);
}
