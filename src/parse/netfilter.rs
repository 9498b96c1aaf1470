//! The body of a netfilter LOG record: finding it behind the configured prefix, and reading
//! its `KEY=VALUE` list into a [`Probe`].
//!
//! In: the message of a record (header already removed) and the configured prefixes.
//! Out: a [`Probe`] or the [`Reject`] reason.
//!
//! The body is what the kernel's `nf_log_ipv4`/`nf_log_ipv6` print:
//! `IN=vt OUT= MAC=.. SRC=.. DST=.. LEN=44 TOS=.. PREC=.. TTL=43 ID=.. [CE] [DF] [MF] [FRAG:n]
//! PROTO=TCP SPT=.. DPT=.. [SEQ=.. ACK=..] WINDOW=1024 RES=0x00 SYN URGP=0 [OPT (..)]`,
//! IPv6 with `TC= HOPLIMIT= FLOWLBL=` instead of `TOS= PREC= TTL= ID=`.
//!
//! Choices, and why:
//! * Anchored prefix: the message must START with a configured prefix followed by `IN=`, so
//!   text elsewhere in a line (a URL, a user name) cannot make a line count.
//! * First occurrence wins: UDP prints a second `LEN=` (the UDP length) after the IP one,
//!   and an ICMP error quotes the offending packet in `[SRC=.. DST=..]`; reading stops at the
//!   first token that opens a `[`, and a key seen twice keeps its first value.
//! * Flag words (`CWR ECE URG ACK PSH RST SYN FIN`) count only after `PROTO=TCP`; `ACK=` with a
//!   value is the acknowledgement number (`--log-tcp-sequence`), not the flag.
//! * A TCP/UDP/SCTP record without `DPT=` is a non-first fragment (`FRAG:n`: the kernel prints
//!   no transport header for those; the first fragment already carried the ports) and is
//!   rejected as [`Reject::Fragment`], or else a truncated record ([`Reject::MissingField`]).
//!   `SPT=` alone missing is tolerated (`sport: None`): the detector keys on the destination.
//! * Direction: `IN=` empty is a packet this host sent (an OUTPUT rule, UFW's `[UFW AUDIT]`
//!   of an outgoing connection): its source is this host, so it is [`Reject::Outbound`], never a
//!   probe. `IN=` and `OUT=` both set is a forwarded packet: [`Reject::Forwarded`] unless the
//!   caller counts those (`detect.forwarded`, for routers).
//! * No allocation: tokens are sub-slices; addresses are parsed from the borrowed bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use jiff::Timestamp;
use memchr::{memchr, memmem};

use super::Reject;
use super::masks::{Class, masks};
use crate::record::{IfName, Probe, Proto, TcpFlags};

/// How far into a message `IN=` may start when no prefix is configured: nftables and
/// iptables LOG prefixes are at most 127 bytes.
const MAX_PREFIX_LEN: usize = 127;

/// The netfilter body of `message` (starting at `IN=`), behind one of `prefixes`.
///
/// With no prefix configured, any LOG record counts: the body starts at the first `IN=`
/// within the first 127 bytes that is followed by ` OUT=`.
pub(crate) fn find_body<'a>(message: &'a [u8], prefixes: &[Box<[u8]>]) -> Result<&'a [u8], Reject> {
    if prefixes.is_empty() {
        return unprefixed_body(message).ok_or(Reject::NotNetfilter);
    }
    for prefix in prefixes {
        if let Some(rest) = strip_prefix(message, prefix) {
            let rest = trim_start_spaces(rest);
            if is_log_body(rest) {
                return Ok(rest);
            }
        }
    }
    if unprefixed_body(message).is_some() {
        Err(Reject::PrefixMismatch)
    } else {
        Err(Reject::NotNetfilter)
    }
}

/// `message.strip_prefix(prefix)`, eight bytes at a time: a LOG prefix is a dozen bytes, and
/// the slice comparison was a call to `memcmp` per line.
fn strip_prefix<'a>(message: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let (head, rest) = message.split_at_checked(prefix.len())?;
    let (words, tail) = head.as_chunks::<8>();
    let (prefix_words, prefix_tail) = prefix.as_chunks::<8>();
    let same = words
        .iter()
        .zip(prefix_words)
        .all(|(a, b)| u64::from_ne_bytes(*a) == u64::from_ne_bytes(*b))
        && tail.iter().zip(prefix_tail).all(|(a, b)| a == b);
    same.then_some(rest)
}

fn trim_start_spaces(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|&&c| c == b' ').count();
    &b[n..]
}

/// `IN=<iface> OUT=`: the two fields every LOG record starts with.
fn is_log_body(b: &[u8]) -> bool {
    let Some(rest) = b.strip_prefix(b"IN=") else {
        return false;
    };
    // An interface name is at most 15 bytes: a loop, not memchr.
    match rest.iter().position(|&b| b == b' ') {
        Some(end) => rest[end..].starts_with(b" OUT="),
        None => false,
    }
}

fn unprefixed_body(message: &[u8]) -> Option<&[u8]> {
    let window = &message[..message.len().min(MAX_PREFIX_LEN + 3)];
    static IN: std::sync::LazyLock<memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memmem::Finder::new(b"IN="));
    IN.find_iter(window)
        .map(|at| &message[at..])
        .find(|body| is_log_body(body))
}

/// The raw values of the fields we read; `None` until seen (first occurrence wins).
#[derive(Default, Debug, PartialEq, Eq)]
struct Fields<'a> {
    iface: Option<&'a [u8]>,
    /// The values of the keys of [`KEYS`] that are kept as they are, by their slot.
    values: [Option<&'a [u8]>; SLOTS],
    proto: Option<&'a [u8]>,
    flags: u8,
    fragment: bool,
    /// `PROTO=TCP` was read: flag words count from here on.
    tcp: bool,
}

// The slots of [`Fields::values`].
const OUT: usize = 0;
const SRC: usize = 1;
const DST: usize = 2;
const LEN: usize = 3;
const TTL: usize = 4;
const SPT: usize = 5;
const DPT: usize = 6;
const WINDOW: usize = 7;
const TYPE: usize = 8;
const SLOTS: usize = 9;
// What [`KEYS`] holds beyond the slots: keys read another way, and no key.
const PROTO: u8 = 9;
const HOPLIMIT: u8 = 10;
const FRAG: u8 = 11;
const NONE: u8 = 12;

/// A key as [`Fields::take`] looks for it: the token's first bytes (`word` under `mask`, as
/// [`head`] reads them), what to do (a slot of [`Fields::values`], or `PROTO` ..), and where
/// the value starts.
#[derive(Clone, Copy)]
struct Key {
    word: u64,
    mask: u64,
    what: u8,
    len: u8,
}

impl Key {
    const fn new(text: &[u8], what: u8) -> Key {
        let (word, mask) = word(text);
        Key {
            word,
            mask,
            what,
            len: text.len() as u8,
        }
    }
}

/// The keys by [`key_hash`] of their first four bytes: one lookup per token, no chain of
/// comparisons (most tokens, `MAC=`, `TOS=`, `ID=`, .., are none of ours and would fail every
/// one). An empty entry (mask of every bit, word zero) matches only a token of eight NUL
/// bytes, or of fewer at the body's end, and does nothing with it (`NONE`).
const KEYS: [Key; 16] = {
    let keys = [
        Key::new(b"OUT=", OUT as u8),
        Key::new(b"SRC=", SRC as u8),
        Key::new(b"DST=", DST as u8),
        Key::new(b"LEN=", LEN as u8),
        Key::new(b"TTL=", TTL as u8),
        Key::new(b"SPT=", SPT as u8),
        Key::new(b"DPT=", DPT as u8),
        Key::new(b"WINDOW=", WINDOW as u8),
        Key::new(b"TYPE=", TYPE as u8),
        Key::new(b"PROTO=", PROTO),
        // `HOPLIMIT=` is nine bytes: its `=` is checked apart.
        Key::new(b"HOPLIMIT", HOPLIMIT),
        Key::new(b"FRAG:", FRAG),
    ];
    let mut table = [Key {
        word: 0,
        mask: u64::MAX,
        what: NONE,
        len: 0,
    }; 16];
    let mut i = 0;
    while i < keys.len() {
        let at = key_hash(keys[i].word as u32);
        assert!(
            table[at].what == NONE,
            "two keys share a hash: pick another multiplier"
        );
        table[at] = keys[i];
        i += 1;
    }
    table
};

/// Where a token whose first four bytes are `low` (little-endian) is looked up in [`KEYS`].
/// The multiplier is one that gives each key its own entry (checked as `KEYS` is built).
const fn key_hash(low: u32) -> usize {
    (low.wrapping_mul(449_269) >> 28) as usize
}

fn first<'a>(slot: &mut Option<&'a [u8]>, value: &'a [u8]) {
    if slot.is_none() {
        *slot = Some(value);
    }
}

/// The first eight bytes of `rest` as a little-endian word, zeros past its end.
#[inline]
fn head(rest: &[u8]) -> u64 {
    match rest.first_chunk::<8>() {
        Some(b) => u64::from_le_bytes(*b),
        None => {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(w)
        }
    }
}

/// A constant of up to eight bytes as [`head`] reads it, and the mask of its length.
const fn word(s: &[u8]) -> (u64, u64) {
    let mut w = 0u64;
    let mut i = 0;
    while i < s.len() {
        w |= (s[i] as u64) << (8 * i);
        i += 1;
    }
    (
        w,
        if s.len() == 8 {
            u64::MAX
        } else {
            (1 << (8 * s.len())) - 1
        },
    )
}

/// Whether the word `w` starts with `text` (at most eight bytes).
macro_rules! starts {
    ($w:expr, $text:literal) => {{
        const WORD: (u64, u64) = word($text);
        $w & WORD.1 == WORD.0
    }};
}

impl<'a> Fields<'a> {
    /// Read one token: the first `len` bytes of `rest` (not empty, not opening a `[`).
    ///
    /// A key is compared with its `=` as one word: a token that starts with `SRC=` is exactly
    /// one whose text before its first `=` is `SRC` (a key holds no `=`), and such a match
    /// cannot reach past the token (it holds no space). No search for the `=` and no string
    /// comparison: those were most of the parser's time. The key a token may be is found in
    /// [`KEYS`] by a hash of its first four bytes, then compared once: a `match` on the four
    /// bytes (a tree of comparisons, taken one way or the other with each token) had the scan
    /// take 2 % to 7 % longer, in four sets of 15 to 31 runs against this one.
    ///
    /// `IN` is looked for only while `CHECK_IN`: once the interface is read, a later `IN=`
    /// changes nothing (the first wins), and a body opens with its `IN=` token.
    #[inline(always)]
    fn take<const CHECK_IN: bool>(&mut self, rest: &'a [u8], len: usize) {
        let w = head(rest);
        let tok = &rest[..len];
        if CHECK_IN && starts!(w, b"IN=") {
            return first(&mut self.iface, &tok[3..]);
        }
        let key = KEYS[key_hash(w as u32)];
        if w & key.mask == key.word {
            let value = &tok[usize::from(key.len)..];
            match key.what {
                slot if usize::from(slot) < SLOTS => {
                    first(&mut self.values[usize::from(slot)], value)
                }
                PROTO if self.proto.is_none() => {
                    self.proto = Some(value);
                    self.tcp = value.len() == 3 && starts!(head(value), b"TCP");
                }
                HOPLIMIT if value.first() == Some(&b'=') => {
                    first(&mut self.values[TTL], &value[1..])
                }
                FRAG if memchr(b'=', tok).is_none() => self.fragment = true,
                _ => {}
            }
        } else if self.tcp && len == 3 {
            // Flag words: three letters, after `PROTO=TCP`.
            /// The first three bytes of a token, as `head(..) as u32 & 0xff_ffff` reads them.
            const fn low(s: &[u8]) -> u32 {
                word(s).0 as u32
            }
            const SYN: u32 = low(b"SYN");
            const ACK: u32 = low(b"ACK");
            const RST: u32 = low(b"RST");
            const FIN: u32 = low(b"FIN");
            const PSH: u32 = low(b"PSH");
            const URG: u32 = low(b"URG");
            const ECE: u32 = low(b"ECE");
            const CWR: u32 = low(b"CWR");
            self.flags |= match w as u32 & 0xff_ffff {
                SYN => TcpFlags::SYN,
                ACK => TcpFlags::ACK,
                RST => TcpFlags::RST,
                FIN => TcpFlags::FIN,
                PSH => TcpFlags::PSH,
                URG => TcpFlags::URG,
                ECE => TcpFlags::ECE,
                CWR => TcpFlags::CWR,
                _ => 0,
            };
        }
    }
}

/// The longest body [`split_fields`] reads through masks (eight words of them); longer ones,
/// rare (IP options, a long `[..]` quote), go byte by byte.
const MASKED_BODY: usize = 8 * 64;

/// Bit `i` set where `block[i]` is a space.
#[inline]
fn space_mask(block: &[u8; 64]) -> u64 {
    let [spaces] = masks(block, [Class::Byte(b' ')]);
    spaces
}

/// Read the space-separated tokens of `body` (as `body.split(' ')` yields them), up to the
/// first that opens a `[`. The spaces of the whole body are found first, 64 bytes at a time
/// ([`masks`]: the byte-at-a-time search for token ends was half of the parser's time, a
/// record's `MAC=` value alone being 41 bytes); then each token is one bit.
fn split_fields(body: &[u8]) -> Fields<'_> {
    if body.len() > MASKED_BODY {
        return split_fields_bytewise(body);
    }
    let mut spaces = [0u64; 8];
    let whole = body.len() / 64;
    for (i, block) in body.as_chunks::<64>().0.iter().enumerate() {
        spaces[i] = space_mask(block);
    }
    let tail = body.len() % 64;
    if tail > 0 {
        spaces[whole] = match body.last_chunk::<64>() {
            // The last 64 bytes, shifted so that the tail's bits start at bit 0 (no copy).
            Some(last) => space_mask(last) >> (64 - tail),
            None => {
                // Zeros are not spaces: no bit past the body.
                let mut block = [0u8; 64];
                block[..tail].copy_from_slice(body);
                space_mask(&block)
            }
        };
    }
    // The spaces in order, one bit each; past the last, the body's end.
    let (mut w, mut bits) = (0, spaces[0]);
    read_tokens(body, |_| {
        loop {
            if bits != 0 {
                let at = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                return at;
            }
            w += 1;
            if w * 64 >= body.len() {
                return body.len();
            }
            bits = spaces[w];
        }
    })
}

/// [`split_fields`] for a body too long for its masks, with `memchr`.
fn split_fields_bytewise(body: &[u8]) -> Fields<'_> {
    read_tokens(body, |start| {
        memchr(b' ', &body[start..]).map_or(body.len(), |i| start + i)
    })
}

/// Read the tokens of `body`, up to the first that opens a `[`. `token_end(start)` is where
/// the token starting at `start` ends: the next space, or the body's end (a generic, so that
/// each splitter's search is compiled in place).
fn read_tokens(body: &[u8], mut token_end: impl FnMut(usize) -> usize) -> Fields<'_> {
    let mut f = Fields::default();
    let mut start = 0;
    loop {
        let end = token_end(start);
        if end > start {
            // `[`: the packet an ICMP error quotes, or `INCOMPLETE [20 bytes]`; nothing of
            // ours follows.
            if body[start] == b'[' {
                break;
            }
            // Until the interface is read, every token is looked at for `IN=`; after it
            // (at once, in a body the kernel wrote), none is.
            if f.iface.is_none() {
                f.take::<true>(&body[start..], end - start);
            } else {
                f.take::<false>(&body[start..], end - start);
            }
        }
        if end == body.len() {
            break;
        }
        start = end + 1;
    }
    f
}

/// Read a LOG body (starting at `IN=`) into a probe stamped `time`. Only an inbound record
/// (`IN=` set, `OUT=` empty) is a probe, and a forwarded one (both set) when `forwarded`.
pub(crate) fn parse_body(body: &[u8], time: Timestamp, forwarded: bool) -> Result<Probe, Reject> {
    let f = split_fields(body);
    let name = f.iface.ok_or(Reject::MissingField)?;
    // The name is a slice of the body: where it starts, to read it with what follows.
    let at = name.as_ptr() as usize - body.as_ptr() as usize;
    let iface = match body[at..].first_chunk::<16>() {
        Some(head) => IfName::from_head(head, name.len()),
        None => IfName::new(name),
    }
    .ok_or(Reject::BadField)?;
    if iface.is_empty() {
        return Err(Reject::Outbound);
    }
    if !f.values[OUT].unwrap_or_default().is_empty() && !forwarded {
        return Err(Reject::Forwarded);
    }
    let src = parse_ip(f.values[SRC].ok_or(Reject::MissingField)?)?;
    let dst = parse_ip(f.values[DST].ok_or(Reject::MissingField)?)?;
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(Reject::BadAddress);
    }
    let proto = parse_proto(f.proto.ok_or(Reject::MissingField)?)?;
    let (mut sport, mut dport, mut icmp_type) = (None, None, None);
    match proto {
        Proto::Tcp | Proto::Udp | Proto::Sctp => {
            let dpt = match f.values[DPT] {
                Some(v) => v,
                None if f.fragment => return Err(Reject::Fragment),
                None => return Err(Reject::MissingField),
            };
            dport = Some(parse_port(dpt)?);
            sport = f.values[SPT].map(parse_port).transpose()?;
        }
        Proto::Icmp | Proto::Icmpv6 => {
            let ty = match f.values[TYPE] {
                Some(v) => v,
                None if f.fragment => return Err(Reject::Fragment),
                None => return Err(Reject::MissingField),
            };
            icmp_type = Some(parse_num(ty, u8::MAX as u64)? as u8);
        }
        Proto::Other(_) => {}
    }
    let ttl = f.values[TTL]
        .map(|v| parse_num(v, u8::MAX as u64).map(|n| n as u8))
        .transpose()?;
    let window = match proto {
        Proto::Tcp => f.values[WINDOW]
            .map(|v| parse_num(v, u16::MAX as u64).map(|n| n as u16))
            .transpose()?,
        _ => None,
    };
    // IPv6 prints payload + 40, which can exceed 65535: keep the number only when it fits.
    let len = match f.values[LEN] {
        Some(v) => u16::try_from(parse_num(v, u32::MAX as u64)?).ok(),
        None => None,
    };
    Ok(Probe {
        time,
        src,
        dst,
        proto,
        sport,
        dport,
        icmp_type,
        tcp_flags: TcpFlags(if proto == Proto::Tcp { f.flags } else { 0 }),
        iface,
        ttl,
        window,
        len,
    })
}

/// Decimal digits only (no sign, no spaces), at most `max`.
fn parse_num(v: &[u8], max: u64) -> Result<u64, Reject> {
    if v.is_empty() || v.len() > 10 {
        return Err(Reject::BadField);
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return Err(Reject::BadField);
        }
        n = n * 10 + u64::from(b - b'0');
    }
    if n > max {
        return Err(Reject::BadField);
    }
    Ok(n)
}

fn parse_port(v: &[u8]) -> Result<u16, Reject> {
    parse_num(v, u16::MAX as u64)
        .map(|n| n as u16)
        .map_err(|_| Reject::BadPort)
}

fn parse_proto(v: &[u8]) -> Result<Proto, Reject> {
    Ok(match v {
        b"TCP" => Proto::Tcp,
        b"UDP" => Proto::Udp,
        b"ICMP" => Proto::Icmp,
        b"ICMPv6" => Proto::Icmpv6,
        b"SCTP" => Proto::Sctp,
        b"UDPLITE" => Proto::Other(136),
        b"AH" => Proto::Other(51),
        b"ESP" => Proto::Other(50),
        digits => Proto::Other(parse_num(digits, u8::MAX as u64)? as u8),
    })
}

/// An address as the kernel prints it (`%pI4`, or `%pI6`: fully expanded). Borrowed bytes are
/// checked as UTF-8 in place (no copy); std's parser rejects out-of-range octets and junk.
fn parse_ip(v: &[u8]) -> Result<IpAddr, Reject> {
    // 39 bytes: a fully expanded IPv6 address; 45 with an embedded IPv4 tail.
    if v.is_empty() || v.len() > 45 {
        return Err(Reject::BadAddress);
    }
    if let Some(a) = ipv4_fast(v) {
        return Ok(IpAddr::V4(a));
    }
    if let Some(a) = ipv6_expanded(v) {
        return Ok(IpAddr::V6(a));
    }
    let s = std::str::from_utf8(v).map_err(|_| Reject::BadAddress)?;
    if memchr(b':', v).is_some() {
        s.parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| Reject::BadAddress)
    } else {
        s.parse::<Ipv4Addr>()
            .map(IpAddr::V4)
            .map_err(|_| Reject::BadAddress)
    }
}

/// `%pI4` (`a.b.c.d`, each 0 to 255 without a leading zero) read in one pass: the common case
/// of the hot path. `None` for anything else, which std's parser then judges: the result is
/// the same as std's for every input (tested below).
fn ipv4_fast(v: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (n, octet) in octets.iter_mut().enumerate() {
        let start = i;
        let mut value: u32 = 0;
        while i < v.len() && v[i].is_ascii_digit() && i - start < 3 {
            value = value * 10 + u32::from(v[i] - b'0');
            i += 1;
        }
        let len = i - start;
        if len == 0 || value > 255 || (len > 1 && v[start] == b'0') {
            return None;
        }
        *octet = value as u8;
        if n < 3 {
            if v.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
    }
    (i == v.len()).then(|| Ipv4Addr::from(octets))
}

/// `%pI6` as the LOG target prints it: eight groups of four hex digits
/// (`2001:0db8:0000:...:0001`), read in one pass. `None` for any other form, which std's
/// parser then judges.
fn ipv6_expanded(v: &[u8]) -> Option<Ipv6Addr> {
    if v.len() != 39 {
        return None;
    }
    // The value of each hex digit, 0xff for every other byte: no branch per digit (a
    // `to_digit` per byte cost 190 instructions an address, by cachegrind on the bench log).
    const HEX: [u8; 256] = {
        let mut table = [0xff; 256];
        let mut i = 0;
        while i < 10 {
            table[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            table[b'a' as usize + i] = 10 + i as u8;
            table[b'A' as usize + i] = 10 + i as u8;
            i += 1;
        }
        table
    };
    let mut groups = [0u16; 8];
    let mut seen = 0u8;
    for (g, group) in groups.iter_mut().enumerate() {
        let at = g * 5;
        if g < 7 && v[at + 4] != b':' {
            return None;
        }
        for &c in &v[at..at + 4] {
            let d = HEX[usize::from(c)];
            seen |= d;
            *group = (*group << 4) | u16::from(d & 0x0f);
        }
    }
    (seen <= 0x0f).then(|| Ipv6Addr::from(groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields as the parser read them before it used masks: `split(' ')` and a string
    /// match per key. The reference both splitters are held to.
    fn reference_fields(body: &[u8]) -> Fields<'_> {
        let mut f = Fields::default();
        for tok in body.split(|&b| b == b' ') {
            if tok.is_empty() {
                continue;
            }
            if tok[0] == b'[' {
                break;
            }
            match tok.iter().position(|&b| b == b'=') {
                Some(eq) => {
                    let (key, value) = (&tok[..eq], &tok[eq + 1..]);
                    match key {
                        b"IN" => first(&mut f.iface, value),
                        b"OUT" => first(&mut f.values[OUT], value),
                        b"SRC" => first(&mut f.values[SRC], value),
                        b"DST" => first(&mut f.values[DST], value),
                        b"LEN" => first(&mut f.values[LEN], value),
                        b"TTL" | b"HOPLIMIT" => first(&mut f.values[TTL], value),
                        b"PROTO" if f.proto.is_none() => {
                            f.proto = Some(value);
                            f.tcp = value == b"TCP";
                        }
                        b"SPT" => first(&mut f.values[SPT], value),
                        b"DPT" => first(&mut f.values[DPT], value),
                        b"WINDOW" => first(&mut f.values[WINDOW], value),
                        b"TYPE" => first(&mut f.values[TYPE], value),
                        _ => {}
                    }
                }
                None if tok.starts_with(b"FRAG:") => f.fragment = true,
                None if f.tcp => {
                    f.flags |= match tok {
                        b"CWR" => TcpFlags::CWR,
                        b"ECE" => TcpFlags::ECE,
                        b"URG" => TcpFlags::URG,
                        b"ACK" => TcpFlags::ACK,
                        b"PSH" => TcpFlags::PSH,
                        b"RST" => TcpFlags::RST,
                        b"SYN" => TcpFlags::SYN,
                        b"FIN" => TcpFlags::FIN,
                        _ => 0,
                    }
                }
                None => {}
            }
        }
        f
    }

    #[test]
    fn fields_are_what_the_reference_reads() {
        // Bodies of real tokens, near-misses and junk, at lengths around the 64-byte blocks
        // and past the masked length, spaces dense and sparse.
        const TOKENS: &[&str] = &[
            "IN=eth0",
            "OUT=",
            "OUT=eth1",
            "MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00",
            "SRC=203.0.113.7",
            "DST=192.0.2.10",
            "LEN=44",
            "TOS=0x00",
            "TTL=43",
            "ID=1",
            "HOPLIMIT=255",
            "HOPLIMITS=1",
            "DF",
            "FRAG:185",
            "FRAG",
            "PROTO=TCP",
            "PROTO=UDP",
            "PROTO=TCPX",
            "SPT=4000",
            "DPT=22",
            "WINDOW=1024",
            "RES=0x00",
            "SYN",
            "ACK",
            "FIN",
            "RST",
            "PSH",
            "URG",
            "ECE",
            "CWR",
            "SYNX",
            "SY",
            "ACK=5",
            "URGP=0",
            "TYPE=8",
            "CODE=0",
            "[SRC=10.0.0.1",
            "DPT=80]",
            "=",
            "==",
            "IN==x",
            "=IN",
            "IN\0=x",
            "SRC\0=1",
            "IN",
            "",
            "",
            "TC=0",
            "FLOWLBL=0",
            "WINDOWS=1",
            "TYP=1",
            "DPT",
            "x=SRC=1",
        ];
        let mut rng = crate::test_rng::Rng(0x2545_f491_4f6c_dd1d);
        let mut next = move || rng.next();
        for round in 0..20_000 {
            let target = (next() % 700) as usize;
            let mut body = Vec::new();
            while body.len() < target {
                if next() % 8 == 0 {
                    let junk = (next() % 9) as usize;
                    body.extend((0..junk).map(|_| b"= [A\xff\0 S"[(next() % 8) as usize]));
                } else {
                    body.extend_from_slice(
                        TOKENS[(next() % TOKENS.len() as u64) as usize].as_bytes(),
                    );
                }
                body.extend(std::iter::repeat_n(b' ', (next() % 3) as usize));
            }
            let want = reference_fields(&body);
            let shown = || String::from_utf8_lossy(&body).into_owned();
            assert_eq!(split_fields(&body), want, "round {round}: {}", shown());
            assert_eq!(
                split_fields_bytewise(&body),
                want,
                "round {round}: {}",
                shown()
            );
        }
    }

    #[test]
    fn the_ipv6_fast_path_agrees_with_std() {
        for c in [
            "2001:0db8:0000:0000:0000:0000:0000:0001",
            "fe80:0000:0000:0000:be9f:a3ff:fe6c:b51c",
            "FFFF:ffff:FFFF:ffff:0000:0000:0000:0000",
            "2001:0db8:0000:0000:0000:0000:0000:000g",
            "2001:0db8:0000:0000:0000:0000:0000:00001",
            "2001:0db8:0000:0000:0000:0000:0000-0001",
            "2001:0db8::0000:0000:0000:0000:0000:01",
            "+001:0db8:0000:0000:0000:0000:0000:0001",
            "2001:db8::1",
        ] {
            let std = c.parse::<Ipv6Addr>().ok();
            if let Some(a) = ipv6_expanded(c.as_bytes()) {
                assert_eq!(Some(a), std, "{c:?}");
            }
            assert_eq!(parse_ip(c.as_bytes()).ok(), std.map(IpAddr::V6), "{c:?}");
        }
        assert!(ipv6_expanded(b"2001:0db8:0000:0000:0000:0000:0000:0001").is_some());
        // Expanded forms with every hex digit and near misses (a letter past f, a byte with
        // the high bit, a misplaced colon) at each position.
        let mut rng = crate::test_rng::Rng(0x9e37_79b9_7f4a_7c15);
        let alphabet = b"0123456789abcdefABCDEF0123456789abcdefABCDEFgG:x \x80\xff/";
        let mut accepted = 0;
        for round in 0..100_000 {
            let mut c: Vec<u8> = (0..39)
                .map(|i| {
                    if i % 5 == 4 {
                        b':'
                    } else {
                        b"0123456789abcdefABCDEF"[rng.below(22)]
                    }
                })
                .collect();
            if round % 2 == 0 {
                c[rng.below(39)] = alphabet[rng.below(alphabet.len())];
            }
            let std = std::str::from_utf8(&c)
                .ok()
                .and_then(|s| s.parse::<Ipv6Addr>().ok());
            let fast = ipv6_expanded(&c);
            if fast.is_some() {
                accepted += 1;
                assert_eq!(fast, std, "{:?}", String::from_utf8_lossy(&c));
            }
            assert_eq!(
                parse_ip(&c).ok(),
                std.map(IpAddr::V6),
                "{:?}",
                String::from_utf8_lossy(&c)
            );
        }
        assert!(accepted > 50_000, "{accepted}");
    }

    #[test]
    fn the_ipv4_fast_path_agrees_with_std() {
        let mut cases: Vec<String> = [
            "0.0.0.0",
            "255.255.255.255",
            "10.250.0.2",
            "1.2.3.4",
            "01.2.3.4",
            "1.2.3.04",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            ".1.2.3",
            "1.2.3.",
            "1.2.3.4 ",
            "1234.1.1.1",
            "1.2.3.-4",
            "+1.2.3.4",
            "1.2.3.4a",
            "00.0.0.0",
            "0.0.0.00",
            "199.255.255.299",
            "",
            "a.b.c.d",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every octet form 0..=1000, with and without leading zeros, in each position.
        for n in 0..=1000u32 {
            for form in [format!("{n}"), format!("0{n}"), format!("00{n}")] {
                cases.push(format!("{form}.1.2.3"));
                cases.push(format!("1.2.3.{form}"));
            }
        }
        // Random strings of digits and dots (and now and then another byte), up to 16 long.
        let mut rng = crate::test_rng::Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..50_000 {
            let len = (rng.next() % 17) as usize;
            cases.push(
                (0..len)
                    .map(|_| char::from(b"0123456789....x 1"[(rng.next() % 17) as usize]))
                    .collect(),
            );
        }
        assert_eq!(ipv4_fast(b"10.250.0.2"), Some(Ipv4Addr::new(10, 250, 0, 2)));
        for c in &cases {
            let std = c.parse::<Ipv4Addr>().ok();
            // The same answers as std's: the fast path neither disagrees nor declines.
            assert_eq!(ipv4_fast(c.as_bytes()), std, "{c:?}");
            assert_eq!(
                parse_ip(c.as_bytes()).ok(),
                std.map(IpAddr::V4)
                    .or_else(|| c.parse::<IpAddr>().ok().filter(|_| !c.is_empty())),
                "{c:?}"
            );
        }
    }

    fn prefixes(list: &[&str]) -> Vec<Box<[u8]>> {
        list.iter().map(|p| p.as_bytes().into()).collect()
    }

    fn body(line: &str) -> Result<Probe, Reject> {
        parse_body(line.as_bytes(), Timestamp::UNIX_EPOCH, false)
    }

    const TCP: &str = "IN=vt OUT= MAC=be:9f:a3:6c:b5:1c:fe:41:27:a3:2a:4d:08:00 SRC=10.250.0.2 DST=10.250.0.1 LEN=44 TOS=0x00 PREC=0x00 TTL=43 ID=49040 PROTO=TCP SPT=44285 DPT=110 WINDOW=1024 RES=0x00 SYN URGP=0 ";

    #[test]
    fn tcp_syn_fields() {
        let p = body(TCP).unwrap();
        assert_eq!(p.src, "10.250.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(p.dst, "10.250.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(p.proto, Proto::Tcp);
        assert_eq!((p.sport, p.dport), (Some(44285), Some(110)));
        assert_eq!(p.tcp_flags, TcpFlags(TcpFlags::SYN));
        assert_eq!((p.ttl, p.window, p.len), (Some(43), Some(1024), Some(44)));
        assert_eq!(p.iface.as_bytes(), b"vt");
        assert_eq!(p.icmp_type, None);
    }

    #[test]
    fn only_inbound_records_are_probes_unless_forwarded_is_on() {
        let tail = "SRC=10.0.0.5 DST=203.0.113.9 LEN=60 TTL=64 PROTO=TCP SPT=40000 DPT=443 WINDOW=64240 RES=0x00 SYN URGP=0";
        // Inbound.
        assert!(body(&format!("IN=eth0 OUT= {tail}")).is_ok());
        // This host's own packets (OUTPUT chain, `[UFW AUDIT]`/`[UFW ALLOW]` outbound).
        for line in [
            format!("IN= OUT=eth0 {tail}"),
            format!("IN= OUT=lo {tail}"),
            format!("IN= OUT= {tail}"),
        ] {
            assert_eq!(body(&line).unwrap_err(), Reject::Outbound, "{line}");
        }
        // Forwarded: refused by default, a probe when configured.
        let fwd = format!("IN=eth0 OUT=docker0 MAC=00:11 {tail}");
        assert_eq!(body(&fwd).unwrap_err(), Reject::Forwarded);
        let p = parse_body(fwd.as_bytes(), Timestamp::UNIX_EPOCH, true).unwrap();
        assert_eq!(p.iface.as_bytes(), b"eth0");
        // Outbound stays refused with forwarded on.
        assert_eq!(
            parse_body(
                format!("IN= OUT=eth0 {tail}").as_bytes(),
                Timestamp::UNIX_EPOCH,
                true
            )
            .unwrap_err(),
            Reject::Outbound
        );
    }

    #[test]
    fn flag_words_and_not_flags() {
        for (flags, want) in [
            ("URG PSH FIN", TcpFlags::URG | TcpFlags::PSH | TcpFlags::FIN),
            ("ACK FIN", TcpFlags::ACK | TcpFlags::FIN),
            ("", 0),
            ("CWR ECE SYN", TcpFlags::CWR | TcpFlags::ECE | TcpFlags::SYN),
            ("RST", TcpFlags::RST),
        ] {
            let line = format!(
                "IN=eth0 OUT= SRC=192.0.2.1 DST=192.0.2.2 LEN=40 TTL=5 PROTO=TCP SPT=1 DPT=2 SEQ=1 ACK=0 WINDOW=0 RES=0x00 {flags} URGP=0 "
            );
            assert_eq!(body(&line).unwrap().tcp_flags, TcpFlags(want), "{line}");
        }
        // Flag words before PROTO=TCP (in IP options, say) are not flags.
        let p =
            body("IN=e OUT= SRC=192.0.2.1 DST=192.0.2.2 SYN PROTO=TCP SPT=1 DPT=2 FIN").unwrap();
        assert_eq!(p.tcp_flags, TcpFlags(TcpFlags::FIN));
    }

    #[test]
    fn udp_first_len_is_the_ip_length() {
        let p = body("IN=vt OUT= SRC=10.250.0.2 DST=10.250.0.1 LEN=76 TOS=0x00 PREC=0x00 TTL=39 ID=19400 PROTO=UDP SPT=37038 DPT=123 LEN=56 ").unwrap();
        assert_eq!(
            (p.proto, p.dport, p.len, p.window),
            (Proto::Udp, Some(123), Some(76), None)
        );
        assert_eq!(p.tcp_flags, TcpFlags(0));
    }

    #[test]
    fn icmp_error_quotes_a_packet_that_is_not_read() {
        let p = body("IN=eth0 OUT= SRC=192.0.2.9 DST=192.0.2.1 LEN=56 TTL=64 ID=1 PROTO=ICMP TYPE=3 CODE=3 [SRC=192.0.2.1 DST=198.51.100.1 LEN=28 TTL=64 ID=2 PROTO=UDP SPT=53 DPT=4444 LEN=8 ] ").unwrap();
        assert_eq!(p.proto, Proto::Icmp);
        assert_eq!(p.icmp_type, Some(3));
        assert_eq!(p.dst, "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!((p.sport, p.dport), (None, None));
    }

    #[test]
    fn ipv6_expanded_and_icmpv6() {
        let p = body("IN=vt OUT= SRC=fd00:0250:0000:0000:0000:0000:0000:0002 DST=fd00:0250:0000:0000:0000:0000:0000:0001 LEN=104 TC=0 HOPLIMIT=64 FLOWLBL=1 PROTO=ICMPv6 TYPE=128 CODE=0 ID=7 SEQ=1 ").unwrap();
        assert_eq!(p.src, "fd00:250::2".parse::<IpAddr>().unwrap());
        assert_eq!(
            (p.proto, p.icmp_type, p.ttl),
            (Proto::Icmpv6, Some(128), Some(64))
        );
        // IPv6 LEN is payload + 40 and may exceed u16: kept as unknown, not rejected.
        let p = body("IN=vt OUT= SRC=fd00::2 DST=fd00::1 LEN=65575 HOPLIMIT=64 PROTO=UDP SPT=1 DPT=2 LEN=65535").unwrap();
        assert_eq!(p.len, None);
    }

    #[test]
    fn other_protocols() {
        let p = body("IN=eth0 OUT= SRC=192.0.2.9 DST=192.0.2.1 LEN=60 TTL=64 PROTO=47 ").unwrap();
        assert_eq!((p.proto, p.dport), (Proto::Other(47), None));
        let p = body(
            "IN=eth0 OUT= SRC=192.0.2.9 DST=192.0.2.1 LEN=60 TTL=64 PROTO=SCTP SPT=5000 DPT=38412 ",
        )
        .unwrap();
        assert_eq!((p.proto, p.dport), (Proto::Sctp, Some(38412)));
        assert_eq!(
            body("IN=e OUT= SRC=192.0.2.9 DST=192.0.2.1 PROTO=ESP SPI=0x1")
                .unwrap()
                .proto,
            Proto::Other(50)
        );
        assert_eq!(
            body("IN=e OUT= SRC=192.0.2.9 DST=192.0.2.1 PROTO=GRE").unwrap_err(),
            Reject::BadField
        );
    }

    #[test]
    fn fragments_and_missing_fields() {
        let frag =
            "IN=eth0 OUT= SRC=192.0.2.9 DST=192.0.2.1 LEN=60 TTL=64 ID=9 FRAG:185 PROTO=UDP ";
        assert_eq!(body(frag).unwrap_err(), Reject::Fragment);
        let first = "IN=eth0 OUT= SRC=192.0.2.9 DST=192.0.2.1 LEN=1500 TTL=64 ID=9 MF PROTO=UDP SPT=1 DPT=53 LEN=1480 ";
        assert_eq!(body(first).unwrap().dport, Some(53));
        let truncated = "IN=eth0 OUT= SRC=192.0.2.9 DST=192.0.2.1 LEN=60 TTL=64 PROTO=TCP SPT=4";
        assert_eq!(body(truncated).unwrap_err(), Reject::MissingField);
        let incomplete = "IN=eth0 OUT= SRC=192.0.2.9 DST=192.0.2.1 LEN=60 TTL=64 PROTO=TCP INCOMPLETE [8 bytes] ";
        assert_eq!(body(incomplete).unwrap_err(), Reject::MissingField);
        let no_spt = "IN=eth0 OUT= SRC=192.0.2.9 DST=192.0.2.1 PROTO=TCP DPT=22 SYN";
        let p = body(no_spt).unwrap();
        assert_eq!(
            (p.sport, p.dport, p.ttl, p.len),
            (None, Some(22), None, None)
        );
        assert_eq!(
            body("IN=eth0 OUT= DST=192.0.2.1 PROTO=TCP DPT=1").unwrap_err(),
            Reject::MissingField
        );
        assert_eq!(
            body("IN=eth0 OUT= SRC=192.0.2.1 DST=192.0.2.1 SPT=1 DPT=1").unwrap_err(),
            Reject::MissingField
        );
    }

    #[test]
    fn bad_values() {
        for (line, want) in [
            (
                "IN=e OUT= SRC=999.1.1.1 DST=192.0.2.1 PROTO=TCP DPT=1",
                Reject::BadAddress,
            ),
            (
                "IN=e OUT= SRC= DST=192.0.2.1 PROTO=TCP DPT=1",
                Reject::BadAddress,
            ),
            (
                "IN=e OUT= SRC=1.2.3 DST=192.0.2.1 PROTO=TCP DPT=1",
                Reject::BadAddress,
            ),
            (
                "IN=e OUT= SRC=fd00::zz DST=fd00::1 PROTO=TCP DPT=1",
                Reject::BadAddress,
            ),
            (
                "IN=e OUT= SRC=192.0.2.1 DST=fd00::1 PROTO=TCP DPT=1",
                Reject::BadAddress,
            ),
            (
                "IN=e OUT= SRC=192.0.2.1 DST=192.0.2.2 PROTO=TCP DPT=99999",
                Reject::BadPort,
            ),
            (
                "IN=e OUT= SRC=192.0.2.1 DST=192.0.2.2 PROTO=TCP DPT=-1",
                Reject::BadPort,
            ),
            (
                "IN=e OUT= SRC=192.0.2.1 DST=192.0.2.2 PROTO=TCP SPT=70000 DPT=1",
                Reject::BadPort,
            ),
            (
                "IN=e OUT= SRC=192.0.2.1 DST=192.0.2.2 PROTO=TCP DPT= ",
                Reject::BadPort,
            ),
            (
                "IN=e OUT= SRC=192.0.2.1 DST=192.0.2.2 TTL=256 PROTO=TCP DPT=1",
                Reject::BadField,
            ),
            (
                "IN=e OUT= SRC=192.0.2.1 DST=192.0.2.2 PROTO=ICMP TYPE=300",
                Reject::BadField,
            ),
            (
                "IN=0123456789abcdef OUT= SRC=192.0.2.1 DST=192.0.2.2 PROTO=TCP DPT=1",
                Reject::BadField,
            ),
        ] {
            assert_eq!(body(line).unwrap_err(), want, "{line}");
        }
    }

    #[test]
    fn duplicate_keys_keep_the_first() {
        let p = body(
            "IN=e OUT= SRC=192.0.2.1 SRC=198.51.100.7 DST=192.0.2.2 PROTO=TCP DPT=22 DPT=80 SYN",
        )
        .unwrap();
        assert_eq!(p.src, "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(p.dport, Some(22));
    }

    #[test]
    fn prefixes_are_stripped_as_the_standard_library_strips_them() {
        let message = b"portwarden-ssh-extra: IN=eth0";
        for len in 0..=message.len() {
            for cut in 0..=len {
                let mut prefix = message[..len].to_vec();
                if cut < len {
                    prefix[cut] ^= 1;
                }
                assert_eq!(
                    strip_prefix(message, &prefix),
                    message.strip_prefix(&prefix[..]),
                    "{prefix:?}"
                );
            }
        }
        assert_eq!(strip_prefix(b"abc", b"abcd"), None);
    }

    #[test]
    fn prefix_is_anchored() {
        let p = prefixes(&["portwarden: "]);
        let msg = b"portwarden: IN=vt OUT= SRC=10.0.0.1";
        assert_eq!(find_body(msg, &p).unwrap(), b"IN=vt OUT= SRC=10.0.0.1");
        // The prefix elsewhere in the message does not count.
        let steered = b"[UFW BLOCK] IN=vt OUT= MSG=portwarden: IN=vt OUT= SRC=1.1.1.1";
        assert_eq!(find_body(steered, &p).unwrap_err(), Reject::PrefixMismatch);
        assert_eq!(
            find_body(b"sshd: portwarden: IN=x OUT=", &p).unwrap_err(),
            Reject::PrefixMismatch
        );
        assert_eq!(
            find_body(b"usb 1-1: new device", &p).unwrap_err(),
            Reject::NotNetfilter
        );
        // A prefix without its trailing space still finds the body.
        assert!(find_body(msg, &prefixes(&["portwarden:"])).is_ok());
        // Several prefixes; the seed lab's has no space before IN=.
        let many = prefixes(&["[UFW BLOCK] ", "SYN_SCAN_ATTEMPT--"]);
        assert!(find_body(b"SYN_SCAN_ATTEMPT--IN=eth0 OUT= SRC=1.2.3.4", &many).is_ok());
        assert!(find_body(b"[UFW BLOCK] IN=eth0 OUT= SRC=1.2.3.4", &many).is_ok());
        assert_eq!(
            find_body(b"[UFW ALLOW] IN=eth0 OUT= SRC=1.2.3.4", &many).unwrap_err(),
            Reject::PrefixMismatch
        );
    }

    #[test]
    fn no_prefix_accepts_any_log_record() {
        let none = prefixes(&[]);
        assert_eq!(
            find_body(b"anything at all--IN=eth0 OUT= SRC=1.2.3.4", &none).unwrap(),
            b"IN=eth0 OUT= SRC=1.2.3.4"
        );
        assert_eq!(
            find_body(b"IN=eth0 OUT= SRC=1.2.3.4", &none).unwrap(),
            b"IN=eth0 OUT= SRC=1.2.3.4"
        );
        // `IN=` without ` OUT=` after its value is not a LOG record.
        assert_eq!(
            find_body(b"LOGIN=root from 1.2.3.4", &none).unwrap_err(),
            Reject::NotNetfilter
        );
        // Deeper than any LOG prefix can be: not a record.
        let deep = format!("{}IN=eth0 OUT= SRC=1.2.3.4", "x".repeat(200));
        assert_eq!(
            find_body(deep.as_bytes(), &none).unwrap_err(),
            Reject::NotNetfilter
        );
    }
}
