//! The daemon's loop, beside the cron pass ([`Engine::pass`]): follow every source and ban
//! within milliseconds of the triggering record. `portwarden daemon` only calls [`run`].
//!
//! One reader thread per source blocks in [`Source::wait`](crate::source::Source::wait) (poll(2) on `/dev/kmsg`, a
//! `journalctl --follow` pipe, or a file) and sends each record, then the source's cursor after
//! the batch, over one channel to the main thread, which owns the engine: parse, detect, and on a
//! finding decide and ban at once. Because a cursor travels behind the records it covers, a
//! saved cursor never runs ahead of what was processed.
//!
//! The main thread also: checkpoints cursors and detector state every
//! [`Engine::DAEMON_CHECKPOINT`]; checks the firewall every [`TABLE_CHECK`] and, if someone
//! flushed the ruleset, recreates the table and puts the live bans back; reloads the config on
//! SIGHUP (readers are restarted from the current cursors, the detector keeps its state);
//! mirrors the allowlist and served ports into the kernel fast path's sets at start, on reload
//! and every [`Engine::FASTPATH_SYNC`] (the periodic host check); and
//! stops cleanly on SIGTERM/SIGINT: readers are told to stop, the channel is drained, a last
//! checkpoint is written. The periodic full checkpoint hands the cursors and the detector
//! state to a thread that writes them ([`Engine::save_state_in_background`]); the last one, at
//! shutdown or a reload, is written on the main thread once that thread is done. Live bans
//! are counted for the metrics on a thread of its own
//! ([`Engine::count_live_bans_in_background`]): with many bans the count takes longer than a
//! ban.
//!
//! With `[metrics] listen` set, a [`MetricsServer`] thread serves `GET /metrics` from the
//! same [`Metrics`] the engine feeds; they outlive a reload, so counters never go back. A
//! change of `listen` itself takes a restart (the socket is bound once, at start): a reload
//! that changes it is refused with a message, and the old configuration keeps running.
//!
//! With `[fleet]`, two more threads ([`crate::fleet`]): a publisher that sends the store's
//! outbox whenever it holds messages, and a consumer that blocks in `XREAD` from the stored
//! stream ID and sends what it reads over the same channel; the main thread applies it at once
//! through the engine (decide, ban book). Neither ever blocks the main thread on Redis.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::{Engine, PassSummary, RunLock};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::metrics::{Metrics, MetricsServer};
use crate::record::{Record, SourceKind};
use crate::source::{self, Cursor, Mode};

/// How often the daemon checks that its table is still in the kernel.
pub const TABLE_CHECK: Duration = Duration::from_secs(2);
/// How often the daemon re-reads the ports this host serves.
pub const SERVED_PORTS_REFRESH: Duration = Duration::from_secs(30);
/// How long a reader blocks before it looks at the stop flag.
const READER_WAIT: Duration = Duration::from_millis(250);

enum Message {
    Record {
        index: usize,
        kind: SourceKind,
        bytes: Vec<u8>,
    },
    /// After each batch: the source's cursor, and the records the source knows it lost in
    /// that batch (a kmsg ring overrun).
    Cursor {
        index: usize,
        cursor: Option<Cursor>,
        lost: u64,
    },
    Failed {
        index: usize,
        error: String,
    },
    /// Entries the fleet consumer read from the stream, in order, in rewind `epoch`.
    Fleet {
        entries: Vec<crate::fleet::Entry>,
        epoch: u64,
    },
}

struct Readers {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
    ids: Vec<String>,
}

impl Readers {
    fn start(engine: &Engine, tx: &SyncSender<Message>) -> Readers {
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        let mut ids = Vec::new();
        for (index, cfg) in engine.sources().iter().enumerate() {
            let id = source::id_of(cfg);
            let cursor = engine.stored_cursor(&id);
            ids.push(id.clone());
            let (cfg, tx, stop) = (cfg.clone(), tx.clone(), stop.clone());
            let handle = std::thread::Builder::new()
                .name(format!("source-{index}"))
                .spawn(move || read_loop(index, &id, &cfg, cursor, &tx, &stop));
            match handle {
                Ok(h) => handles.push(h),
                Err(e) => tracing::error!("cannot start the reader of {}: {e}", ids[index]),
            }
        }
        Readers { stop, handles, ids }
    }

    /// Tell the readers to stop and wait for them, handling what they still send meanwhile: a
    /// reader blocked on a full channel must be able to finish its send, or joining it would
    /// wait forever.
    fn stop(self, rx: &Receiver<Message>, session: &mut Session, engine: &mut Engine) {
        self.stop.store(true, Ordering::Relaxed);
        while self.handles.iter().any(|h| !h.is_finished()) {
            if let Ok(m) = rx.recv_timeout(Duration::from_millis(50)) {
                session.handle(engine, m, &self.ids);
            }
        }
        for h in self.handles {
            let _ = h.join();
        }
        while let Ok(m) = rx.try_recv() {
            session.handle(engine, m, &self.ids);
        }
    }
}

fn read_loop(
    index: usize,
    id: &str,
    cfg: &crate::config::SourceConfig,
    cursor: Option<Cursor>,
    tx: &SyncSender<Message>,
    stop: &AtomicBool,
) {
    let mut src = match source::open(cfg, cursor, Mode::Follow) {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(Message::Failed {
                index,
                error: e.to_string(),
            });
            return;
        }
    };
    tracing::info!(source = id, "following");
    let mut last_error: Option<String> = None;
    while !stop.load(Ordering::Relaxed) {
        let mut gone = false;
        let mut lost = 0;
        let result = src.read_available(&mut |r: Record<'_>| {
            // Asked to stop or not, the batch is sent to its end: the main thread drains the
            // channel until every reader has finished (see `Readers::stop`), so the batch's
            // cursor is saved with its records and nothing is read twice after a restart.
            if gone {
                return;
            }
            if tx
                .send(Message::Record {
                    index,
                    kind: r.kind,
                    bytes: r.bytes.to_vec(),
                })
                .is_err()
            {
                gone = true;
            }
        });
        match result {
            Ok(stats) => {
                last_error = None;
                lost = stats.lost;
            }
            // The same error again (a missing file waited for): said once, not every second.
            Err(e) if last_error.as_deref() == Some(e.to_string().as_str()) => {
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) => {
                tracing::error!(source = id, "{e}; retrying");
                last_error = Some(e.to_string());
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        if gone
            || tx
                .send(Message::Cursor {
                    index,
                    cursor: src.cursor(),
                    lost,
                })
                .is_err()
        {
            return;
        }
        if let Err(e) = src.wait(READER_WAIT) {
            tracing::error!(source = id, "{e}");
            std::thread::sleep(READER_WAIT);
        }
    }
}

/// Run the daemon until SIGTERM/SIGINT: take the run lock in `state_dir`, open the engine on
/// the configured firewall, follow the sources, reload `config` (from the file it came from)
/// on SIGHUP.
pub fn run(config: Config, state_dir: &Path, clock: SharedClock) -> anyhow::Result<()> {
    let Some(_lock) = RunLock::try_acquire(state_dir, "daemon")? else {
        anyhow::bail!(
            "another portwarden run or daemon holds {}/run.lock",
            state_dir.display()
        );
    };
    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, term.clone()).context("installing signal handlers")?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .context("installing signal handlers")?;

    let config_path: Option<PathBuf> = config.path.clone();
    let metrics = Arc::new(Metrics::new());
    let listening = config.metrics.listen;
    // Bound before anything else starts: a taken port is a startup error, not a silent gap.
    let _server = match config.metrics.listen {
        Some(addr) => {
            let server = MetricsServer::start(addr, metrics.clone())?;
            eprintln!(
                "portwarden daemon: metrics on http://{}/metrics",
                server.local_addr()
            );
            Some(server)
        }
        None => None,
    };
    let (engine, report) = Engine::open_in(config, state_dir, clock.clone())?;
    let mut engine = engine.with_metrics(metrics.clone());
    engine.count_live_bans_in_background(state_dir)?;
    if let Some(r) = report {
        eprintln!(
            "portwarden daemon: table ready{}; {} live ban(s) in the store, {} restored",
            if r.table_recreated { " (created)" } else { "" },
            r.live_in_store,
            r.restored
        );
    }
    loop {
        // At start and after a reload: the fast path's allowlist and served ports.
        if let Err(e) = engine.sync_fastpath() {
            tracing::error!("{e:#}");
            eprintln!("portwarden daemon: {e:#}");
        }
        if let Err(e) = engine.save_state_in_background(state_dir) {
            tracing::warn!("{e:#}; the detector state is saved on the main thread");
        }
        let (tx, rx) = mpsc::sync_channel::<Message>(65_536);
        let readers = Readers::start(&engine, &tx);
        let fleet = FleetThreads::start(&engine, state_dir, &tx, &clock);
        drop(tx);
        let ids = readers.ids.clone();
        eprintln!("portwarden daemon: following {}", ids.join(", "));
        let mut session = Session::new(ids.len(), clock.clone(), fleet.rewind.clone());
        let outcome = serve(&mut engine, &rx, &ids, &term, &hup, &mut session);
        // Whatever the readers sent before they stopped is processed and saved, with the
        // cursors and counts of the session still open: dropping those would make the next
        // start (or the reloaded readers) read those records again.
        fleet.stop.store(true, Ordering::Relaxed);
        readers.stop(&rx, &mut session, &mut engine);
        fleet.join(&rx, &mut session, &mut engine);
        // The last save is written here, after any the saving thread still held.
        engine.save_state_inline();
        session.checkpoint(&mut engine, &ids, true)?;
        outcome?;
        if term.load(Ordering::Relaxed) {
            eprintln!("portwarden daemon: stopped; state saved");
            return Ok(());
        }
        // SIGHUP: reload the config; a bad file keeps the old one running.
        hup.store(false, Ordering::Relaxed);
        match Config::load(config_path.as_deref()) {
            Ok(new_config) if new_config.metrics.listen != listening => {
                eprintln!(
                    "portwarden daemon: [metrics] listen changed; it takes a restart, keeping the old configuration"
                )
            }
            Ok(new_config) => match Engine::open_in(new_config, state_dir, clock.clone()) {
                Ok((e, _)) => {
                    engine = e.with_metrics(metrics.clone());
                    if let Err(e) = engine.count_live_bans_in_background(state_dir) {
                        tracing::warn!("{e:#}; live bans are counted on the main thread");
                    }
                    eprintln!("portwarden daemon: configuration reloaded");
                }
                Err(e) => eprintln!(
                    "portwarden daemon: reload failed, keeping the old configuration: {}",
                    super::error_chain(&e)
                ),
            },
            Err(e) => {
                eprintln!(
                    "portwarden daemon: reload failed, keeping the old configuration: {}",
                    super::error_chain(&e.into())
                )
            }
        }
    }
}

/// The fleet's publisher and consumer threads (see [`crate::fleet`]); none without `[fleet]`.
struct FleetThreads {
    stop: Arc<AtomicBool>,
    /// Raised by the main thread when applying entries failed: the consumer reads again from
    /// the stored cursor, so nothing it read is lost, and tags what it sends with the epoch;
    /// the main thread ignores entries of an older epoch (read past the failed ones).
    rewind: Arc<AtomicU64>,
    handles: Vec<JoinHandle<()>>,
}

impl FleetThreads {
    fn start(
        engine: &Engine,
        state_dir: &Path,
        tx: &SyncSender<Message>,
        clock: &SharedClock,
    ) -> FleetThreads {
        let mut t = FleetThreads {
            stop: Arc::new(AtomicBool::new(false)),
            rewind: Arc::new(AtomicU64::new(0)),
            handles: Vec::new(),
        };
        let Some(fc) = engine.fleet_config().cloned() else {
            return t;
        };
        eprintln!(
            "portwarden daemon: fleet `{}` on {} as {} (publish {}, consume {} from ID {})",
            fc.stream,
            fc.redis,
            fc.host_id,
            fc.publish,
            fc.consume,
            engine.fleet_cursor()
        );
        let env = || FleetEnv {
            dir: state_dir.to_path_buf(),
            stop: t.stop.clone(),
            clock: clock.clone(),
            metrics: engine.metrics().clone(),
        };
        if fc.publish {
            let (fc, env) = (fc.clone(), env());
            match std::thread::Builder::new()
                .name("fleet-publish".into())
                .spawn(move || publish_loop(&fc, &env))
            {
                Ok(h) => t.handles.push(h),
                Err(e) => tracing::error!("cannot start the fleet publisher: {e}"),
            }
        }
        if fc.consume {
            let start = engine.fleet_cursor();
            let (tx, rewind, env) = (tx.clone(), t.rewind.clone(), env());
            match std::thread::Builder::new()
                .name("fleet-consume".into())
                .spawn(move || consume_loop(&fc, &env, start, &tx, &rewind))
            {
                Ok(h) => t.handles.push(h),
                Err(e) => tracing::error!("cannot start the fleet consumer: {e}"),
            }
        }
        t
    }

    /// Wait for the threads (already told to stop), handling what the consumer still sends.
    fn join(self, rx: &Receiver<Message>, session: &mut Session, engine: &mut Engine) {
        self.stop.store(true, Ordering::Relaxed);
        while self.handles.iter().any(|h| !h.is_finished()) {
            if let Ok(m) = rx.recv_timeout(Duration::from_millis(50)) {
                session.handle(engine, m, &[]);
            }
        }
        for h in self.handles {
            let _ = h.join();
        }
        while let Ok(m) = rx.try_recv() {
            session.handle(engine, m, &[]);
        }
    }
}

/// Sleep `d` in small steps, returning early when `stop` is set.
fn pause(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Record the link of `role` (`publisher`/`consumer`) as up or down, for `status`.
fn link_state(
    store: &crate::store::Store,
    role: &str,
    up: Result<(), &str>,
    clock: &SharedClock,
    metrics: &crate::metrics::Metrics,
) {
    metrics.fleet_link(role, up.is_ok());
    let now = clock.now();
    let result = match up {
        Ok(()) => store
            .set_fleet_state(&format!("{role}_connected_since"), &now.to_string(), now)
            .and_then(|()| store.clear_fleet_state(&format!("{role}_disconnected_since"))),
        Err(e) => store
            .clear_fleet_state(&format!("{role}_connected_since"))
            .and_then(|()| store.set_fleet_state(&format!("{role}_last_error"), e, now))
            .and_then(|()| {
                let known = crate::store::ReadStore::fleet_state(store)
                    .map(|m| m.contains_key(&format!("{role}_disconnected_since")))
                    .unwrap_or(false);
                if known {
                    Ok(())
                } else {
                    store.set_fleet_state(
                        &format!("{role}_disconnected_since"),
                        &now.to_string(),
                        now,
                    )
                }
            }),
    };
    if let Err(e) = result {
        tracing::warn!("fleet: cannot record the link's state: {e}");
    }
}

/// What both fleet threads share: where the store is, when to stop, the clock, the metrics.
struct FleetEnv {
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    clock: SharedClock,
    metrics: Arc<crate::metrics::Metrics>,
}

impl FleetEnv {
    /// The thread's own store connection; `None` (logged) when it cannot be opened.
    fn open_store(&self, role: &str) -> Option<crate::store::Store> {
        crate::store::Store::open(&self.dir)
            .map_err(|e| tracing::error!("fleet {role}: {e}"))
            .ok()
    }

    /// `link`, connected now if there is none. A failed attempt is noted (store, metrics),
    /// paused on for a second, and gives `None`.
    fn link<'l>(
        &self,
        fc: &crate::fleet::FleetConfig,
        store: &crate::store::Store,
        role: &str,
        timeout: Duration,
        link: &'l mut Option<crate::fleet::Link>,
    ) -> Option<&'l mut crate::fleet::Link> {
        if link.is_none() {
            match crate::fleet::Link::connect(fc, timeout) {
                Ok(l) => {
                    link_state(store, role, Ok(()), &self.clock, &self.metrics);
                    *link = Some(l);
                }
                Err(e) => {
                    link_state(store, role, Err(&e.to_string()), &self.clock, &self.metrics);
                    pause(Duration::from_secs(1), &self.stop);
                    return None;
                }
            }
        }
        link.as_mut()
    }
}

/// The publisher: send the outbox whenever it holds something; on a Redis error, reconnect
/// after a second (the rows wait in the store meanwhile).
fn publish_loop(fc: &crate::fleet::FleetConfig, env: &FleetEnv) {
    let FleetEnv {
        stop,
        clock,
        metrics,
        ..
    } = env;
    let Some(store) = env.open_store("publisher") else {
        return;
    };
    let mut link: Option<crate::fleet::Link> = None;
    while !stop.load(Ordering::Relaxed) {
        let pending = crate::store::ReadStore::outbox_len(&store).unwrap_or(0);
        metrics.fleet_outbox(pending);
        if pending > 0 || link.is_none() {
            let Some(l) = env.link(fc, &store, "publisher", Duration::from_secs(5), &mut link)
            else {
                continue;
            };
            let sent = crate::fleet::publish_outbox(&store, l);
            if let Ok(n) = sent {
                metrics.fleet(&crate::fleet::FleetSummary {
                    published: n as u64,
                    ..Default::default()
                });
            }
            if let Err(e) = sent {
                tracing::warn!("fleet publisher: {e}; {pending} message(s) wait in the outbox");
                eprintln!("portwarden daemon: fleet publisher: {e}; the outbox keeps the messages");
                link_state(&store, "publisher", Err(&e.to_string()), clock, metrics);
                link = None;
                pause(Duration::from_secs(1), stop);
                continue;
            }
        }
        std::thread::sleep(crate::fleet::PUBLISH_POLL);
    }
}

/// The consumer: blocking `XREAD`s from `start`, each non-empty answer sent to the main loop.
fn consume_loop(
    fc: &crate::fleet::FleetConfig,
    env: &FleetEnv,
    start: String,
    tx: &SyncSender<Message>,
    rewind: &AtomicU64,
) {
    let FleetEnv {
        stop,
        clock,
        metrics,
        ..
    } = env;
    let Some(store) = env.open_store("consumer") else {
        return;
    };
    let mut last = start;
    let mut epoch = 0;
    let mut link: Option<crate::fleet::Link> = None;
    while !stop.load(Ordering::Relaxed) {
        let wanted = rewind.load(Ordering::Acquire);
        if wanted > epoch {
            epoch = wanted;
            last = crate::store::ReadStore::cursor(&store, &crate::fleet::cursor_name(fc))
                .ok()
                .flatten()
                .unwrap_or_else(|| "0".into());
        }
        let timeout = crate::fleet::READ_BLOCK + Duration::from_secs(5);
        let Some(l) = env.link(fc, &store, "consumer", timeout, &mut link) else {
            continue;
        };
        match l.read(
            &last,
            crate::fleet::READ_COUNT,
            Some(crate::fleet::READ_BLOCK),
        ) {
            Ok(entries) => {
                let Some(newest) = entries.last() else {
                    continue;
                };
                last = newest.id.clone();
                if let Some(added) = newest.added_at() {
                    let lag = clock.now().duration_since(added).as_millis().max(0);
                    let _ = store.set_fleet_state("lag_ms", &lag.to_string(), clock.now());
                }
                if tx.send(Message::Fleet { entries, epoch }).is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!("fleet consumer: {e}; reconnecting");
                eprintln!("portwarden daemon: fleet consumer: {e}; reconnecting");
                link_state(&store, "consumer", Err(&e.to_string()), clock, metrics);
                link = None;
                pause(Duration::from_secs(1), stop);
            }
        }
    }
}

/// Cursors and counters between two checkpoints.
struct Session {
    cursors: Vec<Option<Cursor>>,
    summary: PassSummary,
    started: jiff::Timestamp,
    clock: SharedClock,
    fleet_rewind: Arc<AtomicU64>,
}

impl Session {
    fn new(sources: usize, clock: SharedClock, fleet_rewind: Arc<AtomicU64>) -> Session {
        Session {
            cursors: vec![None; sources],
            summary: PassSummary {
                sources,
                ..PassSummary::default()
            },
            started: clock.now(),
            clock,
            fleet_rewind,
        }
    }

    fn handle(&mut self, engine: &mut Engine, m: Message, ids: &[String]) {
        match m {
            Message::Record { index, kind, bytes } => {
                self.summary.records += 1;
                engine.feed_from(
                    index,
                    Record {
                        kind,
                        bytes: &bytes,
                    },
                );
            }
            Message::Cursor {
                index,
                cursor,
                lost,
            } => {
                if let Some(slot) = self.cursors.get_mut(index) {
                    *slot = cursor;
                }
                if lost > 0 {
                    // Counted in the summary (and so in the run record) and the metrics; said
                    // at once, since what was lost may have been a scan.
                    self.summary.lost += lost;
                    engine.count_lost(index, lost);
                    let id = ids.get(index).map(String::as_str).unwrap_or("?");
                    eprintln!(
                        "portwarden daemon: {id}: {lost} record(s) LOST: the kernel ring overran the reader; going on"
                    );
                }
            }
            Message::Failed { index, error } => {
                self.summary.source_errors += 1;
                let id = ids.get(index).map(String::as_str).unwrap_or("?");
                tracing::error!(source = id, "cannot follow: {error}");
                eprintln!("portwarden daemon: cannot follow {id}: {error}");
            }
            Message::Fleet { epoch, .. } if epoch < self.fleet_rewind.load(Ordering::Acquire) => {
                // Read past entries that failed to apply: the consumer reads them again.
            }
            Message::Fleet { entries, .. } => match engine.apply_fleet(&entries) {
                Ok(s) => {
                    if s.messages > s.own {
                        eprintln!(
                            "{} portwarden daemon: {s}",
                            self.clock.now().strftime("%H:%M:%S%.3f")
                        );
                    }
                }
                Err(e) => {
                    tracing::error!("cannot apply the fleet's messages, reading them again: {e:#}");
                    eprintln!(
                        "portwarden daemon: cannot apply the fleet's messages, reading them again: {e:#}"
                    );
                    self.fleet_rewind.fetch_add(1, Ordering::AcqRel);
                }
            },
        }
    }

    /// Decide and ban what is pending; with `full`, also save cursors and detector state. On
    /// success the counters start again; the cursors only after a full checkpoint saved them.
    fn checkpoint(
        &mut self,
        engine: &mut Engine,
        ids: &[String],
        full: bool,
    ) -> anyhow::Result<()> {
        let cursors: Vec<(String, Option<Cursor>)> = ids
            .iter()
            .cloned()
            .zip(self.cursors.iter().cloned())
            .collect();
        let had_findings = engine.has_pending();
        engine.checkpoint("daemon", self.started, &cursors, full, &mut self.summary)?;
        if had_findings {
            eprintln!(
                "{} portwarden daemon: {}",
                self.clock.now().strftime("%H:%M:%S%.3f"),
                self.summary
            );
        }
        let cursors = std::mem::take(&mut self.cursors);
        *self = Session::new(ids.len(), self.clock.clone(), self.fleet_rewind.clone());
        if !full {
            self.cursors = cursors;
        }
        Ok(())
    }
}

fn serve(
    engine: &mut Engine,
    rx: &Receiver<Message>,
    ids: &[String],
    term: &AtomicBool,
    hup: &AtomicBool,
    session: &mut Session,
) -> anyhow::Result<()> {
    let mut last_checkpoint = Instant::now();
    let mut last_table_check = Instant::now();
    let mut last_served_refresh = Instant::now();
    let mut last_fastpath_sync = Instant::now();
    // After a failed checkpoint (nft or SQLite refused), wait before trying again rather than
    // on every record; the findings stay pending meanwhile.
    let mut retry_at = Instant::now();
    let checkpoint_every = Duration::from_secs(Engine::DAEMON_CHECKPOINT.as_secs() as u64);
    let mut checkpoint = |session: &mut Session, engine: &mut Engine, full: bool| {
        if Instant::now() < retry_at {
            return;
        }
        if let Err(e) = session.checkpoint(engine, ids, full) {
            let e = super::error_chain(&e);
            // Which scanners wait: the operator's first question.
            let pending = engine.pending_sources();
            let waiting = if pending.is_empty() {
                String::new()
            } else {
                let shown: Vec<String> = pending.iter().take(5).map(|a| a.to_string()).collect();
                let more = pending.len().saturating_sub(shown.len());
                format!(
                    " ({} finding source(s) pending: {}{})",
                    pending.len(),
                    shown.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                )
            };
            tracing::error!("checkpoint failed{waiting}, retrying in {TABLE_CHECK:?}: {e}");
            eprintln!("portwarden daemon: checkpoint failed{waiting}, will retry: {e}");
            retry_at = Instant::now() + TABLE_CHECK;
        }
    };
    while !term.load(Ordering::Relaxed) && !hup.load(Ordering::Relaxed) {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(m) => session.handle(engine, m, ids),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                if !ids.is_empty() {
                    anyhow::bail!("every source stopped");
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        // A finding is decided and banned at once: that is the daemon's point. The cursors
        // and the detector state wait for the periodic full checkpoint.
        if engine.has_pending() {
            checkpoint(session, engine, false);
        }
        if last_checkpoint.elapsed() >= checkpoint_every {
            checkpoint(session, engine, true);
            last_checkpoint = Instant::now();
        }
        if last_served_refresh.elapsed() >= SERVED_PORTS_REFRESH {
            last_served_refresh = Instant::now();
            engine.refresh_served_ports();
            engine.refresh_clock();
        }
        // The periodic host check: this host's addresses, gateways and resolvers may have
        // changed (DHCP, a new interface); the fast path must never ban them.
        if last_fastpath_sync.elapsed() >= Engine::FASTPATH_SYNC {
            last_fastpath_sync = Instant::now();
            if let Err(e) = engine.sync_fastpath() {
                tracing::error!("{e:#}");
            }
        }
        if last_table_check.elapsed() >= TABLE_CHECK {
            last_table_check = Instant::now();
            match engine.firewall_ready() {
                Ok(true) => {}
                Ok(false) => {
                    if let Err(e) = engine.reconcile() {
                        tracing::error!(
                            "cannot restore the firewall table: {}",
                            super::error_chain(&e)
                        );
                    }
                }
                Err(e) => tracing::error!("cannot check the firewall: {}", super::error_chain(&e)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bans::BanBook;
    use crate::clock::FakeClock;
    use crate::config::SourceConfig;
    use crate::enforce::fake::{FakeFirewall, shared};
    use crate::store::Store;

    #[test]
    fn what_a_reader_reports_reaches_the_metrics_of_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.ban.allowlist_host = false;
        config.detect.served_ports_from_proc = false;
        config.sources = vec![
            SourceConfig::Kmsg {
                path: "/dev/kmsg".into(),
            },
            SourceConfig::File {
                path: dir.path().join("kern.log"),
            },
        ];
        let clock: SharedClock = Arc::new(FakeClock::new("2026-11-24T23:00:00Z".parse().unwrap()));
        let book = BanBook::new(
            Store::open(dir.path()).unwrap(),
            Box::new(shared(FakeFirewall::new())),
            &config.ban,
            clock.clone(),
        );
        let metrics = Arc::new(Metrics::new());
        let mut engine = Engine::open(config, book, clock.clone())
            .unwrap()
            .0
            .with_metrics(metrics.clone());
        let ids: Vec<String> = engine.sources().iter().map(source::id_of).collect();
        let mut session = Session::new(
            ids.len(),
            clock.clone(),
            Arc::new(std::sync::atomic::AtomicU64::new(0)),
        );
        session.handle(
            &mut engine,
            Message::Record {
                index: 1,
                kind: SourceKind::File,
                bytes: b"not a LOG record".to_vec(),
            },
            &ids,
        );
        session.handle(
            &mut engine,
            Message::Cursor {
                index: 0,
                cursor: None,
                lost: 7,
            },
            &ids,
        );
        assert_eq!(session.summary.lost, 7, "the summary line reports it too");
        let text = metrics.encode().unwrap();
        let value = |name: &str, source: &str| {
            text.lines()
                .filter_map(crate::metrics::parse_sample)
                .find(|s| {
                    s.name == name && s.labels.iter().any(|(k, v)| k == "source" && v == source)
                })
                .map(|s| s.value)
        };
        assert_eq!(value("portwarden_records_lost_total", &ids[0]), Some(7.0));
        assert_eq!(value("portwarden_records_lost_total", &ids[1]), Some(0.0));
        assert_eq!(value("portwarden_records_total", &ids[0]), Some(0.0));
        assert_eq!(value("portwarden_records_total", &ids[1]), Some(1.0));
    }
}
