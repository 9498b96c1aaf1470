#!/usr/bin/env bash
# Captures the header files of testdata/headers/ from real daemons (see README.md there).
# As root. Everything runs in two network namespaces this script creates and deletes, with
# private daemons (own config, pid file, work directory, sockets, loopback ports inside the
# namespace); the host's syslog, journal and firewall are not touched.
# Usage: testdata/headers/capture.sh OUTDIR
set -euo pipefail
out=$(realpath "$1"); mkdir -p "$out"
tag=$(printf '%04x' $((RANDOM)))
prefix="pwhdr-$tag: "
T=pwhdr${tag}t; A=pwhdr${tag}a
work=$(mktemp -d); pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    ip netns del "$T" 2>/dev/null || true; ip netns del "$A" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$T"; ip netns add "$A"
ip link add vt netns "$T" type veth peer name va netns "$A"
ip -n "$T" addr add 10.252.0.1/24 dev vt; ip -n "$A" addr add 10.252.0.2/24 dev va
for ns in "$T" "$A"; do ip -n "$ns" link set lo up; done
ip -n "$T" link set vt up; ip -n "$A" link set va up
sysctl -qw net.netfilter.nf_log_all_netns=1
ip netns exec "$T" nft add table inet pwhdr
ip netns exec "$T" nft 'add chain inet pwhdr input { type filter hook input priority 0; policy accept; }'
ip netns exec "$T" nft add rule inet pwhdr input iifname vt ct state new,invalid log prefix "\"$prefix\""

# rsyslog receiver (UDP 5514, TCP 5514 on the namespace's loopback): stores what it receives
# raw (%rawmsg%: the sender's header as it came over the wire) and in RSYSLOG_FileFormat.
cat > "$work/receiver.conf" <<CONF
global(workDirectory="$work/rwork")
module(load="imudp")
module(load="imtcp")
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="udp") {
  action(type="omfile" file="$out/rsyslog-received-udp.raw" template="raw")
  if (\$syslogfacility-text == "kern") then {
    action(type="omfile" file="$out/rsyslog-received-udp.FileFormat" template="RSYSLOG_FileFormat")
  }
}
ruleset(name="tcp") {
  action(type="omfile" file="$out/rsyslog-received-tcp.raw" template="raw")
  if (\$syslogfacility-text == "kern") then {
    action(type="omfile" file="$out/rsyslog-received-tcp.FileFormat" template="RSYSLOG_FileFormat")
  }
}
input(type="imudp" address="127.0.0.1" port="5514" ruleset="udp")
input(type="imtcp" address="127.0.0.1" port="5514" ruleset="tcp")
CONF
# rsyslog sender: imkmsg (reads /dev/kmsg without consuming it), a private imuxsock socket for
# the forgeries, the built-in templates to files, and forwarding to the receiver: UDP with
# omfwd's default (RSYSLOG_TraditionalForwardFormat), TCP with RSYSLOG_ForwardFormat.
cat > "$work/sender.conf" <<CONF
global(workDirectory="$work/swork")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="$work/log")
module(load="imkmsg")
if (\$msg contains "$prefix") then {
  # Files as Debian's kern.log holds them (kern facility only: a forgery goes elsewhere)...
  if (\$syslogfacility-text == "kern") then {
    action(type="omfile" file="$out/rsyslog-TraditionalFileFormat.log" template="RSYSLOG_TraditionalFileFormat")
    action(type="omfile" file="$out/rsyslog-FileFormat.log" template="RSYSLOG_FileFormat")
  }
  # ...and with the PRI in the header, every facility (the forgery shows itself).
  action(type="omfile" file="$out/rsyslog-SyslogProtocol23Format.log" template="RSYSLOG_SyslogProtocol23Format")
  action(type="omfwd" target="127.0.0.1" port="5514" protocol="udp")
  action(type="omfwd" target="127.0.0.1" port="5514" protocol="tcp" template="RSYSLOG_ForwardFormat")
}
CONF
mkdir -p "$work/rwork" "$work/swork"
ip netns exec "$T" rsyslogd -n -f "$work/receiver.conf" -i "$work/receiver.pid" >"$work/receiver.out" 2>&1 &
pids+=($!)
sleep 1
ip netns exec "$T" rsyslogd -n -f "$work/sender.conf" -i "$work/sender.pid" >"$work/sender.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$work/log" ] && break; sleep 0.1; done

# syslog-ng 3.38 (Debian 12's syslog-ng-core, which replaces rsyslog when installed: run from
# the extracted package instead, SYSLOG_NG=/path/to/root, see README.md) with Debian's kernel
# source (/dev/kmsg, format linux-kmsg) and a private unix-dgram socket, to a file() in its
# default template, kern facility only (as Debian's syslog-ng.conf fills kern.log); a second
# file shows the facility each line arrived with (the forgery: user).
if [ -n "${SYSLOG_NG:-}" ]; then
    mkdir -p "$work/sng"
    cat > "$work/sng/sng.conf" <<CONF
@version: 3.38
source s_kmsg { file("/dev/kmsg" program-override("kernel") flags(kernel) format("linux-kmsg")); };
source s_sock { unix-dgram("$work/sng/log"); };
filter f_ours { message("$prefix"); };
filter f_kern { facility(kern); };
destination d_file { file("$out/syslog-ng.log"); };
destination d_facility { file("$out/syslog-ng.facility" template("\$FACILITY \$MSG\n")); };
log { source(s_kmsg); source(s_sock); filter(f_ours); destination(d_facility); };
log { source(s_kmsg); source(s_sock); filter(f_ours); filter(f_kern); destination(d_file); };
CONF
    LD_LIBRARY_PATH="$SYSLOG_NG/usr/lib/x86_64-linux-gnu:$SYSLOG_NG/usr/lib/syslog-ng" \
        "$SYSLOG_NG/usr/sbin/syslog-ng" -F -f "$work/sng/sng.conf" --persist-file "$work/sng/persist" \
        --pidfile "$work/sng/pid" --control "$work/sng/ctl" \
        --module-path "$SYSLOG_NG/usr/lib/syslog-ng/3.38" >"$work/sng/out" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [ -S "$work/sng/log" ] && break; sleep 0.1; done
fi

# Real LOG records: a SYN scan, a UDP probe and an IPv6-less ACK probe from the attacker
# namespace; a copy of the raw kmsg records for the journal and busybox replays.
timeout 30 cat /dev/kmsg > "$work/kmsg.all" & catpid=$!; pids+=($catpid)
sleep 0.3
ip netns exec "$A" nmap -sS -T4 -n -Pn -p 22,80,443 10.252.0.1 >/dev/null
ip netns exec "$A" nmap -sU -T4 -n -Pn --max-retries 0 -p 161 10.252.0.1 >/dev/null
# Forgeries as user space can write them: `logger -t kernel -p kern.warning` (rsyslog makes
# the facility `user`).
forged="${prefix}IN=vt OUT= MAC= SRC=198.51.100.7 DST=10.252.0.1 LEN=44 TOS=0x00 PREC=0x00 TTL=43 ID=1 PROTO=TCP SPT=4000 DPT=3389 WINDOW=1024 RES=0x00 SYN URGP=0"
logger -u "$work/log" -t kernel -p kern.warning "$forged"
if [ -n "${SYSLOG_NG:-}" ]; then logger -u "$work/sng/log" -t kernel -p kern.warning "$forged"; fi
sleep 2
kill "$catpid" 2>/dev/null || true
grep -a "$prefix" "$work/kmsg.all" > "$out/kmsg.txt" || true

# journald's view of the same records: an export stream with the fields journald gives a
# kernel record (_TRANSPORT=kernel, SYSLOG_FACILITY=0, SYSLOG_IDENTIFIER=kernel, the kmsg
# stamp as _SOURCE_MONOTONIC_TIMESTAMP, the wall time journald computes from it), and the
# forgery as journald stores a `logger -t kernel` line (_TRANSPORT=syslog, a _PID), written to
# a private journal file by systemd-journal-remote; then journalctl's output formats of it.
now_us=$(date +%s%6N); up_us=$(awk '{printf "%d", $1 * 1000000}' /proc/uptime)
boot_id=$(tr -d '-' < /proc/sys/kernel/random/boot_id)
{
    while IFS= read -r rec; do
        head=${rec%%;*}; msg=${rec#*;}
        pri=$(echo "$head" | cut -d, -f1); usec=$(echo "$head" | cut -d, -f3)
        printf '__REALTIME_TIMESTAMP=%s\n__MONOTONIC_TIMESTAMP=%s\n_BOOT_ID=%s\n_HOSTNAME=vm\n' \
            $((now_us - up_us + usec)) "$usec" "$boot_id"
        printf '_TRANSPORT=kernel\nSYSLOG_FACILITY=0\nSYSLOG_IDENTIFIER=kernel\nPRIORITY=%s\n' $((pri & 7))
        printf '_SOURCE_MONOTONIC_TIMESTAMP=%s\nMESSAGE=%s\n\n' "$usec" "$msg"
    done < "$out/kmsg.txt"
    printf '__REALTIME_TIMESTAMP=%s\n__MONOTONIC_TIMESTAMP=%s\n_BOOT_ID=%s\n_HOSTNAME=vm\n' \
        "$now_us" "$up_us" "$boot_id"
    printf '_TRANSPORT=syslog\nSYSLOG_FACILITY=0\nSYSLOG_IDENTIFIER=kernel\n_PID=4242\nSYSLOG_PID=4242\nPRIORITY=4\n'
    printf '_UID=1000\nMESSAGE=%s\n\n' "$forged"
} > "$work/stream.export"
/lib/systemd/systemd-journal-remote -o "$work/capture.journal" "$work/stream.export" 2>"$work/remote.err"
for fmt in short short-iso short-precise short-iso-precise json export; do
    TZ=UTC journalctl --file "$work/capture.journal" -o "$fmt" > "$out/journalctl-$fmt.log"
done

# busybox syslogd (what OpenWrt-style routers and small appliances run), in a private mount
# namespace whose /dev is a tmpfs, so that its fixed /dev/log socket is its own. busybox klogd
# reads the ring with syslog(2), which would consume records from any other syslog(2)
# reader, so instead the kmsg records are sent to its socket exactly as klogd sends them
# (syslog(3) with openlog("kernel", 0, LOG_KERN): `<PRI>Mmm dd hh:mm:ss kernel: message`), and
# the forgery as busybox's own `logger -t kernel -p user.warning` sends it.
cat > "$work/busybox.sh" <<BB
set -e
mount --make-rprivate /
mount -t tmpfs tmpfs /dev
mknod -m 666 /dev/null c 1 3
busybox syslogd -n -O "$out/busybox-syslogd.log" &
bbpid=\$!
for _ in \$(seq 100); do [ -S /dev/log ] && break; sleep 0.1; done
python3 - "$out/kmsg.txt" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for rec in open(sys.argv[1], encoding="utf-8"):
    head, msg = rec.rstrip("\\n").split(";", 1)
    pri = int(head.split(",")[0])
    stamp = time.strftime("%b %e %H:%M:%S")
    s.sendto(f"<{pri}>{stamp} kernel: {msg}".encode(), "/dev/log")
PY
busybox logger -t kernel -p user.warning "$forged"
sleep 1
kill \$bbpid
BB
unshare -m sh "$work/busybox.sh"
echo "prefix: $prefix"
wc -l "$out"/*
