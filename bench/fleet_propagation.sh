#!/usr/bin/env bash
# Fleet propagation: from a ban on host A to the element in host B's kernel set, through Redis.
#
# In: N (default 50) bans, PORTWARDEN (default target/release/portwarden, else
# target/debug/portwarden), KEEP=1 to keep the work directory. Root, nft, ip, redis-server.
# Out: per-ban propagation (median, p90, p99, min, max) in milliseconds.
#
# Three throwaway namespaces on a bridge: `sw` (the bridge and redis-server, own port,
# requirepass, no persistence), `A` and `B`, each with `portwarden setup` and `portwarden
# daemon` (own state directory, own LOG prefix, one stream). `nft monitor` in A and in B
# timestamps every element added to `inet portwarden banned4` ($EPOCHREALTIME, no fork per
# line). N operator bans are made on A, 200 ms apart; a ban's propagation is B's timestamp
# minus A's for the same element: the kernel-to-kernel time (A's commit, the outbox poll, XADD,
# B's blocking XREAD, verify, decide, B's store transaction and nft batch). Nothing is asserted.
#
# Run from the repository root:  sudo bench/fleet_propagation.sh
set -euo pipefail

N=${N:-50}
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z "${PORTWARDEN:-}" ]]; then
    if [[ -x "$root/target/release/portwarden" ]]; then
        PORTWARDEN="$root/target/release/portwarden"
    else
        PORTWARDEN="$root/target/debug/portwarden"
    fi
fi
[[ $(id -u) == 0 ]] || { echo "needs root (network namespaces)" >&2; exit 2; }
for tool in nft ip redis-server redis-cli awk sort; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
[[ -x "$PORTWARDEN" ]] || { echo "no portwarden binary at $PORTWARDEN (cargo build first)" >&2; exit 2; }

tag="pwb$$"
work=$(mktemp -d)
pids=()
cleanup() {
    # Every process this script started runs in one of its namespaces (`nft monitor` too,
    # whose pipeline's $! is only the reader loop): stop them by PID, namespace by namespace.
    for ns in "$tag-A" "$tag-B" "$tag-sw"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
    done
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    for ns in "$tag-A" "$tag-B" "$tag-sw"; do ip netns delete "$ns" 2>/dev/null || true; done
    if [[ "${KEEP:-0}" != 1 ]]; then rm -rf "$work"; else echo "work directory: $work"; fi
}
trap cleanup EXIT

net=10.253.0
ip netns add "$tag-sw"
ip -n "$tag-sw" link set lo up
ip -n "$tag-sw" link add br0 type bridge
ip -n "$tag-sw" link set br0 up
ip -n "$tag-sw" addr add "$net.254/24" dev br0
i=1
for h in A B; do
    ip netns add "$tag-$h"
    ip -n "$tag-$h" link set lo up
    ip -n "$tag-$h" link add eth0 type veth peer name "p$i" netns "$tag-sw"
    ip -n "$tag-sw" link set "p$i" master br0
    ip -n "$tag-sw" link set "p$i" up
    ip -n "$tag-$h" addr add "$net.$i/24" dev eth0
    ip -n "$tag-$h" link set eth0 up
    i=$((i + 1))
done

echo "bench-password" > "$work/password"
head -c 32 /dev/urandom | base64 > "$work/key"
ip netns exec "$tag-sw" redis-server --bind "$net.254" --port 6391 --requirepass bench-password \
    --save '' --appendonly no --dir "$work" > "$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    [[ $(ip netns exec "$tag-sw" redis-cli -h "$net.254" -p 6391 -a bench-password --no-auth-warning ping 2>/dev/null) == PONG ]] && break
    sleep 0.05
done

for h in A B; do
    mkdir -p "$work/$h"
    cat > "$work/$h/portwarden.toml" <<CONF
state_dir = "$work/$h/state"

[log]
prefix = "pwbench$$$h: "

[[source]]
kind = "kmsg"
path = "/dev/kmsg"

[ban]
max_bans_per_minute = 100000

[fleet]
redis = "redis://$net.254:6391/0"
password_file = "$work/password"
key_file = "$work/key"
stream = "bench:$tag"
host_id = "$h"
CONF
    ip netns exec "$tag-$h" "$PORTWARDEN" --config "$work/$h/portwarden.toml" setup > /dev/null
    ip netns exec "$tag-$h" "$PORTWARDEN" --config "$work/$h/portwarden.toml" daemon > "$work/$h/daemon.log" 2>&1 &
    pids+=($!)
    ip netns exec "$tag-$h" nft monitor elements 2>/dev/null \
        | while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done > "$work/$h/monitor.log" &
    pids+=($!)
done
for h in A B; do
    for _ in $(seq 200); do grep -q "following" "$work/$h/daemon.log" && break; sleep 0.05; done
done
sleep 1

echo "portwarden: $PORTWARDEN; $N bans on A, 200 ms apart"
for n in $(seq "$N"); do
    ip netns exec "$tag-A" "$PORTWARDEN" --config "$work/A/portwarden.toml" ban "10.201.$((n / 250)).$((n % 250 + 1))" --for 1h -q
    sleep 0.2
done
for _ in $(seq 100); do
    [[ $(grep -c "add element" "$work/B/monitor.log" || true) -ge $N ]] && break
    sleep 0.1
done

# "TIME add element inet portwarden banned4 { 10.201.0.2 timeout ... }". A ban is one batch
# of add, delete, add (so that a re-ban gets its new timeout): the last add of each address.
extract() {
    awk '/add element/ { for (i = 1; i <= NF; i++) if ($i == "{") last[$(i + 1)] = $1 }
         END { for (a in last) print last[a], a }' "$1"
}
extract "$work/A/monitor.log" | sort -k2 > "$work/a.txt"
extract "$work/B/monitor.log" | sort -k2 > "$work/b.txt"
join -1 2 -2 2 "$work/a.txt" "$work/b.txt" | awk '{ printf "%.3f\n", ($3 - $2) * 1000 }' | sort -n > "$work/ms.txt"
got=$(wc -l < "$work/ms.txt")
echo "propagated: $got of $N"
if [[ $got -gt 0 ]]; then
    awk '{ v[NR] = $1 } END {
        p = (NR + 1) / 2; med = v[int(p)];
        printf "A kernel -> B kernel (ms): median %.1f  p90 %.1f  p99 %.1f  min %.1f  max %.1f\n",
            med, v[int(NR * 0.9 + 0.999)], v[int(NR * 0.99 + 0.999)], v[1], v[NR] }' "$work/ms.txt"
fi
