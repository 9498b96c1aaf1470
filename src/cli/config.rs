//! `portwarden config check|show|print-default`: the configuration explained. A skin over
//! [`crate::config_report`]; it runs before the configuration is loaded, so that `check` can
//! report a broken file instead of failing on it.

use std::path::Path;
use std::process::ExitCode;

use crate::config_report::{self, ConfigFile};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Check the config file: exit 0, or list every problem with file, line, key and the fix
    /// (exit 1).
    Check,
    /// The effective value of every key and where it came from (default, file, environment,
    /// flag).
    Show,
    /// Print the commented example file: every key at its default, with the reasoning.
    PrintDefault,
}

pub fn run(
    config: Option<&Path>,
    state_dir: Option<&Path>,
    args: Args,
) -> anyhow::Result<ExitCode> {
    let file = ConfigFile::resolve(config);
    match args.action {
        Action::PrintDefault => {
            print!("{}", config_report::EXAMPLE);
            Ok(ExitCode::SUCCESS)
        }
        Action::Check => {
            let Some(path) = file.path() else {
                println!(
                    "no config file ({}): built-in defaults apply",
                    file.reason()
                );
                return Ok(ExitCode::SUCCESS);
            };
            tracing::info!(file = %path.display(), "checking the config file");
            let problems = config_report::check_file(path);
            if problems.is_empty() {
                println!("{}: OK", path.display());
                return Ok(ExitCode::SUCCESS);
            }
            for p in &problems {
                println!("{p}");
            }
            eprintln!(
                "portwarden: {} problem(s) in {}",
                problems.len(),
                path.display()
            );
            Ok(ExitCode::from(1))
        }
        Action::Show => {
            let text = config_report::show(config, state_dir).map_err(|e| {
                anyhow::anyhow!("{e}\n(`portwarden config check` lists every problem of the file)")
            })?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
