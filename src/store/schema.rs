//! The store's schema and its ordered migrations.
//!
//! In: an open SQLite connection at any earlier schema version. Out: the same database at
//! [`CURRENT_VERSION`], migrated in one transaction. The version lives in `PRAGMA user_version`
//! (0 = empty file). Migrations only ever append: a released step is never edited, so a database
//! written by any earlier portwarden opens with a later one. A database newer than this binary
//! knows is refused rather than guessed at.
//!
//! Times are unix microseconds (`*_us` columns, INTEGER) everywhere; addresses and prefixes are
//! the canonical text of an `IpNet` (`192.0.2.7/32`, `2001:db8::/64`).

use rusqlite::Connection;

use super::StoreError;

/// Each entry takes the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    // v1: bans, offences, cursors, the detector's state.
    "CREATE TABLE bans (
        id           INTEGER PRIMARY KEY,
        target       TEXT    NOT NULL,          -- canonical IpNet
        since_us     INTEGER NOT NULL,
        until_us     INTEGER,                   -- NULL: permanent
        reason       TEXT    NOT NULL,
        evidence     TEXT,                      -- JSON of the Finding, NULL for manual bans
        active       INTEGER NOT NULL DEFAULT 1,
        lifted_at_us INTEGER
     );
     CREATE TABLE offences (
        target  TEXT    PRIMARY KEY,            -- the source (or prefix) that offended
        count   INTEGER NOT NULL,
        last_us INTEGER NOT NULL
     );
     CREATE TABLE cursors (
        source     TEXT    PRIMARY KEY,
        cursor     TEXT    NOT NULL,
        updated_us INTEGER NOT NULL
     );
     CREATE TABLE detector_state (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        state      TEXT    NOT NULL,
        updated_us INTEGER NOT NULL
     );",
    // v2: where a ban came from, dry-run bans, every finding with its outcome, a run log.
    "ALTER TABLE bans ADD COLUMN origin  TEXT    NOT NULL DEFAULT 'auto';
     ALTER TABLE bans ADD COLUMN dry_run INTEGER NOT NULL DEFAULT 0;
     CREATE INDEX bans_active_target ON bans (active, target);
     CREATE INDEX bans_since ON bans (since_us);
     CREATE INDEX offences_last ON offences (last_us);
     CREATE TABLE findings (
        id             INTEGER PRIMARY KEY,
        source         TEXT    NOT NULL,
        detected_at_us INTEGER NOT NULL,
        kind           TEXT    NOT NULL,
        outcome        TEXT    NOT NULL,
        evidence       TEXT    NOT NULL
     );
     CREATE INDEX findings_detected ON findings (detected_at_us);
     CREATE TABLE runs (
        id          INTEGER PRIMARY KEY,
        mode        TEXT    NOT NULL,
        started_us  INTEGER NOT NULL,
        finished_us INTEGER NOT NULL,
        records     INTEGER NOT NULL,
        probes      INTEGER NOT NULL,
        findings    INTEGER NOT NULL,
        bans        INTEGER NOT NULL,
        note        TEXT    NOT NULL DEFAULT ''
     );",
    // v3: the fleet. Bans a peer sent (origin 'remote') name their host; the outbox holds this
    // host's bans and unbans, in order, until Redis took them; the link's state and the peers
    // heard from, for `status`.
    "ALTER TABLE bans ADD COLUMN origin_host TEXT;
     CREATE TABLE outbox (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,  -- the message's seq: never reused
        kind       TEXT    NOT NULL,                   -- 'ban' / 'unban'
        target     TEXT    NOT NULL,
        since_us   INTEGER NOT NULL,
        until_us   INTEGER,
        reason     TEXT    NOT NULL,
        evidence   TEXT    NOT NULL,
        origin     TEXT    NOT NULL,
        created_us INTEGER NOT NULL
     );
     CREATE TABLE fleet_state (
        key        TEXT    PRIMARY KEY,
        value      TEXT    NOT NULL,
        updated_us INTEGER NOT NULL
     );
     CREATE TABLE fleet_peers (
        host     TEXT    PRIMARY KEY,
        last_us  INTEGER NOT NULL,
        messages INTEGER NOT NULL
     );",
    // v4: the ban path by index, whatever the number of bans. Every checkpoint marks the
    // active bans that ran out, and decide counts the automatic bans of the last minute (the
    // rate cap); without these indexes both read every ban (an import of 100 000 made each
    // daemon ban 20 ms slower).
    "CREATE INDEX bans_active_until ON bans (active, until_us);
     CREATE INDEX bans_origin_since ON bans (origin, since_us);",
];

/// The schema version this binary writes.
pub const CURRENT_VERSION: u32 = MIGRATIONS.len() as u32;

/// `PRAGMA user_version`.
pub fn version(conn: &Connection) -> Result<u32, StoreError> {
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("schema version {v}")))
}

/// Bring the database to [`CURRENT_VERSION`], all steps in one transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let from = version(conn)?;
    if from > CURRENT_VERSION {
        return Err(StoreError::TooNew {
            found: from,
            known: CURRENT_VERSION,
        });
    }
    if from == CURRENT_VERSION {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
    }
    tx.commit()?;
    if from > 0 {
        tracing::info!(from, to = CURRENT_VERSION, "store schema migrated");
    }
    Ok(())
}

/// The SQL of the first `n` migrations, for tests that build an old database.
#[cfg(test)]
pub(crate) fn migrations_up_to(n: usize) -> &'static [&'static str] {
    &MIGRATIONS[..n]
}
