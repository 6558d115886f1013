#!/usr/bin/env bash
# The Windows build of tpwatch, run on Linux under Debian's Wine (make
# test-windows). What it checks:
#   - tpwatch.exe --help, version, policy and policy export run, with Wine's
#     own incomplete wpcap.dll in place, and policy and export print what
#     the Linux build prints, byte for byte;
#   - replay --format json of every committed capture (pcaps/), with its
#     config and with the inventory inferred, prints what the Linux build
#     prints, byte for byte, with the same exit status;
#   - interfaces lists Wine's adapters through Wine's wpcap.dll (a wrapper
#     over the host's libpcap), never panics, and says "Npcap is not
#     installed" when no wpcap.dll can be loaded at all;
#   - a wpcap.dll that lacks functions, put where Npcap's goes
#     (System32\Npcap), is loaded from there first, and interfaces and run
#     name the DLL and the missing function;
#   - as root: run captures on lo through the Windows binding and classifies
#     a flow; the Windows service installs, starts, reloads on ParamChange,
#     stops cleanly, reports its status and uninstalls.
# Live capture itself cannot be tested here beyond Wine's wrapper of the
# host's libpcap: Npcap's driver only exists on Windows.
#
# Wine 8 lacks bcryptprimitives.dll, which every Go >= 1.22 Windows program
# needs: a stand-in (scripts/wine/bcryptprimitives.c) is built into the
# throw-away Wine prefix only. It is test scaffolding and is never shipped.
#
# Missing wine64 or mingw-w64: installed with apt-get when run as root;
# otherwise the test is skipped, except under CI (CI set), where it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
GO=${GO:-go}
start=$(date +%s)

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok:   $*"; }

# --- prerequisites ----------------------------------------------------------
find_wine() {
	for w in /usr/lib/wine/wine64 "$(command -v wine64 2>/dev/null)" "$(command -v wine 2>/dev/null)"; do
		[ -n "$w" ] && [ -x "$w" ] && { echo "$w"; return 0; }
	done
	return 1
}
find_wineserver() {
	for w in /usr/lib/wine/wineserver "$(command -v wineserver 2>/dev/null)"; do
		[ -n "$w" ] && [ -x "$w" ] && { echo "$w"; return 0; }
	done
	return 1
}
MINGW=x86_64-w64-mingw32-gcc
missing=""
find_wine >/dev/null || missing="$missing wine64"
command -v $MINGW >/dev/null || missing="$missing gcc-mingw-w64-x86-64-win32"
if [ -n "$missing" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "installing:$missing"
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing) >/dev/null
	elif [ -n "${CI:-}" ]; then
		echo "FAIL: missing$missing, and CI must provide it (run as root, or apt-get install$missing)" >&2
		exit 1
	else
		echo "skipping the Windows build under Wine: missing$missing (run as root, or apt-get install$missing)"
		exit 0
	fi
fi
WINE=$(find_wine)
WINESERVER=$(find_wineserver)
echo "wine: $("$WINE" --version 2>/dev/null || echo unknown) ($WINE)"

# --- builds -----------------------------------------------------------------
work=$(mktemp -d)
# One Wine prefix per checkout, kept between runs (making one takes 10-20s);
# a service test in one checkout never sees another's.
export WINEPREFIX="${TPWATCH_WINEPREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/tpwatch-wine/$(pwd | sha1sum | cut -c1-12)}"
export WINEDEBUG=-all
cleanup() {
	if [ -n "${service_installed:-}" ]; then
		timeout 60 "$WINE" "$work/tpwatch.exe" service uninstall >/dev/null 2>&1 || true
	fi
	[ -n "${live_pid:-}" ] && kill "$live_pid" 2>/dev/null || true
	rm -f "$WINEPREFIX/drive_c/windows/system32/Npcap/wpcap.dll"
	"$WINESERVER" -k 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

ldflags="-X main.version=wine-test"
$GO build -trimpath -ldflags "$ldflags" -o "$work/tpwatch" ./cmd/tpwatch
CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $GO build -trimpath -ldflags "$ldflags" -o "$work/tpwatch.exe" ./cmd/tpwatch
# The binary must not depend on gopacket's Windows binding (it panics in its
# init when a function is missing).
if CGO_ENABLED=0 GOOS=windows $GO list -deps ./cmd/tpwatch | grep -qx github.com/google/gopacket/pcap; then
	fail "the Windows build imports github.com/google/gopacket/pcap"
fi

# --- the Wine prefix --------------------------------------------------------
mkdir -p "$(dirname "$WINEPREFIX")"
if [ ! -d "$WINEPREFIX/drive_c/windows/system32" ]; then
	echo "making the Wine prefix $WINEPREFIX"
	# Without Mono and Gecko (nothing here needs .NET or a browser engine,
	# and offering to download them is what makes a new prefix slow).
	WINEDLLOVERRIDES="mscoree=;mshtml=" timeout 300 "$WINE" wineboot -i >/dev/null 2>&1 || true
	# End the Wine session that made the prefix, so that the runs below,
	# the service manager's included, start in a session of their own:
	# in the session wineboot left, the tpwatch service exited at once
	# (code 1, nothing logged) in 3 runs of 3 on a new prefix, while the
	# same command line ran in the foreground; a prefix made by an earlier
	# run (a new session) never showed it. What in that session does it
	# is not known; a real Windows has no such session.
	"$WINESERVER" -k 2>/dev/null || true
	"$WINESERVER" -w 2>/dev/null || true
fi
"$WINESERVER" -p30 2>/dev/null || true # one wineserver for every run below
sys32="$WINEPREFIX/drive_c/windows/system32"
if [ ! -e "$sys32/bcryptprimitives.dll" ]; then
	echo "this Wine has no bcryptprimitives.dll: building the test-only stand-in into the prefix"
	$MINGW -shared -O2 -o "$work/bcryptprimitives.dll" scripts/wine/bcryptprimitives.c -ladvapi32
	cp "$work/bcryptprimitives.dll" "$sys32/bcryptprimitives.dll"
fi
$MINGW -shared -O2 -o "$work/wpcap_incomplete.dll" scripts/wine/wpcap_incomplete.c

# exe runs tpwatch.exe under Wine, at most 60s: stdout to $work/out,
# stderr to $work/err, the exit status in $st.
exe() {
	st=0
	timeout 60 "$WINE" "$work/tpwatch.exe" "$@" >"$work/out" 2>"$work/err" || st=$?
}
no_panic() {
	if grep -qE 'panic:|goroutine [0-9]+ \[|fatal error:' "$work/err" "$work/out"; then
		fail "$1: a panic or fatal error:"; head -20 "$work/err" >&2
	fi
}

# --- commands that need no capture -------------------------------------------
exe --help
no_panic "--help"
if [ $st = 0 ] && grep -q '^Usage:' "$work/out"; then ok "tpwatch.exe --help"; else fail "tpwatch.exe --help: status $st"; cat "$work/err" >&2; fi
exe version
if [ $st = 0 ] && grep -q 'platform:  *windows/amd64' "$work/out"; then ok "tpwatch.exe version: $(head -1 "$work/out")"; else fail "version: status $st"; fi

# same: a command prints the same bytes and exit status from both builds.
same() {
	local what=$1
	shift
	local lst=0
	"$work/tpwatch" "$@" >"$work/linux.out" 2>/dev/null || lst=$?
	exe "$@"
	no_panic "$what"
	if [ "$st" != "$lst" ]; then
		fail "$what: exit status $st on Windows, $lst on Linux"; head -5 "$work/err" >&2
	elif ! cmp -s "$work/linux.out" "$work/out"; then
		fail "$what: output differs ($(wc -c <"$work/out") bytes on Windows, $(wc -c <"$work/linux.out") on Linux)"
		diff "$work/linux.out" "$work/out" | head -10 >&2 || true
	else
		ok "$what: $(wc -c <"$work/out") bytes, $(wc -l <"$work/out") lines, exit $st, identical"
	fi
}
same "policy --format json" policy --format json
same "policy export powershell" policy export --format powershell --config policy/export/testdata/site.yaml --host 192.0.2.10
same "policy export nftables" policy export --format nftables --config policy/export/testdata/site.yaml --role agent

# --- replay of every committed capture ---------------------------------------
for cap in pcaps/*.pcap pcaps/*.pcapng pcaps/*.pcap.gz pcaps/*.pcapng.gz; do
	[ -e "$cap" ] || continue
	base=${cap%.gz}
	base=${base%.pcapng}
	base=${base%.pcap}
	if [ -e "$base.yaml" ]; then
		same "replay --format json --config $base.yaml $cap" replay --format json --config "$base.yaml" "$cap"
	fi
	same "replay --format json --all $cap (inventory inferred)" replay --format json --all "$cap"
done

# --- interfaces, with Wine's own wpcap.dll ------------------------------------
exe interfaces
no_panic "interfaces (Wine's wpcap.dll)"
if [ $st = 0 ]; then
	ok "interfaces with Wine's wpcap.dll lists $(($(wc -l <"$work/out") - 1)) adapters: $(awk 'NR>1 {printf "%s %s; ", $1, $5}' "$work/out")"
elif [ $st = 2 ] && grep -q 'wpcap.dll' "$work/err"; then
	ok "interfaces with Wine's wpcap.dll: $(cat "$work/err")"
else
	fail "interfaces with Wine's wpcap.dll: status $st: $(cat "$work/err")"
fi

# --- no wpcap.dll at all ------------------------------------------------------
WINEDLLOVERRIDES="wpcap=d" exe interfaces
no_panic "interfaces without wpcap.dll"
if [ $st = 2 ] && grep -q 'Npcap is not installed' "$work/err" && grep -q 'https://npcap.com' "$work/err"; then
	ok "interfaces without wpcap.dll: exit 2: $(cat "$work/err")"
else
	fail "interfaces without wpcap.dll: status $st: $(cat "$work/err")"
fi
WINEDLLOVERRIDES="wpcap=d" exe run --interface Ethernet0 --web.listen-address 127.0.0.1:0
no_panic "run without wpcap.dll"
if [ $st = 2 ] && grep -q 'Npcap is not installed' "$work/err"; then
	ok "run without wpcap.dll: exit 2 at once"
else
	fail "run without wpcap.dll: status $st: $(head -3 "$work/err")"
fi
WINEDLLOVERRIDES="wpcap=d" same "replay without wpcap.dll" replay --format json --config pcaps/demo-site.yaml pcaps/demo-site.pcapng

# --- an incomplete wpcap.dll where Npcap's goes --------------------------------
mkdir -p "$sys32/Npcap"
cp "$work/wpcap_incomplete.dll" "$sys32/Npcap/wpcap.dll"
WINEDLLOVERRIDES="wpcap=n" exe interfaces
no_panic "interfaces with an incomplete wpcap.dll"
if [ $st = 2 ] && grep -qi 'system32\\Npcap\\wpcap.dll has no function pcap_findalldevs' "$work/err"; then
	ok "interfaces with an incomplete System32\\Npcap\\wpcap.dll: exit 2: $(cat "$work/err")"
else
	fail "interfaces with an incomplete wpcap.dll: status $st: $(cat "$work/err")"
fi
WINEDLLOVERRIDES="wpcap=n" exe run --interface Ethernet0 --web.listen-address 127.0.0.1:0
no_panic "run with an incomplete wpcap.dll"
if [ $st = 2 ] && grep -qi 'Npcap\\wpcap.dll has no function pcap_' "$work/err"; then
	ok "run with an incomplete wpcap.dll: exit 2: $(cat "$work/err")"
else
	fail "run with an incomplete wpcap.dll: status $st: $(head -3 "$work/err")"
fi
WINEDLLOVERRIDES="wpcap=n" same "replay with an incomplete wpcap.dll" replay --format json --config pcaps/demo-site.yaml pcaps/demo-site.pcapng
rm -f "$sys32/Npcap/wpcap.dll"

# --- as root: live capture through Wine's wpcap.dll, and the service ----------
free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
	done
	echo 0
}
# scrape PORT prints /metrics of the tpwatch serving on PORT.
scrape() {
	timeout 10 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3 && cat <&3' _ "$1" 2>/dev/null || true
}
metric() { scrape "$1" | awk -v m="$2" 'index($0, m" ") == 1 || index($0, m"{") == 1 {print $NF; exit}'; }
wait_for() { # PORT METRIC-WITH-LABELS MIN SECONDS
	local v
	for _ in $(seq $(($4 * 4))); do
		v=$(scrape "$1" | awk -v m="$2" 'index($0, m" ") == 1 {print $2; exit}')
		if [ -n "$v" ] && awk -v v="$v" -v min="$3" 'BEGIN {exit !(v >= min)}'; then return 0; fi
		sleep 0.25
	done
	return 1
}

if [ "$(id -u)" != 0 ]; then
	if [ -n "${CI:-}" ]; then fail "live capture and the service under Wine need root, and CI runs as root"; else
		echo "skipping live capture and the service under Wine: not root"; fi
else
	port=$(free_port)
	# Both ends are 127.0.0.1: each scrape of the metrics port is a host
	# talking to itself, which the daemon classifies ignored/own_traffic
	# (the allow rule only gives the service's reload below a config to
	# change).
	cat >"$work/site.yaml" <<EOF
roles:
  enterprise-manager: [127.0.0.1]
  agent: [127.0.0.1]
allow:
  - {id: wine-metrics, client: agent, server: enterprise-manager, transport: tcp, ports: [$port]}
EOF
	siteW="Z:${work//\//\\}\\site.yaml"
	timeout 300 "$WINE" "$work/tpwatch.exe" run --interface LO --config "$siteW" --web.listen-address "127.0.0.1:$port" \
		--log.format json >"$work/live.out" 2>"$work/live.err" &
	live_pid=$!
	# Generous waits: Wine on a busy machine takes seconds to start a
	# process or deliver a service control.
	if wait_for "$port" 'tpwatch_capture_up{interface="LO"}' 1 30; then
		for _ in 1 2 3; do scrape "$port" >/dev/null; done
		if wait_for "$port" 'tpwatch_flows_total{reason="own_traffic",rule="",vantage="client",verdict="ignored"}' 1 30; then
			ok "run --interface LO (Wine's wpcap.dll over the host's libpcap): capture up, $(metric "$port" 'tpwatch_capture_packets_total{interface="LO"}') packets, scrapes classified ignored/own_traffic"
		else
			fail "run: the scrapes were not classified ignored/own_traffic"; scrape "$port" | grep -E '^tpwatch_(flows_total|capture)' | grep -v ' 0$' >&2 || true
		fi
	else
		fail "run --interface LO: capture not up within 30s"; head -5 "$work/live.err" >&2
	fi
	grep -qE 'panic:|goroutine [0-9]+ \[' "$work/live.err" && fail "run: panic: $(head -3 "$work/live.err")"

	# The service: the same run, under Wine's service control manager. The
	# run above keeps running meanwhile: Wine's service manager ends with
	# the last program of the prefix and starts the automatic services each
	# time it starts again, which a real Windows does at boot only.
	port=$(free_port)
	sed -i "s/ports: \[[0-9]*\]/ports: [$port]/" "$work/site.yaml"
	logW='C:\ProgramData\tpwatch\wine-test.log'
	log="$WINEPREFIX/drive_c/ProgramData/tpwatch/wine-test.log"
	rm -f "$log"
	timeout 60 "$WINE" "$work/tpwatch.exe" service uninstall >/dev/null 2>&1 || true
	exe service install --interface LO --config "$siteW" --web.listen-address "127.0.0.1:$port" --log.file "$logW"
	if [ $st = 0 ]; then
		service_installed=1
		ok "service install: $(head -1 "$work/out")"
		t0=$(date +%s.%N)
		exe service start
		t1=$(date +%s.%N)
		if [ $st = 0 ] && wait_for "$port" 'tpwatch_capture_up{interface="LO"}' 1 30; then
			ok "service start: running after $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1fs", b - a}'), capture up"
		else
			fail "service start: status $st: $(cat "$work/err")"; tail -5 "$log" >&2 || true
			# Wine has no Event Log to read: run the service's command
			# line in the foreground for what it says when it cannot start.
			echo "the service's command line, run in the foreground:" >&2
			timeout 20 "$WINE" "$work/tpwatch.exe" run --config "$siteW" --interface LO --log.file "$logW" --web.listen-address "127.0.0.1:$port" 2>&1 | tail -5 >&2 || true
			tail -5 "$log" >&2 || true
		fi
		exe service status
		[ $st = 0 ] && grep -q 'state: *running' "$work/out" && ok "service status: running" || fail "service status: $st $(cat "$work/out" "$work/err")"
		exe service reload
		# Each look at the metrics is also a packet on lo: under Wine, whose
		# wpcap.dll reads ignore their timeout on a quiet interface, the
		# reload's filter check waits for the read to end (with Npcap the
		# check never waits: it compiles on a handle of its own).
		for _ in $(seq 60); do grep -q '"config reloaded"' "$log" 2>/dev/null && break; scrape "$port" >/dev/null; sleep 0.5; done
		grep -q '"config reloaded"' "$log" && ok "service reload (ParamChange): config reloaded" || fail "service reload: no reload in the log: $(tail -3 "$log")"
		t0=$(date +%s.%N)
		exe service stop
		t1=$(date +%s.%N)
		if [ $st = 0 ] && grep -q '"message":"stopped"' "$log" && grep -q 'flushed the flow table' "$log"; then
			ok "service stop: stopped cleanly (flow tables flushed); tpwatch service stop took $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1fs", b - a}') (the handler's wait hint is 15s)"
		else
			fail "service stop: status $st: $(cat "$work/err")"; tail -3 "$log" >&2 || true
		fi
		exe service status
		[ $st = 1 ] && grep -q 'state: *stopped' "$work/out" && ok "service status after stop: stopped, exit 1" || fail "service status after stop: $st"
		exe service uninstall
		[ $st = 0 ] && service_installed="" && ok "service uninstall" || fail "service uninstall: $st $(cat "$work/err")"
		exe service status
		[ $st = 2 ] && grep -q 'not installed' "$work/err" && ok "service status after uninstall: not installed, exit 2" || fail "service status after uninstall: $st"
	else
		fail "service install: status $st: $(cat "$work/err")"
	fi
	kill "$live_pid" 2>/dev/null || true
	wait "$live_pid" 2>/dev/null || true
	live_pid=""
fi

echo "make test-windows: $(($(date +%s) - start))s, $failures failure(s)"
[ "$failures" = 0 ]
