//! `portwarden cron install|remove|print`: parses the arguments and writes, removes or prints
//! the cron file that `install::cron` renders.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::Context;
use crate::config::DEFAULT_STATE_DIR;
use crate::install::cron::{
    CRON_FILE_NAME, CronJob, DEFAULT_CRON_DIR, DEFAULT_LOG_FILE, remove_ours, write_atomically,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Write /etc/cron.d/portwarden: `portwarden run --once` every minute, as root.
    Install {
        /// Directory cron reads system jobs from.
        #[arg(long, value_name = "DIR", default_value = DEFAULT_CRON_DIR)]
        dir: PathBuf,
        /// File the job's output is appended to.
        #[arg(long, value_name = "FILE", default_value = DEFAULT_LOG_FILE)]
        log: PathBuf,
    },
    /// Delete /etc/cron.d/portwarden, if portwarden wrote it.
    Remove {
        /// Directory cron reads system jobs from.
        #[arg(long, value_name = "DIR", default_value = DEFAULT_CRON_DIR)]
        dir: PathBuf,
    },
    /// Print the file `install` would write.
    Print {
        /// File the job's output is appended to.
        #[arg(long, value_name = "FILE", default_value = DEFAULT_LOG_FILE)]
        log: PathBuf,
    },
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Print { log } => {
            print!(
                "{}",
                CronJob::new(&ctx.config, &ctx.state_dir, &log)?.render()?
            );
        }
        Action::Install { dir, log } => {
            let job = CronJob::new(&ctx.config, &ctx.state_dir, &log)?;
            let text = job.render()?;
            let path = write_atomically(
                &dir,
                CRON_FILE_NAME,
                &text,
                0o644,
                ": is cron installed? (apt-get install cron)",
            )?;
            println!("wrote {}", path.display());
            println!("cron runs, every minute as root:\n    {}", job.command()?);
            println!(
                "follow it with `tail -f {}`; undo with `portwarden cron remove`",
                job.log.display()
            );
            if !ctx.state_dir.is_dir() && ctx.state_dir == Path::new(DEFAULT_STATE_DIR) {
                println!(
                    "note: the state directory {} does not exist yet; the first run creates it",
                    ctx.state_dir.display()
                );
            }
        }
        Action::Remove { dir } => {
            if remove_ours(&dir, CRON_FILE_NAME)? {
                println!("removed {}", dir.join(CRON_FILE_NAME).display());
            } else {
                println!(
                    "{} does not exist: nothing to remove",
                    dir.join(CRON_FILE_NAME).display()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
