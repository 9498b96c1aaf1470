//! The values of the config that end up inside nftables scripts, Fail2Ban files and LOG rules:
//! [`NftFamily`], [`NftName`] and [`LogPrefix`]. Each is validated once, when it is built
//! (by [`Config`](super::Config) loading, or by a CLI flag's parser); whoever holds one may
//! format it into a script without checking it again.
//!
//! The rules, and where they come from:
//! - **Family**: `inet`, `ip` or `ip6`, the families whose tables can hold a `filter` chain on
//!   the `input` hook and an `ipv4_addr` / `ipv6_addr` set.
//! - **Names** (tables, sets): an ASCII letter, then ASCII letters, digits, `_` and `-`; at most
//!   [`NftName::MAX_LEN`] bytes. nft's scanner takes an unquoted name as
//!   `({letter}|[_.])({letter}|{digit}|[/\-_\.])*` (src/scanner.l); ours is the subset that
//!   also reads unambiguously as a word in a shell command (Fail2Ban's actions run through
//!   `sh`) and in Fail2Ban's config files, where a leading `.` or an embedded `/` would surprise.
//!   The kernel takes names up to 255 bytes (`NFT_NAME_MAXLEN`, 256 with the NUL); 64 is our
//!   own, older limit, kept so that no config valid before becomes invalid and none that was
//!   refused becomes accepted beyond adding `-` (Fail2Ban's own `f2b-table` has one).
//! - **LOG prefixes**: 1 to [`LogPrefix::MAX_LEN`] (127) bytes, each printable ASCII
//!   (`0x20..=0x7e`) other than `"`, `\` and `$`. The kernel keeps at most
//!   `NF_LOG_PREFIXLEN - 1` = 127 bytes (include/uapi/linux/netfilter/nf_log.h,
//!   `NF_LOG_PREFIXLEN 128`, NUL included). In an nft script the prefix sits in a quoted string
//!   that has no escapes (`\"[^"]*\"` in src/scanner.l), so `"` cannot occur, and nft 1.0
//!   expands `$name` inside a log prefix as a variable (`Error: unknown identifier`).
//!   `/dev/kmsg` prints control bytes, bytes above `0x7e` and `\` itself as `\xHH`, so a
//!   prefix holding one of them would never match the records it marks. The empty prefix is
//!   not a `LogPrefix`: `[log] prefix = ""` means "any record" and becomes an empty list.

use std::fmt;
use std::str::FromStr;

/// Why a value was refused, and what to write instead; the config adds file and key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}; {fix}")]
pub struct ValueError {
    pub problem: String,
    pub fix: &'static str,
}

/// An nftables table family portwarden can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NftFamily {
    /// IPv4 and IPv6 in one table (portwarden's own `inet portwarden`).
    #[default]
    Inet,
    /// IPv4 only (the seed lab's `ip filter`).
    Ip,
    /// IPv6 only.
    Ip6,
}

impl NftFamily {
    /// As nft writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            NftFamily::Inet => "inet",
            NftFamily::Ip => "ip",
            NftFamily::Ip6 => "ip6",
        }
    }

    /// Whether a table of this family sees IPv4 packets.
    pub fn carries_ipv4(self) -> bool {
        matches!(self, NftFamily::Inet | NftFamily::Ip)
    }

    /// Whether a table of this family sees IPv6 packets.
    pub fn carries_ipv6(self) -> bool {
        matches!(self, NftFamily::Inet | NftFamily::Ip6)
    }
}

impl FromStr for NftFamily {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        match s {
            "inet" => Ok(NftFamily::Inet),
            "ip" => Ok(NftFamily::Ip),
            "ip6" => Ok(NftFamily::Ip6),
            _ => Err(ValueError {
                problem: format!("`{}` is not a family portwarden can use", s.escape_debug()),
                fix: "use \"inet\" (default), \"ip\" or \"ip6\"",
            }),
        }
    }
}

impl fmt::Display for NftFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A table or set name that nft accepts unquoted and that is safe in a script, a shell
/// command and a Fail2Ban config file (see the module doc for the rule).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NftName(String);

impl NftName {
    /// Longest name accepted, in bytes.
    pub const MAX_LEN: usize = 64;

    pub fn new(name: &str) -> Result<NftName, ValueError> {
        let mut bytes = name.bytes();
        let ok = matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic())
            && name.len() <= Self::MAX_LEN
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(NftName(name.to_string()))
        } else {
            Err(ValueError {
                problem: format!("`{}` is not an nftables name", name.escape_debug()),
                fix: "use letters, digits, `_` and `-`, starting with a letter, at most 64 bytes",
            })
        }
    }

    /// One of portwarden's own default names, written in this crate and checked by the tests
    /// (`builtin_names_are_valid`), so that building the defaults cannot fail.
    pub(super) fn builtin(name: &'static str) -> NftName {
        NftName(name.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for NftName {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        NftName::new(s)
    }
}

impl fmt::Display for NftName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for NftName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for NftName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for NftName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for NftName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// A netfilter LOG prefix the kernel keeps whole, nft accepts in `log prefix "..."` and
/// `/dev/kmsg` prints unchanged (see the module doc for the rule).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogPrefix(String);

impl LogPrefix {
    /// Longest prefix accepted, in bytes: the kernel's `NF_LOG_PREFIXLEN` (128) less its NUL.
    pub const MAX_LEN: usize = 127;

    pub fn new(prefix: &str) -> Result<LogPrefix, ValueError> {
        if prefix.is_empty() {
            return Err(ValueError {
                problem: "a LOG prefix cannot be empty".into(),
                fix: "give the text the LOG rule puts before `IN=`, such as \"portwarden: \"",
            });
        }
        if prefix.len() > Self::MAX_LEN {
            return Err(ValueError {
                problem: format!(
                    "LOG prefix `{}` is {} bytes long, longer than the kernel's 127",
                    prefix.escape_debug(),
                    prefix.len()
                ),
                fix: "nftables LOG prefixes are at most 127 bytes; shorten it",
            });
        }
        if let Some(c) = prefix
            .chars()
            .find(|&c| !(' '..='~').contains(&c) || matches!(c, '"' | '\\' | '$'))
        {
            let why = match c {
                '"' => "nft's quoted strings cannot hold one",
                '$' => "nft would read `$...` as a variable",
                _ => "/dev/kmsg prints it as \\xHH, so the records would not match",
            };
            return Err(ValueError {
                problem: format!(
                    "LOG prefix `{}` contains `{}`: {why}",
                    prefix.escape_debug(),
                    c.escape_debug()
                ),
                fix: "use printable ASCII characters other than `\"`, `\\` and `$`",
            });
        }
        Ok(LogPrefix(prefix.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl LogPrefix {
    /// One of portwarden's own default prefixes, written in this crate (checked by
    /// `builtin_prefixes_are_valid`), so that building the defaults cannot fail.
    pub(super) fn builtin(prefix: &'static str) -> LogPrefix {
        LogPrefix(prefix.to_string())
    }
}

impl Default for LogPrefix {
    /// The prefix `portwarden setup` installs: [`DEFAULT_PREFIX`](super::DEFAULT_PREFIX).
    fn default() -> Self {
        LogPrefix(super::DEFAULT_PREFIX.to_string())
    }
}

impl FromStr for LogPrefix {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        LogPrefix::new(s)
    }
}

impl fmt::Display for LogPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for LogPrefix {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for LogPrefix {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for LogPrefix {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for LogPrefix {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        for (text, want) in [
            ("inet", Some((NftFamily::Inet, true, true))),
            ("ip", Some((NftFamily::Ip, true, false))),
            ("ip6", Some((NftFamily::Ip6, false, true))),
            // Families nft knows but that have no input hook for addresses, and near misses.
            ("arp", None),
            ("bridge", None),
            ("netdev", None),
            ("INET", None),
            (" inet", None),
            ("", None),
        ] {
            let got = text
                .parse::<NftFamily>()
                .ok()
                .map(|f| (f, f.carries_ipv4(), f.carries_ipv6()));
            assert_eq!(got, want, "{text:?}");
            if let Some((f, ..)) = got {
                assert_eq!(f.to_string(), text);
            }
        }
        assert_eq!(NftFamily::default(), NftFamily::Inet);
    }

    #[test]
    fn names() {
        let long_ok = "a".repeat(64);
        let too_long = "a".repeat(65);
        for (name, ok) in [
            ("portwarden", true),
            ("filter", true),
            ("blocked_ips", true),
            ("banned4", true),
            ("B", true),
            // `-`: refused by the old config check, accepted by the old Fail2Ban one; nft takes
            // it unquoted (`inet f2b-table`, `@addr-set-sshd`), so both now accept it.
            ("f2b-table", true),
            ("addr-set-portwarden", true),
            (long_ok.as_str(), true),
            (too_long.as_str(), false),
            ("", false),
            // A digit, `_` or `-` first: the old Fail2Ban check took these, the config did not.
            ("4banned", false),
            ("_x", false),
            ("-x", false),
            // nft takes `.` and `/` unquoted; a shell word or a Fail2Ban value should not.
            ("a.b", false),
            ("a/b", false),
            ("x; flush ruleset", false),
            ("banned4; reboot", false),
            ("a b", false),
            ("a\"b", false),
            ("a$b", false),
            ("a\nb", false),
            ("bänned", false),
        ] {
            assert_eq!(NftName::new(name).is_ok(), ok, "{name:?}");
            if ok {
                assert_eq!(NftName::new(name).unwrap(), name);
            }
        }
    }

    #[test]
    fn builtin_prefixes_are_valid() {
        let p = super::super::FastpathConfig::default().log_prefix;
        assert_eq!(LogPrefix::new(p.as_str()).as_ref(), Ok(&p));
    }

    #[test]
    fn builtin_names_are_valid() {
        let d = super::super::FirewallConfig::default();
        for name in [Some(&d.table), Some(&d.set4), d.set6.as_ref()]
            .into_iter()
            .flatten()
        {
            assert_eq!(NftName::new(name.as_str()).as_ref(), Ok(name));
        }
        assert_eq!(
            LogPrefix::new(super::super::DEFAULT_PREFIX),
            Ok(LogPrefix::default())
        );
    }

    #[test]
    fn log_prefixes() {
        let max = "x".repeat(127);
        let over = "x".repeat(128);
        for (prefix, ok) in [
            ("portwarden: ", true),
            ("SYN_SCAN_ATTEMPT--", true),
            ("[UFW BLOCK] ", true),
            // Fail2Ban's config syntax characters are fine here: its filter escapes them.
            ("a%b<c>.*", true),
            ("#;'", true),
            (" ", true),
            (max.as_str(), true),
            (over.as_str(), false),
            ("", false),
            // nft: no escapes in quoted strings; `$name` is a variable.
            ("a\" drop", false),
            ("a\"b", false),
            ("cost$5", false),
            // kmsg writes these as \xHH, so records would not match.
            ("back\\slash", false),
            ("tab\there", false),
            ("new\nline", false),
            ("nul\0", false),
            ("del\x7f", false),
            ("é: ", false),
        ] {
            assert_eq!(LogPrefix::new(prefix).is_ok(), ok, "{prefix:?}");
        }
        assert_eq!(LogPrefix::default(), "portwarden: ");
        let err = LogPrefix::new(&over).unwrap_err();
        assert!(err.to_string().contains("127"), "{err}");
        // Errors say what the value is: `fail2ban print --prefix ""` shows this text.
        let err = LogPrefix::new("").unwrap_err();
        assert!(err.to_string().contains("LOG prefix"), "{err}");
    }
}
