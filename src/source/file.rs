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
//!   the new file from offset 0, in the same pass. The old file then **lingers**: a writer keeps
//!   appending to it until it reopens the path (rsyslog until its HUP), so every later pass
//!   reads it again first, and it is closed only by a pass that finds nothing new in it once
//!   its ctime is more than [`ROTATED_LINGER`] old. The ctime moves with every write and with
//!   the rename itself, so a quiet log renamed a moment ago is not taken for finished. The
//!   lingering files are part of the cursor ([`Cursor::File::rotated`]), so cron passes (a new
//!   source each minute) finish them too, and [`Source::wait`] wakes when one grows. Late
//!   lines come after the new file's first lines, the only case where file order is not kept.
//!   When a lingering file is closed its unterminated last line, if any, is handed out; one
//!   that is truncated or rewritten meanwhile (a copytruncate onto `NAME.1`) is closed
//!   without reading what it holds now, which is a copy of lines read already. At
//!   most [`MAX_ROTATED`] files linger; two renames between two looks hide the middle file
//!   from this (and from any follower): poll often enough.
//! * **Rotation by copytruncate** (same inode): the file is shorter than our position, or its
//!   first line (at most [`HEAD_MAX`] bytes, hashed with FNV-1a into the cursor) is not the
//!   one we read: start again at 0. The hash catches a file truncated and rewritten past our
//!   offset between two passes; a rewrite that starts with the very same first line cannot be
//!   told apart (timestamps in syslog headers make this unlikely).
//! * **Resuming**: the cursor holds device, inode, offset and the head hash. If the path now
//!   holds another inode, the rotated file is looked for beside it (`kern.log.1`,
//!   `kern.log-20261124`, same device and inode) and finished from the offset before the new
//!   file is read from 0.
//! * **A pass ends**: each read of a file stops at the length it had when the read began, so a
//!   writer that never stops cannot keep a pass (and the run lock) forever; the rest is the
//!   next pass's.
//! * **What is not a log file is refused**, every time the path is opened, with an error that
//!   says what it is: a directory, a FIFO, a device (`/dev/zero` never ends, a FIFO without a
//!   writer blocks an `open`; the file is opened non-blocking and checked before any read), a
//!   gzip-compressed file (`kern.log.2.gz`: `portwarden scan` reads those).
//! * **A missing file** is an error of the pass ([`SourceError::Missing`]), so that a typo in
//!   the path is seen, unless a rotated file of the cursor is being finished (the moment
//!   between logrotate's rename and the writer's new file). The source still waits for the
//!   file and reads it as soon as it appears.
//! * **Lines over [`MAX_LINE_LEN`](crate::input::MAX_LINE_LEN)** are skipped and counted with bounded memory.
//!
//! `/var/log/syslog`, `/var/log/messages` and `/var/log/user.log` get any user's
//! `logger -t kernel ...`, so a LOG-looking line there may be forged: a warning says so at
//! open and recommends `/var/log/kern.log`, which rsyslog fills only from the kernel facility
//! (user-space `kern` messages are rewritten to `user`).
//!
//! Daemon mode has no inotify here: [`Source::wait`] checks sizes and inodes every 100 ms.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::record::{Record, SourceKind};

use super::{Cursor, FilePosition, ReadStats, Source, SourceError};
use crate::input::{LineBuffer, Piece};

/// At most this many bytes of the first line are hashed into the cursor.
pub const HEAD_MAX: usize = 4096;
/// A file rotated away by rename is read until a pass finds nothing new in it and nothing
/// (no write, no rename) touched it for this long. rsyslog reopens at logrotate's HUP, within
/// a second or two; a minute covers a slow writer and one cron period.
pub const ROTATED_LINGER: Duration = Duration::from_secs(60);
/// At most this many rotated files are followed at once (the oldest is closed first).
pub const MAX_ROTATED: usize = 4;
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
    /// Files rotated away by rename, oldest first, read until they go quiet (see the module
    /// doc).
    previous: Vec<OpenFile>,
    /// The cursor given at open, kept while the file does not exist yet.
    resume: Option<Cursor>,
    /// [`ROTATED_LINGER`] (a field so that tests can shorten it).
    linger: Duration,
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

    fn position(&self) -> FilePosition {
        let (head_len, head_hash) = self.head.unwrap_or((0, 0));
        FilePosition {
            dev: self.dev,
            ino: self.ino,
            offset: self.offset,
            head_len,
            head_hash,
        }
    }

    /// Place the file at a saved position (same identity), or at 0 when it was truncated or
    /// rewritten since.
    fn resume_at(&mut self, offset: u64, head_len: u32, head_hash: u64) -> std::io::Result<()> {
        self.offset = offset;
        self.read_pos = offset;
        self.head = (offset > 0).then_some((head_len, head_hash));
        if self.replaced()? {
            self.restart();
            return Ok(());
        }
        Ok(())
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

    /// Whether the file has bytes past where we read.
    fn grown(&self) -> bool {
        self.file
            .metadata()
            .map(|m| m.len() != self.read_pos)
            .unwrap_or(true)
    }

    /// Whether nothing wrote to or renamed this file for `linger` ([`ROTATED_LINGER`]).
    fn quiet(&self, linger: Duration) -> bool {
        let Ok(meta) = self.file.metadata() else {
            return true;
        };
        let changed = SystemTime::UNIX_EPOCH
            + Duration::new(
                u64::try_from(meta.ctime()).unwrap_or(0),
                u32::try_from(meta.ctime_nsec()).unwrap_or(0),
            );
        SystemTime::now()
            .duration_since(changed)
            .is_ok_and(|idle| idle >= linger)
    }

    /// Read to the end the file had when this call began, handing out complete lines (bytes
    /// written meanwhile are left for the next call: see "A pass ends" in the module doc).
    /// Returns the bytes read.
    fn drain(
        &mut self,
        stats: &mut ReadStats,
        sink: &mut dyn FnMut(Record<'_>),
    ) -> std::io::Result<u64> {
        let end = self.file.metadata()?.len();
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0;
        while self.read_pos < end {
            let want = usize::try_from(end - self.read_pos).map_or(CHUNK, |n| n.min(CHUNK));
            let n = match self.file.read_at(&mut buf[..want], self.read_pos) {
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

/// What a file type is, for [`SourceError::NotRegular`].
fn describe(kind: std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Open `path` for reading if it is a plain log file: `Ok(None)` when it does not exist; an
/// error naming what it is otherwise. Opened with `O_NONBLOCK` so that a FIFO without a writer
/// cannot block the open; the check is on the opened file, so nothing can be swapped in
/// between.
fn open_log_file(path: &Path) -> Result<Option<(File, std::fs::Metadata)>, SourceError> {
    let file = match File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SourceError::Open {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let meta = file.metadata().map_err(|e| read_error(path, e))?;
    if !meta.is_file() {
        return Err(SourceError::NotRegular {
            path: path.to_path_buf(),
            what: describe(meta.file_type()),
        });
    }
    let mut magic = [0u8; 2];
    let gzip = path.extension().is_some_and(|e| e == "gz")
        || matches!(file.read_at(&mut magic, 0), Ok(2) if magic == [0x1f, 0x8b]);
    if gzip {
        return Err(SourceError::Compressed {
            path: path.to_path_buf(),
        });
    }
    Ok(Some((file, meta)))
}

/// Whether a pass could read `path` now (see [`super::check`]).
pub fn check(path: &Path) -> Result<(), SourceError> {
    match open_log_file(path)? {
        Some(_) => Ok(()),
        None => Err(SourceError::Missing {
            path: path.to_path_buf(),
        }),
    }
}

impl FileSource {
    /// Follow `path`, resuming after `cursor`. A file that does not exist yet is waited for
    /// (and reported by each pass until it appears); anything but a plain log file is an
    /// error.
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
            previous: Vec::new(),
            resume,
            linger: ROTATED_LINGER,
        };
        source.try_open()?;
        Ok(source)
    }

    /// How long a rotated file is followed after it was last written or renamed
    /// ([`ROTATED_LINGER`] unless set).
    pub fn set_rotated_linger(&mut self, linger: Duration) {
        self.linger = linger;
    }

    /// Open the file at the path when it exists, placing it after the resume cursor, and
    /// pick up the cursor's rotated files beside it (also while the path is missing).
    fn try_open(&mut self) -> Result<(), SourceError> {
        if self.current.is_some() {
            return Ok(());
        }
        let opened = open_log_file(&self.path)?;
        let Some(Cursor::File {
            dev,
            ino,
            offset,
            head_len,
            head_hash,
            rotated,
        }) = self.resume.take()
        else {
            if let Some((file, meta)) = opened {
                self.current = Some(OpenFile::new(file, &meta, 0));
            }
            return Ok(());
        };
        let Some((file, meta)) = opened else {
            // Not there (renamed away, not recreated yet): finish the cursor's files beside
            // it, and keep the cursor for when the path comes back.
            let found = self.resume_rotated(&rotated, dev, ino, offset, head_len, head_hash)?;
            // Once found, the main file is one of `previous`: never reopen it at the old offset.
            let (dev, ino) = if let Some(at) = found {
                self.previous.push(at);
                (0, 0)
            } else {
                (dev, ino)
            };
            self.resume = Some(Cursor::File {
                dev,
                ino,
                offset,
                head_len,
                head_hash,
                rotated: Vec::new(),
            });
            return Ok(());
        };
        let mut open = OpenFile::new(file, &meta, 0);
        if identity(&meta) == (dev, ino) {
            self.resume_rotated(&rotated, 0, 0, 0, 0, 0)?;
            open.resume_at(offset, head_len, head_hash)
                .map_err(|e| read_error(&self.path, e))?;
            if open.offset != offset {
                tracing::info!(path = %self.path.display(), "file was truncated or rewritten since the cursor; reading it from the start");
            }
        } else if let Some(old) =
            self.resume_rotated(&rotated, dev, ino, offset, head_len, head_hash)?
        {
            self.previous.push(old);
        } else {
            tracing::info!(path = %self.path.display(), "file was replaced since the cursor and the old one is gone; reading the new one from the start");
        }
        self.current = Some(open);
        Ok(())
    }

    /// Reopen the cursor's lingering rotated files (into `previous`), then find the file the
    /// cursor's main position points at beside the path, if its identity is not 0/0.
    fn resume_rotated(
        &mut self,
        rotated: &[FilePosition],
        dev: u64,
        ino: u64,
        offset: u64,
        head_len: u32,
        head_hash: u64,
    ) -> Result<Option<OpenFile>, SourceError> {
        for at in rotated {
            if let Some(old) = self.find_rotated(at)? {
                self.previous.push(old);
            }
        }
        if (dev, ino) == (0, 0) {
            return Ok(None);
        }
        let main = FilePosition {
            dev,
            ino,
            offset,
            head_len,
            head_hash,
        };
        self.find_rotated(&main)
    }

    /// The rotated file with this identity beside the path (`NAME.1`, `NAME-20261124`, ...),
    /// placed at the position.
    fn find_rotated(&self, at: &FilePosition) -> Result<Option<OpenFile>, SourceError> {
        if self
            .previous
            .iter()
            .any(|p| (p.dev, p.ino) == (at.dev, at.ino))
        {
            return Ok(None);
        }
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let Some(name) = self.path.file_name() else {
            return Ok(None);
        };
        let name = name.to_string_lossy().into_owned();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(None);
        };
        for entry in entries.flatten() {
            let other = entry.file_name().to_string_lossy().into_owned();
            if other == name || !other.starts_with(&name) {
                continue;
            }
            let path = entry.path();
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if identity(&meta) != (at.dev, at.ino) || !meta.is_file() {
                continue;
            }
            tracing::info!(rotated = %path.display(), "finishing the rotated file from the cursor");
            let Ok(Some((file, meta))) = open_log_file(&path) else {
                continue;
            };
            let mut old = OpenFile::new(file, &meta, 0);
            old.resume_at(at.offset, at.head_len, at.head_hash)
                .map_err(|e| read_error(&path, e))?;
            return Ok(Some(old));
        }
        Ok(None)
    }
}

impl Source for FileSource {
    fn id(&self) -> &str {
        &self.id
    }

    fn cursor(&self) -> Option<Cursor> {
        let rotated: Vec<FilePosition> = self.previous.iter().map(OpenFile::position).collect();
        match (&self.current, &self.resume) {
            (Some(f), _) => {
                let at = f.position();
                Some(Cursor::File {
                    dev: at.dev,
                    ino: at.ino,
                    offset: at.offset,
                    head_len: at.head_len,
                    head_hash: at.head_hash,
                    rotated,
                })
            }
            (
                None,
                Some(Cursor::File {
                    dev,
                    ino,
                    offset,
                    head_len,
                    head_hash,
                    ..
                }),
            ) => Some(Cursor::File {
                dev: *dev,
                ino: *ino,
                offset: *offset,
                head_len: *head_len,
                head_hash: *head_hash,
                rotated,
            }),
            (None, _) if !rotated.is_empty() => Some(Cursor::File {
                dev: 0,
                ino: 0,
                offset: 0,
                head_len: 0,
                head_hash: 0,
                rotated,
            }),
            (None, other) => other.clone(),
        }
    }

    fn read_available(
        &mut self,
        sink: &mut dyn FnMut(Record<'_>),
    ) -> Result<ReadStats, SourceError> {
        let mut stats = ReadStats::default();
        self.try_open()?;
        // 1. Files rotated away: whatever the writer added since; close those gone quiet.
        let mut still = Vec::with_capacity(self.previous.len());
        for mut old in std::mem::take(&mut self.previous) {
            // Truncated or rewritten since (a copytruncate onto `NAME.1` while it lingers):
            // what it holds now is not the file we followed, and is not read.
            if old.replaced().map_err(|e| read_error(&self.path, e))? {
                tracing::info!(path = %self.path.display(), "a rotated file was truncated or rewritten while followed; no longer read");
                continue;
            }
            let got = old
                .drain(&mut stats, sink)
                .map_err(|e| read_error(&self.path, e))?;
            if got > 0 || !old.quiet(self.linger) {
                still.push(old);
            } else {
                old.finish(&mut stats, sink);
            }
        }
        self.previous = still;
        // 2. The file at the path, until the path holds no other file.
        loop {
            let Some(cur) = self.current.as_mut() else {
                if self.previous.is_empty() {
                    return Err(SourceError::Missing {
                        path: self.path.clone(),
                    });
                }
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
            // Rotated by rename: the old file lingers (see the module doc).
            if let Some(old) = self.current.take() {
                self.previous.push(old);
            }
            while self.previous.len() > MAX_ROTATED {
                let oldest = self.previous.remove(0);
                oldest.finish(&mut stats, sink);
            }
            self.try_open()?;
        }
    }

    fn wait(&mut self, timeout: Duration) -> Result<(), SourceError> {
        let deadline = Instant::now() + timeout;
        loop {
            // A rotated file that grew has lines to read; one gone quiet is to be closed.
            let rotated = self
                .previous
                .iter()
                .any(|p| p.grown() || p.quiet(self.linger));
            let changed = rotated
                || match (&self.current, std::fs::metadata(&self.path)) {
                    (None, Ok(_)) => true,
                    (None, Err(_)) => false,
                    (Some(cur), at_path) => {
                        let moved = at_path.map(|m| identity(&m) != (cur.dev, cur.ino));
                        cur.grown() || moved.unwrap_or(false)
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
        let missing = s.read_available(&mut |_| {});
        assert!(matches!(missing, Err(SourceError::Missing { .. })));
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

    fn lines(prefix: &str, n: usize) -> String {
        (0..n).map(|i| format!("{prefix}{i}\n")).collect()
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    /// Daemon mode: the writer goes on appending to the renamed file 30 ms, 150 ms, 500 ms and
    /// 2 s after the rename (rsyslog before its HUP), while the new file fills too. Every line
    /// of both files is read, each once. Before the fix, the old file was dropped by the first
    /// pass that found nothing new in it and its later lines were lost.
    #[test]
    fn daemon_reads_lines_appended_to_the_renamed_file_after_the_rename() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kern.log");
        let old = dir.path().join("kern.log.1");
        append(&p, &lines("before-", 4));
        let mut s = FileSource::open(&p, None).unwrap();
        let mut got = collect(&mut s).0;
        assert_eq!(got.len(), 4);

        std::fs::rename(&p, &old).unwrap();
        append(&p, &lines("new-", 4));
        let writer = {
            let old = old.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                for (i, at_ms) in [30u64, 150, 500, 2000].into_iter().enumerate() {
                    let at = Duration::from_millis(at_ms);
                    // Sleeps here only place the writes in time; nothing waits on them.
                    std::thread::sleep(at.saturating_sub(start.elapsed()));
                    append(&old, &lines(&format!("late{i}-"), 4));
                }
            })
        };
        let mut expected: Vec<String> = (0..4).map(|i| format!("before-{i}")).collect();
        expected.extend((0..4).map(|i| format!("new-{i}")));
        for round in 0..4 {
            expected.extend((0..4).map(|i| format!("late{round}-{i}")));
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while got.len() < expected.len() && Instant::now() < deadline {
            s.wait(Duration::from_millis(500)).unwrap();
            got.extend(collect(&mut s).0);
        }
        writer.join().unwrap();
        got.extend(collect(&mut s).0);
        assert_eq!(sorted(got), sorted(expected));
    }

    /// `wait` while a renamed file is held and nothing changes sleeps until its timeout; it
    /// returned at once before the fix (a busy loop that made every pass find nothing and drop
    /// the old file). A lower bound only: a sleep never ends early.
    #[test]
    fn wait_does_not_return_at_once_while_a_renamed_file_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kern.log");
        append(&p, "a\n");
        let mut s = FileSource::open(&p, None).unwrap();
        collect(&mut s);
        std::fs::rename(&p, dir.path().join("kern.log.1")).unwrap();
        append(&p, "b\n");
        assert_eq!(collect(&mut s).0, ["b"]);
        assert_eq!(s.previous.len(), 1, "the renamed file is held");
        let started = Instant::now();
        s.wait(Duration::from_millis(300)).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    /// Cron mode: each pass is a new source opened from the stored cursor text. Lines the
    /// writer appends to the renamed file after the pass that saw the rename are read by the
    /// next passes (the cursor carries the rotated file); before the fix they were lost.
    #[test]
    fn cron_passes_read_lines_appended_to_the_renamed_file_after_the_rename() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kern.log");
        let old = dir.path().join("kern.log.1");
        let pass = |stored: &Option<String>| -> (Vec<String>, Option<String>) {
            let cursor = stored.as_deref().map(|t| Cursor::from_store(t).unwrap());
            let mut s = FileSource::open(&p, cursor).unwrap();
            let out = collect(&mut s).0;
            (out, s.cursor().map(|c| c.to_store()))
        };
        append(&p, &lines("before-", 3));
        let (mut got, mut stored) = pass(&None);
        std::fs::rename(&p, &old).unwrap();
        append(&old, "between\n");
        append(&p, &lines("new-", 3));
        let (out, next) = pass(&stored);
        got.extend(out);
        stored = next;
        for round in 0..4 {
            append(&old, &lines(&format!("late{round}-"), 3));
            append(&p, &format!("new-more{round}\n"));
            let (out, next) = pass(&stored);
            got.extend(out);
            stored = next;
        }
        let mut expected: Vec<String> = (0..3).map(|i| format!("before-{i}")).collect();
        expected.push("between".into());
        expected.extend((0..3).map(|i| format!("new-{i}")));
        for round in 0..4 {
            expected.extend((0..3).map(|i| format!("late{round}-{i}")));
            expected.push(format!("new-more{round}"));
        }
        assert_eq!(sorted(got), sorted(expected));
        // Nothing is read twice.
        assert!(pass(&stored).0.is_empty());
    }

    /// A renamed file is kept while its writer may still write: one that nothing touched for
    /// [`ROTATED_LINGER`] is closed, and its unterminated last line handed out.
    #[test]
    fn a_quiet_renamed_file_is_closed_with_its_last_partial_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kern.log");
        append(&p, "a\nunterminated");
        let mut s = FileSource::open(&p, None).unwrap();
        assert_eq!(collect(&mut s).0, ["a"]);
        std::fs::rename(&p, dir.path().join("kern.log.1")).unwrap();
        append(&p, "b\n");
        assert_eq!(collect(&mut s).0, ["b"]);
        assert_eq!(s.previous.len(), 1);
        // Recently renamed: held.
        assert!(collect(&mut s).0.is_empty());
        assert_eq!(s.previous.len(), 1);
        // Nothing touched it for the (shortened) linger: the next pass closes it.
        s.linger = Duration::ZERO;
        let (out, _) = collect(&mut s);
        assert!(s.previous.is_empty());
        assert_eq!(out, ["unterminated"]);
    }

    /// A copytruncate onto the renamed file while it lingers (`kern.log.1` reused) fills it
    /// with a copy of the live file's lines: they are not read a second time from there.
    #[test]
    fn a_lingering_file_rewritten_by_copytruncate_is_not_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kern.log");
        let old = dir.path().join("kern.log.1");
        append(&p, "a\nb\n");
        let mut s = FileSource::open(&p, None).unwrap();
        assert_eq!(collect(&mut s).0, ["a", "b"]);
        std::fs::rename(&p, &old).unwrap();
        append(&p, "c\nd\ne\n");
        assert_eq!(collect(&mut s).0, ["c", "d", "e"]);
        // copytruncate: kern.log copied onto kern.log.1 (same inode, O_TRUNC), then truncated.
        std::fs::copy(&p, &old).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&p, "f\n");
        assert_eq!(collect(&mut s).0, ["f"]);
        assert!(s.previous.is_empty());
    }

    /// What is not a log file is refused when opened, quickly and by name: a FIFO without a
    /// writer (whose plain `open` blocks forever), `/dev/zero` (which never ends), a
    /// directory, a gzip file. Run in a thread with a deadline, so the old behaviour fails
    /// instead of hanging the suite.
    #[test]
    fn what_is_not_a_plain_log_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.log");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let gz = dir.path().join("kern.log.2.gz");
        std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0]).unwrap();
        let magic = dir.path().join("kern.log.2");
        std::fs::write(&magic, [0x1f, 0x8b, 8, 0, 0, 0]).unwrap();
        let cases: Vec<(PathBuf, &str)> = vec![
            (fifo, "a FIFO"),
            (PathBuf::from("/dev/zero"), "a character device"),
            (dir.path().to_path_buf(), "a directory"),
            (gz, "gzip-compressed"),
            (magic, "gzip-compressed"),
        ];
        for (path, what) in cases {
            let (tx, rx) = std::sync::mpsc::channel();
            let p = path.clone();
            std::thread::spawn(move || {
                let result = FileSource::open(&p, None)
                    .and_then(|mut s| s.read_available(&mut |_| {}).map(|_| ()));
                let _ = tx.send(result.err().map(|e| e.to_string()));
            });
            let err = rx
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("{} was not refused: the pass hangs", path.display()));
            let err = err.unwrap_or_else(|| panic!("{} was read", path.display()));
            assert!(
                err.contains(what) && err.contains(&*path.to_string_lossy()),
                "{err}"
            );
        }
        // A FIFO left blocked in open() above would keep a thread; unblock it if so.
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(dir.path().join("fifo.log"));
    }

    /// A pass reads at most what the file held when it started: a writer that never stops
    /// (here the sink itself appends a line for each line read) cannot keep it going.
    #[test]
    fn a_pass_ends_even_when_the_writer_never_does() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kern.log");
        append(&p, &lines("x", 1000));
        let mut s = FileSource::open(&p, None).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let path = p.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            let r = s.read_available(&mut |_| {
                n += 1;
                append(&path, "more\n");
            });
            let _ = tx.send(r.map(|stats| stats.records));
        });
        let records = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the pass never ended")
            .unwrap();
        assert_eq!(records, 1000);
    }

    /// A path that does not exist is an error of the pass (a typo must show), unless the
    /// cursor's file is being finished beside it (logrotate renamed it a moment ago).
    #[test]
    fn a_missing_file_is_an_error_unless_its_rotated_file_is_being_finished() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kern.lgo");
        let mut s = FileSource::open(&p, None).unwrap();
        let err = s.read_available(&mut |_| {}).unwrap_err();
        assert!(matches!(err, SourceError::Missing { .. }), "{err}");
        assert!(err.to_string().contains("kern.lgo"), "{err}");

        let p = dir.path().join("kern.log");
        append(&p, "a\n");
        let mut s = FileSource::open(&p, None).unwrap();
        collect(&mut s);
        let cursor = s.cursor();
        std::fs::rename(&p, dir.path().join("kern.log.1")).unwrap();
        append(&dir.path().join("kern.log.1"), "b\n");
        let mut s = FileSource::open(&p, cursor).unwrap();
        assert_eq!(collect(&mut s).0, ["b"]);
        append(&p, "c\n");
        assert_eq!(collect(&mut s).0, ["c"]);
    }
}
