//! The fleet: bans shared between hosts through a Redis stream (or Valkey's), signed with a
//! shared key. No server of portwarden's own: Redis is the only moving part.
//!
//! ```text
//!  ban book batch ──outbox row (same transaction)──▶ store.outbox ──publisher──XADD──▶ stream
//!  stream ──XREAD (blocking, from the stored last ID)──▶ consumer ──▶ main loop: verify,
//!         decide_remote (allowlist, expiry, duplicates, rate cap) ──▶ ban book batch
//!         (bans with their origin host + the stream's last ID, one transaction)
//! ```
//!
//! In: the `[fleet]` config ([`FleetConfig`]), the store's outbox, the stream. Out: this host's
//! bans and unbans in the stream ([`message`] gives their fields and signature), the peers'
//! bans applied here through the ban book, and the link's state in the store for `status`.
//!
//! Why an outbox: a Redis outage must never block local detection or banning. The ban book
//! writes the message in the transaction that makes the ban, so a message exists if and only
//! if the ban happened; [`publish_outbox`] sends the rows in order and deletes them only once
//! Redis took them. A crash between the two resends a message: every message is idempotent
//! (a ban already in place is not applied twice; an unban of nothing lifts nothing), and the
//! order is kept, so the last word about a target always wins.
//!
//! Consuming: the stream's last ID applied is a cursor (`fleet:STREAM`) saved in the same
//! transaction as the bans it brought, so a restart neither skips nor re-applies. A host with
//! no cursor (a late joiner) reads the stream from its start: the retained messages (the last
//! `max_len` or so) replay in order, expired bans are skipped, and what is left is exactly the
//! fleet's live bans. Messages this host published itself are skipped.
//!
//! The daemon runs a publisher thread (polling the outbox every [`PUBLISH_POLL`]) and a
//! consumer thread (blocking `XREAD`), each with its own connection, so that a slow or absent
//! Redis never stalls the main loop (`engine::daemon`). A cron pass reads what
//! arrived since its cursor, then publishes its outbox (`Engine::pass`).

use std::time::Duration;

use jiff::Timestamp;
use redis::{IntoConnectionInfo, Value};

use crate::store::{OutboxRow, ReadStore, Store, StoreError};

pub mod config;
pub mod message;

pub use config::{FleetConfig, FleetKey};
pub use message::{FleetMessage, Kind, Refused};

/// How often the daemon's publisher looks at the outbox.
pub const PUBLISH_POLL: Duration = Duration::from_millis(10);
/// How long one blocking `XREAD` waits before the consumer looks at its stop flag.
pub const READ_BLOCK: Duration = Duration::from_millis(500);
/// Entries asked for per `XREAD`.
pub const READ_COUNT: usize = 1000;
/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Errors of the fleet link. None of them stops local detection or banning.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("cannot read the fleet password file {path}: {source}")]
    Password {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the fleet's CA file {path}: {error}")]
    CaFile {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error("redis answered something unexpected: {0}")]
    Reply(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The store cursor holding the last stream ID this host applied.
pub fn cursor_name(config: &FleetConfig) -> String {
    format!("fleet:{}", config.stream)
}

/// One stream entry as read: its ID and its field/value pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub fields: Vec<(String, String)>,
}

impl Entry {
    /// The milliseconds part of the entry's ID: when Redis added it.
    pub fn added_at(&self) -> Option<Timestamp> {
        let ms: i64 = self.id.split('-').next()?.parse().ok()?;
        Timestamp::from_millisecond(ms).ok()
    }
}

/// One connection to the fleet's Redis.
pub struct Link {
    conn: redis::Connection,
    stream: String,
    max_len: u64,
    key: FleetKey,
}

impl Link {
    /// Connect (with the username and the password file, if any) within [`CONNECT_TIMEOUT`];
    /// every later command may take `io_timeout` at most.
    pub fn connect(config: &FleetConfig, io_timeout: Duration) -> Result<Link, FleetError> {
        let info = config.redis.as_str().into_connection_info()?;
        let mut settings = info.redis_settings().clone();
        if let Some(user) = &config.username {
            settings = settings.set_username(user);
        }
        if let Some(path) = &config.password_file {
            let pw = config::read_secret(path).map_err(|source| FleetError::Password {
                path: path.clone(),
                source,
            })?;
            settings = settings.set_password(String::from_utf8_lossy(&pw));
        }
        let info = info.set_redis_settings(settings);
        let client = if config.redis.starts_with("rediss://") {
            // rustls needs a process-wide crypto provider; installing it twice is harmless.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let root_cert = match &config.ca_file {
                Some(path) => Some(std::fs::read(path).map_err(|error| FleetError::CaFile {
                    path: path.clone(),
                    error,
                })?),
                None => None,
            };
            redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert,
                },
            )?
        } else {
            redis::Client::open(info)?
        };
        let conn = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        conn.set_read_timeout(Some(io_timeout))?;
        conn.set_write_timeout(Some(io_timeout))?;
        Ok(Link {
            conn,
            stream: config.stream.clone(),
            max_len: config.max_len,
            key: config.key.clone(),
        })
    }

    /// `XADD` every row, in order, in one pipeline; returns the IDs Redis gave them.
    pub fn publish(&mut self, rows: &[OutboxRow]) -> Result<Vec<String>, FleetError> {
        let mut pipe = redis::pipe();
        for row in rows {
            let kind = if row.kind == "unban" {
                Kind::Unban
            } else {
                Kind::Ban
            };
            let m = FleetMessage {
                kind,
                target: row.target,
                since: row.since,
                until: row.until,
                reason: row.reason.clone(),
                evidence: row.evidence.clone(),
                origin: row.origin.clone(),
                seq: row.id,
            };
            let cmd = pipe
                .cmd("XADD")
                .arg(&self.stream)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.max_len)
                .arg("*");
            for (name, value) in m.to_fields(&self.key) {
                cmd.arg(name).arg(value);
            }
        }
        Ok(pipe.query(&mut self.conn)?)
    }

    /// `XADD` raw field/value pairs (what a test or a foreign writer could put in the stream).
    pub fn add_raw(&mut self, fields: &[(String, String)]) -> Result<String, FleetError> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.stream).arg("*");
        for (k, v) in fields {
            cmd.arg(k).arg(v);
        }
        Ok(cmd.query(&mut self.conn)?)
    }

    /// Entries after `after` (`0`: from the start), at most `count`, waiting up to `block`
    /// for the first one (`None`: not at all).
    pub fn read(
        &mut self,
        after: &str,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Entry>, FleetError> {
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT").arg(count);
        if let Some(b) = block {
            cmd.arg("BLOCK").arg(b.as_millis().max(1) as u64);
        }
        cmd.arg("STREAMS").arg(&self.stream).arg(after);
        let reply: Value = cmd.query(&mut self.conn)?;
        parse_xread(reply)
    }
}

fn text(v: &Value) -> Result<String, FleetError> {
    match v {
        Value::BulkString(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Ok(s.clone()),
        Value::VerbatimString { text, .. } => Ok(text.clone()),
        Value::Int(i) => Ok(i.to_string()),
        other => Err(FleetError::Reply(format!(
            "expected a string, got {other:?}"
        ))),
    }
}

fn items(v: Value) -> Result<Vec<Value>, FleetError> {
    match v {
        Value::Array(a) | Value::Set(a) => Ok(a),
        Value::Map(pairs) => Ok(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        other => Err(FleetError::Reply(format!(
            "expected an array, got {other:?}"
        ))),
    }
}

/// `XREAD`'s reply: nil (nothing new), or per stream `[key, [[id, [field, value, ...]], ...]]`
/// (RESP2), or a map of key to entries (RESP3).
fn parse_xread(reply: Value) -> Result<Vec<Entry>, FleetError> {
    if reply == Value::Nil {
        return Ok(Vec::new());
    }
    let is_map = matches!(reply, Value::Map(_));
    let top = items(reply)?;
    let streams: Vec<Value> = if is_map {
        // [key, entries, key, entries...]
        top.into_iter().skip(1).step_by(2).collect()
    } else {
        top.into_iter()
            .map(|s| {
                let mut kv = items(s)?;
                if kv.len() != 2 {
                    return Err(FleetError::Reply("stream reply of the wrong length".into()));
                }
                Ok(kv.remove(1))
            })
            .collect::<Result<_, _>>()?
    };
    let mut out = Vec::new();
    for entries in streams {
        for e in items(entries)? {
            let mut parts = items(e)?.into_iter();
            let (Some(id), Some(fields)) = (parts.next(), parts.next()) else {
                return Err(FleetError::Reply("stream entry without fields".into()));
            };
            let flat = if fields == Value::Nil {
                Vec::new()
            } else {
                items(fields)?
            };
            let mut pairs = Vec::with_capacity(flat.len() / 2);
            for kv in flat.chunks(2) {
                if let [k, v] = kv {
                    pairs.push((text(k)?, text(v)?));
                }
            }
            out.push(Entry {
                id: text(&id)?,
                fields: pairs,
            });
        }
    }
    Ok(out)
}

/// Send the outbox in order, deleting rows once Redis took them. Returns how many were sent.
pub fn publish_outbox(store: &Store, link: &mut Link) -> Result<usize, FleetError> {
    let mut sent = 0;
    loop {
        let rows = store.outbox(500)?;
        let Some(last) = rows.last().map(|r| r.id) else {
            return Ok(sent);
        };
        link.publish(&rows)?;
        store.outbox_sent(last)?;
        sent += rows.len();
    }
}

/// What applying a run of stream entries did: the daemon's log line, the pass summary's
/// `fleet` part.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct FleetSummary {
    pub messages: u64,
    pub own: u64,
    pub banned: Vec<String>,
    pub unbanned: Vec<String>,
    /// Valid messages not acted on, by why (`allowlisted`, `expired`, `already banned`,
    /// `rate-limited`, `no IPv6 set`, `dry run`).
    pub not_banned: std::collections::BTreeMap<String, u64>,
    /// Refused messages, by counter (`bad_signature`, `malformed`, `invalid_target`).
    pub refused: std::collections::BTreeMap<String, u64>,
    pub published: u64,
    /// Why the link could not be used this time (cron).
    pub error: Option<String>,
}

impl std::fmt::Display for FleetSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fleet: {} message(s), {} ban(s)",
            self.messages,
            self.banned.len()
        )?;
        if !self.banned.is_empty() {
            write!(f, " [{}]", self.banned.join(", "))?;
        }
        if !self.unbanned.is_empty() {
            write!(
                f,
                ", {} unban(s) [{}]",
                self.unbanned.len(),
                self.unbanned.join(", ")
            )?;
        }
        for (why, n) in &self.not_banned {
            write!(f, ", {n} {why}")?;
        }
        for (why, n) in &self.refused {
            write!(f, ", {n} refused ({why})")?;
        }
        if self.published > 0 {
            write!(f, ", {} published", self.published)?;
        }
        if let Some(e) = &self.error {
            write!(f, ", link error: {e}")?;
        }
        Ok(())
    }
}

/// The fleet part of `status`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FleetStatus {
    pub host_id: String,
    pub stream: String,
    pub publish: bool,
    pub consume: bool,
    /// `connected_since`, `disconnected_since`, `last_error`, `lag_ms` and the counters, as
    /// the daemon's (or the last pass's) link left them.
    pub link: std::collections::BTreeMap<String, String>,
    pub last_id: Option<String>,
    pub outbox: u64,
    /// Peers heard from in the last hour: host, last message, messages.
    pub peers: Vec<(String, Timestamp, u64)>,
}

/// Read the fleet's state from the store (no connection is made).
pub fn status(
    config: &FleetConfig,
    store: &impl ReadStore,
    now: Timestamp,
) -> Result<FleetStatus, StoreError> {
    let since = now
        .checked_sub(jiff::SignedDuration::from_hours(1))
        .unwrap_or(Timestamp::MIN);
    Ok(FleetStatus {
        host_id: config.host_id.clone(),
        stream: config.stream.clone(),
        publish: config.publish,
        consume: config.consume,
        link: store
            .fleet_state()?
            .into_iter()
            .map(|(k, (v, _))| (k, v))
            .collect(),
        last_id: store.cursor(&cursor_name(config))?,
        outbox: store.outbox_len()?,
        peers: store.fleet_peers_since(since)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn xread_replies_of_both_protocols() {
        assert!(parse_xread(Value::Nil).unwrap().is_empty());
        let entries = Value::Array(vec![Value::Array(vec![
            bulk("1700000000000-0"),
            Value::Array(vec![bulk("kind"), bulk("ban"), bulk("v"), bulk("1")]),
        ])]);
        let want = vec![Entry {
            id: "1700000000000-0".into(),
            fields: vec![("kind".into(), "ban".into()), ("v".into(), "1".into())],
        }];
        let resp2 = Value::Array(vec![Value::Array(vec![bulk("s"), entries.clone()])]);
        assert_eq!(parse_xread(resp2).unwrap(), want);
        let resp3 = Value::Map(vec![(bulk("s"), entries)]);
        assert_eq!(parse_xread(resp3).unwrap(), want);
        assert_eq!(
            want[0].added_at(),
            Some(Timestamp::from_millisecond(1_700_000_000_000).unwrap())
        );
    }
}
