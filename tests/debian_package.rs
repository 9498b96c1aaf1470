//! The Debian package: `cargo deb` builds it, `dpkg` installs it into a throwaway root, the
//! installed binary runs (`--version`, `config check` of the installed conffile), everything
//! lands where Debian expects it, and `dpkg -r` then `dpkg --purge` take it all away again.
//!
//! The throwaway root is an empty directory with its own dpkg database: `dpkg --root DIR
//! --force-script-chrootless` runs the maintainer scripts on this host with `DPKG_ROOT=DIR`
//! (they only write under `$DPKG_ROOT` and call systemctl only when it is empty), and
//! `--force-depends` because that root holds no libc6 or nftables: the test checks instead that
//! the package's Depends name them. Nothing outside the temporary directory is written.
//!
//! Needs root (file ownership in the package), `dpkg` and `cargo-deb` (`cargo install --locked
//! cargo-deb`, which scripts/deps does in CI); it builds a release binary, a few minutes on a
//! small machine. Skips with a printed reason otherwise, unless `PORTWARDEN_E2E=1`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cargo_deb_available() -> bool {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn ok(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn dpkg(root: &Path, args: &[&str]) -> Output {
    Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .arg("--force-script-chrootless")
        .args(args)
        .env_remove("DPKG_ROOT")
        .output()
        .unwrap()
}

/// Every file (not directory) under `root`, outside dpkg's own database.
fn files_outside_dpkg_db(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.starts_with(root.join("var/lib/dpkg")) {
                continue;
            }
            if p.is_dir() && !p.is_symlink() {
                walk(&p, root, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

#[test]
fn the_package_installs_runs_and_removes_cleanly() {
    if !common::e2e_ready("debian_package", &["dpkg", "dpkg-deb"]) {
        return;
    }
    if !cargo_deb_available() {
        let why = "debian_package: needs cargo-deb (cargo install --locked cargo-deb)";
        if std::env::var("PORTWARDEN_E2E").as_deref() == Ok("1") {
            panic!("PORTWARDEN_E2E=1 but {why}");
        }
        eprintln!("SKIPPED {why} (set PORTWARDEN_E2E=1 to make this a failure)");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let out_dir = work.path().join("deb");
    std::fs::create_dir(&out_dir).unwrap();
    let started = std::time::Instant::now();
    ok(
        "cargo deb",
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["deb", "--locked", "--strip", "--output"])
            .arg(&out_dir)
            .output()
            .unwrap(),
    );
    println!("cargo deb: {:.0} s", started.elapsed().as_secs_f64());
    let deb = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("cargo deb made no .deb");
    println!(
        "{}: {} KiB",
        deb.display(),
        std::fs::metadata(&deb).unwrap().len() / 1024
    );
    let depends = ok(
        "dpkg-deb -f",
        Command::new("dpkg-deb")
            .arg("-f")
            .arg(&deb)
            .arg("Depends")
            .output()
            .unwrap(),
    );
    assert!(
        depends.contains("libc6") && depends.contains("nftables"),
        "Depends: {depends}"
    );

    // The throwaway root and its dpkg database.
    let root = work.path().join("root");
    std::fs::create_dir_all(root.join("var/lib/dpkg/updates")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/dpkg/info")).unwrap();
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    let deb_s = deb.to_str().unwrap();
    ok("dpkg -i", dpkg(&root, &["--force-depends", "-i", deb_s]));

    // Where everything landed.
    let exe = root.join("usr/sbin/portwarden");
    assert_eq!(
        std::fs::metadata(&exe).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    for f in [
        "usr/share/man/man8/portwarden.8.gz",
        "usr/share/man/man8/portwarden-scan.8.gz",
        "usr/share/bash-completion/completions/portwarden",
        "usr/share/zsh/vendor-completions/_portwarden",
        "usr/share/fish/vendor_completions.d/portwarden.fish",
        "usr/lib/systemd/system/portwarden.service",
        "usr/share/doc/portwarden/guide.md",
        "usr/share/doc/portwarden/copyright",
        "etc/portwarden/portwarden.toml",
        "etc/cron.d/portwarden",
    ] {
        assert!(root.join(f).is_file(), "{f} not installed");
    }
    let state = std::fs::metadata(root.join("var/lib/portwarden")).unwrap();
    assert!(state.is_dir());
    assert_eq!(
        state.permissions().mode() & 0o7777,
        0o700,
        "postinst: /var/lib/portwarden"
    );
    // Installed, not enabled: no wants/ link anywhere; the cron job is commented out.
    assert!(!root.join("etc/systemd").exists(), "the unit was enabled");
    let cron = std::fs::read_to_string(root.join("etc/cron.d/portwarden")).unwrap();
    assert!(
        cron.lines().all(|l| !l.trim_start().starts_with('*')),
        "an active cron job:\n{cron}"
    );
    assert!(cron.contains(
        "# * * * * * root test -x /usr/sbin/portwarden && /usr/sbin/portwarden run --once"
    ));
    let conffiles = ok(
        "dpkg-query",
        Command::new("dpkg-query")
            .arg(format!(
                "--admindir={}",
                root.join("var/lib/dpkg").display()
            ))
            .args(["-W", "-f=${Conffiles}", "portwarden"])
            .output()
            .unwrap(),
    );
    assert!(
        conffiles.contains("/etc/portwarden/portwarden.toml")
            && conffiles.contains("/etc/cron.d/portwarden"),
        "conffiles: {conffiles}"
    );

    // The installed binary runs, and accepts the installed configuration.
    let version = ok(
        "portwarden --version",
        Command::new(&exe).arg("--version").output().unwrap(),
    );
    assert_eq!(
        version.trim(),
        format!("portwarden {}", env!("CARGO_PKG_VERSION"))
    );
    let conf = root.join("etc/portwarden/portwarden.toml");
    let check = ok(
        "portwarden config check",
        Command::new(&exe)
            .args(["config", "check", "--config"])
            .arg(&conf)
            .output()
            .unwrap(),
    );
    assert_eq!(check.trim(), format!("{}: OK", conf.display()));
    println!("installed: {}", version.trim());

    // Remove: the program goes, the configuration and the state stay (Debian policy).
    ok("dpkg -r", dpkg(&root, &["-r", "portwarden"]));
    assert!(!exe.exists());
    assert!(!root.join("usr/share/man/man8/portwarden.8.gz").exists());
    assert!(
        !root
            .join("usr/lib/systemd/system/portwarden.service")
            .exists()
    );
    assert!(conf.exists(), "remove took the conffile");
    assert!(
        root.join("var/lib/portwarden").is_dir(),
        "remove took the state"
    );
    // Purge: nothing is left but dpkg's database and empty directories.
    ok("dpkg --purge", dpkg(&root, &["--purge", "portwarden"]));
    let left = files_outside_dpkg_db(&root);
    assert!(left.is_empty(), "left after purge: {left:?}");
    assert!(!root.join("var/lib/portwarden").exists());
    let status = std::fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap();
    assert!(!status.contains("Package: portwarden"), "{status}");
}
