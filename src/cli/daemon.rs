//! `portwarden daemon`: follow every source and ban within milliseconds of the triggering
//! record. The loop, its timers, the table watchdog and the SIGHUP reload live in
//! `engine::daemon`; this file only calls it.

use std::process::ExitCode;

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(ctx: &Context, _args: Args) -> anyhow::Result<ExitCode> {
    crate::engine::daemon::run(ctx.config.clone(), &ctx.state_dir, ctx.clock.clone())?;
    Ok(ExitCode::SUCCESS)
}
