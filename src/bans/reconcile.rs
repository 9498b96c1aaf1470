//! Reconcile: make the kernel sets hold every ban the store says is live.
//!
//! In: the firewall, the store, the current time. Out: the missing elements put back with their
//! REMAINING time, and a [`ReconcileReport`]. A reboot or `nft flush ruleset` empties the sets
//! (or removes the whole table); the store still knows the bans, so every run that touches the
//! firewall calls this first. When the table is missing or incomplete, `setup` recreates it
//! before anything is added. Bans that ran out meanwhile are not restored. Elements in the
//! kernel that the store does not know (added by hand with `nft add element`) are counted and
//! left alone: removing an operator's own entries is not ours to do.
//!
//! Remaining times are rounded UP to whole seconds (nft's display granularity), so the kernel
//! never lets a ban go before the store says it ends.

use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::BookError;
use crate::enforce::{BanElement, Firewall, TableState};
use crate::store::ReadStore;

/// What reconcile found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// The table was missing or incomplete and `setup` was run.
    pub table_recreated: bool,
    /// Live bans in the store.
    pub live_in_store: usize,
    /// Of those, already in the kernel.
    pub already_present: usize,
    /// Put back with their remaining time.
    pub restored: usize,
    /// Still marked active in the store but already over: not restored.
    pub expired: usize,
    /// Live bans of a family the firewall has no set for (an IPv6 ban after switching to an
    /// IPv4-only borrowed table): kept in the store, not sent to nft.
    pub no_set: usize,
    /// Kernel elements the store does not know (left alone).
    pub unknown_in_kernel: usize,
}

impl ReconcileReport {
    /// Whether anything had to be repaired.
    pub fn repaired(&self) -> bool {
        self.table_recreated || self.restored > 0
    }
}

/// Make the kernel hold every live ban of the store (see the module doc). Only the ban book
/// calls this ([`super::BanBook::reconcile`]).
pub(super) fn reconcile(
    fw: &mut dyn Firewall,
    store: &impl ReadStore,
    now: Timestamp,
) -> Result<ReconcileReport, BookError> {
    let mut report = ReconcileReport::default();
    match fw.check()? {
        TableState::Ready => {}
        TableState::Missing => {
            tracing::warn!("the nftables table is missing (reboot or flush?): recreating it");
            fw.setup()?;
            report.table_recreated = true;
        }
        TableState::Incomplete(what) => {
            tracing::warn!(%what, "the nftables table is incomplete: refreshing it");
            fw.setup()?;
            report.table_recreated = true;
        }
    }
    let in_kernel: HashSet<_> = fw.list()?.into_iter().map(|e| e.target).collect();
    let mut known = HashSet::new();
    let mut missing = Vec::new();
    for ban in store.active_bans()? {
        if ban.dry_run {
            continue;
        }
        if !fw.holds(&ban.target) {
            // Banned under an earlier config whose table had a set for this family.
            report.no_set += 1;
            continue;
        }
        let timeout = match ban.remaining(now) {
            None => None,
            Some(left) if left <= SignedDuration::ZERO => {
                report.expired += 1;
                continue;
            }
            Some(left) => Some(round_up_to_seconds(left)),
        };
        report.live_in_store += 1;
        known.insert(ban.target);
        if in_kernel.contains(&ban.target) {
            report.already_present += 1;
        } else {
            missing.push(BanElement {
                target: ban.target,
                timeout,
            });
        }
    }
    if report.no_set > 0 {
        tracing::warn!(
            bans = report.no_set,
            "live bans of an address family the firewall has no set for: not restored"
        );
    }
    report.unknown_in_kernel = in_kernel.iter().filter(|t| !known.contains(*t)).count();
    if !missing.is_empty() {
        fw.ban(&missing)?;
        report.restored = missing.len();
        tracing::warn!(
            restored = report.restored,
            "bans missing from the kernel were put back"
        );
    }
    Ok(report)
}

fn round_up_to_seconds(d: SignedDuration) -> SignedDuration {
    let secs = d.as_secs() + i64::from(d.subsec_nanos() > 0);
    SignedDuration::from_secs(secs.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enforce::FakeFirewall;
    use crate::store::tests::{ban, net, ts};
    use crate::store::{BanOrigin, Store};

    #[test]
    fn after_flush_restores_remaining_time_and_not_expired() {
        let t0 = ts("2026-11-24T23:00:00Z");
        let mut store = Store::open_in_memory().unwrap();
        let mut tx = store.transaction().unwrap();
        tx.record_ban(&ban("192.0.2.7", t0, Some(3600)), BanOrigin::Auto, false)
            .unwrap();
        tx.record_ban(&ban("2001:db8::/64", t0, None), BanOrigin::Manual, false)
            .unwrap();
        tx.record_ban(&ban("192.0.2.8", t0, Some(60)), BanOrigin::Auto, false)
            .unwrap();
        tx.record_ban(&ban("192.0.2.9", t0, Some(3600)), BanOrigin::Auto, true)
            .unwrap();
        tx.commit().unwrap();

        let mut fw = FakeFirewall::unset();
        fw.setup().unwrap();
        // `nft flush ruleset`: the whole table is gone.
        fw.flush();
        let now = ts("2026-11-24T23:10:00.5Z");
        let report = reconcile(&mut fw, &store, now).unwrap();
        assert_eq!(
            report,
            ReconcileReport {
                table_recreated: true,
                live_in_store: 2,
                already_present: 0,
                restored: 2,
                expired: 1,
                no_set: 0,
                unknown_in_kernel: 0,
            }
        );
        assert_eq!(fw.setup_calls(), 2);
        // 50 min minus half a second left, rounded up.
        assert_eq!(
            fw.timeout_of(&net("192.0.2.7")),
            Some(Some(SignedDuration::from_secs(50 * 60)))
        );
        assert_eq!(fw.timeout_of(&net("2001:db8::/64")), Some(None));
        assert_eq!(fw.timeout_of(&net("192.0.2.8")), None, "expired");
        assert_eq!(fw.timeout_of(&net("192.0.2.9")), None, "dry-run");

        // A second pass finds everything in place and changes nothing.
        let again = reconcile(&mut fw, &store, now).unwrap();
        assert!(!again.repaired());
        assert_eq!(again.already_present, 2);
        assert_eq!(fw.ban_calls(), 1);
    }

    #[test]
    fn hand_added_elements_are_counted_and_kept() {
        let store = Store::open_in_memory().unwrap();
        let mut fw = FakeFirewall::unset();
        fw.setup().unwrap();
        fw.ban(&[BanElement {
            target: net("203.0.113.5"),
            timeout: None,
        }])
        .unwrap();
        let report = reconcile(&mut fw, &store, ts("2026-11-24T23:00:00Z")).unwrap();
        assert_eq!(report.unknown_in_kernel, 1);
        assert_eq!(fw.timeout_of(&net("203.0.113.5")), Some(None));
    }

    #[test]
    fn firewall_errors_surface() {
        let store = Store::open_in_memory().unwrap();
        let mut fw = FakeFirewall::not_permitted();
        let err = reconcile(&mut fw, &store, ts("2026-11-24T23:00:00Z")).unwrap_err();
        assert!(err.to_string().contains("root"), "{err}");
    }
}
