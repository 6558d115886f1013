#!/usr/bin/env bash
# Whole-program benchmark: tpwatch against the tools a user would pick
# instead, on the same capture, in one run, A/B interleaved so that the
# machine's noise falls on every tool alike. Prints packets per second, the
# ratio of tpwatch to each peer, and peak resident memory.
#
#   scripts/bench.sh                 # 10M packets, 200k flows, 3 rounds
#   PACKETS=1000000 ROUNDS=5 scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

PACKETS=${PACKETS:-10000000}
FLOWS=${FLOWS:-200000}
ROUNDS=${ROUNDS:-3}
TSHARK_PACKETS=${TSHARK_PACKETS:-1000000}
DATA=${DATA:-bench-data}
FILE=$DATA/tp-${PACKETS}p-${FLOWS}f.pcap
CUT=$DATA/tp-${TSHARK_PACKETS}p-cut.pcap

need=()
for pair in tcpdump:tcpdump softflowd:softflowd ndpiReader:libndpi-bin tshark:tshark /usr/bin/time:time; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "bench: missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
    exit 2
  fi
fi

make -s build
mkdir -p "$DATA"
if [ ! -s "$FILE" ]; then
  echo "bench: generating $FILE ($PACKETS packets, $FLOWS flows)"
  go run ./pcaps/cmd/gencaps -bench "$FILE" -packets "$PACKETS" -flows "$FLOWS"
fi
if [ ! -s "$CUT" ]; then
  tcpdump -r "$FILE" -c "$TSHARK_PACKETS" -w "$CUT" 2>/dev/null
fi
cat "$FILE" "$CUT" >/dev/null # into the page cache

# Each peer must really have read the capture: check the packet count it
# reports for the cut (a wrong option would otherwise time an error exit).
verify() {
  local name=$1 got=$2
  if [ "$got" != "$TSHARK_PACKETS" ]; then
    echo "bench: $name reports ${got:-nothing} packets of $TSHARK_PACKETS: check its command line" >&2
    exit 1
  fi
}
verify softflowd "$(softflowd -r "$CUT" -n 127.0.0.1:9 -d 2>/dev/null | awk '$1 ~ /^(tcp|udp|icmp)/ { n += $4 } END { print n }')"
verify ndpiReader "$(ndpiReader -i "$CUT" -v 1 2>/dev/null | awk '/IP packets:/ { print $3; exit }')"
verify tshark "$(tshark -n -r "$CUT" -q -z io,stat,0 2>/dev/null | awk -F'|' '/<>/ { gsub(/ /, "", $3); print $3; exit }')"

# run NAME PACKETS CMD...: one timed run; appends "name wall_s maxrss_kib" to $RESULTS.
RESULTS=$(mktemp)
TIMING=$(mktemp)
trap 'rm -f "$RESULTS" "$TIMING"' EXIT
run() {
  local name=$1 pkts=$2; shift 2
  # time writes to its own file (the tool's stderr is discarded); tpwatch
  # exits 1 when it reports blocked flows: a finding, not a failure.
  /usr/bin/time -o "$TIMING" -f '%e %M' "$@" >/dev/null 2>/dev/null || true
  echo "$name $pkts $(tail -1 "$TIMING")" >>"$RESULTS"
}

for r in $(seq "$ROUNDS"); do
  echo "bench: round $r/$ROUNDS"
  run tpwatch "$PACKETS" bin/tpwatch replay --format json --progress never "$FILE"
  run tcpdump "$PACKETS" tcpdump -r "$FILE" -w /dev/null
  run tpwatch-sequential "$PACKETS" bin/tpwatch replay --format json --progress never --sequential "$FILE"
  run softflowd "$PACKETS" softflowd -r "$FILE" -n 127.0.0.1:9 -d
  # nDPI inspects payloads and runs at about a tenth of a million packets a
  # second here: on the 1M cut, like tshark, to keep a round short.
  run ndpiReader-1M "$TSHARK_PACKETS" ndpiReader -i "$CUT" -q
  run tshark-1M "$TSHARK_PACKETS" tshark -n -r "$CUT" -q -z conv,tcp -z conv,udp
done

# Median wall time per tool, packets per second, ratios, peak memory.
awk -v ref=tpwatch '
{ n[$1]++; t[$1, n[$1]] = $3; pk[$1] = $2; if ($4 > m[$1]) m[$1] = $4 }
END {
  for (k in n) {
    c = n[k]; for (i = 1; i <= c; i++) a[i] = t[k, i]
    for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
    med[k] = a[int((c + 1) / 2)]; pps[k] = med[k] > 0 ? pk[k] / med[k] : 0
  }
  printf "%-20s %10s %10s %12s %14s\n", "tool", "wall s", "Mpps", "peak MiB", "tpwatch is x"
  for (k in n) printf "%-20s %10.2f %10.2f %12.1f %14.2f\n", k, med[k], pps[k] / 1e6, m[k] / 1024, (pps[k] > 0 ? pps[ref] / pps[k] : 0)
}' "$RESULTS" | (read -r h; echo "$h"; sort -k3 -nr)
