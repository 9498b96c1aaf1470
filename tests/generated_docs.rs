//! The checked-in man pages (`docs/man/`) and shell completions (`completions/`) are exactly
//! what the current clap definition generates: CI fails when a flag changes and they were not
//! regenerated. To regenerate:
//!
//! ```sh
//! cargo run -- generate man docs/man && cargo run -- generate completions completions
//! cargo run -- generate package debian
//! ```
//!
//! The same holds for the unit and cron file the Debian package installs (`debian/`), which
//! are what `systemd install` and `cron install` write, for `/usr/sbin/portwarden`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// `partial`: the checked-in directory also holds hand-written files (debian/); compare only
/// the generated ones.
fn check_current(what: &str, checked_in: &str, partial: bool) {
    let dir = tempfile::tempdir().unwrap();
    let out = common::portwarden(dir.path())
        .args(["generate", what])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = files(&dir.path().join("out"));
    let mut repo = files(&Path::new(env!("CARGO_MANIFEST_DIR")).join(checked_in));
    if partial {
        repo.retain(|name, _| fresh.contains_key(name));
    }
    let regenerate = "regenerate: cargo run -- generate man docs/man && cargo run -- generate completions completions && cargo run -- generate package debian";
    assert_eq!(
        fresh.keys().collect::<Vec<_>>(),
        repo.keys().collect::<Vec<_>>(),
        "the files of {checked_in}/ differ; {regenerate}"
    );
    for (name, bytes) in &fresh {
        assert!(
            repo[name] == *bytes,
            "{checked_in}/{name} is out of date; {regenerate}"
        );
    }
}

#[test]
fn man_pages_are_current() {
    check_current("man", "docs/man", false);
    let main = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/man/portwarden.8"),
    )
    .unwrap();
    assert!(
        main.contains(".SH \"EXIT STATUS\""),
        "no exit codes in the man page"
    );
    assert!(main.contains(".TH portwarden 8"), "not section 8");
}

#[test]
fn completions_are_current() {
    check_current("completions", "completions", false);
    // The bash one is at least valid bash.
    if portwarden::netns::on_path("bash") {
        let status = std::process::Command::new("bash")
            .arg("-n")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/portwarden.bash"))
            .status()
            .unwrap();
        assert!(status.success());
    }
}

#[test]
fn package_files_are_current() {
    check_current("package", "debian", true);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("debian");
    let unit = std::fs::read_to_string(dir.join("portwarden.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/sbin/portwarden daemon"),
        "{unit}"
    );
}
