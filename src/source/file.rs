//! The file source: any log file (`/var/log/kern.log` by choice), followed across rotation.
//!
//! In: a path and the saved [`Cursor::File`]. Out: each complete line (without its newline)
//! as a [`Record`] of kind [`SourceKind::File`].
//!
//! What it guarantees, and how:
//! * **A partial last line** (no newline yet) is never handed out: the cursor's offset stays
//!   at the start of that line, and the bytes wait in a `LineBuffer` until the newline comes.
//! * **Rotation by rename** (logrotate's default): after reading the open file to its end, the
//!   path is stat'ed; a different device/inode there means the file was renamed away. The old
//!   file is read to its end once more (lines written between our read and the rename), then
//!   the new file from offset 0, in the same pass. The old file stays open and is read again
//!   at the start of the next pass, for a writer that keeps appending until it reopens
//!   (rsyslog until its HUP); such late lines come after the new file's first lines, which is
//!   the only case where file order is not kept. Once a pass finds nothing new in it, its
//!   unterminated last line, if any, is handed out and it is closed. Two renames between two
//!   looks hide the middle file from this (and from any follower); poll often enough.
//! * **Rotation by copytruncate** (same inode): the file is shorter than our position, or its
//!   first line (at most [`HEAD_MAX`] bytes, hashed with FNV-1a into the cursor) is not the
//!   one we read: start again at 0. The hash catches a file truncated and rewritten past our
//!   offset between two passes; a rewrite that starts with the very same first line cannot be
//!   told apart (timestamps in syslog headers make this unlikely).
//! * **Resuming**: the cursor holds device, inode, offset and the head hash. If the path now
//!   holds another inode, the rotated file is looked for beside it (`kern.log.1`,
//!   `kern.log-20261124`, same device and inode) and finished from the offset before the new
//!   file is read from 0.
//! * **A missing file** is not an error: the source waits for it to appear.
//! * **Lines over [`MAX_LINE_LEN`](crate::input::MAX_LINE_LEN)** are skipped and counted with bounded memory.
//!
//! `/var/log/syslog`, `/var/log/messages` and `/var/log/user.log` get any user's
//! `logger -t kernel ...`, so a LOG-looking line there may be forged: a warning says so at
//! open and recommends `/var/log/kern.log`, which rsyslog fills only from the kernel facility
//! (user-space `kern` messages are rewritten to `user`).
//!
//! Daemon mode has no inotify here: [`Source::wait`] checks size and inode every 100 ms.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::record::{Record, SourceKind};

use super::{Cursor, ReadStats, Source, SourceError};
use crate::input::{LineBuffer, Piece};

/// At most this many bytes of the first line are hashed into the cursor.
pub const HEAD_MAX: usize = 4096;
const CHUNK: usize = 64 * 1024;
const WAIT_STEP: Duration = Duration::from_millis(100);

/// Files any local user can write kernel-looking lines into.
pub const FORGEABLE: [&str; 3] = ["/var/log/syslog", "/var/log/messages", "/var/log/user.log"];

/// Follows one log file.
pub struct FileSource {
    id: String,
    path: PathBuf,
    /// The file at the path, being read.
    current: Option<OpenFile>,
    /// A file rotated away by rename, drained until it has nothing new.
    previous: Option<OpenFile>,
    /// The cursor given at open, kept while the file does not exist yet.
    resume: Option<Cursor>,
}

/// One open file and where we are in it.
struct OpenFile {
    file: File,
    dev: u64,
    ino: u64,
    /// After the last complete line handed out or skipped.
    offset: u64,
    /// Where the next read starts (offset + bytes of the unfinished line).
    read_pos: u64,
    /// Length and hash of the file's first line, once we are past it.
    head: Option<(u32, u64)>,
    lines: LineBuffer,
}

impl OpenFile {
    fn new(file: File, meta: &std::fs::Metadata, offset: u64) -> OpenFile {
        OpenFile {
            file,
            dev: meta.dev(),
            ino: meta.ino(),
            offset,
            read_pos: offset,
            head: None,
            lines: LineBuffer::default(),
        }
    }

    fn restart(&mut self) {
        self.offset = 0;
        self.read_pos = 0;
        self.head = None;
        self.lines.clear();
    }

    /// Length and hash of the first line as the file holds it now.
    fn read_head(&self) -> std::io::Result<Option<(u32, u64)>> {
        let mut buf = [0u8; HEAD_MAX];
        let mut got = 0;
        while got < HEAD_MAX {
            match self.file.read_at(&mut buf[got..], got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let head = match memchr::memchr(b'\n', &buf[..got]) {
            Some(i) => &buf[..=i],
            None if got == HEAD_MAX => &buf[..],
            None => return Ok(None),
        };
        Ok(Some((head.len() as u32, super::fnv1a(head))))
    }

    /// Whether the file was truncated or rewritten under us (copytruncate).
    fn replaced(&self) -> std::io::Result<bool> {
        let len = self.file.metadata()?.len();
        if len < self.read_pos {
            return Ok(true);
        }
        let Some((head_len, head_hash)) = self.head else {
            return Ok(false);
        };
        Ok(match self.read_head()? {
            Some((l, h)) => l != head_len || h != head_hash,
            None => true,
        })
    }

    /// Read to the end of the file, handing out complete lines. Returns the bytes read.
    fn drain(
        &mut self,
        stats: &mut ReadStats,
        sink: &mut dyn FnMut(Record<'_>),
    ) -> std::io::Result<u64> {
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0;
        loop {
            let n = match self.file.read_at(&mut buf, self.read_pos) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.read_pos += n as u64;
            total += n as u64;
            let offset = &mut self.offset;
            self.lines.feed(&buf[..n], &mut |piece| match piece {
                Piece::Line(line) => {
                    *offset += line.len() as u64 + 1;
                    stats.records += 1;
                    stats.bytes += line.len() as u64;
                    sink(Record {
                        kind: SourceKind::File,
                        bytes: line,
                    });
                }
                Piece::Long { consumed } => {
                    *offset += consumed;
                    stats.skipped_long += 1;
                }
            });
        }
        if self.head.is_none() && self.offset > 0 {
            self.head = self.read_head()?;
        }
        Ok(total)
    }

    /// The file is done (rotated away, writer gone): hand out its unterminated last line.
    fn finish(mut self, stats: &mut ReadStats, sink: &mut dyn FnMut(Record<'_>)) {
        if let Some(line) = self.lines.take_partial() {
            stats.records += 1;
            stats.bytes += line.len() as u64;
            sink(Record {
                kind: SourceKind::File,
                bytes: &line,
            });
        }
    }
}

fn read_error(path: &Path, source: std::io::Error) -> SourceError {
    SourceError::Read {
        path: path.to_path_buf(),
        source,
    }
}

fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

impl FileSource {
    /// Follow `path`, resuming after `cursor`. A file that does not exist yet is waited for.
    pub fn open(path: &Path, cursor: Option<Cursor>) -> Result<FileSource, SourceError> {
        if FORGEABLE.iter().any(|f| Path::new(f) == path) {
            tracing::warn!(
                path = %path.display(),
                "any local user can write kernel-looking lines into this file (`logger -t \
                 kernel ...`), so a forged LOG record could get an address banned; read \
                 /var/log/kern.log, /dev/kmsg or the journal instead"
            );
        }
        let resume = match cursor {
            Some(c @ Cursor::File { .. }) => Some(c),
            None => None,
            Some(other) => {
                tracing::warn!(
                    path = %path.display(),
                    cursor = %other.to_store(),
                    "ignoring a cursor that is not a file cursor"
                );
                None
            }
        };
        let mut source = FileSource {
            id: format!("file:{}", path.display()),
            path: path.to_path_buf(),
            current: None,
            previous: None,
            resume,
        };
        source.try_open()?;
        Ok(source)
    }

    /// Open the file at the path when it exists, placing it after the resume cursor.
    fn try_open(&mut self) -> Result<(), SourceError> {
        if self.current.is_some() {
            return Ok(());
        }
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(SourceError::Open {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let meta = file.metadata().map_err(|e| read_error(&self.path, e))?;
        let mut open = OpenFile::new(file, &meta, 0);
        if let Some(Cursor::File {
            dev,
            ino,
            offset,
            head_len,
            head_hash,
        }) = self.resume.take()
        {
            if identity(&meta) == (dev, ino) {
                open.offset = offset;
                open.read_pos = offset;
                open.head = (offset > 0).then_some((head_len, head_hash));
                if open.replaced().map_err(|e| read_error(&self.path, e))? {
                    tracing::info!(path = %self.path.display(), "file was truncated or rewritten since the cursor; reading it from the start");
                    open.restart();
                }
            } else if let Some(old) = self.find_rotated(dev, ino) {
                let mut old = OpenFile::new(old, &meta, offset);
                old.dev = dev;
                old.ino = ino;
                old.head = (offset > 0).then_some((head_len, head_hash));
                if old.replaced().map_err(|e| read_error(&self.path, e))? {
                    old.restart();
                }
                self.previous = Some(old);
            } else {
                tracing::info!(path = %self.path.display(), "file was replaced since the cursor and the old one is gone; reading the new one from the start");
            }
        }
        self.current = Some(open);
        Ok(())
    }

    /// The rotated file with this identity beside the path (`NAME.1`, `NAME-20261124`, ...).
    fn find_rotated(&self, dev: u64, ino: u64) -> Option<File> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = self.path.file_name()?.to_string_lossy().into_owned();
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let other = entry.file_name().to_string_lossy().into_owned();
            if other == name || !other.starts_with(&name) {
                continue;
            }
            let path = entry.path();
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if identity(&meta) == (dev, ino) {
                tracing::info!(rotated = %path.display(), "finishing the rotated file from the cursor");
                return File::open(&path).ok();
            }
        }
        None
    }
}

impl Source for FileSource {
    fn id(&self) -> &str {
        &self.id
    }

    fn cursor(&self) -> Option<Cursor> {
        match &self.current {
            Some(f) => {
                let (head_len, head_hash) = f.head.unwrap_or((0, 0));
                Some(Cursor::File {
                    dev: f.dev,
                    ino: f.ino,
                    offset: f.offset,
                    head_len,
                    head_hash,
                })
            }
            None => self.resume.clone(),
        }
    }

    fn read_available(
        &mut self,
        sink: &mut dyn FnMut(Record<'_>),
    ) -> Result<ReadStats, SourceError> {
        let mut stats = ReadStats::default();
        // 1. A file rotated away: whatever the writer added since, then close it when idle.
        if let Some(mut old) = self.previous.take() {
            let got = old
                .drain(&mut stats, sink)
                .map_err(|e| read_error(&self.path, e))?;
            if got > 0 {
                self.previous = Some(old);
            } else {
                old.finish(&mut stats, sink);
            }
        }
        self.try_open()?;
        // 2. The file at the path, until the path holds no other file.
        loop {
            let Some(cur) = self.current.as_mut() else {
                return Ok(stats);
            };
            if cur.replaced().map_err(|e| read_error(&self.path, e))? {
                tracing::info!(path = %self.path.display(), "file was truncated (copytruncate); reading it from the start");
                cur.restart();
            }
            cur.drain(&mut stats, sink)
                .map_err(|e| read_error(&self.path, e))?;
            let now = match std::fs::metadata(&self.path) {
                Ok(m) => identity(&m),
                // Renamed away and not recreated yet: keep reading the old one.
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(stats),
                Err(e) => return Err(read_error(&self.path, e)),
            };
            if now == (cur.dev, cur.ino) {
                return Ok(stats);
            }
            // Renamed: what the writer added between our read and the rename is there now.
            cur.drain(&mut stats, sink)
                .map_err(|e| read_error(&self.path, e))?;
            // Rotated by rename: the old file, read to its end, waits one more pass.
            let old = self.current.take();
            if let Some(older) = std::mem::replace(&mut self.previous, old) {
                older.finish(&mut stats, sink);
            }
            self.try_open()?;
        }
    }

    fn wait(&mut self, timeout: Duration) -> Result<(), SourceError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.previous.is_some() {
                return Ok(());
            }
            let changed = match (&self.current, std::fs::metadata(&self.path)) {
                (None, Ok(_)) => true,
                (None, Err(_)) => false,
                (Some(cur), at_path) => {
                    let grown = cur.file.metadata().map(|m| m.len() != cur.read_pos);
                    let moved = at_path.map(|m| identity(&m) != (cur.dev, cur.ino));
                    grown.unwrap_or(true) || moved.unwrap_or(false)
                }
            };
            let now = Instant::now();
            if changed || now >= deadline {
                return Ok(());
            }
            std::thread::sleep(WAIT_STEP.min(deadline - now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn collect(src: &mut FileSource) -> (Vec<String>, ReadStats) {
        let mut out = Vec::new();
        let stats = src
            .read_available(&mut |r| out.push(String::from_utf8_lossy(r.bytes).into_owned()))
            .unwrap();
        (out, stats)
    }

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn partial_line_waits_for_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kern.log");
        append(&p, "one\ntw");
        let mut s = FileSource::open(&p, None).unwrap();
        assert_eq!(collect(&mut s).0, ["one"]);
        let Some(Cursor::File { offset, .. }) = s.cursor() else {
            panic!("no cursor")
        };
        assert_eq!(offset, 4);
        append(&p, "o\nthree\n");
        assert_eq!(collect(&mut s).0, ["two", "three"]);
        assert!(collect(&mut s).0.is_empty());
    }

    #[test]
    fn cursor_of_a_file_not_yet_there_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("later.log");
        let mut s = FileSource::open(&p, None).unwrap();
        assert!(collect(&mut s).0.is_empty());
        assert_eq!(s.cursor(), None);
        append(&p, "hello\n");
        assert_eq!(collect(&mut s).0, ["hello"]);
    }

    #[test]
    fn long_lines_are_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kern.log");
        let long = "x".repeat(crate::input::MAX_LINE_LEN + 10);
        append(&p, &format!("a\n{long}\nb\n"));
        let mut s = FileSource::open(&p, None).unwrap();
        let (out, stats) = collect(&mut s);
        assert_eq!(out, ["a", "b"]);
        assert_eq!(stats.skipped_long, 1);
        let Some(Cursor::File { offset, .. }) = s.cursor() else {
            panic!("no cursor")
        };
        assert_eq!(offset, std::fs::metadata(&p).unwrap().len());
    }
}
