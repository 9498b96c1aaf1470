#!/usr/bin/env bash
# Ban operations at 0, 10 000 and 100 000 elements, portwarden beside nft on the same table.
#
#   sudo bench/set_size.sh [SIZES...]          (default: 0 10000 100000)
#
# Root only. Everything happens in one throwaway network namespace (pwb-<pid>-s), removed on
# exit; nothing touches the host's ruleset. For each size N, with a fresh state directory:
#   - setup            `portwarden setup` of a new table, then N addresses imported;
#   - import N         `portwarden import` of N addresses (store + kernel, one transaction);
#   - ban / unban      one `portwarden ban ADDR` / `unban ADDR` with N elements present (CLI,
#                      wall time, process start included);
#   - list --json      `portwarden list --json` of the N bans;
#   - setup again      `portwarden setup` of the table holding them (nothing to change);
#   - nft add element  the same ban with nft (`nft add element inet portwarden banned4 {...}`),
#                      and `nft -j list set` of the N elements, for comparison.
# Each figure is the median of REPEAT runs (default 3), in milliseconds.
set -euo pipefail

SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(0 10000 100000)
REPEAT=${REPEAT:-3}

BIN=${PORTWARDEN:-$(dirname "$0")/../target/release/portwarden}
[ -x "$BIN" ] || { echo "build first: cargo build --release (or set PORTWARDEN=path)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 2; }

NS=pwb-$$-s
WORK=$(mktemp -d)
cleanup() {
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
ip netns add "$NS"

# Milliseconds a command takes (its output discarded; a failure stops the benchmark).
ms() {
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null 2>"$WORK/err" || { echo "failed: $*" >&2; cat "$WORK/err" >&2; exit 1; }
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}
# The median of REPEAT runs of a command.
median() {
    local runs=()
    for _ in $(seq "$REPEAT"); do runs+=("$(ms "$@")"); done
    printf '%s\n' "${runs[@]}" | sort -n | sed -n "$(((REPEAT + 1) / 2))p"
}

# N distinct addresses in 10.0.0.0/8 and 172.16.0.0/12 (none of them the test address).
addresses() {
    python3 -c "
import ipaddress, sys
n = int(sys.argv[1])
base = int(ipaddress.IPv4Address('10.0.0.0'))
for i in range(n):
    print(ipaddress.IPv4Address(base + 2 * i + 2))
" "$1"
}

printf '%-8s %10s %10s %8s %8s %12s %12s %16s %14s\n' elements setup_ms import_ms ban_ms unban_ms list_json_ms setup_again \
    nft_add_elem_ms nft_list_ms
for n in "${SIZES[@]}"; do
    ip netns exec "$NS" nft flush ruleset
    state="$WORK/state-$n"
    cat > "$WORK/pw.toml" <<EOF
state_dir = "$state"
[log]
prefix = "pwb$$s$n: "
EOF
    pw() { ip netns exec "$NS" "$BIN" --config "$WORK/pw.toml" "$@"; }
    setup=$(ms pw setup)
    addresses "$n" > "$WORK/list-$n.txt"
    import=$(ms pw import --for 1d "$WORK/list-$n.txt")
    have=$(pw list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["bans"]))')
    [ "$have" -ge "$n" ] || { echo "only $have of $n bans listed" >&2; exit 1; }
    ban=$(median pw ban --for 1h 198.18.0.7)
    unban=$(median pw unban 198.18.0.7)
    list=$(median pw list --json)
    again=$(median pw setup)
    nft_add=$(median ip netns exec "$NS" nft add element inet portwarden banned4 '{ 198.18.0.8 timeout 1h }')
    nft_list=$(median ip netns exec "$NS" nft -j list set inet portwarden banned4)
    printf '%-8s %10s %10s %8s %8s %12s %12s %16s %14s\n' "$n" "$setup" "$import" "$ban" "$unban" "$list" "$again" \
        "$nft_add" "$nft_list"
done
