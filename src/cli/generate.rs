//! `portwarden generate man|completions|package DIR` (hidden): write the man pages or the
//! shell completions from the clap definition, or the unit and cron file the Debian package
//! installs. A skin over [`crate::manual`]; the checked-in copies
//! are `docs/man/`, `completions/` and `debian/`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory;

use super::Cli;
use crate::manual;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// Man pages, section 8 (portwarden.8, portwarden-scan.8, ...).
    Man { dir: PathBuf },
    /// Completions for bash, zsh and fish.
    Completions { dir: PathBuf },
    /// The systemd unit and the (commented-out) cron file the Debian package installs.
    Package { dir: PathBuf },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let files = match args.what {
        What::Man { dir } => manual::write_man_pages(Cli::command(), &dir, super::EXIT_CODES)?,
        What::Completions { dir } => manual::write_completions(Cli::command(), &dir)?,
        What::Package { dir } => manual::write_package_files(&dir)?,
    };
    for f in files {
        println!("{}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}
