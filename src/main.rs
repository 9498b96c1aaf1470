//! The `portwarden` binary: parse the command line, start logging, run the subcommand, and map
//! errors to exit codes and messages a person can act on. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = portwarden::cli::Cli::parse();
    portwarden::cli::init_logging(cli.verbose, cli.quiet, cli.log_format);
    match portwarden::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // The whole chain: "cannot ban 10.0.0.1: nft: Error: No such file ...".
            eprintln!("portwarden: error: {}", portwarden::cli::error_chain(&err));
            ExitCode::from(1)
        }
    }
}
