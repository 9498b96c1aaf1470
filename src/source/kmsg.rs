//! The `/dev/kmsg` source: the kernel's own ring buffer, one record per `read()`.
//!
//! In: the device path (configurable so tests can point it elsewhere) and the saved
//! [`Cursor::Kmsg`]. Out: each record's first line `PRI,SEQ,USEC,FLAGS;MESSAGE` (without the
//! newline; the continuation lines ` KEY=value` that follow are dropped: netfilter puts
//! everything on the first line).
//!
//! Why this way:
//! * Opened `O_RDONLY | O_NONBLOCK`: `EAGAIN` means caught up, so a cron pass never blocks;
//!   daemon mode `poll(2)`s the descriptor.
//! * A fresh open reads from the oldest record still in the ring; records with `seq <=`
//!   cursor are skipped. When the oldest is beyond `cursor + 1` the ring wrapped while we were
//!   away: the gap is counted in [`ReadStats::lost`]. `EPIPE` (the ring overran the reader
//!   mid-pass) is not an error: the next read returns the oldest record left, and the gap in
//!   sequence numbers is counted the same way.
//! * Sequence numbers restart at 0 on every boot, so the cursor carries the boot id and a
//!   cursor from another boot is ignored.
//! * The buffer is 16 KiB, above the kernel's per-record limit (`LOG_LINE_MAX`, 8 KiB minus
//!   the header), so `read()` never fails with `EINVAL`.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::record::{Record, SourceKind};

use super::{Cursor, ReadStats, Source, SourceError};

const BUFFER: usize = 16 * 1024;
const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";

/// Reads `/dev/kmsg` (or a path given for tests).
pub struct KmsgSource {
    id: String,
    path: PathBuf,
    file: File,
    buf: Box<[u8]>,
    /// Sequence number of the last record handed out or skipped.
    last_seq: Option<u64>,
    boot_id: Option<String>,
}

impl KmsgSource {
    /// Open the device; resume after `cursor` when it was taken during this boot.
    pub fn open(path: &Path, cursor: Option<Cursor>) -> Result<KmsgSource, SourceError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|source| SourceError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let boot_id = current_boot_id();
        let last_seq = match cursor {
            None => None,
            Some(Cursor::Kmsg { seq, boot_id: b }) => {
                if b.is_some() && boot_id.is_some() && b != boot_id {
                    tracing::info!(
                        path = %path.display(),
                        "kmsg cursor is from another boot; reading the ring from its start"
                    );
                    None
                } else {
                    Some(seq)
                }
            }
            Some(other) => {
                tracing::warn!(
                    path = %path.display(),
                    cursor = %other.to_store(),
                    "ignoring a cursor that is not a kmsg cursor"
                );
                None
            }
        };
        Ok(KmsgSource {
            id: format!("kmsg:{}", path.display()),
            path: path.to_path_buf(),
            file,
            buf: vec![0u8; BUFFER].into_boxed_slice(),
            last_seq,
            boot_id,
        })
    }
}

fn current_boot_id() -> Option<String> {
    std::fs::read_to_string(BOOT_ID_PATH)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The sequence number of a kmsg record (`PRI,SEQ,USEC,FLAGS;…`).
pub fn record_seq(record: &[u8]) -> Option<u64> {
    let header_end = memchr::memchr(b';', record)?;
    let mut fields = record[..header_end].split(|&b| b == b',');
    let _pri = fields.next()?;
    let seq = fields.next()?;
    if seq.is_empty() || seq.len() > 20 || !seq.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(seq).ok()?.parse().ok()
}

/// Whether a record with sequence number `seq` is new after `last` and, if so, how many
/// records between them the ring lost (`None`: already handed out, skip it).
fn records_lost(last: Option<u64>, seq: u64) -> Option<u64> {
    match last {
        None => Some(0),
        Some(last) if seq <= last => None,
        Some(last) => Some(seq - last - 1),
    }
}

/// The record's first line: up to the first newline (continuation lines are dropped).
fn first_line(record: &[u8]) -> &[u8] {
    match memchr::memchr(b'\n', record) {
        Some(n) => &record[..n],
        None => record,
    }
}

impl Source for KmsgSource {
    fn id(&self) -> &str {
        &self.id
    }

    fn cursor(&self) -> Option<Cursor> {
        self.last_seq.map(|seq| Cursor::Kmsg {
            seq,
            boot_id: self.boot_id.clone(),
        })
    }

    fn read_available(
        &mut self,
        sink: &mut dyn FnMut(Record<'_>),
    ) -> Result<ReadStats, SourceError> {
        let mut stats = ReadStats::default();
        loop {
            let n = match self.file.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // The ring overwrote records we had not read yet; the next read returns the
                // oldest one left and the sequence gap counts the loss.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(source) => {
                    return Err(SourceError::Read {
                        path: self.path.clone(),
                        source,
                    });
                }
            };
            let record = first_line(&self.buf[..n]);
            let Some(seq) = record_seq(record) else {
                stats.malformed += 1;
                continue;
            };
            match records_lost(self.last_seq, seq) {
                None => continue,
                Some(lost) => stats.lost += lost,
            }
            self.last_seq = Some(seq);
            stats.records += 1;
            stats.bytes += record.len() as u64;
            sink(Record {
                kind: SourceKind::Kmsg,
                bytes: record,
            });
        }
        if stats.lost > 0 {
            tracing::warn!(
                path = %self.path.display(),
                lost = stats.lost,
                "kernel ring buffer overran: records were lost before they could be read"
            );
        }
        Ok(stats)
    }

    fn wait(&mut self, timeout: Duration) -> Result<(), SourceError> {
        super::poll_readable(self.file.as_raw_fd(), timeout).map_err(|source| SourceError::Read {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_from_headers() {
        let cases: [(&[u8], Option<u64>); 6] = [
            (b"4,1234,5678901,-;portwarden: IN=eth0", Some(1234)),
            (b"6,0,0,c,more;x", Some(0)),
            (b"4,,5678901,-;x", None),
            (b"4,12a,5678901,-;x", None),
            (b"no header at all", None),
            (b"4;x", None),
        ];
        for (line, want) in cases {
            assert_eq!(record_seq(line), want, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn skips_what_was_read_and_counts_gaps() {
        assert_eq!(records_lost(None, 500), Some(0));
        assert_eq!(records_lost(Some(10), 11), Some(0));
        assert_eq!(records_lost(Some(10), 10), None);
        assert_eq!(records_lost(Some(10), 3), None);
        // Resumed from seq 10 but the oldest record left is 25: 11..=24 are gone.
        assert_eq!(records_lost(Some(10), 25), Some(14));
    }

    #[test]
    fn continuation_lines_are_dropped() {
        let rec =
            b"4,7,100,-;portwarden: IN=eth0 SRC=192.0.2.1\n SUBSYSTEM=net\n DEVICE=+net:eth0\n";
        assert_eq!(
            first_line(rec),
            b"4,7,100,-;portwarden: IN=eth0 SRC=192.0.2.1"
        );
    }

    #[test]
    fn a_missing_device_is_an_open_error() {
        let err = KmsgSource::open(Path::new("/nonexistent/kmsg"), None)
            .err()
            .unwrap();
        assert!(matches!(err, SourceError::Open { .. }), "{err}");
    }
}
