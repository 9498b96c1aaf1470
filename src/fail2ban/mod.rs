//! The alternative method: the same job done by Fail2Ban 1.0+, generated from portwarden's config.
//!
//! In: the validated [`Config`] (LOG prefix, ban durations, firewall names) and the operator's
//! choices ([`Options`]: action, backend, prefix). Family, names and prefix arrive as
//! [`NftFamily`], [`NftName`] and [`LogPrefix`], validated once where they were read (config
//! file, `--prefix`); nothing here checks them again. Out: [`GeneratedFile`]s, each a path relative
//! to Fail2Ban's config directory and its contents; [`install`] writes them without clobbering
//! an operator's edits.
//!
//! Why it looks like this:
//! - The filter is anchored. Fail2Ban counts lines that match, so anyone who can get text into
//!   the log could otherwise get any address banned. After the date (cut by Fail2Ban, which must
//!   find it at the start of the line: `datepattern = {^LN-BEG}`) the line must be `HOST kernel:`
//!   (the kernel never has a `[pid]`), an optional printk stamp `[  635.715659]`, the LOG prefix
//!   itself, then only `KEY=VALUE ` pairs up to `SRC=<ADDR> DST=`. Free text before `SRC=` (a
//!   message that merely contains the prefix) does not match. `<ADDR>` accepts the kernel's fully
//!   expanded IPv6 (`fd00:0250:0000:...`); Fail2Ban bans the normalised form (`fd00:250::2`).
//! - A regex cannot tell `logger -t kernel` from the kernel in `/var/log/syslog`; rsyslog files
//!   user-space messages under facility `user`, so `/var/log/kern.log` (or the journal with
//!   `_TRANSPORT=kernel`) is the only trustworthy input. The jail reads one of those.
//! - The prefix is escaped with `\xHH` rather than `\`: Fail2Ban's config parser strips trailing
//!   spaces (the default prefix ends in one), treats `%` as interpolation and `<...>` as tags.
//! - Ban durations come from `[ban]`: first ban `duration`, repeat offenders multiplied by
//!   `escalation_factor` up to `max_duration` (`bantime.multipliers`).
//! - The `portwarden` action adds to the kernel sets `banned4`/`banned6` of `portwarden setup`
//!   with a timeout, so both methods share one table and a ban outlives a dead Fail2Ban by no
//!   more than its duration.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::{Config, LogPrefix, NftFamily, NftName};

/// Path of the filter, relative to Fail2Ban's config directory.
pub const FILTER_PATH: &str = "filter.d/portwarden.conf";
/// Path of the jail.
pub const JAIL_PATH: &str = "jail.d/portwarden.conf";
/// Path of the action that feeds portwarden's own sets.
pub const ACTION_PATH: &str = "action.d/portwarden-nftables.conf";
/// The jail's (and the filter's) name.
pub const JAIL_NAME: &str = "portwarden";
/// Where rsyslog writes kernel-facility messages on Debian and Ubuntu.
pub const DEFAULT_KERN_LOG: &str = "/var/log/kern.log";

/// What can go wrong while generating or installing the files.
#[derive(Debug, thiserror::Error)]
pub enum Fail2banError {
    #[error("nft path {0:?} must be a plain program name or an absolute path without spaces")]
    BadNftPath(PathBuf),
    #[error(
        "table `{family} {table}` has no IPv6 set (firewall.set6): use --action nftables-allports or configure one"
    )]
    NoIpv6Set { family: NftFamily, table: NftName },
    #[error("log path {0:?} must be absolute and free of spaces and newlines")]
    BadLogPath(PathBuf),
    #[error(
        "{path} exists and differs from what portwarden would write (changed by hand?); not overwriting. Compare with `portwarden fail2ban print`, or pass --force to replace it"
    )]
    Changed { path: PathBuf },
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// How the jail bans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BanAction {
    /// Fail2Ban's own `nftables-allports` (its own table `inet f2b-table`).
    NftablesAllports,
    /// `action.d/portwarden-nftables.conf`: portwarden's `banned4`/`banned6` sets, with a timeout.
    Portwarden,
}

/// Where the jail reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// A log file written by rsyslog (`/var/log/kern.log`).
    File,
    /// The journal, kernel transport only.
    Systemd,
}

/// The operator's choices, beside the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub action: BanAction,
    pub backend: Backend,
    /// The LOG prefix to match; `None`: the config's first `[log] prefixes`, else the default.
    pub prefix: Option<LogPrefix>,
    /// The file the jail reads with the `file` backend.
    pub logpath: PathBuf,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            action: BanAction::NftablesAllports,
            backend: Backend::File,
            prefix: None,
            logpath: PathBuf::from(DEFAULT_KERN_LOG),
        }
    }
}

/// One file to write: where (relative to Fail2Ban's config directory) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    pub path: &'static str,
    pub contents: String,
}

/// What [`install`] did with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallOutcome {
    Created,
    Unchanged,
    /// It differed and `--force` replaced it.
    Replaced,
}

/// The prefix the filter matches: `--prefix`, else the config's first, else the default.
pub fn effective_prefix(config: &Config, options: &Options) -> LogPrefix {
    options
        .prefix
        .clone()
        .or_else(|| config.log.prefixes.first().cloned())
        .unwrap_or_default()
}

/// Escapes a LOG prefix for a Fail2Ban regex: letters, digits and `_ : -` stay, every other
/// character becomes `\xHH`, which survives Fail2Ban's config parser (trailing-space stripping,
/// `%` interpolation, `<tag>` substitution, `#`/`;` comments) and means the literal character.
/// A [`LogPrefix`] is printable ASCII, so every character fits in two hex digits.
pub fn escape_prefix(prefix: &LogPrefix) -> String {
    let mut out = String::with_capacity(prefix.len() * 2);
    for c in prefix.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-') {
            out.push(c);
        } else {
            // Infallible: writing to a String.
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
    }
    out
}

/// `filter.d/portwarden.conf`.
pub fn filter(prefix: &LogPrefix) -> GeneratedFile {
    let escaped = escape_prefix(prefix);
    let prefix = prefix.as_str();
    let contents = format!(
        r#"# Fail2Ban filter for portwarden's netfilter LOG records (written by `portwarden fail2ban`).
#
# Matches ONLY kernel records carrying the LOG prefix {prefix:?}, e.g.
#   2026-11-24T23:06:53.947768+00:00 vm kernel: [  635.715659] portwarden: IN=vt OUT= MAC=... SRC=10.250.0.2 DST=10.250.0.1 ... PROTO=TCP SPT=44285 DPT=110 ... SYN URGP=0
#   Nov 24 23:06:53 vm kernel: portwarden: IN=vt ... SRC=fd00:0250:0000:0000:0000:0000:0000:0002 DST=...
#
# Anchored on purpose: the date must open the line, then "HOST kernel:" (the kernel has no [pid]),
# an optional printk stamp, the prefix, and only KEY=VALUE pairs up to SRC=. A user-space program
# that writes the prefix into its own message, or text before SRC=, does not match.
#
# A regex cannot tell `logger -t kernel` from the kernel in /var/log/syslog: read /var/log/kern.log
# (rsyslog files user-space messages as facility user, never kern) or the journal restricted to
# _TRANSPORT=kernel (see journalmatch). Never point this filter at /var/log/syslog or messages.

[Definition]

# The LOG prefix, every non-alphanumeric character as \xHH (a trailing space would be stripped).
_prefix = {escaped}

# printk time, "[  635.715659] ", present in rsyslog's imklog output and Fail2Ban's journal lines.
_printk = (?:\[\s*\d+\.\d+\]\x20)?

# The kernel's KEY=VALUE list before SRC=: inbound records only (IN= set, OUT= empty: this
# host's own outgoing packets and forwarded ones are not probes of it), then MAC= and the like:
# upper-case keys, no spaces in values.
_body = IN=\S+\x20OUT=\x20(?:[A-Z]+=\S*\x20)*?

failregex = ^\s*\S+\x20kernel:\x20%(_printk)s%(_prefix)s%(_body)sSRC=<ADDR>\x20DST=\S+\x20

ignoreregex =

# The date must open the line; a date elsewhere in the line is text, not a time stamp.
datepattern = {{^LN-BEG}}

# backend = systemd: only records the kernel itself wrote.
journalmatch = _TRANSPORT=kernel
"#
    );
    GeneratedFile {
        path: FILTER_PATH,
        contents,
    }
}

/// `action.d/portwarden-nftables.conf`: ban into portwarden's own sets.
pub fn action(config: &Config) -> Result<GeneratedFile, Fail2banError> {
    let fw = &config.firewall;
    let set6 = fw.set6.as_ref().ok_or_else(|| Fail2banError::NoIpv6Set {
        family: fw.family,
        table: fw.table.clone(),
    })?;
    let nft = fw.nft.to_string_lossy();
    let nft_ok = !nft.is_empty()
        && (fw.nft.is_absolute() || !nft.contains('/'))
        && nft
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '.'));
    if !nft_ok {
        return Err(Fail2banError::BadNftPath(fw.nft.clone()));
    }
    let (family, table, set4) = (&fw.family, &fw.table, &fw.set4);
    let contents = format!(
        r#"# Fail2Ban action: ban into portwarden's nftables sets (written by `portwarden fail2ban`).
#
# The table `{family} {table}` with sets {set4} (ipv4_addr) and {set6} (ipv6_addr), both
# `flags timeout`, and the rules that drop their members are made by `portwarden setup`; this
# action only adds and removes elements, so Fail2Ban and portwarden share one firewall table.
#
# Every element carries a kernel timeout of the ticket's ban time (`<bantime>`, already
# increased by bantime.increment): the kernel lifts the ban even if Fail2Ban dies. When Fail2Ban
# unbans, the element may already have expired; unban then only deletes what is still there, and
# the delete's own errors stay visible in Fail2Ban's log. A permanent ban (bantime = -1) cannot be
# expressed as a timeout: keep bantime.maxtime finite.

[Definition]

actionstart =
actionstop =
actionflush = <nftables> flush set <table_family> <table> <addr_set>

# Fails (and Fail2Ban says so) when `portwarden setup` has not made the set.
actioncheck = <nftables> list set <table_family> <table> <addr_set> > /dev/null

actionban = <nftables> add element <table_family> <table> <addr_set> \{{ <ip> timeout <bantime>s \}}

actionunban = if <nftables> get element <table_family> <table> <addr_set> \{{ <ip> \}} > /dev/null 2>&1; then
                <nftables> delete element <table_family> <table> <addr_set> \{{ <ip> \}}
              fi

[Init]

nftables = {nft}
table_family = {family}
table = {table}
addr_set = {set4}

[Init?family=inet6]

addr_set = {set6}
"#
    );
    Ok(GeneratedFile {
        path: ACTION_PATH,
        contents,
    })
}

/// The multipliers of `bantime.multipliers`: 1, f, f², … while below `max / first`, then the cap.
fn multipliers(first_secs: i64, factor: u32, max_secs: i64) -> Vec<i64> {
    let first = first_secs.max(1);
    let cap = (max_secs / first).max(1);
    let factor = i64::from(factor.max(1));
    let mut out = vec![1];
    let mut m: i64 = 1;
    while factor > 1 && out.len() < 20 {
        m = m.saturating_mul(factor);
        if m >= cap {
            out.push(cap);
            break;
        }
        out.push(m);
    }
    out.dedup();
    out
}

/// `jail.d/portwarden.conf`.
pub fn jail(config: &Config, options: &Options) -> Result<GeneratedFile, Fail2banError> {
    let ban = &config.ban;
    let bantime = ban.duration.as_secs().max(1);
    let maxtime = ban.max_duration.as_secs().max(bantime);
    let mults = multipliers(bantime, ban.escalation_factor, maxtime)
        .iter()
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let source = match options.backend {
        Backend::File => {
            let lp = options.logpath.to_string_lossy();
            if !options.logpath.is_absolute()
                || lp.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(Fail2banError::BadLogPath(options.logpath.clone()));
            }
            format!(
                "# kern.log: rsyslog writes only the kernel's own messages here (user-space \"kern\"\n\
                 # messages are filed as facility user). Never /var/log/syslog: `logger -t kernel`\n\
                 # writes lines there that no regex can tell from the kernel's.\n\
                 backend = auto\n\
                 logpath = {lp}\n"
            )
        }
        Backend::Systemd => {
            "# The journal, restricted by the filter's journalmatch to _TRANSPORT=kernel.\n\
             backend = systemd\n"
                .to_string()
        }
    };
    let action = match options.action {
        BanAction::NftablesAllports => {
            "# Fail2Ban's own table `inet f2b-table`, set addr-set-portwarden / addr6-set-portwarden;\n\
             # drop (not reject) so that the scanner learns nothing, for TCP and UDP alike.\n\
             action = nftables-allports[name=portwarden, protocol=\"tcp,udp\", blocktype=drop]\n"
        }
        BanAction::Portwarden => {
            "# portwarden's own sets (made by `portwarden setup`), elements with a kernel timeout.\n\
             action = portwarden-nftables\n"
        }
    };
    let contents = format!(
        r#"# Fail2Ban jail for port scans seen in portwarden's netfilter LOG records
# (written by `portwarden fail2ban`; edit freely, `portwarden fail2ban install` will not
# overwrite your changes without --force). Reload with `fail2ban-client reload`.
#
# Fail2Ban counts matching LINES per address. Log only what a scan does and a client does not:
# new connections to ports this host does not serve (docs/fail2ban.md gives the nftables rule),
# otherwise a busy client of an open port is banned like a scanner.

[{JAIL_NAME}]
enabled = true
filter = {JAIL_NAME}
{source}
# 10 lines within 60 s, as in the seed lab: a 12-port nmap scan logs 12 lines within a second,
# while one client retrying one connection to a silent port sends at most 6 SYNs in 60 s
# (Linux: 0, 1, 3, 7, 15, 31 s). A slow scan (nmap -T1, one probe per 15 s) stays below it;
# catching that needs portwarden's session rule, which Fail2Ban cannot express.
maxretry = 10
findtime = 60

# First ban {bantime} s (portwarden's [ban] duration); repeat offenders are multiplied by
# [ban] escalation_factor = {factor} each time, up to [ban] max_duration = {maxtime} s. Finite on
# purpose: a spoofed source must not be locked out for ever.
bantime = {bantime}
bantime.increment = true
bantime.multipliers = {mults}
bantime.maxtime = {maxtime}

{action}"#,
        factor = ban.escalation_factor,
    );
    Ok(GeneratedFile {
        path: JAIL_PATH,
        contents,
    })
}

/// Every file for these options: filter, jail, and the action when the jail uses it.
pub fn files(config: &Config, options: &Options) -> Result<Vec<GeneratedFile>, Fail2banError> {
    let mut out = vec![
        filter(&effective_prefix(config, options)),
        jail(config, options)?,
    ];
    if options.action == BanAction::Portwarden {
        out.push(action(config)?);
    }
    Ok(out)
}

/// Writes `files` under `dir`, creating the subdirectories. A file that exists with other
/// contents is refused (all files are checked before any is written) unless `force`.
pub fn install(
    dir: &Path,
    files: &[GeneratedFile],
    force: bool,
) -> Result<Vec<(PathBuf, InstallOutcome)>, Fail2banError> {
    let mut plan = Vec::with_capacity(files.len());
    for f in files {
        let path = dir.join(f.path);
        let outcome = match std::fs::read(&path) {
            Ok(old) if old == f.contents.as_bytes() => InstallOutcome::Unchanged,
            Ok(_) if force => InstallOutcome::Replaced,
            Ok(_) => return Err(Fail2banError::Changed { path }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => InstallOutcome::Created,
            Err(source) => {
                return Err(Fail2banError::Io {
                    what: "read",
                    path,
                    source,
                });
            }
        };
        plan.push((path, outcome, f));
    }
    let mut done = Vec::with_capacity(plan.len());
    for (path, outcome, f) in plan {
        if outcome != InstallOutcome::Unchanged {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| Fail2banError::Io {
                    what: "create directory",
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            // Write beside it and rename, so that Fail2Ban never reads half a file.
            let tmp = path.with_extension("conf.portwarden-tmp");
            std::fs::write(&tmp, &f.contents).map_err(|source| Fail2banError::Io {
                what: "write",
                path: tmp.clone(),
                source,
            })?;
            std::fs::rename(&tmp, &path).map_err(|source| Fail2banError::Io {
                what: "rename into place",
                path: path.clone(),
                source,
            })?;
        }
        done.push((path, outcome));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_PREFIX;
    use jiff::SignedDuration;

    fn prefix(p: &str) -> LogPrefix {
        LogPrefix::new(p).unwrap()
    }

    fn opts(action: BanAction, backend: Backend) -> Options {
        Options {
            action,
            backend,
            ..Options::default()
        }
    }

    #[test]
    fn escape_keeps_plain_characters_and_hex_escapes_the_rest() {
        let cases = [
            ("portwarden: ", "portwarden:\\x20"),
            ("SYN_SCAN_ATTEMPT--", "SYN_SCAN_ATTEMPT--"),
            ("[UFW BLOCK] ", "\\x5bUFW\\x20BLOCK\\x5d\\x20"),
            ("a%b<c>.*", "a\\x25b\\x3cc\\x3e\\x2e\\x2a"),
        ];
        for (raw, want) in cases {
            assert_eq!(escape_prefix(&prefix(raw)), want, "{raw:?}");
        }
    }

    #[test]
    fn escape_rejects_what_the_kernel_would_not_log() {
        // Refused where the prefix is read (config, `--prefix`): no `LogPrefix` holds them.
        for bad in ["", "tab\there", "new\nline", "é: ", &"x".repeat(128)] {
            assert!(LogPrefix::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn filter_is_anchored_and_has_no_dot_star() {
        let f = filter(&prefix("portwarden: "));
        assert_eq!(f.path, FILTER_PATH);
        let failregex = f
            .contents
            .lines()
            .find(|l| l.starts_with("failregex"))
            .unwrap();
        assert!(
            failregex.contains("= ^\\s*\\S+\\x20kernel:\\x20"),
            "{failregex}"
        );
        assert!(!failregex.contains(".*"), "{failregex}");
        assert!(f.contents.contains("_prefix = portwarden:\\x20\n"));
        assert!(f.contents.contains("journalmatch = _TRANSPORT=kernel\n"));
        assert!(f.contents.contains("datepattern = {^LN-BEG}\n"));
    }

    #[test]
    fn prefix_comes_from_flag_then_config_then_default() {
        let mut config = Config::default();
        let mut o = Options::default();
        assert_eq!(effective_prefix(&config, &o), "portwarden: ");
        config.log.prefixes = vec![prefix("[UFW BLOCK] "), prefix("x")];
        assert_eq!(effective_prefix(&config, &o), "[UFW BLOCK] ");
        config.log.prefixes.clear();
        assert_eq!(effective_prefix(&config, &o), DEFAULT_PREFIX);
        o.prefix = Some(prefix("SYN_SCAN_ATTEMPT--"));
        assert_eq!(effective_prefix(&config, &o), "SYN_SCAN_ATTEMPT--");
    }

    #[test]
    fn jail_follows_backend_action_and_ban_config() {
        let config = Config::default();
        let j = jail(&config, &opts(BanAction::NftablesAllports, Backend::File)).unwrap();
        assert_eq!(j.path, JAIL_PATH);
        for want in [
            "[portwarden]\n",
            "logpath = /var/log/kern.log\n",
            "backend = auto\n",
            "maxretry = 10\n",
            "findtime = 60\n",
            "bantime = 3600\n",
            "bantime.increment = true\n",
            // 1 h × 4^k up to 30 days (720 h).
            "bantime.multipliers = 1 4 16 64 256 720\n",
            "bantime.maxtime = 2592000\n",
            "action = nftables-allports[name=portwarden, protocol=\"tcp,udp\", blocktype=drop]\n",
        ] {
            assert!(
                j.contents.contains(want),
                "missing {want:?} in\n{}",
                j.contents
            );
        }
        let j = jail(&config, &opts(BanAction::Portwarden, Backend::Systemd)).unwrap();
        assert!(j.contents.contains("backend = systemd\n"));
        assert!(!j.contents.contains("logpath"));
        assert!(j.contents.contains("action = portwarden-nftables\n"));
    }

    #[test]
    fn multipliers_stop_at_the_cap() {
        assert_eq!(
            multipliers(3600, 4, 3600 * 720),
            vec![1, 4, 16, 64, 256, 720]
        );
        assert_eq!(multipliers(3600, 1, 3600 * 720), vec![1]);
        assert_eq!(multipliers(3600, 2, 3600 * 8), vec![1, 2, 4, 8]);
        assert_eq!(multipliers(3600, 4, 3600), vec![1]);
    }

    #[test]
    fn short_max_duration_never_goes_below_the_first_ban() {
        let mut config = Config::default();
        config.ban.duration = SignedDuration::from_secs(600);
        config.ban.max_duration = SignedDuration::from_secs(60);
        let j = jail(&config, &Options::default()).unwrap();
        assert!(j.contents.contains("bantime = 600\n"));
        assert!(j.contents.contains("bantime.maxtime = 600\n"));
    }

    #[test]
    fn relative_or_spaced_logpath_is_refused() {
        let config = Config::default();
        for bad in ["kern.log", "/var/log/my kern.log"] {
            let o = Options {
                logpath: bad.into(),
                ..Options::default()
            };
            assert!(matches!(
                jail(&config, &o),
                Err(Fail2banError::BadLogPath(_))
            ));
        }
    }

    #[test]
    fn action_uses_portwarden_sets_with_timeouts_per_family() {
        let a = action(&Config::default()).unwrap();
        assert_eq!(a.path, ACTION_PATH);
        for want in [
            "actionban = <nftables> add element <table_family> <table> <addr_set> \\{ <ip> timeout <bantime>s \\}\n",
            "table_family = inet\n",
            "table = portwarden\n",
            "addr_set = banned4\n",
            "[Init?family=inet6]\n\naddr_set = banned6\n",
            "nftables = nft\n",
        ] {
            assert!(
                a.contents.contains(want),
                "missing {want:?} in\n{}",
                a.contents
            );
        }
    }

    #[test]
    fn action_refuses_unsafe_names_and_missing_v6_set() {
        // An unsafe set name never reaches here: `NftName` refuses it where it is read.
        assert!(NftName::new("banned4; reboot").is_err());
        let mut config = Config::default();
        config.firewall.set6 = None;
        assert!(matches!(
            action(&config),
            Err(Fail2banError::NoIpv6Set { .. })
        ));
        let mut config = Config::default();
        config.firewall.nft = "bin/nft".into();
        assert!(matches!(action(&config), Err(Fail2banError::BadNftPath(_))));
        config.firewall.nft = "/usr/sbin/nft".into();
        assert!(action(&config).is_ok());
    }

    #[test]
    fn files_include_the_action_only_when_used() {
        let config = Config::default();
        let paths = |o| {
            files(&config, &o)
                .unwrap()
                .iter()
                .map(|f| f.path)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            paths(opts(BanAction::NftablesAllports, Backend::File)),
            [FILTER_PATH, JAIL_PATH]
        );
        assert_eq!(
            paths(opts(BanAction::Portwarden, Backend::File)),
            [FILTER_PATH, JAIL_PATH, ACTION_PATH]
        );
    }

    #[test]
    fn install_creates_then_reports_unchanged_then_refuses_changed_files() {
        let dir = tempfile::tempdir().unwrap();
        let fs = files(
            &Config::default(),
            &opts(BanAction::Portwarden, Backend::File),
        )
        .unwrap();
        let first = install(dir.path(), &fs, false).unwrap();
        assert!(first.iter().all(|(_, o)| *o == InstallOutcome::Created));
        assert_eq!(
            std::fs::read_to_string(dir.path().join(JAIL_PATH)).unwrap(),
            fs[1].contents
        );
        let again = install(dir.path(), &fs, false).unwrap();
        assert!(again.iter().all(|(_, o)| *o == InstallOutcome::Unchanged));

        let jail_path = dir.path().join(JAIL_PATH);
        std::fs::write(&jail_path, "[portwarden]\nmaxretry = 3\n").unwrap();
        // A fresh filter must not be written either when the jail is refused.
        std::fs::remove_file(dir.path().join(FILTER_PATH)).unwrap();
        match install(dir.path(), &fs, false) {
            Err(Fail2banError::Changed { path }) => assert_eq!(path, jail_path),
            other => panic!("expected Changed, got {other:?}"),
        }
        assert!(!dir.path().join(FILTER_PATH).exists());
        let forced = install(dir.path(), &fs, true).unwrap();
        assert_eq!(forced[0].1, InstallOutcome::Created);
        assert_eq!(forced[1].1, InstallOutcome::Replaced);
        assert_eq!(std::fs::read_to_string(&jail_path).unwrap(), fs[1].contents);
    }
}
