//! `portwarden setup`: being written (see the issue that owns it).

use std::process::ExitCode;

use super::Context;

#[derive(Debug, clap::Args)]
pub struct SetupArgs {}

pub fn run_setup(_ctx: &Context, _args: SetupArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}

#[derive(Debug, clap::Args)]
pub struct TeardownArgs {}

pub fn run_teardown(_ctx: &Context, _args: TeardownArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
