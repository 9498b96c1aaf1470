//! The parts of the automation end-to-end tests (`tests/automation_e2e.rs`): a private
//! `rsyslogd`, a background `portwarden daemon`, a per-test config with its own state
//! directory and LOG prefix, `run --once` with its JSON summary, nmap, a look at the kernel
//! set of a namespace, and the log and journal files tests write and rotate (also used by
//! `tests/sources.rs`).
//!
//! Everything portwarden does runs INSIDE the test's namespace (`ip netns exec NS portwarden
//! --config ...`), so the only nftables ruleset it ever sees is the namespace's. Processes are
//! stopped on drop (SIGTERM, then SIGKILL: [`super::daemons::Background`]), also when a test panics. rsyslogd runs in the host
//! namespace (it only reads the global `/dev/kmsg` and writes files in a tempdir) with its own
//! config (`-f`), pid file (`-i`), work directory and, when asked, its own `/dev/log`-like
//! socket: the host's syslog is never touched.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use portwarden::netns::Netns;

pub use super::daemons::Background;

/// The seed lab's ports.
pub const SEED_PORTS: &str = "21,22,23,25,53,80,110,135,139,443,445,3389";

/// Polls `f` every 50 ms until it gives `Some`, for at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// Lines of `path` that contain `needle`.
pub fn lines_with(path: &Path, needle: &str) -> usize {
    read(path).lines().filter(|l| l.contains(needle)).count()
}

/// Appends `text` to `path`, creating it if need be (as a syslog daemon writes).
pub fn append(path: &Path, text: &str) {
    use std::io::Write as _;
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// logrotate's `copytruncate`: copies `path` to `copy` (overwriting it in place if it exists),
/// then truncates `path` to 0 without changing its inode.
pub fn copy_then_truncate(path: &Path, copy: &Path) {
    fs::copy(path, copy).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}

/// The journal's writer for export streams, which makes real journal files from them.
pub const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";

/// Appends the entries of the export stream `text` to the journal file `journal` (created on
/// first use), through an export file of its own in `export_dir`.
pub fn journal_append(export_dir: &Path, journal: &Path, text: &str) {
    let export = export_dir.join(format!("e{}.export", portwarden::netns::unique_tag()));
    fs::write(&export, text).unwrap();
    let out = Command::new(JOURNAL_REMOTE)
        .arg("-o")
        .arg(journal)
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// This boot's id as the journal's `_BOOT_ID` spells it (32 hex digits, no dashes).
pub fn this_boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap()
        .trim()
        .replace('-', "")
}

/// One test's portwarden: a tempdir holding the config, the state directory and the logs, and
/// a LOG prefix no other test uses.
///
/// The kernel fast path is off unless the Setup is made by [`Setup::with_fastpath`]: these
/// tests judge the log pipeline, and the fast path has its own (`tests/fastpath_e2e.rs`).
/// Either way its LOG prefix is the test's own (`<prefix>fb: `): `/dev/kmsg` is shared.
pub struct Setup {
    pub tmp: tempfile::TempDir,
    pub prefix: String,
    pub config: PathBuf,
    pub state_dir: PathBuf,
    /// Whether the config turns the kernel fast path on.
    pub fastpath: bool,
}

impl Setup {
    /// `extra` is appended to the config verbatim: `[[source]]` entries, `[detect]`, `[ban]`.
    pub fn new(extra: &str) -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let prefix = format!("pwt{}: ", portwarden::netns::unique_tag());
        Setup::in_dir(tmp, prefix, extra)
    }

    /// As [`Setup::new`], with the kernel fast path on. `extra` follows the `[fastpath]`
    /// section: keys before its first header go into it.
    pub fn with_fastpath(extra: &str) -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let prefix = format!("pwt{}: ", portwarden::netns::unique_tag());
        let s = Setup::build(tmp, prefix, true);
        s.write_config(extra);
        s
    }

    pub fn in_dir(tmp: tempfile::TempDir, prefix: String, extra: &str) -> Setup {
        let s = Setup::build(tmp, prefix, false);
        s.write_config(extra);
        s
    }

    fn build(tmp: tempfile::TempDir, prefix: String, fastpath: bool) -> Setup {
        let state_dir = tmp.path().join("state");
        let config = tmp.path().join("portwarden.toml");
        Setup {
            tmp,
            prefix,
            config,
            state_dir,
            fastpath,
        }
    }

    /// The fast path's LOG prefix in this test's config.
    pub fn fastban_prefix(&self) -> String {
        format!("{}fb: ", self.prefix.trim_end_matches([':', ' ']))
    }

    /// (Re)writes the config with the same state directory and prefixes.
    pub fn write_config(&self, extra: &str) {
        fs::write(
            &self.config,
            format!(
                "state_dir = \"{}\"\n\n[log]\nprefix = \"{}\"\n\n\
                 [fastpath]\nenabled = {}\nlog_prefix = \"{}\"\n\n{extra}\n",
                self.state_dir.display(),
                self.prefix,
                self.fastpath,
                self.fastban_prefix()
            ),
        )
        .unwrap();
    }

    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// `ip netns exec NS portwarden --config CONFIG ARGS...`.
    pub fn command(&self, ns: &Netns, args: &[&str]) -> Command {
        let mut c = ns.command(super::bin());
        c.arg("--config")
            .arg(&self.config)
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env_remove("PORTWARDEN_STATE_DIR")
            .env_remove("PORTWARDEN_CONFIG");
        c
    }

    /// Runs `portwarden ARGS` in `ns`; panics with its output when it fails.
    pub fn run(&self, ns: &Netns, args: &[&str]) -> Output {
        let out = self
            .command(ns, args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "portwarden {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `portwarden setup` in `ns`.
    pub fn setup(&self, ns: &Netns) {
        let out = self.run(ns, &["setup"]);
        println!("setup: {}", String::from_utf8_lossy(&out.stdout).trim());
    }

    /// `portwarden run --once --json` in `ns`: the summary and how long the run took.
    pub fn run_once(&self, ns: &Netns) -> (Summary, Duration) {
        let started = Instant::now();
        let out = self.run(ns, &["run", "--once", "--json"]);
        let took = started.elapsed();
        let text = String::from_utf8_lossy(&out.stdout);
        let json: serde_json::Value = serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("run --once --json printed no JSON ({e}): {text}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !stderr.trim().is_empty() {
            println!("run --once stderr: {}", stderr.trim());
        }
        println!("run --once ({took:?}): {json}");
        (Summary(json), took)
    }

    /// Starts `portwarden daemon` in `ns` and waits until it says it follows its sources.
    pub fn daemon(&self, ns: &Netns) -> Background {
        let log = self
            .dir()
            .join(format!("daemon-{}.log", portwarden::netns::unique_tag()));
        let mut d = Background::spawn(
            "portwarden daemon",
            &mut self.command(ns, &["daemon"]),
            &log,
        )
        .unwrap();
        let started = Instant::now();
        let ready = wait_for(Duration::from_secs(30), || {
            if let Some(status) = d.exited() {
                panic!("the daemon exited ({status}):\n{}", d.output());
            }
            d.output()
                .contains("portwarden daemon: following")
                .then_some(())
        });
        assert!(ready.is_some(), "daemon not ready:\n{}", d.output());
        println!("daemon following its sources after {:?}", started.elapsed());
        d
    }

    /// LOG records the daemon parsed (the `probes` of its run records) in runs started at
    /// `since` or later.
    pub fn daemon_parsed_since(&self, since: jiff::Timestamp) -> u64 {
        use portwarden::store::ReadStore as _;
        let n: i64 = self
            .store()
            .connection()
            .query_row(
                "SELECT COALESCE(SUM(probes), 0) FROM runs WHERE mode = 'daemon' AND started_us >= ?1",
                [since.as_microsecond()],
                |r| r.get(0),
            )
            .unwrap();
        n as u64
    }

    /// The store, opened read-only-in-spirit (the caller only reads).
    pub fn store(&self) -> portwarden::store::Store {
        portwarden::store::Store::open(&self.state_dir).unwrap()
    }
}

/// The JSON of `run --once --json` (a `PassSummary`).
pub struct Summary(pub serde_json::Value);

impl Summary {
    pub fn num(&self, key: &str) -> u64 {
        self.0[key].as_u64().unwrap_or(0)
    }

    pub fn rejected(&self, why: &str) -> u64 {
        self.0["rejected"][why].as_u64().unwrap_or(0)
    }

    pub fn banned(&self) -> Vec<String> {
        self.0["banned"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Whether a TCP socket in `ns` listens on `port` (any address), per its `/proc/net/tcp`.
pub fn listens(ns: &Netns, port: u16) -> bool {
    let out = ns.run("cat", ["/proc/net/tcp"]).unwrap();
    let needle = format!(":{port:04X} 00000000:0000 0A");
    String::from_utf8_lossy(&out.stdout).contains(&needle)
}

/// A busy client of `target`'s port 8080, run in `attacker`: 5 closed ports (1001-1005, one
/// below the fast-scan threshold of 6), then 300 HTTP requests; it prints how many were
/// answered. If port 8080 counted as closed, the first request would be the 6th new port.
pub fn busy_client(attacker: &Netns, target: &str) -> Output {
    let client = format!(
        "import socket, urllib.request\n\
         for p in (1001, 1002, 1003, 1004, 1005):\n\
         \x20   s = socket.socket(); s.settimeout(2)\n\
         \x20   try: s.connect(('{target}', p))\n\
         \x20   except OSError: pass\n\
         \x20   s.close()\n\
         ok = 0\n\
         for i in range(300):\n\
         \x20   with urllib.request.urlopen('http://{target}:8080/', timeout=5) as r:\n\
         \x20       r.read(); ok += 1\n\
         print(ok)\n"
    );
    attacker
        .command("python3")
        .args(["-c", &client])
        .output()
        .unwrap()
}

/// `nft -j list set inet portwarden SET` in `ns`: the JSON text (empty if the set is gone).
pub fn set_json(ns: &Netns, set: &str) -> String {
    ns.command("nft")
        .args(["-j", "list", "set", "inet", "portwarden", set])
        .stdin(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// The addresses (and prefixes, as `ADDR/LEN`) in `inet portwarden banned4` of `ns`.
pub fn banned4(ns: &Netns) -> Vec<String> {
    set_elements(ns, "banned4")
}

/// The addresses (and prefixes) in `inet portwarden banned6` of `ns`.
pub fn banned6(ns: &Netns) -> Vec<String> {
    set_elements(ns, "banned6")
}

/// The elements of `inet portwarden SET` in `ns`: addresses, `ADDR/LEN` prefixes.
pub fn set_elements(ns: &Netns, set: &str) -> Vec<String> {
    let text = set_json(ns, set);
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in json["nftables"].as_array().into_iter().flatten() {
        for e in item["set"]["elem"].as_array().into_iter().flatten() {
            // `"10.0.0.1"`, `{"elem": {"val": "10.0.0.1", "timeout": ..}}`, or a prefix.
            let val = if e["elem"].is_object() {
                &e["elem"]["val"]
            } else {
                e
            };
            if let Some(s) = val.as_str() {
                out.push(s.to_string());
            } else if val["prefix"].is_object() {
                out.push(format!(
                    "{}/{}",
                    val["prefix"]["addr"].as_str().unwrap_or("?"),
                    val["prefix"]["len"]
                ));
            } else if val["range"].is_array() {
                out.push(val["range"].to_string());
            }
        }
    }
    out
}

/// Records in the kernel ring (`/dev/kmsg`, read without blocking from its oldest record)
/// whose message contains every one of `needles`.
pub fn kmsg_records_with(needles: &[&str]) -> usize {
    kmsg_lines_with(needles).len()
}

/// The records counted by [`kmsg_records_with`], as the ring gives them.
pub fn kmsg_lines_with(needles: &[&str]) -> Vec<String> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .unwrap();
    let mut buf = vec![0u8; 16 * 1024];
    let mut lines = Vec::new();
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(len) => {
                let rec = String::from_utf8_lossy(&buf[..len]);
                if needles.iter().all(|x| rec.contains(x)) {
                    lines.push(rec.into_owned());
                }
            }
            // EPIPE: the ring overwrote the record we were at; go on with the next.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("reading /dev/kmsg: {e}"),
        }
    }
    lines
}

/// nmap `-sS -T3 -Pn -n -p PORTS` from `attacker` (with `-6` for an IPv6 target): (ports
/// `filtered`, ports `closed`, ports `open`, how long it took, the grepable output).
pub fn nmap(
    attacker: &Netns,
    target: &str,
    ports: &str,
) -> (usize, usize, usize, Duration, String) {
    nmap_with(attacker, target, &["-T3", "-p", ports])
}

/// `nmap -sS -Pn -n OPTIONS -oG - TARGET` (with `-6` for an IPv6 target), counted as
/// [`nmap`] counts.
pub fn nmap_with(
    attacker: &Netns,
    target: &str,
    options: &[&str],
) -> (usize, usize, usize, Duration, String) {
    let started = Instant::now();
    let mut args = vec!["-sS", "-Pn", "-n"];
    args.extend_from_slice(options);
    args.extend_from_slice(&["-oG", "-", target]);
    if target.contains(':') {
        args.insert(0, "-6");
    }
    let out = attacker.run("nmap", &args).unwrap();
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // `Ports: 21/closed/tcp//ftp///, ...` and, for the rest, `Ignored State: filtered (12)`.
    let mut filtered = text.matches("/filtered/").count();
    let mut closed = text.matches("/closed/").count();
    let open = text.matches("/open/").count();
    for (state, n) in [("filtered", &mut filtered), ("closed", &mut closed)] {
        if let Some(rest) = text.split(&format!("Ignored State: {state} (")).nth(1) {
            *n += rest
                .split(')')
                .next()
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or(0);
        }
    }
    (filtered, closed, open, took, text)
}

/// A private rsyslogd: imkmsg (the global kernel ring, read without consuming it), kernel
/// facility lines carrying `prefix` to `kern.log` (as Debian's `kern.*` rule writes it), and
/// every line of any facility carrying `prefix` to `syslog` (as `*.*;auth,authpriv.none` does),
/// both in RSYSLOG_FileFormat. Also a `log` socket (imuxsock) for `logger -u`.
pub struct Rsyslogd {
    pub process: Background,
    pub kern_log: PathBuf,
    pub syslog: PathBuf,
    pub socket: PathBuf,
}

impl Rsyslogd {
    pub fn start(dir: &Path, prefix: &str) -> Rsyslogd {
        let work = dir.join("rsyslog");
        fs::create_dir_all(&work).unwrap();
        let kern_log = dir.join("kern.log");
        let syslog = dir.join("syslog");
        let socket = work.join("log");
        let conf = work.join("rsyslog.conf");
        fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{work}\")\n\
                 module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
                 input(type=\"imuxsock\" Socket=\"{socket}\")\n\
                 module(load=\"imkmsg\")\n\
                 if ($msg contains \"{prefix}\") then {{\n\
                   if ($syslogfacility-text == \"kern\") then {{\n\
                     action(type=\"omfile\" file=\"{kern}\" template=\"RSYSLOG_FileFormat\")\n\
                   }}\n\
                   action(type=\"omfile\" file=\"{syslog}\" template=\"RSYSLOG_FileFormat\")\n\
                 }}\n",
                work = work.display(),
                socket = socket.display(),
                kern = kern_log.display(),
                syslog = syslog.display(),
            ),
        )
        .unwrap();
        // The log files exist from the start, as on an installed system (the package and
        // logrotate's `create` make them): a file source whose file does not exist is an error
        // of the pass, and rsyslog creates a file only at its first line.
        for file in [&kern_log, &syslog] {
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .unwrap();
        }
        let mut cmd = Command::new("rsyslogd");
        cmd.arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(work.join("rsyslogd.pid"));
        let process = Background::spawn("rsyslogd", &mut cmd, &work.join("rsyslogd.out")).unwrap();
        let r = Rsyslogd {
            process,
            kern_log,
            syslog,
            socket,
        };
        // Ready when a user-space line written to the ring comes out in `syslog` (imkmsg runs)
        // and the socket exists (imuxsock runs).
        let marker = format!("{prefix}rsyslog-ready");
        let started = Instant::now();
        let mut polls = 0u32;
        let ready = wait_for(Duration::from_secs(20), || {
            if polls.is_multiple_of(20) {
                let _ = fs::write("/dev/kmsg", format!("{marker}\n"));
            }
            polls += 1;
            (read(&r.syslog).contains(&marker) && r.socket.exists()).then_some(())
        });
        assert!(
            ready.is_some(),
            "rsyslogd not ready:\n{}",
            r.process.output()
        );
        println!("rsyslogd ready after {:?}", started.elapsed());
        r
    }
}
