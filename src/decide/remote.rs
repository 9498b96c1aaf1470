//! The decide stage for a fleet peer's ban ([`crate::fleet`]): the same host rules as a local
//! finding, in the same order where they apply.
//!
//! In: a verified remote ban (target, until, the peer's reason), a read-only view of the store
//! (this batch's own writes included). Out: a [`RemoteDecision`], an intent the ban book records.
//!
//! 1. **Allowlist**: a target that is, or holds, an allowlisted address is never banned here,
//!    whatever the peer decided (its allowlist is not this host's).
//! 2. **Expired**: a ban whose `until` has passed is not applied; a live one gets exactly the
//!    time it has left, so every host lifts it at the same moment.
//! 3. **Rate cap**: remote bans count against `max_bans_per_minute` with local ones (see
//!    [`ReadStore::auto_bans_since`]): a poisoned stream cannot turn this host's firewall
//!    against innocent addresses faster than local findings could. (Checked before the
//!    duplicate test, which reads every active ban: over the cap a flood costs one count
//!    query per message.)
//! 4. **Already banned**: a live ban here that covers the target and lasts at least as long
//!    makes the message a no-op: a replayed or duplicated message is never applied twice.
//! 5. **Dry-run**: recorded, never sent to the kernel.
//!
//! Offences and escalation are not touched: they are this host's judgement of what it saw.

use ipnet::IpNet;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::{AllowReason, DecideError, Decider};
use crate::record::Ban;
use crate::store::ReadStore;

/// A peer's ban as decide sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteBan {
    pub target: IpNet,
    /// `None`: permanent.
    pub until: Option<Timestamp>,
    pub reason: String,
    pub origin: String,
}

/// What was decided about a peer's ban.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum RemoteDecision {
    /// Ban, after lifting the narrower bans `supersedes` the target covers.
    Ban {
        ban: Ban,
        supersedes: Vec<IpNet>,
    },
    DryRun {
        ban: Ban,
    },
    Allowlisted {
        entry: IpNet,
        why: AllowReason,
    },
    Expired,
    AlreadyBanned {
        target: IpNet,
    },
    RateLimited,
}

impl Decider {
    /// Decide on a peer's ban (see the module doc). Writes nothing.
    pub fn decide_remote(
        &self,
        view: &impl ReadStore,
        remote: &RemoteBan,
    ) -> Result<RemoteDecision, DecideError> {
        let now = self.clock.now();
        let target = remote.target;
        let allowed = if target.prefix_len() == target.max_prefix_len() {
            self.allowlist.matching(target.addr())
        } else {
            self.allowlist.overlapping(target)
        };
        if let Some((entry, why)) = allowed {
            tracing::info!(%target, %entry, ?why, origin = %remote.origin, "peer's ban of an allowlisted address: not banned");
            return Ok(RemoteDecision::Allowlisted { entry, why });
        }
        let remaining = match remote.until {
            Some(until) if until <= now => return Ok(RemoteDecision::Expired),
            Some(until) => Some(until.duration_since(now)),
            None => None,
        };
        let limit_since = now
            .checked_sub(SignedDuration::from_mins(1))
            .unwrap_or(Timestamp::MIN);
        if view.auto_bans_since(limit_since)? >= self.config.max_bans_per_minute {
            return Ok(RemoteDecision::RateLimited);
        }
        if let Some(existing) = view
            .active_bans_covering(target)?
            .into_iter()
            .filter(|b| b.dry_run == self.config.dry_run)
            .filter(|b| b.until.is_none_or(|u| u > now))
            .find(|b| {
                // A wider ban here holds it whatever its end: an interval set refuses an
                // element inside another.
                b.target.prefix_len() < target.prefix_len()
                    || match (b.until, remote.until) {
                        (None, _) => true,
                        (Some(_), None) => false,
                        (Some(mine), Some(theirs)) => mine >= theirs,
                    }
            })
        {
            return Ok(RemoteDecision::AlreadyBanned {
                target: existing.target,
            });
        }
        let ban = Ban {
            target,
            since: now,
            duration: remaining,
            reason: format!("fleet {}: {}", remote.origin, remote.reason),
            finding: None,
        };
        if self.config.dry_run {
            return Ok(RemoteDecision::DryRun { ban });
        }
        // A peer's prefix ban replaces the member bans it covers here, as a local prefix
        // escalation does (an interval set refuses overlapping elements).
        // (An address covers nothing but itself: no need to read every ban.)
        let supersedes = if target.prefix_len() == target.max_prefix_len() {
            Vec::new()
        } else {
            view.active_bans()?
                .into_iter()
                .filter(|b| !b.dry_run && b.target != target && target.contains(&b.target))
                .map(|b| b.target)
                .collect()
        };
        Ok(RemoteDecision::Ban { ban, supersedes })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::bans::BanBook;
    use crate::clock::{Clock, FakeClock};
    use crate::config::BanConfig;
    use crate::decide::HostAllowlist;
    use crate::enforce::fake::{FakeFirewall, shared};
    use crate::store::Store;
    use crate::store::tests::{net, ts};

    fn remote(target: &str, until: Option<&str>) -> RemoteBan {
        RemoteBan {
            target: net(target),
            until: until.map(ts),
            reason: "scan".into(),
            origin: "host-a".into(),
        }
    }

    #[test]
    fn the_host_rules_apply_to_a_peers_ban() {
        let clock = Arc::new(FakeClock::new(ts("2026-11-24T23:00:00Z")));
        let cfg = BanConfig {
            allowlist: vec![net("203.0.113.0/24")],
            allowlist_host: false,
            max_bans_per_minute: 2,
            ..BanConfig::default()
        };
        let decider = Decider::new(
            cfg.clone(),
            HostAllowlist::new(vec![(net("203.0.113.0/24"), AllowReason::Configured)]),
            clock.clone(),
        );
        let mut book = BanBook::new(
            Store::open_in_memory().unwrap(),
            Box::new(shared(FakeFirewall::new())),
            &cfg,
            clock.clone(),
        );
        let mut batch = book.batch().unwrap();
        let d = |batch: &crate::bans::Batch<'_>, r: &RemoteBan| {
            decider.decide_remote(batch.view(), r).unwrap()
        };

        assert!(matches!(
            d(&batch, &remote("203.0.113.9", Some("2026-11-25T00:00:00Z"))),
            RemoteDecision::Allowlisted { .. }
        ));
        assert!(
            matches!(
                d(&batch, &remote("203.0.0.0/16", None)),
                RemoteDecision::Allowlisted { .. }
            ),
            "a prefix holding an allowlisted address"
        );
        assert_eq!(
            d(
                &batch,
                &remote("198.51.100.7", Some("2026-11-24T22:59:59Z"))
            ),
            RemoteDecision::Expired
        );

        let first = remote("198.51.100.7", Some("2026-11-24T23:30:00Z"));
        let RemoteDecision::Ban { ban, .. } = d(&batch, &first) else {
            panic!()
        };
        assert_eq!(
            ban.duration,
            Some(SignedDuration::from_mins(30)),
            "the time left, not a new full ban"
        );
        assert_eq!(ban.until(), first.until);
        batch.remote_ban(&ban, "host-a").unwrap();
        assert_eq!(
            d(&batch, &first),
            RemoteDecision::AlreadyBanned {
                target: net("198.51.100.7")
            },
            "never twice"
        );
        // A longer ban of the same target from a peer does extend it.
        assert!(matches!(
            d(
                &batch,
                &remote("198.51.100.7", Some("2026-11-25T01:00:00Z"))
            ),
            RemoteDecision::Ban { .. }
        ));

        let RemoteDecision::Ban { ban, .. } = d(&batch, &remote("198.51.100.8", None)) else {
            panic!()
        };
        batch.remote_ban(&ban, "host-a").unwrap();
        assert_eq!(
            d(&batch, &remote("198.51.100.9", None)),
            RemoteDecision::RateLimited,
            "remote bans share the cap"
        );
        batch.commit().unwrap();
        let live = book.store().live_bans(clock.now()).unwrap();
        assert_eq!(live.len(), 2);
        assert!(
            live.iter()
                .all(|b| b.origin_host.as_deref() == Some("host-a"))
        );
    }

    #[test]
    fn a_peers_prefix_replaces_the_members_and_a_member_of_a_banned_prefix_is_held() {
        let clock = Arc::new(FakeClock::new(ts("2026-11-24T23:00:00Z")));
        let cfg = BanConfig {
            allowlist_host: false,
            ..BanConfig::default()
        };
        let decider = Decider::new(cfg.clone(), HostAllowlist::new(Vec::new()), clock.clone());
        let fw = shared(FakeFirewall::new());
        let mut book = BanBook::new(
            Store::open_in_memory().unwrap(),
            Box::new(fw.clone()),
            &cfg,
            clock.clone(),
        );
        let mut batch = book.batch().unwrap();
        let RemoteDecision::Ban { ban, .. } = decider
            .decide_remote(
                batch.view(),
                &remote("198.51.100.7", Some("2026-11-24T23:10:00Z")),
            )
            .unwrap()
        else {
            panic!()
        };
        batch.remote_ban(&ban, "host-a").unwrap();
        batch.commit().unwrap();

        let mut batch = book.batch().unwrap();
        let prefix = remote("198.51.100.0/24", Some("2026-11-24T23:05:00Z"));
        let RemoteDecision::Ban { ban, supersedes } =
            decider.decide_remote(batch.view(), &prefix).unwrap()
        else {
            panic!()
        };
        assert_eq!(supersedes, [net("198.51.100.7")]);
        for t in supersedes {
            batch.remote_unban(t).unwrap();
        }
        batch.remote_ban(&ban, "host-a").unwrap();
        // A member ban arriving later, even one lasting longer, is held by the prefix.
        assert_eq!(
            decider
                .decide_remote(batch.view(), &remote("198.51.100.9", None))
                .unwrap(),
            RemoteDecision::AlreadyBanned {
                target: net("198.51.100.0/24")
            }
        );
        batch.commit().unwrap();
        let kernel: Vec<String> = fw
            .lock()
            .unwrap()
            .elements()
            .iter()
            .map(|e| e.target.to_string())
            .collect();
        assert_eq!(kernel, ["198.51.100.0/24"]);
    }
}
