//! Stage `source`: read raw records from where the kernel's LOG records land, and remember
//! where we stopped so that nothing is read twice or skipped.
//!
//! In: a [`SourceConfig`] and, when the store has one, the [`Cursor`] saved after the last run.
//! Out: raw [`Record`]s handed to a sink, one pass at a time, with [`ReadStats`], and a new
//! [`Cursor`] the store keeps per [`Source::id`] (as the string of [`Cursor::to_store`]).
//!
//! * [`kmsg`]: `/dev/kmsg`, one record per `read()`; cursor = sequence number (+ boot id).
//! * [`journal`]: `journalctl -o json` without a shell; cursor = `__CURSOR`.
//! * [`file`](mod@file): any log file, following rotation by rename and by copytruncate; cursor =
//!   device, inode, offset and a hash of the head of the file.
//!
//! Sources never parse netfilter fields and never decide trust: the parser does both from the
//! record's header (kmsg facility, journal `_TRANSPORT`, syslog tag). A source only frames
//! records, counts what it could not hand out (lost to a ring overrun, lines too long), and
//! keeps its position.
//!
//! Two ways to drive a source: cron mode calls [`Source::read_available`] once and saves the
//! cursor; daemon mode loops on [`Source::wait`] then `read_available`.

pub mod file;
pub mod journal;
pub mod kmsg;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::SourceConfig;
use crate::record::Record;

pub use file::FileSource;
pub use journal::JournalSource;
pub use kmsg::KmsgSource;

/// Where a source stopped: the position after the last record it handed out.
///
/// Stored as a JSON string ([`Cursor::to_store`] / [`Cursor::from_store`]), e.g.
/// `{"kind":"kmsg","seq":1234,"boot_id":"eba9…"}`,
/// `{"kind":"journal","cursor":"s=…;i=…"}`,
/// `{"kind":"file","dev":2049,"ino":131,"offset":5120,"head_len":64,"head_hash":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Cursor {
    Kmsg {
        /// Sequence number of the last record handed out (or skipped).
        seq: u64,
        /// `/proc/sys/kernel/random/boot_id` when the cursor was taken: sequence numbers start
        /// again at 0 on every boot, so a cursor from another boot is ignored.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        boot_id: Option<String>,
    },
    Journal {
        /// The `__CURSOR` of the last entry handed out.
        cursor: String,
    },
    File {
        dev: u64,
        ino: u64,
        /// Byte offset after the last complete line handed out (or skipped).
        offset: u64,
        /// The first `head_len` bytes of the file (its first line, at most
        /// [`file::HEAD_MAX`] bytes) hash to `head_hash` (FNV-1a 64): a file truncated and
        /// rewritten past our offset (copytruncate) is told apart by this.
        head_len: u32,
        head_hash: u64,
    },
}

impl Cursor {
    /// The string the store keeps.
    pub fn to_store(&self) -> String {
        // Serialising a plain enum of integers and strings cannot fail; fall back to an empty
        // object (which `from_store` rejects, so the source restarts) rather than panic.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// Parse what [`Cursor::to_store`] wrote.
    pub fn from_store(s: &str) -> Result<Cursor, SourceError> {
        serde_json::from_str(s).map_err(|e| SourceError::BadCursor {
            text: s.chars().take(200).collect(),
            reason: e.to_string(),
        })
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadStats {
    /// Records handed to the sink.
    pub records: u64,
    /// Bytes of those records.
    pub bytes: u64,
    /// Records the source knows it missed (kmsg ring overrun, or a cursor older than the
    /// oldest record still available).
    pub lost: u64,
    /// Lines longer than [`MAX_LINE_LEN`](crate::input::MAX_LINE_LEN), skipped (with bounded
    /// memory, by [`crate::input`]'s line reader).
    pub skipped_long: u64,
    /// Records that could not be framed (a kmsg record without a sequence number, a journal
    /// line that is not JSON or has no `__CURSOR`), skipped.
    pub malformed: u64,
}

impl ReadStats {
    pub fn add(&mut self, other: ReadStats) {
        self.records += other.records;
        self.bytes += other.bytes;
        self.lost += other.lost;
        self.skipped_long += other.skipped_long;
        self.malformed += other.malformed;
    }
}

/// How the caller drives the sources. Only the journal source behaves differently: one
/// `journalctl` run per pass, or one `journalctl --follow` for the life of the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Cron mode: each pass reads what is there and returns.
    Once,
    /// Daemon mode: [`Source::wait`] then [`Source::read_available`], forever.
    Follow,
}

/// Errors of the source stage; each names the path or program involved.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {stderr}")]
    Journalctl {
        program: PathBuf,
        status: String,
        stderr: String,
    },
    #[error("stored cursor `{text}` is not valid: {reason}")]
    BadCursor { text: String, reason: String },
}

/// One live source of records.
pub trait Source: Send {
    /// Stable id under which the store keeps the cursor: `kmsg:/dev/kmsg`,
    /// `journal:--directory=/var/log/journal`, `file:/var/log/kern.log`.
    fn id(&self) -> &str;

    /// The position after the last record handed out; `None` before the first record.
    fn cursor(&self) -> Option<Cursor>;

    /// One pass: hand every record available now to `sink`, in order, and return when caught
    /// up. A record is handed out once: the cursor moves past it before the next one. On an
    /// error the records already handed out stay handed out and [`Source::cursor`] covers
    /// them, so the caller can still save it.
    fn read_available(
        &mut self,
        sink: &mut dyn FnMut(Record<'_>),
    ) -> Result<ReadStats, SourceError>;

    /// Block until more records may be available, or `timeout` passes (daemon mode). May
    /// return early (a signal, a spurious wake-up); the caller then just reads.
    fn wait(&mut self, timeout: Duration) -> Result<(), SourceError>;
}

/// Open the source `cfg` describes, resuming after `cursor` when there is one. A cursor of
/// another kind is ignored with a warning (the source starts from its beginning).
pub fn open(
    cfg: &SourceConfig,
    cursor: Option<Cursor>,
    mode: Mode,
) -> Result<Box<dyn Source>, SourceError> {
    Ok(match cfg {
        SourceConfig::Kmsg { path } => Box::new(KmsgSource::open(path, cursor)?),
        SourceConfig::Journal { journalctl, args } => {
            Box::new(JournalSource::new(journalctl, args, cursor, mode))
        }
        SourceConfig::File { path } => Box::new(FileSource::open(path, cursor)?),
    })
}

/// The source to read when the config names none: `/dev/kmsg` where this process may read
/// it (root or CAP_SYSLOG), else the journal when `journalctl` is installed, else
/// `/var/log/kern.log`. Each choice is logged, so an operator sees why.
pub fn default_config() -> SourceConfig {
    let kmsg = PathBuf::from("/dev/kmsg");
    match KmsgSource::open(&kmsg, None) {
        Ok(_) => return SourceConfig::Kmsg { path: kmsg },
        Err(e) => tracing::info!(error = %e, "/dev/kmsg is not readable; trying the journal"),
    }
    if crate::sys::on_path("journalctl") {
        return SourceConfig::Journal {
            journalctl: PathBuf::from("journalctl"),
            args: Vec::new(),
        };
    }
    tracing::info!("journalctl is not installed; reading /var/log/kern.log");
    SourceConfig::File {
        path: PathBuf::from("/var/log/kern.log"),
    }
}

/// The stable id of the source `cfg` describes, without opening it (for the store).
pub fn id_of(cfg: &SourceConfig) -> String {
    match cfg {
        SourceConfig::Kmsg { path } => format!("kmsg:{}", path.display()),
        SourceConfig::Journal { args, .. } => journal::id_for(args),
        SourceConfig::File { path } => format!("file:{}", path.display()),
    }
}

/// Wait for `fd` to become readable, up to `timeout`. EINTR counts as a wake-up.
pub(crate) fn poll_readable(fd: std::os::fd::RawFd, timeout: Duration) -> std::io::Result<()> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `pfd` is a valid, initialised pollfd that lives across the call; nfds = 1.
    let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
    if rc < 0 {
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Ok(())
}

/// FNV-1a, 64 bit: a stable hash (unlike `std`'s) for the file cursor's head.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_through_the_store_string() {
        let cursors = [
            Cursor::Kmsg {
                seq: 42,
                boot_id: Some("eba96818-f075-445a-9d3e-f4c09a6dd061".into()),
            },
            Cursor::Kmsg {
                seq: 7,
                boot_id: None,
            },
            Cursor::Journal {
                cursor: "s=abc;i=1f;b=def;m=10;t=5f;x=99".into(),
            },
            Cursor::File {
                dev: 2049,
                ino: 131,
                offset: 5120,
                head_len: 64,
                head_hash: u64::MAX,
            },
            Cursor::File {
                dev: 1,
                ino: 2,
                offset: 3,
                head_len: 3,
                head_hash: 4,
            },
        ];
        for c in cursors {
            let s = c.to_store();
            assert_eq!(Cursor::from_store(&s).unwrap(), c, "{s}");
        }
        assert_eq!(
            Cursor::Kmsg {
                seq: 5,
                boot_id: None
            }
            .to_store(),
            r#"{"kind":"kmsg","seq":5}"#
        );
    }

    #[test]
    fn bad_cursor_is_an_error_not_a_panic() {
        for s in [
            "",
            "{}",
            "{\"kind\":\"tape\"}",
            "{\"kind\":\"kmsg\",\"seq\":-1}",
        ] {
            assert!(matches!(
                Cursor::from_store(s),
                Err(SourceError::BadCursor { .. })
            ));
        }
    }

    #[test]
    fn ids_name_kind_and_place() {
        assert_eq!(
            id_of(&SourceConfig::Kmsg {
                path: "/dev/kmsg".into()
            }),
            "kmsg:/dev/kmsg"
        );
        assert_eq!(
            id_of(&SourceConfig::File {
                path: "/var/log/kern.log".into()
            }),
            "file:/var/log/kern.log"
        );
        assert_eq!(
            id_of(&SourceConfig::Journal {
                journalctl: "journalctl".into(),
                args: vec![]
            }),
            "journal"
        );
    }

    #[test]
    fn default_is_kmsg_where_it_is_readable() {
        let readable = std::fs::File::open("/dev/kmsg").is_ok();
        let chosen = default_config();
        assert_eq!(
            matches!(chosen, SourceConfig::Kmsg { .. }),
            readable,
            "{chosen:?}"
        );
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
