//! The daemon's periodic save of the sources' cursors and the detector state, on a thread of
//! its own ([`StateSaver`]).
//!
//! A full checkpoint used to turn the whole detector state into JSON and write it on the
//! daemon's thread, every [`Engine::DAEMON_CHECKPOINT`](super::Engine::DAEMON_CHECKPOINT): at
//! the detector's bound (16 384 sources) 5 to 8 ms of snapshot, 20 to 35 ms of JSON and 7 to
//! 85 ms of writing 16 MB (`cargo test --release --lib detect::at_the_bound -- --ignored
//! --nocapture`), during which no record was read and no scanner banned. Now the daemon's
//! thread only takes the snapshot and the cursors, at the same moment and after the bans of
//! the checkpoint committed; this thread writes them, together, in a transaction of its own
//! connection.
//!
//! Why that is as safe as writing them with the bans: a saved cursor must never run ahead of
//! what was processed, and the state saved with it must be the one reached at that cursor.
//! Both are taken together on the daemon's thread, after every finding up to there was decided
//! and its ban committed; after a crash the older cursor and state are replayed, as before.
//! Only the newest save waiting matters: one not yet begun is replaced by the next. Stopping
//! the saver ([`StateSaver::finish`], and on drop) writes what waits and joins the thread, so
//! that the daemon's last, synchronous save at shutdown or reload is never overwritten by an
//! older one.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use anyhow::Context as _;
use jiff::Timestamp;

use crate::detect::DetectorState;
use crate::metrics::Metrics;
use crate::store::Store;

/// One save: the detector state and the cursors (source ID, stored form) taken with it.
pub(crate) struct SaveJob {
    pub state: DetectorState,
    pub cursors: Vec<(String, String)>,
    pub at: Timestamp,
}

#[derive(Default)]
struct Slot {
    /// The newest save not yet begun.
    job: Option<SaveJob>,
    /// Stop once nothing waits.
    stop: bool,
    /// Saves written, and saves that failed (for tests and the log).
    saved: u64,
    failed: u64,
}

struct Shared {
    slot: Mutex<Slot>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        // A panic on the saver's thread while holding the lock leaves plain data behind.
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Writes cursors and detector state on a thread of its own; see the module doc.
pub(crate) struct StateSaver {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl StateSaver {
    /// Start the thread, with its own connection to the store in `state_dir`. A failed save is
    /// logged and counted as a failed checkpoint in `metrics`; the next one saves newer data.
    pub(crate) fn start(state_dir: &Path, metrics: Arc<Metrics>) -> anyhow::Result<StateSaver> {
        let mut store = Store::open(state_dir)
            .with_context(|| format!("opening the store in {}", state_dir.display()))?;
        let shared = Arc::new(Shared {
            slot: Mutex::new(Slot::default()),
            changed: Condvar::new(),
        });
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("state-save".into())
            .spawn(move || {
                while let Some(job) = next_job(&theirs) {
                    let outcome = write(&mut store, &job);
                    if let Err(e) = &outcome {
                        tracing::error!("cannot save the cursors and the detector state: {e:#}");
                        eprintln!(
                            "portwarden daemon: cannot save the cursors and the detector state (the next checkpoint tries again): {e:#}"
                        );
                        metrics.checkpoint_failed();
                    }
                    let mut slot = theirs.lock();
                    if outcome.is_ok() {
                        slot.saved += 1;
                    } else {
                        slot.failed += 1;
                    }
                    theirs.changed.notify_all();
                }
            })
            .context("starting the thread that saves the detector state")?;
        Ok(StateSaver {
            shared,
            thread: Some(thread),
        })
    }

    /// Hand over a save; one that waits and has not begun is dropped for it (it is older).
    pub(crate) fn submit(&self, job: SaveJob) {
        let mut slot = self.shared.lock();
        slot.job = Some(job);
        self.shared.changed.notify_all();
    }

    /// Wait until `n` saves were written or failed, or `timeout` passed; the counts then.
    #[cfg(test)]
    pub(crate) fn wait_for(&self, n: u64, timeout: std::time::Duration) -> (u64, u64) {
        let deadline = std::time::Instant::now() + timeout;
        let mut slot = self.shared.lock();
        while slot.saved + slot.failed < n {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            slot = self
                .shared
                .changed
                .wait_timeout(slot, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        (slot.saved, slot.failed)
    }

    /// Write what waits, then stop the thread and wait for it.
    pub(crate) fn finish(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the thread saving the detector state panicked");
        }
    }
}

impl Drop for StateSaver {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The next save to write; `None` once stopped with nothing waiting.
fn next_job(shared: &Shared) -> Option<SaveJob> {
    let mut slot = shared.lock();
    loop {
        if let Some(job) = slot.job.take() {
            return Some(job);
        }
        if slot.stop {
            return None;
        }
        slot = shared.changed.wait(slot).unwrap_or_else(|e| e.into_inner());
    }
}

/// The JSON first, outside the transaction: the store's write lock (which the daemon's bans
/// wait for) is held only while the text is written.
fn write(store: &mut Store, job: &SaveJob) -> anyhow::Result<()> {
    let state = serde_json::to_string(&job.state).context("serialising the detector state")?;
    let mut tx = store.transaction()?;
    for (source, cursor) in &job.cursors {
        tx.set_cursor(source, cursor, job.at)?;
    }
    tx.set_detector_state(&state, job.at)?;
    tx.commit()?;
    Ok(())
}
