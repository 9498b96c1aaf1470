//! `portwarden demo`: the seed lab in one command, in throwaway network namespaces.
//!
//! In: nothing but root and `nft`, `nmap`, `ip` on `PATH`. Out: a narrated run, each step a
//! short heading, the command an operator would type, and that command's real output:
//!
//! 1. two namespaces, `attacker` and `target`, joined by a veth pair ([`Lab`]);
//! 2. `net.netfilter.nf_log_all_netns=1`, so the target's LOG records reach `/dev/kmsg`;
//! 3. a throwaway config: state in a temporary directory, a LOG prefix unique to this run (so
//!    other LOG traffic on the shared kernel ring never counts), and one for the kernel fast
//!    path's ban records, source `kmsg`;
//! 4. `portwarden setup` inside the target (this very binary, via `ip netns exec`);
//! 5. `portwarden daemon` inside the target, in the background; with `--cron`, or when the
//!    daemon cannot run, cron mode instead: one `portwarden run --once` before and one after
//!    the scan, which is what `/etc/cron.d/portwarden` does every minute;
//! 6. the seed's `nmap -sS -T3` scan of 12 ports from the attacker;
//! 7. the detection (the daemon's log, `portwarden list`) and the ban (`nft list set`);
//! 8. the same scan again: every port must now be `filtered`;
//! 9. clean up: daemon stopped, namespaces deleted, the sysctl restored, temporary files
//!    removed; also on an error or Ctrl-C (children run in their own process group so the
//!    terminal's SIGINT reaches only the demo, which then unwinds through the guards below).
//!
//! Exit status: success only when the scanner was banned and the second scan saw all 12 ports
//! filtered. `--keep` leaves the namespaces, the config and the sysctl as they are for
//! exploring, and prints how to remove them.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::netns::{self, Lab, Netns};

/// The seed lab's ports, in its order.
pub const SEED_PORTS: &str = "21,22,23,25,53,80,110,135,139,443,445,3389";
const SEED_PORT_COUNT: usize = 12;
/// How long to wait for the daemon's ban after the scan.
const BAN_WAIT: Duration = Duration::from_secs(15);
/// How long the daemon gets to open its sources before the scan.
const DAEMON_SETTLE: Duration = Duration::from_millis(1500);

/// What `portwarden demo` was asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Leave the namespaces, the config and the sysctl in place for exploring.
    pub keep: bool,
    /// Cron mode, as in the seed lab: `run --once` before and after the scan instead of the
    /// daemon.
    pub cron: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the demo cannot run here:\n{0}")]
    Prerequisites(String),
    #[error("interrupted; cleaned up")]
    Interrupted,
    #[error("{step}: {source}")]
    Step { step: String, source: io::Error },
    #[error("`{command}` failed ({status})")]
    CommandFailed { command: String, status: ExitStatus },
    #[error("{0} was not banned: no element for it in the target's set (see the output above)")]
    NotBanned(IpAddr),
    #[error("the second scan saw {filtered} of {SEED_PORT_COUNT} ports filtered, not all")]
    NotFiltered { filtered: usize },
}

fn step_err(step: impl Into<String>) -> impl FnOnce(io::Error) -> DemoError {
    move |source| DemoError::Step {
        step: step.into(),
        source,
    }
}

/// What is missing, one line each with how to get it; empty when the demo can run.
pub fn missing_prerequisites(is_root: bool, on_path: impl Fn(&str) -> bool) -> Vec<String> {
    let mut missing = Vec::new();
    if !is_root {
        missing.push(
            "  root: the demo creates network namespaces and firewall rules; run it with sudo"
                .to_string(),
        );
    }
    for (tool, package) in [("nft", "nftables"), ("nmap", "nmap"), ("ip", "iproute2")] {
        if !on_path(tool) {
            missing.push(format!("  `{tool}`: apt-get install {package}"));
        }
    }
    missing
}

/// Port states from nmap's normal output: one per `PORT/tcp STATE` line, plus the ports a
/// `Not shown: N STATE ...` line folds away.
pub fn port_states(nmap_stdout: &str) -> Vec<String> {
    let mut states = Vec::new();
    for line in nmap_stdout.lines() {
        let mut words = line.split_whitespace();
        let (Some(first), Some(second)) = (words.next(), words.next()) else {
            continue;
        };
        if let Some((port, proto)) = first.split_once('/')
            && port.parse::<u16>().is_ok()
            && matches!(proto, "tcp" | "udp" | "sctp")
        {
            states.push(second.to_string());
        } else if first == "Not" && second == "shown:" {
            let n: usize = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            if let Some(state) = words.next() {
                states.extend(std::iter::repeat_n(state.to_string(), n));
            }
        }
    }
    states
}

/// Whether `addr` appears as a whole element in `nft list set` output.
pub fn set_lists(nft_stdout: &str, addr: IpAddr) -> bool {
    let want = addr.to_string();
    nft_stdout
        .split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':'))
        .any(|word| word == want)
}

/// A command line as an operator would type it (quoted only where a shell needs it).
fn display(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| {
            let s = a.to_string_lossy();
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._+,:@=-".contains(c))
            {
                s.into_owned()
            } else {
                format!("'{}'", s.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The demo's temporary directory (config, state, captured output); removed on drop.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl WorkDir {
    fn create(tag: &str) -> io::Result<WorkDir> {
        let path = std::env::temp_dir().join(format!("portwarden-demo-{tag}"));
        fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(WorkDir { path, keep: false })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep
            && let Err(e) = fs::remove_dir_all(&self.path)
        {
            eprintln!("warning: could not remove {}: {e}", self.path.display());
        }
    }
}

/// Puts `nf_log_all_netns` back as it was, unless the demo found it already on.
struct LogAllNetns {
    before: String,
    keep: bool,
}

impl Drop for LogAllNetns {
    fn drop(&mut self) {
        if self.keep || self.before == "1" {
            return;
        }
        let path = "/proc/sys/net/netfilter/nf_log_all_netns";
        match fs::write(path, &self.before) {
            Ok(()) => println!("$ sysctl -w net.netfilter.nf_log_all_netns={}", self.before),
            Err(e) => eprintln!(
                "warning: could not restore net.netfilter.nf_log_all_netns={}: {e}",
                self.before
            ),
        }
    }
}

/// The daemon running in the background; stopped with SIGTERM (then SIGKILL) on drop.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, up to 5 s for a clean exit, then SIGKILL. Returns the exit status.
    fn stop(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        // `ip netns exec` execs the program, so this pid is the daemon's own.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args(["-TERM", &pid])
            .stdin(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("warning: the daemon ignored SIGTERM for 5 s; killing it");
        self.child.kill()?;
        self.child.wait()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("warning: could not stop the daemon: {e}");
        }
    }
}

/// Runs commands in their own process group, output captured to files and echoed, with a
/// Ctrl-C check while they run.
struct Runner {
    work: PathBuf,
    interrupted: Arc<AtomicBool>,
    count: u32,
}

struct Ran {
    status: ExitStatus,
    stdout: String,
}

impl Runner {
    fn check_interrupt(&self) -> Result<(), DemoError> {
        if self.interrupted.load(Ordering::Relaxed) {
            Err(DemoError::Interrupted)
        } else {
            Ok(())
        }
    }

    fn sleep(&self, d: Duration) -> Result<(), DemoError> {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.check_interrupt()?;
            std::thread::sleep(Duration::from_millis(50).min(end - Instant::now()));
        }
        self.check_interrupt()
    }

    /// Prints `$ command`, runs it, prints what it wrote; `quiet`: print nothing.
    fn run_inner(&mut self, cmd: &mut Command, quiet: bool) -> Result<Ran, DemoError> {
        self.check_interrupt()?;
        let line = display(cmd);
        if !quiet {
            println!("$ {line}");
        }
        self.count += 1;
        let out_path = self.work.join(format!("out{}", self.count));
        let err_path = self.work.join(format!("err{}", self.count));
        let out = fs::File::create(&out_path).map_err(step_err("capture output"))?;
        let err = fs::File::create(&err_path).map_err(step_err("capture output"))?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(step_err(format!("cannot run `{line}`")))?;
        let status = loop {
            if let Some(status) = child.try_wait().map_err(step_err(line.clone()))? {
                break status;
            }
            if self.interrupted.load(Ordering::Relaxed) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(DemoError::Interrupted);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = fs::read_to_string(&out_path).unwrap_or_default();
        let stderr = fs::read_to_string(&err_path).unwrap_or_default();
        if !quiet {
            // Both streams to stdout, in order: the narration reads top to bottom.
            print!("{stdout}{stderr}");
            if !status.success() {
                println!("({line} exited with {status})");
            }
        }
        Ok(Ran { status, stdout })
    }

    fn show(&mut self, cmd: &mut Command) -> Result<Ran, DemoError> {
        self.run_inner(cmd, false)
    }

    /// Like [`Runner::show`], and a failure is an error.
    fn must(&mut self, cmd: &mut Command) -> Result<Ran, DemoError> {
        let ran = self.show(cmd)?;
        if ran.status.success() {
            Ok(ran)
        } else {
            Err(DemoError::CommandFailed {
                command: display(cmd),
                status: ran.status,
            })
        }
    }
}

fn heading(n: u32, text: &str) {
    println!("\n== {n}. {text}");
}

/// `ip netns exec NS <this binary> --config C ARGS...`
fn portwarden_in(ns: &Netns, exe: &Path, config: &Path, args: &[&str]) -> Command {
    let mut c = ns.command(exe);
    c.arg("--config").arg(config).args(args);
    c
}

fn nmap_scan(attacker: &Netns, target: IpAddr) -> Command {
    let mut c = attacker.command("nmap");
    c.args(["-sS", "-T3", "-Pn", "-n", "-p", SEED_PORTS])
        .arg(target.to_string());
    c
}

/// `nft list set FAMILY TABLE SET` inside `ns`.
fn list_set(ns: &Netns, config: &Config) -> Command {
    let fw = &config.firewall;
    let mut c = ns.command(&fw.nft);
    c.args(["list", "set", fw.family.as_str(), &fw.table, &fw.set4]);
    c
}

/// The demo's config file: state in the work dir, a unique prefix, kmsg only.
fn demo_config(state_dir: &Path, prefix: &str) -> String {
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    format!(
        "# portwarden demo: a throwaway configuration.\n\
         state_dir = {state}\n\
         \n\
         [log]\n\
         # Unique to this run: other LOG records on the shared kernel ring never count.\n\
         prefix = {prefix}\n\
         \n\
         [ban]\n\
         duration = \"10m\"\n\
         \n\
         [fastpath]\n\
         # The kernel fast path's ban records, unique to this run too.\n\
         log_prefix = {fastban}\n\
         \n\
         [[source]]\n\
         kind = \"kmsg\"\n",
        state = quote(&state_dir.to_string_lossy()),
        prefix = quote(prefix),
        fastban = quote(&format!("{}fb: ", prefix.trim_end_matches([':', ' ']))),
    )
}

/// Run the whole demo (see the module doc); `Ok` only when the scanner was banned and the
/// rescan saw every port filtered.
pub fn run(args: Options) -> anyhow::Result<()> {
    let missing = missing_prerequisites(netns::is_root(), netns::on_path);
    if !missing.is_empty() {
        return Err(DemoError::Prerequisites(missing.join("\n")).into());
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    let mut ids = Vec::new();
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        ids.push(
            signal_hook::flag::register(signal, Arc::clone(&interrupted))
                .map_err(step_err("install the Ctrl-C handler"))?,
        );
    }
    let result = demo(&args, interrupted);
    for id in ids {
        signal_hook::low_level::unregister(id);
    }
    result?;
    println!(
        "\nportwarden demo: the scanner was detected and banned; the second scan saw only filtered ports."
    );
    Ok(())
}

fn demo(args: &Options, interrupted: Arc<AtomicBool>) -> Result<(), DemoError> {
    let exe = crate::install::cron::own_path().map_err(|e| DemoError::Step {
        step: "find this program".into(),
        source: io::Error::other(e.to_string()),
    })?;
    let tag = netns::unique_tag();
    // Guards drop in reverse order of creation: daemon, sysctl, lab, work dir.
    let mut work = WorkDir::create(&tag).map_err(step_err("create a temporary directory"))?;
    let mut runner = Runner {
        work: work.path.clone(),
        interrupted,
        count: 0,
    };

    heading(1, "Two throwaway network namespaces, joined by a veth pair");
    let lab = Lab::create("demo").map_err(step_err("create the namespaces"))?;
    let (t, a) = (lab.target.name(), lab.attacker.name());
    println!(
        "(ip netns add {t}; ip netns add {a}; ip -n {t} link add {ti} type veth peer name {ai} netns {a};\n \
         addresses {tv4}/24 on the target, {av4}/24 on the attacker)",
        ti = Lab::TARGET_IF,
        ai = Lab::ATTACKER_IF,
        tv4 = lab.target_v4,
        av4 = lab.attacker_v4,
    );
    runner.must(Command::new("ip").args(["-n", t, "-br", "addr", "show", Lab::TARGET_IF]))?;
    runner.must(Command::new("ip").args(["-n", a, "-br", "addr", "show", Lab::ATTACKER_IF]))?;

    heading(
        2,
        "Let LOG records from the namespaces reach the kernel ring",
    );
    let before = netns::enable_log_all_netns().map_err(step_err("enable nf_log_all_netns"))?;
    let mut sysctl = LogAllNetns {
        before: before.clone(),
        keep: false,
    };
    println!("$ sysctl -w net.netfilter.nf_log_all_netns=1   (was {before})");

    heading(3, "A throwaway configuration");
    let prefix = format!("pwdemo{tag}: ");
    let state_dir = work.path.join("state");
    let config_path = work.path.join("portwarden.toml");
    fs::write(&config_path, demo_config(&state_dir, &prefix))
        .map_err(step_err("write the config"))?;
    let config = Config::from_file(&config_path).map_err(|e| DemoError::Step {
        step: "read back the demo config".into(),
        source: io::Error::other(e.to_string()),
    })?;
    runner.must(Command::new("cat").arg(&config_path))?;

    heading(
        4,
        "Set up the target's firewall: table, sets, LOG and drop rules",
    );
    runner.must(&mut portwarden_in(
        &lab.target,
        &exe,
        &config_path,
        &["setup"],
    ))?;
    runner.show(lab.target.command(&config.firewall.nft).args([
        "list",
        "table",
        config.firewall.family.as_str(),
        &config.firewall.table,
    ]))?;

    let daemon_log = work.path.join("daemon.log");
    let mut daemon = None;
    if args.cron {
        heading(
            5,
            "Cron mode: one pass now (it sets the cursors), one after the scan",
        );
    } else {
        heading(5, "Start the daemon in the target");
        let mut daemon_cmd = portwarden_in(&lab.target, &exe, &config_path, &["-v", "daemon"]);
        // Plain text in the log file (tracing colours its output otherwise).
        daemon_cmd.env("NO_COLOR", "1");
        println!("$ {} &", display(&daemon_cmd));
        daemon = Some(spawn_daemon(&mut daemon_cmd, &daemon_log)?);
        runner.sleep(DAEMON_SETTLE)?;
    }
    if let Some(d) = daemon.as_mut()
        && let Some(status) = d.child.try_wait().map_err(step_err("watch the daemon"))?
    {
        print!("{}", d.log_text());
        println!(
            "(the daemon exited with {status}; falling back to cron mode: `run --once` before \
             and after the scan)"
        );
        daemon = None;
    }
    if daemon.is_none() {
        runner.must(&mut portwarden_in(
            &lab.target,
            &exe,
            &config_path,
            &["run", "--once"],
        ))?;
    }

    heading(6, "Scan the target from the attacker, as in the seed lab");
    let first = runner.must(&mut nmap_scan(&lab.attacker, lab.target_ip(false)))?;
    let scanned = Instant::now();
    let first_states = port_states(&first.stdout);

    heading(7, "Detection and ban");
    let attacker = lab.attacker_ip(false);
    let mut banned = false;
    match daemon.as_mut() {
        Some(d) => {
            // Poll quietly, then show the set once.
            while scanned.elapsed() < BAN_WAIT {
                let ran = runner.run_inner(&mut list_set(&lab.target, &config), true)?;
                if ran.status.success() && set_lists(&ran.stdout, attacker) {
                    banned = true;
                    println!(
                        "(ban seen {:.0} ms after the scan ended)",
                        scanned.elapsed().as_secs_f64() * 1000.0
                    );
                    break;
                }
                if d.child
                    .try_wait()
                    .map_err(step_err("watch the daemon"))?
                    .is_some()
                {
                    println!("(the daemon exited)");
                    break;
                }
                runner.sleep(Duration::from_millis(100))?;
            }
            println!("$ cat {}   (the daemon's log)", daemon_log.display());
            print!("{}", d.log_text());
        }
        None => {
            runner.must(&mut portwarden_in(
                &lab.target,
                &exe,
                &config_path,
                &["run", "--once"],
            ))?;
        }
    }
    runner.show(&mut portwarden_in(
        &lab.target,
        &exe,
        &config_path,
        &["list"],
    ))?;
    let set = runner.show(&mut list_set(&lab.target, &config))?;
    banned |= set.status.success() && set_lists(&set.stdout, attacker);
    if !banned {
        return Err(DemoError::NotBanned(attacker));
    }

    heading(
        8,
        "Scan again: the target now drops everything from the attacker",
    );
    let second = runner.must(&mut nmap_scan(&lab.attacker, lab.target_ip(false)))?;
    let second_states = port_states(&second.stdout);
    let filtered = second_states.iter().filter(|s| *s == "filtered").count();
    println!(
        "\nfirst scan: {} of {SEED_PORT_COUNT} ports closed; ban: {attacker} in set {} {} {}; \
         second scan: {filtered} of {SEED_PORT_COUNT} ports filtered",
        first_states.iter().filter(|s| *s == "closed").count(),
        config.firewall.family,
        config.firewall.table,
        config.firewall.set4,
    );
    if filtered != SEED_PORT_COUNT || second_states.len() != SEED_PORT_COUNT {
        return Err(DemoError::NotFiltered { filtered });
    }

    heading(9, "Clean up");
    if let Some(mut d) = daemon.take() {
        let status = d.stop().map_err(step_err("stop the daemon"))?;
        println!("$ kill -TERM {}   (daemon exited: {status})", d.child.id());
    }
    if args.keep {
        work.keep = true;
        sysctl.keep = true;
        let restore = if before == "1" {
            String::new()
        } else {
            format!("; sysctl -w net.netfilter.nf_log_all_netns={before}")
        };
        println!(
            "--keep: left for exploring:\n  namespaces {t} (target) and {a} (attacker): \
             `ip netns exec {t} nft list ruleset`\n  config and state in {dir}: \
             `ip netns exec {t} {exe} --config {conf} daemon`\n\
             remove with: ip netns delete {t}; ip netns delete {a}; rm -r {dir}{restore}",
            dir = work.path.display(),
            exe = exe.display(),
            conf = config_path.display(),
        );
        // Dropping the Lab would delete the namespaces.
        std::mem::forget(lab);
    } else {
        println!("$ ip netns delete {t}; ip netns delete {a}");
        drop(lab);
        drop(sysctl);
        println!("$ rm -r {}", work.path.display());
    }
    Ok(())
}

fn spawn_daemon(cmd: &mut Command, log: &Path) -> Result<Daemon, DemoError> {
    let out = fs::File::create(log).map_err(step_err("create the daemon's log"))?;
    let err = out
        .try_clone()
        .map_err(step_err("create the daemon's log"))?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(step_err("start the daemon"))?;
    Ok(Daemon {
        child,
        log: log.to_path_buf(),
    })
}

/// Used by the tests: what an `OsString` argument list displays as.
#[cfg(test)]
fn display_args(program: &str, args: &[&str]) -> String {
    let mut c = Command::new(program);
    c.args(args.iter().map(std::ffi::OsString::from));
    display(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_each_missing_prerequisite_with_its_package() {
        assert!(missing_prerequisites(true, |_| true).is_empty());
        let missing = missing_prerequisites(false, |t| t == "ip");
        assert_eq!(missing.len(), 3, "{missing:?}");
        assert!(missing[0].contains("root"));
        assert!(missing[1].contains("apt-get install nftables"));
        assert!(missing[2].contains("apt-get install nmap"));
    }

    #[test]
    fn reads_port_states_from_nmap_output() {
        let closed = "PORT     STATE  SERVICE\n21/tcp   closed ftp\n22/tcp   closed ssh\n\
                      3389/tcp closed ms-wbt-server\nMAC Address: 62:5D:FC:96:AC:BA (Unknown)\n\n\
                      Nmap done: 1 IP address (1 host up) scanned in 0.10 seconds\n";
        assert_eq!(port_states(closed), ["closed", "closed", "closed"]);
        let folded = "All 12 scanned ports on 10.250.0.1 are in ignored states.\n\
                      Not shown: 12 filtered tcp ports (no-response)\n";
        assert_eq!(port_states(folded), vec!["filtered"; 12]);
        let mixed = "Not shown: 10 filtered tcp ports (no-response)\nPORT STATE SERVICE\n\
                     22/tcp open ssh\n80/tcp closed http\n";
        let states = port_states(mixed);
        assert_eq!(states.len(), 12);
        assert_eq!(states.iter().filter(|s| *s == "filtered").count(), 10);
    }

    #[test]
    fn finds_whole_addresses_in_a_set_listing() {
        let listing = "table inet portwarden {\n\tset banned4 {\n\t\ttype ipv4_addr\n\
                       \t\tflags timeout\n\t\telements = { 10.250.0.2 timeout 10m expires 9m59s }\n\t}\n}\n";
        assert!(set_lists(listing, "10.250.0.2".parse().unwrap()));
        assert!(!set_lists(listing, "10.250.0.1".parse().unwrap()));
        assert!(!set_lists(
            "elements = { 10.250.0.22 }",
            "10.250.0.2".parse().unwrap()
        ));
    }

    #[test]
    fn displays_commands_as_typed() {
        assert_eq!(
            display_args("nmap", &["-sS", "-p", SEED_PORTS, "10.250.0.1"]),
            "nmap -sS -p 21,22,23,25,53,80,110,135,139,443,445,3389 10.250.0.1"
        );
        assert_eq!(display_args("x", &["a b", "it's"]), r"x 'a b' 'it'\''s'");
    }

    #[test]
    fn demo_config_is_valid_and_uses_the_unique_prefix() {
        let text = demo_config(Path::new("/tmp/pw \"demo\"/state"), "pwdemo1x2: ");
        let config = Config::from_toml(&text, Path::new("demo.toml")).unwrap();
        assert_eq!(config.log.prefixes, ["pwdemo1x2: "]);
        assert_eq!(config.fastpath.log_prefix.as_str(), "pwdemo1x2fb: ");
        assert_eq!(config.state_dir, Path::new("/tmp/pw \"demo\"/state"));
        assert_eq!(
            config.sources,
            [crate::config::SourceConfig::Kmsg {
                path: "/dev/kmsg".into()
            }]
        );
    }
}
