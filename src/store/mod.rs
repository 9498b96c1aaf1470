//! Stage `store`: everything that must survive the process, in one SQLite file.
//!
//! In: bans (with the [`Finding`] behind them), offences per source, each source's cursor, the
//! detector's state, run summaries. Out: the same, read back by the next cron run, the daemon
//! after a restart, `list`/`status`, and reconcile after the kernel lost its sets (through the ban book,
//! [`crate::bans`], the only writer of bans).
//!
//! Layout: `STATE_DIR/state.db` (the directory is created 0700). WAL journal with
//! `synchronous=NORMAL` (a power cut can lose the last commit, never corrupt; `OFF` is never
//! used for ban state), a busy timeout so that cron, the daemon and an operator's `portwarden
//! ban` can share it, and a schema version with ordered migrations ([`schema`]).
//!
//! Reads are on [`ReadStore`], implemented by both [`Store`] and [`StoreTx`], so the decide
//! stage sees its own uncommitted writes. Everything one run changes (bans, offences, findings,
//! cursors, detector state, the run record) goes through one [`StoreTx`] and commits at once:
//! a crash leaves the store as the previous run left it, cursors included, so nothing is lost or
//! counted twice.
//!
//! Times are unix microseconds; targets are the canonical text of an `IpNet`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use jiff::{SignedDuration, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use crate::record::{Ban, Finding};

pub mod blocklist;
pub mod schema;

pub use blocklist::{Blocklist, InvalidLine, parse_blocklist};

/// The database file inside the state directory.
pub const DB_FILE: &str = "state.db";

/// Errors of the store. Each message carries the underlying error's text itself and none is
/// chained as a `source`: printed with its causes (`{:#}`), a chained one would say the same
/// thing twice ("database or disk is full: database or disk is full: Error code 13: ...").
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create state directory {path}: {error}")]
    CreateDir {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("store {path}: {error}")]
    Open {
        path: PathBuf,
        error: rusqlite::Error,
    },
    #[error(
        "the store has schema version {found} but this portwarden knows up to {known}: use a newer portwarden"
    )]
    TooNew { found: u32, known: u32 },
    #[error("the store holds a value portwarden cannot read: {0}")]
    Corrupt(String),
    #[error("store: {0}")]
    Sqlite(rusqlite::Error),
    #[error("store: cannot encode evidence: {0}")]
    Json(serde_json::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(e)
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Json(e)
    }
}

/// Where a ban came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BanOrigin {
    /// The decide stage, from a finding.
    Auto,
    /// `portwarden ban`.
    Manual,
    /// `portwarden import` (the seed lab's blocked_ips.txt).
    Import,
    /// A fleet peer's ban ([`crate::fleet`]); the store keeps the peer's host id with it.
    Remote,
}

impl BanOrigin {
    fn as_str(self) -> &'static str {
        match self {
            BanOrigin::Auto => "auto",
            BanOrigin::Manual => "manual",
            BanOrigin::Import => "import",
            BanOrigin::Remote => "remote",
        }
    }

    fn parse(s: &str) -> Result<BanOrigin, StoreError> {
        match s {
            "auto" => Ok(BanOrigin::Auto),
            "manual" => Ok(BanOrigin::Manual),
            "import" => Ok(BanOrigin::Import),
            "remote" => Ok(BanOrigin::Remote),
            other => Err(StoreError::Corrupt(format!("ban origin `{other}`"))),
        }
    }
}

/// A ban as the store remembers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredBan {
    pub id: i64,
    pub target: IpNet,
    pub since: Timestamp,
    /// `None`: permanent.
    pub until: Option<Timestamp>,
    pub reason: String,
    pub finding: Option<Finding>,
    pub origin: BanOrigin,
    /// The fleet peer that sent it (remote bans only).
    pub origin_host: Option<String>,
    /// Decided in dry-run mode: recorded, never sent to the firewall, never reconciled.
    pub dry_run: bool,
    /// Cleared by an unban, by expiry bookkeeping, or when a prefix ban supersedes it.
    pub active: bool,
    pub lifted_at: Option<Timestamp>,
}

impl StoredBan {
    /// Active, not dry-run, and not expired at `now`: it should be in the kernel set.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.active && !self.dry_run && self.until.is_none_or(|u| u > now)
    }

    /// Time left at `now` (`None`: permanent; zero or less: expired).
    pub fn remaining(&self, now: Timestamp) -> Option<SignedDuration> {
        self.until.map(|u| u.duration_since(now))
    }
}

/// How often a source (or prefix) offended, and when last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Offence {
    pub target: IpNet,
    pub count: u32,
    pub last: Timestamp,
}

/// What the decide stage did with a finding; kept with the finding in the run log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingOutcome {
    Banned,
    /// Banned as part of a prefix ban it triggered.
    PrefixBanned,
    Allowlisted,
    AlreadyBanned,
    RateLimited,
    DryRun,
}

impl FindingOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingOutcome::Banned => "banned",
            FindingOutcome::PrefixBanned => "prefix_banned",
            FindingOutcome::Allowlisted => "allowlisted",
            FindingOutcome::AlreadyBanned => "already_banned",
            FindingOutcome::RateLimited => "rate_limited",
            FindingOutcome::DryRun => "dry_run",
        }
    }
}

/// One pass of `run`, the daemon's checkpoint, or an operator command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    /// `once`, `daemon`, `ban`, `import`...
    pub mode: String,
    pub started: Timestamp,
    pub finished: Timestamp,
    pub records: u64,
    pub probes: u64,
    pub findings: u64,
    pub bans: u64,
    pub note: String,
}

/// The SQLite store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: Option<PathBuf>,
}

impl Store {
    /// Open (creating when needed) `state_dir/state.db`, migrating it to the current schema.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        create_private_dir(state_dir)?;
        Store::open_file(&state_dir.join(DB_FILE))
    }

    /// Open a database file directly (its directory must exist).
    pub fn open_file(path: &Path) -> Result<Store, StoreError> {
        let wrap = |error| StoreError::Open {
            path: path.to_path_buf(),
            error,
        };
        let conn = Connection::open(path).map_err(wrap)?;
        Store::prepare(conn, Some(path.to_path_buf())).map_err(|e| match e {
            StoreError::Sqlite(source) => wrap(source),
            other => other,
        })
    }

    /// A private in-memory store, for tests and `--dry-run` paths that must not write.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::prepare(Connection::open_in_memory()?, None)
    }

    fn prepare(mut conn: Connection, path: Option<PathBuf>) -> Result<Store, StoreError> {
        conn.busy_timeout(Duration::from_secs(10))?;
        // In memory the answer is "memory"; on disk it must be "wal".
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if path.is_some() && !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(
                mode,
                "the store could not switch to WAL; continuing with {mode}"
            );
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        schema::migrate(&mut conn)?;
        Ok(Store { conn, path })
    }

    /// Whether a commit on this connection may copy the write-ahead log back into the
    /// database (SQLite's default, every 1 000 pages, with an fsync: milliseconds). The
    /// daemon turns it off on its own connection and has [`Store::checkpoint_wal`] run on
    /// another thread's connection instead.
    pub fn set_wal_autocheckpoint(&self, on: bool) -> Result<(), StoreError> {
        let pages: i64 = if on { 1000 } else { 0 };
        let _: i64 = self
            .conn
            .pragma_update_and_check(None, "wal_autocheckpoint", pages, |r| r.get(0))?;
        Ok(())
    }

    /// Copy what the write-ahead log holds back into the database, without waiting for
    /// readers or writers (`PRAGMA wal_checkpoint(PASSIVE)`). Returns the frames in the log and
    /// those copied (equal when nothing held the copy back).
    pub fn checkpoint_wal(&self) -> Result<(i64, i64), StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(1)?, r.get(2)?))
            })?)
    }

    /// The database file (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Begin the one transaction a run writes through. `BEGIN IMMEDIATE`: two writers wait on
    /// the busy timeout instead of failing halfway through.
    pub fn transaction(&mut self) -> Result<StoreTx<'_>, StoreError> {
        Ok(StoreTx {
            tx: self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?,
        })
    }
}

/// Create the state directory readable by root only (bans, evidence and cursors are nobody
/// else's business); an existing directory is left as it is.
pub fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|error| StoreError::CreateDir {
            path: dir.to_path_buf(),
            error,
        })
}

/// The writes of one run; nothing is visible to other processes until [`StoreTx::commit`], and
/// dropping it without committing rolls everything back.
pub struct StoreTx<'a> {
    tx: rusqlite::Transaction<'a>,
}

impl StoreTx<'_> {
    pub fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit()?)
    }

    /// Remember a ban; returns its id.
    pub fn record_ban(
        &mut self,
        ban: &Ban,
        origin: BanOrigin,
        dry_run: bool,
    ) -> Result<i64, StoreError> {
        self.record_ban_from(ban, origin, dry_run, None)
    }

    /// Remember a ban with the fleet peer it came from (`None`: this host's own).
    pub fn record_ban_from(
        &mut self,
        ban: &Ban,
        origin: BanOrigin,
        dry_run: bool,
        origin_host: Option<&str>,
    ) -> Result<i64, StoreError> {
        let evidence = ban
            .finding
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        // Cached statements: an import records 100 000 bans in one transaction.
        self.tx.prepare_cached(
            "INSERT INTO bans (target, since_us, until_us, reason, evidence, active, origin, dry_run, origin_host)
             VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8)",
        )?.execute(
            params![
                ban.target.trunc().to_string(),
                ban.since.as_microsecond(),
                ban.until().map(Timestamp::as_microsecond),
                ban.reason,
                evidence,
                origin.as_str(),
                dry_run,
                origin_host,
            ],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Queue a fleet message (this host's ban or unban) for publishing; returns its seq.
    pub fn enqueue_outbox(&mut self, row: &OutboxRow, now: Timestamp) -> Result<i64, StoreError> {
        self.tx.prepare_cached(
            "INSERT INTO outbox (kind, target, since_us, until_us, reason, evidence, origin, created_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?.execute(
            params![
                row.kind,
                row.target.trunc().to_string(),
                row.since.as_microsecond(),
                row.until.map(Timestamp::as_microsecond),
                row.reason,
                row.evidence,
                row.origin,
                now.as_microsecond(),
            ],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Note a valid message from fleet peer `host`, sent at `at`.
    pub fn saw_peer(&mut self, host: &str, at: Timestamp) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO fleet_peers (host, last_us, messages) VALUES (?1, ?2, 1)
             ON CONFLICT (host) DO UPDATE SET last_us = max(last_us, ?2), messages = messages + 1",
            params![host, at.as_microsecond()],
        )?;
        Ok(())
    }

    /// Add `n` to the fleet counter `key` (refused messages, rate-capped remote bans).
    pub fn add_fleet_count(&mut self, key: &str, n: u64, now: Timestamp) -> Result<(), StoreError> {
        add_fleet_count(&self.tx, key, n, now)
    }

    /// Mark every active ban of exactly `target` lifted at `at`; returns how many.
    pub fn lift(&mut self, target: IpNet, at: Timestamp) -> Result<usize, StoreError> {
        Ok(self
            .tx
            .prepare_cached(
                "UPDATE bans SET active = 0, lifted_at_us = ?2 WHERE active = 1 AND target = ?1",
            )?
            .execute(params![target.trunc().to_string(), at.as_microsecond()])?)
    }

    /// Mark active bans that ran out by `now` as lifted at their expiry; returns how many.
    pub fn expire(&mut self, now: Timestamp) -> Result<usize, StoreError> {
        Ok(self.tx.execute(
            "UPDATE bans SET active = 0, lifted_at_us = until_us
             WHERE active = 1 AND until_us IS NOT NULL AND until_us <= ?1",
            params![now.as_microsecond()],
        )?)
    }

    /// Count one more offence of `target` at `at` (the later of the stored and given times is
    /// kept, so an old replayed record does not move `last` backwards).
    /// An offence older than `forget_before` no longer counts: the count starts again at 1.
    pub fn add_offence(
        &mut self,
        target: IpNet,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> Result<Offence, StoreError> {
        let key = target.trunc().to_string();
        self.tx.execute(
            "INSERT INTO offences (target, count, last_us) VALUES (?1, 1, ?2)
             ON CONFLICT (target) DO UPDATE SET
                 count = CASE WHEN last_us < ?3 THEN 1 ELSE count + 1 END,
                 last_us = max(last_us, ?2)",
            params![key, at.as_microsecond(), forget_before.as_microsecond()],
        )?;
        self.offence(target)?
            .ok_or_else(|| StoreError::Corrupt(format!("offence of {key} vanished")))
    }

    /// Keep a finding and what was done with it.
    pub fn record_finding(
        &mut self,
        finding: &Finding,
        outcome: FindingOutcome,
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO findings (source, detected_at_us, kind, outcome, evidence)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                IpNet::from(finding.source).to_string(),
                finding.detected_at.as_microsecond(),
                finding.kind.as_str(),
                outcome.as_str(),
                serde_json::to_string(finding)?,
            ],
        )?;
        Ok(())
    }

    pub fn set_cursor(
        &mut self,
        source: &str,
        cursor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO cursors (source, cursor, updated_us) VALUES (?1, ?2, ?3)
             ON CONFLICT (source) DO UPDATE SET cursor = ?2, updated_us = ?3",
            params![source, cursor, now.as_microsecond()],
        )?;
        Ok(())
    }

    /// Replace the detector's saved state (opaque text, JSON by convention).
    pub fn set_detector_state(&mut self, state: &str, now: Timestamp) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO detector_state (id, state, updated_us) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET state = ?1, updated_us = ?2",
            params![state, now.as_microsecond()],
        )?;
        Ok(())
    }

    pub fn record_run(&mut self, run: &RunRecord) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO runs (mode, started_us, finished_us, records, probes, findings, bans, note)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                run.mode,
                run.started.as_microsecond(),
                run.finished.as_microsecond(),
                clamp_i64(run.records),
                clamp_i64(run.probes),
                clamp_i64(run.findings),
                clamp_i64(run.bans),
                run.note,
            ],
        )?;
        Ok(())
    }
}

fn add_fleet_count(conn: &Connection, key: &str, n: u64, now: Timestamp) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO fleet_state (key, value, updated_us) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + ?2, updated_us = ?3",
        params![key, clamp_i64(n), now.as_microsecond()],
    )?;
    Ok(())
}

/// One queued fleet message (see [`crate::fleet::message`]); `id` is its seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    /// `ban` or `unban`.
    pub kind: String,
    pub target: IpNet,
    pub since: Timestamp,
    pub until: Option<Timestamp>,
    pub reason: String,
    pub evidence: String,
    pub origin: String,
}

impl Store {
    /// Forget the outbox rows up to `id` (Redis took them).
    pub fn outbox_sent(&self, id: i64) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM outbox WHERE id <= ?1", [id])?)
    }

    /// Set the fleet link's state value `key` (`connected_since`, `last_error`, `lag_ms`...).
    pub fn set_fleet_state(
        &self,
        key: &str,
        value: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO fleet_state (key, value, updated_us) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = ?2, updated_us = ?3",
            params![key, value, now.as_microsecond()],
        )?;
        Ok(())
    }

    /// Remove the fleet link's state value `key`.
    pub fn clear_fleet_state(&self, key: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM fleet_state WHERE key = ?1", [key])?;
        Ok(())
    }
}

fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The reads, shared by [`Store`] and [`StoreTx`] (which sees its own uncommitted writes).
pub trait ReadStore {
    /// The underlying connection; the provided methods are the supported way to read it.
    fn connection(&self) -> &Connection;

    fn schema_version(&self) -> Result<u32, StoreError> {
        schema::version(self.connection())
    }

    /// How many bans should be in the kernel at `now` (see [`ReadStore::live_bans`]):
    /// IPv4 and IPv6 targets, counted by SQLite without reading the bans out.
    fn count_live(&self, now: Timestamp) -> Result<(u64, u64), StoreError> {
        Ok(self.connection().query_row(
            "SELECT count(*) - count(CASE WHEN instr(target, ':') > 0 THEN 1 END),
                    count(CASE WHEN instr(target, ':') > 0 THEN 1 END)
             FROM bans WHERE active = 1 AND dry_run = 0 AND (until_us IS NULL OR until_us > ?1)",
            [now.as_microsecond()],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )?)
    }

    /// Active bans (expired or not, dry-run or not) whose target contains `target`: exact
    /// lookups of its [`covering_nets`] in the `(active, target)` index, so the time does not
    /// grow with the number of bans; oldest first.
    fn active_bans_covering(&self, target: IpNet) -> Result<Vec<StoredBan>, StoreError> {
        let prefixes: Vec<String> = covering_nets(target).map(|n| n.to_string()).collect();
        let marks = vec!["?"; prefixes.len()].join(", ");
        query_bans(
            self.connection(),
            &format!("WHERE active = 1 AND target IN ({marks}) ORDER BY since_us, id"),
            rusqlite::params_from_iter(prefixes.iter()),
        )
    }

    /// Every ban still marked active (expired ones included until [`StoreTx::expire`] runs),
    /// oldest first.
    fn active_bans(&self) -> Result<Vec<StoredBan>, StoreError> {
        query_bans(
            self.connection(),
            "WHERE active = 1 ORDER BY since_us, id",
            [],
        )
    }

    /// The bans that should be in the kernel at `now`: active, not dry-run, not expired.
    fn live_bans(&self, now: Timestamp) -> Result<Vec<StoredBan>, StoreError> {
        Ok(self
            .active_bans()?
            .into_iter()
            .filter(|b| b.is_live(now))
            .collect())
    }

    /// Bans of any state (lifted ones included) that started at or after `since`, oldest
    /// first.
    fn bans_since(&self, since: Timestamp) -> Result<Vec<StoredBan>, StoreError> {
        query_bans(
            self.connection(),
            "WHERE since_us >= ?1 ORDER BY since_us, id",
            [since.as_microsecond()],
        )
    }

    /// The most recent bans of any state, newest first.
    fn recent_bans(&self, limit: u32) -> Result<Vec<StoredBan>, StoreError> {
        query_bans(
            self.connection(),
            "ORDER BY since_us DESC, id DESC LIMIT ?1",
            [limit],
        )
    }

    /// An active, unexpired ban whose target contains `addr` (dry-run bans count only when
    /// `include_dry_run`), the longest-lasting first.
    fn ban_covering(
        &self,
        addr: IpAddr,
        now: Timestamp,
        include_dry_run: bool,
    ) -> Result<Option<StoredBan>, StoreError> {
        let mut hits: Vec<StoredBan> = self
            .active_bans_covering(IpNet::from(addr))?
            .into_iter()
            .filter(|b| b.until.is_none_or(|u| u > now))
            .filter(|b| include_dry_run || !b.dry_run)
            .collect();
        hits.sort_by_key(|b| std::cmp::Reverse(b.until.unwrap_or(Timestamp::MAX)));
        Ok(hits.into_iter().next())
    }

    fn offence(&self, target: IpNet) -> Result<Option<Offence>, StoreError> {
        self.connection()
            .query_row(
                "SELECT target, count, last_us FROM offences WHERE target = ?1",
                [target.trunc().to_string()],
                offence_from_row,
            )
            .optional()?
            .transpose()
    }

    /// The count [`StoreTx::add_offence`] would give `target` for an offence at `at`: one
    /// more than stored, or 1 when there is none or the last one is older than
    /// `forget_before`. The decide stage reads it; the ban book records it.
    fn next_offence_count(
        &self,
        target: IpNet,
        forget_before: Timestamp,
    ) -> Result<u32, StoreError> {
        Ok(match self.offence(target)? {
            Some(o) if o.last >= forget_before => o.count.saturating_add(1),
            _ => 1,
        })
    }

    /// Sources (and prefixes) whose last offence is at or after `since`.
    fn offences_since(&self, since: Timestamp) -> Result<Vec<Offence>, StoreError> {
        let mut stmt = self.connection().prepare(
            "SELECT target, count, last_us FROM offences WHERE last_us >= ?1 ORDER BY last_us",
        )?;
        let rows = stmt.query_map([since.as_microsecond()], offence_from_row)?;
        rows.map(|r| r?).collect()
    }

    fn offence_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .connection()
            .query_row("SELECT count(*) FROM offences", [], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// Automatic and remote bans (dry-run ones included) decided at or after `since`: the
    /// rate cap's count. A fleet peer's bans share this host's budget, so a poisoned stream
    /// cannot ban more here than a flood of local findings could.
    fn auto_bans_since(&self, since: Timestamp) -> Result<u32, StoreError> {
        let n: i64 = self.connection().query_row(
            "SELECT count(*) FROM bans WHERE origin IN ('auto', 'remote') AND since_us >= ?1",
            [since.as_microsecond()],
            |r| r.get(0),
        )?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn cursor(&self, source: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .connection()
            .query_row(
                "SELECT cursor FROM cursors WHERE source = ?1",
                [source],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Every source's cursor with when it was saved.
    fn cursors(&self) -> Result<Vec<(String, String, Timestamp)>, StoreError> {
        keyed_texts(
            self.connection(),
            "SELECT source, cursor, updated_us FROM cursors ORDER BY source",
        )
    }

    fn detector_state(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .connection()
            .query_row("SELECT state FROM detector_state WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?)
    }

    fn last_run(&self) -> Result<Option<RunRecord>, StoreError> {
        self.connection()
            .query_row(
                "SELECT mode, started_us, finished_us, records, probes, findings, bans, note
                 FROM runs ORDER BY finished_us DESC, id DESC LIMIT 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        [
                            r.get::<_, i64>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, i64>(5)?,
                            r.get::<_, i64>(6)?,
                        ],
                        r.get::<_, String>(7)?,
                    ))
                },
            )
            .optional()?
            .map(|(mode, s, f, n, note)| {
                Ok(RunRecord {
                    mode,
                    started: timestamp(s)?,
                    finished: timestamp(f)?,
                    records: n[0].max(0) as u64,
                    probes: n[1].max(0) as u64,
                    findings: n[2].max(0) as u64,
                    bans: n[3].max(0) as u64,
                    note,
                })
            })
            .transpose()
    }

    /// The first `limit` queued fleet messages, oldest first.
    fn outbox(&self, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
        let mut stmt = self.connection().prepare(
            "SELECT id, kind, target, since_us, until_us, reason, evidence, origin
             FROM outbox ORDER BY id LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
            ))
        })?;
        rows.map(|row| {
            let (id, kind, t, since, until, reason, evidence, origin) = row?;
            Ok(OutboxRow {
                id,
                kind,
                target: target(&t)?,
                since: timestamp(since)?,
                until: until.map(timestamp).transpose()?,
                reason,
                evidence,
                origin,
            })
        })
        .collect()
    }

    fn outbox_len(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .connection()
            .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// The fleet link's state values and counters, by key.
    fn fleet_state(&self) -> Result<BTreeMap<String, (String, Timestamp)>, StoreError> {
        Ok(keyed_texts(
            self.connection(),
            "SELECT key, value, updated_us FROM fleet_state ORDER BY key",
        )?
        .into_iter()
        .map(|(k, v, t)| (k, (v, t)))
        .collect())
    }

    /// Fleet peers heard from at or after `since`: (host, last message, messages), most
    /// recent first.
    fn fleet_peers_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<(String, Timestamp, u64)>, StoreError> {
        let mut stmt = self.connection().prepare(
            "SELECT host, last_us, messages FROM fleet_peers WHERE last_us >= ?1 ORDER BY last_us DESC",
        )?;
        let rows = stmt.query_map([since.as_microsecond()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        rows.map(|r| {
            let (h, t, n) = r?;
            Ok((h, timestamp(t)?, n.max(0) as u64))
        })
        .collect()
    }

    /// Findings recorded by each rule (`fast_scan`, `kernel_fastpath`...).
    fn finding_kinds(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self
            .connection()
            .prepare("SELECT kind, count(*) FROM findings GROUP BY kind ORDER BY kind")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        rows.map(|r| r.map(|(k, n)| (k, n.max(0) as u64)).map_err(Into::into))
            .collect()
    }

    /// Findings recorded with each outcome.
    fn finding_outcomes(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self
            .connection()
            .prepare("SELECT outcome, count(*) FROM findings GROUP BY outcome ORDER BY outcome")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        rows.map(|r| r.map(|(o, n)| (o, n.max(0) as u64)).map_err(Into::into))
            .collect()
    }
}

impl ReadStore for Store {
    fn connection(&self) -> &Connection {
        &self.conn
    }
}

impl ReadStore for StoreTx<'_> {
    fn connection(&self) -> &Connection {
        &self.tx
    }
}

fn timestamp(us: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_microsecond(us).map_err(|e| StoreError::Corrupt(format!("time {us}: {e}")))
}

fn target(text: &str) -> Result<IpNet, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("target `{text}`")))
}

fn offence_from_row(r: &Row<'_>) -> rusqlite::Result<Result<Offence, StoreError>> {
    let t: String = r.get(0)?;
    let count: i64 = r.get(1)?;
    let last: i64 = r.get(2)?;
    Ok((|| {
        Ok(Offence {
            target: target(&t)?,
            count: u32::try_from(count).unwrap_or(u32::MAX),
            last: timestamp(last)?,
        })
    })())
}

/// `target` (truncated) and every prefix that contains it, narrowest first: 33 for an IPv4
/// address, 129 for an IPv6 one. Looking each up finds the bans that cover a target without
/// reading every ban.
pub fn covering_nets(target: IpNet) -> impl Iterator<Item = IpNet> {
    std::iter::successors(Some(target.trunc()), IpNet::supernet)
}

/// Rows of `(TEXT, TEXT, microseconds)` (a name, its value, when it was saved), in the order
/// `sql` gives.
fn keyed_texts(
    conn: &Connection,
    sql: &str,
) -> Result<Vec<(String, String, Timestamp)>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    rows.map(|r| {
        let (k, v, t) = r?;
        Ok((k, v, timestamp(t)?))
    })
    .collect()
}

fn query_bans<P: rusqlite::Params>(
    conn: &Connection,
    tail: &str,
    params: P,
) -> Result<Vec<StoredBan>, StoreError> {
    let sql = format!(
        "SELECT id, target, since_us, until_us, reason, evidence, active, lifted_at_us, origin, dry_run, origin_host
         FROM bans {tail}"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params, |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Option<i64>>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, bool>(6)?,
            r.get::<_, Option<i64>>(7)?,
            r.get::<_, String>(8)?,
            r.get::<_, bool>(9)?,
            r.get::<_, Option<String>>(10)?,
        ))
    })?;
    rows.map(|row| {
        let (id, t, since, until, reason, evidence, active, lifted, origin, dry_run, origin_host) =
            row?;
        Ok(StoredBan {
            id,
            target: target(&t)?,
            since: timestamp(since)?,
            until: until.map(timestamp).transpose()?,
            reason,
            finding: match evidence {
                Some(json) => Some(
                    serde_json::from_str(&json)
                        .map_err(|e| StoreError::Corrupt(format!("evidence of ban {id}: {e}")))?,
                ),
                None => None,
            },
            origin: BanOrigin::parse(&origin)?,
            origin_host,
            dry_run,
            active,
            lifted_at: lifted.map(timestamp).transpose()?,
        })
    })
    .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::{Evidence, FindingKind, ScanType};

    pub(crate) fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    pub(crate) fn net(s: &str) -> IpNet {
        crate::config::parse_net(s).unwrap()
    }

    pub(crate) fn finding(src: &str, at: Timestamp) -> Finding {
        Finding {
            source: src.parse().unwrap(),
            kind: FindingKind::FastScan,
            scan_type: ScanType::Syn,
            detected_at: at,
            evidence: Evidence {
                probes: 12,
                ports: 12,
                destinations: 1,
                failures: 10,
                successes: 2,
                records: 14,
                first_seen: at,
                last_seen: at,
                top_ports: Vec::new(),
            },
        }
    }

    /// A manual-style ban for the tests (`secs: None` is permanent).
    pub(crate) fn ban(target: &str, since: Timestamp, secs: Option<i64>) -> Ban {
        Ban {
            target: net(target),
            since,
            duration: secs.map(SignedDuration::from_secs),
            reason: "test".into(),
            finding: None,
        }
    }

    #[test]
    fn open_creates_private_dir_with_wal_and_current_schema() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state/nested");
        let store = Store::open(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(dir.join(DB_FILE).exists());
        assert_eq!(store.schema_version().unwrap(), schema::CURRENT_VERSION);
        let jm: String = store
            .connection()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(jm, "wal");
        let sync: i64 = store
            .connection()
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 1, "synchronous=NORMAL");
    }

    #[test]
    fn the_log_is_copied_back_by_another_connection_when_commits_do_not() {
        let tmp = tempfile::tempdir().unwrap();
        let mut writer = Store::open(tmp.path()).unwrap();
        let copier = Store::open(tmp.path()).unwrap();
        writer.set_wal_autocheckpoint(false).unwrap();
        let now = ts("2026-11-24T23:00:00Z");
        // Far past the 1 000 pages at which a commit would have copied the log back itself: 100
        // states of 64 KiB, each page unlike the last.
        let save = |s: &mut Store, state: &str| {
            let mut tx = s.transaction().unwrap();
            tx.set_detector_state(state, now).unwrap();
            tx.commit().unwrap();
        };
        for i in 0..100 {
            save(&mut writer, &format!("{i:08}").repeat(8 * 1024));
        }
        let wal = tmp.path().join(format!("{DB_FILE}-wal"));
        let size = std::fs::metadata(&wal).unwrap().len();
        assert!(size > 4 << 20, "the log stayed at {size} bytes");
        let (log, copied) = copier.checkpoint_wal().unwrap();
        assert!(log > 1000, "{log}");
        assert_eq!(copied, log);
        // Copied back: the next commit starts the log over (its frames count from 0 again).
        save(&mut writer, "small");
        let (log, _) = copier.checkpoint_wal().unwrap();
        assert!(log < 10, "{log}");
    }

    #[test]
    fn covering_nets_are_the_target_and_each_prefix_holding_it() {
        let v4: Vec<IpNet> = covering_nets(net("192.0.2.7")).collect();
        assert_eq!(v4.len(), 33);
        assert_eq!(v4[0], net("192.0.2.7/32"));
        assert_eq!(v4[8], net("192.0.2.0/24"));
        assert_eq!(v4[32], net("0.0.0.0/0"));
        let v6: Vec<IpNet> = covering_nets("2001:db8::1/64".parse().unwrap()).collect();
        assert_eq!(v6.len(), 65);
        assert_eq!(v6[0], net("2001:db8::/64"));
    }

    #[test]
    fn v1_database_migrates_and_keeps_its_bans() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(DB_FILE);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(schema::migrations_up_to(1)[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO bans (target, since_us, until_us, reason) VALUES ('192.0.2.7/32', ?1, NULL, 'old')",
                [ts("2026-01-01T00:00:00Z").as_microsecond()],
            )
            .unwrap();
        }
        let store = Store::open_file(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), schema::CURRENT_VERSION);
        let bans = store.active_bans().unwrap();
        assert_eq!(bans.len(), 1);
        assert_eq!(bans[0].target, net("192.0.2.7"));
        assert_eq!(bans[0].origin, BanOrigin::Auto);
        assert!(!bans[0].dry_run);
        assert!(bans[0].until.is_none());
        // Opening again is a no-op.
        drop(store);
        assert_eq!(
            Store::open_file(&path).unwrap().schema_version().unwrap(),
            schema::CURRENT_VERSION
        );
    }

    #[test]
    fn v2_database_migrates_to_the_fleet_schema() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(DB_FILE);
        {
            let conn = Connection::open(&path).unwrap();
            for sql in schema::migrations_up_to(2) {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 2).unwrap();
            conn.execute(
                "INSERT INTO bans (target, since_us, until_us, reason, origin) VALUES ('192.0.2.7/32', ?1, NULL, 'old', 'manual')",
                [ts("2026-01-01T00:00:00Z").as_microsecond()],
            )
            .unwrap();
        }
        let mut store = Store::open_file(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), schema::CURRENT_VERSION);
        let bans = store.active_bans().unwrap();
        assert_eq!(
            (bans[0].origin, bans[0].origin_host.as_deref()),
            (BanOrigin::Manual, None)
        );
        assert_eq!(store.outbox_len().unwrap(), 0);
        // The new tables work: an outbox row keeps its order and seq, a remote ban its host.
        let now = ts("2026-11-24T23:00:00Z");
        let mut tx = store.transaction().unwrap();
        let row = OutboxRow {
            id: 0,
            kind: "ban".into(),
            target: net("198.51.100.7"),
            since: now,
            until: None,
            reason: "r".into(),
            evidence: "e".into(),
            origin: "a".into(),
        };
        let first = tx.enqueue_outbox(&row, now).unwrap();
        let second = tx.enqueue_outbox(&row, now).unwrap();
        assert!(second > first);
        tx.record_ban_from(
            &ban("203.0.113.9", now, Some(60)),
            BanOrigin::Remote,
            false,
            Some("host-b"),
        )
        .unwrap();
        tx.saw_peer("host-b", now).unwrap();
        tx.commit().unwrap();
        assert_eq!(
            store
                .outbox(10)
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>(),
            [first, second]
        );
        store.outbox_sent(first).unwrap();
        assert_eq!(store.outbox_len().unwrap(), 1);
        let remote = store.live_bans(now).unwrap().pop().unwrap();
        assert_eq!(
            (remote.origin, remote.origin_host.as_deref()),
            (BanOrigin::Remote, Some("host-b"))
        );
        assert_eq!(
            store.auto_bans_since(now).unwrap(),
            1,
            "remote bans share the rate cap"
        );
        assert_eq!(store.fleet_peers_since(now).unwrap()[0].0, "host-b");
    }

    #[test]
    fn newer_schema_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(DB_FILE);
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = Store::open_file(&path).unwrap_err();
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    }

    #[test]
    fn one_transaction_saves_everything_or_nothing() {
        let mut store = Store::open_in_memory().unwrap();
        let now = ts("2026-11-24T23:00:00Z");
        {
            let mut tx = store.transaction().unwrap();
            let mut b = ban("192.0.2.7", now, Some(3600));
            b.finding = Some(finding("192.0.2.7", now));
            tx.record_ban(&b, BanOrigin::Auto, false).unwrap();
            tx.add_offence(net("192.0.2.7"), now, Timestamp::MIN)
                .unwrap();
            tx.set_cursor("kmsg", "1234", now).unwrap();
            tx.set_detector_state("{\"sources\":[]}", now).unwrap();
            // Dropped without commit: rolled back.
        }
        assert!(store.active_bans().unwrap().is_empty());
        assert_eq!(store.cursor("kmsg").unwrap(), None);
        assert_eq!(store.detector_state().unwrap(), None);

        let mut tx = store.transaction().unwrap();
        let mut b = ban("192.0.2.7", now, Some(3600));
        b.finding = Some(finding("192.0.2.7", now));
        tx.record_ban(&b, BanOrigin::Auto, false).unwrap();
        // The transaction reads its own writes.
        assert_eq!(tx.live_bans(now).unwrap().len(), 1);
        let o = tx
            .add_offence(net("192.0.2.7"), now, Timestamp::MIN)
            .unwrap();
        assert_eq!(o.count, 1);
        tx.set_cursor("kmsg", "1234", now).unwrap();
        tx.set_cursor("kmsg", "1240", now).unwrap();
        tx.set_detector_state("{\"sources\":[]}", now).unwrap();
        tx.record_finding(&finding("192.0.2.7", now), FindingOutcome::Banned)
            .unwrap();
        tx.record_run(&RunRecord {
            mode: "once".into(),
            started: now,
            finished: now,
            records: 20,
            probes: 12,
            findings: 1,
            bans: 1,
            note: String::new(),
        })
        .unwrap();
        tx.commit().unwrap();

        let bans = store.live_bans(now).unwrap();
        assert_eq!(bans.len(), 1);
        assert_eq!(bans[0].until, Some(ts("2026-11-25T00:00:00Z")));
        assert_eq!(bans[0].finding, Some(finding("192.0.2.7", now)));
        assert_eq!(store.cursor("kmsg").unwrap().as_deref(), Some("1240"));
        assert_eq!(store.cursors().unwrap().len(), 1);
        assert_eq!(
            store.detector_state().unwrap().as_deref(),
            Some("{\"sources\":[]}")
        );
        assert_eq!(store.last_run().unwrap().unwrap().records, 20);
        assert_eq!(
            store.finding_outcomes().unwrap(),
            vec![("banned".to_string(), 1)]
        );
    }

    #[test]
    fn offences_count_and_never_move_back() {
        let mut store = Store::open_in_memory().unwrap();
        let mut tx = store.transaction().unwrap();
        let t1 = ts("2026-11-24T23:00:00Z");
        let t0 = ts("2026-11-24T22:00:00Z");
        tx.add_offence(net("2001:db8::5"), t1, Timestamp::MIN)
            .unwrap();
        let o = tx
            .add_offence(net("2001:db8::5"), t0, Timestamp::MIN)
            .unwrap();
        assert_eq!((o.count, o.last), (2, t1));
        assert_eq!(tx.offences_since(t1).unwrap().len(), 1);
        assert!(
            tx.offences_since(ts("2026-11-24T23:00:01Z"))
                .unwrap()
                .is_empty()
        );
        assert_eq!(tx.offence(net("2001:db8::6")).unwrap(), None);
        // An offence older than the memory no longer counts: the next one is the first again.
        let t2 = ts("2027-01-24T23:00:00Z");
        let o = tx
            .add_offence(net("2001:db8::5"), t2, ts("2026-12-25T23:00:00Z"))
            .unwrap();
        assert_eq!((o.count, o.last), (1, t2));
        let o = tx
            .add_offence(net("2001:db8::5"), t2, ts("2026-12-25T23:00:00Z"))
            .unwrap();
        assert_eq!(o.count, 2, "a recent offence still counts");
    }

    #[test]
    fn lift_expire_and_covering() {
        let mut store = Store::open_in_memory().unwrap();
        let now = ts("2026-11-24T23:00:00Z");
        let mut tx = store.transaction().unwrap();
        tx.record_ban(
            &ban("198.51.100.0/24", now, Some(60)),
            BanOrigin::Auto,
            false,
        )
        .unwrap();
        tx.record_ban(&ban("192.0.2.7", now, None), BanOrigin::Manual, false)
            .unwrap();
        tx.record_ban(&ban("192.0.2.8", now, Some(60)), BanOrigin::Auto, true)
            .unwrap();
        let addr: IpAddr = "198.51.100.9".parse().unwrap();
        assert_eq!(
            tx.ban_covering(addr, now, false).unwrap().unwrap().target,
            net("198.51.100.0/24")
        );
        let dry: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(tx.ban_covering(dry, now, false).unwrap().is_none());
        assert!(tx.ban_covering(dry, now, true).unwrap().is_some());
        assert_eq!(tx.auto_bans_since(now).unwrap(), 2);
        // Dry-run bans are never live.
        assert_eq!(tx.live_bans(now).unwrap().len(), 2);
        assert_eq!(tx.count_live(now).unwrap(), (2, 0));
        tx.record_ban(&ban("2001:db8::/64", now, None), BanOrigin::Manual, false)
            .unwrap();
        tx.record_ban(
            &ban("198.51.100.9", now, Some(60)),
            BanOrigin::Manual,
            false,
        )
        .unwrap();
        assert_eq!(tx.count_live(now).unwrap(), (3, 1));
        // Exact lookups of the prefixes find what a scan of every ban finds, oldest first.
        for target in [
            "198.51.100.9",
            "198.51.100.0/25",
            "192.0.2.8",
            "2001:db8::1",
            "10.0.0.1",
        ] {
            let t = net(target);
            let scanned: Vec<IpNet> = tx
                .active_bans()
                .unwrap()
                .into_iter()
                .filter(|b| b.target.contains(&t))
                .map(|b| b.target)
                .collect();
            let looked_up: Vec<IpNet> = tx
                .active_bans_covering(t)
                .unwrap()
                .into_iter()
                .map(|b| b.target)
                .collect();
            assert_eq!(looked_up, scanned, "{target}");
        }
        assert_eq!(
            tx.active_bans_covering(net("198.51.100.9")).unwrap().len(),
            2
        );
        tx.lift(net("2001:db8::/64"), now).unwrap();
        tx.lift(net("198.51.100.9"), now).unwrap();
        let later = ts("2026-11-24T23:05:00Z");
        assert!(tx.ban_covering(addr, later, false).unwrap().is_none());
        assert_eq!(tx.expire(later).unwrap(), 2);
        assert_eq!(tx.lift(net("192.0.2.7"), later).unwrap(), 1);
        assert!(tx.active_bans().unwrap().is_empty());
        tx.commit().unwrap();
        let all = store.recent_bans(10).unwrap();
        assert_eq!(all.len(), 5);
        assert!(all.iter().all(|b| !b.active && b.lifted_at.is_some()));
    }
}
