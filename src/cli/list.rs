//! `portwarden list [--json]`: the kernel set and the store, side by side.
//!
//! In: the firewall's elements and the store's live bans. Out: one row per target saying
//! whether it is in the kernel, in the store, how long it has left and why it was banned. The
//! two disagree after a reboot or `nft flush ruleset` (in store, not in kernel: the next run's
//! reconcile puts it back) or after a hand-made `nft add element` (in kernel only). The
//! firewall is only read here, never repaired: showing the difference is the point.
//!
//! When the kernel cannot be read (not root, nft missing, table missing) the store side is
//! still printed, `in_kernel` is unknown (`null` in JSON), the error is included, and the
//! command exits non-zero.

use std::process::ExitCode;

use jiff::SignedDuration;

use super::Context;
use crate::bans::view::Listing;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The listing as a table for people.
pub fn render_text(l: &Listing) -> String {
    let mut out = format!(
        "{:<43} {:<7} {:<6} {:<16} REASON\n",
        "TARGET", "KERNEL", "STORE", "REMAINING"
    );
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    for r in &l.bans {
        let remaining = match (r.permanent, r.remaining_secs) {
            (true, _) => "permanent".to_string(),
            (false, Some(s)) => format!("{:#}", SignedDuration::from_secs(s)),
            (false, None) => "-".to_string(),
        };
        out.push_str(&format!(
            "{:<43} {:<7} {:<6} {:<16} {}{}\n",
            r.target.to_string(),
            r.in_kernel.map_or("?", yes_no),
            yes_no(r.in_store),
            remaining,
            if r.dry_run { "[dry run] " } else { "" },
            r.reason
                .as_deref()
                .unwrap_or("(not in the store: added outside portwarden?)")
        ));
    }
    if l.bans.is_empty() {
        out.push_str("(no bans)\n");
    }
    out
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let mut book = ctx.ban_book()?;
    let l = book.listing(ctx.config.firewall.table_name())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&l)?);
    } else {
        print!("{}", render_text(&l));
    }
    match &l.firewall_error {
        Some(e) => anyhow::bail!("cannot read the kernel set of table {}: {e}", l.table),
        None => Ok(ExitCode::SUCCESS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bans::view::listing;
    use crate::enforce::{BanElement, EnforceError, FakeFirewall, Firewall};
    use crate::record::Ban;
    use crate::store::BanOrigin;
    use crate::store::Store;
    use crate::store::tests::{net, ts};

    #[test]
    fn kernel_and_store_side_by_side() {
        let now = ts("2026-11-24T23:00:00Z");
        let mut store = Store::open_in_memory().unwrap();
        let mut tx = store.transaction().unwrap();
        for (t, secs) in [("192.0.2.7", Some(3600)), ("198.51.100.0/24", None)] {
            let ban = Ban {
                target: net(t),
                since: now,
                duration: secs.map(SignedDuration::from_secs),
                reason: format!("reason {t}"),
                finding: None,
            };
            tx.record_ban(&ban, BanOrigin::Manual, false).unwrap();
        }
        tx.commit().unwrap();
        let mut fw = FakeFirewall::unset();
        fw.setup().unwrap();
        fw.ban(&[
            BanElement {
                target: net("192.0.2.7"),
                timeout: Some(SignedDuration::from_secs(3000)),
            },
            BanElement {
                target: net("2001:db8::9"),
                timeout: None,
            },
        ])
        .unwrap();
        let l = listing("inet portwarden".into(), fw.list(), &store, now).unwrap();
        let summary: Vec<_> = l
            .bans
            .iter()
            .map(|r| {
                (
                    r.target.to_string(),
                    r.in_kernel,
                    r.in_store,
                    r.remaining_secs,
                    r.permanent,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "192.0.2.7/32".to_string(),
                    Some(true),
                    true,
                    Some(3000),
                    false
                ),
                ("198.51.100.0/24".to_string(), Some(false), true, None, true),
                ("2001:db8::9/128".to_string(), Some(true), false, None, true),
            ]
        );
        let text = render_text(&l);
        assert!(
            text.contains("permanent") && text.contains("reason 192.0.2.7"),
            "{text}"
        );
    }

    #[test]
    fn unreadable_kernel_still_lists_the_store() {
        let store = Store::open_in_memory().unwrap();
        let l = listing(
            "inet portwarden".into(),
            Err(EnforceError::NftMissing("/nonexistent/nft".into())),
            &store,
            ts("2026-11-24T23:00:00Z"),
        )
        .unwrap();
        assert!(l.bans.is_empty());
        assert!(l.firewall_error.unwrap().contains("/nonexistent/nft"));
    }

    #[test]
    fn dry_run_bans_are_listed_and_counted_as_such() {
        let now = ts("2026-11-24T23:00:00Z");
        let mut store = Store::open_in_memory().unwrap();
        let mut tx = store.transaction().unwrap();
        let ban = Ban {
            target: net("192.0.2.7"),
            since: now,
            duration: Some(SignedDuration::from_hours(1)),
            reason: "fast scan".into(),
            finding: None,
        };
        tx.record_ban(&ban, BanOrigin::Auto, true).unwrap();
        tx.commit().unwrap();
        let l = listing("inet portwarden".into(), Ok(Vec::new()), &store, now).unwrap();
        assert_eq!(l.bans.len(), 1, "{l:?}");
        assert!(l.bans[0].dry_run && l.bans[0].in_kernel == Some(false));
        assert!(render_text(&l).contains("[dry run] fast scan"));
        let s = crate::bans::view::store_status(&store, None, now).unwrap();
        assert_eq!((s.live_bans, s.dry_run_bans), (0, 1));
    }
}
