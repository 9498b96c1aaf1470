//! The operator's hands on the ban list: `ban`, `unban` and `import`, as methods of the
//! [`BanBook`].
//!
//! In: a validated target ([`parse_target`]) or a parsed blocklist (the seed lab's
//! `blocked_ips.txt`), the allowlist, a duration. Out: one [`Batch`](super::Batch) each: the
//! store and the kernel changed together in the book's order. A missing table is an error
//! that says to run `setup`, never created as a side effect. An import first repairs what the
//! kernel lost ([`BanBook::reconcile_existing`]: it reads every element); a single ban or
//! unban only checks the table ([`BanBook::require_table`]), so that it takes the same time
//! with 100 000 bans present as with none; passes, the daemon and `setup` do the repairs.
//!
//! Manual bans skip detection but not the allowlist: banning the gateway or the host's own
//! address by a typo would cut the host off, so that takes `force`. In dry-run the bans are
//! recorded (marked dry-run) and the firewall is never called.

use ipnet::IpNet;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::{BanBook, BookError};
use crate::config::parse_net;
use crate::decide::{AllowReason, HostAllowlist};
use crate::record::Ban;
use crate::store::{BanOrigin, Blocklist, ReadStore, RunRecord, StoreError};

/// Errors of the operator commands.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error(
        "`{0}` is not an address or CIDR prefix (write 192.0.2.7, 198.51.100.0/24 or 2001:db8::/64; host bits must be zero)"
    )]
    BadTarget(String),
    #[error("`{0}` is not a duration (write 90s, 10m, 1h 30m or 7d)")]
    BadDuration(String),
    #[error("{target} is allowlisted ({entry}, {why:?}): not banned; add --force to ban it anyway")]
    Allowlisted {
        target: IpNet,
        entry: IpNet,
        why: AllowReason,
    },
    #[error(transparent)]
    Book(#[from] BookError),
}

impl From<StoreError> for OperatorError {
    fn from(e: StoreError) -> Self {
        OperatorError::Book(BookError::Store(e))
    }
}

/// Validate an operator's target.
pub fn parse_target(text: &str) -> Result<IpNet, OperatorError> {
    parse_net(text).ok_or_else(|| OperatorError::BadTarget(text.to_string()))
}

/// `90s`, `1h 30m`, or with days and weeks taken as 24 h and 7 d (`7d`, `2w`).
pub fn parse_duration(text: &str) -> Result<SignedDuration, OperatorError> {
    let bad = || OperatorError::BadDuration(text.to_string());
    let d = crate::config::parse_duration(text).ok_or_else(bad)?;
    if d <= SignedDuration::ZERO {
        return Err(bad());
    }
    Ok(d)
}

/// Refuse an allowlisted target unless forced.
pub fn check_allowlist(
    allowlist: &HostAllowlist,
    target: IpNet,
    force: bool,
) -> Result<(), OperatorError> {
    match allowlist.overlapping(target).filter(|_| !force) {
        Some((entry, why)) => Err(OperatorError::Allowlisted { target, entry, why }),
        None => Ok(()),
    }
}

/// What `ban` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BanOutcome {
    pub target: IpNet,
    pub until: Option<Timestamp>,
    /// Sent to the kernel (false in dry-run).
    pub enforced: bool,
    /// An earlier ban of the same target that this one replaced.
    pub replaced: bool,
}

/// What `unban` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnbanOutcome {
    pub target: IpNet,
    /// Active bans of exactly this target lifted in the store.
    pub lifted_in_store: usize,
    /// A live ban of a wider prefix that still covers the target, if any.
    pub still_covered_by: Option<IpNet>,
}

/// What `import` did (or would do).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImportReport {
    pub banned: Vec<IpNet>,
    pub already_banned: Vec<IpNet>,
    pub allowlisted: Vec<(IpNet, IpNet)>,
    /// `(line, text)` of lines that are not addresses.
    pub invalid: Vec<(usize, String)>,
    pub duplicates: usize,
    pub enforced: bool,
}

fn operator_run(mode: &str, now: Timestamp, bans: u64) -> RunRecord {
    RunRecord {
        mode: mode.to_string(),
        started: now,
        finished: now,
        records: 0,
        probes: 0,
        findings: 0,
        bans,
        note: String::new(),
    }
}

impl BanBook {
    /// Ban `target` by hand. An existing ban of the same target is replaced (the kernel element
    /// gets the new timeout, the store marks the old one lifted).
    pub fn ban_manually(
        &mut self,
        allowlist: &HostAllowlist,
        target: IpNet,
        duration: Option<SignedDuration>,
        reason: &str,
        force: bool,
    ) -> Result<BanOutcome, OperatorError> {
        check_allowlist(allowlist, target, force)?;
        self.require_table()?;
        let enforced = !self.dry_run();
        let mut batch = self.batch()?;
        let now = batch.now();
        let ban = Ban {
            target,
            since: now,
            duration,
            reason: reason.to_string(),
            finding: None,
        };
        let replaced = batch.ban(&ban, BanOrigin::Manual)?;
        batch.record_run(&operator_run("ban", now, 1))?;
        batch.commit()?;
        Ok(BanOutcome {
            target,
            until: ban.until(),
            enforced,
            replaced,
        })
    }

    /// Lift a ban in the kernel and in the store.
    pub fn unban(&mut self, target: IpNet) -> Result<UnbanOutcome, OperatorError> {
        self.require_table()?;
        let mut batch = self.batch()?;
        let now = batch.now();
        let lifted_in_store = batch.unban(target)?;
        batch.record_run(&operator_run("unban", now, 0))?;
        batch.commit()?;
        let still_covered_by = self
            .store()
            .active_bans_covering(target)?
            .into_iter()
            .find(|b| b.is_live(now))
            .map(|b| b.target);
        Ok(UnbanOutcome {
            target,
            lifted_in_store,
            still_covered_by,
        })
    }

    /// Ban every entry of a parsed blocklist in one firewall batch and one store transaction.
    /// Entries already covered by a live ban are left as they are.
    pub fn import(
        &mut self,
        allowlist: &HostAllowlist,
        list: &Blocklist,
        duration: Option<SignedDuration>,
        reason: &str,
        force: bool,
    ) -> Result<ImportReport, OperatorError> {
        let mut report = ImportReport {
            invalid: list
                .invalid
                .iter()
                .map(|l| (l.line, l.text.clone()))
                .collect(),
            duplicates: list.duplicates,
            enforced: !self.dry_run(),
            ..ImportReport::default()
        };
        self.reconcile_existing()?;
        let mut batch = self.batch()?;
        let now = batch.now();
        // Whether a live ban covers an entry: its prefixes looked up in a set of the live
        // targets (33 or 129 lookups), not a scan of every ban per entry. The targets of
        // every ban marked active (expired and dry-run ones too) are the only ones a new ban
        // may have to lift.
        let active = batch.view().active_bans()?;
        let marked: std::collections::HashSet<IpNet> = active.iter().map(|b| b.target).collect();
        let live: std::collections::HashSet<IpNet> = active
            .into_iter()
            .filter(|b| b.is_live(now))
            .map(|b| b.target)
            .collect();
        let covered = |t: &IpNet| crate::store::covering_nets(*t).any(|n| live.contains(&n));
        for (_, target) in &list.entries {
            if let Some((entry, _)) = allowlist.overlapping(*target).filter(|_| !force) {
                report.allowlisted.push((*target, entry));
            } else if covered(target) {
                report.already_banned.push(*target);
            } else {
                report.banned.push(*target);
            }
        }
        for target in &report.banned {
            let ban = Ban {
                target: *target,
                since: now,
                duration,
                reason: reason.to_string(),
                finding: None,
            };
            if marked.contains(target) {
                batch.ban(&ban, BanOrigin::Import)?;
            } else {
                batch.ban_unmarked(&ban, BanOrigin::Import)?;
            }
        }
        batch.record_run(&operator_run("import", now, report.banned.len() as u64))?;
        batch.commit()?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::FakeClock;
    use crate::config::BanConfig;
    use crate::enforce::fake::{FakeFirewall, SharedFake, shared};
    use crate::enforce::{Firewall, SetElement};
    use crate::store::parse_blocklist;
    use crate::store::tests::{net, ts};
    use crate::store::{ReadStore, Store};

    fn allowlist() -> HostAllowlist {
        HostAllowlist::new(vec![
            (net("127.0.0.0/8"), AllowReason::Loopback),
            (net("192.168.56.1"), AllowReason::Gateway),
        ])
    }

    fn book_with(fw: FakeFirewall, dry_run: bool) -> (BanBook, SharedFake) {
        let (book, fw, _) = book_with_clock(fw, dry_run);
        (book, fw)
    }

    /// [`book_with`], and the clock the book reads (to move time on).
    fn book_with_clock(fw: FakeFirewall, dry_run: bool) -> (BanBook, SharedFake, Arc<FakeClock>) {
        let fw = shared(fw);
        let config = BanConfig {
            dry_run,
            ..BanConfig::default()
        };
        let clock = Arc::new(FakeClock::new(ts("2026-11-24T23:00:00Z")));
        let book = BanBook::new(
            Store::open_in_memory().unwrap(),
            Box::new(fw.clone()),
            &config,
            clock.clone(),
        );
        (book, fw, clock)
    }

    /// A firewall whose table is set up (operator commands need it).
    fn set_up() -> FakeFirewall {
        let mut fw = FakeFirewall::unset();
        fw.setup().unwrap();
        fw
    }

    /// A book over a firewall whose table is set up.
    fn book() -> (BanBook, SharedFake) {
        book_with(set_up(), false)
    }

    fn elements(fw: &SharedFake) -> Vec<SetElement> {
        fw.lock().unwrap().elements()
    }

    #[test]
    fn targets_and_durations_are_validated() {
        assert_eq!(parse_target("192.0.2.7").unwrap(), net("192.0.2.7"));
        for bad in [
            "not-an-ip",
            "10.0.0.1/8",
            "192.0.2.256",
            "",
            "2001:db8::/129",
        ] {
            let err = parse_target(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
        assert_eq!(
            parse_duration("1h 30m").unwrap(),
            SignedDuration::from_mins(90)
        );
        assert_eq!(
            parse_duration("7d").unwrap(),
            SignedDuration::from_hours(168)
        );
        assert_eq!(
            parse_duration("2w").unwrap(),
            SignedDuration::from_hours(336)
        );
        assert!(parse_duration("forever").is_err());
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn manual_ban_without_a_table_says_to_run_setup() {
        let (mut book, fw) = book_with(FakeFirewall::unset(), false);
        let err = book
            .ban_manually(&allowlist(), net("198.51.100.7"), None, "manual ban", false)
            .unwrap_err();
        assert!(
            matches!(err, OperatorError::Book(BookError::NoTable)),
            "{err}"
        );
        assert_eq!(fw.lock().unwrap().setup_calls(), 0);
        assert!(book.store().active_bans().unwrap().is_empty());
    }

    #[test]
    fn manual_ban_reconciles_enforces_and_records() {
        let (mut book, fw) = book();
        let now = book.now();
        let out = book
            .ban_manually(
                &allowlist(),
                net("198.51.100.0/24"),
                Some(SignedDuration::from_hours(2)),
                "manual ban",
                false,
            )
            .unwrap();
        assert!(out.enforced && !out.replaced);
        assert_eq!(out.until, Some(ts("2026-11-25T01:00:00Z")));
        // Set up once above; the ban itself never runs setup.
        assert_eq!(fw.lock().unwrap().setup_calls(), 1);
        assert_eq!(
            fw.lock().unwrap().timeout_of(&net("198.51.100.0/24")),
            Some(Some(SignedDuration::from_hours(2)))
        );
        let bans = book.store().live_bans(now).unwrap();
        assert_eq!(bans[0].origin, BanOrigin::Manual);

        // Banning again replaces.
        let again = book
            .ban_manually(
                &allowlist(),
                net("198.51.100.0/24"),
                None,
                "manual ban",
                false,
            )
            .unwrap();
        assert!(again.replaced);
        assert_eq!(book.store().live_bans(now).unwrap().len(), 1);
        assert_eq!(
            fw.lock().unwrap().timeout_of(&net("198.51.100.0/24")),
            Some(None)
        );
    }

    #[test]
    fn manual_ban_respects_the_allowlist_unless_forced() {
        let (mut book, fw) = book();
        let err = book
            .ban_manually(&allowlist(), net("192.168.56.0/24"), None, "x", false)
            .unwrap_err();
        assert!(matches!(err, OperatorError::Allowlisted { .. }), "{err}");
        assert!(err.to_string().contains("--force"));
        assert_eq!(fw.lock().unwrap().ban_calls(), 0);
        book.ban_manually(&allowlist(), net("192.168.56.1"), None, "x", true)
            .unwrap();
        assert_eq!(elements(&fw).len(), 1);
    }

    #[test]
    fn unban_lifts_kernel_and_store_and_names_a_covering_prefix() {
        let (mut book, fw) = book();
        for t in ["198.51.100.7", "203.0.113.0/24", "203.0.113.9"] {
            book.ban_manually(&allowlist(), net(t), None, "x", false)
                .unwrap();
        }
        let out = book.unban(net("198.51.100.7")).unwrap();
        assert_eq!(out.lifted_in_store, 1);
        assert_eq!(fw.lock().unwrap().timeout_of(&net("198.51.100.7")), None);
        let out = book.unban(net("203.0.113.9")).unwrap();
        assert_eq!(out.still_covered_by, Some(net("203.0.113.0/24")));
        // Unbanning what is not banned is not an error.
        let out = book.unban(net("192.0.2.1")).unwrap();
        assert_eq!(out.lifted_in_store, 0);
    }

    #[test]
    fn import_bans_in_one_batch_and_reports_the_rest() {
        let (mut book, fw) = book();
        let now = book.now();
        book.ban_manually(&allowlist(), net("10.0.0.0/24"), None, "x", false)
            .unwrap();
        let list = parse_blocklist(
            "192.168.56.101\n192.168.56.1\njunk\n10.0.0.9\n2001:db8::7\n192.168.56.101\n",
        );
        let report = book
            .import(&allowlist(), &list, None, "imported", false)
            .unwrap();
        assert_eq!(report.banned, [net("192.168.56.101"), net("2001:db8::7")]);
        assert_eq!(report.already_banned, [net("10.0.0.9")]);
        assert_eq!(
            report.allowlisted,
            [(net("192.168.56.1"), net("192.168.56.1"))]
        );
        assert_eq!(report.invalid, [(3, "junk".to_string())]);
        assert_eq!(report.duplicates, 1);
        assert_eq!(
            fw.lock().unwrap().ban_calls(),
            2,
            "one for the earlier ban, one batch for the import"
        );
        assert_eq!(book.store().live_bans(now).unwrap().len(), 3);
    }

    #[test]
    fn an_import_replaces_the_bans_still_marked_active_on_its_targets() {
        let (mut book, _, clock) = book_with_clock(set_up(), false);
        let minute = Some(SignedDuration::from_mins(1));
        book.ban_manually(&allowlist(), net("192.0.2.7"), minute, "x", false)
            .unwrap();
        // Run out, and still marked active: nothing has expired it in the store yet.
        clock.advance(SignedDuration::from_mins(5));
        assert_eq!(book.store().active_bans().unwrap().len(), 1);
        let list = parse_blocklist("192.0.2.7\n198.51.100.7\n");
        let report = book
            .import(&allowlist(), &list, None, "imported", false)
            .unwrap();
        assert_eq!(report.banned, [net("192.0.2.7"), net("198.51.100.7")]);
        // One active ban per target: the run-out one was lifted, the new one never looked.
        let active: Vec<_> = book
            .store()
            .active_bans()
            .unwrap()
            .into_iter()
            .map(|b| (b.target, b.reason, b.until))
            .collect();
        assert_eq!(
            active,
            [
                (net("192.0.2.7"), "imported".to_string(), None),
                (net("198.51.100.7"), "imported".to_string(), None)
            ]
        );
    }

    #[test]
    fn dry_run_import_and_ban_never_call_the_firewall() {
        let (mut book, fw) = book_with(FakeFirewall::not_permitted(), true);
        let now = book.now();
        let list = parse_blocklist("192.168.56.101\n");
        let report = book
            .import(&allowlist(), &list, None, "imported", false)
            .unwrap();
        assert!(!report.enforced);
        assert_eq!(report.banned.len(), 1);
        let out = book
            .ban_manually(&allowlist(), net("198.51.100.7"), None, "x", false)
            .unwrap();
        assert!(!out.enforced);
        let f = fw.lock().unwrap();
        assert_eq!(f.ban_calls() + f.unban_calls() + f.setup_calls(), 0);
        // Recorded as dry-run: never live, never reconciled into a kernel.
        assert!(book.store().live_bans(now).unwrap().is_empty());
        assert_eq!(book.store().recent_bans(10).unwrap().len(), 2);
    }
}
