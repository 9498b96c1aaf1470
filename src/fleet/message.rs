//! One fleet message: a ban or an unban one host made, as it travels in the Redis stream, and
//! its HMAC-SHA256 signature.
//!
//! In: a ban or unban of this host's ban book (to publish), or the field/value pairs of a
//! stream entry (consumed). Out: the fields to `XADD`, or a verified [`FleetMessage`], or why
//! the entry is refused ([`Refused`]).
//!
//! The fields (all text): `v` (format, `1`), `kind` (`ban`/`unban`), `target` (the canonical
//! `IpNet`), `since` and `until` (unix microseconds; `until` empty for a permanent ban or an
//! unban), `reason`, `evidence` (a one-line summary of the finding), `origin` (the publishing
//! host's `host_id`), `seq` (its outbox row, increasing per host) and `sig`.
//!
//! The signature is HMAC-SHA256 with the fleet's shared key over a canonical encoding: the
//! domain `portwarden-fleet-v1\n`, then every field but `sig`, in the order above, as
//! `name=LEN:value\n` where LEN is the value's length in bytes. Lengths make the encoding
//! unambiguous (a reason holding `\nuntil=` cannot forge another field), and the fixed order
//! makes it independent of how Redis returns the pairs. Fields the format does not know are
//! refused rather than ignored: nothing unsigned travels with a signed message.

use hmac::{KeyInit, Mac};
use ipnet::IpNet;
use jiff::Timestamp;

use super::config::FleetKey;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The format version this binary writes and reads.
pub const FORMAT: &str = "1";
const DOMAIN: &[u8] = b"portwarden-fleet-v1\n";
/// The signed fields, in signing order.
const SIGNED: [&str; 9] = [
    "v", "kind", "target", "since", "until", "reason", "evidence", "origin", "seq",
];
/// Longest reason or evidence accepted (a message is one line of context, not a document).
const MAX_TEXT: usize = 1024;

/// A ban or an unban.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ban,
    Unban,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ban => "ban",
            Kind::Unban => "unban",
        }
    }
}

/// A fleet message, signed or verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetMessage {
    pub kind: Kind,
    pub target: IpNet,
    pub since: Timestamp,
    /// `None`: permanent (a ban) or not applicable (an unban).
    pub until: Option<Timestamp>,
    pub reason: String,
    pub evidence: String,
    pub origin: String,
    pub seq: i64,
}

/// Why a stream entry is not acted on. Each is counted and logged at most once a minute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no signature")]
    MissingSignature,
    #[error("wrong signature")]
    BadSignature,
    #[error("malformed field `{0}`")]
    Malformed(&'static str),
    #[error("unknown field `{0}`")]
    UnknownField(String),
    #[error("invalid target `{0}`")]
    InvalidTarget(String),
}

impl Refused {
    /// The counter this refusal goes to.
    pub fn counter(&self) -> &'static str {
        match self {
            Refused::MissingSignature | Refused::BadSignature => "bad_signature",
            Refused::Malformed(_) | Refused::UnknownField(_) => "malformed",
            Refused::InvalidTarget(_) => "invalid_target",
        }
    }
}

impl FleetMessage {
    fn values(&self) -> [String; 9] {
        [
            FORMAT.to_string(),
            self.kind.as_str().to_string(),
            self.target.to_string(),
            self.since.as_microsecond().to_string(),
            self.until
                .map(|u| u.as_microsecond().to_string())
                .unwrap_or_default(),
            self.reason.clone(),
            self.evidence.clone(),
            self.origin.clone(),
            self.seq.to_string(),
        ]
    }

    /// The stream entry's field/value pairs, `sig` last.
    pub fn to_fields(&self, key: &FleetKey) -> Vec<(&'static str, String)> {
        let values = self.values();
        let sig = hex(&sign(key, &values));
        let mut fields: Vec<(&'static str, String)> = SIGNED.iter().copied().zip(values).collect();
        fields.push(("sig", sig));
        fields
    }

    /// Verify and parse a stream entry's pairs. The signature is checked first, over the raw
    /// values, so nothing of an unsigned entry is interpreted.
    pub fn from_fields(
        key: &FleetKey,
        pairs: &[(String, String)],
    ) -> Result<FleetMessage, Refused> {
        let mut values: [Option<&str>; 9] = [None; 9];
        let mut sig = None;
        for (name, value) in pairs {
            if name == "sig" {
                sig = Some(value.as_str());
            } else if let Some(i) = SIGNED.iter().position(|s| s == name) {
                values[i] = Some(value.as_str());
            } else {
                return Err(Refused::UnknownField(name.chars().take(64).collect()));
            }
        }
        let sig = sig.ok_or(Refused::MissingSignature)?;
        let mut present = [""; 9];
        for (i, v) in values.iter().enumerate() {
            present[i] = v.ok_or(Refused::Malformed(SIGNED[i]))?;
        }
        let tag = unhex(sig).ok_or(Refused::BadSignature)?;
        let mut mac = mac(key);
        feed(&mut mac, &present);
        mac.verify_slice(&tag).map_err(|_| Refused::BadSignature)?;

        let [v, kind, target, since, until, reason, evidence, origin, seq] = present;
        if v != FORMAT {
            return Err(Refused::Malformed("v"));
        }
        let kind = match kind {
            "ban" => Kind::Ban,
            "unban" => Kind::Unban,
            _ => return Err(Refused::Malformed("kind")),
        };
        let target = parse_target(target)?;
        let time = |field: &'static str, text: &str| {
            text.parse::<i64>()
                .ok()
                .and_then(|us| Timestamp::from_microsecond(us).ok())
                .ok_or(Refused::Malformed(field))
        };
        let since = time("since", since)?;
        let until = if until.is_empty() {
            None
        } else {
            Some(time("until", until)?)
        };
        if until.is_some_and(|u| u < since) {
            return Err(Refused::Malformed("until"));
        }
        if reason.len() > MAX_TEXT {
            return Err(Refused::Malformed("reason"));
        }
        if evidence.len() > MAX_TEXT {
            return Err(Refused::Malformed("evidence"));
        }
        if origin.is_empty() || origin.len() > 255 || origin.chars().any(char::is_control) {
            return Err(Refused::Malformed("origin"));
        }
        let seq = seq.parse().map_err(|_| Refused::Malformed("seq"))?;
        Ok(FleetMessage {
            kind,
            target,
            since,
            until,
            reason: reason.to_string(),
            evidence: evidence.to_string(),
            origin: origin.to_string(),
            seq,
        })
    }
}

/// A target a peer may ask this host to ban: a canonical network address of IPv4 /8 or
/// narrower, IPv6 /16 or narrower (the bounds `[ban]` allows for prefixes), that is neither
/// unspecified, loopback, multicast nor link-local.
fn parse_target(text: &str) -> Result<IpNet, Refused> {
    let invalid = || Refused::InvalidTarget(text.chars().take(64).collect());
    let net: IpNet = crate::config::parse_net(text).ok_or_else(invalid)?;
    if net != net.trunc() {
        return Err(invalid());
    }
    let too_wide = match net {
        IpNet::V4(n) => n.prefix_len() < 8,
        IpNet::V6(n) => n.prefix_len() < 16,
    };
    let addr = net.addr();
    let special = addr.is_unspecified()
        || addr.is_loopback()
        || addr.is_multicast()
        || match addr {
            std::net::IpAddr::V4(a) => a.is_link_local() || a.is_broadcast(),
            std::net::IpAddr::V6(a) => a.is_unicast_link_local(),
        };
    if too_wide || special {
        return Err(invalid());
    }
    Ok(net)
}

fn mac(key: &FleetKey) -> HmacSha256 {
    // HMAC takes a key of any length (longer ones are hashed): this cannot fail.
    match <HmacSha256 as KeyInit>::new_from_slice(key.bytes()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

fn feed(mac: &mut HmacSha256, values: &[&str]) {
    mac.update(DOMAIN);
    for (name, value) in SIGNED.iter().zip(values) {
        mac.update(format!("{name}={}:", value.len()).as_bytes());
        mac.update(value.as_bytes());
        mac.update(b"\n");
    }
}

fn sign(key: &FleetKey, values: &[String; 9]) -> Vec<u8> {
    let mut m = mac(key);
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    feed(&mut m, &refs);
    m.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> FleetKey {
        FleetKey::new(s.as_bytes().to_vec())
    }

    fn message() -> FleetMessage {
        FleetMessage {
            kind: Kind::Ban,
            target: "10.251.0.101/32".parse().unwrap(),
            since: "2026-12-01T22:00:00Z".parse().unwrap(),
            until: Some("2026-12-01T23:00:00Z".parse().unwrap()),
            reason: "fast_scan syn scan from 10.251.0.101: 12 probes".into(),
            evidence: "12 probes, 12 failed, 12 ports".into(),
            origin: "host-a".into(),
            seq: 7,
        }
    }

    fn pairs(fields: &[(&'static str, String)]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn a_signed_message_verifies_in_any_field_order() {
        let k = key("0123456789abcdef0123456789abcdef");
        let mut p = pairs(&message().to_fields(&k));
        assert_eq!(FleetMessage::from_fields(&k, &p), Ok(message()));
        p.reverse();
        assert_eq!(FleetMessage::from_fields(&k, &p), Ok(message()));
        let mut unban = message();
        unban.kind = Kind::Unban;
        unban.until = None;
        let p = pairs(&unban.to_fields(&k));
        assert_eq!(FleetMessage::from_fields(&k, &p), Ok(unban));
    }

    #[test]
    fn the_canonical_encoding_is_pinned() {
        // A change of encoding breaks every mixed-version fleet: it must be deliberate.
        let k = key("0123456789abcdef0123456789abcdef");
        let sig = message().to_fields(&k).pop().unwrap().1;
        let mut m = mac(&k);
        m.update(
            b"portwarden-fleet-v1\nv=1:1\nkind=3:ban\ntarget=15:10.251.0.101/32\n\
since=16:1796162400000000\nuntil=16:1796166000000000\n\
reason=47:fast_scan syn scan from 10.251.0.101: 12 probes\n\
evidence=30:12 probes, 12 failed, 12 ports\norigin=6:host-a\nseq=1:7\n",
        );
        assert_eq!(sig, hex(&m.finalize().into_bytes()));
    }

    #[test]
    fn refusals() {
        let k = key("0123456789abcdef0123456789abcdef");
        let good = pairs(&message().to_fields(&k));
        let with = |name: &str, value: &str| -> Vec<(String, String)> {
            good.iter()
                .map(|(n, v)| {
                    if n == name {
                        (n.clone(), value.to_string())
                    } else {
                        (n.clone(), v.clone())
                    }
                })
                .collect()
        };
        let without = |name: &str| -> Vec<(String, String)> {
            good.iter().filter(|(n, _)| n != name).cloned().collect()
        };
        let other_key = key("fedcba9876543210fedcba9876543210");
        let resigned = |m: FleetMessage| pairs(&m.to_fields(&k));
        type Case<'a> = (&'a str, Vec<(String, String)>, &'a str);
        let cases: Vec<Case> = vec![
            ("no sig", without("sig"), "bad_signature"),
            ("sig not hex", with("sig", "zz"), "bad_signature"),
            (
                "target changed after signing",
                with("target", "10.251.0.102/32"),
                "bad_signature",
            ),
            (
                "until stretched",
                with("until", "1796169600000000"),
                "bad_signature",
            ),
            (
                "other key",
                pairs(&message().to_fields(&other_key)),
                "bad_signature",
            ),
            ("field missing", without("evidence"), "malformed"),
            (
                "extra field",
                {
                    let mut p = good.clone();
                    p.push(("note".into(), "x".into()));
                    p
                },
                "malformed",
            ),
            (
                "prefix too wide",
                resigned(FleetMessage {
                    target: "10.0.0.0/7".parse().unwrap(),
                    ..message()
                }),
                "invalid_target",
            ),
            (
                "loopback",
                resigned(FleetMessage {
                    target: "127.0.0.1/32".parse().unwrap(),
                    ..message()
                }),
                "invalid_target",
            ),
            (
                "host bits in a prefix",
                {
                    let mut p = resigned(message());
                    for (n, v) in p.iter_mut() {
                        if n == "target" {
                            *v = "10.251.0.101/24".into();
                        }
                    }
                    // re-sign by hand over the changed value
                    let vals: Vec<String> = SIGNED
                        .iter()
                        .map(|s| p.iter().find(|(n, _)| n == s).unwrap().1.clone())
                        .collect();
                    let arr: [String; 9] = vals.try_into().unwrap();
                    let sig = hex(&sign(&k, &arr));
                    for (n, v) in p.iter_mut() {
                        if n == "sig" {
                            *v = sig.clone();
                        }
                    }
                    p
                },
                "invalid_target",
            ),
            (
                "until before since",
                resigned(FleetMessage {
                    until: Some("2026-12-01T21:00:00Z".parse().unwrap()),
                    ..message()
                }),
                "malformed",
            ),
        ];
        for (what, p, counter) in cases {
            let err = FleetMessage::from_fields(&k, &p).expect_err(what);
            assert_eq!(err.counter(), counter, "{what}: {err}");
        }
    }
}
