//! Record headers: when a record was written and whether the kernel wrote it.
//!
//! In: one record's bytes and the kind of source it came from. Out: a [`Header`] (time, trust,
//! the message behind the header) or the [`Reject`] reason.
//!
//! Formats, told apart by their first bytes (the source kind only narrows the choice: a kmsg
//! source must give kmsg records, a journal source JSON, a file any of them):
//!
//! | form | example | time | trusted when |
//! | --- | --- | --- | --- |
//! | RFC 3339 syslog | `2026-11-24T23:06:53.947768+00:00 host kernel: [  635.7] msg` (also `+0000`: `journalctl -o short-iso`) | the stamp | tag is `kernel` |
//! | RFC 5424 syslog | `<4>1 2026-11-24T23:06:53.947768+00:00 host kernel - - - msg` | the stamp | APP-NAME is `kernel`, PROCID is `-`, and facility 0 when a PRI is present |
//! | BSD syslog | `Nov 24 23:06:53 host kernel: msg` (also `Nov  4`, `Nov 4`, `Nov 04`, `.123456` after the seconds: `journalctl -o short-precise`) | stamp in the local zone, year inferred | tag is `kernel` |
//! | PRI + RFC 3339 | `<6>2021-03-12T14:10:18Z host kernel: msg` (`RSYSLOG_ForwardFormat`) | the stamp | tag is `kernel` and facility (PRI >> 3) is 0 |
//! | PRI + BSD | `<4>Jun 27 23:29:32 router kernel: msg` (raw RFC 3164, as a receiver may store it) | as BSD | tag is `kernel` and facility is 0 |
//! | `facility.level` before the tag | `Jun 27 23:29:32 router kern.warn kernel: msg` (busybox syslogd, routers), also after a PRI | as BSD / RFC 3339 | tag is `kernel` and the word's facility is `kern` |
//! | dmesg | `[  635.715659] msg` | boot time + stamp | always (the ring) |
//! | `dmesg -T` | `[Tue Nov 24 23:06:53 2026] msg` | stamp in the local zone | always (the ring) |
//! | `dmesg -x` | `kern  :warn  : [  635.715659] msg` (or a `-T` stamp) | as above | facility is `kern` |
//! | /dev/kmsg | `4,479,635715659,-;msg` | boot time + USEC | facility (PRI >> 3) is 0 |
//! | journal JSON | `{"MESSAGE":..,"_TRANSPORT":"kernel",..}` | `__REALTIME_TIMESTAMP` | `_TRANSPORT` is `kernel` |
//!
//! `journalctl -o export` (`FIELD=value` lines, an entry over many lines) is refused line by
//! line as [`Reject::JournalExport`]: no single line holds the time, the transport and the
//! message together, and a parser that joined them would need state across records for a
//! format whose JSON twin (`-o json`, one entry per line) says the same; use that.
//!
//! A printk stamp right after the syslog tag (`kernel: [  635.715659] `) is skipped: the syslog
//! stamp is the better clock. BSD syslog has no year: it is the year of `now` in the configured
//! zone, or the year before when the month is later than now's (a December line read in January).
//! dmesg output cannot show the facility; writing to the ring needs root, so it is trusted.
//! `dmesg -x` does show it: a user-space write to `/dev/kmsg` reads `user  :warn  : ..`. But
//! dmesg (util-linux 2.38) prints no names for a facility it has none for (12 and up, e.g. a
//! write of `<100>x`): that line looks like plain dmesg output and is trusted as such (writing to
//! `/dev/kmsg` needs root; the kmsg source itself sees the facility and refuses it).
//! `dmesg -T` prints the wall time dmesg computed (boot time + stamp, in the local zone, to the
//! second); its weekday must agree with the date.
//! RFC 5424 (rsyslog's `RSYSLOG_SyslogProtocol23Format`, or syslog forwarded over the network):
//! the kernel has no process, so a PROCID other than `-` is user space; the PRI (always written
//! when forwarded, optional in files) must then say facility 0 (`kern`), as for kmsg, because
//! rsyslog maps user-space `kern` messages to `user`. STRUCTURED-DATA is skipped, quotes and
//! `\]` escapes included; a UTF-8 BOM before the message is dropped.
//! Everything but journal JSON is parsed in place, without allocating.

use std::borrow::Cow;

use jiff::civil::{DateTime, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use memchr::memchr;
use serde::Deserialize;

use super::Reject;
use super::masks::{Class, masks};
use crate::record::SourceKind;

/// What the header says about a record.
#[derive(Debug)]
pub(crate) struct Header<'a> {
    pub time: Timestamp,
    /// Written by the kernel (see the table in the module doc).
    pub trusted: bool,
    /// The message after the header (and after a printk stamp).
    pub message: Cow<'a, [u8]>,
}

/// The clocks a header needs: the boot time for kernel-relative stamps, the zone and the
/// current year and month for BSD stamps.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    pub boot_time: Timestamp,
    pub tz: TimeZone,
    pub year: i16,
    pub month: i8,
}

impl Clock {
    pub fn new(now: Timestamp, tz: TimeZone, boot_time: Timestamp) -> Clock {
        let local = tz.to_datetime(now);
        Clock {
            boot_time,
            year: local.year(),
            month: local.month(),
            tz,
        }
    }

    fn since_boot(&self, d: SignedDuration) -> Result<Timestamp, Reject> {
        self.boot_time.checked_add(d).map_err(|_| Reject::BadTime)
    }
}

/// Split `line` into header and message.
pub(crate) fn parse<'a>(
    kind: SourceKind,
    line: &'a [u8],
    clock: &Clock,
) -> Result<Header<'a>, Reject> {
    match kind {
        SourceKind::Kmsg => kmsg(line, clock),
        SourceKind::Journal => journal(line),
        SourceKind::File => match line.first() {
            Some(b'{') => journal(line),
            Some(b'[') => dmesg(line, clock),
            Some(b'<') => with_pri(line, clock),
            Some(b' ') if looks_like_kmsg_continuation(line) => Err(Reject::Continuation),
            Some(b) if b.is_ascii_digit() => match line.iter().find(|b| !b.is_ascii_digit()) {
                Some(b',') => kmsg(line, clock),
                Some(b'-') => rfc3339(line),
                Some(b' ') if line.starts_with(b"1 ") => rfc5424(line),
                _ => Err(Reject::BadHeader),
            },
            Some(_) if looks_like_journal_export(line) => Err(Reject::JournalExport),
            Some(b) if b.is_ascii_uppercase() => bsd(line, clock),
            Some(b) if b.is_ascii_lowercase() => dmesg_decoded(line, clock),
            _ => Err(Reject::BadHeader),
        },
    }
}

/// `/dev/kmsg` dumps put dictionary lines (` SUBSYSTEM=net`) under a record.
fn looks_like_kmsg_continuation(line: &[u8]) -> bool {
    line.len() > 1 && line[1] != b' '
}

/// Decimal digits, at most 18 (below 10^18: fits u64 and i64).
fn digits(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, &b| n * 10 + u64::from(b - b'0')))
}

/// `PRI,SEQ,USEC,FLAGS[,..];MESSAGE`
fn kmsg<'a>(line: &'a [u8], clock: &Clock) -> Result<Header<'a>, Reject> {
    if line.first() == Some(&b' ') {
        return Err(Reject::Continuation);
    }
    let semi = memchr(b';', line).ok_or(Reject::BadHeader)?;
    let mut fields = line[..semi].split(|&b| b == b',');
    let mut next = || fields.next().and_then(digits);
    let pri = next().ok_or(Reject::BadHeader)?;
    let _seq = next().ok_or(Reject::BadHeader)?;
    let usec = next().ok_or(Reject::BadHeader)?;
    // usec < 10^18 (digits), so it fits i64.
    let time = clock.since_boot(SignedDuration::from_micros(usec as i64))?;
    Ok(Header {
        time,
        trusted: pri >> 3 == 0,
        message: Cow::Borrowed(&line[semi + 1..]),
    })
}

/// `[  635.715659]`: seconds since boot. Returns the duration and the rest after `] `.
fn printk_stamp(line: &[u8]) -> Option<(SignedDuration, &[u8])> {
    let (secs, frac, after) = printk_parts(line)?;
    let nanos = digits(frac)? * 10u64.pow(9 - frac.len() as u32);
    let d = SignedDuration::new(i64::try_from(digits(secs)?).ok()?, nanos as i32);
    Some((d, after))
}

/// `[`, spaces, 1 to 18 digits, `.`, 1 to 9 digits, `]` and an optional space: the digits of
/// the seconds and of the fraction, and the rest. No arithmetic: a syslog line's stamp is only
/// skipped (the syslog stamp is the record's time). The stamp's bytes are classified 32 at a
/// time ([`printk_parts_in`]), its runs found from the classes; a stamp that does not end
/// within the first 32 bytes (rare: long runs of spaces or digits) is read byte by byte.
fn printk_parts(line: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    match line.first_chunk::<32>() {
        Some(head) if line[0] == b'[' => match printk_parts_in(head) {
            Some(Some((secs_at, dot, close))) => {
                let after = &line[close + 1..];
                Some((
                    &line[secs_at..dot],
                    &line[dot + 1..close],
                    after.strip_prefix(b" ").unwrap_or(after),
                ))
            }
            Some(None) => None,
            None => printk_parts_bytewise(line),
        },
        _ => printk_parts_bytewise(line),
    }
}

/// Bit `i` set where `head[i]` is, in order: a space, an ASCII digit, a `.`, a `]`.
fn byte_classes(head: &[u8; 32]) -> [u64; 4] {
    masks(
        head,
        [
            Class::Byte(b' '),
            Class::Digit,
            Class::Byte(b'.'),
            Class::Byte(b']'),
        ],
    )
}

/// [`printk_parts`] on the first 32 bytes of a line that opens with `[`: where the seconds
/// start, the dot and the `]` are (`Some(None)`: not a stamp), or `None` when a run reaches
/// past the 32 bytes (the bytes beyond decide).
fn printk_parts_in(head: &[u8; 32]) -> Option<Option<(usize, usize, usize)>> {
    let [spaces, digits, dots, closes] = byte_classes(head);
    // Where the run of bytes of a class, from `from`, ends: the first bit clear at or after
    // `from`; `None` when the run fills the rest of the 32 bytes.
    let run_end = |class: u64, from: usize| -> Option<usize> {
        let end = (!class & (u64::MAX << from)).trailing_zeros() as usize;
        (end < 32).then_some(end)
    };
    let secs_at = run_end(spaces, 1)?;
    let dot = run_end(digits, secs_at)?;
    if !(1..=18).contains(&(dot - secs_at)) || dots >> dot & 1 == 0 {
        return Some(None);
    }
    let close = run_end(digits, dot + 1)?;
    if !(1..=9).contains(&(close - dot - 1)) || closes >> close & 1 == 0 {
        return Some(None);
    }
    Some(Some((secs_at, dot, close)))
}

/// [`printk_parts`] one byte at a time: for lines shorter than 32 bytes and stamps that do
/// not end within them, and the reference the classes are tested against.
fn printk_parts_bytewise(line: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    // Where the run of bytes `pred` holds for, from `i`, ends (generic, so inlined: a
    // function pointer here was called per byte).
    fn run(line: &[u8], mut i: usize, pred: impl Fn(u8) -> bool) -> usize {
        while i < line.len() && pred(line[i]) {
            i += 1;
        }
        i
    }
    if line.first() != Some(&b'[') {
        return None;
    }
    let secs_at = run(line, 1, |c| c == b' ');
    let dot = run(line, secs_at, |c| c.is_ascii_digit());
    if !(1..=18).contains(&(dot - secs_at)) || line.get(dot) != Some(&b'.') {
        return None;
    }
    let close = run(line, dot + 1, |c| c.is_ascii_digit());
    if !(1..=9).contains(&(close - dot - 1)) || line.get(close) != Some(&b']') {
        return None;
    }
    let after = &line[close + 1..];
    Some((
        &line[secs_at..dot],
        &line[dot + 1..close],
        after.strip_prefix(b" ").unwrap_or(after),
    ))
}

fn dmesg<'a>(line: &'a [u8], clock: &Clock) -> Result<Header<'a>, Reject> {
    let (time, message) = dmesg_stamp(line, clock)?;
    Ok(Header {
        time,
        trusted: true,
        message: Cow::Borrowed(message),
    })
}

/// A dmesg stamp, `[  635.715659]` or (`dmesg -T`) `[Tue Nov 24 23:06:53 2026]`: the time and
/// the message after it.
fn dmesg_stamp<'a>(line: &'a [u8], clock: &Clock) -> Result<(Timestamp, &'a [u8]), Reject> {
    match line {
        [b'[', b, ..] if b.is_ascii_uppercase() => ctime_stamp(&line[1..], clock),
        _ => {
            let (since_boot, message) = printk_stamp(line).ok_or(Reject::BadHeader)?;
            Ok((clock.since_boot(since_boot)?, message))
        }
    }
}

/// `Tue Nov 24 23:06:53 2026]` (strftime `%a %b %e %H:%M:%S %Y`, local time), after the `[`.
fn ctime_stamp<'a>(b: &'a [u8], clock: &Clock) -> Result<(Timestamp, &'a [u8]), Reject> {
    let (name, rest) = b.split_at_checked(3).ok_or(Reject::BadHeader)?;
    let weekday = weekday(name).ok_or(Reject::BadHeader)?;
    let rest = rest.strip_prefix(b" ").ok_or(Reject::BadHeader)?;
    let (stamp, rest) = month_day_time(rest)?;
    let rest = rest.strip_prefix(b" ").ok_or(Reject::BadHeader)?;
    let (year, rest) = rest.split_at_checked(4).ok_or(Reject::BadHeader)?;
    let rest = rest.strip_prefix(b"]").ok_or(Reject::BadHeader)?;
    // Four digits: below 10^4, fits i16.
    let year = digits(year).ok_or(Reject::BadTime)? as i16;
    let dt = stamp.in_year(year)?;
    if dt.weekday() != weekday {
        return Err(Reject::BadTime);
    }
    let time = local(dt, &clock.tz)?;
    Ok((time, rest.strip_prefix(b" ").unwrap_or(rest)))
}

fn weekday(name: &[u8]) -> Option<Weekday> {
    const DAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    let i = DAYS.iter().position(|d| &d[..] == name)?;
    // i < 7: a valid offset.
    Weekday::from_monday_zero_offset(i as i8).ok()
}

/// The facility names `dmesg -x` prints (util-linux `facility_names`).
const FACILITIES: [&[u8]; 20] = [
    b"kern",
    b"user",
    b"mail",
    b"daemon",
    b"auth",
    b"syslog",
    b"lpr",
    b"news",
    b"uucp",
    b"cron",
    b"authpriv",
    b"ftp",
    b"local0",
    b"local1",
    b"local2",
    b"local3",
    b"local4",
    b"local5",
    b"local6",
    b"local7",
];

/// The level names `dmesg -x` prints.
const LEVELS: [&[u8]; 8] = [
    b"emerg", b"alert", b"crit", b"err", b"warn", b"notice", b"info", b"debug",
];

/// `kern  :warn  : [  635.715659] msg` (`dmesg -x`, printf `%-6s:%-6s: `), with either dmesg
/// stamp. Trusted when the facility is `kern`: writes to `/dev/kmsg` from user space get `user`.
fn dmesg_decoded<'a>(line: &'a [u8], clock: &Clock) -> Result<Header<'a>, Reject> {
    let (facility, rest) = padded_name(line).ok_or(Reject::BadHeader)?;
    let (level, rest) = padded_name(rest).ok_or(Reject::BadHeader)?;
    if !FACILITIES.contains(&facility) || !LEVELS.contains(&level) {
        return Err(Reject::BadHeader);
    }
    let rest = rest.strip_prefix(b" ").ok_or(Reject::BadHeader)?;
    let (time, message) = dmesg_stamp(rest, clock)?;
    Ok(Header {
        time,
        trusted: facility == b"kern",
        message: Cow::Borrowed(message),
    })
}

/// `name  :` (printf `%-6s:`): a name padded with spaces to 6 bytes, then a colon. Returns the
/// name and the rest after the colon.
fn padded_name(b: &[u8]) -> Option<(&[u8], &[u8])> {
    // The longest name, `authpriv`, is 8 bytes.
    let colon = memchr(b':', &b[..b.len().min(9)])?;
    let field = &b[..colon];
    let name_len = field
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric())
        .count();
    let (name, pad) = field.split_at(name_len);
    let exact = name_len > 0 && field.len() == name_len.max(6) && pad.iter().all(|&c| c == b' ');
    exact.then_some((name, &b[colon + 1..]))
}

/// Where `c` first is in `b`, byte by byte: for the few bytes of a header field, cheaper than
/// `memchr`'s setup.
fn position(b: &[u8], c: u8) -> Option<usize> {
    b.iter().position(|&x| x == c)
}

/// After the stamp: ` host [facility.level ]tag: message`, with an optional printk stamp
/// after the tag. Trusted when the tag is `kernel` and, if a `facility.level` word is there
/// (busybox syslogd, routers), its facility is `kern`.
fn syslog_tail(rest: &[u8]) -> Result<(bool, &[u8]), Reject> {
    let rest = rest.strip_prefix(b" ").ok_or(Reject::BadHeader)?;
    // Short fields: a plain loop beats memchr's setup here, as below.
    let host_end = position(rest, b' ').ok_or(Reject::BadHeader)?;
    if host_end == 0 {
        return Err(Reject::BadHeader);
    }
    let rest = &rest[host_end + 1..];
    // The usual tag, read whole: `kernel: ` is no `facility.level` word (it has no `.`) and
    // ends the tag at its colon, so it is what `tag_and_message` would find (tested).
    if let Some(message) = rest.strip_prefix(b"kernel: ") {
        return Ok((true, skip_printk_stamp(message)));
    }
    tag_and_message(rest)
}

/// After the host: `[facility.level ]tag: message`.
fn tag_and_message(rest: &[u8]) -> Result<(bool, &[u8]), Reject> {
    let (facility_is_kern, rest) = match facility_level_word(rest) {
        Some((facility, after)) => (facility == b"kern", after),
        None => (true, rest),
    };
    let tag_end = rest.iter().position(|&b| b == b':' || b == b' ');
    let tag_end = match tag_end {
        Some(end) if end > 0 && rest[end] == b':' => end,
        // RFC 3164 makes the tag optional (busybox syslogd's own `syslogd started: ..`): no
        // tag, no kernel; the rest is the message.
        Some(end) if end > 0 => return Ok((false, rest)),
        _ => return Err(Reject::BadHeader),
    };
    let trusted = &rest[..tag_end] == b"kernel" && facility_is_kern;
    let message = &rest[tag_end + 1..];
    let message = message.strip_prefix(b" ").unwrap_or(message);
    Ok((trusted, skip_printk_stamp(message)))
}

/// `message` after its printk stamp, when it starts with one.
fn skip_printk_stamp(message: &[u8]) -> &[u8] {
    match printk_parts(message) {
        Some((_, _, after)) => after,
        None => message,
    }
}

/// The level names of `<syslog.h>`'s `prioritynames` (busybox syslogd prints these), beside
/// [`LEVELS`].
const LEVEL_ALIASES: [&[u8]; 4] = [b"error", b"warning", b"panic", b"none"];

/// The facility names of `<syslog.h>`'s `facilitynames` that [`FACILITIES`] lacks.
const FACILITY_ALIASES: [&[u8]; 2] = [b"security", b"mark"];

/// `kern.warn ` (busybox syslogd without `-S`, many routers): a `facility.level` word before
/// the tag. Returns the facility and what follows the word.
fn facility_level_word(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = position(&b[..b.len().min(20)], b' ')?;
    let (facility, level) = b[..end].split_at(position(&b[..end], b'.')?);
    let level = &level[1..];
    let known_facility = FACILITIES.contains(&facility) || FACILITY_ALIASES.contains(&facility);
    let known_level = LEVELS.contains(&level) || LEVEL_ALIASES.contains(&level);
    (known_facility && known_level).then(|| (facility, &b[end + 1..]))
}

/// `journalctl -o export` writes one `FIELD=value` line per field (or `FIELD` and a binary
/// value), entries separated by blank lines: no line is a record on its own (the time, the
/// transport and the message are on different lines), so those are refused by name.
fn looks_like_journal_export(line: &[u8]) -> bool {
    let name_len = line
        .iter()
        .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || **b == b'_')
        .count();
    name_len > 0
        && !line[0].is_ascii_digit()
        && matches!(line.get(name_len), None | Some(b'='))
        && (name_len > 3 || line.get(name_len) == Some(&b'='))
}

/// `<PRI>` before another header: RFC 5424 (`<4>1 ...`), rsyslog's forwarding format
/// (`<6>2021-03-12T14:10:18Z host kernel: ...`, `RSYSLOG_ForwardFormat`) or raw RFC 3164 as a
/// receiver stores it (`<4>Jun 27 23:29:32 router kernel: ...`). The PRI must say facility 0
/// (`kern`) as well for the record to be trusted: rsyslog and syslog-ng give user-space
/// `kern` messages facility `user`, and a receiver keeps what the sender said.
fn with_pri<'a>(line: &'a [u8], clock: &Clock) -> Result<Header<'a>, Reject> {
    let (pri, rest) = pri(line).ok_or(Reject::BadHeader)?;
    let mut header = match rest {
        [b'1', b' ', ..] => return rfc5424(line),
        [y, _, _, _, b'-', ..] if y.is_ascii_digit() => rfc3339(rest)?,
        [b, ..] if b.is_ascii_uppercase() => bsd(rest, clock)?,
        _ => return Err(Reject::BadHeader),
    };
    header.trusted &= pri >> 3 == 0;
    Ok(header)
}

fn rfc3339(line: &[u8]) -> Result<Header<'_>, Reject> {
    let end = memchr(b' ', line).ok_or(Reject::BadHeader)?;
    let time = rfc3339_time(&line[..end])?;
    let (trusted, message) = syslog_tail(&line[end..])?;
    Ok(Header {
        time,
        trusted,
        message: Cow::Borrowed(message),
    })
}

fn rfc3339_time(stamp: &[u8]) -> Result<Timestamp, Reject> {
    if let Some(t) = rfc3339_fast(stamp) {
        return Ok(t);
    }
    let stamp = std::str::from_utf8(stamp).map_err(|_| Reject::BadTime)?;
    stamp.parse().map_err(|_| Reject::BadTime)
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)`, the form rsyslog and journalctl write, read in one
/// pass: the common case of the hot path. `None` for anything else (another form, an
/// out-of-range field, a year outside 1970 to 9000), which jiff's parser then judges: the
/// result is jiff's for every input it accepts (tested below).
///
/// Consecutive lines nearly always share their minute: the calendar arithmetic of
/// `YYYY-MM-DDTHH:MM` is kept per thread for the last minute seen (it was the bulk of this
/// function's time), and only the seconds, fraction and offset are read per line.
fn rfc3339_fast(b: &[u8]) -> Option<Timestamp> {
    thread_local! {
        /// The last `YYYY-MM-DDTHH:MM` read and its seconds since the epoch (as if UTC).
        static MINUTE: std::cell::Cell<Option<([u8; 16], i64)>> =
            const { std::cell::Cell::new(None) };
    }
    if b.len() < 20 || b[16] != b':' {
        return None;
    }
    let key: [u8; 16] = b[..16].try_into().expect("16 bytes");
    let minute_secs = match MINUTE.get() {
        Some((seen, secs)) if seen == key => secs,
        _ => {
            let secs = rfc3339_minute(&key)?;
            MINUTE.set(Some((key, secs)));
            secs
        }
    };
    let second = num(b, 17, 2)?;
    if second > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b[i] == b'.' {
        // The digits read as they are found; scaled to nanoseconds by a table, not `pow`.
        const SCALE: [i64; 10] = [
            1_000_000_000,
            100_000_000,
            10_000_000,
            1_000_000,
            100_000,
            10_000,
            1_000,
            100,
            10,
            1,
        ];
        let start = i + 1;
        // Up to seven digits (rsyslog writes six) are read from one 8-byte word; more, or a
        // stamp too short to hold the word, one digit at a time.
        let (end, fraction) = match b.get(start..start + 8).and_then(leading_digits) {
            Some((len, value)) => (start + len, value as i64),
            None => {
                let mut end = start;
                let mut fraction = 0i64;
                while end < b.len() && b[end].is_ascii_digit() && end - start < 10 {
                    fraction = fraction * 10 + i64::from(b[end] - b'0');
                    end += 1;
                }
                (end, fraction)
            }
        };
        let len = end - start;
        if len == 0 || len > 9 {
            return None;
        }
        nanos = fraction * SCALE[len];
        i = end;
    }
    let offset = match b.get(i..)? {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = num(&[*h1, *h2], 0, 2)?;
            let m = num(&[*m1, *m2], 0, 2)?;
            if h > 23 || m > 59 {
                return None;
            }
            let secs = h * 3600 + m * 60;
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    Timestamp::new(minute_secs + second - offset, nanos as i32).ok()
}

/// The run of ASCII digits that opens `word` (8 bytes) and its value, when the run ends
/// within it (1 to 7 digits); `None` for no digit or all 8 (more may follow). No branch per
/// digit: the digits are found and combined in the word (SWAR).
fn leading_digits(word: &[u8]) -> Option<(usize, u64)> {
    let word: [u8; 8] = word.try_into().ok()?;
    // Each byte xor '0': a digit becomes its value (at most 9), anything else is above 9.
    let v = u64::from_le_bytes(word) ^ 0x3030_3030_3030_3030;
    // Bit 7 of each byte set where the byte is above 9 (its low seven bits plus 0x76 reach
    // bit 7 without carrying into the next byte, or bit 7 was set already).
    let not_digit =
        (((v & 0x7f7f_7f7f_7f7f_7f7f) + 0x7676_7676_7676_7676) | v) & 0x8080_8080_8080_8080;
    let len = (not_digit.trailing_zeros() / 8) as usize;
    if !(1..=7).contains(&len) {
        return None;
    }
    // The digits moved to the top of the word (zeros, leading, below them), then combined
    // pairwise: 2-digit, 4-digit, 8-digit values (the first byte is the most significant).
    let mut n = v << (8 * (8 - len));
    n = (n & 0x0f0f_0f0f_0f0f_0f0f).wrapping_mul(2561) >> 8;
    n = (n & 0x00ff_00ff_00ff_00ff).wrapping_mul(6_553_601) >> 16;
    n = (n & 0x0000_ffff_0000_ffff).wrapping_mul(42_949_672_960_001) >> 32;
    Some((len, n))
}

/// `len` decimal digits at `at`, or `None`.
fn num(b: &[u8], at: usize, len: usize) -> Option<i64> {
    let digits = b.get(at..at + len)?;
    digits.iter().try_fold(0i64, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
    })
}

/// `YYYY-MM-DDTHH:MM` as seconds since the epoch (read as UTC), for a valid date and time of
/// a year from 1970 to 9000; `None` otherwise.
fn rfc3339_minute(b: &[u8; 16]) -> Option<i64> {
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let (year, month, day) = (num(b, 0, 4)?, num(b, 5, 2)?, num(b, 8, 2)?);
    let (hour, minute) = (num(b, 11, 2)?, num(b, 14, 2)?);
    if !(1970..=9000).contains(&year) || !(1..=12).contains(&month) || hour > 23 || minute > 59 {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if day < 1 || day > month_days[(month - 1) as usize] {
        return None;
    }
    // Days since 1970-01-01 of the civil date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3_600 + minute * 60)
}

/// One header field of RFC 5424 and the rest after the space that ends it.
fn field(b: &[u8]) -> Result<(&[u8], &[u8]), Reject> {
    let end = memchr(b' ', b).ok_or(Reject::BadHeader)?;
    if end == 0 {
        return Err(Reject::BadHeader);
    }
    Ok((&b[..end], &b[end + 1..]))
}

/// `<PRI>`: 1 to 3 digits, at most 191 (facility 23, level 7). Returns it and the rest.
fn pri(b: &[u8]) -> Option<(u64, &[u8])> {
    let rest = b.strip_prefix(b"<")?;
    let close = memchr(b'>', &rest[..rest.len().min(4)])?;
    let pri = digits(&rest[..close]).filter(|&p| p <= 191)?;
    Some((pri, &rest[close + 1..]))
}

/// STRUCTURED-DATA: `-`, or `[id param="value" ..]` elements back to back, in whose values
/// `"`, `\` and `]` are escaped with a backslash. Returns what follows it.
fn skip_structured_data(b: &[u8]) -> Result<&[u8], Reject> {
    if let Some(rest) = b.strip_prefix(b"-") {
        return Ok(rest);
    }
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        // An element starts with its SD-ID.
        if matches!(b.get(i + 1), None | Some(b' ' | b']' | b'"' | b'=')) {
            return Err(Reject::BadHeader);
        }
        i += 1;
        let mut quoted = false;
        loop {
            match b.get(i) {
                None => return Err(Reject::BadHeader),
                Some(b'\\') if quoted => i += 2,
                Some(b'"') => {
                    quoted = !quoted;
                    i += 1;
                }
                Some(b']') if !quoted => {
                    i += 1;
                    break;
                }
                Some(_) => i += 1,
            }
        }
    }
    if i == 0 {
        return Err(Reject::BadHeader);
    }
    Ok(&b[i..])
}

/// `[<PRI>]1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]` (RFC 5424).
fn rfc5424(line: &[u8]) -> Result<Header<'_>, Reject> {
    let (pri, rest) = match line.first() {
        Some(b'<') => pri(line)
            .map(|(p, rest)| (Some(p), rest))
            .ok_or(Reject::BadHeader)?,
        _ => (None, line),
    };
    let rest = rest.strip_prefix(b"1 ").ok_or(Reject::BadHeader)?;
    let (stamp, rest) = field(rest)?;
    // `-` (no time) is refused here too: a probe needs one.
    let time = rfc3339_time(stamp)?;
    let (_host, rest) = field(rest)?;
    let (app, rest) = field(rest)?;
    let (procid, rest) = field(rest)?;
    let (_msgid, rest) = field(rest)?;
    let message = match skip_structured_data(rest)? {
        [] => &[][..],
        [b' ', message @ ..] => message,
        _ => return Err(Reject::BadHeader),
    };
    let message = message.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(message);
    // rsyslog's `%msg%` of a message it read in BSD form keeps the space after the tag.
    let message = message.strip_prefix(b" ").unwrap_or(message);
    let message = skip_printk_stamp(message);
    Ok(Header {
        time,
        trusted: app == b"kernel" && procid == b"-" && pri.is_none_or(|p| p >> 3 == 0),
        message: Cow::Borrowed(message),
    })
}

fn month(name: &[u8]) -> Option<i8> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    MONTHS
        .iter()
        .position(|m| &m[..] == name)
        .map(|i| i as i8 + 1)
}

fn two_digits(v: &[u8]) -> Option<i8> {
    match v {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Some(((a - b'0') * 10 + (b - b'0')) as i8)
        }
        _ => None,
    }
}

/// A date and time without a year, as BSD syslog and `dmesg -T` write them.
struct MonthDayTime {
    month: i8,
    day: i8,
    hour: i8,
    minute: i8,
    second: i8,
    nanosecond: i32,
}

impl MonthDayTime {
    fn in_year(&self, year: i16) -> Result<DateTime, Reject> {
        DateTime::new(
            year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.nanosecond,
        )
        .map_err(|_| Reject::BadTime)
    }
}

/// A civil time in `tz` (a time skipped or repeated by a DST change: the earlier reading).
fn local(dt: DateTime, tz: &TimeZone) -> Result<Timestamp, Reject> {
    tz.to_ambiguous_timestamp(dt)
        .compatible()
        .map_err(|_| Reject::BadTime)
}

/// `Nov 24 23:06:53`, the day padded with a space (`Nov  4`, the standard form) or not
/// (`Nov 4`, written by some relays and by hand). Returns the stamp and the rest after it.
fn month_day_time(b: &[u8]) -> Result<(MonthDayTime, &[u8]), Reject> {
    let (name, rest) = b.split_at_checked(3).ok_or(Reject::BadHeader)?;
    let month = month(name).ok_or(Reject::BadHeader)?;
    let rest = rest.strip_prefix(b" ").ok_or(Reject::BadHeader)?;
    let (day, rest) = match rest {
        [b' ', d, b' ', rest @ ..] if d.is_ascii_digit() => ((d - b'0') as i8, rest),
        [d, b' ', rest @ ..] if d.is_ascii_digit() => ((d - b'0') as i8, rest),
        [a, b, b' ', rest @ ..] => (two_digits(&[*a, *b]).ok_or(Reject::BadTime)?, rest),
        _ => return Err(Reject::BadHeader),
    };
    let (time, rest) = rest.split_at_checked(8).ok_or(Reject::BadHeader)?;
    if time[2] != b':' || time[5] != b':' {
        return Err(Reject::BadTime);
    }
    let stamp = MonthDayTime {
        month,
        day,
        hour: two_digits(&time[0..2]).ok_or(Reject::BadTime)?,
        minute: two_digits(&time[3..5]).ok_or(Reject::BadTime)?,
        second: two_digits(&time[6..8]).ok_or(Reject::BadTime)?,
        nanosecond: 0,
    };
    // `journalctl -o short-precise`: `Dec 01 21:45:00.123456`.
    let mut stamp = stamp;
    let rest = match rest.strip_prefix(b".") {
        Some(frac) => {
            let n = frac.iter().take_while(|b| b.is_ascii_digit()).count();
            if n == 0 || n > 9 {
                return Err(Reject::BadTime);
            }
            // n <= 9 digits: below 10^9, fits i32.
            let value = digits(&frac[..n]).ok_or(Reject::BadTime)?;
            stamp.nanosecond = (value * 10u64.pow(9 - n as u32)) as i32;
            &frac[n..]
        }
        None => rest,
    };
    Ok((stamp, rest))
}

/// `Nov 24 23:06:53 host tag: message` (day `Nov  4` or `Nov 4`).
fn bsd<'a>(line: &'a [u8], clock: &Clock) -> Result<Header<'a>, Reject> {
    let (stamp, rest) = month_day_time(line)?;
    let year = if stamp.month > clock.month {
        clock.year - 1
    } else {
        clock.year
    };
    let time = local(stamp.in_year(year)?, &clock.tz)?;
    let (trusted, message) = syslog_tail(rest)?;
    Ok(Header {
        time,
        trusted,
        message: Cow::Borrowed(message),
    })
}

/// The fields of a `journalctl -o json` entry we read.
#[derive(Deserialize)]
struct JournalEntry {
    #[serde(rename = "MESSAGE")]
    message: Option<JournalMessage>,
    #[serde(rename = "__REALTIME_TIMESTAMP")]
    realtime: Option<String>,
    #[serde(rename = "_TRANSPORT")]
    transport: Option<String>,
}

/// journald prints a message that is not valid UTF-8 as an array of bytes.
#[derive(Deserialize)]
#[serde(untagged)]
enum JournalMessage {
    Text(String),
    Bytes(Vec<u8>),
}

fn journal(line: &[u8]) -> Result<Header<'static>, Reject> {
    let entry: JournalEntry = serde_json::from_slice(line).map_err(|_| Reject::BadJson)?;
    let realtime = entry.realtime.ok_or(Reject::MissingField)?;
    let usec = digits(realtime.as_bytes()).ok_or(Reject::BadTime)?;
    // usec < 10^18 (digits), so it fits i64.
    let time = Timestamp::from_microsecond(usec as i64).map_err(|_| Reject::BadTime)?;
    let message = match entry.message.ok_or(Reject::MissingField)? {
        JournalMessage::Text(s) => s.into_bytes(),
        JournalMessage::Bytes(b) => b,
    };
    Ok(Header {
        time,
        trusted: entry.transport.as_deref() == Some("kernel"),
        message: Cow::Owned(message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn clock(now: &str, tz: &str) -> Clock {
        Clock::new(
            ts(now),
            TimeZone::get(tz).unwrap(),
            ts("2026-11-24T22:56:18.232109Z"),
        )
    }

    fn utc() -> Clock {
        clock("2026-11-24T23:30:00Z", "UTC")
    }

    #[test]
    fn the_rfc3339_fast_path_agrees_with_jiff() {
        let mut cases: Vec<String> = [
            "2026-11-18T09:14:03.123456+00:00",
            "2026-11-18T09:14:03Z",
            "2026-11-18T09:14:03.1-05:30",
            "2024-02-29T23:59:59.999999999+14:00",
            "2023-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-11-31T00:00:00Z",
            "2026-11-18T24:00:00Z",
            "2026-11-18T23:60:00Z",
            "2026-11-18T23:59:60Z",
            "2026-11-18T23:59:59.Z",
            "2026-11-18T23:59:59.1234567890Z",
            "2026-11-18T23:59:59+24:00",
            "2026-11-18T23:59:59+23:60",
            "2026-11-18T23:59:59+0100",
            "2026-11-18t23:59:59z",
            "2026-11-18 23:59:59Z",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:00:00-00:01",
            "9000-12-31T23:59:59Z",
            "2026-11-18T23:59:59",
            "2026-1-18T23:59:59Z",
            "+2026-11-18T23:59:59Z",
            "2026-11-18T23:59:59Z ",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every day of four years around a leap year, at the edges of the day, with offsets.
        let mut t: Timestamp = "2023-12-31T00:00:00Z".parse().unwrap();
        for _ in 0..(4 * 366) {
            for (tod, off) in [
                ("00:00:00", "Z"),
                ("23:59:59.5", "+05:45"),
                ("12:00:00.000001", "-11:00"),
            ] {
                let date = t.strftime("%Y-%m-%d").to_string();
                cases.push(format!("{date}T{tod}{off}"));
            }
            t = t.checked_add(jiff::SignedDuration::from_hours(24)).unwrap();
        }
        // Fractions of every length, followed by each kind of offset or by nothing.
        for len in 0..=11 {
            for off in ["Z", "+05:45", "-00:00", "", "x", "+0"] {
                let digits: String = (0..len)
                    .map(|i| char::from(b'0' + (7 * i % 10) as u8))
                    .collect();
                cases.push(format!("2026-11-18T23:59:59.{digits}{off}"));
            }
        }
        // The forms rsyslog and journalctl write take the fast path.
        for c in &cases[..4] {
            assert!(rfc3339_fast(c.as_bytes()).is_some(), "{c}");
        }
        // In order, then each case right after a valid stamp of the same minute (the cached
        // minute must not vouch for what follows it), then each case twice in a row.
        for c in &cases {
            let jiff = c.parse::<Timestamp>().ok();
            if let Some(fast) = rfc3339_fast(c.as_bytes()) {
                assert_eq!(Some(fast), jiff, "{c:?}");
            }
            assert_eq!(rfc3339_time(c.as_bytes()).ok(), jiff, "{c:?}");
        }
        for c in &cases {
            let jiff = c.parse::<Timestamp>().ok();
            if c.len() >= 16 {
                let primer = format!("{}:00Z", &c[..16]);
                rfc3339_fast(primer.as_bytes());
            }
            assert_eq!(
                rfc3339_time(c.as_bytes()).ok(),
                jiff,
                "after its minute: {c:?}"
            );
            assert_eq!(rfc3339_time(c.as_bytes()).ok(), jiff, "twice: {c:?}");
        }
    }

    #[test]
    fn leading_digits_are_what_a_loop_reads() {
        let mut rng = crate::test_rng::Rng(0x9e37_79b9_7f4a_7c15);
        let alphabet = b"0123456789012345678901234567890123456789+-:Z ./\x00\xff\x80\x89\x8a:";
        for _ in 0..200_000 {
            let word: Vec<u8> = (0..8)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            let len = word.iter().take_while(|b| b.is_ascii_digit()).count();
            let value = word[..len]
                .iter()
                .fold(0u64, |n, &b| n * 10 + u64::from(b - b'0'));
            let want = (1..=7).contains(&len).then_some((len, value));
            assert_eq!(
                leading_digits(&word),
                want,
                "{:?}",
                String::from_utf8_lossy(&word)
            );
        }
        assert_eq!(leading_digits(b"005000+0"), Some((6, 5000)));
        assert_eq!(leading_digits(b"9999999Z"), Some((7, 9_999_999)));
        assert_eq!(leading_digits(b"12345678"), None);
        assert_eq!(leading_digits(b"+1234567"), None);
    }

    /// `printk_stamp` as it was written first (memchr for `]` and `.`, then `digits`): the
    /// reference the one-pass `printk_parts` is held to.
    fn reference_printk_stamp(line: &[u8]) -> Option<(SignedDuration, &[u8])> {
        let rest = line.strip_prefix(b"[")?;
        let close = memchr(b']', rest)?;
        let stamp = &rest[..close];
        let stamp = &stamp[stamp.iter().take_while(|&&b| b == b' ').count()..];
        let dot = memchr(b'.', stamp)?;
        let secs = digits(&stamp[..dot])?;
        let frac = &stamp[dot + 1..];
        if frac.len() > 9 {
            return None;
        }
        let nanos = digits(frac)? * 10u64.pow(9 - frac.len() as u32);
        let d = SignedDuration::new(i64::try_from(secs).ok()?, nanos as i32);
        let after = &rest[close + 1..];
        Some((d, after.strip_prefix(b" ").unwrap_or(after)))
    }

    #[test]
    fn printk_stamps_are_read_as_the_reference_reads_them() {
        let mut rng = crate::test_rng::Rng(0x9e37_79b9_7f4a_7c15);
        let mut next = move || rng.next();
        let mut cases: Vec<Vec<u8>> = [
            &b"[  635.715659] x"[..],
            b"[635.7]",
            b"[ 1.123456789] y",
            b"[ 1.1234567890] y",
            b"[1234567890123456789.5]",
            b"[123456789012345678.5]",
            b"[.5]",
            b"[5.]",
            b"[5]",
            b"[ 5.5 ]",
            b"[5.5.5]",
            b"[-5.5]",
            b"[5.5] [6.6] z",
            b"5.5]",
            b"[",
            b"",
        ]
        .iter()
        .map(|c| c.to_vec())
        .collect();
        for _ in 0..50_000 {
            let len = (next() % 26) as usize;
            let mut c = vec![b'['];
            c.extend((0..len).map(|_| b" 0123456789.]x["[(next() % 15) as usize]));
            cases.push(c);
        }
        for c in &cases {
            let shown = String::from_utf8_lossy(c);
            assert_eq!(printk_stamp(c), reference_printk_stamp(c), "{shown:?}");
            assert_eq!(
                printk_parts(c).map(|(_, _, after)| after),
                reference_printk_stamp(c).map(|(_, after)| after),
                "{shown:?}"
            );
        }
    }

    /// [`byte_classes`] one byte at a time (the masks' own reference, for the classes the
    /// stamp reader expects in that order): what it is tested against.
    fn byte_classes_bytewise(head: &[u8; 32]) -> [u64; 4] {
        use crate::parse::masks::{Class, bytewise};
        [
            Class::Byte(b' '),
            Class::Digit,
            Class::Byte(b'.'),
            Class::Byte(b']'),
        ]
        .map(|class| bytewise(head, class))
    }

    /// Stamps long enough for the 32-byte classes, the runs ending anywhere in them and
    /// beyond (spaces, digits, junk), against the byte-at-a-time reader.
    #[test]
    fn printk_stamps_read_by_classes_are_what_the_bytewise_reader_reads() {
        let mut rng = crate::test_rng::Rng(0x2545_f491_4f6c_dd1d);
        let mut cases: Vec<Vec<u8>> = vec![
            b"[  635.715659] portwarden: IN=eth0 OUT= MAC=".to_vec(),
            b"[123456789012345678.123456789] x and more".to_vec(),
            b"[1234567890123456789.5] and more bytes to 32".to_vec(),
            b"[                              5.5] spaces".to_vec(),
            b"[                             5.5] spaces".to_vec(),
            b"[12345678901234567890123456789012.5]".to_vec(),
            b"[ 1.123456789] y..............................".to_vec(),
            b"[ 1.1234567890] y.............................".to_vec(),
        ];
        for _ in 0..100_000 {
            // Runs of each part of random lengths around the limits, then junk to 40 bytes.
            let mut c = vec![b'['];
            c.extend(std::iter::repeat_n(b' ', rng.below(13)));
            let digits = rng.below(21);
            c.extend((0..digits).map(|i| b'0' + (i % 10) as u8));
            if rng.below(8) != 0 {
                c.push(b'.');
            }
            c.extend(std::iter::repeat_n(b'7', rng.below(12)));
            c.push(b"] .x5["[rng.below(6)]);
            while c.len() < 40 {
                c.push(b" 0123456789.]x["[rng.below(15)]);
            }
            cases.push(c);
        }
        // How many took each way: a stamp, not a stamp, decided past the 32 bytes.
        let mut ways = [0usize; 3];
        for c in &cases {
            assert_eq!(
                printk_parts(c),
                printk_parts_bytewise(c),
                "{:?}",
                String::from_utf8_lossy(c)
            );
            if let Some(head) = c.first_chunk::<32>() {
                assert_eq!(byte_classes(head), byte_classes_bytewise(head));
                ways[match printk_parts_in(head) {
                    Some(Some(_)) => 0,
                    Some(None) => 1,
                    None => 2,
                }] += 1;
            }
        }
        assert!(ways.iter().all(|&n| n > 1000), "{ways:?}");
    }

    #[test]
    fn the_kernel_tag_read_whole_is_what_the_general_path_reads() {
        for tail in [
            &b"kernel: [  635.715659] portwarden: IN=eth0"[..],
            b"kernel: portwarden: IN=eth0",
            b"kernel:  [ 1.5] x",
            b"kernel: [1.5]x",
            b"kernel: ",
            b"kernel: [ 1.] x",
        ] {
            let fast = syslog_tail(&[&b" vm "[..], tail].concat()).map(|(t, m)| (t, m.to_vec()));
            let general = tag_and_message(tail).map(|(t, m)| (t, m.to_vec()));
            assert_eq!(fast, general, "{:?}", String::from_utf8_lossy(tail));
        }
    }

    #[test]
    fn kmsg_record() {
        let h = parse(
            SourceKind::Kmsg,
            b"4,479,635715659,-;portwarden: IN=vt",
            &utc(),
        )
        .unwrap();
        assert_eq!(h.time, ts("2026-11-24T23:06:53.947768Z"));
        assert!(h.trusted);
        assert_eq!(&h.message[..], b"portwarden: IN=vt");
        // Newer kernels add fields after FLAGS.
        let h = parse(SourceKind::Kmsg, b"4,1,2,-,caller=T1;x", &utc()).unwrap();
        assert_eq!(&h.message[..], b"x");
        // Facility 1 (user): someone wrote to /dev/kmsg.
        let h = parse(
            SourceKind::Kmsg,
            b"12,480,635715700,-;portwarden: IN=vt",
            &utc(),
        )
        .unwrap();
        assert!(!h.trusted);
        assert_eq!(
            parse(SourceKind::Kmsg, b" SUBSYSTEM=net", &utc()).unwrap_err(),
            Reject::Continuation
        );
        for bad in [
            &b"4,479;x"[..],
            b"4,a,1,-;x",
            b"no semicolon",
            b";",
            b"4,1,99999999999999999999,-;x",
        ] {
            assert_eq!(
                parse(SourceKind::Kmsg, bad, &utc()).unwrap_err(),
                Reject::BadHeader,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rfc3339_syslog_with_printk_stamp() {
        let line = b"2026-11-24T23:06:53.947768+00:00 vm kernel: [  635.715659] portwarden: IN=vt";
        let h = parse(SourceKind::File, line, &utc()).unwrap();
        assert_eq!(h.time, ts("2026-11-24T23:06:53.947768Z"));
        assert!(h.trusted);
        assert_eq!(&h.message[..], b"portwarden: IN=vt");
        let h = parse(
            SourceKind::File,
            b"2026-11-24T23:06:53+01:00 vm kernel: x",
            &utc(),
        )
        .unwrap();
        assert_eq!(
            (h.time, &h.message[..]),
            (ts("2026-11-24T22:06:53Z"), &b"x"[..])
        );
        assert_eq!(
            parse(
                SourceKind::File,
                b"2026-13-24T23:06:53Z vm kernel: x",
                &utc()
            )
            .unwrap_err(),
            Reject::BadTime
        );
    }

    #[test]
    fn syslog_tags_decide_trust() {
        for (line, trusted) in [
            (&b"2026-11-24T23:06:53Z vm kernel: x"[..], true),
            (b"2026-11-24T23:06:53Z vm root: x", false),
            (b"2026-11-24T23:06:53Z vm logger[311]: x", false),
            (b"2026-11-24T23:06:53Z vm kernelx: x", false),
            (b"Nov 24 23:06:53 vm kernel: x", true),
            (b"Nov 24 23:06:53 vm mallory: kernel: x", false),
        ] {
            assert_eq!(
                parse(SourceKind::File, line, &utc()).unwrap().trusted,
                trusted,
                "{line:?}"
            );
        }
        assert_eq!(
            parse(SourceKind::File, b"2026-11-24T23:06:53Z vm", &utc()).unwrap_err(),
            Reject::BadHeader
        );
        // RFC 3164's tag is optional: understood, but nothing says the kernel wrote it.
        let h = parse(
            SourceKind::File,
            b"2026-11-24T23:06:53Z vm no tag here",
            &utc(),
        )
        .unwrap();
        assert!(!h.trusted);
        assert_eq!(&h.message[..], b"no tag here");
    }

    #[test]
    fn bsd_year_and_zone() {
        let h = parse(SourceKind::File, b"Nov 24 23:06:53 vm kernel: x", &utc()).unwrap();
        assert_eq!(h.time, ts("2026-11-24T23:06:53Z"));
        let berlin = clock("2026-11-24T23:30:00Z", "Europe/Berlin");
        let h = parse(SourceKind::File, b"Nov  4 09:00:00 vm kernel: x", &berlin).unwrap();
        assert_eq!(h.time, ts("2026-11-04T08:00:00Z"));
        // New Year: a December line read on 1 January is last year's.
        let jan = clock("2027-01-01T00:00:30Z", "UTC");
        let h = parse(SourceKind::File, b"Dec 31 23:59:59 vm kernel: x", &jan).unwrap();
        assert_eq!(h.time, ts("2026-12-31T23:59:59Z"));
        let h = parse(SourceKind::File, b"Jan  1 00:00:10 vm kernel: x", &jan).unwrap();
        assert_eq!(h.time, ts("2027-01-01T00:00:10Z"));
        // The zone decides the year: 2027-01-01T00:30 in Berlin is still 2026 in New York.
        let ny = clock("2027-01-01T00:30:00Z", "America/New_York");
        let h = parse(SourceKind::File, b"Dec 31 19:00:00 vm kernel: x", &ny).unwrap();
        assert_eq!(h.time, ts("2027-01-01T00:00:00Z"));
        for bad in [
            &b"Nov 31 23:06:53 vm kernel: x"[..],
            b"Feb 29 10:00:00 vm kernel: x",
            b"Nov 24 25:06:53 vm kernel: x",
            b"Nov 24 2x:06:53 vm kernel: x",
        ] {
            assert_eq!(
                parse(SourceKind::File, bad, &utc()).unwrap_err(),
                Reject::BadTime,
                "{bad:?}"
            );
        }
        assert_eq!(
            parse(SourceKind::File, b"Foo 24 23:06:53 vm kernel: x", &utc()).unwrap_err(),
            Reject::BadHeader
        );
    }

    #[test]
    fn dmesg_stamp_is_since_boot() {
        let h = parse(
            SourceKind::File,
            b"[  635.715659] portwarden: IN=vt",
            &utc(),
        )
        .unwrap();
        assert_eq!(h.time, ts("2026-11-24T23:06:53.947768Z"));
        assert_eq!(&h.message[..], b"portwarden: IN=vt");
        for bad in [
            &b"[ 635] x"[..],
            b"[abc.1] x",
            b"[1.1234567890] x",
            b"[ 1.5 x",
        ] {
            assert_eq!(
                parse(SourceKind::File, bad, &utc()).unwrap_err(),
                Reject::BadHeader,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rfc5424_syslog() {
        let want = ts("2026-11-24T23:06:53.947768Z");
        for line in [
            // Forwarded: with a PRI (facility 0, level 4).
            &b"<4>1 2026-11-24T23:06:53.947768+00:00 vm kernel - - - [  635.715659] portwarden: IN=vt"[..],
            // In a file, without one.
            b"1 2026-11-24T23:06:53.947768+00:00 vm kernel - - - portwarden: IN=vt",
            // rsyslog's %msg% keeps the space after the tag.
            b"<4>1 2026-11-24T23:06:53.947768+00:00 vm kernel - - -  portwarden: IN=vt",
            // Structured data, several elements, an escaped `]` and `"` in a value; a MSGID.
            br#"<0>1 2026-11-25T00:06:53.947768+01:00 vm kernel - netfilter [a@1 x="1"][timeQuality tzKnown="1" isSynced="0"][b@2 y="a\]b\"]c"] portwarden: IN=vt"#,
            // A UTF-8 BOM before the message.
            b"1 2026-11-24T23:06:53.947768Z vm kernel - - - \xEF\xBB\xBFportwarden: IN=vt",
        ] {
            let h = parse(SourceKind::File, line, &utc()).unwrap();
            assert_eq!(h.time, want, "{line:?}");
            assert!(h.trusted, "{line:?}");
            assert_eq!(&h.message[..], b"portwarden: IN=vt", "{line:?}");
        }
        // No message at all.
        let h = parse(
            SourceKind::File,
            b"1 2026-11-24T23:06:53Z vm kernel - - -",
            &utc(),
        )
        .unwrap();
        assert_eq!(&h.message[..], b"");
    }

    #[test]
    fn rfc5424_trust() {
        for (line, trusted) in [
            (&b"<4>1 2026-11-24T23:06:53Z vm kernel - - - x"[..], true),
            (b"<7>1 2026-11-24T23:06:53Z vm kernel - - - x", true),
            // `logger -t kernel -p kern.warning` as rsyslog writes it: facility user.
            (b"<12>1 2026-11-24T23:06:53Z vm kernel - - -  x", false),
            (b"<8>1 2026-11-24T23:06:53Z vm kernel - - - x", false),
            // A process id: user space.
            (b"<13>1 2026-11-24T23:06:53Z vm kernel 42 - - x", false),
            (b"1 2026-11-24T23:06:53Z vm kernel 42 - - x", false),
            (b"<0>1 2026-11-24T23:06:53Z vm kernel 0 - - x", false),
            (b"1 2026-11-24T23:06:53Z vm mallory - - - x", false),
            (b"1 2026-11-24T23:06:53Z vm kernelx - - - x", false),
            (b"1 2026-11-24T23:06:53Z vm - - - - x", false),
            // The tag in the message proves nothing.
            (b"1 2026-11-24T23:06:53Z vm logger - - - kernel: x", false),
        ] {
            assert_eq!(
                parse(SourceKind::File, line, &utc()).unwrap().trusted,
                trusted,
                "{line:?}"
            );
        }
    }

    #[test]
    fn rfc5424_malformed() {
        for (line, want) in [
            (&b"1 - vm kernel - - - x"[..], Reject::BadTime),
            (b"<4>1 - vm kernel - - - x", Reject::BadTime),
            (b"1 2026-13-24T23:06:53Z vm kernel - - - x", Reject::BadTime),
            (b"1 2026-11-24T23:06:53 vm kernel - - - x", Reject::BadTime),
            (
                b"<4>2 2026-11-24T23:06:53Z vm kernel - - - x",
                Reject::BadHeader,
            ),
            (
                b"2 2026-11-24T23:06:53Z vm kernel - - - x",
                Reject::BadHeader,
            ),
            (
                b"<192>1 2026-11-24T23:06:53Z vm kernel - - - x",
                Reject::BadHeader,
            ),
            (
                b"<>1 2026-11-24T23:06:53Z vm kernel - - - x",
                Reject::BadHeader,
            ),
            (
                b"<0004>1 2026-11-24T23:06:53Z vm kernel - - - x",
                Reject::BadHeader,
            ),
            (
                b"<4 1 2026-11-24T23:06:53Z vm kernel - - - x",
                Reject::BadHeader,
            ),
            (
                b"<4>1  2026-11-24T23:06:53Z vm kernel - - - x",
                Reject::BadHeader,
            ),
            (b"1 2026-11-24T23:06:53Z vm kernel - -", Reject::BadHeader),
            (b"1 2026-11-24T23:06:53Z vm kernel", Reject::BadHeader),
            (
                b"1 2026-11-24T23:06:53Z vm kernel - - -x",
                Reject::BadHeader,
            ),
            (
                b"1 2026-11-24T23:06:53Z vm kernel - - [a x=\"1\"]x",
                Reject::BadHeader,
            ),
            (
                b"1 2026-11-24T23:06:53Z vm kernel - - [a x=\"1]\" x",
                Reject::BadHeader,
            ),
            (
                b"1 2026-11-24T23:06:53Z vm kernel - - [a x=\"1\\\"] x",
                Reject::BadHeader,
            ),
            (
                b"1 2026-11-24T23:06:53Z vm kernel - - [a x=\"1\\",
                Reject::BadHeader,
            ),
            (
                b"1 2026-11-24T23:06:53Z vm kernel - - [] x",
                Reject::BadHeader,
            ),
            (b"1 2026-11-24T23:06:53Z vm kernel - - x", Reject::BadHeader),
        ] {
            assert_eq!(
                parse(SourceKind::File, line, &utc()).unwrap_err(),
                want,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn pri_before_rfc3339_and_bsd_stamps() {
        for (line, time, trusted) in [
            // RSYSLOG_ForwardFormat.
            (
                &b"<4>2026-11-24T23:06:53.947768+00:00 vm kernel: [  635.715659] portwarden: IN=vt"
                    [..],
                "2026-11-24T23:06:53.947768Z",
                true,
            ),
            (
                b"<6>2026-11-24T23:06:53Z vm kernel: portwarden: IN=vt",
                "2026-11-24T23:06:53Z",
                true,
            ),
            // Raw RFC 3164.
            (
                b"<4>Nov 24 23:06:53 vm kernel: portwarden: IN=vt",
                "2026-11-24T23:06:53Z",
                true,
            ),
            // Facility not kern: understood, but not the kernel's.
            (
                b"<161>Nov 24 23:06:53 vm kernel: portwarden: IN=vt",
                "2026-11-24T23:06:53Z",
                false,
            ),
            (
                b"<12>2026-11-24T23:06:53Z vm kernel: portwarden: IN=vt",
                "2026-11-24T23:06:53Z",
                false,
            ),
            (
                b"<4>Nov 24 23:06:53 vm mallory: portwarden: IN=vt",
                "2026-11-24T23:06:53Z",
                false,
            ),
        ] {
            let h = parse(SourceKind::File, line, &utc()).unwrap();
            assert_eq!(h.time, ts(time), "{line:?}");
            assert_eq!(h.trusted, trusted, "{line:?}");
            assert_eq!(&h.message[..], b"portwarden: IN=vt", "{line:?}");
        }
        for (bad, want) in [
            (&b"<4>"[..], Reject::BadHeader),
            (b"<4> Nov 24 23:06:53 vm kernel: x", Reject::BadHeader),
            (b"<4>2026-13-24T23:06:53Z vm kernel: x", Reject::BadTime),
            (b"<4>Nov 31 23:06:53 vm kernel: x", Reject::BadTime),
            (b"<4>nov 24 23:06:53 vm kernel: x", Reject::BadHeader),
        ] {
            assert_eq!(
                parse(SourceKind::File, bad, &utc()).unwrap_err(),
                want,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn facility_level_word_before_the_tag() {
        for (line, trusted) in [
            (
                &b"Nov 24 23:06:53 router kern.warn kernel: portwarden: IN=vt"[..],
                true,
            ),
            (
                b"Nov 24 23:06:53 router kern.warning kernel: portwarden: IN=vt",
                true,
            ),
            (
                b"<4>Nov 24 23:06:53 router kern.err kernel: portwarden: IN=vt",
                true,
            ),
            (
                b"2026-11-24T23:06:53Z router kern.info kernel: portwarden: IN=vt",
                true,
            ),
            (
                b"Nov 24 23:06:53 router user.warn kernel: portwarden: IN=vt",
                false,
            ),
            (
                b"Nov 24 23:06:53 router local4.notice kernel: portwarden: IN=vt",
                false,
            ),
            (
                b"Nov 24 23:06:53 router kern.warn mallory: portwarden: IN=vt",
                false,
            ),
            (
                b"<12>Nov 24 23:06:53 router kern.warn kernel: portwarden: IN=vt",
                false,
            ),
        ] {
            let h = parse(SourceKind::File, line, &utc()).unwrap();
            assert_eq!(h.trusted, trusted, "{line:?}");
            assert_eq!(&h.message[..], b"portwarden: IN=vt", "{line:?}");
        }
        // Not a facility.level word: a line without a tag, which the kernel never writes.
        for line in [
            &b"Nov 24 23:06:53 router kern.loud kernel: x"[..],
            b"Nov 24 23:06:53 router kernel.warn kernel: x",
            // RFC 5424 fields after a forwarding-format PRI.
            b"<4>2026-11-24T23:06:53Z vm kernel - - - x",
        ] {
            assert!(
                !parse(SourceKind::File, line, &utc()).unwrap().trusted,
                "{line:?}"
            );
        }
    }

    #[test]
    fn fractional_bsd_seconds_and_compact_offsets() {
        // journalctl -o short-precise, -o short-iso, -o short-iso-precise.
        for (line, time) in [
            (
                &b"Nov 24 23:06:53.947768 vm kernel: x"[..],
                "2026-11-24T23:06:53.947768Z",
            ),
            (b"Nov 04 23:06:53.5 vm kernel: x", "2026-11-04T23:06:53.5Z"),
            (
                b"2026-11-24T23:06:53+0000 vm kernel: x",
                "2026-11-24T23:06:53Z",
            ),
            (
                b"2026-11-25T00:06:53.947768+0100 vm kernel: x",
                "2026-11-24T23:06:53.947768Z",
            ),
        ] {
            let h = parse(SourceKind::File, line, &utc()).unwrap();
            assert_eq!(h.time, ts(time), "{line:?}");
            assert!(h.trusted);
        }
        for bad in [
            &b"Nov 24 23:06:53. vm kernel: x"[..],
            b"Nov 24 23:06:53.1234567890 vm kernel: x",
        ] {
            assert_eq!(
                parse(SourceKind::File, bad, &utc()).unwrap_err(),
                Reject::BadTime,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn journal_export_lines_are_refused_by_name() {
        for line in [
            &b"__CURSOR=s=0e6b;i=1;b=8;m=1;t=5;x=9"[..],
            b"__REALTIME_TIMESTAMP=1795561613947768",
            b"_TRANSPORT=kernel",
            b"MESSAGE=portwarden: IN=vt OUT= SRC=10.250.0.2",
            b"PRIORITY=4",
            b"MESSAGE",
        ] {
            assert_eq!(
                parse(SourceKind::File, line, &utc()).unwrap_err(),
                Reject::JournalExport,
                "{line:?}"
            );
        }
        // BSD lines are not taken for them.
        assert!(parse(SourceKind::File, b"Nov 24 23:06:53 vm kernel: x", &utc()).is_ok());
        assert_eq!(
            parse(SourceKind::File, b"NOV 24 23:06:53 vm kernel: x", &utc()).unwrap_err(),
            Reject::BadHeader
        );
    }

    #[test]
    fn dmesg_ctime_stamp_is_local_time() {
        let h = parse(
            SourceKind::File,
            b"[Tue Nov 24 23:06:53 2026] portwarden: IN=vt",
            &utc(),
        )
        .unwrap();
        assert_eq!(h.time, ts("2026-11-24T23:06:53Z"));
        assert!(h.trusted);
        assert_eq!(&h.message[..], b"portwarden: IN=vt");
        // `%e`: the day padded with a space; the zone is the configured one.
        let berlin = clock("2026-11-24T23:30:00Z", "Europe/Berlin");
        let h = parse(SourceKind::File, b"[Wed Nov  4 09:01:02 2026] x", &berlin).unwrap();
        assert_eq!(h.time, ts("2026-11-04T08:01:02Z"));
        for (bad, want) in [
            // Nov 24 2026 is a Tuesday.
            (&b"[Wed Nov 24 23:06:53 2026] x"[..], Reject::BadTime),
            (b"[Mon Nov 31 23:06:53 2026] x", Reject::BadTime),
            (b"[Tue Nov 24 24:06:53 2026] x", Reject::BadTime),
            (b"[Tue Nov 24 23:06:53 20x6] x", Reject::BadTime),
            (b"[Tue Nov 24 23-06-53 2026] x", Reject::BadTime),
            (b"[Tus Nov 24 23:06:53 2026] x", Reject::BadHeader),
            (b"[Tue Nox 24 23:06:53 2026] x", Reject::BadHeader),
            (b"[Tue Nov 24 23:06:53 2026 x", Reject::BadHeader),
            (b"[Tue Nov 24 23:06:53] x", Reject::BadHeader),
            (b"[Tue Nov 24] x", Reject::BadHeader),
            (b"[T", Reject::BadHeader),
        ] {
            assert_eq!(
                parse(SourceKind::File, bad, &utc()).unwrap_err(),
                want,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn dmesg_decoded_facility_decides_trust() {
        let h = parse(
            SourceKind::File,
            b"kern  :warn  : [  635.715659] portwarden: IN=vt",
            &utc(),
        )
        .unwrap();
        assert_eq!(h.time, ts("2026-11-24T23:06:53.947768Z"));
        assert!(h.trusted);
        assert_eq!(&h.message[..], b"portwarden: IN=vt");
        // With -T as well.
        let h = parse(
            SourceKind::File,
            b"kern  :info  : [Tue Nov 24 23:06:53 2026] portwarden: IN=vt",
            &utc(),
        )
        .unwrap();
        assert_eq!((h.time, h.trusted), (ts("2026-11-24T23:06:53Z"), true));
        // A write to /dev/kmsg from user space, as `dmesg -x` shows it.
        for line in [
            &b"user  :warn  : [ 2241.416830] portwarden: IN=vt"[..],
            b"daemon:notice: [ 1.5] portwarden: IN=vt",
            b"authpriv:err   : [ 1.5] portwarden: IN=vt",
            b"local7:debug : [Tue Nov 24 23:06:53 2026] portwarden: IN=vt",
        ] {
            assert!(
                !parse(SourceKind::File, line, &utc()).unwrap().trusted,
                "{line:?}"
            );
        }
        for (bad, want) in [
            (&b"kernel:warn  : [ 1.5] x"[..], Reject::BadHeader),
            (b"kern  :loud  : [ 1.5] x", Reject::BadHeader),
            (b"kern  :warn  : x", Reject::BadHeader),
            (b"kern  :warn  :[ 1.5] x", Reject::BadHeader),
            (b"kern  :warn  : [ 1.x] x", Reject::BadHeader),
            // printf `%-6s`: exactly 6 wide unless the name is longer.
            (b"kern :warn: [ 1.5] x", Reject::BadHeader),
            (b"kern   :warn  : [ 1.5] x", Reject::BadHeader),
            (b"authpriv  :err   : [ 1.5] x", Reject::BadHeader),
            (b"kern  warn  : [ 1.5] x", Reject::BadHeader),
            (b"ke rn :warn  : [ 1.5] x", Reject::BadHeader),
            (
                b"kern  :warn  : [Tue Nov 31 23:06:53 2026] x",
                Reject::BadTime,
            ),
            (b"usb 1-1: new device", Reject::BadHeader),
        ] {
            assert_eq!(
                parse(SourceKind::File, bad, &utc()).unwrap_err(),
                want,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn bsd_unpadded_day() {
        let h = parse(SourceKind::File, b"Nov 4 09:01:02 vm kernel: x", &utc()).unwrap();
        assert_eq!((h.time, h.trusted), (ts("2026-11-04T09:01:02Z"), true));
        assert_eq!(&h.message[..], b"x");
        // The same instant in all three spellings.
        for line in [
            &b"Nov  4 09:01:02 vm kernel: x"[..],
            b"Nov 04 09:01:02 vm kernel: x",
        ] {
            assert_eq!(parse(SourceKind::File, line, &utc()).unwrap().time, h.time);
        }
        let berlin = clock("2026-11-24T23:30:00Z", "Europe/Berlin");
        let h = parse(SourceKind::File, b"Nov 4 09:01:02 vm kernel: x", &berlin).unwrap();
        assert_eq!(h.time, ts("2026-11-04T08:01:02Z"));
        assert!(
            !parse(SourceKind::File, b"Nov 4 09:01:02 vm mallory[9]: x", &utc())
                .unwrap()
                .trusted
        );
        for (bad, want) in [
            (&b"Nov 0 09:01:02 vm kernel: x"[..], Reject::BadTime),
            (b"Feb 9 25:01:02 vm kernel: x", Reject::BadTime),
            (b"Nov 4  09:01:02 vm kernel: x", Reject::BadTime),
            (b"Nov 4 09:01", Reject::BadHeader),
            (b"Nov x 09:01:02 vm kernel: x", Reject::BadHeader),
            (b"Nov 4 09:01:02 vm", Reject::BadHeader),
            (b"Nov 4 09:01:02", Reject::BadHeader),
            (b"Nov  4", Reject::BadHeader),
        ] {
            assert_eq!(
                parse(SourceKind::File, bad, &utc()).unwrap_err(),
                want,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn journal_entries() {
        let line = br#"{"__REALTIME_TIMESTAMP":"1795561613947768","_TRANSPORT":"kernel","MESSAGE":"portwarden: IN=vt"}"#;
        let h = parse(SourceKind::Journal, line, &utc()).unwrap();
        assert_eq!(h.time, ts("2026-11-24T23:06:53.947768Z"));
        assert!(h.trusted);
        assert_eq!(&h.message[..], b"portwarden: IN=vt");
        // A message that is not UTF-8 comes as an array of bytes.
        let line =
            br#"{"__REALTIME_TIMESTAMP":"1","_TRANSPORT":"kernel","MESSAGE":[73,78,61,255]}"#;
        assert_eq!(
            &parse(SourceKind::File, line, &utc()).unwrap().message[..],
            b"IN=\xff"
        );
        let line = br#"{"__REALTIME_TIMESTAMP":"1","_TRANSPORT":"syslog","MESSAGE":"x"}"#;
        assert!(!parse(SourceKind::Journal, line, &utc()).unwrap().trusted);
        let line = br#"{"__REALTIME_TIMESTAMP":"1","MESSAGE":"x"}"#;
        assert!(!parse(SourceKind::Journal, line, &utc()).unwrap().trusted);
        for (bad, want) in [
            (&b"not json"[..], Reject::BadJson),
            (
                br#"{"MESSAGE":"x","MESSAGE":"y","__REALTIME_TIMESTAMP":"1"}"#,
                Reject::BadJson,
            ),
            (br#"{"MESSAGE":"x"}"#, Reject::MissingField),
            (
                br#"{"MESSAGE":null,"__REALTIME_TIMESTAMP":"1"}"#,
                Reject::MissingField,
            ),
            (
                br#"{"MESSAGE":"x","__REALTIME_TIMESTAMP":"soon"}"#,
                Reject::BadTime,
            ),
            (
                br#"{"MESSAGE":"x","__REALTIME_TIMESTAMP":"1","_TRANSPORT":["kernel","x"]}"#,
                Reject::BadJson,
            ),
        ] {
            assert_eq!(
                parse(SourceKind::Journal, bad, &utc()).unwrap_err(),
                want,
                "{bad:?}"
            );
        }
    }
}
