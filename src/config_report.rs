//! The configuration explained to an operator: `portwarden config check`, `config show` and
//! `config print-default`.
//!
//! In: the TOML text of a config file (and where the overrides came from). Out:
//! * [`check_text`]: **every** problem of a file, each with the file, the line, the key, what
//!   is wrong and the fix. [`crate::config::Config::from_toml`] stops at the first error,
//!   which is right for loading; a check should list them all, so each key is validated on its
//!   own (a one-key document through the same validator, so the rules cannot drift apart),
//!   then the whole file (for rules that join keys, such as `prefix` with `prefixes`). Lines
//!   come from the TOML parser's spans.
//! * [`effective`]: every effective value, formatted as the file would write it, with where it
//!   came from: the built-in default, the file (with its line), the environment or a flag.
//! * [`EXAMPLE`]: the commented example file (`docs/portwarden.example.toml`), embedded; a unit
//!   test in `config` keeps it equal to the built-in defaults.

use std::fmt;
use std::path::{Path, PathBuf};

use jiff::SignedDuration;
use serde::Serialize;
use toml::de::{DeTable, DeValue};

use crate::config::{Config, ConfigError, DEFAULT_CONFIG_PATH, SourceConfig};

/// The commented example configuration: every key at its default, with the reasoning.
pub const EXAMPLE: &str = include_str!("../docs/portwarden.example.toml");

/// One problem of a config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based; `None` when the problem has no single place (a missing file).
    pub line: Option<usize>,
    /// `section.key` (`detect.window`, `source[1].path`); empty for a syntax error.
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": key `{}`", self.key)?;
        }
        write!(f, ": {}; fix: {}", self.problem, self.fix)
    }
}

/// Which config file applies, and why: `--config`, `$PORTWARDEN_CONFIG`, the default path
/// when it exists, or none (built-in defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigFile {
    Flag(PathBuf),
    Environment(PathBuf),
    DefaultPath(PathBuf),
    None,
}

impl ConfigFile {
    /// Resolve as [`Config::load`] does.
    pub fn resolve(flag: Option<&Path>) -> ConfigFile {
        if let Some(p) = flag {
            return ConfigFile::Flag(p.to_path_buf());
        }
        if let Some(p) = std::env::var_os("PORTWARDEN_CONFIG").filter(|p| !p.is_empty()) {
            return ConfigFile::Environment(PathBuf::from(p));
        }
        let default = Path::new(DEFAULT_CONFIG_PATH);
        if default.exists() {
            return ConfigFile::DefaultPath(default.to_path_buf());
        }
        ConfigFile::None
    }

    pub fn path(&self) -> Option<&Path> {
        match self {
            ConfigFile::Flag(p) | ConfigFile::Environment(p) | ConfigFile::DefaultPath(p) => {
                Some(p)
            }
            ConfigFile::None => None,
        }
    }

    /// How it was chosen, for `config show`.
    pub fn reason(&self) -> &'static str {
        match self {
            ConfigFile::Flag(_) => "flag --config",
            ConfigFile::Environment(_) => "environment PORTWARDEN_CONFIG",
            ConfigFile::DefaultPath(_) => "the default path",
            ConfigFile::None => "no file: built-in defaults",
        }
    }
}

/// Check a file: its problems (none: the file is good).
pub fn check_file(path: &Path) -> Vec<Problem> {
    match std::fs::read_to_string(path) {
        Ok(text) => check_text(&text, path),
        Err(e) => vec![Problem {
            file: path.to_path_buf(),
            line: None,
            key: String::new(),
            problem: format!("cannot read it: {e}"),
            fix: "give the path of a readable file (--config PATH or PORTWARDEN_CONFIG)".into(),
        }],
    }
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Line of the `n`th (0-based) `[[name]]` header.
fn array_table_line(text: &str, name: &str, n: usize) -> Option<usize> {
    let header = format!("[[{name}]]");
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            l.trim_start().strip_prefix(&header).is_some_and(|rest| {
                rest.trim_start().is_empty() || rest.trim_start().starts_with('#')
            })
        })
        .nth(n)
        .map(|(i, _)| i + 1)
}

/// Where each key of a file is: `section.key` (or `key` at the top) → line.
fn key_lines(text: &str, table: &DeTable<'_>) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (k, v) in table.iter() {
        let name = k.get_ref().to_string();
        out.push((name.clone(), line_of(text, k.span().start)));
        match v.get_ref() {
            DeValue::Table(inner) => {
                for (ik, _) in inner.iter() {
                    out.push((
                        format!("{name}.{}", ik.get_ref()),
                        line_of(text, ik.span().start),
                    ));
                }
            }
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let base = array_table_line(text, &name, i);
                    if let DeValue::Table(inner) = item.get_ref() {
                        for (ik, _) in inner.iter() {
                            out.push((
                                format!("{name}[{i}].{}", ik.get_ref()),
                                line_of(text, ik.span().start),
                            ));
                        }
                    }
                    if let Some(line) = base {
                        out.push((format!("{name}[{i}]"), line));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The last line of a toml error's display: its message without the quoted snippet.
fn message_of(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
        .to_string()
}

/// Edit distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The fix for a serde error message of the validator.
fn fix_for(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let unknown = rest.split('`').next().unwrap_or("");
        let expected: Vec<&str> = rest.split('`').skip(2).step_by(2).collect();
        if let Some(best) = expected
            .iter()
            .min_by_key(|e| distance(unknown, e))
            .filter(|e| distance(unknown, e) <= 3)
        {
            return format!(
                "did you mean `{best}`? (`portwarden config print-default` lists every key)"
            );
        }
        return "remove it; `portwarden config print-default` lists every key".into();
    }
    if message.starts_with("invalid type") || message.starts_with("invalid value") {
        return "write a value of the type `portwarden config print-default` shows for this key"
            .into();
    }
    "see `portwarden config print-default` for the keys and their values".into()
}

fn problem_of(err: ConfigError, path: &Path, key: &str, line: Option<usize>) -> Problem {
    match err {
        ConfigError::Invalid {
            key: k,
            problem,
            fix,
            ..
        } => Problem {
            file: path.to_path_buf(),
            line,
            key: k,
            problem,
            fix,
        },
        ConfigError::Syntax { message, .. } => {
            let msg = message_of(&message);
            Problem {
                file: path.to_path_buf(),
                line,
                key: key.to_string(),
                fix: fix_for(&msg),
                problem: msg,
            }
        }
        ConfigError::Read { source, .. } => Problem {
            file: path.to_path_buf(),
            line,
            key: key.to_string(),
            problem: source.to_string(),
            fix: "check the file".into(),
        },
    }
}

/// Every problem of the TOML `text` (from `path`, used in messages).
pub fn check_text(text: &str, path: &Path) -> Vec<Problem> {
    let spans = match DeTable::parse(text) {
        Ok(t) => t,
        Err(e) => {
            return vec![Problem {
                file: path.to_path_buf(),
                line: e.span().map(|s| line_of(text, s.start)),
                key: String::new(),
                problem: format!("not valid TOML: {}", e.message().trim()),
                fix: "correct the syntax at this line (strings in double quotes, `key = value`, `[section]`)".into(),
            }];
        }
    };
    let lines = key_lines(text, spans.get_ref());
    let line = |key: &str| lines.iter().find(|(k, _)| k == key).map(|(_, l)| *l);
    let table: toml::Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            return vec![Problem {
                file: path.to_path_buf(),
                line: e.span().map(|s| line_of(text, s.start)),
                key: String::new(),
                problem: format!("not valid TOML: {}", e.message().trim()),
                fix: "correct the syntax at this line".into(),
            }];
        }
    };

    // Validate the whole file; take the key of the first error out and validate again, until
    // the rest is valid. Cross-key rules (max_duration >= duration) see the file's own values.
    let mut doc = table;
    let mut problems = Vec::new();
    for _ in 0..=lines.len() {
        let Ok(current) = toml::to_string(&doc) else {
            break;
        };
        let err = match Config::from_toml(&current, path) {
            Ok(_) => break,
            Err(e) => e,
        };
        let key = match &err {
            ConfigError::Invalid { key, .. } => key.clone(),
            ConfigError::Syntax { message, .. } => key_at_error_line(&current, message),
            ConfigError::Read { .. } => String::new(),
        };
        let mut p = problem_of(err, path, &key, None);
        p.line = line(&p.key).or_else(|| line(p.key.split('.').next().unwrap_or("")));
        problems.push(p);
        if key.is_empty() || !remove_key(&mut doc, &key) {
            break;
        }
    }
    problems.sort_by_key(|p| p.line.unwrap_or(0));
    problems
}

/// The key on the line a toml error names ("TOML parse error at line N, column M") in `text`.
fn key_at_error_line(text: &str, message: &str) -> String {
    let Some(n) = message
        .split("at line ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|d| d.parse::<usize>().ok())
    else {
        return String::new();
    };
    let Ok(table) = DeTable::parse(text) else {
        return String::new();
    };
    key_lines(text, table.get_ref())
        .into_iter()
        .filter(|(_, l)| *l == n)
        .map(|(k, _)| k)
        .max_by_key(|k| k.len())
        .unwrap_or_default()
}

/// Take `key` (`state_dir`, `detect.window`, `source[1].path`, `source[1]`) out of `doc`; a
/// `[[source]]` entry is replaced by a valid one so that the later entries keep their index.
fn remove_key(doc: &mut toml::Table, key: &str) -> bool {
    if let Some(rest) = key.strip_prefix("source[") {
        let index = rest.split(']').next().and_then(|i| i.parse::<usize>().ok());
        let Some(toml::Value::Array(items)) = doc.get_mut("source") else {
            return false;
        };
        let Some(item) = index.and_then(|i| items.get_mut(i)) else {
            return false;
        };
        let mut valid = toml::Table::new();
        valid.insert("kind".into(), toml::Value::String("kmsg".into()));
        *item = toml::Value::Table(valid);
        return true;
    }
    match key.split_once('.') {
        Some((section, name)) => match doc.get_mut(section) {
            Some(toml::Value::Table(t)) => {
                // `prefix` and `prefixes` together: the validator names `log.prefix`.
                t.remove(name).is_some()
            }
            _ => false,
        },
        None => doc.remove(key).is_some(),
    }
}

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Origin {
    Default,
    File { file: PathBuf, line: usize },
    Environment { variable: &'static str },
    Flag { flag: &'static str },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File { file, line } => write!(f, "file {}:{line}", file.display()),
            Origin::Environment { variable } => write!(f, "environment {variable}"),
            Origin::Flag { flag } => write!(f, "flag {flag}"),
        }
    }
}

/// One effective value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    /// `section.key`, or `key` at the top.
    pub key: String,
    /// As the file would write it (TOML).
    pub value: String,
    pub origin: Origin,
}

fn duration(d: SignedDuration) -> String {
    let s = d.as_secs();
    let text = if d.subsec_nanos() != 0 {
        format!("{}ms", d.as_millis())
    } else if s != 0 && s % 86_400 == 0 {
        format!("{}d", s / 86_400)
    } else if s != 0 && s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s != 0 && s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    };
    quote(&text)
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    let v: Vec<String> = items.into_iter().map(|s| quote(&s)).collect();
    format!("[{}]", v.join(", "))
}

fn float(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

/// Every effective value of `config`, in the order of the example file, without origins
/// (see [`effective`]).
pub fn values(c: &Config) -> Vec<(String, String)> {
    let d = &c.detect;
    let b = &c.ban;
    let f = &c.firewall;
    let mut v: Vec<(&str, String)> = vec![
        ("state_dir", quote(&c.state_dir.display().to_string())),
        (
            "log.prefixes",
            list(c.log.prefixes.iter().map(|p| p.to_string())),
        ),
        ("log.accept_untrusted", c.log.accept_untrusted.to_string()),
        ("detect.window", duration(d.window)),
        ("detect.fast_failures", d.fast_failures.to_string()),
        ("detect.slow_gap", duration(d.slow_gap)),
        ("detect.slow_window", duration(d.slow_window)),
        ("detect.slow_failures", d.slow_failures.to_string()),
        ("detect.sequential_threshold", float(d.sequential_threshold)),
        (
            "detect.sweep_destinations",
            d.sweep_destinations.to_string(),
        ),
        ("detect.stealth_weight", float(d.stealth_weight)),
        ("detect.stray_weight", float(d.stray_weight)),
        ("detect.max_sources", d.max_sources.to_string()),
        (
            "detect.max_probes_per_source",
            d.max_probes_per_source.to_string(),
        ),
        (
            "detect.served_ports",
            list(d.served_ports.iter().map(|(p, n)| format!("{p}/{n}"))),
        ),
        (
            "detect.served_ports_from_proc",
            d.served_ports_from_proc.to_string(),
        ),
        ("detect.forwarded", d.forwarded.to_string()),
        ("detect.long_window", duration(d.long_window)),
        ("detect.long_failures", d.long_failures.to_string()),
        (
            "ban.allowlist",
            list(b.allowlist.iter().map(|n| n.to_string())),
        ),
        ("ban.allowlist_host", b.allowlist_host.to_string()),
        ("ban.duration", duration(b.duration)),
        ("ban.escalation_factor", b.escalation_factor.to_string()),
        ("ban.max_duration", duration(b.max_duration)),
        ("ban.permanent_after", b.permanent_after.to_string()),
        ("ban.offence_memory", duration(b.offence_memory)),
        ("ban.prefix_sources", b.prefix_sources.to_string()),
        ("ban.prefix_window", duration(b.prefix_window)),
        ("ban.prefix_len_v4", b.prefix_len_v4.to_string()),
        ("ban.prefix_len_v6", b.prefix_len_v6.to_string()),
        ("ban.max_bans_per_minute", b.max_bans_per_minute.to_string()),
        ("ban.dry_run", b.dry_run.to_string()),
        ("firewall.nft", quote(&f.nft.display().to_string())),
        ("firewall.family", quote(&f.family.to_string())),
        ("firewall.table", quote(&f.table)),
        ("firewall.set4", quote(&f.set4)),
        (
            "firewall.set6",
            f.set6.as_deref().map_or_else(|| quote(""), quote),
        ),
        ("firewall.manage_table", f.manage_table.to_string()),
        ("firewall.forward", f.forward.to_string()),
        (
            "firewall.log_rate_per_second",
            f.log_rate_per_second.to_string(),
        ),
    ];
    let fp = &c.fastpath;
    v.extend([
        ("fastpath.enabled", fp.enabled.to_string()),
        ("fastpath.log_prefix", quote(&fp.log_prefix)),
        ("fastpath.max_bans", fp.max_bans.to_string()),
        ("fastpath.max_sources", fp.max_sources.to_string()),
        ("fastpath.max_probes", fp.max_probes.to_string()),
    ]);
    // Optional keys are shown only when set (TOML has no null).
    if let Some(listen) = c.metrics.listen {
        v.push(("metrics.listen", quote(&listen.to_string())));
    }
    v.push(("metrics.allow_remote", c.metrics.allow_remote.to_string()));
    if let Some(path) = &c.metrics.textfile {
        v.push(("metrics.textfile", quote(&path.display().to_string())));
    }
    let mut out: Vec<(String, String)> = v.drain(..).map(|(k, v)| (k.to_string(), v)).collect();
    if c.sources.is_empty() {
        out.push((
            "source".into(),
            quote("auto: /dev/kmsg where readable, else the journal, else /var/log/kern.log"),
        ));
    }
    for (i, s) in c.sources.iter().enumerate() {
        let text = match s {
            SourceConfig::Kmsg { path } => {
                format!(
                    "kind = \"kmsg\"\npath = {}",
                    quote(&path.display().to_string())
                )
            }
            SourceConfig::Journal { journalctl, args } => format!(
                "kind = \"journal\"\njournalctl = {}\nargs = {}",
                quote(&journalctl.display().to_string()),
                list(args.iter().cloned())
            ),
            SourceConfig::File { path } => {
                format!(
                    "kind = \"file\"\npath = {}",
                    quote(&path.display().to_string())
                )
            }
        };
        out.push((format!("source[{i}]"), text));
    }
    out
}

/// The effective values with their origins: `file` is the config file that was read (its
/// text gives the lines), `state_dir_flag` whether `--state-dir` was given; the environment
/// is read here.
pub fn effective(
    config: &Config,
    file: &ConfigFile,
    file_text: Option<&str>,
    state_dir_flag: Option<&Path>,
) -> Vec<Setting> {
    let lines = file_text
        .and_then(|t| {
            DeTable::parse(t)
                .ok()
                .map(|table| key_lines(t, table.get_ref()))
        })
        .unwrap_or_default();
    let in_file = |key: &str| -> Option<Origin> {
        let path = file.path()?;
        let aliases: &[&str] = match key {
            "log.prefixes" => &["log.prefixes", "log.prefix"],
            _ => &[],
        };
        let found = if aliases.is_empty() {
            lines.iter().find(|(k, _)| k == key)
        } else {
            lines.iter().find(|(k, _)| aliases.contains(&k.as_str()))
        };
        found.map(|(_, line)| Origin::File {
            file: path.to_path_buf(),
            line: *line,
        })
    };
    let env_state_dir = std::env::var_os("PORTWARDEN_STATE_DIR").filter(|s| !s.is_empty());
    let mut out = Vec::new();
    for (key, mut value) in values(config) {
        let origin = if key == "state_dir" && state_dir_flag.is_some() {
            if let Some(p) = state_dir_flag {
                value = quote(&p.display().to_string());
            }
            Origin::Flag {
                flag: "--state-dir",
            }
        } else if key == "state_dir" && env_state_dir.is_some() {
            if let Some(p) = &env_state_dir {
                value = quote(&Path::new(p).display().to_string());
            }
            Origin::Environment {
                variable: "PORTWARDEN_STATE_DIR",
            }
        } else {
            in_file(&key).unwrap_or(Origin::Default)
        };
        out.push(Setting { key, value, origin });
    }
    out
}

/// `config show`: load the configuration as every command does (`config_flag` is `--config`,
/// `state_dir_flag` is `--state-dir`) and render every effective value with its origin.
pub fn show(
    config_flag: Option<&Path>,
    state_dir_flag: Option<&Path>,
) -> Result<String, ConfigError> {
    let file = ConfigFile::resolve(config_flag);
    let config = Config::load(config_flag)?;
    let text = file.path().and_then(|p| std::fs::read_to_string(p).ok());
    let settings = effective(&config, &file, text.as_deref(), state_dir_flag);
    Ok(render_show(&file, &settings))
}

/// `config show` as text: a header naming the file, then `key = value  # origin`, by section.
pub fn render_show(file: &ConfigFile, settings: &[Setting]) -> String {
    let mut s = match file.path() {
        Some(p) => format!("# config file: {} ({})\n", p.display(), file.reason()),
        None => format!("# config file: none ({})\n", file.reason()),
    };
    let mut section = "";
    for set in settings {
        if set.key == "source" {
            s.push_str(&format!(
                "\n# [[source]]: {}  # {}\n",
                set.value, set.origin
            ));
            continue;
        }
        if set.key.starts_with("source[") {
            s.push_str(&format!("\n[[source]]  # {}\n{}\n", set.origin, set.value));
            section = "source";
            continue;
        }
        let (sec, key) = set.key.split_once('.').unwrap_or(("", set.key.as_str()));
        if sec != section {
            s.push_str(&format!("\n[{sec}]\n"));
            section = sec;
        }
        s.push_str(&format!("{key} = {}  # {}\n", set.value, set.origin));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Vec<Problem> {
        check_text(text, Path::new("/etc/portwarden/portwarden.toml"))
    }

    #[test]
    fn the_example_file_has_no_problem() {
        assert_eq!(check(EXAMPLE), vec![]);
        assert_eq!(check(""), vec![]);
    }

    /// Table-driven: each broken file, the (line, key) of every problem, and a word of its fix.
    #[test]
    fn every_problem_has_its_line_key_and_fix() {
        /// (line, start of the key, words of the fix); line 0: any line.
        type Want = (usize, &'static str, &'static str);
        let cases: &[(&str, &[Want])] = &[
            (
                "[detect]\nwindow = \"60 parsecs\"\nfast_failures = 0\n",
                &[
                    (2, "detect.window", "\"90s\""),
                    (3, "detect.fast_failures", "1 or more"),
                ],
            ),
            (
                "state_dir = \"/x\"\n\n[detect]\nwindw = \"60s\"\n[ban]\nallowlist = [\"10.0.0.0/33\"]\n",
                &[
                    (4, "detect.windw", "did you mean `window`"),
                    (6, "ban.allowlist", ""),
                ],
            ),
            (
                "[log]\nprefix = \"a\"\nprefixes = [\"b\"]\n",
                &[(0, "log.prefix", "")],
            ),
            (
                "[[source]]\nkind = \"kmsg\"\n\n[[source]]\nkind = \"carrier-pigeon\"\n",
                &[(5, "source[1].kind", "")],
            ),
            (
                "[detect]\nfast_failures = \"six\"\n",
                &[(2, "detect.fast_failures", "type")],
            ),
            ("[detect\nwindow = 1\n", &[(1, "", "syntax")]),
        ];
        for (text, want) in cases {
            let got = check(text);
            assert_eq!(got.len(), want.len(), "{text}\n{got:#?}");
            for (p, (line, key, fix)) in got.iter().zip(want.iter()) {
                if *line != 0 {
                    assert_eq!(p.line, Some(*line), "{text}\n{p:#?}");
                } else {
                    assert!(p.line.is_some(), "{text}\n{p:#?}");
                }
                assert!(p.key.starts_with(key), "{text}\n{p:#?}");
                assert!(p.fix.contains(fix), "{text}\n{p:#?}");
                assert!(!p.problem.is_empty());
                assert!(
                    p.to_string()
                        .starts_with("/etc/portwarden/portwarden.toml:")
                );
            }
        }
    }

    /// `show` lists every key of the example file, and its values read back as the same config.
    #[test]
    fn show_covers_every_key_and_reads_back() {
        let config = Config::from_toml(EXAMPLE, Path::new("x")).unwrap();
        let keys: Vec<String> = values(&config).into_iter().map(|(k, _)| k).collect();
        let table = DeTable::parse(EXAMPLE).unwrap();
        for (k, _) in key_lines(EXAMPLE, table.get_ref()) {
            if ["log", "detect", "ban", "firewall", "metrics", "fastpath"].contains(&k.as_str()) {
                continue;
            }
            let k = if k == "log.prefix" {
                "log.prefixes".into()
            } else {
                k
            };
            assert!(keys.contains(&k), "`config show` misses {k}");
        }
        // Rendered as TOML (minus the comments and the auto source), it is the same config.
        let settings = effective(&config, &ConfigFile::None, None, None);
        let shown = render_show(&ConfigFile::None, &settings)
            .lines()
            .map(|l| l.split("  # ").next().unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let back = Config::from_toml(&shown, Path::new("shown")).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn origins_name_the_file_line() {
        let text = "[detect]\n# comment\nwindow = \"2m\"\n";
        let config = Config::from_toml(text, Path::new("f.toml")).unwrap();
        let file = ConfigFile::Flag(PathBuf::from("f.toml"));
        let settings = effective(&config, &file, Some(text), Some(Path::new("/srv/pw")));
        let get = |k: &str| settings.iter().find(|s| s.key == k).unwrap().clone();
        assert_eq!(get("detect.window").value, "\"2m\"");
        assert_eq!(
            get("detect.window").origin,
            Origin::File {
                file: PathBuf::from("f.toml"),
                line: 3
            }
        );
        assert_eq!(get("detect.fast_failures").origin, Origin::Default);
        assert_eq!(get("state_dir").value, "\"/srv/pw\"");
        assert_eq!(
            get("state_dir").origin,
            Origin::Flag {
                flag: "--state-dir"
            }
        );
    }
}
