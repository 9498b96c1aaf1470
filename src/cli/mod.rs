//! The command line: global options, one subcommand per file, and the [`Context`] every
//! subcommand receives (the validated config and where the state lives).
//!
//! Precedence, highest first: `--config PATH` > `$PORTWARDEN_CONFIG` >
//! `/etc/portwarden/portwarden.toml` > built-in defaults; `--state-dir DIR` >
//! `$PORTWARDEN_STATE_DIR` > the config's `state_dir`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::bans::BanBook;
use crate::clock::SharedClock;
use crate::config::Config;

pub mod ban;
pub mod config;
pub mod cron;
pub mod daemon;
pub mod demo;
pub mod fail2ban;
pub mod generate;
pub mod list;
pub mod run;
pub mod scan;
pub mod setup;
pub mod status;
pub mod systemd;

/// The exit codes, in `--help`, the man page's EXIT STATUS and the README's "Exit codes".
pub const EXIT_CODES: &[(u8, &str)] = &[
    (0, "success"),
    (
        1,
        "error: the message on standard error says what failed and what to do; also `config check` that found problems, and `status` when the firewall is not ready",
    ),
    (
        2,
        "usage error: unknown subcommand or option, bad or missing argument",
    ),
    (
        75,
        "`run --once`: another run or the daemon holds the lock, this pass was skipped (cron tries again next minute)",
    ),
];

fn exit_codes_help() -> String {
    let mut s = String::from("Exit codes:");
    for (code, meaning) in EXIT_CODES {
        s.push_str(&format!("\n  {code:<3} {meaning}"));
    }
    s
}

/// `--log-format`: how log messages look on standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line per message; colours only when standard error is a terminal and NO_COLOR is
    /// unset.
    Text,
    /// One JSON object per message (timestamp, level, fields, target), never coloured.
    Json,
}

#[derive(Debug, Parser)]
#[command(
    name = "portwarden",
    version,
    about = "Detect port scans from nftables LOG records and block the scanners with expiring nftables set elements",
    after_long_help = exit_codes_help()
)]
pub struct Cli {
    /// Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// State directory (default: $PORTWARDEN_STATE_DIR, else the config's state_dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log messages as text (coloured only on a terminal) or as JSON lines.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Text,
        env = "PORTWARDEN_LOG_FORMAT",
        value_name = "FORMAT"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read log files offline and report scanners; bans nothing.
    Scan(scan::Args),
    /// Create or refresh the nftables table, sets, LOG and drop rules.
    Setup(setup::SetupArgs),
    /// Remove portwarden's nftables table and nothing else.
    Teardown(setup::TeardownArgs),
    /// Ban an address or prefix by hand.
    Ban(ban::BanArgs),
    /// Lift a ban.
    Unban(ban::UnbanArgs),
    /// Import the seed lab's blocked_ips.txt (one address per line).
    Import(ban::ImportArgs),
    /// Bans in the kernel set and in the store, side by side.
    List(list::Args),
    /// What portwarden is doing: table, sets, store, sources.
    Status(status::Args),
    /// `run --once`: one incremental pass over every source, then exit (cron mode).
    Run(run::Args),
    /// Follow the sources and ban within milliseconds.
    Daemon(daemon::Args),
    /// Install, remove or print /etc/cron.d/portwarden.
    Cron(cron::Args),
    /// Install or print the systemd unit for the daemon.
    Systemd(systemd::Args),
    /// Write or print the Fail2Ban filter, jail and action (the alternative method).
    Fail2ban(fail2ban::Args),
    /// The seed lab in throwaway network namespaces: scan, detect, ban, scan again.
    Demo(demo::Args),
    /// Check the config file, show the effective values, or print the commented default.
    Config(config::Args),
    /// Write the man pages or the shell completions (for packagers).
    #[command(hide = true)]
    Generate(generate::Args),
}

/// What every subcommand gets.
#[derive(Clone)]
pub struct Context {
    pub config: Config,
    /// Resolved state directory (flag > environment > config).
    pub state_dir: PathBuf,
    /// The clock every command reads (the system's; tests of the library drive their own).
    pub clock: SharedClock,
}

impl Context {
    pub fn load(
        config_path: Option<PathBuf>,
        state_dir: Option<PathBuf>,
    ) -> anyhow::Result<Context> {
        let config = Config::load(config_path.as_deref())?;
        let state_dir = state_dir
            .or_else(|| {
                std::env::var_os("PORTWARDEN_STATE_DIR")
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| config.state_dir.clone());
        Ok(Context {
            config,
            state_dir,
            clock: crate::clock::system(),
        })
    }

    /// The ban book over this context's store and firewall: the only way a command changes
    /// or reads the list of bans.
    pub fn ban_book(&self) -> anyhow::Result<BanBook> {
        BanBook::open(&self.config, &self.state_dir, self.clock.clone()).with_context(|| {
            format!(
                "opening the store in {} (set --state-dir or PORTWARDEN_STATE_DIR to use another)",
                self.state_dir.display()
            )
        })
    }
}

pub fn init_logging(verbose: u8, quiet: bool, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
        LogFormat::Text => {
            // Colour only on a terminal: cron appends this to a log file.
            use std::io::IsTerminal;
            let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(ansi).try_init()
        }
    };
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let command = match cli.command {
        // These explain or generate; they must work with a broken config file, so they run
        // before it is loaded.
        Command::Config(a) => {
            return config::run(cli.config.as_deref(), cli.state_dir.as_deref(), a);
        }
        Command::Generate(a) => return generate::run(a),
        command => command,
    };
    let ctx = Context::load(cli.config, cli.state_dir).context("loading the configuration")?;
    match command {
        Command::Scan(a) => scan::run(&ctx, a),
        Command::Setup(a) => setup::run_setup(&ctx, a),
        Command::Teardown(a) => setup::run_teardown(&ctx, a),
        Command::Ban(a) => ban::run_ban(&ctx, a),
        Command::Unban(a) => ban::run_unban(&ctx, a),
        Command::Import(a) => ban::run_import(&ctx, a),
        Command::List(a) => list::run(&ctx, a),
        Command::Status(a) => status::run(&ctx, a),
        Command::Run(a) => run::run(&ctx, a),
        Command::Daemon(a) => daemon::run(&ctx, a),
        Command::Cron(a) => cron::run(&ctx, a),
        Command::Systemd(a) => systemd::run(&ctx, a),
        Command::Fail2ban(a) => fail2ban::run(&ctx, a),
        Command::Demo(a) => demo::run(&ctx, a),
        // Handled above.
        Command::Config(_) | Command::Generate(_) => Ok(ExitCode::SUCCESS),
    }
}
