#!/usr/bin/env bash
# A/B two tpwatch binaries on the same capture, interleaved round by round
# so that the machine's noise falls on both alike: the way to tell whether
# a change made replay faster or slower (docs/performance.md, Method).
# Prints, per binary, the median wall time, user and system CPU time and
# the peak resident memory, and checks that both wrote the same JSON.
#
#   scripts/ab.sh OLD_BINARY NEW_BINARY CAPTURE [ROUNDS] [-- extra replay flags]
#   scripts/ab.sh /tmp/tpwatch-before bin/tpwatch bench-data/tp-10000000p-200000f-20000l.pcap 7
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n '2,10p' "$0" >&2
  exit 2
fi
a=$1 b=$2 file=$3 rounds=${4:-5}
shift $(( $# >= 4 ? 4 : 3 ))
[ "${1:-}" = "--" ] && shift
extra=("$@")
for bin in "$a" "$b"; do
  [ -x "$bin" ] || { echo "ab: $bin is not an executable" >&2; exit 2; }
done
[ -r "$file" ] || { echo "ab: cannot read $file" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat "$file" >/dev/null # into the page cache

# Both must report the same flows, or timing them means nothing; exit
# status 1 (blocked or unexpected flows found) is a finding, not a failure.
for side in A B; do
  bin=$a; [ "$side" = B ] && bin=$b
  rc=0
  "$bin" replay --format json --progress never "${extra[@]}" "$file" >"$tmp/$side.json" 2>/dev/null || rc=$?
  [ "$rc" -le 1 ] || { echo "ab: $bin replay failed with status $rc" >&2; exit 1; }
done
if cmp -s "$tmp/A.json" "$tmp/B.json"; then same=identical; else same=DIFFERENT; fi

for r in $(seq "$rounds"); do
  for side in A B; do
    bin=$a; [ "$side" = B ] && bin=$b
    /usr/bin/time -o "$tmp/t" -f '%e %U %S %M' "$bin" replay --format json --progress never "${extra[@]}" "$file" >/dev/null 2>&1 || true
    echo "$side $(tail -1 "$tmp/t")" >>"$tmp/results"
  done
done
echo "$rounds interleaved rounds on $file; JSON of A and B: $same"
awk -v a="$a" -v b="$b" '
{ n[$1]++; w[$1, n[$1]] = $2; c[$1, n[$1]] = $3 + $4; u[$1, n[$1]] = $3; s[$1, n[$1]] = $4; if ($5 > m[$1]) m[$1] = $5 }
function median(arr, k,    i, j, x, v) {
  for (i = 1; i <= n[k]; i++) v[i] = arr[k, i]
  for (i = 1; i <= n[k]; i++) for (j = i + 1; j <= n[k]; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
  return v[int((n[k] + 1) / 2)]
}
END {
  printf "%-4s %9s %9s %9s %9s %9s  %s\n", "", "wall s", "cpu s", "user s", "sys s", "peak MiB", "binary"
  for (k = 0; k < 2; k++) {
    side = k ? "B" : "A"; name = k ? b : a
    printf "%-4s %9.2f %9.2f %9.2f %9.2f %9.1f  %s\n", side, median(w, side), median(c, side), median(u, side), median(s, side), m[side] / 1024, name
  }
  printf "B/A wall %.3f, cpu %.3f\n", median(w, "B") / median(w, "A"), median(c, "B") / median(c, "A")
}' "$tmp/results"
