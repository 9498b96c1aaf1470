//! The cron file behind `portwarden cron install|remove|print`: the seed lab's "run the script
//! from cron every minute", done so that it survives an operator's mistakes.
//!
//! In: the config and state directory this invocation used, and where to log. Out: `/etc/cron.d/portwarden` (or its text on stdout), which runs
//! `portwarden run --once` every minute as root and appends its output to a log file.
//!
//! Why it looks the way it does:
//! - The job names the binary by its absolute, canonical path (`std::env::current_exe()`), and
//!   passes `--config` / `--state-dir` when this invocation's differ from what a bare run would
//!   find, so that cron runs exactly what the operator just tested by hand.
//! - cron hands the command to `/bin/sh` and turns every unescaped `%` into a newline, so a
//!   path with whitespace, `%`, quotes or any other shell character is refused with an error
//!   rather than quoted (see [`cron_safe`]).
//! - cron's default `PATH` is `/usr/bin:/bin`, which lacks `/usr/sbin` where `nft` lives, so the
//!   file sets `PATH` itself.
//! - Written atomically (temporary file + rename) with mode 0644: cron reads a file in
//!   `/etc/cron.d` only when no group or other may write it, and ignores names with a dot,
//!   which is what keeps the half-written temporary (`.portwarden.tmp-PID`) out of its sight.
//! - `remove` deletes only a file carrying [`MARKER`]; `install` refuses to overwrite one
//!   without it (it is the operator's own).
//!
//! The path check, the atomic write and the pass-through of `--config`/`--state-dir` are
//! shared with the systemd unit ([`super::systemd`]).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::config::{Config, DEFAULT_CONFIG_PATH};

/// Where cron looks for system jobs.
pub const DEFAULT_CRON_DIR: &str = "/etc/cron.d";
/// Name of the file in that directory: no dot, or cron ignores it.
pub const CRON_FILE_NAME: &str = "portwarden";
/// Where the job's output goes by default.
pub const DEFAULT_LOG_FILE: &str = "/var/log/portwarden.log";
/// The line that marks a file portwarden wrote (and may therefore replace or delete).
pub const MARKER: &str = "# portwarden-managed-file";

/// What can go wrong writing or removing a generated file, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(
        "{what} `{}` contains {found}, which cron or systemd would mangle; use a path made of \
         letters, digits and `/._+,:@=-` only (move or symlink the file there)",
        path.display()
    )]
    UnsafePath {
        what: &'static str,
        path: PathBuf,
        found: String,
    },
    #[error("{what} `{}` is not an absolute path", path.display())]
    Relative { what: &'static str, path: PathBuf },
    #[error("cannot find this program's own path: {0}")]
    CurrentExe(io::Error),
    #[error(
        "{} exists but was not written by portwarden (no `{MARKER}` line); leaving it alone: \
         move it away first if it should be replaced",
        path.display()
    )]
    NotOurs { path: PathBuf },
    #[error("directory {} does not exist{hint}", path.display())]
    NoDir { path: PathBuf, hint: &'static str },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> InstallError + '_ {
    move |source| InstallError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Returns the path as text when cron's `/bin/sh` and systemd's command-line parser would both
/// pass it through unchanged: absolute, and made only of `A-Za-z0-9/._+,:@=-`.
pub fn cron_safe<'a>(what: &'static str, path: &'a Path) -> Result<&'a str, InstallError> {
    let unsafe_path = |found: String| InstallError::UnsafePath {
        what,
        path: path.to_path_buf(),
        found,
    };
    let text = path
        .to_str()
        .ok_or_else(|| unsafe_path("bytes that are not UTF-8".into()))?;
    if let Some(c) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/._+,:@=-".contains(*c)))
    {
        let found = match c {
            '%' => "`%` (cron turns it into a newline)".to_string(),
            c if c.is_whitespace() => format!("whitespace ({:?})", c),
            c => format!("`{}`", c.escape_debug()),
        };
        return Err(unsafe_path(found));
    }
    if !path.is_absolute() {
        return Err(InstallError::Relative {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(text)
}

/// The global options that make a later, unattended run use the same configuration as this
/// one: `--config PATH` when a config file other than the default one was used (given with
/// `--config` or `$PORTWARDEN_CONFIG`, neither of which cron or systemd would see), and
/// `--state-dir DIR` when the state directory is not the one that config names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassThrough {
    pub config: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
}

impl PassThrough {
    /// What a bare run would miss of `config` (as loaded) and `state_dir` (as resolved).
    pub fn new(config: &Config, state_dir: &Path) -> Result<PassThrough, InstallError> {
        let state_dir_of_config = &config.state_dir;
        let config = match &config.path {
            Some(path) if path != Path::new(DEFAULT_CONFIG_PATH) => {
                Some(fs::canonicalize(path).map_err(io_err(path))?)
            }
            _ => None,
        };
        let state_dir = if state_dir != state_dir_of_config {
            Some(std::path::absolute(state_dir).map_err(io_err(state_dir))?)
        } else {
            None
        };
        Ok(PassThrough { config, state_dir })
    }

    /// The options as words, each path checked with [`cron_safe`].
    pub fn words(&self) -> Result<Vec<String>, InstallError> {
        let mut words = Vec::new();
        if let Some(p) = &self.config {
            words.push("--config".to_string());
            words.push(cron_safe("the config file", p)?.to_string());
        }
        if let Some(p) = &self.state_dir {
            words.push("--state-dir".to_string());
            words.push(cron_safe("the state directory", p)?.to_string());
        }
        Ok(words)
    }
}

/// This binary's absolute, canonical path.
pub fn own_path() -> Result<PathBuf, InstallError> {
    let exe = std::env::current_exe().map_err(InstallError::CurrentExe)?;
    fs::canonicalize(&exe).map_err(io_err(&exe))
}

/// Everything the cron file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronJob {
    /// Absolute path of the portwarden binary.
    pub exe: PathBuf,
    /// Global options placed before `run --once`.
    pub global: PassThrough,
    /// File the output is appended to.
    pub log: PathBuf,
}

impl CronJob {
    pub fn new(config: &Config, state_dir: &Path, log: &Path) -> Result<CronJob, InstallError> {
        Ok(CronJob {
            exe: own_path()?,
            global: PassThrough::new(config, state_dir)?,
            log: log.to_path_buf(),
        })
    }

    /// The command line cron runs (through `/bin/sh`).
    pub fn command(&self) -> Result<String, InstallError> {
        let mut words = vec![cron_safe("the portwarden binary", &self.exe)?.to_string()];
        words.extend(self.global.words()?);
        words.push("run".into());
        words.push("--once".into());
        let log = cron_safe("the log file", &self.log)?;
        Ok(format!("{} >>{log} 2>&1", words.join(" ")))
    }

    /// The whole file, header comment included.
    pub fn render(&self) -> Result<String, InstallError> {
        let command = self.command()?;
        Ok(format!(
            "# /etc/cron.d/{CRON_FILE_NAME}: written by `portwarden cron install` (portwarden {version}).\n\
             {MARKER}: `portwarden cron remove` deletes it, `portwarden cron install` rewrites it.\n\
             #\n\
             # Every minute, as root: one incremental pass over every configured log source (new\n\
             # LOG records since the last pass), detect port scans, ban the scanners in nftables,\n\
             # save the state, and append a one-line summary to {log}.\n\
             # PATH includes /usr/sbin, where nft lives (cron's own default does not).\n\
             SHELL=/bin/sh\n\
             PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
             \n\
             * * * * * root {command}\n",
            version = env!("CARGO_PKG_VERSION"),
            log = self.log.display(),
        ))
    }
}

/// Whether `text` is a file portwarden wrote.
pub fn is_ours(text: &str) -> bool {
    text.lines().any(|l| l.starts_with(MARKER))
}

/// Writes `dir/name` atomically with `mode`: a hidden temporary file in the same directory,
/// flushed to disk, then renamed over the final name. Refuses to replace a file without
/// [`MARKER`]. `hint` is added to the error when `dir` is missing.
pub fn write_atomically(
    dir: &Path,
    name: &str,
    text: &str,
    mode: u32,
    hint: &'static str,
) -> Result<PathBuf, InstallError> {
    if !dir.is_dir() {
        return Err(InstallError::NoDir {
            path: dir.to_path_buf(),
            hint,
        });
    }
    let path = dir.join(name);
    match fs::read_to_string(&path) {
        Ok(old) if !is_ours(&old) => return Err(InstallError::NotOurs { path }),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        // Unreadable as text (binary, permission): not ours to replace.
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            return Err(InstallError::NotOurs { path });
        }
        Err(e) => return Err(io_err(&path)(e)),
    }
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        // The umask may have removed bits from `mode`; cron cares that none are added.
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        // Make the rename itself durable.
        fs::File::open(dir)?.sync_all()
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(&path)(e));
    }
    Ok(path)
}

/// Deletes `dir/name` if portwarden wrote it. `Ok(false)`: there was nothing to delete.
pub fn remove_ours(dir: &Path, name: &str) -> Result<bool, InstallError> {
    let path = dir.join(name);
    match fs::read_to_string(&path) {
        Ok(text) if is_ours(&text) => {
            fs::remove_file(&path).map_err(io_err(&path))?;
            Ok(true)
        }
        Ok(_) => Err(InstallError::NotOurs { path }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(InstallError::NotOurs { path }),
        Err(e) => Err(io_err(&path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::config::DEFAULT_STATE_DIR;

    fn job(exe: &str, config: Option<&str>, state_dir: Option<&str>, log: &str) -> CronJob {
        CronJob {
            exe: exe.into(),
            global: PassThrough {
                config: config.map(PathBuf::from),
                state_dir: state_dir.map(PathBuf::from),
            },
            log: log.into(),
        }
    }

    #[test]
    fn renders_one_job_line_as_root_every_minute() {
        let text = job("/usr/local/bin/portwarden", None, None, DEFAULT_LOG_FILE)
            .render()
            .unwrap();
        let jobs: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.contains('=') && !l.is_empty())
            .collect();
        assert_eq!(
            jobs,
            ["* * * * * root /usr/local/bin/portwarden run --once >>/var/log/portwarden.log 2>&1"]
        );
        assert!(text.contains("\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"));
        assert!(text.contains("\nSHELL=/bin/sh\n"));
        assert!(is_ours(&text));
        assert!(
            text.ends_with('\n'),
            "cron ignores a last line without newline"
        );
    }

    #[test]
    fn passes_config_and_state_dir() {
        let line = job(
            "/opt/pw/portwarden",
            Some("/etc/pw.toml"),
            Some("/srv/pw"),
            "/var/log/pw.log",
        )
        .command()
        .unwrap();
        assert_eq!(
            line,
            "/opt/pw/portwarden --config /etc/pw.toml --state-dir /srv/pw run --once \
             >>/var/log/pw.log 2>&1"
        );
    }

    #[test]
    fn refuses_paths_cron_would_mangle() {
        for (exe, log, needle) in [
            ("/opt/my tools/portwarden", DEFAULT_LOG_FILE, "whitespace"),
            ("/opt/pw/portwarden", "/var/log/pw-%Y.log", "`%`"),
            ("/opt/pw/port;warden", DEFAULT_LOG_FILE, "`;`"),
            ("/opt/pw/$HOME", DEFAULT_LOG_FILE, "`$`"),
            ("/opt/pw/a\"b", DEFAULT_LOG_FILE, "`\\\"`"),
            ("/opt/pw/a\tb", DEFAULT_LOG_FILE, "whitespace"),
        ] {
            let err = job(exe, None, None, log).render().unwrap_err().to_string();
            assert!(err.contains(needle), "{exe} {log}: {err}");
            assert!(err.contains("letters, digits"), "{err}");
        }
        let err = job("/opt/pw/portwarden", None, None, "pw.log")
            .render()
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an absolute path"), "{err}");
    }

    fn ctx(config_path: Option<&str>, config_state: &str, state: &str) -> (Config, PathBuf) {
        (
            Config {
                path: config_path.map(PathBuf::from),
                state_dir: config_state.into(),
                ..Config::default()
            },
            state.into(),
        )
    }

    #[test]
    fn pass_through_only_what_a_bare_run_would_miss() {
        let none = PassThrough::default();
        let pass = |c: &(Config, PathBuf)| PassThrough::new(&c.0, &c.1).unwrap();
        assert_eq!(pass(&ctx(None, DEFAULT_STATE_DIR, DEFAULT_STATE_DIR)), none);
        // The default config file is found by a bare run too.
        let default_file = ctx(
            Some(DEFAULT_CONFIG_PATH),
            DEFAULT_STATE_DIR,
            DEFAULT_STATE_DIR,
        );
        assert_eq!(pass(&default_file), none);
        // An explicit config is canonicalised; a state dir from the flag is passed.
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("pw.toml");
        fs::write(&conf, "").unwrap();
        let explicit = ctx(Some(conf.to_str().unwrap()), DEFAULT_STATE_DIR, "/srv/pw");
        assert_eq!(
            pass(&explicit),
            PassThrough {
                config: Some(fs::canonicalize(&conf).unwrap()),
                state_dir: Some("/srv/pw".into()),
            }
        );
        // The state dir the config names is found by a bare run.
        let from_config = ctx(Some(conf.to_str().unwrap()), "/srv/pw", "/srv/pw");
        assert_eq!(pass(&from_config).state_dir, None);
    }

    #[test]
    fn writes_atomically_with_mode_0644_and_removes_only_its_own() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let text = job("/usr/bin/portwarden", None, None, DEFAULT_LOG_FILE)
            .render()
            .unwrap();
        let path = write_atomically(dir.path(), CRON_FILE_NAME, &text, 0o644, "").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o644);
        // Rewriting our own file works and leaves no temporary behind.
        write_atomically(dir.path(), CRON_FILE_NAME, &text, 0o644, "").unwrap();
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [CRON_FILE_NAME]);
        assert!(remove_ours(dir.path(), CRON_FILE_NAME).unwrap());
        assert!(!remove_ours(dir.path(), CRON_FILE_NAME).unwrap());

        // The operator's own file is neither replaced nor removed.
        fs::write(&path, "* * * * * root /usr/local/bin/mine\n").unwrap();
        let err = write_atomically(dir.path(), CRON_FILE_NAME, &text, 0o644, "").unwrap_err();
        assert!(matches!(err, InstallError::NotOurs { .. }), "{err}");
        let err = remove_ours(dir.path(), CRON_FILE_NAME).unwrap_err();
        assert!(
            err.to_string().contains("not written by portwarden"),
            "{err}"
        );
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "* * * * * root /usr/local/bin/mine\n"
        );

        let err = write_atomically(&dir.path().join("nope"), "x", "", 0o644, ": install it")
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("does not exist: install it"), "{err}");
    }
}
