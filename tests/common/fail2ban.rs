//! Fail2Ban for the end-to-end tests: a private copy of its shipped configuration (never the
//! host's /etc/fail2ban or its *.local files) and its client on the test's own socket.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use portwarden::netns::Netns;

use super::daemons::Background;

/// A private copy of Fail2Ban's shipped base files: no host jail.d, fail2ban.d or *.local.
pub fn copy_fail2ban_base(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.ends_with(".local") || name == "jail.d" || name == "fail2ban.d" {
            continue;
        }
        let dest = to.join(&name);
        if path.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_fail2ban_base(&path, &dest);
        } else if path.is_file() {
            std::fs::copy(&path, &dest).unwrap();
        }
    }
}

/// `fail2ban-client -s SOCK ARGS...`: its stdout when it succeeds.
pub fn fail2ban_client(sock: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("fail2ban-client")
        .arg("-s")
        .arg(sock)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `fail2ban-client status` (the server's own status, which never fails for a jail
/// that is not there yet) lists `jail`.
fn lists_jail(sock: &Path, jail: &str) -> bool {
    fail2ban_client(sock, &["status"]).is_some_and(|out| {
        out.lines()
            .filter_map(|l| l.split_once("Jail list:"))
            .any(|(_, list)| list.split(',').any(|j| j.trim() == jail))
    })
}

/// Wait, up to `limit`, until the server answers `ping` and `status` lists `jail`; then its
/// `status JAIL` output. Asking `status JAIL` before the jail exists makes the server log
/// `ERROR ... UnknownJailException` (the CI flake of issue 11), so it is asked only after.
pub fn wait_for_jail(sock: &Path, jail: &str, limit: std::time::Duration) -> Option<String> {
    super::lab::wait_for(limit, || {
        fail2ban_client(sock, &["ping"])?;
        lists_jail(sock, jail).then_some(())
    })?;
    super::lab::wait_for(limit, || fail2ban_client(sock, &["status", jail]))
}

/// The ERROR lines of a Fail2Ban log. None is forgiven: the tests ask for a jail's status
/// only once the server lists it ([`wait_for_jail`]), so every ERROR (an action's nft call
/// failing, a filter that does not load, a status asked too early) is a fault to show.
pub fn error_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains(" ERROR ")).collect()
}

/// A Fail2Ban configuration of the test's own under `dir`: the shipped base files, and a
/// `fail2ban.local` that puts the log, socket, pid file and database in `dir` too.
pub struct PrivateFail2ban {
    pub conf: PathBuf,
    pub sock: PathBuf,
    pub log: PathBuf,
    pub pid: PathBuf,
    /// What `fail2ban-server` itself prints (start-up errors before its log is open).
    pub server_out: PathBuf,
}

impl PrivateFail2ban {
    pub fn create(dir: &Path) -> PrivateFail2ban {
        let conf = dir.join("fail2ban");
        std::fs::create_dir_all(&conf).unwrap();
        copy_fail2ban_base(Path::new("/etc/fail2ban"), &conf);
        let sock = dir.join("f2b.sock");
        let log = dir.join("fail2ban.log");
        std::fs::write(
            conf.join("fail2ban.local"),
            format!(
                "[Definition]\nloglevel = INFO\nlogtarget = {}\nsocket = {}\npidfile = {}\ndbfile = {}\n",
                log.display(),
                sock.display(),
                dir.join("f2b.pid").display(),
                dir.join("f2b.sqlite3").display()
            ),
        )
        .unwrap();
        PrivateFail2ban {
            conf,
            sock,
            log,
            pid: dir.join("f2b.pid"),
            server_out: dir.join("fail2ban-server.out"),
        }
    }

    /// `portwarden fail2ban install ARGS --dir CONF` (state in `state_dir`): the generated
    /// filter, jail and action in this configuration. Panics with its stderr when it fails;
    /// returns what it printed.
    pub fn install(&self, state_dir: &Path, args: &[&str]) -> String {
        let out = super::portwarden(state_dir)
            .args(["fail2ban", "install"])
            .args(args)
            .arg("--dir")
            .arg(&self.conf)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A real `fail2ban-server` in the foreground inside `ns` (so its nft calls change only that
    /// namespace's ruleset), on this configuration; stopped on drop.
    pub fn start_server(&self, ns: &Netns) -> Background {
        let mut server = ns.command("fail2ban-server");
        server
            .args(["-f", "-x", "-c"])
            .arg(&self.conf)
            .arg("-s")
            .arg(&self.sock)
            .arg("-p")
            .arg(&self.pid)
            .arg("--logtarget")
            .arg(&self.log);
        Background::spawn("fail2ban-server", &mut server, &self.server_out)
            .unwrap_or_else(|e| panic!("cannot start fail2ban-server: {e}"))
    }
}
