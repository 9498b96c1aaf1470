//! `portwarden cron` and `portwarden systemd` from the outside: the files the real binary
//! writes (no root needed), `systemd-analyze verify` on the unit, and, as root, a real Debian
//! `cron -f` running the installed job inside a throwaway namespace, where it must ban a real
//! nmap scanner. That cron sees only the namespace's private `/etc/cron.d` (see
//! `common::daemons`); the host's `/etc/cron.d` is checked to be untouched.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::daemons::CronDaemon;
use common::lab::{SEED_PORTS, nmap};
use portwarden::netns::{self, Lab, Netns};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn job_lines(cron_file: &str) -> Vec<&str> {
    cron_file
        .lines()
        .filter(|l| l.starts_with("* * * * * "))
        .collect()
}

fn canonical_bin() -> PathBuf {
    fs::canonicalize(common::bin()).unwrap()
}

#[test]
fn cron_print_runs_this_binary_with_the_same_config_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let conf = dir.path().join("pw.toml");
    fs::write(&conf, "[log]\nprefix = \"SYN_SCAN_ATTEMPT--\"\n").unwrap();
    let out = common::portwarden(&state)
        .arg("--config")
        .arg(&conf)
        .args(["cron", "print", "--log", "/var/tmp/pw.log"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = text(&out.stdout);
    assert_eq!(
        job_lines(&file),
        [format!(
            "* * * * * root {} --config {} --state-dir {} run --once >>/var/tmp/pw.log 2>&1",
            canonical_bin().display(),
            fs::canonicalize(&conf).unwrap().display(),
            state.display()
        )],
        "{file}"
    );
    assert!(file.contains("# portwarden-managed-file"), "{file}");
}

#[test]
fn cron_install_writes_0644_atomically_and_remove_spares_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let cron_d = dir.path().join("cron.d");
    fs::create_dir(&cron_d).unwrap();
    let pw = |args: &[&str]| -> Output {
        common::portwarden(&dir.path().join("state"))
            .args(args)
            .arg("--dir")
            .arg(&cron_d)
            .output()
            .unwrap()
    };
    let out = pw(&["cron", "install"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    println!("{}", text(&out.stdout));
    let file = cron_d.join("portwarden");
    let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o644);
    let names: Vec<_> = fs::read_dir(&cron_d)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["portwarden"], "no temporary file may be left");
    let written = fs::read_to_string(&file).unwrap();
    assert_eq!(job_lines(&written).len(), 1, "{written}");
    assert!(
        written.contains(">>/var/log/portwarden.log 2>&1"),
        "{written}"
    );

    let out = pw(&["cron", "remove"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!file.exists());

    // A file of the operator's own is neither replaced nor removed.
    let mine = "* * * * * root /usr/local/bin/my-scan-script\n";
    fs::write(&file, mine).unwrap();
    for action in ["install", "remove"] {
        let out = pw(&["cron", action]);
        assert!(!out.status.success(), "cron {action} must refuse");
        assert!(
            text(&out.stderr).contains("not written by portwarden"),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(fs::read_to_string(&file).unwrap(), mine);
    }
}

#[test]
fn cron_refuses_a_log_path_with_a_percent_sign() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::portwarden(dir.path())
        .args(["cron", "install", "--log", "/var/log/pw-%d.log", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains('%') && err.contains("cron"), "{err}");
    assert!(!dir.path().join("portwarden").exists());
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::portwarden(Path::new("/var/lib/portwarden"))
        .args(["systemd", "install", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("systemctl daemon-reload && systemctl enable --now portwarden"),
        "{stdout}"
    );
    let unit = dir.path().join("portwarden.service");
    let written = fs::read_to_string(&unit).unwrap();
    assert!(
        // common::portwarden runs with PORTWARDEN_CONFIG=/dev/null, which systemd would not see.
        written.contains(&format!(
            "ExecStart={} --config /dev/null daemon\n",
            canonical_bin().display()
        )),
        "{written}"
    );
    assert!(written.contains("StateDirectory=portwarden\n"), "{written}");
    if !netns::on_path("systemd-analyze") {
        eprintln!(
            "SKIPPED the systemd-analyze part: systemd-analyze is not installed (apt-get install systemd)"
        );
        return;
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let err = text(&out.stderr);
    println!("systemd-analyze verify: {} {err}", out.status);
    assert!(out.status.success(), "systemd-analyze verify failed: {err}");
    // Unknown keys and bad values are only warnings for systemd: none may name our unit.
    let ours: Vec<&str> = err.lines().filter(|l| l.contains("portwarden")).collect();
    assert!(ours.is_empty(), "systemd-analyze warnings: {ours:?}");
}

/// `portwarden --config C ARGS` inside `ns`, without the test's environment leaking in.
fn portwarden_in(ns: &Netns, config: &Path, args: &[&str]) -> Output {
    let out = ns
        .command(common::bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("PORTWARDEN_CONFIG")
        .env_remove("PORTWARDEN_STATE_DIR")
        .output()
        .unwrap();
    println!(
        "$ portwarden {}: {}\n{}{}",
        args.join(" "),
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// Waits until `log` has more than `lines` lines, for at most `limit` (cron runs jobs at the
/// start of each minute). Panics with cron's output if cron dies meanwhile.
fn wait_for_job(cron: &mut CronDaemon, log: &Path, lines: usize, limit: Duration) -> usize {
    let start = Instant::now();
    loop {
        let n = fs::read_to_string(log).unwrap_or_default().lines().count();
        if n > lines {
            println!(
                "cron job wrote to the log after {:.1} s",
                start.elapsed().as_secs_f64()
            );
            return n;
        }
        if let Some(status) = cron.process.exited() {
            panic!("cron exited ({status}): {}", cron.process.output());
        }
        assert!(
            start.elapsed() < limit,
            "cron did not run the job within {limit:?}; log: {:?}",
            fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn real_cron_runs_the_installed_job_which_bans_an_nmap_scanner() {
    if !common::e2e_ready(
        "real_cron_runs_the_installed_job_which_bans_an_nmap_scanner",
        &["nft", "nmap", "ip", "cron", "kill"],
    ) {
        return;
    }
    let host_cron_file = Path::new("/etc/cron.d/portwarden");
    let host_before = fs::read(host_cron_file).ok();

    let lab = Lab::create("cron").expect("create lab");
    netns::enable_log_all_netns().expect("enable nf_log_all_netns");
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("pwt{}: ", netns::unique_tag());
    let config = dir.path().join("portwarden.toml");
    fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\n[log]\nprefix = \"{prefix}\"\n[ban]\nduration = \"10m\"\n\
             [[source]]\nkind = \"kmsg\"\n",
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("cron-job.log");

    // Whether the cron mode exists yet on this branch; a first pass also sets the cursors.
    let first = portwarden_in(&lab.target, &config, &["run", "--once"]);
    let first_err = text(&first.stderr);
    let run_once_ready = !(first_err.contains("not implemented")
        || first_err.contains("unexpected argument '--once'"));
    if run_once_ready {
        assert!(first.status.success(), "run --once failed");
        let setup = portwarden_in(&lab.target, &config, &["setup"]);
        assert!(setup.status.success(), "setup failed");
    }

    let etc = CronDaemon::prepare(&lab.target).expect("private /etc/cron.d");
    let log_arg = log.to_str().unwrap();
    let install = portwarden_in(&lab.target, &config, &["cron", "install", "--log", log_arg]);
    assert!(install.status.success(), "cron install failed");
    let installed = fs::read_to_string(CronDaemon::cron_d(&etc).join("portwarden"))
        .expect("the job is in the namespace's private /etc/cron.d");
    assert_eq!(
        job_lines(&installed),
        [format!(
            "* * * * * root {} --config {} run --once >>{log_arg} 2>&1",
            canonical_bin().display(),
            fs::canonicalize(&config).unwrap().display()
        )]
    );
    assert_eq!(
        fs::read(host_cron_file).ok(),
        host_before,
        "the host's /etc/cron.d/portwarden must not change"
    );

    let mut cron =
        CronDaemon::start(&lab.target, etc, &dir.path().join("cron.out")).expect("start cron -f");
    let scan_started = Instant::now();
    if run_once_ready {
        let (_, _, _, _, scan) = nmap(&lab.attacker, "10.250.0.1", SEED_PORTS);
        println!("{scan}");
    }
    let limit = Duration::from_secs(150);
    let mut lines = wait_for_job(&mut cron, &log, 0, limit);
    let job_log = fs::read_to_string(&log).unwrap();
    println!("cron job log:\n{job_log}");
    if !run_once_ready {
        // The job ran (cron reached the binary; its error is in the log), but there is no cron
        // mode to ban with yet.
        assert!(job_log.contains("portwarden"), "{job_log}");
        println!("TODO: `run --once` is not implemented on this branch; the ban is not checked");
        return;
    }
    // The first job may have started before the scan's records reached the ring: allow one
    // more run before judging.
    let banned = |lab: &Lab| {
        let out = lab
            .target
            .run("nft", ["list", "set", "inet", "portwarden", "banned4"])
            .expect("nft list set");
        let listing = text(&out.stdout);
        println!("{listing}");
        listing
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .any(|w| w == "10.250.0.2")
    };
    if !banned(&lab) {
        lines = wait_for_job(&mut cron, &log, lines, limit);
        println!(
            "cron job log ({lines} lines):\n{}",
            fs::read_to_string(&log).unwrap()
        );
        assert!(banned(&lab), "the cron job did not ban 10.250.0.2");
    }
    println!(
        "banned by cron {:.1} s after the scan started",
        scan_started.elapsed().as_secs_f64()
    );
}

/// The unit's `CapabilityBoundingSet=` as `setpriv --bounding-set` wants it.
fn unit_bounding_set() -> String {
    let out = common::portwarden(Path::new("/var/lib/portwarden"))
        .args(["systemd", "print"])
        .output()
        .unwrap();
    let unit = text(&out.stdout);
    let caps = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("the unit bounds capabilities");
    let mut spec = String::from("-all");
    for cap in caps.split_whitespace() {
        spec.push_str(",+");
        spec.push_str(&cap.trim_start_matches("CAP_").to_ascii_lowercase());
    }
    spec
}

/// What the unit promises, checked without systemd: `setup` and the daemon, confined to the
/// unit's capability bounding set with no_new_privs (as `CapabilityBoundingSet=` and
/// `NoNewPrivileges=` do), still ban a real nmap scanner and stop cleanly on SIGTERM.
#[test]
fn daemon_bans_with_only_the_units_capabilities() {
    if !common::e2e_ready(
        "daemon_bans_with_only_the_units_capabilities",
        &["nft", "nmap", "ip", "setpriv", "kill"],
    ) {
        return;
    }
    let bounding = unit_bounding_set();
    println!("setpriv --bounding-set {bounding}");
    let lab = Lab::create("caps").expect("create lab");
    netns::enable_log_all_netns().expect("enable nf_log_all_netns");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("portwarden.toml");
    fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\n[log]\nprefix = \"pwt{}: \"\n[[source]]\nkind = \"kmsg\"\n",
            dir.path().join("state").display(),
            netns::unique_tag()
        ),
    )
    .unwrap();
    let confined = |args: &[&str]| {
        let mut c = lab.target.command("setpriv");
        c.args(["--bounding-set", &bounding, "--no-new-privs"])
            .arg(common::bin())
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_remove("PORTWARDEN_CONFIG")
            .env_remove("PORTWARDEN_STATE_DIR");
        c
    };
    let setup = confined(&["setup"]).output().unwrap();
    println!("setup: {}{}", text(&setup.stdout), text(&setup.stderr));
    assert!(
        setup.status.success(),
        "setup failed under the unit's capabilities"
    );

    let mut daemon = common::daemons::Background::spawn(
        "portwarden daemon",
        &mut confined(&["daemon"]),
        &dir.path().join("daemon.log"),
    )
    .expect("start the daemon");
    // Wait until it follows its sources (it says so once its table is ready and its readers
    // started); records written before it opened the ring would still be read from its saved
    // cursor, but the ban latency printed below is measured from a running daemon.
    let following = Instant::now();
    while !daemon.output().contains("portwarden daemon: following") {
        assert!(
            daemon.exited().is_none() && following.elapsed() < Duration::from_secs(30),
            "the confined daemon never started following:\n{}",
            daemon.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    nmap(&lab.attacker, "10.250.0.1", SEED_PORTS);
    let scanned = Instant::now();
    let mut banned = false;
    while scanned.elapsed() < Duration::from_secs(15) && daemon.exited().is_none() {
        let out = lab
            .target
            .run("nft", ["list", "set", "inet", "portwarden", "banned4"])
            .expect("nft list set");
        if text(&out.stdout).contains("10.250.0.2 ") {
            banned = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "ban seen after {:.0} ms",
        scanned.elapsed().as_secs_f64() * 1000.0
    );
    let status = daemon.stop();
    println!("daemon log:\n{}", daemon.output());
    assert!(banned, "the confined daemon did not ban 10.250.0.2");
    assert!(
        status.is_some_and(|s| s.success()),
        "the daemon did not stop cleanly on SIGTERM: {status:?}"
    );
}
