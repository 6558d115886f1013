//go:build linux

package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/pcaps"
)

// The overload settings of the flood tests and the bounds they must keep.
const (
	floodMaxFlows = 65536
	floodLogRate  = 50
	// floodBufferSize is the kernel capture buffer asked for: big enough
	// that a burst from tcpreplay is not all dropped, and part of the
	// memory bound, since libpcap maps that ring into the process.
	floodBufferSize = 32 << 20
	// Memory: a flow costs its 104-byte entry, its index slot and the
	// table's growth slack, well under floodBytesPerFlow; the rest (Go
	// runtime, HTTP server, collectors, logger, the capture ring) is
	// floodFixedOverhead plus the capture buffer.
	floodBytesPerFlow  = 256
	floodFixedOverhead = 64 << 20
	floodRSSBound      = floodMaxFlows*floodBytesPerFlow + floodFixedOverhead + floodBufferSize
	// floodSeriesCap is the most sample lines /metrics may ever have,
	// whatever the traffic: the bounded label sets plus 500 unexpected
	// ports, the Go and process collectors.
	floodSeriesCap = 2000
	// unexpectedSeriesCap is metrics.DefaultUnexpectedSeriesLimit: past it
	// unexpected flows go to port="other".
	unexpectedSeriesCap = 500
)

// flood is one hostile capture replayed into a veth the daemon captures on.
type flood struct {
	name              string
	kind              pcaps.FloodKind
	packets, sessions int
	// asAgent rewrites the scanner's address into the agents' subnet:
	// a scan from a host that holds a role makes an unexpected/no_rule
	// flow per port, the worst case for the unexpected series cap.
	asAgent   bool
	mustEvict bool
}

// TestFloodOverload replays SYN floods, port scans and UDP sprays into a
// live daemon with a small flow table and checks that the daemon keeps its
// memory, its flow table, its metric series and its log bounded, counts
// what it had to drop, and still sees the established agent sessions
// working through the flood.
func TestFloodOverload(t *testing.T) {
	needFlood(t)
	bin := buildTpwatch(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "flood.yaml")
	if err := os.WriteFile(config, pcaps.FloodConfig(), 0o644); err != nil {
		t.Fatal(err)
	}
	floods := []flood{
		{name: "syn-flood", kind: pcaps.FloodSYN, packets: 1_500_000, sessions: 300, mustEvict: true},
		{name: "port-scan-from-agent", kind: pcaps.FloodPortScan, packets: 65535, sessions: 100, asAgent: true},
		{name: "udp-spray", kind: pcaps.FloodUDPSpray, packets: 600_000, sessions: 100, mustEvict: true},
	}
	if testing.Short() {
		floods[0].packets, floods[2].packets = 300_000, 200_000
	}
	var rows []string
	for _, fl := range floods {
		t.Run(fl.name, func(t *testing.T) {
			file := writeFlood(t, dir, fl)
			name, peer := newVeth(t)
			d := startFloodDaemon(t, bin, config, name)
			sent, elapsed := tcpreplay(t, peer, file)
			s := settle(t, d, name)
			hwm := vmHWM(t, d.cmd.Process.Pid)
			f := floodFigures(s, name)
			if err := d.alive(); err != nil {
				t.Fatalf("tpwatch stopped during the flood: %v", err)
			}
			// Stopped, so that the daemon writes its last summary of
			// suppressed events.
			d.stop(t)
			logged, suppressedSummed := countFlowLog(d.logEvents())

			// Every packet sent is either captured or counted as dropped:
			// all of them are to or from the Enterprise Manager, which the
			// capture filter admits.
			if got := f.packets + f.kernelDrops; got < float64(sent)*99/100 {
				t.Errorf("%v packets captured + %v kernel drops of %d sent", f.packets, f.kernelDrops, sent)
			}
			if hwm > floodRSSBound {
				t.Errorf("peak RSS (VmHWM) %d MiB, want under %d MiB (%d flows × %d B + %d MiB + the %d MiB capture buffer)",
					hwm>>20, floodRSSBound>>20, floodMaxFlows, floodBytesPerFlow, floodFixedOverhead>>20, floodBufferSize>>20)
			}
			if f.entries > floodMaxFlows {
				t.Errorf("tpwatch_flow_table_entries %v, want ≤ --max-flows %d", f.entries, floodMaxFlows)
			}
			if f.capacity > floodMaxFlows {
				t.Errorf("tpwatch_flow_table_capacity %v, want ≤ --max-flows %d", f.capacity, floodMaxFlows)
			}
			if fl.mustEvict && f.evictions == 0 {
				t.Errorf("no eviction counted after %.0f captured packets of %s into a %d-flow table", f.packets, fl.name, floodMaxFlows)
			}
			// An evicted flow was counted in tpwatch_flows_total (decided at
			// the latest when it is pushed out), so nothing is lost unseen.
			if f.flows < f.evictions {
				t.Errorf("tpwatch_flows_total sums to %v, fewer than the %v flows evicted: evicted flows go uncounted", f.flows, f.evictions)
			}
			if f.series > floodSeriesCap {
				t.Errorf("/metrics has %d samples, want ≤ %d whatever the flood", f.series, floodSeriesCap)
			}
			if f.unexpectedSeries > unexpectedSeriesCap+f.otherSeries {
				t.Errorf("tpwatch_unexpected_flows_total has %d series, %d of them port=\"other\": want ≤ %d + other",
					f.unexpectedSeries, f.otherSeries, unexpectedSeriesCap)
			}
			if fl.asAgent && f.unexpectedPorts > unexpectedSeriesCap && f.otherSeries == 0 {
				t.Errorf("%d distinct unexpected ports and no port=\"other\" series", f.unexpectedPorts)
			}
			// Blocked and unexpected flows past the burst are not logged
			// one by one but counted.
			problem := f.blocked + f.unexpected
			if problem > float64(daemonLogBurst+floodLogRate*20) {
				if f.suppressed == 0 {
					t.Errorf("%v blocked or unexpected flows, %d logged, tpwatch_log_events_suppressed_total 0", problem, logged)
				}
			}
			// The summary lines account for every suppressed event.
			if suppressedSummed < f.suppressed {
				t.Errorf("the log's summaries of suppressed events add up to %v, tpwatch_log_events_suppressed_total said %v", suppressedSummed, f.suppressed)
			}
			if float64(logged)+f.suppressed < problem {
				t.Errorf("%d flow events logged + %v suppressed < %v blocked or unexpected flows", logged, f.suppressed, problem)
			}
			if limit := daemonLogBurst + floodLogRate*(d.age().Seconds()+1); float64(logged) > limit {
				t.Errorf("%d flow events logged in %v, want ≤ %.0f (burst %d + %d/s)", logged, d.age().Round(time.Second), limit, daemonLogBurst, floodLogRate)
			}
			// The real sessions still show through: their handshakes open
			// the capture, before the flood fills the kernel buffer.
			if want := float64(fl.sessions) * 9 / 10; f.sessionsAllowed < want {
				t.Errorf("agent-em-grpc allowed flows %v, want ≥ %v of the %d established sessions", f.sessionsAllowed, want, fl.sessions)
			}
			rows = append(rows, fmt.Sprintf("%-20s %9d %5.1fs %9.0f %9.0f %8.0f %8.0f %9.0f %7.0f %9.0f %7.0f %6d MiB %6d %5d/%-3d %6d",
				fl.name, sent, elapsed.Seconds(), f.packets, f.kernelDrops, f.flows, f.entries, f.evictions, f.sessionsAllowed,
				f.unexpected, f.suppressed, hwm>>20, f.series, f.unexpectedSeries, f.otherSeries, logged))
		})
	}
	t.Logf("bound: RSS ≤ %d flows × %d B + %d MiB + %d MiB capture buffer = %d MiB; /metrics ≤ %d samples\n%-20s %9s %6s %9s %9s %8s %8s %9s %7s %9s %7s %10s %6s %9s %6s\n%s",
		floodMaxFlows, floodBytesPerFlow, floodFixedOverhead>>20, floodBufferSize>>20, floodRSSBound>>20, floodSeriesCap,
		"flood", "sent", "time", "captured", "k.drops", "flows", "entries", "evictions", "allowed", "unexpect", "suppr", "peak RSS", "series", "unexp/oth", "logged",
		strings.Join(rows, "\n"))
}

// TestFloodSIGTERM stops the daemon with SIGTERM while tcpreplay is still
// sending a SYN flood: it must exit 0 within a few seconds and its last
// log line must give the totals it counted.
func TestFloodSIGTERM(t *testing.T) {
	needFlood(t)
	bin := buildTpwatch(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "flood.yaml")
	if err := os.WriteFile(config, pcaps.FloodConfig(), 0o644); err != nil {
		t.Fatal(err)
	}
	file := writeFlood(t, dir, flood{name: "syn-flood", kind: pcaps.FloodSYN, packets: 1_000_000, sessions: 100})
	name, peer := newVeth(t)
	d := startFloodDaemon(t, bin, config, name)

	// A slow enough rate that the replay lasts well past the signal.
	replay := exec.Command("tcpreplay", "-q", "--pps", "100000", "-i", peer, file)
	if err := replay.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { replay.Process.Kill(); replay.Wait() })
	d.waitFor(t, 15*time.Second, "the flood being captured", func(s []sample) bool {
		v, _ := value(s, "tpwatch_capture_packets_total", map[string]string{"interface": name})
		return v > 50_000
	})
	last := d.scrape(t)
	if err := replay.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("tcpreplay had finished before the signal (%v): the flood is too short to test a stop in its middle", err)
	}
	start := time.Now()
	d.signal(t, syscall.SIGTERM)
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("tpwatch exited with %v after SIGTERM in a flood, want status 0", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("tpwatch did not exit within 5s of SIGTERM in a flood")
	}
	stopped := time.Since(start)

	var flush map[string]any
	events := d.logEvents()
	for _, e := range events {
		if e["message"] == "flushed the flow table" && e["interface"] == name {
			flush = e
		}
	}
	if flush == nil {
		t.Fatalf("no final \"flushed the flow table\" line for %s", name)
	}
	num := func(k string) float64 {
		v, ok := flush[k].(float64)
		if !ok {
			t.Errorf("the final log line lacks %q: %v", k, flush)
		}
		return v
	}
	packets, decided, created, evicted := num("packets"), num("flows_decided"), num("flows_created"), num("flows_evicted")
	scraped, _ := value(last, "tpwatch_capture_packets_total", map[string]string{"interface": name})
	scrapedFlows, _ := value(last, "tpwatch_flows_total", nil)
	scrapedEvicted, _ := value(last, "tpwatch_flow_table_evictions_total", nil)
	// The totals at exit are at least what the last scrape showed: the
	// packets counted since are not lost.
	if packets < scraped {
		t.Errorf("final packets %v < %v scraped before SIGTERM", packets, scraped)
	}
	if decided < scrapedFlows {
		t.Errorf("final flows_decided %v < %v in tpwatch_flows_total before SIGTERM", decided, scrapedFlows)
	}
	if evicted < scrapedEvicted {
		t.Errorf("final flows_evicted %v < %v scraped before SIGTERM", evicted, scrapedEvicted)
	}
	// The flush decides every flow still live: each created flow has a
	// verdict at exit.
	if decided != created {
		t.Errorf("final flows_decided %v, flows_created %v: the flush left flows undecided", decided, created)
	}
	lastLines := events[max(0, len(events)-3):]
	t.Logf("exit %v after SIGTERM; scraped before: %.0f packets, %.0f flows; final line: packets %.0f, flows created %.0f, decided %.0f, evicted %.0f, live at stop %v\nlast log lines: %v",
		stopped.Round(time.Millisecond), scraped, scrapedFlows, packets, created, decided, evicted, flush["flows"], lastLines)
}

func needFlood(t *testing.T) {
	t.Helper()
	need(t, runtime.GOOS == "linux", "Linux")
	need(t, os.Geteuid() == 0, "root")
	need(t, have("ip"), "ip (Debian package iproute2)")
	need(t, have("tcpreplay"), "tcpreplay (Debian package tcpreplay)")
}

// daemonLogBurst is daemon.DefaultLogBurst: the flood tests leave
// --log.burst alone.
const daemonLogBurst = 50

func startFloodDaemon(t *testing.T, bin, config, iface string) *floodDaemon {
	t.Helper()
	d := startDaemonArgs(t, bin, config, "--interface", iface,
		"--max-flows", strconv.Itoa(floodMaxFlows), "--log.rate", strconv.Itoa(floodLogRate),
		"--buffer-size", strconv.Itoa(floodBufferSize))
	fd := &floodDaemon{daemonProc: d, started: time.Now()}
	d.waitFor(t, 10*time.Second, "tpwatch_capture_up 1", func(s []sample) bool {
		v, _ := value(s, "tpwatch_capture_up", map[string]string{"interface": iface})
		return v == 1
	})
	return fd
}

type floodDaemon struct {
	*daemonProc
	started time.Time
}

func (d *floodDaemon) age() time.Duration { return time.Since(d.started) }

// newVeth makes a veth pair of its own in the root namespace, with no
// address or route, up, removed when the test ends. The daemon captures on
// name; packets written to peer arrive there.
func newVeth(t *testing.T) (name, peer string) {
	t.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name = "tpw" + hex.EncodeToString(b[:]) + "a"
	peer = name[:len(name)-1] + "b"
	t.Cleanup(func() { exec.Command("ip", "link", "del", name).Run() })
	for _, args := range [][]string{{"link", "add", name, "type", "veth", "peer", "name", peer}, {"link", "set", name, "up"}, {"link", "set", peer, "up"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	return name, peer
}

// writeFlood writes the flood's capture in dir and returns its path.
func writeFlood(t *testing.T, dir string, fl flood) string {
	t.Helper()
	path := filepath.Join(dir, fl.name+".pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := pcaps.WriteFlood(f, fl.kind, fl.packets, fl.sessions, 1); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if !fl.asAgent {
		return path
	}
	need(t, have("tcprewrite"), "tcprewrite (Debian package tcpreplay)")
	// 10.9.0.66 → 10.1.255.66, inside pcaps.FloodAgents and clear of the
	// sessions' clients (10.1.0.1 upwards).
	rewritten := filepath.Join(dir, fl.name+"-agent.pcap")
	out, err := exec.Command("tcprewrite", "--pnat="+pcaps.FloodScanner+"/32:10.1.255.66/32", "--fixcsum",
		"-i", path, "-o", rewritten).CombinedOutput()
	if err != nil {
		t.Fatalf("tcprewrite: %v\n%s", err, out)
	}
	return rewritten
}

var tcpreplayActual = regexp.MustCompile(`Actual: (\d+) packets`)

// tcpreplay sends file out of iface as fast as it can and returns how many
// packets it sent and how long it took.
func tcpreplay(t *testing.T, iface, file string) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	out, err := exec.Command("tcpreplay", "--topspeed", "-i", iface, file).CombinedOutput()
	el := time.Since(start)
	if err != nil {
		t.Fatalf("tcpreplay: %v\n%s", err, out)
	}
	m := tcpreplayActual.FindSubmatch(out)
	if m == nil {
		t.Fatalf("tcpreplay printed no packet count:\n%s", out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n, el
}

// settle waits until the daemon has counted every packet it will (the
// captured count stops moving) and returns the last scrape.
func settle(t *testing.T, d *floodDaemon, iface string) []sample {
	t.Helper()
	var last float64 = -1
	var s []sample
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		s = d.scrape(t)
		v, _ := value(s, "tpwatch_capture_packets_total", map[string]string{"interface": iface})
		if v == last {
			return s
		}
		last = v
	}
	t.Errorf("tpwatch_capture_packets_total still moving 20s after the replay")
	return s
}

// figures are what one scrape says of a flood.
type figures struct {
	packets, kernelDrops                  float64
	flows, blocked, unexpected            float64
	entries, capacity, evictions          float64
	suppressed, sessionsAllowed           float64
	series, unexpectedSeries, otherSeries int
	unexpectedPorts                       int
}

func floodFigures(s []sample, iface string) figures {
	var f figures
	f.packets, _ = value(s, "tpwatch_capture_packets_total", map[string]string{"interface": iface})
	f.kernelDrops, _ = value(s, "tpwatch_capture_kernel_drops_total", map[string]string{"interface": iface})
	f.flows, _ = value(s, "tpwatch_flows_total", nil)
	f.blocked, _ = value(s, "tpwatch_flows_total", map[string]string{"verdict": "blocked"})
	f.unexpected, _ = value(s, "tpwatch_flows_total", map[string]string{"verdict": "unexpected"})
	f.entries, _ = value(s, "tpwatch_flow_table_entries", nil)
	f.capacity, _ = value(s, "tpwatch_flow_table_capacity", nil)
	f.evictions, _ = value(s, "tpwatch_flow_table_evictions_total", nil)
	f.suppressed, _ = value(s, "tpwatch_log_events_suppressed_total", nil)
	f.sessionsAllowed, _ = value(s, "tpwatch_flows_total", map[string]string{"verdict": "allowed", "rule": "agent-em-grpc"})
	f.series = len(s)
	ports := map[string]bool{}
	for _, x := range s {
		if x.name != "tpwatch_unexpected_flows_total" {
			continue
		}
		f.unexpectedSeries++
		ports[x.labels["port"]] = true
		if x.labels["port"] == "other" {
			f.otherSeries++
		}
	}
	f.unexpectedPorts = len(ports)
	return f
}

// countFlowLog counts the flow events (blocked and unexpected flows, one
// line each) and adds up the summary lines of suppressed events.
func countFlowLog(events []map[string]any) (flows int, suppressed float64) {
	for _, e := range events {
		if _, ok := e["verdict"]; ok {
			flows++
		}
		if n, ok := e["suppressed"].(float64); ok {
			suppressed += n
		}
	}
	return flows, suppressed
}

// stop sends SIGTERM and waits for the daemon to exit 0.
func (d *floodDaemon) stop(t *testing.T) {
	t.Helper()
	d.signal(t, syscall.SIGTERM)
	select {
	case err := <-d.done:
		d.done <- err
		if err != nil {
			t.Fatalf("tpwatch exited with %v after SIGTERM, want status 0", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("tpwatch did not exit within 5s of SIGTERM")
	}
}

// vmHWM returns the peak resident memory of process pid, from the VmHWM
// line of /proc/<pid>/status.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	kb, err := procStatus(pid, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(kb)
	if len(fields) != 2 || fields[1] != "kB" {
		t.Fatalf("VmHWM of %d: %q", pid, kb)
	}
	n, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		t.Fatalf("VmHWM of %d: %v", pid, err)
	}
	return n << 10
}

// procStatus returns the value of one field of /proc/<pid>/status.
func procStatus(pid int, field string) (string, error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == field {
			return strings.TrimSpace(v), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return "", fmt.Errorf("%s has no %s line", path, field)
}
