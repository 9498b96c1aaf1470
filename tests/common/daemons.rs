//! Launchers of real daemons for the end-to-end tests, each isolated in a network namespace the
//! test made and stopped (with everything it needed removed) on drop, also when the test
//! panics.
//!
//! - [`Background`]: any long-running program inside a namespace (`portwarden daemon`, ...),
//!   output captured to a file, SIGTERM then SIGKILL on drop.
//! - [`CronDaemon`]: Debian's real `cron -f`, which reads only `/etc/crontab` and
//!   `/etc/cron.d`. `ip netns exec NS` bind-mounts every entry of `/etc/netns/NS/` over the
//!   same name in `/etc` (see `man ip-netns`), so a cron started that way, and a `portwarden
//!   cron install` run that way, see a private `/etc/cron.d` and an empty `/etc/crontab`: the
//!   host's real files are never read for jobs nor written.

#![allow(dead_code)]

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use portwarden::netns::Netns;

/// A program running in the background; stopped on drop.
pub struct Background {
    pub name: String,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Background {
    /// Spawns `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> io::Result<Background> {
        let out = fs::OpenOptions::new().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        let child = cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn()?;
        Ok(Background {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What it has written so far.
    pub fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `Some(status)` once it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGTERM, up to 5 s, then SIGKILL. `ip netns exec` execs the program, so the pid is the
    /// program's own.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{}: no exit 5 s after SIGTERM; killing it", self.name);
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `/etc/netns/NS/`: files that `ip netns exec NS` shows in place of the host's `/etc/...`.
/// Removed on drop.
pub struct NetnsEtc {
    pub dir: PathBuf,
}

impl NetnsEtc {
    pub fn create(ns: &Netns) -> io::Result<NetnsEtc> {
        let dir = Path::new("/etc/netns").join(ns.name());
        fs::create_dir_all(&dir)?;
        Ok(NetnsEtc { dir })
    }
}

impl Drop for NetnsEtc {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("warning: could not remove {}: {e}", self.dir.display());
        }
        // Remove /etc/netns too when we were its only user.
        let _ = fs::remove_dir("/etc/netns");
    }
}

/// Debian's `cron -f` inside a namespace, seeing only the namespace's own `/etc/cron.d`.
///
/// Debian's cron also locks `/run/crond.pid`, which is not under `/etc`: while the host runs
/// its own cron, this one exits at once ("can't lock /var/run/crond.pid") and the test says so.
pub struct CronDaemon {
    // Field order is drop order: stop cron before removing its files.
    pub process: Background,
    pub etc: NetnsEtc,
}

impl CronDaemon {
    /// Makes the private `/etc/cron.d` (empty) and `/etc/crontab` (no jobs) for `ns`; start
    /// cron with [`CronDaemon::start`] once the jobs are in place.
    pub fn prepare(ns: &Netns) -> io::Result<NetnsEtc> {
        let etc = NetnsEtc::create(ns)?;
        fs::create_dir(etc.dir.join("cron.d"))?;
        fs::write(
            etc.dir.join("crontab"),
            "# portwarden test: no system jobs in this namespace\n",
        )?;
        Ok(etc)
    }

    /// The private `/etc/cron.d` as the host sees it.
    pub fn cron_d(etc: &NetnsEtc) -> PathBuf {
        etc.dir.join("cron.d")
    }

    /// Starts `cron -f` in `ns`; its own messages go to syslog, the jobs' to their files.
    pub fn start(ns: &Netns, etc: NetnsEtc, log: &Path) -> io::Result<CronDaemon> {
        let process = Background::spawn("cron", ns.command("cron").arg("-f"), log)?;
        Ok(CronDaemon { process, etc })
    }
}

impl Drop for CronDaemon {
    fn drop(&mut self) {
        let pid = self.process.pid();
        self.process.stop();
        // cron leaves its pid file behind; remove it when it is this cron's.
        let pidfile = Path::new("/run/crond.pid");
        let recorded = fs::read_to_string(pidfile).ok();
        if pid.is_some() && recorded.and_then(|s| s.trim().parse().ok()) == pid {
            let _ = fs::remove_file(pidfile);
        }
    }
}
