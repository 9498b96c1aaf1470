//! `portwarden fail2ban print|install` through the real binary: what it prints, and that
//! `install` never overwrites an operator's edit without `--force`. No root needed.

mod common;

use std::process::Output;

fn run(state: &std::path::Path, args: &[&str]) -> Output {
    common::portwarden(state).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn print_shows_each_file_after_its_path_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("etc-fail2ban");
    let out = run(
        dir.path(),
        &[
            "fail2ban",
            "print",
            "--action",
            "portwarden",
            "--dir",
            target.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for path in [
        "filter.d/portwarden.conf",
        "jail.d/portwarden.conf",
        "action.d/portwarden-nftables.conf",
    ] {
        let header = format!("# ==> {} <==\n", target.join(path).display());
        assert!(stdout.contains(&header), "{header:?} missing:\n{stdout}");
    }
    assert!(stdout.contains("failregex = ^"));
    assert!(stdout.contains("action = portwarden-nftables\n"));
    assert!(!target.exists());
}

#[test]
fn install_is_idempotent_and_refuses_edited_files_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("f2b");
    let t = target.to_str().unwrap();
    let first = run(dir.path(), &["fail2ban", "install", "--dir", t]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let stdout = text(&first.stdout);
    assert_eq!(stdout.matches("created: ").count(), 2, "{stdout}");
    assert!(stdout.contains("fail2ban-client reload"));

    let again = run(dir.path(), &["fail2ban", "install", "--dir", t]);
    assert!(again.status.success());
    assert_eq!(text(&again.stdout).matches("unchanged: ").count(), 2);
    assert!(!text(&again.stdout).contains("reload"));

    let jail = target.join("jail.d/portwarden.conf");
    let edited = std::fs::read_to_string(&jail).unwrap() + "ignoreip = 192.0.2.0/24\n";
    std::fs::write(&jail, &edited).unwrap();
    let refused = run(dir.path(), &["fail2ban", "install", "--dir", t]);
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(&jail.display().to_string()) && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&jail).unwrap(), edited);

    let forced = run(dir.path(), &["fail2ban", "install", "--dir", t, "--force"]);
    assert!(forced.status.success());
    assert!(text(&forced.stdout).contains("replaced (--force): "));
    assert_ne!(std::fs::read_to_string(&jail).unwrap(), edited);
}

#[test]
fn a_prefix_the_kernel_cannot_log_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["fail2ban", "print", "--prefix", ""]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("LOG prefix"),
        "{}",
        text(&out.stderr)
    );
}
