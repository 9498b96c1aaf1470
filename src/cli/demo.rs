//! `portwarden demo`: the seed lab in one command, in throwaway network namespaces. The lab
//! itself is `demo`; this file parses the flags and calls it.

use std::process::ExitCode;

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Leave the namespaces, the config and the sysctl in place for exploring.
    #[arg(long)]
    pub keep: bool,
    /// Cron mode, as in the seed lab: `run --once` before and after the scan instead of the
    /// daemon.
    #[arg(long)]
    pub cron: bool,
}

pub fn run(_ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    crate::demo::run(crate::demo::Options {
        keep: args.keep,
        cron: args.cron,
    })?;
    Ok(ExitCode::SUCCESS)
}
