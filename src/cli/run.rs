//! `portwarden run --once`: cron mode. One incremental pass over every configured source:
//! read only what is new since each source's stored cursor, continue the detector from its
//! stored state (a scan that straddles two runs is caught), ban, save, and print one line.
//!
//! Its cost grows with the new records, not with the size of the log: file sources seek to
//! their cursor, the journal resumes `--after-cursor`, kmsg skips what it has seen (the ring
//! is bounded). A lock in the state directory keeps two runs (or a run and the daemon) apart.
//!
//! Exit codes: 0 done; 66 (EX_NOINPUT) done and saved, but a source could not be read (the
//! summary line names it and why: a missing file, a directory, no permission, not a log file);
//! 75 (EX_TEMPFAIL) another run holds the lock; 1 the pass could not be done.
//!
//! With `[metrics] textfile` set, the pass writes the metrics families there for
//! node_exporter's textfile collector, continuing the previous pass's counters.

use std::process::ExitCode;

use anyhow::Context as _;

use super::Context;
use crate::engine::{Engine, RunLock};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One pass, then exit (the cron mode). Without it, use `portwarden daemon`.
    #[arg(long)]
    pub once: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Exit code when another run holds the lock: EX_TEMPFAIL, "try again later".
const LOCKED: u8 = 75;
/// Exit code when the pass was done and saved but a source could not be read (a missing
/// file, a directory, no permission): EX_NOINPUT. The summary line names each one.
pub const SOURCE_ERROR: u8 = 66;

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    if !args.once {
        anyhow::bail!(
            "`run` needs --once (cron mode); to follow the sources continuously, use `portwarden daemon`"
        );
    }
    let Some(_lock) = RunLock::try_acquire(&ctx.state_dir, "run --once")? else {
        eprintln!(
            "portwarden: another run or the daemon holds {}/run.lock; skipping this pass",
            ctx.state_dir.display()
        );
        return Ok(ExitCode::from(LOCKED));
    };
    let (mut engine, report) =
        Engine::open_in(ctx.config.clone(), &ctx.state_dir, ctx.clock.clone())
            .context("starting the pass")?;
    // The textfile's counters continue from the previous pass's (see `crate::metrics`).
    let textfile = ctx.config.metrics.textfile.as_deref();
    if let Some(path) = textfile
        && let Err(e) = engine.metrics().continue_from_textfile(path)
    {
        eprintln!("portwarden run: {e}; the metrics start again from zero");
    }
    let mut summary = engine.pass()?;
    // What opening the engine put back (the kernel lost the table or bans: a reboot, a flush).
    summary.restored = report.map_or(0, |r| r.restored);
    if let Some(path) = textfile
        && let Err(e) = engine.metrics().write_textfile(path)
    {
        // The pass committed its bans; the missing metrics are reported, not fatal.
        eprintln!("portwarden run: {e}");
    }
    let now = ctx.clock.now().strftime("%Y-%m-%dT%H:%M:%S%:z");
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("{now} portwarden run: {summary}");
    }
    if summary.source_errors > 0 {
        return Ok(ExitCode::from(SOURCE_ERROR));
    }
    Ok(ExitCode::SUCCESS)
}
