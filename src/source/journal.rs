//! The journal source: `journalctl -o json`, one JSON object per line, run without a shell.
//!
//! In: the `journalctl` path, extra arguments from the config (`--file=F`, `--directory=D`,
//! `--merge`, more matches), the saved [`Cursor::Journal`] and the [`Mode`]. Out: each entry's
//! JSON line, untouched; the parser reads `MESSAGE` and decides trust from `_TRANSPORT`.
//!
//! The command line is
//! `journalctl -o json --no-pager [--after-cursor=C] [--follow --lines=all] ARGS _TRANSPORT=kernel`.
//!
//! Why the match `_TRANSPORT=kernel` rather than `-k`: `-k` also implies `-b` (this boot only),
//! which would drop the kernel records of earlier boots that a journal `--file` or a cron pass
//! after a reboot still has to read. The match keeps only kernel-originated entries, a first
//! line of defence; the parser still checks `_TRANSPORT` on every record. journalctl ORs
//! matches on one field, so a config that adds `_TRANSPORT=syslog` to `args` also gets
//! syslog entries (for forensics; the parser rejects them unless told to accept untrusted
//! records).
//!
//! The cursor is the `__CURSOR` of the last entry handed out, read from each line with
//! serde_json (other fields are skipped, not copied). Without a cursor the first pass reads
//! every matching entry the journal holds, like the kmsg and file sources read from their
//! start.
//!
//! Cron mode ([`Mode::Once`]) runs journalctl once per pass and waits for it; daemon mode
//! ([`Mode::Follow`]) keeps one `journalctl --follow` running, reads its pipe without blocking
//! and `poll(2)`s it; if it dies it is restarted from the cursor on the next call, after the
//! error (with its stderr) was reported. stderr is never discarded: a thread keeps its first
//! 8 KiB for the error message.

use std::ffi::OsString;
use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Deserialize;

use crate::record::{Record, SourceKind};

use super::{Cursor, Mode, ReadStats, Source, SourceError};
use crate::input::{LineBuffer, Piece};

const CHUNK: usize = 64 * 1024;
const STDERR_KEEP: usize = 8 * 1024;

/// The stable id of a journal source with these extra arguments.
pub fn id_for(args: &[String]) -> String {
    if args.is_empty() {
        "journal".to_string()
    } else {
        format!("journal:{}", args.join(" "))
    }
}

/// Reads kernel entries through `journalctl`.
pub struct JournalSource {
    id: String,
    program: PathBuf,
    args: Vec<String>,
    mode: Mode,
    cursor: Option<String>,
    /// The running `journalctl --follow` (daemon mode).
    follower: Option<Running>,
}

/// A running journalctl with the reader state of its stdout.
struct Running {
    child: Child,
    stdout: ChildStdout,
    stderr: Option<JoinHandle<String>>,
    lines: LineBuffer,
}

#[derive(Deserialize)]
struct EntryCursor<'a> {
    #[serde(rename = "__CURSOR", borrow)]
    cursor: std::borrow::Cow<'a, str>,
}

/// The `__CURSOR` of one `journalctl -o json` line.
pub fn entry_cursor(line: &[u8]) -> Option<String> {
    let e: EntryCursor<'_> = serde_json::from_slice(line).ok()?;
    (!e.cursor.is_empty()).then(|| e.cursor.into_owned())
}

impl JournalSource {
    /// Nothing is spawned until the first pass.
    pub fn new(program: &Path, args: &[String], cursor: Option<Cursor>, mode: Mode) -> Self {
        let cursor = match cursor {
            None => None,
            Some(Cursor::Journal { cursor }) => Some(cursor),
            Some(other) => {
                tracing::warn!(
                    cursor = %other.to_store(),
                    "ignoring a cursor that is not a journal cursor"
                );
                None
            }
        };
        JournalSource {
            id: id_for(args),
            program: program.to_path_buf(),
            args: args.to_vec(),
            mode,
            cursor,
            follower: None,
        }
    }

    /// The arguments journalctl gets (without the program), for logs and tests.
    pub fn command_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["-o".into(), "json".into(), "--no-pager".into()];
        if let Some(c) = &self.cursor {
            a.push(format!("--after-cursor={c}").into());
        }
        if self.mode == Mode::Follow {
            a.push("--follow".into());
            a.push("--lines=all".into());
        }
        a.extend(self.args.iter().map(OsString::from));
        a.push("_TRANSPORT=kernel".into());
        a
    }

    fn spawn(&self) -> Result<Running, SourceError> {
        let mut child = Command::new(&self.program)
            .args(self.command_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| SourceError::Spawn {
                program: self.program.clone(),
                source,
            })?;
        let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
            // Both were configured as pipes just above, so std always provides them.
            let _ = child.kill();
            let _ = child.wait();
            return Err(SourceError::Spawn {
                program: self.program.clone(),
                source: std::io::Error::other("no pipe to journalctl"),
            });
        };
        let stderr = std::thread::Builder::new()
            .name("journalctl-stderr".into())
            .spawn(move || {
                let mut kept = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    match stderr.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            let room = STDERR_KEEP.saturating_sub(kept.len());
                            kept.extend_from_slice(&buf[..n.min(room)]);
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                String::from_utf8_lossy(&kept).trim().to_string()
            })
            .ok();
        Ok(Running {
            child,
            stdout,
            stderr,
            lines: LineBuffer::default(),
        })
    }

    /// Reap a journalctl whose stdout ended; `Err` when it failed.
    fn finish(&self, mut run: Running) -> Result<(), SourceError> {
        let status = run.child.wait().map_err(|source| SourceError::Spawn {
            program: self.program.clone(),
            source,
        })?;
        let stderr = run
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        if status.success() {
            if !stderr.is_empty() {
                tracing::warn!(program = %self.program.display(), %stderr, "journalctl said");
            }
            Ok(())
        } else {
            Err(SourceError::Journalctl {
                program: self.program.clone(),
                status: status.to_string(),
                stderr,
            })
        }
    }

    /// Hand one JSON line out, moving the cursor past it.
    fn deliver(
        cursor: &mut Option<String>,
        stats: &mut ReadStats,
        piece: Piece<'_>,
        sink: &mut dyn FnMut(Record<'_>),
    ) {
        match piece {
            Piece::Long { .. } => stats.skipped_long += 1,
            Piece::Line(b"") => {}
            Piece::Line(line) => match entry_cursor(line) {
                Some(c) => {
                    *cursor = Some(c);
                    stats.records += 1;
                    stats.bytes += line.len() as u64;
                    sink(Record {
                        kind: SourceKind::Journal,
                        bytes: line,
                    });
                }
                None => stats.malformed += 1,
            },
        }
    }

    fn read_once(&mut self, sink: &mut dyn FnMut(Record<'_>)) -> Result<ReadStats, SourceError> {
        let mut run = self.spawn()?;
        let mut stats = ReadStats::default();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match run.stdout.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(source) => {
                    let _ = run.child.kill();
                    let _ = run.child.wait();
                    return Err(SourceError::Read {
                        path: self.program.clone(),
                        source,
                    });
                }
            };
            let cursor = &mut self.cursor;
            run.lines.feed(&buf[..n], &mut |p| {
                Self::deliver(cursor, &mut stats, p, sink)
            });
        }
        if run.lines.unfinished() > 0 {
            stats.malformed += 1;
        }
        self.finish(run)?;
        Ok(stats)
    }

    fn read_follow(&mut self, sink: &mut dyn FnMut(Record<'_>)) -> Result<ReadStats, SourceError> {
        if self.follower.is_none() {
            let run = self.spawn()?;
            set_nonblocking(run.stdout.as_raw_fd()).map_err(|source| SourceError::Read {
                path: self.program.clone(),
                source,
            })?;
            self.follower = Some(run);
        }
        let mut stats = ReadStats::default();
        let mut buf = vec![0u8; CHUNK];
        let ended = loop {
            let Some(run) = self.follower.as_mut() else {
                break false;
            };
            let n = match run.stdout.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(source) => {
                    if let Some(mut run) = self.follower.take() {
                        let _ = run.child.kill();
                        let _ = run.child.wait();
                    }
                    return Err(SourceError::Read {
                        path: self.program.clone(),
                        source,
                    });
                }
            };
            let cursor = &mut self.cursor;
            run.lines.feed(&buf[..n], &mut |p| {
                Self::deliver(cursor, &mut stats, p, sink)
            });
        };
        if ended && let Some(run) = self.follower.take() {
            // journalctl --follow does not end by itself: report why, restart next call.
            self.finish(run)?;
            return Err(SourceError::Journalctl {
                program: self.program.clone(),
                status: "ended".into(),
                stderr: "journalctl --follow exited; it is restarted from the cursor".into(),
            });
        }
        Ok(stats)
    }
}

fn set_nonblocking(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    // SAFETY: `fd` is an open descriptor owned by the ChildStdout that outlives these calls.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above; only O_NONBLOCK is added to the descriptor's own flags.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl Source for JournalSource {
    fn id(&self) -> &str {
        &self.id
    }

    fn cursor(&self) -> Option<Cursor> {
        self.cursor.clone().map(|cursor| Cursor::Journal { cursor })
    }

    fn read_available(
        &mut self,
        sink: &mut dyn FnMut(Record<'_>),
    ) -> Result<ReadStats, SourceError> {
        match self.mode {
            Mode::Once => self.read_once(sink),
            Mode::Follow => self.read_follow(sink),
        }
    }

    fn wait(&mut self, timeout: Duration) -> Result<(), SourceError> {
        match (&self.follower, self.mode) {
            (Some(run), Mode::Follow) => super::poll_readable(run.stdout.as_raw_fd(), timeout)
                .map_err(|source| SourceError::Read {
                    path: self.program.clone(),
                    source,
                }),
            // Not started yet (the next read starts it), or cron mode: nothing to wait on.
            (None, Mode::Follow) => Ok(()),
            (_, Mode::Once) => {
                std::thread::sleep(timeout);
                Ok(())
            }
        }
    }
}

impl Drop for JournalSource {
    fn drop(&mut self) {
        if let Some(mut run) = self.follower.take() {
            let _ = run.child.kill();
            let _ = run.child.wait();
            if let Some(h) = run.stderr.take() {
                let _ = h.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_from_a_json_line() {
        let line = br#"{"__CURSOR":"s=1;i=2;b=3","_TRANSPORT":"kernel","MESSAGE":"x \"__CURSOR\":\"no\""}"#;
        assert_eq!(entry_cursor(line).as_deref(), Some("s=1;i=2;b=3"));
        let escaped = br#"{"MESSAGE":[1,2],"__CURSOR":"s=a\u003bi"}"#;
        assert_eq!(entry_cursor(escaped).as_deref(), Some("s=a;i"));
        for bad in [
            &b"{}"[..],
            b"not json",
            b"{\"__CURSOR\":\"\"}",
            b"{\"__CURSOR\":5}",
        ] {
            assert_eq!(entry_cursor(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn command_line_has_cursor_follow_args_and_kernel_match() {
        let args = vec!["--directory=/j".to_string(), "--merge".to_string()];
        let s = JournalSource::new(
            Path::new("journalctl"),
            &args,
            Some(Cursor::Journal {
                cursor: "s=1".into(),
            }),
            Mode::Follow,
        );
        let want: Vec<OsString> = [
            "-o",
            "json",
            "--no-pager",
            "--after-cursor=s=1",
            "--follow",
            "--lines=all",
            "--directory=/j",
            "--merge",
            "_TRANSPORT=kernel",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        assert_eq!(s.command_args(), want);
        assert_eq!(s.id(), "journal:--directory=/j --merge");
        let once = JournalSource::new(Path::new("journalctl"), &[], None, Mode::Once);
        assert_eq!(once.command_args().len(), 4);
    }

    #[test]
    fn a_missing_journalctl_is_a_spawn_error() {
        let mut s = JournalSource::new(Path::new("/nonexistent/journalctl"), &[], None, Mode::Once);
        let err = s.read_available(&mut |_| {}).unwrap_err();
        assert!(matches!(err, SourceError::Spawn { .. }), "{err}");
    }
}
