# Sourced by the bench scripts: two throwaway network namespaces joined by a veth pair.
#
#   lab_up TARGET_NS ATTACKER_NS TARGET_CIDR ATTACKER_CIDR
#
# creates them (vt in the target, va in the attacker, both up, loopback up in the target) and
# lets their LOG records reach the kernel ring (nf_log_all_netns). lab_down removes them,
# killing what still runs inside by PID first. Nothing touches the host's own namespace.

lab_up() {
    local t=$1 a=$2
    ip netns add "$t"
    ip netns add "$a"
    ip -n "$t" link add vt type veth peer name va netns "$a"
    ip -n "$t" addr add "$3" dev vt
    ip -n "$a" addr add "$4" dev va
    ip -n "$t" link set vt up
    ip -n "$a" link set va up
    ip -n "$t" link set lo up
    sysctl -qw net.netfilter.nf_log_all_netns=1
}

lab_down() {
    local ns p
    for ns in "$@"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
    done
    sleep 0.3
    for ns in "$@"; do ip netns del "$ns" 2>/dev/null || true; done
}
