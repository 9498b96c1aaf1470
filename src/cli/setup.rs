//! `portwarden setup [--dry-run]` and `portwarden teardown`: create, refresh or remove the
//! nftables table portwarden owns, or check the operator's own table when it is borrowed
//! (`[firewall] manage_table = false`).
//!
//! In: the `[firewall]` and `[log]` config. Out: the table in the kernel and a line saying what
//! was done; `--dry-run` prints the ruleset and touches nothing (no root needed). Errors say
//! what to do: run as root, install nftables, run setup, or create the borrowed table.

use std::process::ExitCode;

use anyhow::Context as _;

use super::Context;
use crate::enforce::{NftFirewall, SetupOutcome, TeardownOutcome};

#[derive(Debug, clap::Args)]
pub struct SetupArgs {
    /// Print the ruleset setup would load, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The one place the CLI makes the real firewall: nftables, from `[firewall]` and the LOG
/// prefixes of `[log]`.
pub fn firewall(ctx: &Context) -> NftFirewall {
    NftFirewall::from_config(&ctx.config)
}

/// The firewall with the fast path's allowlist (this host's, read now) and served ports, so
/// that `setup` loads them with the table in one transaction.
fn firewall_with_lists(ctx: &Context) -> NftFirewall {
    let allow = crate::decide::HostAllowlist::from_config(&ctx.config.ban)
        .entries
        .iter()
        .map(|(n, _)| *n)
        .collect();
    firewall(ctx).with_fastpath_lists(allow, ctx.config.detect.served_ports.clone())
}

pub fn run_setup(ctx: &Context, args: SetupArgs) -> anyhow::Result<ExitCode> {
    let mut fw = firewall_with_lists(ctx);
    if args.dry_run {
        if fw.manages_table() {
            print!("{}", fw.ruleset()?);
        } else {
            println!(
                "# firewall.manage_table = false: setup would only check that table {} and its sets exist; it loads nothing",
                fw.table_name()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let outcome = fw
        .setup_report()
        .with_context(|| format!("setting up table {}", fw.table_name()))?;
    let table = fw.table_name();
    match outcome {
        SetupOutcome::Created => println!("created table {table}"),
        SetupOutcome::Unchanged => println!("table {table} is up to date; nothing changed"),
        SetupOutcome::Upgraded { reason, kept } => {
            println!(
                "rebuilt table {table} ({reason}); kept {kept} ban(s) with their remaining time"
            )
        }
        SetupOutcome::Borrowed { timeout: true } => {
            println!("using table {table} (not managed by portwarden); its sets expire bans")
        }
        SetupOutcome::Borrowed { timeout: false } => println!(
            "using table {table} (not managed by portwarden); its set has no timeout flag, so bans \
             are added without a timeout and portwarden lifts them itself when they expire"
        ),
    }
    // After a reboot the table is new and empty: put back the bans the store still holds.
    if ctx.state_dir.join(crate::store::DB_FILE).exists() {
        let report = ctx
            .ban_book()?
            .reconcile()
            .context("restoring the bans the store remembers")?;
        if let Some(report) = report.filter(|r| r.restored > 0) {
            println!(
                "restored {} ban(s) from the store with their remaining time",
                report.restored
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct TeardownArgs {}

pub fn run_teardown(ctx: &Context, _args: TeardownArgs) -> anyhow::Result<ExitCode> {
    let mut fw = firewall(ctx);
    let table = fw.table_name();
    let outcome = fw
        .teardown_report()
        .with_context(|| format!("removing table {table}"))?;
    match outcome {
        TeardownOutcome::Removed => println!("removed table {table}"),
        TeardownOutcome::Absent => println!("table {table} does not exist; nothing to remove"),
        TeardownOutcome::NotOurs => println!(
            "table {table} belongs to the operator (firewall.manage_table = false); left as it is"
        ),
    }
    Ok(ExitCode::SUCCESS)
}
