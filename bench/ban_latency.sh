#!/usr/bin/env bash
# Daemon latency: from the LOG record that completes a finding (its kmsg time) to the element
# in the kernel set (its `nft monitor` time), over many scanners, for each log-based rule;
# prints p50, p90, p99, min and max, a row per rule.
#
#   sudo bench/ban_latency.sh [SCANNERS]          (default 200 per rule)
#   PRELOAD=100000 sudo bench/ban_latency.sh      (the same with 100 000 bans already set)
#   RULES="fast sweep" sudo bench/ban_latency.sh  (some rules only; KEEP=1 keeps the work
#                                                  directory: configs, daemon logs, store)
#
# Root only. Two throwaway network namespaces (pwb-<pid>-t, pwb-<pid>-a) joined by a veth pair,
# removed on exit; nothing touches the host's ruleset. The target runs `portwarden setup` and,
# for each rule, `portwarden daemon` on /dev/kmsg with the kernel fast path off (this measures
# the log-based bans) and a LOG prefix of its own; `nft monitor` in the target reports each new
# element. Each rule has SCANNERS addresses of its own, each in a /24 of its own (several
# scanners of one /24 are banned as the prefix); each scanner in turn sends 8 probes, 100 ms
# after the previous scanner:
#
#   fast        TCP SYN to 8 closed ports; the fast rule trips at the 6th (fast_failures).
#   stealth     TCP FIN (raw packets) to 8 closed ports; weight 2, so the 3rd trips it.
#   sweep       TCP SYN to one closed port on 8 of the target's addresses; the 6th
#               destination trips it (sweep_destinations).
#   slow        as fast, with fast_failures and sequential_threshold out of reach and
#               slow_failures = 6: the slow rule's verdict at the 6th.
#   sequential  as fast, with fast_failures and slow_failures out of reach: the Threshold
#               Random Walk's verdict (sequential_threshold = 6) at the 6th.
#
# Slow and sequential scans are minutes apart in the wild; here only their thresholds are set
# within reach, so that the rule, not the clock, is what is measured: from the record that
# completes the evidence, every rule shares the path (decide, ban book, netlink batch).
# A scanner's latency is the monitor's reception time of its `add element` minus the kmsg
# time of its completing record. kmsg time is the kernel's local clock: the script measures
# its offset from CLOCK_MONOTONIC first, with records of its own written to /dev/kmsg.
set -euo pipefail

SCANNERS=${1:-200}
BIN=${PORTWARDEN:-$(dirname "$0")/../target/release/portwarden}
[ -x "$BIN" ] || { echo "build first: cargo build --release (or set PORTWARDEN=path)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 2; }
BIN=$(realpath "$BIN")

T=pwb-$$-t
A=pwb-$$-a
WORK=$(mktemp -d)
# shellcheck source=bench/lab.sh
. "$(dirname "$0")/lab.sh"
cleanup() {
    lab_down "$T" "$A"
    if [ "${KEEP:-0}" = 1 ]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

RULES=${RULES:-fast stealth sweep slow sequential}
NRULES=$(wc -w <<< "$RULES")
# Each scanner in a /24 of its own: several scanners of one /24 would be banned as the prefix.
# The target's extra addresses 10.0.0.11-18 are the sweep's destinations.
lab_up "$T" "$A" 10.0.0.1/8 10.0.0.2/8
for i in $(seq 11 18); do echo "addr add 10.0.0.$i/8 dev vt"; done | ip -n "$T" -batch -
for i in $(seq $((SCANNERS * NRULES))); do
    echo "addr add 10.$((1 + i / 250)).$((i % 250)).7/8 dev va"
done | ip -n "$A" -batch -

PREFIX="pwl$$: "
cat > "$WORK/pw.toml" <<EOF
state_dir = "$WORK/state"
[log]
prefix = "$PREFIX"
[firewall]
# The LOG rule's global budget (default 50 records/s) would drop most of 80 probes/s.
log_rate_per_second = 5000
[fastpath]
enabled = false
[ban]
max_bans_per_minute = 100000
[[source]]
kind = "kmsg"
EOF
ip netns exec "$T" "$BIN" --config "$WORK/pw.toml" setup >/dev/null
PRELOAD=${PRELOAD:-0}
if [ "$PRELOAD" -gt 0 ]; then
    # Addresses in 172.16.0.0/12, none of them a scanner's.
    python3 -c "
import ipaddress, sys
base = int(ipaddress.IPv4Address('172.16.0.0'))
print('\n'.join(str(ipaddress.IPv4Address(base + i)) for i in range(1, int(sys.argv[1]) + 1)))
" "$PRELOAD" > "$WORK/preload.txt"
    ip netns exec "$T" "$BIN" --config "$WORK/pw.toml" import --for 1d "$WORK/preload.txt" >/dev/null
fi

export BIN T A WORK PREFIX SCANNERS PRELOAD RULES
python3 - <<'PY'
import json, os, re, subprocess, sys, threading, time
from collections import Counter

BIN, T, A, WORK, PREFIX = (os.environ[k] for k in ("BIN", "T", "A", "WORK", "PREFIX"))
SCANNERS = int(os.environ["SCANNERS"])
RULES = os.environ["RULES"].split()
# rule: ([detect] settings, probe kind, distinct probes that complete the evidence)
OUT_OF_REACH = 1000
SETUPS = {
    "fast": ({}, "syn", 6),
    "stealth": ({}, "fin", 3),
    "sweep": ({}, "sweep", 6),
    "slow": ({"fast_failures": OUT_OF_REACH, "sequential_threshold": float(OUT_OF_REACH),
              "slow_failures": 6}, "syn", 6),
    "sequential": ({"fast_failures": OUT_OF_REACH, "slow_failures": OUT_OF_REACH,
                    "sequential_threshold": 6.0}, "syn", 6),
}
for r in RULES:
    if r not in SETUPS:
        sys.exit(f"unknown rule {r}: one of {' '.join(SETUPS)}")

def mono_us():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000

kmsg = os.open("/dev/kmsg", os.O_RDWR | os.O_NONBLOCK)
os.lseek(kmsg, 0, os.SEEK_END)

def kmsg_records():
    out = []
    while True:
        try:
            rec = os.read(kmsg, 8192).decode("utf-8", "replace")
        except BlockingIOError:
            return out
        except OSError:  # EPIPE: overwritten records; go on
            continue
        head, _, text = rec.partition(";")
        fields = head.split(",")
        out.append((int(fields[2]), text.rstrip("\n")))

# Offset of the kmsg clock from CLOCK_MONOTONIC, from our own records (the median).
offsets = []
for i in range(20):
    before = mono_us()
    os.write(kmsg, f"pwl-calibrate {os.getpid()} {i}\n".encode())
    after = mono_us()
    for ts, text in kmsg_records():
        if text.startswith(f"pwl-calibrate {os.getpid()} {i}"):
            offsets.append(ts - (before + after) // 2)
    time.sleep(0.01)
offset = sorted(offsets)[len(offsets) // 2]

# The prober, run in the attacker's namespace: for each scanner address in turn, 8 probes,
# then 100 ms. SYNs are non-blocking connects; FINs are raw TCP segments.
PROBER = r'''
import socket, struct, sys, time
kind, scanners = sys.argv[1], sys.argv[2:]
def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def fin(src, dst, port):
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    raw.bind((src, 0))
    tcp = struct.pack("!HHIIBBHHH", 40000 + port, port, 1, 0, 5 << 4, 0x01, 1024, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    raw.sendto(tcp, (dst, 0))
    raw.close()
for src in scanners:
    socks = []
    for n in range(1, 9):
        if kind == "fin":
            fin(src, "10.0.0.1", n)
            continue
        dst, port = ("10.0.0.1", n) if kind == "syn" else (f"10.0.0.{10 + n}", 9)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((src, 0))
        s.setblocking(False)
        s.connect_ex((dst, port))
        socks.append(s)
    time.sleep(0.1)
    for s in socks:
        s.close()
'''

def run(rule, scanners):
    settings, kind, completes = SETUPS[rule]
    config = f"{WORK}/pw-{rule}.toml"
    with open(f"{WORK}/pw.toml") as base, open(config, "w") as out:
        out.write(base.read() + "[detect]\n")
        for k, v in settings.items():
            out.write(f"{k} = {v}\n")
    log = f"{WORK}/daemon-{rule}.log"
    daemon = subprocess.Popen(["ip", "netns", "exec", T, BIN, "--config", config, "daemon"],
                              stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    monitor = subprocess.Popen(["ip", "netns", "exec", T, "nft", "monitor", "elements"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
    try:
        deadline = time.time() + 30
        while "following" not in open(log).read():
            if time.time() > deadline or daemon.poll() is not None:
                sys.exit(f"the daemon did not start ({rule}):\n" + open(log).read())
            time.sleep(0.05)
        time.sleep(0.5)
        kmsg_records()  # what came before this rule's probes
        # `nft monitor`'s lines are timestamped as they arrive, on a thread of their own (the
        # loop below reads kmsg meanwhile).
        banned = {}   # scanner -> monotonic µs of its `add element` line
        def watch():
            pending = b""
            while True:
                chunk = os.read(monitor.stdout.fileno(), 65536)
                now = mono_us()
                if not chunk:
                    return
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    m = re.search(rb"add element inet portwarden banned4 \{ ([0-9.]+)", line)
                    if m:
                        banned.setdefault(m.group(1).decode(), now)
        threading.Thread(target=watch, daemon=True).start()
        prober = subprocess.Popen(["ip", "netns", "exec", A, "python3", "-c", PROBER, kind,
                                   *scanners])
        records = []
        end = time.time() + 0.1 * len(scanners) + 30
        while time.time() < end and len(banned) < len(scanners):
            time.sleep(0.05)
            records += kmsg_records()
        records += kmsg_records()
        prober.wait()
    finally:
        daemon.terminate()
        monitor.terminate()
        daemon.wait()
    # The record that completed each finding: the `completes`-th distinct probe of a source,
    # (protocol, port) or, for the sweep, destination.
    trigger, seen = {}, {}
    for ts, text in records:
        if PREFIX not in text:
            continue
        fields = dict(f.split("=", 1) for f in text.split() if "=" in f)
        s = fields.get("SRC")
        if s is None or "DPT" not in fields:
            continue
        key = fields.get("DST") if kind == "sweep" else (fields.get("PROTO"), fields["DPT"])
        seen.setdefault(s, set()).add(key)
        if len(seen[s]) == completes and s not in trigger:
            trigger[s] = ts - offset
    # The rule each ban names in the store (its reason's first word): the rule this row is
    # about, or the row is wrong.
    listed = json.loads(subprocess.run(["ip", "netns", "exec", T, BIN, "--config", config, "list",
                                        "--json"], capture_output=True, check=True).stdout)
    ours = {f"{s}/32" for s in scanners}
    reasons = Counter(b["reason"].split()[0] for b in listed["bans"] if b["target"] in ours)
    lat = sorted((banned[s] - trigger[s]) / 1000 for s in scanners if s in banned and s in trigger)
    first = min(trigger.values(), default=0)
    slowest = sorted(((banned[s] - trigger[s]) / 1000, (trigger[s] - first) / 1e6)
                     for s in scanners if s in banned and s in trigger)[-3:]
    return len(banned), lat, slowest, reasons

print(f"portwarden {BIN}: {SCANNERS} scanners per rule, 8 probes each, 100 ms apart; daemon on "
      f"kmsg, fast path off; {os.environ.get('PRELOAD', '0')} bans present before; kmsg clock "
      f"offset {offset} us")
print("LOG record that completes the finding (kmsg time) -> element in banned4 (nft monitor), ms")
print(f"{'rule':<11} {'banned':>9} {'p50':>7} {'p90':>7} {'p99':>7} {'min':>7} {'max':>7}  "
      "slowest (ms @ s into the run); reason in the store")
for n, rule in enumerate(RULES):
    base = n * SCANNERS
    scanners = [f"10.{1 + i // 250}.{i % 250}.7" for i in range(base + 1, base + SCANNERS + 1)]
    count, lat, slowest, reasons = run(rule, scanners)
    said = ", ".join(f"{r} x{n}" for r, n in reasons.most_common())
    if not lat:
        print(f"{rule:<11} {count:>4}/{SCANNERS:<4} (no latency: no completing record seen); {said}")
        continue
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    tail = ", ".join(f"{ms:.1f} @ {at:.1f}" for ms, at in reversed(slowest))
    print(f"{rule:<11} {count:>4}/{SCANNERS:<4} {q(0.5):7.2f} {q(0.9):7.2f} {q(0.99):7.2f} "
          f"{lat[0]:7.2f} {lat[-1]:7.2f}  {tail}; {said}")
PY
