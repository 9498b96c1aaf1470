#!/usr/bin/env python3
"""Turns the raw captures of capture.sh into the annotated logs of this directory.

Usage: annotate.py CAPTUREDIR PREFIX

Each capture line gets a `# expect:` line computed here, independently of portwarden's parser:
the time from the line's own stamp (Python's datetime), the probe's fields from the body's
KEY=VALUE list (first occurrence wins), `reject=untrusted` for the forgery (SRC=198.51.100.7,
written from user space), `reject=not_netfilter` for a daemon's own lines, and
`reject=journal_export` for every line of `journalctl -o export`.
"""
import datetime
import json
import re
import sys

src_dir, prefix = sys.argv[1], sys.argv[2]
UTC = datetime.timezone.utc

FILES = [
    # (capture, annotated name, what it is)
    ("rsyslog-FileFormat.log", "rsyslog-FileFormat.log",
     "rsyslogd 8.2302 (Debian 12), template RSYSLOG_FileFormat (Debian's default for its files), "
     "kern facility only (as /var/log/kern.log)"),
    ("rsyslog-TraditionalFileFormat.log", "rsyslog-TraditionalFileFormat.log",
     "rsyslogd 8.2302, template RSYSLOG_TraditionalFileFormat (BSD stamps), kern facility only"),
    ("rsyslog-SyslogProtocol23Format.log", "rsyslog-SyslogProtocol23Format.log",
     "rsyslogd 8.2302, template RSYSLOG_SyslogProtocol23Format (RFC 5424 with PRI), every facility"),
    ("rsyslog-received-tcp.raw", "rsyslog-ForwardFormat-over-tcp.log",
     "what an rsyslogd receiver got over TCP (imtcp, stored as %rawmsg%) from another rsyslogd "
     "forwarding with omfwd template RSYSLOG_ForwardFormat: PRI + RFC 3339 stamp"),
    ("rsyslog-received-udp.raw", "rsyslog-TraditionalForwardFormat-over-udp.log",
     "what an rsyslogd receiver got over UDP (imudp, stored as %rawmsg%) from another rsyslogd "
     "forwarding with omfwd's default template RSYSLOG_TraditionalForwardFormat: PRI + BSD stamp "
     "(raw RFC 3164)"),
    ("rsyslog-received-tcp.FileFormat", "rsyslog-received-tcp-FileFormat.log",
     "the TCP receiver's own file (RSYSLOG_FileFormat, kern facility only)"),
    ("rsyslog-received-udp.FileFormat", "rsyslog-received-udp-FileFormat.log",
     "the UDP receiver's own file (RSYSLOG_FileFormat, kern facility only): the sender's BSD "
     "stamp had no fraction, so neither has this one"),
    ("busybox-syslogd.log", "busybox-syslogd.log",
     "busybox 1.35 syslogd -n -O FILE (no -S: a facility.level word before the tag, as on "
     "OpenWrt-style routers)"),
    ("syslog-ng.log", "syslog-ng.log",
     "syslog-ng 3.38 (Debian 12's syslog-ng-core), default file() template, kern facility only "
     "(Debian's kern.log): BSD stamps"),
    ("journalctl-short.log", "journalctl-short.log", "journalctl 252 -o short"),
    ("journalctl-short-precise.log", "journalctl-short-precise.log", "journalctl 252 -o short-precise"),
    ("journalctl-short-iso.log", "journalctl-short-iso.log", "journalctl 252 -o short-iso"),
    ("journalctl-short-iso-precise.log", "journalctl-short-iso-precise.log",
     "journalctl 252 -o short-iso-precise"),
    ("journalctl-json.log", "journalctl-json.log", "journalctl 252 -o json"),
    ("journalctl-export.log", "journalctl-export.log",
     "journalctl 252 -o export: refused line by line (journal_export): use -o json"),
]

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def stamp(line):
    """The record's time, from its own header."""
    if line.startswith("{"):
        us = int(json.loads(line)["__REALTIME_TIMESTAMP"])
        return datetime.datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)
    rest = re.sub(r"^<\d+>(1 )?", "", line)
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?)([+-]\d\d:?\d\d|Z) ", rest)
    if m:
        off = m.group(3)
        if off != "Z" and ":" not in off:
            off = off[:3] + ":" + off[3:]
        return datetime.datetime.fromisoformat(m.group(1) + ("+00:00" if off == "Z" else off))
    m = re.match(r"(\w{3}) +(\d+) (\d\d):(\d\d):(\d\d)(\.\d+)? ", rest)
    mon, day, h, mi, s, frac = m.groups()
    us = int(round(float(frac) * 1_000_000)) if frac else 0
    return datetime.datetime(2026, MONTHS.index(mon) + 1, int(day), int(h), int(mi), int(s), us, UTC)


def iso(t):
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{t.microsecond:06d}".rstrip("0") if t.microsecond else "") + "Z"


def body_fields(line):
    body = line[line.index(prefix) + len(prefix):]
    if line.startswith("{"):
        body = json.loads(line)["MESSAGE"][len(prefix):]
    f = {}
    for tok in body.split():
        if tok.startswith("["):
            break
        if "=" in tok:
            k, v = tok.split("=", 1)
            f.setdefault(k, v)
    return f


def expect(line):
    if line.startswith(("__", "_", "MESSAGE=", "PRIORITY=", "SYSLOG_")) and not line.startswith("{"):
        return "reject=journal_export"
    if prefix not in line:
        return "reject=not_netfilter"
    f = body_fields(line)
    if f["SRC"] == "198.51.100.7":
        return "reject=untrusted"
    proto = f["PROTO"].lower()
    e = [f"time={iso(stamp(line))}", f"src={f['SRC']}", f"dst={f['DST']}", f"proto={proto}",
         f"sport={f['SPT']}", f"dport={f['DPT']}", f"ttl={f['TTL']}", f"len={f['LEN']}", "iface=vt"]
    if proto == "tcp":
        e.append("scan=SYN")
    return " ".join(e)


for capture, name, what in FILES:
    lines = open(f"{src_dir}/{capture}", encoding="utf-8").read().split("\n")
    out = [f"# {what}.",
           "# Captured by testdata/headers/capture.sh (see README.md): real nftables LOG records of",
           "# nmap -sS and -sU between two namespaces, and one forgery written from user space",
           "# (`logger -t kernel`, SRC=198.51.100.7), which must be refused as untrusted.",
           f'# prefixes: "{prefix}"',
           "# now: 2026-12-01T22:00:00Z"]
    for line in lines:
        if not line:
            continue
        out.append(f"# expect: {expect(line)}")
        out.append(line)
    open(name, "w", encoding="utf-8").write("\n".join(out) + "\n")
    print(name, sum(1 for l in out if l.startswith("# expect")))
