//! `portwarden ban`: being written (see the issue that owns it).

use std::process::ExitCode;

use super::Context;

#[derive(Debug, clap::Args)]
pub struct BanArgs {}

pub fn run_ban(_ctx: &Context, _args: BanArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}

#[derive(Debug, clap::Args)]
pub struct UnbanArgs {}

pub fn run_unban(_ctx: &Context, _args: UnbanArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {}

pub fn run_import(_ctx: &Context, _args: ImportArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
