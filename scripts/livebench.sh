#!/usr/bin/env bash
# Live capture side by side: `tpwatch run` and `tcpdump -w /dev/null` capture
# the same veth while tcpreplay --topspeed sends a capture into its peer;
# prints what each captured and dropped, and tpwatch's CPU and memory.
# Needs root, tcpdump and tcpreplay. The veth pair is the script's own (no
# address, no route) and is removed at the end.
#
#   scripts/livebench.sh [capture.pcap] [loops]
set -euo pipefail
cd "$(dirname "$0")/.."
# The 1M-packet cut of the main capture that scripts/bench.sh writes.
FILE=${1:-bench-data/tp-10000000p-200000f-20000l-1000000p-cut.pcap}
LOOPS=${2:-5}
A=tpwlb$$a B=tpwlb$$b
ADDR=127.0.0.1:19799
TP='' TD=''
[ -s "$FILE" ] || { echo "livebench: $FILE missing (scripts/bench.sh makes it)" >&2; exit 2; }
make -s build
ip link add "$A" type veth peer name "$B"
trap '[ -n "$TP$TD" ] && kill $TP $TD 2>/dev/null;  ip link del "$A" 2>/dev/null || true' EXIT
ip link set "$A" up && ip link set "$B" up
bin/tpwatch run --interface "$B" --web.listen-address "$ADDR" --log.level warn >/tmp/livebench-tpwatch.log 2>&1 &
TP=$!
tcpdump -i "$B" -w /dev/null >/tmp/livebench-tcpdump.log 2>&1 &
TD=$!
sleep 2
tcpreplay --topspeed --loop "$LOOPS" -i "$A" "$FILE" 2>&1 | grep -E "Actual|Rated"
sleep 2
echo "tpwatch:"
curl -s "http://$ADDR/metrics" | grep -E "^tpwatch_capture_(packets|kernel_drops|interface_drops)_total|^process_(cpu_seconds_total|resident_memory_bytes)" | sed 's/^/  /'
kill -INT "$TD"; wait "$TD" 2>/dev/null || true
echo "tcpdump:"; grep -E "captured|received|dropped" /tmp/livebench-tcpdump.log | sed 's/^/  /'
kill -TERM "$TP"; wait "$TP" 2>/dev/null || true
