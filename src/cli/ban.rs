//! `portwarden ban`, `unban` and `import`: the operator's hands on the ban list.
//!
//! Each parses its arguments (a target is validated before anything else happens), calls one
//! method of the ban book ([`crate::bans::operator`]), and prints what it did.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use jiff::{SignedDuration, Timestamp};

use super::Context;
use crate::bans::operator::{check_allowlist, parse_duration, parse_target};
use crate::bans::{BanBook, OperatorError};
use crate::decide::HostAllowlist;
use crate::store::parse_blocklist;

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
    check_allowlist(&allowlist, target, args.force)?;
    let out = ctx
        .ban_book()?
        .ban_manually(&allowlist, target, duration, &args.reason, args.force)
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
    let out = ctx
        .ban_book()?
        .unban(target)
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
    let mut book = if args.dry_run {
        // A throwaway store in dry-run mode: the same logic, nothing written anywhere.
        BanBook::scratch(&ctx.config, ctx.clock.clone())?
    } else {
        ctx.ban_book()?
    };
    let now = book.now();
    let report = book
        .import(&allowlist, &list, duration, &reason, args.force)
        .with_context(|| format!("cannot import {}", args.file.display()))?;
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
