//! `portwarden ban`, `unban` and `import`: the operator's hands on the ban list.
//!
//! In: an address or CIDR prefix (validated with [`parse_net`] before anything else happens),
//! or the seed lab's `blocked_ips.txt`. Out: the kernel set and the store changed together,
//! after [`reconcile()`] has repaired whatever a reboot or `nft flush ruleset` lost.
//!
//! Manual bans skip detection but not the allowlist: banning the gateway or the host's own
//! address by a typo would cut the host off, so that takes `--force`. When `ban.dry_run` is on,
//! bans are recorded in the store (marked dry-run) and the firewall is never called.
//!
//! The logic is in [`ban_target`], [`unban_target`] and [`import_blocklist`], which take the
//! firewall as `Option<&mut dyn Firewall>` (`None`: dry run) so that they are tested without
//! root; the `run_*` functions only build the real pieces from the [`Context`].

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use ipnet::IpNet;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::Context;
use crate::config::parse_net;
use crate::decide::{AllowReason, HostAllowlist};
use crate::enforce::{BanElement, EnforceError, Firewall, TableState};
use crate::record::Ban;
use crate::store::{
    BanOrigin, Blocklist, ReadStore, ReconcileError, RunRecord, Store, StoreError, parse_blocklist,
    reconcile,
};

/// The real firewall behind the trait, for the commands that only need the trait.
pub fn firewall(ctx: &Context) -> Box<dyn Firewall> {
    Box::new(super::setup::firewall(ctx))
}

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
    #[error(
        "the firewall table is not in the kernel: run `portwarden setup` first (it creates the table; the next run or the daemon puts back the bans the store remembers)"
    )]
    NoTable,
    #[error(transparent)]
    Enforce(#[from] EnforceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
}

#[derive(Debug, clap::Args)]
pub struct BanArgs {
    /// Address or CIDR prefix to ban (192.0.2.7, 198.51.100.0/24, 2001:db8::/64).
    pub target: String,
    /// How long (90s, 10m, 1h 30m, 7d). Default: the config's ban.duration.
    #[arg(long = "for", value_name = "DURATION", conflicts_with = "permanent")]
    pub duration: Option<String>,
    /// Never expire.
    #[arg(long)]
    pub permanent: bool,
    /// Why, for `list` and the store.
    #[arg(long, default_value = "manual ban")]
    pub reason: String,
    /// Ban even when the target is or holds an allowlisted address.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct UnbanArgs {
    /// Address or CIDR prefix to lift, exactly as it was banned.
    pub target: String,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The file: one address or prefix per line; blank lines and `#` comments are fine.
    pub file: PathBuf,
    /// How long each ban lasts (90s, 10m, 1h 30m, 7d). Default: the config's ban.duration.
    #[arg(long = "for", value_name = "DURATION", conflicts_with = "permanent")]
    pub duration: Option<String>,
    /// Never expire (what the seed lab's bans did).
    #[arg(long)]
    pub permanent: bool,
    /// Ban allowlisted entries too.
    #[arg(long)]
    pub force: bool,
    /// Parse and report what would be banned; change neither the firewall nor the store.
    #[arg(long)]
    pub dry_run: bool,
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

fn chosen_duration(
    ctx: &Context,
    text: Option<&str>,
    permanent: bool,
) -> Result<Option<SignedDuration>, OperatorError> {
    match (permanent, text) {
        (true, _) => Ok(None),
        (false, Some(t)) => parse_duration(t).map(Some),
        (false, None) => Ok(Some(ctx.config.ban.duration)),
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

/// Operator commands work on a table that exists: creating the firewall is `setup`'s job, never
/// a side effect of a manual ban (as root on a host that was never set up, that would silently
/// install LOG and drop rules). With the table there, bans the kernel lost are put back first.
fn require_table(
    fw: &mut dyn Firewall,
    store: &Store,
    now: Timestamp,
) -> Result<(), OperatorError> {
    if fw.check()? == TableState::Missing {
        return Err(OperatorError::NoTable);
    }
    reconcile(fw, store, now)?;
    Ok(())
}

/// Ban `target` by hand. An existing ban of the same target is replaced (the kernel element
/// gets the new timeout, the store marks the old one lifted).
#[allow(clippy::too_many_arguments)]
pub fn ban_target(
    fw: Option<&mut dyn Firewall>,
    store: &mut Store,
    allowlist: &HostAllowlist,
    target: IpNet,
    duration: Option<SignedDuration>,
    reason: &str,
    force: bool,
    now: Timestamp,
) -> Result<BanOutcome, OperatorError> {
    if let Some((entry, why)) = allowlist.overlapping(target).filter(|_| !force) {
        return Err(OperatorError::Allowlisted { target, entry, why });
    }
    let ban = Ban {
        target,
        since: now,
        duration,
        reason: reason.to_string(),
        finding: None,
    };
    let enforced = fw.is_some();
    if let Some(fw) = fw {
        require_table(fw, store, now)?;
        fw.ban(&[BanElement {
            target,
            timeout: duration,
        }])?;
    }
    let mut tx = store.transaction()?;
    let replaced = tx.lift(target, now)? > 0;
    tx.record_ban(&ban, BanOrigin::Manual, !enforced)?;
    tx.record_run(&operator_run("ban", now, 1))?;
    tx.commit()?;
    Ok(BanOutcome {
        target,
        until: ban.until(),
        enforced,
        replaced,
    })
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

/// Lift a ban in the kernel (when `fw` is given) and in the store.
pub fn unban_target(
    fw: Option<&mut dyn Firewall>,
    store: &mut Store,
    target: IpNet,
    now: Timestamp,
) -> Result<UnbanOutcome, OperatorError> {
    if let Some(fw) = fw {
        require_table(fw, store, now)?;
        fw.unban(&[target])?;
    }
    let mut tx = store.transaction()?;
    let lifted_in_store = tx.lift(target, now)?;
    tx.record_run(&operator_run("unban", now, 0))?;
    tx.commit()?;
    let still_covered_by = store
        .live_bans(now)?
        .into_iter()
        .find(|b| b.target.contains(&target))
        .map(|b| b.target);
    Ok(UnbanOutcome {
        target,
        lifted_in_store,
        still_covered_by,
    })
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

/// Ban every entry of a parsed blocklist in one firewall batch and one store transaction.
/// Entries already covered by a live ban are left as they are.
#[allow(clippy::too_many_arguments)]
pub fn import_blocklist(
    fw: Option<&mut dyn Firewall>,
    store: &mut Store,
    allowlist: &HostAllowlist,
    list: &Blocklist,
    duration: Option<SignedDuration>,
    reason: &str,
    force: bool,
    now: Timestamp,
) -> Result<ImportReport, OperatorError> {
    let mut report = ImportReport {
        invalid: list
            .invalid
            .iter()
            .map(|l| (l.line, l.text.clone()))
            .collect(),
        duplicates: list.duplicates,
        enforced: fw.is_some(),
        ..ImportReport::default()
    };
    let live = store.live_bans(now)?;
    for (_, target) in &list.entries {
        if let Some((entry, _)) = allowlist.overlapping(*target).filter(|_| !force) {
            report.allowlisted.push((*target, entry));
        } else if live.iter().any(|b| b.target.contains(target)) {
            report.already_banned.push(*target);
        } else {
            report.banned.push(*target);
        }
    }
    if let Some(fw) = fw {
        require_table(fw, store, now)?;
        if !report.banned.is_empty() {
            let elements: Vec<BanElement> = report
                .banned
                .iter()
                .map(|t| BanElement {
                    target: *t,
                    timeout: duration,
                })
                .collect();
            fw.ban(&elements)?;
        }
    }
    let mut tx = store.transaction()?;
    for target in &report.banned {
        let ban = Ban {
            target: *target,
            since: now,
            duration,
            reason: reason.to_string(),
            finding: None,
        };
        tx.record_ban(&ban, BanOrigin::Import, !report.enforced)?;
    }
    tx.record_run(&operator_run("import", now, report.banned.len() as u64))?;
    tx.commit()?;
    Ok(report)
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

fn until_text(until: Option<Timestamp>) -> String {
    match until {
        Some(u) => format!("until {u:.0}"),
        None => "permanently".to_string(),
    }
}

pub fn run_ban(ctx: &Context, args: BanArgs) -> anyhow::Result<ExitCode> {
    let target = parse_target(&args.target)?;
    let duration = chosen_duration(ctx, args.duration.as_deref(), args.permanent)?;
    let allowlist = HostAllowlist::from_config(&ctx.config.ban);
    // The allowlist is checked before the store or the firewall is touched.
    if let Some((entry, why)) = allowlist.overlapping(target).filter(|_| !args.force) {
        return Err(OperatorError::Allowlisted { target, entry, why }.into());
    }
    let mut store = open_store(ctx)?;
    let mut fw = (!ctx.config.ban.dry_run).then(|| firewall(ctx));
    let out = ban_target(
        borrow(&mut fw),
        &mut store,
        &allowlist,
        target,
        duration,
        &args.reason,
        args.force,
        Timestamp::now(),
    )
    .with_context(|| format!("cannot ban {target}"))?;
    println!(
        "banned {} {}{}{}",
        out.target,
        until_text(out.until),
        if out.replaced {
            " (replaced the earlier ban)"
        } else {
            ""
        },
        if out.enforced {
            ""
        } else {
            " [dry run: recorded, firewall untouched]"
        }
    );
    Ok(ExitCode::SUCCESS)
}

pub fn run_unban(ctx: &Context, args: UnbanArgs) -> anyhow::Result<ExitCode> {
    let target = parse_target(&args.target)?;
    let mut store = open_store(ctx)?;
    let mut fw = (!ctx.config.ban.dry_run).then(|| firewall(ctx));
    let out = unban_target(borrow(&mut fw), &mut store, target, Timestamp::now())
        .with_context(|| format!("cannot unban {target}"))?;
    if out.lifted_in_store == 0 {
        println!(
            "{target} had no active ban in the store; removed from the kernel set if it was there"
        );
    } else {
        println!("unbanned {target}");
    }
    if let Some(prefix) = out.still_covered_by {
        println!("note: {target} is still covered by the ban of {prefix}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_import(ctx: &Context, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let list = parse_blocklist(&text);
    let duration = chosen_duration(ctx, args.duration.as_deref(), args.permanent)?;
    let allowlist = HostAllowlist::from_config(&ctx.config.ban);
    let reason = format!("imported from {}", args.file.display());
    let now = Timestamp::now();
    let report = if args.dry_run {
        // A throwaway store: the same logic, nothing written anywhere.
        let mut scratch = Store::open_in_memory()?;
        import_blocklist(
            None,
            &mut scratch,
            &allowlist,
            &list,
            duration,
            &reason,
            args.force,
            now,
        )?
    } else {
        let mut store = open_store(ctx)?;
        let mut fw = (!ctx.config.ban.dry_run).then(|| firewall(ctx));
        import_blocklist(
            borrow(&mut fw),
            &mut store,
            &allowlist,
            &list,
            duration,
            &reason,
            args.force,
            now,
        )
        .with_context(|| format!("cannot import {}", args.file.display()))?
    };
    let file = args.file.display();
    for (line, text) in &report.invalid {
        eprintln!("{file}:{line}: `{text}` is not an address or CIDR prefix; skipped");
    }
    for (target, entry) in &report.allowlisted {
        eprintln!("{target} is allowlisted ({entry}); skipped (--force bans it)");
    }
    let verb = if args.dry_run {
        "would ban"
    } else if report.enforced {
        "banned"
    } else {
        "recorded (dry run, firewall untouched)"
    };
    println!(
        "{verb} {} {}; {} already banned, {} allowlisted, {} invalid line(s), {} duplicate(s)",
        report.banned.len(),
        until_text(duration.and_then(|d| now.checked_add(d).ok())),
        report.already_banned.len(),
        report.allowlisted.len(),
        report.invalid.len(),
        report.duplicates
    );
    Ok(ExitCode::SUCCESS)
}

/// `Option<Box<dyn Firewall>>` as the `Option<&mut dyn Firewall>` the logic takes.
fn borrow(fw: &mut Option<Box<dyn Firewall>>) -> Option<&mut dyn Firewall> {
    match fw {
        Some(f) => Some(f.as_mut()),
        None => None,
    }
}

pub(crate) fn open_store(ctx: &Context) -> anyhow::Result<Store> {
    Store::open(&ctx.state_dir).with_context(|| {
        format!(
            "opening the store in {} (set --state-dir or PORTWARDEN_STATE_DIR to use another)",
            ctx.state_dir.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enforce::FakeFirewall;
    use crate::store::tests::{net, ts};

    fn allowlist() -> HostAllowlist {
        HostAllowlist::new(vec![
            (net("127.0.0.0/8"), AllowReason::Loopback),
            (net("192.168.56.1"), AllowReason::Gateway),
        ])
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
        let mut store = Store::open_in_memory().unwrap();
        let mut fw = FakeFirewall::unset();
        let err = ban_target(
            Some(&mut fw),
            &mut store,
            &allowlist(),
            net("198.51.100.7"),
            None,
            "manual ban",
            false,
            ts("2026-11-24T23:00:00Z"),
        )
        .unwrap_err();
        assert!(matches!(err, OperatorError::NoTable), "{err}");
        assert_eq!(fw.setup_calls(), 0);
        assert!(store.active_bans().unwrap().is_empty());
    }

    #[test]
    fn manual_ban_reconciles_enforces_and_records() {
        let mut store = Store::open_in_memory().unwrap();
        let mut fw = FakeFirewall::unset();
        fw.setup().unwrap(); // operator commands need the table (see require_table)
        let now = ts("2026-11-24T23:00:00Z");
        let out = ban_target(
            Some(&mut fw),
            &mut store,
            &allowlist(),
            net("198.51.100.0/24"),
            Some(SignedDuration::from_hours(2)),
            "manual ban",
            false,
            now,
        )
        .unwrap();
        assert!(out.enforced && !out.replaced);
        assert_eq!(out.until, Some(ts("2026-11-25T01:00:00Z")));
        // Set up once above; the ban itself never runs setup.
        assert_eq!(fw.setup_calls(), 1);
        assert_eq!(
            fw.timeout_of(&net("198.51.100.0/24")),
            Some(Some(SignedDuration::from_hours(2)))
        );
        let bans = store.live_bans(now).unwrap();
        assert_eq!(bans[0].origin, BanOrigin::Manual);

        // Banning again replaces.
        let again = ban_target(
            Some(&mut fw),
            &mut store,
            &allowlist(),
            net("198.51.100.0/24"),
            None,
            "manual ban",
            false,
            now,
        )
        .unwrap();
        assert!(again.replaced);
        assert_eq!(store.live_bans(now).unwrap().len(), 1);
        assert_eq!(fw.timeout_of(&net("198.51.100.0/24")), Some(None));
    }

    #[test]
    fn manual_ban_respects_the_allowlist_unless_forced() {
        let mut store = Store::open_in_memory().unwrap();
        let mut fw = FakeFirewall::unset();
        fw.setup().unwrap(); // operator commands need the table (see require_table)
        let now = ts("2026-11-24T23:00:00Z");
        let err = ban_target(
            Some(&mut fw),
            &mut store,
            &allowlist(),
            net("192.168.56.0/24"),
            None,
            "x",
            false,
            now,
        )
        .unwrap_err();
        assert!(matches!(err, OperatorError::Allowlisted { .. }), "{err}");
        assert!(err.to_string().contains("--force"));
        assert_eq!(fw.ban_calls(), 0);
        ban_target(
            Some(&mut fw),
            &mut store,
            &allowlist(),
            net("192.168.56.1"),
            None,
            "x",
            true,
            now,
        )
        .unwrap();
        assert_eq!(fw.elements().len(), 1);
    }

    #[test]
    fn unban_lifts_kernel_and_store_and_names_a_covering_prefix() {
        let mut store = Store::open_in_memory().unwrap();
        let mut fw = FakeFirewall::unset();
        fw.setup().unwrap(); // operator commands need the table (see require_table)
        let now = ts("2026-11-24T23:00:00Z");
        for t in ["198.51.100.7", "203.0.113.0/24", "203.0.113.9"] {
            ban_target(
                Some(&mut fw),
                &mut store,
                &allowlist(),
                net(t),
                None,
                "x",
                false,
                now,
            )
            .unwrap();
        }
        let out = unban_target(Some(&mut fw), &mut store, net("198.51.100.7"), now).unwrap();
        assert_eq!(out.lifted_in_store, 1);
        assert_eq!(fw.timeout_of(&net("198.51.100.7")), None);
        let out = unban_target(Some(&mut fw), &mut store, net("203.0.113.9"), now).unwrap();
        assert_eq!(out.still_covered_by, Some(net("203.0.113.0/24")));
        // Unbanning what is not banned is not an error.
        let out = unban_target(Some(&mut fw), &mut store, net("192.0.2.1"), now).unwrap();
        assert_eq!(out.lifted_in_store, 0);
    }

    #[test]
    fn import_bans_in_one_batch_and_reports_the_rest() {
        let mut store = Store::open_in_memory().unwrap();
        let mut fw = FakeFirewall::unset();
        fw.setup().unwrap(); // operator commands need the table (see require_table)
        let now = ts("2026-11-24T23:00:00Z");
        ban_target(
            Some(&mut fw),
            &mut store,
            &allowlist(),
            net("10.0.0.0/24"),
            None,
            "x",
            false,
            now,
        )
        .unwrap();
        let list = parse_blocklist(
            "192.168.56.101\n192.168.56.1\njunk\n10.0.0.9\n2001:db8::7\n192.168.56.101\n",
        );
        let report = import_blocklist(
            Some(&mut fw),
            &mut store,
            &allowlist(),
            &list,
            None,
            "imported",
            false,
            now,
        )
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
            fw.ban_calls(),
            2,
            "one for the earlier ban, one batch for the import"
        );
        assert_eq!(store.live_bans(now).unwrap().len(), 3);
    }

    #[test]
    fn dry_run_import_and_ban_never_call_the_firewall() {
        let mut store = Store::open_in_memory().unwrap();
        let now = ts("2026-11-24T23:00:00Z");
        let list = parse_blocklist("192.168.56.101\n");
        let report = import_blocklist(
            None,
            &mut store,
            &allowlist(),
            &list,
            None,
            "imported",
            false,
            now,
        )
        .unwrap();
        assert!(!report.enforced);
        assert_eq!(report.banned.len(), 1);
        let out = ban_target(
            None,
            &mut store,
            &allowlist(),
            net("198.51.100.7"),
            None,
            "x",
            false,
            now,
        )
        .unwrap();
        assert!(!out.enforced);
        // Recorded as dry-run: never live, never reconciled into a kernel.
        assert!(store.live_bans(now).unwrap().is_empty());
        assert_eq!(store.recent_bans(10).unwrap().len(), 2);
    }
}
