//! [`FakeFirewall`]: the [`Firewall`] trait in memory, for the unit tests of the stages that
//! ban (decide, store reconcile, the ban/unban/list/status CLI) without root or nftables.
//!
//! In: the same calls as the real firewall. Out: the same results, with the semantics that
//! `NftFirewall` shows on nftables 1.0.6 with sets `flags timeout, interval` (measured, see
//! `tests/enforce_nft.rs`):
//! - an element carries its own timeout; it disappears when the injectable clock
//!   ([`FakeFirewall::advance`]) passes it; `None` is permanent;
//! - banning an element that is already there gives it the new timeout;
//! - an interval set refuses overlapping elements, so `ban` (like `NftFirewall::ban`) skips an
//!   element that lies inside a prefix already banned, and absorbs (removes) the elements that
//!   a newly banned prefix covers;
//! - without a table (never set up, [`FakeFirewall::flush`] = `nft flush ruleset`, or
//!   `teardown`) every call but `setup`/`teardown`/`check` fails with `TableMissing`;
//! - a borrowed set without the timeout flag ([`FakeFirewall::without_timeout`]) keeps every
//!   element forever and reports `supports_timeout() == false`;
//! - [`FakeFirewall::fail_next`] makes the next call fail with the given error, without effect;
//!   [`FakeFirewall::not_permitted`] fails every call as `nft` does when not root.
//!
//! Counters ([`FakeFirewall::setup_calls`], [`FakeFirewall::ban_calls`],
//! [`FakeFirewall::unban_calls`], [`FakeFirewall::transactions`]) and the current elements
//! ([`FakeFirewall::elements`], [`FakeFirewall::timeout_of`]) let a test check what a stage did.

use std::collections::BTreeMap;

use ipnet::IpNet;
use jiff::SignedDuration;

use super::{BanElement, EnforceError, Firewall, SetElement, TableState};

/// The in-memory firewall. Time starts at zero and moves only through [`Self::advance`].
#[derive(Debug)]
pub struct FakeFirewall {
    table_name: String,
    table: bool,
    timeout_flag: bool,
    /// Whether there is a set for IPv6 (the seed lab's borrowed table has none).
    ipv6_set: bool,
    now: SignedDuration,
    /// Element -> deadline on the fake clock (`None`: no timeout).
    elements: BTreeMap<IpNet, Option<SignedDuration>>,
    fail_next: Option<EnforceError>,
    /// Every call fails with `NotPermitted` (see [`Self::not_permitted`]).
    not_permitted: bool,
    transactions: usize,
    setup_calls: usize,
    ban_calls: usize,
    unban_calls: usize,
}

impl Default for FakeFirewall {
    fn default() -> Self {
        FakeFirewall::new()
    }
}

impl FakeFirewall {
    /// A firewall whose table is already set up (sets with the timeout flag), and empty.
    pub fn new() -> FakeFirewall {
        FakeFirewall {
            table_name: "inet portwarden".into(),
            table: true,
            timeout_flag: true,
            ipv6_set: true,
            now: SignedDuration::ZERO,
            elements: BTreeMap::new(),
            fail_next: None,
            not_permitted: false,
            transactions: 0,
            setup_calls: 0,
            ban_calls: 0,
            unban_calls: 0,
        }
    }

    /// A firewall on which `setup` has never run.
    pub fn unset() -> FakeFirewall {
        FakeFirewall {
            table: false,
            ..FakeFirewall::new()
        }
    }

    /// The seed lab's borrowed set (`ip filter blocked_ips`, no timeout flag): timeouts are
    /// ignored and elements stay until unbanned.
    pub fn without_timeout() -> FakeFirewall {
        FakeFirewall {
            table_name: "ip filter".into(),
            timeout_flag: false,
            ..FakeFirewall::new()
        }
    }

    /// This firewall without an IPv6 set (the seed lab's `ip filter` table has only
    /// `blocked_ips`): [`Firewall::holds`] is false for IPv6 targets, and IPv6 elements are
    /// refused as nft refuses them.
    pub fn ipv4_only(mut self) -> FakeFirewall {
        self.ipv6_set = false;
        self
    }

    /// What a process without CAP_NET_ADMIN sees: every call fails with `NotPermitted`
    /// (as `NftFirewall` reports nft's "Operation not permitted") and changes nothing.
    pub fn not_permitted() -> FakeFirewall {
        FakeFirewall {
            not_permitted: true,
            ..FakeFirewall::unset()
        }
    }

    /// Move the fake clock; elements whose timeout passed are gone.
    pub fn advance(&mut self, by: SignedDuration) {
        self.now += by;
        let now = self.now;
        self.elements
            .retain(|_, deadline| deadline.is_none_or(|d| d > now));
    }

    /// What `nft flush ruleset` (or a reboot) does: the table and every element are gone.
    pub fn flush(&mut self) {
        self.table = false;
        self.elements.clear();
    }

    /// The next call (any trait method) fails with `error` and changes nothing.
    pub fn fail_next(&mut self, error: EnforceError) {
        self.fail_next = Some(error);
    }

    /// Transactions that changed the firewall so far (setup, teardown, ban, unban calls that
    /// succeeded): lets a test check that a batch went in as one transaction.
    pub fn transactions(&self) -> usize {
        self.transactions
    }

    /// Calls of `setup` so far, failed ones included: lets a test check that a stage set the
    /// table up (or did not).
    pub fn setup_calls(&self) -> usize {
        self.setup_calls
    }

    /// Calls of `ban` so far, failed ones included: lets a test check that a stage sent a
    /// batch as one call, or never called the firewall.
    pub fn ban_calls(&self) -> usize {
        self.ban_calls
    }

    /// Calls of `unban` so far, failed ones included.
    pub fn unban_calls(&self) -> usize {
        self.unban_calls
    }

    /// The elements in the set right now with the time each has left on the fake clock
    /// (`None`: no timeout), in address order; what `list` would return, without a call.
    pub fn elements(&self) -> Vec<SetElement> {
        self.elements
            .iter()
            .map(|(target, deadline)| SetElement {
                target: *target,
                expires: deadline.map(|d| d - self.now),
            })
            .collect()
    }

    /// `None`: `target` is not in the set (exactly); `Some(None)`: it is, without a timeout;
    /// `Some(Some(left))`: it is, with `left` to go on the fake clock.
    pub fn timeout_of(&self, target: &IpNet) -> Option<Option<SignedDuration>> {
        self.elements
            .get(&target.trunc())
            .map(|deadline| deadline.map(|d| d - self.now))
    }

    /// Whether `target` is in the set right now, exactly (not merely covered by a prefix).
    pub fn contains(&self, target: &IpNet) -> bool {
        self.elements.contains_key(&target.trunc())
    }

    /// Whether a packet from `addr` would be dropped (inside any element).
    pub fn drops(&self, addr: std::net::IpAddr) -> bool {
        self.table && self.elements.keys().any(|net| net.contains(&addr))
    }

    fn take_failure(&mut self) -> Result<(), EnforceError> {
        if self.not_permitted {
            return Err(EnforceError::NotPermitted);
        }
        match self.fail_next.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn need_table(&self) -> Result<(), EnforceError> {
        if self.table {
            Ok(())
        } else {
            Err(EnforceError::TableMissing(self.table_name.clone()))
        }
    }
}

/// `outer` covers `inner` and is strictly larger.
fn strictly_covers(outer: &IpNet, inner: &IpNet) -> bool {
    outer != inner && outer.contains(inner)
}

impl Firewall for FakeFirewall {
    fn setup(&mut self) -> Result<(), EnforceError> {
        self.setup_calls += 1;
        self.take_failure()?;
        self.table = true;
        self.transactions += 1;
        Ok(())
    }

    fn teardown(&mut self) -> Result<(), EnforceError> {
        self.take_failure()?;
        self.table = false;
        self.elements.clear();
        self.transactions += 1;
        Ok(())
    }

    fn check(&mut self) -> Result<TableState, EnforceError> {
        self.take_failure()?;
        Ok(if self.table {
            TableState::Ready
        } else {
            TableState::Missing
        })
    }

    fn ban(&mut self, elements: &[BanElement]) -> Result<(), EnforceError> {
        self.ban_calls += 1;
        self.take_failure()?;
        self.need_table()?;
        if let Some(e) = elements.iter().find(|e| !self.holds(&e.target)) {
            return Err(EnforceError::Invalid(format!(
                "{} cannot go into an IPv4-only set",
                e.target
            )));
        }
        let batch: Vec<BanElement> = elements
            .iter()
            .map(|e| BanElement {
                target: e.target.trunc(),
                timeout: e.timeout,
            })
            .collect();
        for (i, e) in batch.iter().enumerate() {
            // Covered by a larger prefix already in the set or in this batch: nothing to add.
            let covered = self.elements.keys().any(|k| strictly_covers(k, &e.target))
                || batch.iter().any(|o| strictly_covers(&o.target, &e.target));
            // A later duplicate in the batch wins (as the last `add` in a transaction does).
            let superseded = batch[i + 1..].iter().any(|o| o.target == e.target);
            if covered || superseded {
                continue;
            }
            self.elements.retain(|k, _| !strictly_covers(&e.target, k));
            let deadline = match (self.timeout_flag, e.timeout) {
                (true, Some(t)) => Some(self.now + t),
                _ => None,
            };
            self.elements.insert(e.target, deadline);
        }
        self.transactions += 1;
        Ok(())
    }

    fn unban(&mut self, targets: &[IpNet]) -> Result<(), EnforceError> {
        self.unban_calls += 1;
        self.take_failure()?;
        self.need_table()?;
        for t in targets {
            self.elements.remove(&t.trunc());
        }
        self.transactions += 1;
        Ok(())
    }

    fn list(&mut self) -> Result<Vec<SetElement>, EnforceError> {
        self.take_failure()?;
        self.need_table()?;
        Ok(self.elements())
    }

    fn supports_timeout(&self) -> bool {
        self.timeout_flag
    }

    fn holds(&self, target: &IpNet) -> bool {
        self.ipv6_set || target.addr().is_ipv4()
    }
}

/// A fake the test keeps a handle on after the code under test took its box: clones share one
/// firewall.
pub type SharedFake = std::sync::Arc<std::sync::Mutex<FakeFirewall>>;

/// `fw` behind a [`SharedFake`].
pub fn shared(fw: FakeFirewall) -> SharedFake {
    std::sync::Arc::new(std::sync::Mutex::new(fw))
}

impl Firewall for SharedFake {
    // A poisoned lock means a test already panicked; its message is the one to read.
    fn setup(&mut self) -> Result<(), EnforceError> {
        self.lock().expect("fake firewall lock").setup()
    }
    fn teardown(&mut self) -> Result<(), EnforceError> {
        self.lock().expect("fake firewall lock").teardown()
    }
    fn check(&mut self) -> Result<TableState, EnforceError> {
        self.lock().expect("fake firewall lock").check()
    }
    fn ban(&mut self, elements: &[BanElement]) -> Result<(), EnforceError> {
        self.lock().expect("fake firewall lock").ban(elements)
    }
    fn unban(&mut self, targets: &[IpNet]) -> Result<(), EnforceError> {
        self.lock().expect("fake firewall lock").unban(targets)
    }
    fn list(&mut self) -> Result<Vec<SetElement>, EnforceError> {
        self.lock().expect("fake firewall lock").list()
    }
    fn supports_timeout(&self) -> bool {
        self.lock().expect("fake firewall lock").supports_timeout()
    }
    fn holds(&self, target: &IpNet) -> bool {
        self.lock().expect("fake firewall lock").holds(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        crate::config::parse_net(s).unwrap()
    }

    fn ban(target: &str, secs: Option<i64>) -> BanElement {
        BanElement {
            target: net(target),
            timeout: secs.map(SignedDuration::from_secs),
        }
    }

    #[test]
    fn elements_expire_on_the_fake_clock() {
        let mut fw = FakeFirewall::new();
        fw.ban(&[ban("192.0.2.7", Some(60)), ban("2001:db8::1", None)])
            .unwrap();
        assert_eq!(fw.transactions(), 1);
        fw.advance(SignedDuration::from_secs(20));
        let list = fw.list().unwrap();
        assert!(list.contains(&SetElement {
            target: net("192.0.2.7"),
            expires: Some(SignedDuration::from_secs(40)),
        }));
        fw.advance(SignedDuration::from_secs(40));
        assert_eq!(
            fw.list().unwrap(),
            vec![SetElement {
                target: net("2001:db8::1"),
                expires: None
            }]
        );
    }

    #[test]
    fn reban_takes_the_new_timeout() {
        let mut fw = FakeFirewall::new();
        fw.ban(&[ban("192.0.2.7", Some(60))]).unwrap();
        fw.ban(&[ban("192.0.2.7", Some(600))]).unwrap();
        assert_eq!(
            fw.list().unwrap()[0].expires,
            Some(SignedDuration::from_secs(600))
        );
    }

    #[test]
    fn prefixes_absorb_and_cover() {
        let mut fw = FakeFirewall::new();
        fw.ban(&[ban("198.51.100.5", Some(60))]).unwrap();
        fw.ban(&[ban("198.51.100.0/24", Some(600))]).unwrap();
        assert!(!fw.contains(&net("198.51.100.5")));
        assert!(fw.contains(&net("198.51.100.0/24")));
        // An address inside a banned prefix adds nothing.
        fw.ban(&[ban("198.51.100.9", Some(60))]).unwrap();
        assert_eq!(fw.list().unwrap().len(), 1);
        assert!(fw.drops("198.51.100.9".parse().unwrap()));
    }

    #[test]
    fn flush_loses_table_and_elements() {
        let mut fw = FakeFirewall::new();
        fw.ban(&[ban("192.0.2.7", None)]).unwrap();
        fw.flush();
        assert_eq!(fw.check().unwrap(), TableState::Missing);
        assert!(matches!(
            fw.ban(&[ban("192.0.2.8", None)]),
            Err(EnforceError::TableMissing(_))
        ));
        fw.setup().unwrap();
        assert!(fw.list().unwrap().is_empty());
    }

    #[test]
    fn fail_next_fails_once_without_effect() {
        let mut fw = FakeFirewall::new();
        fw.fail_next(EnforceError::Nft("Error: boom".into()));
        assert!(matches!(
            fw.ban(&[ban("192.0.2.7", None)]),
            Err(EnforceError::Nft(_))
        ));
        assert!(fw.list().unwrap().is_empty());
        fw.ban(&[ban("192.0.2.7", None)]).unwrap();
        assert_eq!(fw.list().unwrap().len(), 1);
    }

    #[test]
    fn not_permitted_fails_every_call_and_counts_it() {
        let mut fw = FakeFirewall::not_permitted();
        assert!(matches!(fw.check(), Err(EnforceError::NotPermitted)));
        assert!(matches!(fw.setup(), Err(EnforceError::NotPermitted)));
        assert!(matches!(
            fw.ban(&[ban("192.0.2.7", None)]),
            Err(EnforceError::NotPermitted)
        ));
        assert!(matches!(
            fw.unban(&[net("192.0.2.7")]),
            Err(EnforceError::NotPermitted)
        ));
        assert!(matches!(fw.list(), Err(EnforceError::NotPermitted)));
        assert_eq!(
            (fw.setup_calls(), fw.ban_calls(), fw.unban_calls()),
            (1, 1, 1)
        );
        assert_eq!(fw.transactions(), 0);
        assert!(fw.elements().is_empty());
    }

    #[test]
    fn timeout_of_reports_the_time_left() {
        let mut fw = FakeFirewall::new();
        fw.ban(&[ban("192.0.2.7", Some(60)), ban("2001:db8::/64", None)])
            .unwrap();
        fw.advance(SignedDuration::from_secs(15));
        assert_eq!(
            fw.timeout_of(&net("192.0.2.7")),
            Some(Some(SignedDuration::from_secs(45)))
        );
        assert_eq!(fw.timeout_of(&net("2001:db8::/64")), Some(None));
        assert_eq!(fw.timeout_of(&net("192.0.2.8")), None);
        assert_eq!(fw.elements(), fw.list().unwrap());
    }

    #[test]
    fn set_without_timeout_keeps_elements() {
        let mut fw = FakeFirewall::without_timeout();
        assert!(!fw.supports_timeout());
        fw.ban(&[ban("192.0.2.7", Some(60))]).unwrap();
        fw.advance(SignedDuration::from_hours(10));
        assert_eq!(fw.list().unwrap()[0].expires, None);
        fw.unban(&[net("192.0.2.7"), net("192.0.2.99")]).unwrap();
        assert!(fw.list().unwrap().is_empty());
    }
}
