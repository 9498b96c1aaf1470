//! Stage `decide`: from a detector [`Finding`] to a [`Ban`], or to a recorded reason not to.
//!
//! In: findings, the `[ban]` config, the [`HostAllowlist`], a [`Clock`](crate::clock::Clock), and a read-only view
//! of the store (offences and bans so far, including this batch's own: the ban book's
//! [`Batch::view`](crate::bans::Batch::view)). Out: a [`BanDecision`] per finding, an intent:
//! a ban with its duration and reason, or the reason not to ban. Decide writes nothing: the ban
//! book ([`crate::bans`]) records each decision (offences, the ban, lifted members, the
//! finding's outcome) and sends the batch's kernel changes in one firewall transaction.
//!
//! The rules, in order:
//! 1. **Allowlist**: a source matching the allowlist is never banned (recorded as such).
//! 2. **Already banned**: a source covered by a live ban (its own or a prefix's) gets nothing:
//!    no new offence, no extension, no firewall call. Such findings are nearly always the same
//!    scan seen again (a cron run re-reading records from before the ban took effect), and
//!    extending on them would let one scan keep itself banned forever. When the ban runs out
//!    and the source scans again, that is a new offence and escalates.
//!    A ban whose source is still seen probing more than [`BAN_GRACE`] after the ban started
//!    did not hold: the kernel drops a banned source's packets before they are logged, so
//!    such records mean the element was deleted by hand (`nft delete element`) or the ban
//!    lifted. That finding is new evidence and gets a new ban (a new offence) which replaces
//!    the stale store entry. Dry-run bans never hold in the kernel and are exempt.
//! 3. **Offence**: counted per source, at the finding's own time.
//! 4. **Prefix escalation**: when `prefix_sources` distinct sources of one /24 (IPv4) or /64
//!    (IPv6, lengths configurable) offended within `prefix_window`, the prefix is banned
//!    instead, with its own offence count; member bans it covers are lifted (an interval set
//!    refuses overlapping elements). Never when the prefix holds an allowlisted address.
//! 5. **Rate cap**: at most `max_bans_per_minute` automatic bans per minute of clock time,
//!    counted in the store so that cron runs share the budget. Beyond it the finding and the
//!    offence are recorded, nothing is banned, and a warning is logged: a flood of spoofed
//!    sources must not turn the firewall against innocent addresses.
//! 6. **Duration**: `duration * factor^(offences-1)`, capped at `max_duration`; permanent from
//!    the `permanent_after`-th offence when that is > 0.
//! 7. **Dry-run**: the ban is decided ([`BanDecision::DryRun`]); the book records it marked
//!    dry-run and never sends it to the kernel.
//!
//! Times: a ban starts at the clock's now (it is enforced now, even when replaying an old log);
//! offences and the prefix window use the finding's own time, so a replay sees the attacker's
//! real pace.

use std::net::IpAddr;

use ipnet::IpNet;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::clock::SharedClock;
use crate::config::BanConfig;
use crate::record::{Ban, Finding};
use crate::store::{ReadStore, StoreError};

pub mod allowlist;
pub mod remote;

pub use allowlist::{AllowReason, HostAllowlist};
pub use remote::{RemoteBan, RemoteDecision};

#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How long after a ban started its source's records may still arrive (in flight, or a
/// cron pass re-reading the records that earned the ban) before they mean the ban did not
/// hold (see rule 2 in the module doc).
pub const BAN_GRACE: SignedDuration = SignedDuration::from_secs(2);

/// What was decided about one finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum BanDecision {
    /// Ban `ban.target` (the source, or its prefix when `prefix` is set), after lifting the
    /// `supersedes` elements the prefix covers.
    Ban {
        ban: Ban,
        offences: u32,
        prefix: bool,
        supersedes: Vec<IpNet>,
    },
    /// What would have been banned in dry-run mode.
    DryRun {
        ban: Ban,
        offences: u32,
        prefix: bool,
    },
    Allowlisted {
        source: IpAddr,
        entry: IpNet,
        why: AllowReason,
    },
    AlreadyBanned {
        source: IpAddr,
        target: IpNet,
        until: Option<Timestamp>,
    },
    RateLimited {
        source: IpAddr,
        offences: u32,
    },
}

/// The decide stage. Long-lived in the daemon, one per pass in cron mode.
pub struct Decider {
    config: BanConfig,
    allowlist: HostAllowlist,
    clock: SharedClock,
}

impl Decider {
    pub fn new(config: BanConfig, allowlist: HostAllowlist, clock: SharedClock) -> Decider {
        Decider {
            config,
            allowlist,
            clock,
        }
    }

    pub fn allowlist(&self) -> &HostAllowlist {
        &self.allowlist
    }

    /// Decide on one finding, reading what the store (with this batch's earlier decisions)
    /// knows. Writes nothing: the ban book records the decision.
    pub fn decide(
        &self,
        view: &impl ReadStore,
        finding: &Finding,
    ) -> Result<BanDecision, DecideError> {
        let source = finding.source;
        let now = self.clock.now();

        if let Some((entry, why)) = self.allowlist.matching(source) {
            tracing::info!(%source, %entry, ?why, "finding about an allowlisted source: not banned");
            return Ok(BanDecision::Allowlisted { source, entry, why });
        }

        let held = |since: Timestamp, dry_run: bool| {
            dry_run
                || since
                    .checked_add(BAN_GRACE)
                    .is_ok_and(|t| finding.detected_at <= t)
        };
        if let Some(existing) = view
            .ban_covering(source, now, self.config.dry_run)?
            .filter(|b| held(b.since, b.dry_run))
        {
            tracing::debug!(%source, target = %existing.target, "already banned");
            return Ok(BanDecision::AlreadyBanned {
                source,
                target: existing.target,
                until: existing.until,
            });
        }

        let host = IpNet::from(source);
        let forget_before = finding
            .detected_at
            .checked_sub(self.config.offence_memory)
            .unwrap_or(Timestamp::MIN);
        let host_offences = view.next_offence_count(host, forget_before)?;

        let limit_since = now
            .checked_sub(SignedDuration::from_mins(1))
            .unwrap_or(Timestamp::MIN);
        if view.auto_bans_since(limit_since)? >= self.config.max_bans_per_minute {
            tracing::warn!(
                %source,
                cap = self.config.max_bans_per_minute,
                "ban rate cap reached: finding recorded, source NOT banned"
            );
            return Ok(BanDecision::RateLimited {
                source,
                offences: host_offences,
            });
        }

        let (target, offences, supersedes) = match self.prefix_to_ban(view, source, finding)? {
            Some(prefix) => {
                let count = view.next_offence_count(prefix, forget_before)?;
                let covered: Vec<IpNet> = view
                    .active_bans()?
                    .into_iter()
                    .filter(|b| !b.dry_run && b.target != prefix && prefix.contains(&b.target))
                    .map(|b| b.target)
                    .collect();
                (prefix, count, covered)
            }
            None => (host, host_offences, Vec::new()),
        };
        let prefix = target != host;
        let duration = ban_duration(&self.config, offences);
        let ban = Ban {
            target,
            since: now,
            duration,
            reason: reason(finding, offences, prefix),
            finding: Some(finding.clone()),
        };
        if self.config.dry_run {
            tracing::info!(%target, ?duration, "dry run: would ban");
            return Ok(BanDecision::DryRun {
                ban,
                offences,
                prefix,
            });
        }
        tracing::info!(%target, offences, ?duration, prefix, "ban");
        Ok(BanDecision::Ban {
            ban,
            offences,
            prefix,
            supersedes,
        })
    }

    /// The prefix to ban instead of `source`, when enough of its neighbours offended recently
    /// and nothing in it is allowlisted.
    fn prefix_to_ban(
        &self,
        view: &impl ReadStore,
        source: IpAddr,
        finding: &Finding,
    ) -> Result<Option<IpNet>, DecideError> {
        let needed = self.config.prefix_sources;
        if needed == 0 {
            return Ok(None);
        }
        let len = match source {
            IpAddr::V4(_) => self.config.prefix_len_v4,
            IpAddr::V6(_) => self.config.prefix_len_v6,
        };
        // Lengths are validated by config (8..=32, 16..=128); a host length means "never".
        let Ok(prefix) = IpNet::new(source, len).map(|n| n.trunc()) else {
            return Ok(None);
        };
        if prefix.prefix_len() == prefix.max_prefix_len() {
            return Ok(None);
        }
        let since = finding
            .detected_at
            .checked_sub(self.config.prefix_window)
            .unwrap_or(Timestamp::MIN);
        // The neighbours that offended in the window, and this source itself (its offence is
        // recorded with this decision).
        let host = IpNet::from(source);
        let sources = 1 + view
            .offences_since(since)?
            .into_iter()
            .filter(|o| o.target.prefix_len() == o.target.max_prefix_len())
            .filter(|o| o.target != host && prefix.contains(&o.target))
            .count();
        if sources < needed as usize {
            return Ok(None);
        }
        if let Some((entry, why)) = self.allowlist.overlapping(prefix) {
            tracing::info!(%prefix, %entry, ?why, "prefix holds an allowlisted address: not escalating");
            return Ok(None);
        }
        Ok(Some(prefix))
    }
}

/// `duration * factor^(offences-1)`, capped; `None` (permanent) from the `permanent_after`-th
/// offence when that is set.
pub fn ban_duration(config: &BanConfig, offences: u32) -> Option<SignedDuration> {
    if config.permanent_after > 0 && offences >= config.permanent_after {
        return None;
    }
    let mut d = config.duration;
    for _ in 1..offences {
        if d >= config.max_duration {
            break;
        }
        d = d
            .checked_mul(config.escalation_factor.min(i32::MAX as u32) as i32)
            .unwrap_or(config.max_duration);
    }
    Some(d.min(config.max_duration))
}

fn reason(finding: &Finding, offences: u32, prefix: bool) -> String {
    let e = &finding.evidence;
    let mut r = format!(
        "{} {} scan from {}: {} probes, {} failed, {} ports",
        finding.kind, finding.scan_type, finding.source, e.probes, e.failures, e.ports
    );
    if offences > 1 {
        r.push_str(&format!(", offence {offences}"));
    }
    if prefix {
        r.push_str(", prefix escalation");
    }
    r
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::bans::BanBook;
    use crate::clock::{Clock, FakeClock};
    use crate::enforce::fake::{FakeFirewall, SharedFake, shared};
    use crate::store::Store;
    use crate::store::tests::{finding, net, ts};

    fn config() -> BanConfig {
        BanConfig {
            allowlist: vec![net("203.0.113.0/24")],
            allowlist_host: false,
            duration: SignedDuration::from_hours(1),
            escalation_factor: 4,
            max_duration: SignedDuration::from_hours(24 * 7),
            permanent_after: 0,
            offence_memory: SignedDuration::from_hours(24 * 30),
            prefix_sources: 0,
            prefix_window: SignedDuration::from_hours(1),
            prefix_len_v4: 24,
            prefix_len_v6: 64,
            max_bans_per_minute: 60,
            dry_run: false,
        }
    }

    fn allowlist(config: &BanConfig) -> HostAllowlist {
        let mut list = HostAllowlist::new(
            config
                .allowlist
                .iter()
                .map(|n| (*n, AllowReason::Configured))
                .collect(),
        );
        list.entries.extend([
            (net("127.0.0.0/8"), AllowReason::Loopback),
            (net("::1"), AllowReason::Loopback),
            (net("192.168.56.1"), AllowReason::Gateway),
            (net("192.168.56.20"), AllowReason::OwnAddress),
            (net("192.168.56.53"), AllowReason::Resolver),
            (net("2001:db8:56::20"), AllowReason::OwnAddress),
        ]);
        list
    }

    /// A decider and the ban book that records its decisions, over an in-memory store and a
    /// fake firewall, on one fake clock.
    struct Bench {
        decider: Decider,
        book: BanBook,
        fw: SharedFake,
        clock: Arc<FakeClock>,
    }

    impl Bench {
        fn new(cfg: BanConfig, start: &str, fw: FakeFirewall) -> Bench {
            let clock = Arc::new(FakeClock::new(ts(start)));
            let fw = shared(fw);
            Bench {
                decider: Decider::new(cfg.clone(), allowlist(&cfg), clock.clone()),
                book: BanBook::new(
                    Store::open_in_memory().unwrap(),
                    Box::new(fw.clone()),
                    &cfg,
                    clock.clone(),
                ),
                fw,
                clock,
            }
        }

        /// Decide every finding in one batch of the book, and commit it.
        fn run(&mut self, findings: &[Finding]) -> Vec<BanDecision> {
            let mut batch = self.book.batch().unwrap();
            let decisions: Vec<_> = findings
                .iter()
                .map(|f| {
                    let d = self.decider.decide(batch.view(), f).unwrap();
                    batch.record(f, &d).unwrap();
                    d
                })
                .collect();
            batch.commit().unwrap();
            decisions
        }

        fn store(&self) -> &Store {
            self.book.store()
        }

        fn fw(&self) -> std::sync::MutexGuard<'_, FakeFirewall> {
            self.fw.lock().unwrap()
        }
    }

    #[test]
    fn allowlisted_sources_are_never_banned() {
        let cfg = config();
        let mut b = Bench::new(cfg.clone(), "2026-11-24T23:00:00Z", FakeFirewall::new());
        let clock = b.clock.clone();
        let now = clock.now();
        for (src, why) in [
            ("192.168.56.1", AllowReason::Gateway),
            ("192.168.56.20", AllowReason::OwnAddress),
            ("192.168.56.53", AllowReason::Resolver),
            ("203.0.113.9", AllowReason::Configured),
            ("127.0.0.1", AllowReason::Loopback),
            ("::1", AllowReason::Loopback),
            ("2001:db8:56::20", AllowReason::OwnAddress),
        ] {
            let ds = b.run(&[finding(src, now)]);
            assert!(
                matches!(&ds[0], BanDecision::Allowlisted { why: w, .. } if *w == why),
                "{src}: {ds:?}"
            );
        }
        assert!(b.fw().elements().is_empty());
        assert!(b.store().active_bans().unwrap().is_empty());
        assert_eq!(b.store().offence_count().unwrap(), 0);
        assert_eq!(
            b.store().finding_outcomes().unwrap(),
            vec![("allowlisted".to_string(), 7)]
        );
    }

    #[test]
    fn repeat_offenders_escalate_up_to_the_cap_then_permanent() {
        let mut cfg = config();
        cfg.max_duration = SignedDuration::from_hours(20);
        cfg.permanent_after = 5;
        let mut b = Bench::new(cfg.clone(), "2026-11-24T00:00:00Z", FakeFirewall::new());
        let clock = b.clock.clone();
        let mut seen = Vec::new();
        for _ in 0..5 {
            let ds = b.run(&[finding("198.51.100.7", clock.now())]);
            let BanDecision::Ban { ban, offences, .. } = &ds[0] else {
                panic!("{ds:?}")
            };
            seen.push((*offences, ban.duration.map(|d| d.as_secs() / 3600)));
            // Wait out the ban (the permanent one ends the loop anyway).
            clock.advance(ban.duration.unwrap_or_default() + SignedDuration::from_secs(1));
        }
        assert_eq!(
            seen,
            [
                (1, Some(1)),
                (2, Some(4)),
                (3, Some(16)),
                (4, Some(20)),
                (5, None)
            ]
        );
        assert_eq!(b.fw().timeout_of(&net("198.51.100.7")), Some(None));
    }

    #[test]
    fn a_finding_about_a_banned_source_extends_nothing() {
        let cfg = config();
        let mut b = Bench::new(cfg.clone(), "2026-11-24T00:00:00Z", FakeFirewall::new());
        let clock = b.clock.clone();
        let f = finding("198.51.100.7", clock.now());
        b.run(std::slice::from_ref(&f));
        clock.advance(SignedDuration::from_mins(10));
        let ds = b.run(&[f.clone(), f]);
        assert!(ds.iter().all(|x| matches!(
            x,
            BanDecision::AlreadyBanned { until: Some(u), .. } if *u == ts("2026-11-24T01:00:00Z")
        )));
        assert_eq!(
            b.store()
                .offence(net("198.51.100.7"))
                .unwrap()
                .unwrap()
                .count,
            1
        );
        assert_eq!(b.fw().ban_calls(), 1);
    }

    #[test]
    fn neighbours_escalate_to_the_prefix_unless_it_holds_an_allowlisted_address() {
        let mut cfg = config();
        cfg.prefix_sources = 3;
        let mut b = Bench::new(cfg.clone(), "2026-11-24T00:00:00Z", FakeFirewall::new());
        let clock = b.clock.clone();
        let t = clock.now();
        let ds = b.run(&[
            finding("198.51.100.1", t),
            finding("198.51.100.2", t),
            finding("198.51.100.3", t),
            // Covered by the prefix ban from here on.
            finding("198.51.100.4", t),
            // IPv6: three sources of one /64.
            finding("2001:db8:1::1", t),
            finding("2001:db8:1::2", t),
            finding("2001:db8:1::3", t),
        ]);
        assert!(
            matches!(&ds[2], BanDecision::Ban { prefix: true, ban, supersedes, .. }
            if ban.target == net("198.51.100.0/24") && supersedes.len() == 2)
        );
        assert!(matches!(&ds[3], BanDecision::AlreadyBanned { target, .. }
            if *target == net("198.51.100.0/24")));
        assert!(matches!(&ds[6], BanDecision::Ban { prefix: true, ban, .. }
            if ban.target == net("2001:db8:1::/64")));
        let kernel: Vec<String> = b
            .fw()
            .elements()
            .iter()
            .map(|e| e.target.to_string())
            .collect();
        assert_eq!(kernel, ["198.51.100.0/24", "2001:db8:1::/64"]);
        // The members' own bans were lifted in the store too.
        let live: Vec<String> = b
            .store()
            .live_bans(clock.now())
            .unwrap()
            .iter()
            .map(|b| b.target.to_string())
            .collect();
        assert_eq!(live, ["198.51.100.0/24", "2001:db8:1::/64"]);

        // The host's own /24: three scanners there are banned one by one, never the prefix.
        let ds = b.run(&[
            finding("192.168.56.101", t),
            finding("192.168.56.102", t),
            finding("192.168.56.103", t),
        ]);
        assert!(
            ds.iter()
                .all(|x| matches!(x, BanDecision::Ban { prefix: false, .. })),
            "{ds:?}"
        );
    }

    #[test]
    fn prefix_window_uses_the_findings_own_time() {
        let mut cfg = config();
        cfg.prefix_sources = 2;
        let mut b = Bench::new(cfg.clone(), "2026-11-24T00:00:00Z", FakeFirewall::new());
        let ds = b.run(&[
            finding("198.51.100.1", ts("2026-11-23T20:00:00Z")),
            finding("198.51.100.2", ts("2026-11-24T00:00:00Z")),
        ]);
        assert!(
            matches!(&ds[1], BanDecision::Ban { prefix: false, .. }),
            "{ds:?}"
        );
    }

    #[test]
    fn rate_cap_records_but_does_not_ban() {
        let mut cfg = config();
        cfg.max_bans_per_minute = 3;
        let mut b = Bench::new(cfg.clone(), "2026-11-24T00:00:00Z", FakeFirewall::new());
        let clock = b.clock.clone();
        let findings: Vec<_> = (1..=5)
            .map(|i| finding(&format!("198.51.100.{i}"), clock.now()))
            .collect();
        let ds = b.run(&findings);
        let limited = ds
            .iter()
            .filter(|x| matches!(x, BanDecision::RateLimited { .. }))
            .count();
        assert_eq!((b.fw().elements().len(), limited), (3, 2));
        assert_eq!(b.store().offence_count().unwrap(), 5);
        // A minute later the budget is back, and the limited source is banned on its next finding.
        clock.advance(SignedDuration::from_secs(61));
        let ds = b.run(&[finding("198.51.100.5", clock.now())]);
        assert!(
            matches!(&ds[0], BanDecision::Ban { offences: 2, .. }),
            "{ds:?}"
        );
    }

    #[test]
    fn dry_run_records_and_never_touches_the_firewall() {
        let mut cfg = config();
        cfg.dry_run = true;
        let mut b = Bench::new(
            cfg.clone(),
            "2026-11-24T00:00:00Z",
            FakeFirewall::not_permitted(),
        );
        let clock = b.clock.clone();
        let f = finding("198.51.100.7", clock.now());
        // One batch: the second decision sees the first one's (dry-run) ban.
        let ds = b.run(&[f.clone(), f]);
        assert!(matches!(&ds[0], BanDecision::DryRun { .. }));
        assert!(matches!(&ds[1], BanDecision::AlreadyBanned { .. }));
        // Even a firewall that fails every call is never called (the commit succeeded).
        let fw = b.fw();
        assert_eq!(fw.ban_calls() + fw.unban_calls(), 0);
        drop(fw);
        assert!(b.store().live_bans(clock.now()).unwrap().is_empty());
        assert!(b.store().recent_bans(5).unwrap()[0].dry_run);
    }

    #[test]
    fn durations_never_overflow() {
        let mut cfg = config();
        cfg.escalation_factor = u32::MAX;
        cfg.max_duration = SignedDuration::from_hours(24 * 365);
        assert_eq!(ban_duration(&cfg, 1), Some(SignedDuration::from_hours(1)));
        assert_eq!(ban_duration(&cfg, 1000), Some(cfg.max_duration));
    }
}
