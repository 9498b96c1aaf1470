//! Configuration: the TOML file as written (`Raw*`, `deny_unknown_fields`) and the validated
//! [`Config`] every stage receives. No raw string travels past [`Config::load`]: durations are
//! `SignedDuration`, networks are `IpNet`, ports are numbers, and what goes into nftables
//! scripts and Fail2Ban files is an [`NftFamily`], an [`NftName`] or a [`LogPrefix`] (see
//! [`nftables`] for their rules), so `enforce` and `fail2ban` never check them again.
//!
//! Where the file is: `--config PATH`, else `$PORTWARDEN_CONFIG`, else
//! `/etc/portwarden/portwarden.toml`. A missing default file is not an error (built-in defaults
//! apply); a missing file that was asked for explicitly is. Every error names the file, the key
//! and what to write instead (see [`ConfigError`]).
//!
//! Each section belongs to one stage: `[log]` to parse, `[detect]` to detect, `[ban]` to decide,
//! `[firewall]` to enforce, `[[source]]` to the sources. The defaults and the reasoning behind
//! them are documented in `docs/portwarden.example.toml` (`portwarden config print-default`).

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use jiff::SignedDuration;
use serde::Deserialize;

use crate::record::Proto;

pub mod nftables;

pub use nftables::{LogPrefix, NftFamily, NftName, ValueError};

/// Where the config file is when neither `--config` nor `$PORTWARDEN_CONFIG` says.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/portwarden/portwarden.toml";
/// Default state directory (SQLite store, lock file).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/portwarden";
/// Default log prefix: the one `portwarden setup` installs.
pub const DEFAULT_PREFIX: &str = "portwarden: ";

/// A configuration error a person can act on: which file, which key, what is wrong, the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: key `{key}`: {problem}; {fix}")]
    Invalid {
        path: PathBuf,
        key: String,
        problem: String,
        fix: String,
    },
}

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it came from (`None`: built-in defaults only).
    pub path: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub log: LogConfig,
    pub detect: DetectConfig,
    pub ban: BanConfig,
    pub firewall: FirewallConfig,
    pub fastpath: FastpathConfig,
    /// `[[source]]` entries. Empty (none configured): chosen when a run starts, by
    /// `source::default_config`: `/dev/kmsg` where readable, else the journal, else kern.log.
    pub sources: Vec<SourceConfig>,
    pub metrics: MetricsConfig,
    /// `[fleet]`: bans shared through Redis. `None`: no fleet, no connection.
    pub fleet: Option<crate::fleet::FleetConfig>,
}

/// `[metrics]`: the daemon's Prometheus endpoint and the cron pass's node_exporter textfile.
/// Both off by default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsConfig {
    /// Where the daemon serves `GET /metrics`. A loopback address unless `allow_remote`.
    pub listen: Option<std::net::SocketAddr>,
    /// Whether `listen` may be an address other hosts can reach.
    pub allow_remote: bool,
    /// Where `run --once` writes the families for node_exporter's textfile collector
    /// (absolute, ending in `.prom`).
    pub textfile: Option<PathBuf>,
}

/// `[log]`: which records count.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// LOG prefixes that mark our records (`"portwarden: "`, `"[UFW BLOCK] "`,
    /// `"SYN_SCAN_ATTEMPT--"`). Empty: any netfilter LOG record counts.
    pub prefixes: Vec<LogPrefix>,
    /// Accept records whose origin is not the kernel (a syslog tag other than `kernel`, a
    /// kmsg facility other than 0). Off by default: anyone can write those.
    pub accept_untrusted: bool,
}

/// `[detect]`: thresholds and windows of the port-scan detector.
///
/// Every count below is of *distinct probes*: the first packet from a source to one
/// `(destination, protocol, port)`; retransmissions and repeat connections to the same port add
/// records, not probes. A probe *fails* when this host serves nothing on that port, and
/// *succeeds* otherwise. Failed probes are weighted by their TCP flags: 1 for SYN, UDP and
/// others, `stealth_weight` for FIN / NULL / XMAS / Maimon / SYN+FIN and a lone ACK that
/// cannot be a stray, `stray_weight` for a packet that looks like one of this host's own past
/// connections. Times are the records' own times, never the clock.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectConfig {
    /// Short window of the fast-scan and sweep rules. Default 60 s: the seed lab's unit, long
    /// enough to hold a whole `-T3`/`-T4` scan and 150 probes of a polite `-T2` one (0.4 s apart),
    /// short enough that a busy network's one-off mistakes do not add up.
    pub window: SignedDuration,
    /// Weighted failed probes within `window` that make a fast scan. Default 6: the seed lab's
    /// 12-port `-sS -T3` scan (12 probes in about 1 ms) trips at its 6th probe, three stealth
    /// probes (weight 2) trip it, while a monitoring host that checks 5 ports (even 5 closed
    /// ones) and a client hammering one or two ports stay below it.
    pub fast_failures: u32,
    /// How long a source may stay silent before its session (and all its state) ends. Default
    /// 30 min: `nmap -T1` waits 15 s between probes and `-T0` 5 min, so both stay in one session;
    /// it is also how long a verdict holds before a source can be reported again.
    pub slow_gap: SignedDuration,
    /// How far back the slow-scan and sequential rules look (by when a probe was first seen),
    /// and how long a probe is remembered after its last record. Default 2 h: `nmap -T0`
    /// (5 min between probes) gets 24 probes in, and a long-lived client's rare mistakes (one
    /// closed port now, another tomorrow) never add up. A port probed again and again (a
    /// monitoring round) stays known, so it never counts twice.
    pub slow_window: SignedDuration,
    /// Weighted failed probes within `slow_window` that make a slow scan, whatever the successes.
    /// Default 10: catches a slow scanner that also finds open ports (the sequential score
    /// alone would be pulled down by them), and is above what one confused client produces.
    pub slow_failures: u32,
    /// Sequential score threshold: weighted failures minus successes within `slow_window`, in the
    /// spirit of Threshold Random Walk (Jung et al. 2004). Default 6.0: `nmap -T1` of 12 closed
    /// ports is caught at its 6th probe (75 s in), a scanner that finds 2 open ports among 12
    /// still scores 8, and a client that only reaches open ports goes negative and never trips.
    pub sequential_threshold: f64,
    /// Destinations of one `(protocol, port)` failing within `window` that make a sweep (for
    /// hosts that also log forwarded traffic). Default 6, equal to `fast_failures` so that a
    /// sweep is named as one rather than as a fast scan.
    pub sweep_destinations: u32,
    /// Weight of a failed stealth probe (FIN, NULL, XMAS, Maimon, SYN+FIN): no ordinary stack
    /// sends these to open a connection. Default 2.0: `-sF`/`-sN`/`-sX` trip the fast rule
    /// within 3 probes.
    pub stealth_weight: f64,
    /// Weight of a failed *stray*: a TCP packet of an established connection (ACK or RST
    /// set, no SYN) that looks like one of this host's own past connections, because it goes to
    /// a served port or to a port in the local ephemeral range, or comes from a well-known port
    /// (below 1024). After a reboot or a conntrack flush, such packets reach the LOG rule as new
    /// connections: 30 connections to a busy server become 30 "probes" of 30 ephemeral ports.
    /// Default 0.0 (zero is allowed): they are counted, never a verdict. A lone ACK that fits
    /// none of this (`nmap -sA`: ephemeral source port, closed well-known destination) is no
    /// stray: it weighs `stealth_weight`, so `-sA` of 4 ports is caught at its 3rd probe.
    pub stray_weight: f64,
    /// Sources tracked at once; the memory bound with `max_probes_per_source`. Default 16384.
    /// When full, the detector evicts, among 8 sampled sources, the one furthest from a verdict
    /// (then the stalest), so a spoofed flood displaces one-probe sources, not a scanner
    /// half-way to its verdict. Memory: about 200 bytes per source plus 48 per remembered probe,
    /// at most about 54 MiB with the defaults (about 6 MiB in a flood of one-probe sources).
    pub max_sources: usize,
    /// Distinct probes remembered per source (the oldest is forgotten first). Default 64:
    /// verdicts need 3 to 10 probes; the rest only sharpens the evidence (`top_ports`), and
    /// the counters keep counting beyond it.
    pub max_probes_per_source: usize,
    /// Ports this host serves, beside those read from `/proc/net` (`tcp/22`, `udp/53`).
    /// Default empty.
    pub served_ports: Vec<(Proto, u16)>,
    /// Read the listening ports of this host from `/proc/net/{tcp,tcp6,udp,udp6}` (sockets
    /// bound to loopback only are not served). Default on: without it every probe is a
    /// failure unless listed in `served_ports`.
    pub served_ports_from_proc: bool,
    /// Count forwarded records (`IN=` and `OUT=` both set) as probes, for a router that logs
    /// what it forwards. Default off: only inbound records (`IN=` set, `OUT=` empty) are
    /// probes. Outbound records (`IN=` empty: this host's own packets) never are.
    pub forwarded: bool,
    /// How far back the long-horizon (low-and-slow) rule looks: distinct failed probes of one
    /// source over this window, across sessions (a source probing one closed port every 30-60
    /// minutes starts a new session each time, so no session rule ever sees two). Default 24 h.
    pub long_window: SignedDuration,
    /// Distinct failed probes within `long_window` that make a low-and-slow scan (0: rule off;
    /// at most 32, what the compact per-source table keeps). Default 12: the sources issue 10
    /// found in a day of a real internet host's UFW log probed about 20 distinct closed ports
    /// over 15 hours, and 12 catches such a source 8 h 15 min in (one probe every 45 minutes);
    /// a client that hits a new closed port every 3 hours makes 8 a day, and a monitor that
    /// checks the same 5 closed ports every hour makes 5, both below it. Strays never count.
    pub long_failures: u32,
}

/// `[ban]`: the decide stage.
#[derive(Debug, Clone, PartialEq)]
pub struct BanConfig {
    /// Never banned, whatever they do.
    pub allowlist: Vec<IpNet>,
    /// Add loopback, this host's addresses, its default gateways and its resolvers.
    pub allowlist_host: bool,
    /// First ban's duration.
    pub duration: SignedDuration,
    /// Each repeat offence multiplies the duration by this...
    pub escalation_factor: u32,
    /// ...up to this.
    pub max_duration: SignedDuration,
    /// After this many offences the ban is permanent (0: never).
    pub permanent_after: u32,
    /// How long an offence counts towards escalation. Default 30 days: a scanner that comes
    /// back within a month is a repeat offender; one that comes back a year later (often
    /// another customer of the same address) starts again at the first ban.
    pub offence_memory: SignedDuration,
    /// This many distinct scanners within one prefix ban the prefix (0: never).
    pub prefix_sources: u32,
    /// ...whose last offence lies within this period of each other.
    pub prefix_window: SignedDuration,
    pub prefix_len_v4: u8,
    pub prefix_len_v6: u8,
    /// New bans per minute at most; findings beyond it are recorded, not banned.
    pub max_bans_per_minute: u32,
    /// Decide, record and report, but never touch the firewall.
    pub dry_run: bool,
}

/// `[firewall]`: the nftables objects portwarden owns or borrows.
#[derive(Debug, Clone, PartialEq)]
pub struct FirewallConfig {
    /// Path of the `nft` binary.
    pub nft: PathBuf,
    /// Table family and name (`inet portwarden`; the seed lab's is `ip filter`).
    pub family: NftFamily,
    pub table: NftName,
    pub set4: NftName,
    /// `None` when the borrowed table has no IPv6 set (the seed lab's `ip filter`).
    pub set6: Option<NftName>,
    /// Whether portwarden creates and owns the table (false: the operator's own table).
    pub manage_table: bool,
    /// Also drop banned sources in a forward chain.
    pub forward: bool,
    /// LOG rule rate limit, packets per second.
    pub log_rate_per_second: u32,
}

impl FirewallConfig {
    /// `family table`, as nft names it (`inet portwarden`).
    pub fn table_name(&self) -> String {
        format!("{} {}", self.family, self.table)
    }
}

/// `[fastpath]`: the kernel fast path in portwarden's own table (see `docs/fastpath.md`).
/// Its threshold and window are `[detect] fast_failures` and `window`; its ban lasts
/// `[ban] duration` (the ban book then escalates a repeat offender in the ban set).
#[derive(Debug, Clone, PartialEq)]
pub struct FastpathConfig {
    /// Ban in the packet path (only with `firewall.manage_table`: a borrowed table is never
    /// given the fast path's rules).
    pub enabled: bool,
    /// The LOG prefix of the fast path's own ban records.
    pub log_prefix: LogPrefix,
    /// Most addresses the kernel bans at once per address family (the size of `fastban4` /
    /// `fastban6`); when full, the fast path bans nobody new and user space judges alone.
    pub max_bans: u32,
    /// Most sources whose new-port rate the kernel tracks at once, per address family.
    pub max_sources: u32,
    /// Most `(source, protocol, port)` probes the kernel remembers at once, per family.
    pub max_probes: u32,
}

/// The fast path's LOG prefix unless configured.
pub const DEFAULT_FASTBAN_PREFIX: &str = "portwarden-fastban: ";

impl Default for FastpathConfig {
    fn default() -> Self {
        FastpathConfig {
            enabled: true,
            log_prefix: LogPrefix::builtin(DEFAULT_FASTBAN_PREFIX),
            max_bans: 65_536,
            max_sources: 65_536,
            max_probes: 262_144,
        }
    }
}

/// `[[source]]`: where records come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceConfig {
    Kmsg {
        path: PathBuf,
    },
    Journal {
        journalctl: PathBuf,
        args: Vec<String>,
    },
    File {
        path: PathBuf,
    },
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            prefixes: vec![LogPrefix::default()],
            accept_untrusted: false,
        }
    }
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            window: SignedDuration::from_secs(60),
            fast_failures: 6,
            slow_gap: SignedDuration::from_secs(30 * 60),
            slow_window: SignedDuration::from_hours(2),
            slow_failures: 10,
            sequential_threshold: 6.0,
            sweep_destinations: 6,
            stealth_weight: 2.0,
            stray_weight: 0.0,
            max_sources: 16_384,
            max_probes_per_source: 64,
            served_ports: Vec::new(),
            served_ports_from_proc: true,
            forwarded: false,
            long_window: SignedDuration::from_hours(24),
            long_failures: 12,
        }
    }
}

impl Default for BanConfig {
    fn default() -> Self {
        BanConfig {
            allowlist: Vec::new(),
            allowlist_host: true,
            duration: SignedDuration::from_hours(1),
            escalation_factor: 4,
            max_duration: SignedDuration::from_hours(24 * 30),
            permanent_after: 0,
            offence_memory: SignedDuration::from_hours(24 * 30),
            prefix_sources: 4,
            prefix_window: SignedDuration::from_hours(1),
            prefix_len_v4: 24,
            prefix_len_v6: 64,
            max_bans_per_minute: 60,
            dry_run: false,
        }
    }
}

impl Default for FirewallConfig {
    fn default() -> Self {
        FirewallConfig {
            nft: PathBuf::from("nft"),
            family: NftFamily::Inet,
            table: NftName::builtin("portwarden"),
            set4: NftName::builtin("banned4"),
            set6: Some(NftName::builtin("banned6")),
            manage_table: true,
            forward: false,
            log_rate_per_second: 50,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            path: None,
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            log: LogConfig::default(),
            detect: DetectConfig::default(),
            ban: BanConfig::default(),
            firewall: FirewallConfig::default(),
            fastpath: FastpathConfig::default(),
            sources: Vec::new(),
            metrics: MetricsConfig::default(),
            fleet: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The file as written.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    state_dir: Option<PathBuf>,
    log: Option<RawLog>,
    detect: Option<RawDetect>,
    ban: Option<RawBan>,
    firewall: Option<RawFirewall>,
    fastpath: Option<RawFastpath>,
    source: Option<Vec<RawSource>>,
    metrics: Option<RawMetrics>,
    fleet: Option<crate::fleet::config::RawFleet>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<String>,
    allow_remote: Option<bool>,
    textfile: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    prefix: Option<String>,
    prefixes: Option<Vec<String>>,
    accept_untrusted: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDetect {
    window: Option<String>,
    fast_failures: Option<u32>,
    slow_gap: Option<String>,
    slow_window: Option<String>,
    slow_failures: Option<u32>,
    sequential_threshold: Option<f64>,
    sweep_destinations: Option<u32>,
    stealth_weight: Option<f64>,
    stray_weight: Option<f64>,
    max_sources: Option<usize>,
    max_probes_per_source: Option<usize>,
    served_ports: Option<Vec<String>>,
    served_ports_from_proc: Option<bool>,
    forwarded: Option<bool>,
    long_window: Option<String>,
    long_failures: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBan {
    allowlist: Option<Vec<String>>,
    allowlist_host: Option<bool>,
    duration: Option<String>,
    escalation_factor: Option<u32>,
    max_duration: Option<String>,
    permanent_after: Option<u32>,
    prefix_sources: Option<u32>,
    prefix_window: Option<String>,
    offence_memory: Option<String>,
    prefix_len_v4: Option<u8>,
    prefix_len_v6: Option<u8>,
    max_bans_per_minute: Option<u32>,
    dry_run: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFirewall {
    nft: Option<PathBuf>,
    family: Option<String>,
    table: Option<String>,
    set4: Option<String>,
    set6: Option<String>,
    manage_table: Option<bool>,
    forward: Option<bool>,
    log_rate_per_second: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFastpath {
    enabled: Option<bool>,
    log_prefix: Option<String>,
    max_bans: Option<u32>,
    max_sources: Option<u32>,
    max_probes: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    kind: String,
    path: Option<PathBuf>,
    journalctl: Option<PathBuf>,
    args: Option<Vec<String>>,
}

impl Config {
    /// Load from an explicit path, or from `$PORTWARDEN_CONFIG`, or from the default path when
    /// it exists; built-in defaults otherwise.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        if let Some(p) = explicit {
            return Config::from_file(p);
        }
        if let Some(p) = std::env::var_os("PORTWARDEN_CONFIG").filter(|p| !p.is_empty()) {
            return Config::from_file(Path::new(&p));
        }
        let default = Path::new(DEFAULT_CONFIG_PATH);
        if default.exists() {
            return Config::from_file(default);
        }
        Ok(Config::default())
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::from_toml(&text, path)?;
        config.path = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parse and validate TOML text; `path` is only used in error messages.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Validator { path }.config(raw)
    }
}

/// Turns raw values into typed ones, naming the file and key in every error.
struct Validator<'a> {
    path: &'a Path,
}

impl Validator<'_> {
    fn invalid(
        &self,
        key: &str,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// A value one of the [`nftables`] types refused, under `key`.
    fn invalid_value(&self, key: &str, e: ValueError) -> ConfigError {
        self.invalid(key, e.problem, e.fix)
    }

    fn duration(
        &self,
        key: &str,
        value: Option<String>,
        default: SignedDuration,
    ) -> Result<SignedDuration, ConfigError> {
        let Some(text) = value else {
            return Ok(default);
        };
        let d = parse_duration(&text).ok_or_else(|| {
            self.invalid(
                key,
                format!("`{text}` is not a duration"),
                "write it like \"90s\", \"10m\", \"1h 30m\" or \"7d\"",
            )
        })?;
        if d <= SignedDuration::ZERO {
            return Err(self.invalid(
                key,
                format!("`{text}` is not positive"),
                "give a duration greater than zero",
            ));
        }
        Ok(d)
    }

    fn positive(&self, key: &str, value: Option<u32>, default: u32) -> Result<u32, ConfigError> {
        match value {
            Some(0) => Err(self.invalid(key, "0 is not allowed", "give a number of 1 or more")),
            Some(n) => Ok(n),
            None => Ok(default),
        }
    }

    /// A finite number greater than zero (thresholds, weights).
    fn weight(
        &self,
        key: &str,
        value: Option<f64>,
        default: f64,
        example: &str,
    ) -> Result<f64, ConfigError> {
        match value {
            None => Ok(default),
            Some(v) if v.is_finite() && v > 0.0 => Ok(v),
            Some(v) => Err(self.invalid(
                key,
                format!("{v} is not a positive number"),
                format!("give a number greater than zero, such as {example}"),
            )),
        }
    }

    /// A path that must be absolute: an empty or relative one would resolve against whatever
    /// directory the process starts in (under cron, the home directory).
    fn absolute(&self, key: &str, path: PathBuf, example: &str) -> Result<PathBuf, ConfigError> {
        if path.as_os_str().is_empty() {
            return Err(self.invalid(
                key,
                "is empty",
                format!("give an absolute path, such as \"{example}\""),
            ));
        }
        if !path.is_absolute() {
            return Err(self.invalid(
                key,
                format!(
                    "`{}` is relative, so it would depend on the directory portwarden starts in (under cron, the home directory)",
                    path.display()
                ),
                format!("give an absolute path, such as \"{example}\""),
            ));
        }
        Ok(path)
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let defaults = Config::default();
        Ok(Config {
            path: None,
            state_dir: match raw.state_dir {
                Some(dir) => self.absolute("state_dir", dir, DEFAULT_STATE_DIR)?,
                None => defaults.state_dir,
            },
            log: self.log(raw.log.unwrap_or_default())?,
            detect: self.detect(raw.detect.unwrap_or_default())?,
            ban: self.ban(raw.ban.unwrap_or_default())?,
            firewall: self.firewall(raw.firewall.unwrap_or_default())?,
            fastpath: self.fastpath(raw.fastpath.unwrap_or_default())?,
            sources: match raw.source {
                Some(list) => list
                    .into_iter()
                    .enumerate()
                    .map(|(i, s)| self.source(i, s))
                    .collect::<Result<_, _>>()?,
                None => defaults.sources,
            },
            metrics: self.metrics(raw.metrics.unwrap_or_default())?,
            fleet: raw
                .fleet
                .map(|f| f.validate())
                .transpose()
                .map_err(|(key, problem, fix)| self.invalid(key, problem, fix))?,
        })
    }

    fn metrics(&self, raw: RawMetrics) -> Result<MetricsConfig, ConfigError> {
        let allow_remote = raw.allow_remote.unwrap_or(false);
        let listen = match raw.listen {
            None => None,
            Some(text) => {
                let addr: std::net::SocketAddr = text.parse().map_err(|_| {
                    self.invalid(
                        "metrics.listen",
                        format!("`{text}` is not an address and port"),
                        "write it like \"127.0.0.1:9809\" or \"[::1]:9809\"",
                    )
                })?;
                if !addr.ip().is_loopback() && !allow_remote {
                    return Err(self.invalid(
                        "metrics.listen",
                        format!("`{text}` is not a loopback address: other hosts could read the metrics"),
                        "use \"127.0.0.1:9809\" (and a local scraper or a proxy), or set `allow_remote = true` under [metrics] to serve it to the network on purpose",
                    ));
                }
                Some(addr)
            }
        };
        let textfile = match raw.textfile {
            None => None,
            Some(path) => {
                if !path.is_absolute() {
                    return Err(self.invalid(
                        "metrics.textfile",
                        format!("`{}` is not an absolute path", path.display()),
                        "give the full path, such as \"/var/lib/prometheus/node-exporter/portwarden.prom\"",
                    ));
                }
                if path.extension().is_none_or(|e| e != "prom") {
                    return Err(self.invalid(
                        "metrics.textfile",
                        format!(
                            "`{}` does not end in .prom: node_exporter would not read it",
                            path.display()
                        ),
                        "name the file like \"/var/lib/prometheus/node-exporter/portwarden.prom\"",
                    ));
                }
                Some(path)
            }
        };
        Ok(MetricsConfig {
            listen,
            allow_remote,
            textfile,
        })
    }

    fn log(&self, raw: RawLog) -> Result<LogConfig, ConfigError> {
        let d = LogConfig::default();
        let written = match (raw.prefix, raw.prefixes) {
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    "log.prefix",
                    "both `prefix` and `prefixes` are set",
                    "keep one: `prefixes = [\"a\", \"b\"]` for several",
                ));
            }
            (Some(p), None) => Some(vec![p]),
            (None, Some(list)) => Some(list),
            (None, None) => None,
        };
        let prefixes = match written {
            // An empty string means "any netfilter record"; represent it as an empty list.
            Some(list) => list
                .iter()
                .filter(|p| !p.is_empty())
                .map(|p| LogPrefix::new(p).map_err(|e| self.invalid_value("log.prefix", e)))
                .collect::<Result<Vec<_>, _>>()?,
            None => d.prefixes,
        };
        Ok(LogConfig {
            prefixes,
            accept_untrusted: raw.accept_untrusted.unwrap_or(d.accept_untrusted),
        })
    }

    fn detect(&self, raw: RawDetect) -> Result<DetectConfig, ConfigError> {
        let d = DetectConfig::default();
        let mut served_ports = Vec::new();
        for s in raw.served_ports.unwrap_or_default() {
            served_ports.push(parse_served_port(&s).ok_or_else(|| {
                self.invalid(
                    "detect.served_ports",
                    format!("`{s}` is not a port"),
                    "write ports like \"tcp/22\", \"udp/53\" or \"443\" (tcp)",
                )
            })?);
        }
        let threshold = self.weight(
            "detect.sequential_threshold",
            raw.sequential_threshold,
            d.sequential_threshold,
            "6.0",
        )?;
        let stealth_weight = self.weight(
            "detect.stealth_weight",
            raw.stealth_weight,
            d.stealth_weight,
            "2.0",
        )?;
        // Zero is allowed here: a packet that looks like one of this host's own past
        // connections may carry no evidence at all.
        let stray_weight = match raw.stray_weight {
            Some(0.0) => 0.0,
            other => self.weight("detect.stray_weight", other, d.stray_weight, "0.5")?,
        };
        let window = self.duration("detect.window", raw.window, d.window)?;
        let slow_gap = self.duration("detect.slow_gap", raw.slow_gap, d.slow_gap)?;
        if slow_gap < window {
            return Err(self.invalid(
                "detect.slow_gap",
                "is shorter than detect.window",
                "make slow_gap at least as long as window (default 30m and 60s)",
            ));
        }
        let slow_window = self.duration("detect.slow_window", raw.slow_window, d.slow_window)?;
        if slow_window < window {
            return Err(self.invalid(
                "detect.slow_window",
                "is shorter than detect.window",
                "make slow_window at least as long as window (default 2h and 60s)",
            ));
        }
        let long_window = self.duration("detect.long_window", raw.long_window, d.long_window)?;
        if long_window < slow_gap {
            return Err(self.invalid(
                "detect.long_window",
                "is shorter than detect.slow_gap",
                "make long_window at least as long as slow_gap (default 24h and 30m)",
            ));
        }
        let long_failures = raw.long_failures.unwrap_or(d.long_failures);
        if long_failures as usize > crate::detect::LONG_CAPACITY {
            return Err(self.invalid(
                "detect.long_failures",
                format!("{long_failures} is more than the long table keeps per source"),
                format!(
                    "give at most {} (0 turns the rule off)",
                    crate::detect::LONG_CAPACITY
                ),
            ));
        }
        Ok(DetectConfig {
            window,
            fast_failures: self.positive(
                "detect.fast_failures",
                raw.fast_failures,
                d.fast_failures,
            )?,
            slow_gap,
            slow_window,
            slow_failures: self.positive(
                "detect.slow_failures",
                raw.slow_failures,
                d.slow_failures,
            )?,
            sequential_threshold: threshold,
            sweep_destinations: self.positive(
                "detect.sweep_destinations",
                raw.sweep_destinations,
                d.sweep_destinations,
            )?,
            stealth_weight,
            stray_weight,
            max_sources: self.positive(
                "detect.max_sources",
                raw.max_sources.map(|n| n.min(u32::MAX as usize) as u32),
                d.max_sources as u32,
            )? as usize,
            max_probes_per_source: self.positive(
                "detect.max_probes_per_source",
                raw.max_probes_per_source
                    .map(|n| n.min(u32::MAX as usize) as u32),
                d.max_probes_per_source as u32,
            )? as usize,
            served_ports,
            served_ports_from_proc: raw
                .served_ports_from_proc
                .unwrap_or(d.served_ports_from_proc),
            forwarded: raw.forwarded.unwrap_or(d.forwarded),
            long_window,
            long_failures,
        })
    }

    fn ban(&self, raw: RawBan) -> Result<BanConfig, ConfigError> {
        let d = BanConfig::default();
        let mut allowlist = Vec::new();
        for s in raw.allowlist.unwrap_or_default() {
            allowlist.push(parse_net(&s).ok_or_else(|| {
                self.invalid(
                    "ban.allowlist",
                    format!("`{s}` is not an address or CIDR prefix"),
                    "write entries like \"192.0.2.7\", \"198.51.100.0/24\" or \"2001:db8::/32\"",
                )
            })?);
        }
        let prefix_len_v4 = raw.prefix_len_v4.unwrap_or(d.prefix_len_v4);
        if !(8..=32).contains(&prefix_len_v4) {
            return Err(self.invalid(
                "ban.prefix_len_v4",
                format!("{prefix_len_v4} is out of range"),
                "give a prefix length between 8 and 32",
            ));
        }
        let prefix_len_v6 = raw.prefix_len_v6.unwrap_or(d.prefix_len_v6);
        if !(16..=128).contains(&prefix_len_v6) {
            return Err(self.invalid(
                "ban.prefix_len_v6",
                format!("{prefix_len_v6} is out of range"),
                "give a prefix length between 16 and 128",
            ));
        }
        let duration = self.duration("ban.duration", raw.duration, d.duration)?;
        let max_duration = self.duration("ban.max_duration", raw.max_duration, d.max_duration)?;
        if max_duration < duration {
            return Err(self.invalid(
                "ban.max_duration",
                "is shorter than ban.duration",
                "make max_duration at least as long as duration",
            ));
        }
        Ok(BanConfig {
            allowlist,
            allowlist_host: raw.allowlist_host.unwrap_or(d.allowlist_host),
            duration,
            escalation_factor: self.positive(
                "ban.escalation_factor",
                raw.escalation_factor,
                d.escalation_factor,
            )?,
            max_duration,
            permanent_after: raw.permanent_after.unwrap_or(d.permanent_after),
            offence_memory: self.duration(
                "ban.offence_memory",
                raw.offence_memory,
                d.offence_memory,
            )?,
            prefix_sources: raw.prefix_sources.unwrap_or(d.prefix_sources),
            prefix_window: self.duration(
                "ban.prefix_window",
                raw.prefix_window,
                d.prefix_window,
            )?,
            prefix_len_v4,
            prefix_len_v6,
            max_bans_per_minute: self.positive(
                "ban.max_bans_per_minute",
                raw.max_bans_per_minute,
                d.max_bans_per_minute,
            )?,
            dry_run: raw.dry_run.unwrap_or(d.dry_run),
        })
    }

    fn firewall(&self, raw: RawFirewall) -> Result<FirewallConfig, ConfigError> {
        let d = FirewallConfig::default();
        let family = match raw.family {
            Some(f) => f
                .parse::<NftFamily>()
                .map_err(|e| self.invalid_value("firewall.family", e))?,
            None => d.family,
        };
        let name = |key: &str, raw: String| -> Result<NftName, ConfigError> {
            NftName::new(&raw).map_err(|e| self.invalid_value(key, e))
        };
        let table = match raw.table {
            Some(t) => name("firewall.table", t)?,
            None => d.table,
        };
        let set4 = match raw.set4 {
            Some(s) => name("firewall.set4", s)?,
            None => d.set4,
        };
        let set6 = match raw.set6 {
            Some(s) if s.is_empty() => None,
            Some(s) => Some(name("firewall.set6", s)?),
            None if family == NftFamily::Ip => None,
            None => d.set6,
        };
        Ok(FirewallConfig {
            nft: raw.nft.unwrap_or(d.nft),
            family,
            manage_table: raw.manage_table.unwrap_or(table == "portwarden"),
            table,
            set4,
            set6,
            forward: raw.forward.unwrap_or(d.forward),
            log_rate_per_second: self.positive(
                "firewall.log_rate_per_second",
                raw.log_rate_per_second,
                d.log_rate_per_second,
            )?,
        })
    }

    fn fastpath(&self, raw: RawFastpath) -> Result<FastpathConfig, ConfigError> {
        let d = FastpathConfig::default();
        Ok(FastpathConfig {
            enabled: raw.enabled.unwrap_or(d.enabled),
            log_prefix: match raw.log_prefix {
                Some(p) => {
                    LogPrefix::new(&p).map_err(|e| self.invalid_value("fastpath.log_prefix", e))?
                }
                None => d.log_prefix,
            },
            max_bans: self.positive("fastpath.max_bans", raw.max_bans, d.max_bans)?,
            max_sources: self.positive("fastpath.max_sources", raw.max_sources, d.max_sources)?,
            max_probes: self.positive("fastpath.max_probes", raw.max_probes, d.max_probes)?,
        })
    }

    fn source(&self, index: usize, raw: RawSource) -> Result<SourceConfig, ConfigError> {
        let key = |field: &str| format!("source[{index}].{field}");
        match raw.kind.as_str() {
            "kmsg" => Ok(SourceConfig::Kmsg {
                path: match raw.path {
                    Some(p) => self.absolute(&key("path"), p, "/dev/kmsg")?,
                    None => PathBuf::from("/dev/kmsg"),
                },
            }),
            "journal" => Ok(SourceConfig::Journal {
                journalctl: raw
                    .journalctl
                    .unwrap_or_else(|| PathBuf::from("journalctl")),
                args: raw.args.unwrap_or_default(),
            }),
            "file" => Ok(SourceConfig::File {
                path: self.absolute(
                    &key("path"),
                    raw.path.ok_or_else(|| {
                        self.invalid(
                            &key("path"),
                            "a file source needs a path",
                            "add `path = \"/var/log/kern.log\"`",
                        )
                    })?,
                    "/var/log/kern.log",
                )?,
            }),
            other => Err(self.invalid(
                &key("kind"),
                format!("`{other}` is not a source kind"),
                "use \"kmsg\", \"journal\" or \"file\"",
            )),
        }
    }
}

/// `90s`, `1h 30m`, or with days and weeks taken as 24 h and 7 d (`7d`, `2w`).
pub fn parse_duration(text: &str) -> Option<SignedDuration> {
    let text = text.trim();
    text.parse::<SignedDuration>().ok().or_else(|| {
        text.parse::<jiff::Span>()
            .ok()?
            .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
            .ok()
    })
}

/// `tcp/22`, `udp/53`, or a bare `443` (TCP).
pub fn parse_served_port(s: &str) -> Option<(Proto, u16)> {
    let (proto, port) = match s.split_once('/') {
        Some(("tcp", p)) => (Proto::Tcp, p),
        Some(("udp", p)) => (Proto::Udp, p),
        Some(("sctp", p)) => (Proto::Sctp, p),
        Some(_) => return None,
        None => (Proto::Tcp, s),
    };
    port.parse().ok().map(|p| (proto, p))
}

/// An address (as a host prefix) or a CIDR prefix; the host bits of a prefix must be zero.
pub fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<std::net::IpAddr>() {
        return Some(IpNet::from(addr));
    }
    let net: IpNet = s.parse().ok()?;
    (net.trunc() == net).then_some(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("/etc/portwarden/portwarden.toml"))
    }

    #[test]
    fn the_documented_example_is_the_defaults() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/portwarden.example.toml"
        ));
        let mut example = Config::from_file(path).unwrap();
        example.path = None;
        assert_eq!(example, Config::default());
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(load("").unwrap(), Config::default());
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load("[detect]\nwindw = \"60s\"\n").unwrap_err().to_string();
        assert!(
            err.contains("portwarden.toml") && err.contains("windw"),
            "{err}"
        );
    }

    #[test]
    fn bad_duration_names_file_key_and_fix() {
        let err = load("[ban]\nduration = \"forever\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("portwarden.toml"), "{err}");
        assert!(err.contains("ban.duration"), "{err}");
        assert!(err.contains("\"10m\""), "{err}");
    }

    #[test]
    fn values_are_typed() {
        let c = load(
            r#"
state_dir = "/tmp/pw"
[log]
prefix = "SYN_SCAN_ATTEMPT--"
[detect]
window = "2m"
served_ports = ["tcp/22", "udp/53", "443"]
[ban]
allowlist = ["192.0.2.7", "2001:db8::/32"]
duration = "1h 30m"
prefix_window = "2h"
[firewall]
family = "ip"
table = "filter"
set4 = "blocked_ips"
[[source]]
kind = "file"
path = "/var/log/kern.log"
"#,
        )
        .unwrap();
        assert_eq!(c.log.prefixes, vec!["SYN_SCAN_ATTEMPT--"]);
        assert_eq!(c.detect.window, SignedDuration::from_secs(120));
        assert_eq!(
            c.detect.served_ports,
            vec![(Proto::Tcp, 22), (Proto::Udp, 53), (Proto::Tcp, 443)]
        );
        assert_eq!(c.ban.allowlist.len(), 2);
        assert_eq!(c.ban.duration, SignedDuration::from_secs(5400));
        assert_eq!(c.ban.prefix_window, SignedDuration::from_hours(2));
        assert!(!c.firewall.manage_table);
        assert_eq!(c.firewall.set6, None);
        assert_eq!(
            c.sources,
            vec![SourceConfig::File {
                path: "/var/log/kern.log".into()
            }]
        );
    }

    #[test]
    fn rejects_bad_values() {
        for (text, key) in [
            ("[ban]\nallowlist = [\"10.0.0.1/8\"]", "ban.allowlist"),
            ("[ban]\nallowlist = [\"nonsense\"]", "ban.allowlist"),
            ("[firewall]\ntable = \"x; flush ruleset\"", "firewall.table"),
            ("[log]\nprefix = \"a\\\"b\"", "log.prefix"),
            ("[log]\nprefixes = [\"ok: \", \"cost$5\"]", "log.prefix"),
            ("[log]\nprefix = \"é: \"", "log.prefix"),
            ("[firewall]\nfamily = \"bridge\"", "firewall.family"),
            ("[firewall]\nset4 = \"4banned\"", "firewall.set4"),
            ("[firewall]\nset6 = \"a.b\"", "firewall.set6"),
            ("[detect]\nfast_failures = 0", "detect.fast_failures"),
            ("[detect]\nstealth_weight = -1.0", "detect.stealth_weight"),
            ("[detect]\nstray_weight = nan", "detect.stray_weight"),
            (
                "[detect]\nsequential_threshold = 0.0",
                "detect.sequential_threshold",
            ),
            ("[detect]\nslow_gap = \"10s\"", "detect.slow_gap"),
            ("[detect]\nslow_window = \"30s\"", "detect.slow_window"),
            ("[detect]\nmax_sources = 0", "detect.max_sources"),
            (
                "[detect]\nserved_ports = [\"tcp/http\"]",
                "detect.served_ports",
            ),
            ("[[source]]\nkind = \"tcp\"", "source[0].kind"),
            ("[[source]]\nkind = \"file\"", "source[0].path"),
        ] {
            let err = load(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn nftables_values_are_typed_and_errors_name_file_key_and_fix() {
        let c = load("[firewall]\nfamily = \"ip6\"\ntable = \"f2b-table\"\nset6 = \"addr6-set\"\n")
            .unwrap();
        assert_eq!(c.firewall.family, NftFamily::Ip6);
        assert_eq!(c.firewall.table, "f2b-table");
        assert_eq!(
            c.firewall.set6.as_ref().map(NftName::as_str),
            Some("addr6-set")
        );
        let err = load("[firewall]\ntable = \"x; flush ruleset\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/etc/portwarden/portwarden.toml: "),
            "{err}"
        );
        assert!(err.contains("key `firewall.table`"), "{err}");
        assert!(err.contains("starting with a letter"), "{err}");
        let err = load(&format!("[log]\nprefix = \"{}\"\n", "x".repeat(128)))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("key `log.prefix`") && err.contains("shorten it"),
            "{err}"
        );
    }

    #[test]
    fn empty_prefix_means_any_record() {
        assert!(
            load("[log]\nprefix = \"\"")
                .unwrap()
                .log
                .prefixes
                .is_empty()
        );
    }

    /// An empty or relative path would resolve against the directory the run starts in (under
    /// cron, the home directory: `state_dir = ""` wrote `state.db` there). Each is refused
    /// with the file, the key and the fix.
    #[test]
    fn paths_must_be_absolute() {
        let cases = [
            ("state_dir = \"\"\n", "state_dir", "is empty"),
            (
                "state_dir = \"var/lib/pw\"\n",
                "state_dir",
                "`var/lib/pw` is relative",
            ),
            (
                "[[source]]\nkind = \"file\"\npath = \"kern.log\"\n",
                "source[0].path",
                "`kern.log` is relative",
            ),
            (
                "[[source]]\nkind = \"file\"\npath = \"/var/log/kern.log\"\n[[source]]\nkind = \"file\"\npath = \"\"\n",
                "source[1].path",
                "is empty",
            ),
            (
                "[[source]]\nkind = \"kmsg\"\npath = \"dev/kmsg\"\n",
                "source[0].path",
                "relative",
            ),
        ];
        for (text, key, problem) in cases {
            let err = load(text).unwrap_err();
            let shown = err.to_string();
            assert!(
                matches!(&err, ConfigError::Invalid { key: k, .. } if k == key),
                "{text}: {shown}"
            );
            assert!(
                shown.starts_with("/etc/portwarden/portwarden.toml: key `")
                    && shown.contains(problem)
                    && shown.contains("give an absolute path"),
                "{text}: {shown}"
            );
        }
        let ok = load(
            "state_dir = \"/srv/pw\"\n[[source]]\nkind = \"file\"\npath = \"/var/log/kern.log\"\n",
        )
        .unwrap();
        assert_eq!(ok.state_dir, Path::new("/srv/pw"));
    }

    #[test]
    fn metrics_keys_are_validated_with_the_key_and_the_fix() {
        let ok = load(
            "[metrics]\nlisten = \"127.0.0.1:9809\"\ntextfile = \"/var/lib/prometheus/node-exporter/portwarden.prom\"\n",
        )
        .unwrap();
        assert_eq!(ok.metrics.listen, Some("127.0.0.1:9809".parse().unwrap()));
        assert!(load("[metrics]\nlisten = \"[::1]:9809\"\n").is_ok());
        assert!(
            load("[metrics]\nlisten = \"0.0.0.0:9809\"\nallow_remote = true\n").is_ok(),
            "an explicit opt-in serves the network"
        );
        let cases: &[(&str, &str, &str)] = &[
            (
                "[metrics]\nlisten = \"0.0.0.0:9809\"\n",
                "metrics.listen",
                "allow_remote = true",
            ),
            (
                "[metrics]\nlisten = \"192.0.2.1:9809\"\n",
                "metrics.listen",
                "not a loopback",
            ),
            (
                "[metrics]\nlisten = \"localhost\"\n",
                "metrics.listen",
                "127.0.0.1:9809",
            ),
            (
                "[metrics]\ntextfile = \"portwarden.prom\"\n",
                "metrics.textfile",
                "full path",
            ),
            (
                "[metrics]\ntextfile = \"/tmp/portwarden.txt\"\n",
                "metrics.textfile",
                ".prom",
            ),
            ("[metrics]\nport = 9809\n", "port", "unknown field"),
        ];
        for (text, key, hint) in cases {
            let err = load(text).unwrap_err().to_string();
            assert!(err.contains("/etc/portwarden/portwarden.toml"), "{err}");
            assert!(err.contains(key) && err.contains(hint), "{text}: {err}");
        }
    }
}
