//! Shared helpers of the integration tests: the path of the built binary, and the gate of the
//! root-only end-to-end tests.
//!
//! A root-only test calls [`e2e_ready`] first. Where it cannot run (not root, a tool missing),
//! it prints why and returns `false` so the test returns early, unless `PORTWARDEN_E2E=1` is
//! set (CI sets it): then a missing capability is a failure, never a silent skip.

#![allow(dead_code)]

pub mod daemons;
pub mod fail2ban;

use std::path::PathBuf;
use std::process::Command;

/// The `portwarden` binary cargo built for this test run.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_portwarden"))
}

/// A `portwarden` command with an isolated config and state: no host file is read or written.
pub fn portwarden(state_dir: &std::path::Path) -> Command {
    let mut c = Command::new(bin());
    c.env("PORTWARDEN_STATE_DIR", state_dir)
        .env("PORTWARDEN_CONFIG", "/dev/null")
        .env_remove("RUST_LOG");
    c
}

/// Whether an end-to-end test can run here; see the module doc.
pub fn e2e_ready(test: &str, tools: &[&str]) -> bool {
    let mut missing = Vec::new();
    if !portwarden::netns::is_root() {
        missing.push("root".to_string());
    }
    for t in tools {
        if !portwarden::netns::on_path(t) {
            missing.push(format!("`{t}` on PATH"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let why = format!("{test}: needs {}", missing.join(", "));
    if std::env::var("PORTWARDEN_E2E").as_deref() == Ok("1") {
        panic!("PORTWARDEN_E2E=1 but {why}");
    }
    eprintln!("SKIPPED {why} (set PORTWARDEN_E2E=1 to make this a failure)");
    false
}

/// Parts of the automation end-to-end tests (rsyslogd, daemon, config, nmap).
pub mod lab;

/// A Prometheus scrape inside a namespace (the metrics end-to-end tests).
pub mod scrape;
