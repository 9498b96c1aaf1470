//! The ban book: the one owner of the list of bans. Every change to it (a detector's ban, a
//! manual ban or unban, an import, the expiry of a ban in a set without timeouts, the repair of
//! the kernel after a reboot or `nft flush ruleset`, and later the kernel fast path's and fleet
//! peers' bans) goes through this module, which alone writes both the store's bans and the
//! kernel sets.
//!
//! In: decisions of the decide stage ([`BanDecision`]), operator requests ([`operator`]), the
//! store and the firewall it owns. Out: bans in the kernel and in the store, in the order below.
//!
//! # The order of writes
//!
//! Every change, whatever its kind, is one [`Batch`]:
//!
//! 1. a store transaction is opened and the change is written into it (bans, lifts, offences,
//!    findings; for a pass, also its cursors, detector state and run record);
//! 2. the kernel gets the change in one firewall batch per direction: first the elements to
//!    remove, then the elements to add;
//! 3. the transaction commits. **The commit is the moment the change has happened.**
//!
//! If the kernel refuses at step 2, the transaction is rolled back: store and kernel both stay
//! as they were, and the caller gets the error (the engine keeps its findings pending and its
//! cursors where they were, so nothing is lost; an operator's command fails and says why).
//!
//! # What a restart repairs, crash point by crash point
//!
//! Every start of a pass, the daemon, and every operator command runs [`BanBook::reconcile`],
//! which puts the store's live bans that the kernel lacks back with their remaining time.
//!
//! | the process dies | store | kernel | after the restart |
//! | --- | --- | --- | --- |
//! | before step 2 | unchanged (SQLite discards the open transaction) | unchanged | nothing happened; a pass re-reads the same records and decides again |
//! | between 2 and 3, adding | unchanged | holds the new element | the element keeps its own timeout; a pass re-reads the records, decides the same ban and records it (adding an element twice is harmless); an operator's command reported no success and can be repeated |
//! | between 2 and 3, removing | still says live | lacks the element | reconcile puts the element back: the unban did not happen, as its failed command said |
//! | after step 3 | changed | changed | nothing to repair |
//!
//! The tests at the bottom inject a failure at each point (a fake firewall, the transaction
//! dropped uncommitted as a crash leaves it) and check what a restart finds.
//!
//! # One answer to "can this be banned here"
//!
//! [`BanBook::can_ban`] asks the firewall whether it has a set for the target's family (a
//! borrowed IPv4-only table such as the seed lab's has none for IPv6); the engine and
//! reconcile both use it.
//!
//! In dry-run mode the book records every change (marked dry-run) and never calls the
//! firewall.
//!
//! # The fleet
//!
//! With `[fleet]` publishing on, every ban and unban this host makes (a decision, an
//! operator's ban, unban or import) also queues a message in the store's outbox, in the same
//! transaction: it is published if and only if the change happened, exactly once, in order
//! ([`crate::fleet`] sends it when Redis is reachable). A peer's ban or unban
//! ([`Batch::remote_ban`], [`Batch::remote_unban`]) is recorded with the peer's host and never
//! published again.

use std::path::Path;

use ipnet::IpNet;
use jiff::{SignedDuration, Timestamp};

use crate::clock::SharedClock;
use crate::config::Config;
use crate::decide::BanDecision;
use crate::enforce::{BanElement, EnforceError, Firewall, NftFirewall, SetElement, TableState};
use crate::record::{Ban, Finding};
use crate::store::{
    BanOrigin, FindingOutcome, OutboxRow, ReadStore, RunRecord, Store, StoreError, StoreTx,
};

pub mod operator;
pub mod reconcile;
pub mod view;

pub use operator::{BanOutcome, ImportReport, OperatorError, UnbanOutcome};
pub use reconcile::ReconcileReport;

/// Errors of the ban book.
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error(
        "the firewall table is not in the kernel: run `portwarden setup` first (it creates the table; the next run or the daemon puts back the bans the store remembers)"
    )]
    NoTable,
    #[error(transparent)]
    Enforce(#[from] EnforceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A crash injected by a test between two steps of a batch.
    #[cfg(test)]
    #[error("simulated crash {0:?}")]
    Crash(CrashPoint),
}

/// Where a test makes the next batch stop as if the process died there.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// After the store writes, before the kernel is touched.
    BeforeKernel,
    /// After the kernel took the change, before the commit.
    AfterKernel,
}

/// The owner of the store and the firewall together.
pub struct BanBook {
    store: Store,
    firewall: Box<dyn Firewall>,
    dry_run: bool,
    offence_memory: SignedDuration,
    clock: SharedClock,
    /// This host's fleet id when it publishes its bans (see the module doc).
    publish_as: Option<String>,
    #[cfg(test)]
    crash: Option<CrashPoint>,
}

impl BanBook {
    /// A book over an open store and a firewall. `dry_run` and `offence_memory` come from
    /// `[ban]`.
    pub fn new(
        store: Store,
        firewall: Box<dyn Firewall>,
        config: &crate::config::BanConfig,
        clock: SharedClock,
    ) -> BanBook {
        BanBook {
            store,
            firewall,
            dry_run: config.dry_run,
            offence_memory: config.offence_memory,
            clock,
            publish_as: None,
            #[cfg(test)]
            crash: None,
        }
    }

    /// Queue every ban and unban this host makes for the fleet as `host_id` (see the module
    /// doc).
    pub fn publish_as(mut self, host_id: Option<String>) -> BanBook {
        self.publish_as = host_id;
        self
    }

    /// The store in `state_dir` and the nftables firewall the config describes.
    pub fn open(
        config: &Config,
        state_dir: &Path,
        clock: SharedClock,
    ) -> Result<BanBook, StoreError> {
        let store = Store::open(state_dir)?;
        let firewall = NftFirewall::from_config(config);
        let publish_as = config
            .fleet
            .as_ref()
            .filter(|f| f.publish)
            .map(|f| f.host_id.clone());
        Ok(BanBook::new(store, Box::new(firewall), &config.ban, clock).publish_as(publish_as))
    }

    /// A dry-run book over a throwaway in-memory store: what `import --dry-run` uses to say
    /// what would happen without writing anything anywhere.
    pub fn scratch(config: &Config, clock: SharedClock) -> Result<BanBook, StoreError> {
        let mut ban = config.ban.clone();
        ban.dry_run = true;
        let firewall = NftFirewall::from_config(config);
        Ok(BanBook::new(
            Store::open_in_memory()?,
            Box::new(firewall),
            &ban,
            clock,
        ))
    }

    /// The store, to read (cursors, detector state, listings). Writes go through a [`Batch`].
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Whether the firewall has a set for `target`'s family (see the module doc).
    pub fn can_ban(&self, target: &IpNet) -> bool {
        self.firewall.holds(target)
    }

    /// Put the table and the live bans back if the kernel lost them. `None` in dry-run.
    pub fn reconcile(&mut self) -> Result<Option<ReconcileReport>, BookError> {
        if self.dry_run {
            return Ok(None);
        }
        let now = self.clock.now();
        let report = reconcile::reconcile(self.firewall.as_mut(), &self.store, now)?;
        Ok(Some(report))
    }

    /// For operator commands: the table must exist (creating it is `setup`'s job, never a
    /// side effect of a manual ban: as root on a host that was never set up, that would
    /// silently install LOG and drop rules); with it there, what the kernel lost is put back.
    pub fn reconcile_existing(&mut self) -> Result<(), BookError> {
        self.require_table()?;
        if !self.dry_run {
            self.reconcile()?;
        }
        Ok(())
    }

    /// Fail with [`BookError::NoTable`] when the table is missing (nothing in dry-run): the
    /// check a single ban or unban makes, at a cost that does not grow with the sets. (The
    /// repair of what the kernel lost, [`BanBook::reconcile`], reads every element: it is for
    /// passes, `setup` and imports, not for each operator ban.)
    pub fn require_table(&mut self) -> Result<(), BookError> {
        if !self.dry_run && self.firewall.check()? == TableState::Missing {
            return Err(BookError::NoTable);
        }
        Ok(())
    }

    /// Mirror the allowlist and the configured served ports into the kernel fast path's sets
    /// (`allow4`/`allow6`, `served`), replacing what they held, in one nft transaction.
    /// Nothing in dry-run or when the fast path is off. These sets hold no bans: they only
    /// keep the packet path from banning what decide would never ban.
    pub fn sync_fastpath(
        &mut self,
        allow: &[IpNet],
        served: &[(crate::record::Proto, u16)],
    ) -> Result<(), BookError> {
        if self.dry_run {
            return Ok(());
        }
        Ok(self.firewall.sync_fastpath(allow, served)?)
    }

    /// Whether the firewall still holds the table (the daemon polls this to notice
    /// `nft flush ruleset`). Always true in dry-run.
    pub fn table_ready(&mut self) -> Result<bool, BookError> {
        if self.dry_run {
            return Ok(true);
        }
        Ok(self.firewall.check()? == TableState::Ready)
    }

    /// What the firewall says of its table (read only).
    pub fn table_state(&mut self) -> Result<TableState, EnforceError> {
        self.firewall.check()
    }

    /// The elements of the kernel sets (read only).
    pub fn kernel_elements(&mut self) -> Result<Vec<SetElement>, EnforceError> {
        self.firewall.list()
    }

    /// Open a batch: one store transaction and the kernel changes that go with it.
    pub fn batch(&mut self) -> Result<Batch<'_>, BookError> {
        let now = self.clock.now();
        Ok(Batch {
            tx: self.store.transaction()?,
            firewall: self.firewall.as_mut(),
            dry_run: self.dry_run,
            offence_memory: self.offence_memory,
            now,
            add: Vec::new(),
            add_at: std::collections::HashMap::new(),
            remove: Vec::new(),
            removing: std::collections::HashSet::new(),
            publish_as: self.publish_as.as_deref(),
            published: 0,
            #[cfg(test)]
            crash: self.crash.take(),
        })
    }

    /// Make the next batch stop at `point` as a crash would.
    #[cfg(test)]
    pub fn crash_next_batch(&mut self, point: CrashPoint) {
        self.crash = Some(point);
    }
}

/// One change to the list of bans: a store transaction and the kernel changes that go with
/// it, applied in the order the module doc gives by [`Batch::commit`]. Dropped without a
/// commit, it changes nothing.
pub struct Batch<'b> {
    tx: StoreTx<'b>,
    firewall: &'b mut dyn Firewall,
    dry_run: bool,
    offence_memory: SignedDuration,
    now: Timestamp,
    /// Elements to add, in the order queued (`None`: withdrawn in this batch), and where
    /// each target sits: a batch of 100 000 (an import) queues in linear time.
    add: Vec<Option<BanElement>>,
    add_at: std::collections::HashMap<IpNet, usize>,
    remove: Vec<IpNet>,
    removing: std::collections::HashSet<IpNet>,
    publish_as: Option<&'b str>,
    published: usize,
    #[cfg(test)]
    crash: Option<CrashPoint>,
}

/// What a committed batch changed in the kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub added: usize,
    pub removed: usize,
    /// Fleet messages queued in the outbox with the change.
    pub published: usize,
}

impl<'b> Batch<'b> {
    /// The store as this batch sees it (its own writes included): what decide reads.
    pub fn view(&self) -> &StoreTx<'b> {
        &self.tx
    }

    /// The time this batch acts at.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// See [`BanBook::can_ban`].
    pub fn can_ban(&self, target: &IpNet) -> bool {
        self.firewall.holds(target)
    }

    /// Record a decision about `finding` and queue what it asks of the kernel.
    pub fn record(&mut self, finding: &Finding, decision: &BanDecision) -> Result<(), BookError> {
        let host = IpNet::from(finding.source);
        let forget_before = finding
            .detected_at
            .checked_sub(self.offence_memory)
            .unwrap_or(Timestamp::MIN);
        match decision {
            BanDecision::Allowlisted { .. } => {
                self.tx
                    .record_finding(finding, FindingOutcome::Allowlisted)?;
            }
            BanDecision::AlreadyBanned { .. } => {
                self.tx
                    .record_finding(finding, FindingOutcome::AlreadyBanned)?;
            }
            BanDecision::RateLimited { .. } => {
                self.tx
                    .add_offence(host, finding.detected_at, forget_before)?;
                self.tx
                    .record_finding(finding, FindingOutcome::RateLimited)?;
            }
            BanDecision::DryRun { ban, prefix, .. } => {
                self.tx
                    .add_offence(host, finding.detected_at, forget_before)?;
                if *prefix {
                    self.tx
                        .add_offence(ban.target, finding.detected_at, forget_before)?;
                }
                self.tx.record_ban(ban, BanOrigin::Auto, true)?;
                self.tx.record_finding(finding, FindingOutcome::DryRun)?;
            }
            BanDecision::Ban {
                ban,
                prefix,
                supersedes,
                ..
            } => {
                self.tx
                    .add_offence(host, finding.detected_at, forget_before)?;
                if *prefix {
                    self.tx
                        .add_offence(ban.target, finding.detected_at, forget_before)?;
                }
                // A ban of the same target that did not hold (decide's rule 2) is replaced.
                self.tx.lift(ban.target, self.now)?;
                self.tx.record_ban(ban, BanOrigin::Auto, self.dry_run)?;
                self.publish_ban(ban)?;
                for t in supersedes {
                    self.tx.lift(*t, self.now)?;
                    self.queue_remove(*t);
                }
                self.tx.record_finding(
                    finding,
                    if *prefix {
                        FindingOutcome::PrefixBanned
                    } else {
                        FindingOutcome::Banned
                    },
                )?;
                self.queue_add(ban);
            }
        }
        Ok(())
    }

    /// Ban `ban.target` (an operator's ban or an import): an active ban of the same target is
    /// replaced (lifted in the store; the kernel element takes the new timeout). Returns
    /// whether one was replaced.
    pub fn ban(&mut self, ban: &Ban, origin: BanOrigin) -> Result<bool, BookError> {
        let replaced = self.tx.lift(ban.target, self.now)? > 0;
        self.ban_unmarked(ban, origin)?;
        Ok(replaced)
    }

    /// [`Batch::ban`] of a target that no ban in the store is marked active for (the caller
    /// read them in this batch): nothing to lift, so no lookup for it. An import of 100 000
    /// addresses spent a quarter of its time lifting nothing.
    pub fn ban_unmarked(&mut self, ban: &Ban, origin: BanOrigin) -> Result<(), BookError> {
        self.tx.record_ban(ban, origin, self.dry_run)?;
        self.publish_ban(ban)?;
        self.queue_add(ban);
        Ok(())
    }

    /// Lift every active ban of exactly `target`, in the store and the kernel (absent
    /// elements are not an error). Returns how many store bans were lifted.
    pub fn unban(&mut self, target: IpNet) -> Result<usize, BookError> {
        let lifted = self.tx.lift(target, self.now)?;
        self.queue_remove(target);
        if !self.dry_run {
            self.publish(OutboxRow {
                id: 0,
                kind: "unban".into(),
                target,
                since: self.now,
                until: None,
                reason: "unban".into(),
                evidence: String::new(),
                origin: String::new(),
            })?;
        }
        Ok(lifted)
    }

    /// Record a fleet peer's ban (decided by [`crate::decide::Decider::decide_remote`]):
    /// replaces an active ban of the same target, is never published again.
    pub fn remote_ban(&mut self, ban: &Ban, origin_host: &str) -> Result<(), BookError> {
        self.tx.lift(ban.target, self.now)?;
        self.tx
            .record_ban_from(ban, BanOrigin::Remote, self.dry_run, Some(origin_host))?;
        self.queue_add(ban);
        Ok(())
    }

    /// Lift a ban because a fleet peer lifted it; never published again. Returns how many
    /// store bans were lifted.
    pub fn remote_unban(&mut self, target: IpNet) -> Result<usize, BookError> {
        let lifted = self.tx.lift(target, self.now)?;
        if lifted > 0 {
            self.queue_remove(target);
        }
        Ok(lifted)
    }

    /// The store side of a batch, for the fleet's counters and peers.
    pub fn store_tx(&mut self) -> &mut StoreTx<'b> {
        &mut self.tx
    }

    fn publish_ban(&mut self, ban: &Ban) -> Result<(), BookError> {
        if self.dry_run {
            return Ok(());
        }
        let evidence = ban
            .finding
            .as_ref()
            .map(|f| {
                let e = &f.evidence;
                format!(
                    "{} {}: {} probes, {} failed, {} ports, {} destination(s), {} to {}",
                    f.kind,
                    f.scan_type,
                    e.probes,
                    e.failures,
                    e.ports,
                    e.destinations,
                    e.first_seen,
                    e.last_seen
                )
            })
            .unwrap_or_default();
        self.publish(OutboxRow {
            id: 0,
            kind: "ban".into(),
            target: ban.target,
            since: ban.since,
            until: ban.until(),
            reason: ban.reason.clone(),
            evidence,
            origin: String::new(),
        })
    }

    fn publish(&mut self, mut row: OutboxRow) -> Result<(), BookError> {
        let Some(host) = self.publish_as else {
            return Ok(());
        };
        row.origin = host.to_string();
        self.tx.enqueue_outbox(&row, self.now)?;
        self.published += 1;
        Ok(())
    }

    /// Mark bans that ran out as lifted. A set without the timeout flag (the seed lab's
    /// borrowed one) never expires anything itself: their elements are removed here, those of
    /// a family the set holds and not dry-run. Returns how many bans ran out.
    pub fn expire(&mut self) -> Result<usize, BookError> {
        if !self.dry_run && !self.firewall.supports_timeout() {
            let over: Vec<IpNet> = self
                .tx
                .active_bans()?
                .into_iter()
                .filter(|b| !b.dry_run && b.until.is_some_and(|until| until <= self.now))
                .map(|b| b.target)
                .filter(|t| self.firewall.holds(t))
                .collect();
            for t in over {
                self.queue_remove(t);
            }
        }
        Ok(self.tx.expire(self.now)?)
    }

    /// Save a source's cursor with this batch (a pass's records and their bans commit
    /// together).
    pub fn set_cursor(&mut self, source: &str, cursor: &str) -> Result<(), BookError> {
        Ok(self.tx.set_cursor(source, cursor, self.now)?)
    }

    /// Save the detector's state with this batch.
    pub fn set_detector_state(&mut self, state: &str) -> Result<(), BookError> {
        Ok(self.tx.set_detector_state(state, self.now)?)
    }

    /// Keep a run summary with this batch.
    pub fn record_run(&mut self, run: &RunRecord) -> Result<(), BookError> {
        Ok(self.tx.record_run(run)?)
    }

    fn queue_add(&mut self, ban: &Ban) {
        if self.dry_run {
            return;
        }
        // The last ban of a target wins.
        if let Some(i) = self.add_at.remove(&ban.target) {
            self.add[i] = None;
        }
        self.add_at.insert(ban.target, self.add.len());
        self.add.push(Some(BanElement {
            target: ban.target,
            timeout: ban.duration,
        }));
    }

    fn queue_remove(&mut self, target: IpNet) {
        if self.dry_run {
            return;
        }
        // An element added earlier in this same batch is simply not sent.
        if let Some(i) = self.add_at.remove(&target) {
            self.add[i] = None;
        }
        if self.removing.insert(target) {
            self.remove.push(target);
        }
    }

    /// Apply the queued kernel changes (removals, then additions: one firewall call each),
    /// then commit the store. See the module doc for what each failure leaves behind.
    pub fn commit(self) -> Result<Applied, BookError> {
        #[cfg(test)]
        if self.crash == Some(CrashPoint::BeforeKernel) {
            return Err(BookError::Crash(CrashPoint::BeforeKernel));
        }
        let add: Vec<BanElement> = self.add.iter().flatten().copied().collect();
        let applied = Applied {
            added: add.len(),
            removed: self.remove.len(),
            published: self.published,
        };
        if !self.remove.is_empty() {
            self.firewall.unban(&self.remove)?;
        }
        if !add.is_empty() {
            self.firewall.ban(&add)?;
        }
        #[cfg(test)]
        if self.crash == Some(CrashPoint::AfterKernel) {
            return Err(BookError::Crash(CrashPoint::AfterKernel));
        }
        self.tx.commit()?;
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{Clock, FakeClock};
    use crate::config::BanConfig;
    use crate::enforce::fake::{FakeFirewall, SharedFake, shared};
    use crate::store::tests::{ban, net, ts};

    struct Host {
        dir: tempfile::TempDir,
        fw: SharedFake,
        clock: Arc<FakeClock>,
    }

    impl Host {
        fn new() -> Host {
            Host {
                dir: tempfile::tempdir().unwrap(),
                fw: shared(FakeFirewall::new()),
                clock: Arc::new(FakeClock::new(ts("2026-11-24T23:00:00Z"))),
            }
        }

        /// The book as a (re)started process opens it: the store file, the same kernel.
        fn book(&self) -> BanBook {
            let store = Store::open(self.dir.path()).unwrap();
            BanBook::new(
                store,
                Box::new(self.fw.clone()),
                &BanConfig::default(),
                self.clock.clone(),
            )
        }

        fn kernel(&self) -> Vec<String> {
            let fw = self.fw.lock().unwrap();
            fw.elements().iter().map(|e| e.target.to_string()).collect()
        }

        fn store(&self, book: &BanBook) -> Vec<String> {
            book.store()
                .live_bans(self.clock.now())
                .unwrap()
                .iter()
                .map(|b| b.target.to_string())
                .collect()
        }
    }

    fn manual_ban(book: &mut BanBook, target: &str) -> Result<Applied, BookError> {
        let mut batch = book.batch()?;
        let b = ban(target, batch.now(), Some(3600));
        batch.ban(&b, BanOrigin::Manual)?;
        batch.commit()
    }

    fn manual_unban(book: &mut BanBook, target: &str) -> Result<Applied, BookError> {
        let mut batch = book.batch()?;
        batch.unban(net(target))?;
        batch.commit()
    }

    #[test]
    fn a_ban_writes_the_kernel_and_the_store_in_one_batch() {
        let host = Host::new();
        let mut book = host.book();
        let applied = manual_ban(&mut book, "198.51.100.7").unwrap();
        assert_eq!(
            applied,
            Applied {
                added: 1,
                removed: 0,
                published: 0
            }
        );
        assert_eq!(host.kernel(), ["198.51.100.7/32"]);
        assert_eq!(host.store(&book), ["198.51.100.7/32"]);
        assert_eq!(host.fw.lock().unwrap().transactions(), 1);
    }

    #[test]
    fn crash_before_the_kernel_leaves_both_unchanged() {
        let host = Host::new();
        let mut book = host.book();
        book.crash_next_batch(CrashPoint::BeforeKernel);
        assert!(matches!(
            manual_ban(&mut book, "198.51.100.7"),
            Err(BookError::Crash(_))
        ));
        drop(book);
        let mut restarted = host.book();
        let report = restarted.reconcile().unwrap().unwrap();
        assert_eq!(report.restored, 0);
        assert!(host.kernel().is_empty());
        assert!(host.store(&restarted).is_empty());
    }

    #[test]
    fn crash_after_the_kernel_add_leaves_an_element_that_expires_by_itself() {
        let host = Host::new();
        let mut book = host.book();
        book.crash_next_batch(CrashPoint::AfterKernel);
        assert!(manual_ban(&mut book, "198.51.100.7").is_err());
        drop(book);
        let mut restarted = host.book();
        let report = restarted.reconcile().unwrap().unwrap();
        // The store never heard of it; reconcile leaves what it does not know alone...
        assert!(host.store(&restarted).is_empty());
        assert_eq!(report.unknown_in_kernel, 1);
        assert_eq!(host.kernel(), ["198.51.100.7/32"]);
        // ...and the kernel drops it at its own timeout: nothing stays banned forever.
        host.fw
            .lock()
            .unwrap()
            .advance(SignedDuration::from_secs(3601));
        assert!(host.kernel().is_empty());
        // Repeating the command (it failed) makes it whole.
        manual_ban(&mut restarted, "198.51.100.7").unwrap();
        assert_eq!(host.kernel(), ["198.51.100.7/32"]);
        assert_eq!(host.store(&restarted), ["198.51.100.7/32"]);
    }

    #[test]
    fn crash_after_the_kernel_removal_is_undone_by_reconcile() {
        let host = Host::new();
        let mut book = host.book();
        manual_ban(&mut book, "198.51.100.7").unwrap();
        book.crash_next_batch(CrashPoint::AfterKernel);
        assert!(manual_unban(&mut book, "198.51.100.7").is_err());
        assert!(host.kernel().is_empty(), "the kernel was written");
        drop(book);
        let mut restarted = host.book();
        let report = restarted.reconcile().unwrap().unwrap();
        assert_eq!(report.restored, 1);
        // The store is the truth: the unban did not happen, in either place.
        assert_eq!(host.kernel(), ["198.51.100.7/32"]);
        assert_eq!(host.store(&restarted), ["198.51.100.7/32"]);
        manual_unban(&mut restarted, "198.51.100.7").unwrap();
        assert!(host.kernel().is_empty());
        assert!(host.store(&restarted).is_empty());
    }

    #[test]
    fn a_refused_kernel_write_rolls_the_store_back() {
        let host = Host::new();
        let mut book = host.book();
        host.fw
            .lock()
            .unwrap()
            .fail_next(EnforceError::Nft("Error: Could not process rule".into()));
        let err = manual_ban(&mut book, "198.51.100.7").unwrap_err();
        assert!(err.to_string().contains("Could not process rule"), "{err}");
        assert!(host.kernel().is_empty());
        assert!(host.store(&book).is_empty());
        // An unban refused by the kernel keeps the ban in both places.
        manual_ban(&mut book, "198.51.100.7").unwrap();
        host.fw
            .lock()
            .unwrap()
            .fail_next(EnforceError::Nft("Error: boom".into()));
        assert!(manual_unban(&mut book, "198.51.100.7").is_err());
        assert_eq!(host.kernel(), ["198.51.100.7/32"]);
        assert_eq!(host.store(&book), ["198.51.100.7/32"]);
    }

    #[test]
    fn a_crash_after_commit_needs_no_repair_and_a_flush_is_repaired() {
        let host = Host::new();
        let mut book = host.book();
        manual_ban(&mut book, "198.51.100.7").unwrap();
        manual_ban(&mut book, "2001:db8::7").unwrap();
        drop(book);
        let mut restarted = host.book();
        let report = restarted.reconcile().unwrap().unwrap();
        assert!(!report.repaired());
        host.fw.lock().unwrap().flush();
        let report = restarted.reconcile().unwrap().unwrap();
        assert!(report.table_recreated);
        assert_eq!(report.restored, 2);
        assert_eq!(host.kernel(), ["198.51.100.7/32", "2001:db8::7/128"]);
    }

    #[test]
    fn bans_and_unbans_are_queued_for_the_fleet_with_the_change_and_only_then() {
        let host = Host::new();
        let mut book = host.book().publish_as(Some("host-a".into()));
        // Refused by the kernel: nothing happened, so nothing is published.
        host.fw
            .lock()
            .unwrap()
            .fail_next(EnforceError::Nft("Error: boom".into()));
        assert!(manual_ban(&mut book, "198.51.100.7").is_err());
        assert_eq!(book.store().outbox_len().unwrap(), 0);
        // A crash before the commit: the same.
        book.crash_next_batch(CrashPoint::AfterKernel);
        assert!(manual_ban(&mut book, "198.51.100.7").is_err());
        assert_eq!(book.store().outbox_len().unwrap(), 0);

        assert_eq!(manual_ban(&mut book, "198.51.100.7").unwrap().published, 1);
        assert_eq!(
            manual_unban(&mut book, "198.51.100.7").unwrap().published,
            1
        );
        // A peer's ban and unban are applied, never published again.
        let mut batch = book.batch().unwrap();
        let b = ban("203.0.113.9", batch.now(), Some(60));
        batch.remote_ban(&b, "host-b").unwrap();
        batch.remote_unban(net("203.0.113.9")).unwrap();
        assert_eq!(batch.commit().unwrap().published, 0);
        let rows = book.store().outbox(10).unwrap();
        let kinds: Vec<(&str, String, &str)> = rows
            .iter()
            .map(|r| (r.kind.as_str(), r.target.to_string(), r.origin.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("ban", "198.51.100.7/32".to_string(), "host-a"),
                ("unban", "198.51.100.7/32".to_string(), "host-a")
            ]
        );
        assert_eq!(
            rows[0].until,
            Some(rows[0].since + SignedDuration::from_secs(3600))
        );
    }

    #[test]
    fn dry_run_records_and_never_calls_the_firewall() {
        let host = Host::new();
        let store = Store::open(host.dir.path()).unwrap();
        let fw = shared(FakeFirewall::not_permitted());
        let config = BanConfig {
            dry_run: true,
            ..BanConfig::default()
        };
        let mut book = BanBook::new(store, Box::new(fw.clone()), &config, host.clock.clone());
        assert!(book.reconcile().unwrap().is_none());
        book.reconcile_existing().unwrap();
        manual_ban(&mut book, "198.51.100.7").unwrap();
        manual_unban(&mut book, "198.51.100.7").unwrap();
        let f = fw.lock().unwrap();
        assert_eq!(f.ban_calls() + f.unban_calls() + f.setup_calls(), 0);
        assert_eq!(book.store().recent_bans(5).unwrap().len(), 1);
    }

    #[test]
    fn one_answer_to_whether_a_family_can_be_banned() {
        let host = Host::new();
        let store = Store::open(host.dir.path()).unwrap();
        let fw = shared(FakeFirewall::without_timeout().ipv4_only());
        let book = BanBook::new(
            store,
            Box::new(fw),
            &BanConfig::default(),
            host.clock.clone(),
        );
        assert!(book.can_ban(&net("192.0.2.7")));
        assert!(!book.can_ban(&net("2001:db8::7")));
    }

    #[test]
    fn expiry_in_a_set_without_timeouts_removes_the_element() {
        let host = Host::new();
        let store = Store::open(host.dir.path()).unwrap();
        let fw = shared(FakeFirewall::without_timeout());
        let mut book = BanBook::new(
            store,
            Box::new(fw.clone()),
            &BanConfig::default(),
            host.clock.clone(),
        );
        manual_ban(&mut book, "198.51.100.7").unwrap();
        host.clock.advance(SignedDuration::from_secs(3601));
        let mut batch = book.batch().unwrap();
        assert_eq!(batch.expire().unwrap(), 1);
        assert_eq!(batch.commit().unwrap().removed, 1);
        assert!(fw.lock().unwrap().elements().is_empty());
        assert!(host.store(&book).is_empty());
    }
}
