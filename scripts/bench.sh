#!/usr/bin/env bash
# Whole-program benchmark: tpwatch against the tools a user would pick
# instead, on the same captures, in one run, A/B interleaved so that the
# machine's noise falls on every tool alike. Prints packets per second, the
# ratios to tcpdump and to tpwatch, peak resident memory, and where tpwatch
# stands against the goals of the performance issue.
#
# Two captures: the main one is the issue's (10M packets, 200k flows of 50
# packets on average, 20k open at once, about 1.6 GB); the stress one has the
# same packets in 940k shorter flows, 200k open at once (250-300k in the flow
# table, every packet a cache miss, about 1.1 GB), and is timed with tpwatch
# and tcpdump only.
#
#   scripts/bench.sh                 # both captures, 5 rounds
#   STRESS=0 PACKETS=1000000 FLOWS=20000 LIVE=2000 ROUNDS=5 scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

PACKETS=${PACKETS:-10000000}
FLOWS=${FLOWS:-200000}
LIVE=${LIVE:-20000}
STRESS=${STRESS:-1}
STRESS_FLOWS=${STRESS_FLOWS:-940000}
STRESS_LIVE=${STRESS_LIVE:-200000}
ROUNDS=${ROUNDS:-5}
TSHARK_PACKETS=${TSHARK_PACKETS:-1000000}
DATA=${DATA:-bench-data}
# The names hold the whole shape (the output of gencaps depends only on it),
# so a capture left by a run with other settings is never reused by mistake.
FILE=$DATA/tp-${PACKETS}p-${FLOWS}f-${LIVE}l.pcap
STRESS_FILE=$DATA/tp-${PACKETS}p-${STRESS_FLOWS}f-${STRESS_LIVE}l.pcap
CUT=${FILE%.pcap}-${TSHARK_PACKETS}p-cut.pcap # scripts/livebench.sh replays it

if [ "$TSHARK_PACKETS" -gt "$PACKETS" ]; then
  echo "bench: TSHARK_PACKETS=$TSHARK_PACKETS is more than PACKETS=$PACKETS" >&2
  exit 2
fi

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
# Time the binary as it runs once installed. The pages of a file the linker
# has just written stay in the page cache as the writer left them, and the
# kernel maps more of them around each page fault: the same binary shows
# about 3.5 MiB more resident memory than once it has been written back and
# read again from disk (docs/performance.md, Memory). Write it back, then
# drop it from the cache.
sync bin/tpwatch && dd if=bin/tpwatch iflag=nocache count=0 status=none
mkdir -p "$DATA"
# gen FILE FLOWS LIVE: writes through a temporary name, so that an
# interrupted run leaves no truncated capture for the next run to time.
gen() {
  local file=$1 flows=$2 live=$3
  [ -s "$file" ] && return
  echo "bench: generating $file ($PACKETS packets, $flows flows, $live open at once)"
  go run ./pcaps/cmd/gencaps -bench "$file.tmp" -packets "$PACKETS" -flows "$flows" -live "$live" -seed 1
  mv "$file.tmp" "$file"
}
gen "$FILE" "$FLOWS" "$LIVE"
if [ ! -s "$CUT" ]; then
  tcpdump -r "$FILE" -c "$TSHARK_PACKETS" -w "$CUT.tmp" 2>/dev/null
  mv "$CUT.tmp" "$CUT"
fi
files=("$FILE" "$CUT")
if [ "$STRESS" != 0 ]; then
  gen "$STRESS_FILE" "$STRESS_FLOWS" "$STRESS_LIVE"
  files+=("$STRESS_FILE")
fi
cat "${files[@]}" >/dev/null # into the page cache

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

# The two-goroutine replay must report exactly what the sequential one does,
# or timing them against each other means nothing. Exit status 1 is blocked
# flows found (a finding); anything above is an error.
tpjson() {
  local out=$1; shift
  local rc=0
  bin/tpwatch replay --format json --progress never "$@" "$FILE" >"$out" 2>"$out.err" || rc=$?
  if [ "$rc" -gt 1 ] || [ ! -s "$out" ]; then
    echo "bench: tpwatch replay $* $FILE failed (exit $rc):" >&2
    cat "$out.err" >&2
    exit 1
  fi
  rm -f "$out.err"
}
tpjson "$DATA/replay-default.json"
tpjson "$DATA/replay-sequential.json" --sequential
if ! cmp -s "$DATA/replay-default.json" "$DATA/replay-sequential.json"; then
  echo "bench: tpwatch replay of $FILE: default and --sequential JSON differ" >&2
  echo "bench: see $DATA/replay-default.json and $DATA/replay-sequential.json" >&2
  exit 1
fi
rm -f "$DATA/replay-default.json" "$DATA/replay-sequential.json"

# run NAME PACKETS CMD...: one timed run; appends "name packets wall_s maxrss_kib" to $RESULTS.
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
  if [ "$STRESS" != 0 ]; then
    run tpwatch-stress "$PACKETS" bin/tpwatch replay --format json --progress never "$STRESS_FILE"
    run tcpdump-stress "$PACKETS" tcpdump -r "$STRESS_FILE" -w /dev/null
  fi
done

# Median wall time per tool, packets per second, peak memory, and two ratios
# of packets per second (the -1M rows read the cut, not the whole capture):
# the tool to tcpdump ("x tcpdump", above 1 is faster than tcpdump) and
# tpwatch to the tool ("tpwatch is x"), each against the row of the same
# capture (tcpdump-stress and tpwatch-stress for the -stress rows). Rows of
# the main capture first, then the stress rows, each by Mpps. No ">" inside
# a print: awk would read it as a redirection to a file.
awk '
function ratio(a, b) { return (b in pps) && pps[b] ? pps[a] / pps[b] : 0 }
function cell(x) { return x ? sprintf("%.2f", x) : "-" }
{ n[$1]++; t[$1, n[$1]] = $3; pk[$1] = $2; if ($4 > m[$1]) m[$1] = $4 }
END {
  for (k in n) {
    c = n[k]; for (i = 1; i <= c; i++) a[i] = t[k, i]
    for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
    med[k] = a[int((c + 1) / 2)]; pps[k] = med[k] ? pk[k] / med[k] : 0
  }
  printf "%-20s %10s %10s %10s %10s %13s\n", "tool", "wall s", "Mpps", "peak MiB", "x tcpdump", "tpwatch is x"
  for (k in n) {
    stress = k ~ /-stress$/
    td = stress ? "tcpdump-stress" : "tcpdump"; tp = stress ? "tpwatch-stress" : "tpwatch"
    printf "%d %-20s %10.2f %10.2f %10.1f %10s %13s\n", stress, k, med[k], pps[k] / 1e6, m[k] / 1024, cell(ratio(k, td)), cell(ratio(tp, k))
  }
  # The goals of the performance issue, on its capture (the main one).
  printf "\n"
  printf "tpwatch vs tcpdump: %.2fx faster (goal 1.5x; two cores: 2x)\n", ratio("tpwatch", "tcpdump")
  printf "tpwatch vs softflowd: %.1fx faster (goal 6x)\n", ratio("tpwatch", "softflowd")
  printf "tpwatch peak memory: %.1f MiB (goal < 32 MiB)\n", m["tpwatch"] / 1024
}' "$RESULTS" | {
  # Header, then the rows (those that start with the group digit) sorted,
  # then the goal lines as printed.
  read -r h; echo "$h"
  rows=() tail=()
  while IFS= read -r l; do
    case $l in [01]\ *) rows+=("$l") ;; *) tail+=("$l") ;; esac
  done
  printf '%s\n' "${rows[@]}" | sort -k1,1n -k4,4nr | cut -c3-
  printf '%s\n' "${tail[@]}"
}
