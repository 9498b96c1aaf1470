//! The seed lab's `blocked_ips.txt`: one address per line, as its cron script appended them.
//!
//! In: the file's text. Out: the valid targets with their line numbers, and the invalid lines
//! (number and text) for the operator to see. Blank lines and `#` comments (whole-line or after
//! the address) are skipped; an invalid line is reported, never fatal. Prefixes (`/24`) are
//! accepted too so that an operator's own list can be imported the same way. Duplicates are
//! kept once.

use ipnet::IpNet;

/// A line that is not an address or prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidLine {
    /// 1-based.
    pub line: usize,
    pub text: String,
}

/// The parsed file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blocklist {
    /// Targets in file order with their 1-based line numbers, first occurrence only.
    pub entries: Vec<(usize, IpNet)>,
    pub invalid: Vec<InvalidLine>,
    /// Lines naming a target already listed above.
    pub duplicates: usize,
}

pub fn parse_blocklist(text: &str) -> Blocklist {
    let mut list = Blocklist::default();
    let mut seen = std::collections::HashSet::new();
    for (index, raw) in text.lines().enumerate() {
        let body = raw.split('#').next().unwrap_or("").trim();
        if body.is_empty() {
            continue;
        }
        match crate::config::parse_net(body) {
            Some(net) if seen.insert(net) => list.entries.push((index + 1, net)),
            Some(_) => list.duplicates += 1,
            None => list.invalid.push(InvalidLine {
                line: index + 1,
                text: raw.trim().to_string(),
            }),
        }
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_file_with_comments_blanks_and_junk() {
        let text = "# banned by the lab script\n192.168.56.101\n\n  10.0.0.7  # attacker 2\n\
                    not-an-ip\n2001:db8::1\n192.168.56.101\n10.0.0.1/8\n198.51.100.0/24\r\n";
        let list = parse_blocklist(text);
        let targets: Vec<String> = list.entries.iter().map(|(_, n)| n.to_string()).collect();
        assert_eq!(
            targets,
            [
                "192.168.56.101/32",
                "10.0.0.7/32",
                "2001:db8::1/128",
                "198.51.100.0/24"
            ]
        );
        assert_eq!(list.entries[1].0, 4);
        assert_eq!(list.duplicates, 1);
        assert_eq!(
            list.invalid,
            vec![
                InvalidLine {
                    line: 5,
                    text: "not-an-ip".into()
                },
                // Host bits set: refused rather than silently widened or narrowed.
                InvalidLine {
                    line: 8,
                    text: "10.0.0.1/8".into()
                },
            ]
        );
    }

    #[test]
    fn empty_file_is_empty() {
        assert_eq!(parse_blocklist(""), Blocklist::default());
    }
}
