//! `portwarden systemd install|print`: parses the arguments and writes or prints the unit that
//! `install::systemd` renders.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::Context;
use crate::config::DEFAULT_STATE_DIR;
use crate::install::cron::write_atomically;
use crate::install::systemd::{DEFAULT_UNIT_DIR, DaemonUnit, UNIT_NAME};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Write portwarden.service for `portwarden daemon`.
    Install {
        /// Directory of the unit file.
        #[arg(long, value_name = "DIR", default_value = DEFAULT_UNIT_DIR)]
        dir: PathBuf,
    },
    /// Print the unit `install` would write.
    Print,
}

/// Everything the unit says.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let unit = DaemonUnit::new(&ctx.config, &ctx.state_dir)?;
    match args.action {
        Action::Print => print!("{}", unit.render()?),
        Action::Install { dir } => {
            let path = write_atomically(
                &dir,
                UNIT_NAME,
                &unit.render()?,
                0o644,
                ": is systemd installed?",
            )?;
            println!("wrote {}", path.display());
            for p in unit.hidden_paths() {
                println!(
                    "warning: {} is under a home directory, which the unit's ProtectHome=yes \
                     hides from the daemon: move it (e.g. to /usr/local or /etc/portwarden)",
                    p.display()
                );
            }
            if unit.state_dir != Path::new(DEFAULT_STATE_DIR) && !unit.state_dir.is_dir() {
                println!(
                    "warning: the state directory {} does not exist; create it (mkdir -m 0700) \
                     before starting the service",
                    unit.state_dir.display()
                );
            }
            println!("now run: systemctl daemon-reload && systemctl enable --now portwarden");
        }
    }
    Ok(ExitCode::SUCCESS)
}
