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
//! checkpoint is written.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::{Engine, PassSummary, RunLock};
use crate::clock::SharedClock;
use crate::config::Config;
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
        kind: SourceKind,
        bytes: Vec<u8>,
    },
    Cursor {
        index: usize,
        cursor: Option<Cursor>,
    },
    Failed {
        index: usize,
        error: String,
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
    while !stop.load(Ordering::Relaxed) {
        let mut gone = false;
        let result = src.read_available(&mut |r: Record<'_>| {
            // Asked to stop or not, the batch is sent to its end: the main thread drains the
            // channel until every reader has finished (see `Readers::stop`), so the batch's
            // cursor is saved with its records and nothing is read twice after a restart.
            if gone {
                return;
            }
            if tx
                .send(Message::Record {
                    kind: r.kind,
                    bytes: r.bytes.to_vec(),
                })
                .is_err()
            {
                gone = true;
            }
        });
        if let Err(e) = result {
            tracing::error!(source = id, "{e}; retrying");
            std::thread::sleep(Duration::from_secs(1));
        }
        if gone
            || tx
                .send(Message::Cursor {
                    index,
                    cursor: src.cursor(),
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
    let Some(_lock) = RunLock::try_acquire(state_dir)? else {
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
    let (mut engine, report) = Engine::open_in(config, state_dir, clock.clone())?;
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
        let (tx, rx) = mpsc::sync_channel::<Message>(65_536);
        let readers = Readers::start(&engine, &tx);
        drop(tx);
        let ids = readers.ids.clone();
        eprintln!("portwarden daemon: following {}", ids.join(", "));
        let mut session = Session::new(ids.len(), clock.clone());
        let outcome = serve(&mut engine, &rx, &ids, &term, &hup, &mut session);
        // Whatever the readers sent before they stopped is processed and saved, with the
        // cursors and counts of the session still open: dropping those would make the next
        // start (or the reloaded readers) read those records again.
        readers.stop(&rx, &mut session, &mut engine);
        session.checkpoint(&mut engine, &ids, true)?;
        outcome?;
        if term.load(Ordering::Relaxed) {
            eprintln!("portwarden daemon: stopped; state saved");
            return Ok(());
        }
        // SIGHUP: reload the config; a bad file keeps the old one running.
        hup.store(false, Ordering::Relaxed);
        match Config::load(config_path.as_deref()) {
            Ok(new_config) => match Engine::open_in(new_config, state_dir, clock.clone()) {
                Ok((e, _)) => {
                    engine = e;
                    eprintln!("portwarden daemon: configuration reloaded");
                }
                Err(e) => eprintln!(
                    "portwarden daemon: reload failed, keeping the old configuration: {e:#}"
                ),
            },
            Err(e) => {
                eprintln!("portwarden daemon: reload failed, keeping the old configuration: {e:#}")
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
}

impl Session {
    fn new(sources: usize, clock: SharedClock) -> Session {
        Session {
            cursors: vec![None; sources],
            summary: PassSummary {
                sources,
                ..PassSummary::default()
            },
            started: clock.now(),
            clock,
        }
    }

    fn handle(&mut self, engine: &mut Engine, m: Message, ids: &[String]) {
        match m {
            Message::Record { kind, bytes } => {
                self.summary.records += 1;
                engine.feed(Record {
                    kind,
                    bytes: &bytes,
                });
            }
            Message::Cursor { index, cursor } => {
                if let Some(slot) = self.cursors.get_mut(index) {
                    *slot = cursor;
                }
            }
            Message::Failed { index, error } => {
                self.summary.source_errors += 1;
                let id = ids.get(index).map(String::as_str).unwrap_or("?");
                tracing::error!(source = id, "cannot follow: {error}");
                eprintln!("portwarden daemon: cannot follow {id}: {error}");
            }
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
        *self = Session::new(ids.len(), self.clock.clone());
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
            tracing::error!("checkpoint failed, retrying in {TABLE_CHECK:?}: {e:#}");
            eprintln!("portwarden daemon: checkpoint failed, will retry: {e:#}");
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
                        tracing::error!("cannot restore the firewall table: {e:#}");
                    }
                }
                Err(e) => tracing::error!("cannot check the firewall: {e:#}"),
            }
        }
    }
    Ok(())
}
