#!/usr/bin/env bash
# How many ports nmap sees closed before the block, fast path on and off, side by side.
#
#   sudo bench/fastpath_closed_ports.sh [PORTS] [TIMINGS...]     (default: 1-1000 T3 T4 T5)
#
# Root only. Everything happens in two throwaway network namespaces (pwb-<pid>-t, pwb-<pid>-a)
# joined by a veth pair, removed on exit; nothing touches the host's ruleset. For each timing:
#   - "kernel": [fastpath] on, no daemon: the kernel alone blocks;
#   - "daemon": [fastpath] off, `portwarden daemon` on /dev/kmsg: the log-based ban;
#   - "cron":   [fastpath] off, `portwarden run --once` at the start of every minute, as the
#               cron job runs it: whether it catches a scan depends on where the minute falls.
# MODES="daemon cron" (any of the three) runs those only.
# nmap runs with --max-retries 1 (answered ports are unaffected; silent ones are not waited for
# six times). Prints one line per run: timing, mode, closed, filtered, seconds.
set -euo pipefail

PORTS=${1:-1-1000}
shift || true
TIMINGS=("$@")
[ ${#TIMINGS[@]} -gt 0 ] || TIMINGS=(T3 T4 T5)

BIN=${PORTWARDEN:-$(dirname "$0")/../target/release/portwarden}
[ -x "$BIN" ] || { echo "build first: cargo build --release (or set PORTWARDEN=path)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 2; }

T=pwb-$$-t
A=pwb-$$-a
WORK=$(mktemp -d)
DAEMON=
CRON=
stop_cron() {
    [ -n "$CRON" ] || return 0
    pkill -P "$CRON" 2>/dev/null || true
    kill "$CRON" 2>/dev/null || true
    wait "$CRON" 2>/dev/null || true
    CRON=
}
# shellcheck source=bench/lab.sh
. "$(dirname "$0")/lab.sh"
cleanup() {
    stop_cron
    [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null || true
    lab_down "$T" "$A"
    rm -rf "$WORK"
}
trap cleanup EXIT

lab_up "$T" "$A" 10.250.0.1/24 10.250.0.2/24

config() { # $1: fastpath on/off, $2: a tag unique to the run
    # A LOG prefix per run: a fresh daemon reads the whole kernel ring, and must not find the
    # previous runs' records of the same scanner there.
    cat > "$WORK/pw.toml" <<EOF
state_dir = "$WORK/state-$1"
[log]
prefix = "pwb$$$2: "
[fastpath]
enabled = $1
log_prefix = "pwb$$$2fb: "
[[source]]
kind = "kmsg"
EOF
}

pw() { ip netns exec "$T" "$BIN" --config "$WORK/pw.toml" "$@"; }

scan() { # $1 timing: prints closed filtered seconds
    local start end
    start=$(date +%s.%N)
    # Normal output: when every port is in an "ignored" state (say 365 closed and 635
    # filtered), the greppable output lists no counts at all.
    ip netns exec "$A" nmap -sS -Pn -n "-$1" --max-retries 1 -p "$PORTS" -oN "$WORK/nmap.txt" 10.250.0.1 >/dev/null
    [ -z "${DEBUG:-}" ] || cat "$WORK/nmap.txt" >&2
    end=$(date +%s.%N)
    # "Not shown: 635 filtered tcp ports (no-response), 365 closed tcp ports (reset)" and one
    # line per port shown ("21/tcp closed ftp").
    python3 - "$WORK/nmap.txt" "$(echo "$end - $start" | bc)" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
count = {"closed": 0, "filtered": 0}
for n, state in re.findall(r"(\d+) (closed|filtered) (?:tcp|udp) ports", text):
    count[state] += int(n)
for state in re.findall(r"^\d+/(?:tcp|udp)\s+(closed|filtered)\s", text, re.M):
    count[state] += 1
print(count["closed"], count["filtered"], "%.1f" % float(sys.argv[2]))
PY
}

printf '%-6s %-7s %7s %9s %8s\n' timing mode closed filtered seconds
for mode in ${MODES:-kernel daemon cron}; do
    for t in "${TIMINGS[@]}"; do
        # Every run from scratch: a fresh table and store, so that no run remembers the last.
        ip netns exec "$T" nft delete table inet portwarden 2>/dev/null || true
        rm -rf "$WORK"/state-*
        case $mode in
            kernel) config true "k$t" ;;
            daemon) config false "d$t" ;;
            *) config false "c$t" ;;
        esac
        pw setup >/dev/null
        if [ "$mode" = cron ]; then
            (while :; do sleep $((60 - $(date +%s) % 60)); pw run --once >/dev/null 2>&1 || true; done) &
            CRON=$!
        fi
        if [ "$mode" = daemon ]; then
            ip netns exec "$T" "$BIN" --config "$WORK/pw.toml" daemon 2>"$WORK/daemon.log" &
            DAEMON=$!
            for _ in $(seq 100); do grep -q "following" "$WORK/daemon.log" && break; sleep 0.1; done
        fi
        read -r closed filtered secs < <(scan "$t")
        printf '%-6s %-7s %7s %9s %8s\n' "$t" "$mode" "$closed" "$filtered" "$secs"
        if [ -n "$DAEMON" ]; then kill "$DAEMON"; wait "$DAEMON" 2>/dev/null || true; DAEMON=; fi
        stop_cron
    done
done
