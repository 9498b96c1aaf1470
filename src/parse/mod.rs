//! Stage `parse`: one raw [`Record`] in, one typed [`Probe`] out, or the reason it does not
//! count ([`Reject`], counted in [`ParseStats`]).
//!
//! ```text
//! Record ──header.rs──▶ time, trusted?, message ──netfilter.rs──▶ prefix? KEY=VALUE ──▶ Probe
//! ```
//!
//! Order of the checks, and why:
//! 1. size ([`Reject::TooLong`]): a LOG record is at most ~1 KiB; a huge line is not read;
//! 2. header (`header.rs`): the time and whether the kernel wrote the record;
//! 3. prefix (`netfilter::find_body`): the message must start with a configured prefix
//!    followed by `IN=`, so text elsewhere in a line cannot make it count;
//! 4. trust: a LOG-shaped record from user space is [`Reject::Untrusted`] (unless
//!    `log.accept_untrusted`): checked after the prefix so that the `untrusted` count means
//!    "forged-looking records", not "every sshd line in /var/log/syslog";
//! 5. body (`netfilter::parse_body`): every [`Probe`] field, validated;
//! 6. direction: only inbound records (`IN=` set, `OUT=` empty) are probes. A packet this host
//!    sent ([`Reject::Outbound`]) has this host as its source; a forwarded one
//!    ([`Reject::Forwarded`]) counts only with `detect.forwarded` (routers).
//!
//! The hot path (kmsg, syslog files) does not allocate: headers and fields are sub-slices of the
//! record, addresses are parsed in place. Journal JSON goes through serde_json.

mod header;
mod masks;
mod netfilter;

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::config::{LogConfig, LogPrefix};
use crate::record::{Probe, Record};

/// Records longer than this are not read: a netfilter LOG message is at most 1 KiB (the
/// kernel's buffer), a journal entry around it a few KiB.
pub const MAX_RECORD_LEN: usize = 16 * 1024;

/// The clocks parsing needs.
#[derive(Debug, Clone)]
pub struct ParseContext {
    /// Now: BSD syslog stamps have no year, it is inferred from this.
    pub now: Timestamp,
    /// The zone of BSD syslog stamps (the host's).
    pub tz: TimeZone,
    /// When the kernel booted: kmsg and dmesg stamps count from it.
    pub boot_time: Timestamp,
}

impl ParseContext {
    /// Now, the system zone, and the boot time as now minus CLOCK_MONOTONIC (the clock of the
    /// printk stamps; see `monotonic_since_boot`).
    ///
    /// Without that clock the boot time is taken as now (kmsg times are then wrong, which is
    /// logged); never an error, so that reading files works anywhere.
    pub fn system() -> ParseContext {
        ParseContext::at(Timestamp::now())
    }

    /// As [`ParseContext::system`], with `now` from the caller's clock.
    pub fn at(now: Timestamp) -> ParseContext {
        let boot_time = match monotonic_since_boot() {
            Some(up) => now.checked_sub(up).unwrap_or(now),
            None => {
                tracing::warn!("cannot read CLOCK_MONOTONIC: kmsg and dmesg times will be off");
                now
            }
        };
        ParseContext {
            now,
            tz: TimeZone::system(),
            boot_time,
        }
    }
}

/// Time since boot on the clock printk stamps use. The kernel stamps records with
/// `local_clock()`, which, like CLOCK_MONOTONIC and unlike `/proc/uptime` (CLOCK_BOOTTIME), stops
/// while the machine is suspended: wall time minus this is the boot time that turns a stamp back
/// into wall time, also on a laptop that has slept.
fn monotonic_since_boot() -> Option<SignedDuration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass, which lives on our stack.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (rc == 0).then(|| SignedDuration::new(ts.tv_sec, ts.tv_nsec as i32))
}

/// Why a record does not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum Reject {
    /// A blank line.
    #[error("empty line")]
    Empty,
    /// A kmsg continuation line (` KEY=value` under a record).
    #[error("kmsg continuation line")]
    Continuation,
    /// Longer than [`MAX_RECORD_LEN`].
    #[error("record too long")]
    TooLong,
    /// No header of a known form.
    #[error("unrecognised header")]
    BadHeader,
    /// A header whose time is invalid.
    #[error("invalid time in header")]
    BadTime,
    /// A journal entry that is not a JSON object of the expected shape.
    #[error("invalid journal JSON")]
    BadJson,
    /// A line of `journalctl -o export` (`FIELD=value`): a journal entry spans many lines, so
    /// no line is a record; read the journal with `-o json` (the journal source does).
    #[error("journalctl -o export line (use -o json)")]
    JournalExport,
    /// A record that is not a netfilter LOG record.
    #[error("not a netfilter LOG record")]
    NotNetfilter,
    /// A netfilter LOG record that does not start with a configured prefix.
    #[error("LOG record without a configured prefix")]
    PrefixMismatch,
    /// A LOG record that the kernel did not write (syslog tag, kmsg facility, journal transport).
    #[error("record not written by the kernel")]
    Untrusted,
    /// A required field (`SRC=`, `DST=`, `PROTO=`, `DPT=`, `TYPE=`) is missing.
    #[error("required field missing")]
    MissingField,
    /// `SRC=`/`DST=` is not an address (or the two are of different families).
    #[error("invalid address")]
    BadAddress,
    /// `SPT=`/`DPT=` is not a port number.
    #[error("invalid port")]
    BadPort,
    /// Another field is malformed (`TTL=300`, `PROTO=GRE`, an interface name too long).
    #[error("malformed field")]
    BadField,
    /// A non-first IP fragment: the kernel prints no transport header for it.
    #[error("non-first fragment without ports")]
    Fragment,
    /// A packet this host sent (`IN=` empty: an OUTPUT-chain rule, UFW's `[UFW AUDIT]` of an
    /// outgoing connection): its source is this host, never a prober.
    #[error("outbound packet (IN= empty)")]
    Outbound,
    /// A forwarded packet (`IN=` and `OUT=` both set) while `detect.forwarded` is off.
    #[error("forwarded packet (IN= and OUT= set), not counted")]
    Forwarded,
}

impl Reject {
    /// Every reason, for reports that list them all.
    pub const ALL: [Reject; 17] = [
        Reject::Empty,
        Reject::Continuation,
        Reject::TooLong,
        Reject::BadHeader,
        Reject::BadTime,
        Reject::BadJson,
        Reject::JournalExport,
        Reject::NotNetfilter,
        Reject::PrefixMismatch,
        Reject::Untrusted,
        Reject::MissingField,
        Reject::BadAddress,
        Reject::BadPort,
        Reject::BadField,
        Reject::Fragment,
        Reject::Outbound,
        Reject::Forwarded,
    ];

    /// The snake_case name (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::Empty => "empty",
            Reject::Continuation => "continuation",
            Reject::TooLong => "too_long",
            Reject::BadHeader => "bad_header",
            Reject::BadTime => "bad_time",
            Reject::BadJson => "bad_json",
            Reject::JournalExport => "journal_export",
            Reject::NotNetfilter => "not_netfilter",
            Reject::PrefixMismatch => "prefix_mismatch",
            Reject::Untrusted => "untrusted",
            Reject::MissingField => "missing_field",
            Reject::BadAddress => "bad_address",
            Reject::BadPort => "bad_port",
            Reject::BadField => "bad_field",
            Reject::Fragment => "fragment",
            Reject::Outbound => "outbound",
            Reject::Forwarded => "forwarded",
        }
    }

    /// Whether the reason only says "not one of ours" (another kernel message, another LOG
    /// prefix, an empty or continuation line, a packet that went the other way), as opposed
    /// to a record that looked like ours and was refused (untrusted, malformed). Summaries
    /// report the two apart.
    pub fn is_noise(self) -> bool {
        matches!(
            self,
            Reject::Empty
                | Reject::Continuation
                | Reject::NotNetfilter
                | Reject::PrefixMismatch
                | Reject::Outbound
                | Reject::Forwarded
        )
    }

    /// The reason named by [`Reject::as_str`].
    pub fn from_name(name: &str) -> Option<Reject> {
        Reject::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// Counts of what parsing made of the records it saw.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ParseStats {
    pub lines: u64,
    pub parsed: u64,
    /// By reason (serialised by [`Reject::as_str`]).
    pub rejected: BTreeMap<Reject, u64>,
}

impl ParseStats {
    pub fn count(&mut self, result: &Result<Probe, Reject>) {
        self.lines += 1;
        match result {
            Ok(_) => self.parsed += 1,
            Err(r) => *self.rejected.entry(*r).or_default() += 1,
        }
    }
}

/// What one record is, for [`Parser::parse_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A probe (a record of the LOG rule).
    Probe(Probe),
    /// A ban the kernel fast path made: the packet that tripped it.
    KernelBan(Probe),
}

/// Turns records into probes; holds the configured prefixes and clocks.
#[derive(Debug, Clone)]
pub struct Parser {
    prefixes: Vec<Box<[u8]>>,
    /// The kernel fast path's ban prefix, when recognised.
    kernel_ban_prefix: Option<Box<[u8]>>,
    accept_untrusted: bool,
    forwarded: bool,
    clock: header::Clock,
}

impl Parser {
    pub fn new(log: &LogConfig, ctx: ParseContext) -> Parser {
        Parser {
            prefixes: log
                .prefixes
                .iter()
                .filter(|p| !p.is_empty())
                .map(|p| p.as_bytes().into())
                .collect(),
            kernel_ban_prefix: None,
            accept_untrusted: log.accept_untrusted,
            forwarded: false,
            clock: header::Clock::new(ctx.now, ctx.tz, ctx.boot_time),
        }
    }

    /// Count forwarded records (`IN=` and `OUT=` set) as probes too (`detect.forwarded`: a
    /// router that logs what it forwards). Off by default: only inbound records count.
    pub fn with_forwarded(mut self, forwarded: bool) -> Parser {
        self.forwarded = forwarded;
        self
    }

    /// Move "now" forward (a daemon crossing New Year): BSD syslog years are inferred from it.
    pub fn set_now(&mut self, now: Timestamp) {
        let tz = self.clock.tz.clone();
        self.clock = header::Clock::new(now, tz, self.clock.boot_time);
    }

    /// Also recognise the kernel fast path's ban records (`[fastpath] log_prefix`): then
    /// [`Parser::parse_event`] gives them as [`Parsed::KernelBan`].
    pub fn with_kernel_bans(mut self, prefix: Option<&LogPrefix>) -> Parser {
        self.kernel_ban_prefix = prefix.map(|p| p.as_bytes().into());
        self
    }

    /// One record: a probe, or a kernel fast path ban (see [`Parser::with_kernel_bans`]).
    /// A ban record is judged like a probe (trusted, well formed), and its prefix is checked
    /// first: it never counts as a probe too.
    pub fn parse_event(&mut self, record: Record<'_>) -> Result<Parsed, Reject> {
        let Some(kernel) = self.kernel_ban_prefix.as_ref() else {
            return self.parse(record).map(Parsed::Probe);
        };
        let header = self.header(record)?;
        if let Ok(body) = netfilter::find_body(&header.message, std::slice::from_ref(kernel)) {
            if !header.trusted && !self.accept_untrusted {
                return Err(Reject::Untrusted);
            }
            return netfilter::parse_body(body, header.time, true).map(Parsed::KernelBan);
        }
        self.judge(header).map(Parsed::Probe)
    }

    /// One record: a trusted netfilter LOG record with a configured prefix becomes a probe.
    pub fn parse(&mut self, record: Record<'_>) -> Result<Probe, Reject> {
        let header = self.header(record)?;
        self.judge(header)
    }

    fn judge(&self, header: header::Header<'_>) -> Result<Probe, Reject> {
        let body = netfilter::find_body(&header.message, &self.prefixes)?;
        if !header.trusted && !self.accept_untrusted {
            return Err(Reject::Untrusted);
        }
        netfilter::parse_body(body, header.time, self.forwarded)
    }

    fn header<'r>(&self, record: Record<'r>) -> Result<header::Header<'r>, Reject> {
        if record.bytes.len() > MAX_RECORD_LEN {
            return Err(Reject::TooLong);
        }
        let mut line = record.bytes;
        while let [rest @ .., b'\n' | b'\r'] = line {
            line = rest;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            return Err(Reject::Empty);
        }
        header::parse(record.kind, line, &self.clock)
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::config::LogPrefix;
    use crate::record::{Proto, ScanType, SourceKind};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn ctx() -> ParseContext {
        ParseContext {
            now: ts("2026-11-24T23:30:00Z"),
            tz: TimeZone::UTC,
            boot_time: ts("2026-11-24T22:56:18.232109Z"),
        }
    }

    fn parser(prefixes: &[&str], accept_untrusted: bool) -> Parser {
        let log = LogConfig {
            prefixes: prefixes
                .iter()
                .map(|p| LogPrefix::new(p).unwrap())
                .collect(),
            accept_untrusted,
        };
        Parser::new(&log, ctx())
    }

    fn file(p: &mut Parser, line: &[u8]) -> Result<Probe, Reject> {
        p.parse(Record {
            kind: SourceKind::File,
            bytes: line,
        })
    }

    const BODY: &str = "IN=vt OUT= MAC=be:9f:a3:6c:b5:1c:fe:41:27:a3:2a:4d:08:00 SRC=10.250.0.2 DST=10.250.0.1 LEN=44 TOS=0x00 PREC=0x00 TTL=43 ID=49040 PROTO=TCP SPT=44285 DPT=110 WINDOW=1024 RES=0x00 SYN URGP=0 ";

    /// The fast path's ban records (kmsg and kern.log, real format) are kernel bans, never
    /// probes; the LOG rule's own records stay probes; a forged one is refused as any is.
    #[test]
    fn kernel_ban_records_are_told_from_probes() {
        let fb = LogPrefix::new("portwarden-fastban: ").unwrap();
        let mut p = parser(&["portwarden: "], false).with_kernel_bans(Some(&fb));
        let event = |p: &mut Parser, kind, line: String| {
            p.parse_event(Record {
                kind,
                bytes: line.as_bytes(),
            })
        };
        let cases = [
            (
                SourceKind::Kmsg,
                format!("4,23599,3953377462,-;portwarden-fastban: {BODY}"),
                Ok(true),
            ),
            (
                SourceKind::File,
                format!(
                    "2026-12-01T22:31:04.947768+00:00 vm kernel: [ 3953.377462] portwarden-fastban: {BODY}"
                ),
                Ok(true),
            ),
            (
                SourceKind::Kmsg,
                format!("4,23600,3953377463,-;portwarden: {BODY}"),
                Ok(false),
            ),
            // `logger -t kernel` in a syslog file: user facility, refused.
            (
                SourceKind::File,
                format!("<13>Dec  1 22:31:04 vm kernel: portwarden-fastban: {BODY}"),
                Err(Reject::Untrusted),
            ),
        ];
        for (kind, line, want) in cases {
            let got = event(&mut p, kind, line.clone()).map(|e| match e {
                Parsed::KernelBan(probe) => {
                    assert_eq!(probe.src, "10.250.0.2".parse::<IpAddr>().unwrap());
                    assert_eq!(probe.dport, Some(110));
                    true
                }
                Parsed::Probe(_) => false,
            });
            assert_eq!(got, want, "{line}");
        }
        // Without `with_kernel_bans`, a ban record is only a prefix mismatch.
        let mut plain = parser(&["portwarden: "], false);
        assert_eq!(
            event(
                &mut plain,
                SourceKind::Kmsg,
                format!("4,1,1,-;portwarden-fastban: {BODY}")
            ),
            Err(Reject::PrefixMismatch)
        );
    }

    #[test]
    fn every_header_gives_the_same_probe() {
        let mut p = parser(&["portwarden: "], false);
        let lines = [
            (
                SourceKind::Kmsg,
                format!("4,479,635715659,-;portwarden: {BODY}"),
            ),
            (
                SourceKind::File,
                format!("4,479,635715659,-;portwarden: {BODY}\n"),
            ),
            (
                SourceKind::File,
                format!(
                    "2026-11-24T23:06:53.947768+00:00 vm kernel: [  635.715659] portwarden: {BODY}\r\n"
                ),
            ),
            (
                SourceKind::File,
                format!("[  635.715659] portwarden: {BODY}"),
            ),
            (
                SourceKind::File,
                format!("kern  :warn  : [  635.715659] portwarden: {BODY}"),
            ),
            (
                SourceKind::File,
                format!(
                    "<4>1 2026-11-24T23:06:53.947768+00:00 vm kernel - - - [  635.715659] portwarden: {BODY}"
                ),
            ),
            (
                SourceKind::File,
                format!(
                    "1 2026-11-24T23:06:53.947768+00:00 vm kernel - - [origin ip=\"10.0.0.1\"] portwarden: {BODY}"
                ),
            ),
            (
                SourceKind::Journal,
                format!(
                    r#"{{"__REALTIME_TIMESTAMP":"1795561613947768","_TRANSPORT":"kernel","MESSAGE":"portwarden: {BODY}"}}"#
                ),
            ),
        ];
        for (kind, line) in &lines {
            let probe = p
                .parse(Record {
                    kind: *kind,
                    bytes: line.as_bytes(),
                })
                .unwrap();
            assert_eq!(probe.time, ts("2026-11-24T23:06:53.947768Z"), "{line}");
            assert_eq!(probe.src, "10.250.0.2".parse::<IpAddr>().unwrap());
            assert_eq!((probe.proto, probe.dport), (Proto::Tcp, Some(110)));
            assert_eq!(probe.scan_type(), ScanType::Syn);
        }
        // Stamps to the second.
        for line in [
            format!("Nov 24 23:06:53 vm kernel: portwarden: {BODY}"),
            format!("[Tue Nov 24 23:06:53 2026] portwarden: {BODY}"),
            format!("kern  :warn  : [Tue Nov 24 23:06:53 2026] portwarden: {BODY}"),
        ] {
            assert_eq!(
                file(&mut p, line.as_bytes()).unwrap().time,
                ts("2026-11-24T23:06:53Z"),
                "{line}"
            );
        }
        let unpadded = format!("Nov 4 09:01:02 vm kernel: portwarden: {BODY}");
        assert_eq!(
            file(&mut p, unpadded.as_bytes()).unwrap().time,
            ts("2026-11-04T09:01:02Z")
        );
    }

    #[test]
    fn forged_lines_are_untrusted() {
        let mut p = parser(&["portwarden: "], false);
        let forged = "IN=vt OUT= SRC=198.51.100.7 DST=10.250.0.1 LEN=44 TTL=43 PROTO=TCP SPT=1 DPT=22 SYN URGP=0";
        for line in [
            format!("2026-11-24T23:06:53.947768+00:00 vm mallory: portwarden: {forged}"),
            format!("Nov 24 23:06:53 vm mallory[99]: portwarden: {forged}"),
            format!("12,480,635715700,-;portwarden: {forged}"),
            format!("Nov 4 23:06:53 vm mallory: portwarden: {forged}"),
            // RFC 5424: `logger -t kernel -p kern.warning` (rsyslog makes it facility user),
            // a process id, another APP-NAME.
            format!("<12>1 2026-11-24T23:06:53.947768+00:00 vm kernel - - -  portwarden: {forged}"),
            format!(
                "<13>1 2026-11-24T23:06:53.947768+00:00 vm kernel 4242 - - portwarden: {forged}"
            ),
            format!("1 2026-11-24T23:06:53.947768+00:00 vm kernel 4242 - - portwarden: {forged}"),
            format!("1 2026-11-24T23:06:53.947768+00:00 vm mallory - - - portwarden: {forged}"),
            // dmesg -x shows a write to /dev/kmsg as facility user.
            format!("user  :warn  : [ 2241.416830] portwarden: {forged}"),
            format!(
                r#"{{"__REALTIME_TIMESTAMP":"1","_TRANSPORT":"syslog","MESSAGE":"portwarden: {forged}"}}"#
            ),
        ] {
            assert_eq!(
                file(&mut p, line.as_bytes()).unwrap_err(),
                Reject::Untrusted,
                "{line}"
            );
        }
        // accept_untrusted lifts it.
        let mut lax = parser(&["portwarden: "], true);
        let line = format!("Nov 24 23:06:53 vm mallory: portwarden: {forged}");
        assert_eq!(
            file(&mut lax, line.as_bytes()).unwrap().src,
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        // A user-space line that is no LOG record is just not netfilter.
        assert_eq!(
            file(&mut p, b"Nov 24 23:06:53 vm sshd[1]: Accepted key").unwrap_err(),
            Reject::NotNetfilter
        );
    }

    #[test]
    fn rejects_and_stats() {
        let mut p = parser(&["portwarden: "], false);
        let mut stats = ParseStats::default();
        let big = vec![b'a'; MAX_RECORD_LEN + 1];
        for (line, want) in [
            (&b""[..], Reject::Empty),
            (b"  \r\n", Reject::Empty),
            (&big[..], Reject::TooLong),
            (b"\0\0\0", Reject::BadHeader),
            (
                b"2026-11-24T23:06:53Z vm kernel: [UFW BLOCK] IN=e OUT= SRC=1.2.3.4",
                Reject::PrefixMismatch,
            ),
        ] {
            let got = file(&mut p, line);
            assert_eq!(got.as_ref().err(), Some(&want), "{line:?}");
            stats.count(&got);
        }
        let ok = format!("[1.0] portwarden: {BODY}");
        stats.count(&file(&mut p, ok.as_bytes()));
        assert_eq!((stats.lines, stats.parsed), (6, 1));
        assert_eq!(stats.rejected.get(&Reject::Empty), Some(&2));
        assert_eq!(stats.rejected.get(&Reject::TooLong), Some(&1));
        assert_eq!(
            serde_json::to_string(&Reject::PrefixMismatch).unwrap(),
            "\"prefix_mismatch\""
        );
        for r in Reject::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }

    #[test]
    fn set_now_moves_the_bsd_year() {
        let mut p = parser(&[], false);
        let line = format!("Dec 31 23:59:59 vm kernel: {BODY}");
        // Read in November 2026, a December line is from December 2025.
        assert_eq!(
            file(&mut p, line.as_bytes()).unwrap().time,
            ts("2025-12-31T23:59:59Z")
        );
        p.set_now(ts("2027-01-01T00:00:05Z"));
        assert_eq!(
            file(&mut p, line.as_bytes()).unwrap().time,
            ts("2026-12-31T23:59:59Z")
        );
        p.set_now(ts("2027-06-01T00:00:05Z"));
        assert_eq!(
            file(&mut p, line.as_bytes()).unwrap().time,
            ts("2026-12-31T23:59:59Z")
        );
        p.set_now(ts("2027-12-31T23:59:59Z"));
        assert_eq!(
            file(&mut p, line.as_bytes()).unwrap().time,
            ts("2027-12-31T23:59:59Z")
        );
    }

    #[test]
    fn random_bytes_and_mutations_never_panic() {
        let seeds: Vec<Vec<u8>> = [
            format!("4,479,635715659,-;portwarden: {BODY}"),
            format!("2026-11-24T23:06:53.947768+00:00 vm kernel: [  635.715659] portwarden: {BODY}"),
            format!("Nov 24 23:06:53 vm kernel: portwarden: {BODY}"),
            format!("[  635.715659] portwarden: {BODY}"),
            format!("[Tue Nov 24 23:06:53 2026] portwarden: {BODY}"),
            format!("kern  :warn  : [  635.715659] portwarden: {BODY}"),
            format!("user  :warn  : [Wed Nov  4 23:06:53 2026] portwarden: {BODY}"),
            format!("<4>1 2026-11-24T23:06:53.947768+00:00 vm kernel - - - [  635.715659] portwarden: {BODY}"),
            format!(r#"1 2026-11-24T23:06:53Z vm kernel - id [a@1 x="\]\"y"][b z=""]  portwarden: {BODY}"#),
            format!("Nov 4 09:01:02 vm kernel: portwarden: {BODY}"),
            format!(r#"{{"__REALTIME_TIMESTAMP":"1795561613947768","_TRANSPORT":"kernel","MESSAGE":"portwarden: {BODY}"}}"#),
            "4,1,2,-;portwarden: IN=e OUT= SRC=fd00:0250:0000:0000:0000:0000:0000:0002 DST=fd00::1 LEN=64 HOPLIMIT=3 PROTO=ICMPv6 TYPE=128 [SRC=1".to_string(),
        ]
        .into_iter()
        .map(String::into_bytes)
        .collect();
        let alphabet = b" =:;,.[]{}<>\\\"0123456789INOUTSRCDPTFRAG\0\xff\n-";
        let mut rng = crate::test_rng::Rng(0x9e37_79b9_7f4a_7c15);
        let mut parsers = [parser(&["portwarden: "], false), parser(&[], true)];
        // Every seed is a good record, so mutations start from lines that reach the body.
        for seed in &seeds {
            let got = parsers[1].parse(Record {
                kind: SourceKind::File,
                bytes: seed,
            });
            assert!(got.is_ok(), "{got:?}: {}", String::from_utf8_lossy(seed));
        }
        let mut parsed = 0u32;
        for round in 0..50_000 {
            let mut line = seeds[round % seeds.len()].clone();
            match rng.below(4) {
                0 => {
                    let n = rng.below(300);
                    line = (0..n).map(|_| rng.next() as u8).collect();
                }
                1 => line.truncate(rng.below(line.len() + 1)),
                _ => {
                    for _ in 0..=rng.below(6) {
                        let at = rng.below(line.len());
                        let b = alphabet[rng.below(alphabet.len())];
                        match rng.below(3) {
                            0 => line[at] = b,
                            1 => line.insert(at, b),
                            _ => {
                                line.remove(at);
                            }
                        }
                        if line.is_empty() {
                            break;
                        }
                    }
                }
            }
            for kind in [SourceKind::File, SourceKind::Kmsg, SourceKind::Journal] {
                for p in parsers.iter_mut() {
                    parsed += p.parse(Record { kind, bytes: &line }).is_ok() as u32;
                }
            }
        }
        // Mutations leave many lines intact: the parser is exercised, not just rejecting.
        assert!(parsed > 1000, "{parsed}");
    }
}
