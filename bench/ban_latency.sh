#!/usr/bin/env bash
# Daemon latency: from the triggering LOG record (its kmsg time) to the element in the kernel
# set (its `nft monitor` time), over many scanners; prints p50, p90, p99, min and max.
#
#   sudo bench/ban_latency.sh [SCANNERS]          (default 200)
#   PRELOAD=100000 sudo bench/ban_latency.sh      (the same with 100 000 bans already set)
#
# Root only. Two throwaway network namespaces (pwb-<pid>-t, pwb-<pid>-a) joined by a veth pair,
# removed on exit; nothing touches the host's ruleset. The target runs `portwarden setup` and
# `portwarden daemon` on /dev/kmsg with the kernel fast path off (this measures the log-based
# ban) and a LOG prefix of its own; `nft monitor` in the target reports each new element. The
# attacker holds SCANNERS addresses, each in a /24 of its own (several scanners of one /24 are
# banned as the prefix); each in turn connects to 8 closed ports, 100 ms apart.
# A scanner's latency is the monitor's reception time of its `add element` minus the kmsg
# time of its record that completed the finding (the `fast_failures`-th distinct port, 6 by
# default). kmsg time is the kernel's local clock: the script measures its offset from
# CLOCK_MONOTONIC first, with records of its own written to /dev/kmsg.
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
    rm -rf "$WORK"
}
trap cleanup EXIT

# Each scanner in a /24 of its own: several scanners of one /24 would be banned as the prefix.
lab_up "$T" "$A" 10.0.0.1/8 10.0.0.2/8
for i in $(seq "$SCANNERS"); do
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

export BIN T A WORK PREFIX SCANNERS PRELOAD
python3 - <<'PY'
import os, re, subprocess, sys, threading, time

BIN, T, A, WORK, PREFIX = (os.environ[k] for k in ("BIN", "T", "A", "WORK", "PREFIX"))
SCANNERS = int(os.environ["SCANNERS"])
FAST = 6

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

# Offset of the kmsg clock from CLOCK_MONOTONIC, from our own records (the smallest seen).
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

daemon = subprocess.Popen(["ip", "netns", "exec", T, BIN, "--config", f"{WORK}/pw.toml", "daemon"],
                          stdout=subprocess.DEVNULL, stderr=open(f"{WORK}/daemon.log", "w"))
monitor = subprocess.Popen(["ip", "netns", "exec", T, "nft", "monitor", "elements"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
deadline = time.time() + 30
while "following" not in open(f"{WORK}/daemon.log").read():
    if time.time() > deadline:
        sys.exit("the daemon did not start:\n" + open(f"{WORK}/daemon.log").read())
    time.sleep(0.05)
time.sleep(0.5)

scanners = [f"10.{1 + i // 250}.{i % 250}.7" for i in range(1, SCANNERS + 1)]
prober = subprocess.Popen(["ip", "netns", "exec", A, "python3", "-c", r'''
import socket, sys, time
for src in sys.argv[1:]:
    socks = []
    for port in range(1, 9):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((src, 0))
        s.setblocking(False)
        s.connect_ex(("10.0.0.1", port))
        socks.append(s)
    time.sleep(0.1)
    for s in socks:
        s.close()
''', *scanners])

# `nft monitor`'s lines are timestamped as they arrive, on a thread of their own (the main
# loop below reads kmsg meanwhile).
banned = {}   # scanner -> monotonic µs of its last `add element` line
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
                banned[m.group(1).decode()] = now
watcher = threading.Thread(target=watch, daemon=True)
watcher.start()
records = []
end = time.time() + 0.1 * SCANNERS + 30
while time.time() < end and len(banned) < SCANNERS:
    time.sleep(0.05)
    records += kmsg_records()
records += kmsg_records()
prober.wait()

# The record that completed each finding: the FAST-th distinct (protocol, port) of a source.
trigger = {}
seen = {}
for ts, text in records:
    if PREFIX not in text:
        continue
    src = re.search(r"SRC=(\S+)", text)
    port = re.search(r"DPT=(\d+)", text)
    proto = re.search(r"PROTO=(\S+)", text)
    if not (src and port and proto):
        continue
    s = src.group(1)
    seen.setdefault(s, set()).add((proto.group(1), port.group(1)))
    if len(seen[s]) == FAST and s not in trigger:
        trigger[s] = ts - offset

lat = sorted((banned[s] - trigger[s]) / 1000 for s in scanners if s in banned and s in trigger)
print(f"portwarden {BIN}: {SCANNERS} scanners, 8 closed ports each, 100 ms apart; daemon on kmsg, "
      f"fast path off; {os.environ.get('PRELOAD', '0')} bans present before")
print(f"banned: {len(banned)} of {SCANNERS}; with their trigger record: {len(lat)}; kmsg clock offset {offset} us")
if lat:
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    print(f"LOG record (kmsg time) -> element in banned4 (nft monitor), ms: "
          f"p50 {q(0.5):.2f}  p90 {q(0.9):.2f}  p99 {q(0.99):.2f}  min {lat[0]:.2f}  max {lat[-1]:.2f}")
daemon.terminate()
monitor.terminate()
daemon.wait()
PY
