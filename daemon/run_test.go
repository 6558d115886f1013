package daemon

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tpwatch/tpwatch/capture/live"
)

// The daemon reads a live capture through the same pipeline as replay: the
// demo site's traffic, fed as a live capture (with read timeouts between
// the packets' batches), gives the flow counts replay gives, and the
// endpoint serves them.
func TestRunCountsTheFlowsReplayCounts(t *testing.T) {
	const pcap, site = "../pcaps/demo-site.pcapng", "../pcaps/demo-site.yaml"
	recs := fileRecords(t, pcap)
	b := newBackend()
	r := start(t, Config{ConfigFile: site}, b)
	c := b.capture(t, "eth0", 1)
	c.send(recs...)
	waitMetric(t, r.d, float64(len(recs)), "tpwatch_capture_packets_total", "interface", "eth0")

	status, body := r.get("/metrics")
	if status != http.StatusOK {
		t.Fatalf("GET /metrics: status %d", status)
	}
	for _, want := range []string{
		`tpwatch_capture_up{interface="eth0"} 1`,
		`tpwatch_capture_packets_total{interface="eth0"} 266`,
		`tpwatch_config_last_reload_successful 1`,
		`tpwatch_rule_info{client="agent",feature="",ports="3741",rule="agent-em-grpc",server="enterprise-manager",transport="tcp"} 1`,
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	status, body = r.get("/")
	if status != http.StatusOK || !strings.Contains(body, "tpwatch") || !strings.Contains(body, `href="/metrics"`) {
		t.Errorf("GET /: status %d, a landing page without a link to /metrics:\n%s", status, body)
	}

	if err := r.stop(); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	got := gatherFlows(t, r.d)
	sameCounts(t, "daemon vs replay", got, replayFlows(t, site, pcap))
	sameCounts(t, "daemon vs expected NDJSON", got, expectedFlows(t, pcap+".expected.ndjson"))
	if got["blocked/no_response/agent-em-grpc"] != 2 {
		t.Errorf("blocked/no_response/agent-em-grpc = %v, want the demo's 2", got["blocked/no_response/agent-em-grpc"])
	}
	if v := mustMetric(t, r.d, "tpwatch_capture_up", "interface", "eth0"); v != 0 {
		t.Errorf("tpwatch_capture_up after stop = %v, want 0", v)
	}
	if !c.isClosed() {
		t.Error("the capture was not closed at stop")
	}
}

// Cancelling the context (SIGTERM) ends every flow in the table at the
// last packet time, as replay does at the end of a file: an attempt past
// its deadline is blocked, the others pending, and the last log line
// gives the totals.
func TestStopFlushesTheFlowTables(t *testing.T) {
	const pcap, site = "../pcaps/pending.pcap", "../pcaps/pending.yaml"
	recs := fileRecords(t, pcap)
	b := newBackend()
	r := start(t, Config{ConfigFile: site, Interfaces: []string{"eth0", "eth1"}}, b)
	c := b.capture(t, "eth0", 1)
	c.send(recs...)
	waitMetric(t, r.d, float64(len(recs)), "tpwatch_capture_packets_total", "interface", "eth0")
	b.capture(t, "eth1", 1).waitReading(t)
	before := gatherFlows(t, r.d)
	if before["pending//agent-tm-tcp"] != 0 {
		t.Fatalf("a flow is pending before the stop: %v", before)
	}

	stopped := time.Now()
	if err := r.stop(); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	// The captures' read timeout is 20ms; a stop that waited for more
	// packets or for the flows' own timeouts would take far longer.
	if took := time.Since(stopped); took > 5*time.Second {
		t.Errorf("Run took %v to return after cancel", took)
	}
	got := gatherFlows(t, r.d)
	sameCounts(t, "after stop", got, expectedFlows(t, pcap+".expected.ndjson"))

	var decided float64
	for _, v := range got {
		decided += v
	}
	flushed := with(r.log.all(), "flushed the flow table")
	if len(flushed) != 2 {
		t.Fatalf("%d flush lines, want one per interface: %v", len(flushed), flushed)
	}
	for _, e := range flushed {
		want := map[string]float64{"packets": 0, "flows": 0, "flows_decided": 0}
		if e["interface"] == "eth0" {
			want = map[string]float64{"packets": float64(len(recs)), "flows_decided": decided, "flows_created": decided}
		}
		for k, v := range want {
			if e[k] != v {
				t.Errorf("flush line of %v: %s = %v, want %v", e["interface"], k, e[k], v)
			}
		}
		if e["interface"] == "eth0" && e["flows"].(float64) < 2 {
			t.Errorf("flush line of eth0: %v flows open at the stop, want at least the 2 pending", e["flows"])
		}
	}
	last := r.log.all()
	if m := last[len(last)-1].msg(); m != "stopped" {
		t.Errorf("last log line %q, want stopped", m)
	}
}

// Packets that trickle in reach the table within the read timeout of
// packet time, without a read timeout in between and long before a
// batch is full.
func TestTricklingPacketsReachTheTableWithinTheLatency(t *testing.T) {
	dir := t.TempDir()
	b := newBackend()
	b.idle = -1 // no read timeout: only the latency can hand the packets on
	r := start(t, Config{ConfigFile: writeFile(t, dir, "site.yaml", liveSite), Live: live.Options{ReadTimeout: 200 * time.Millisecond}}, b)
	c := b.capture(t, "eth0", 1)
	c.send(
		tcpRec(t, t0, agent, em, 50000, grpcPort, syn),
		tcpRec(t, t0+ms(50), em, agent, grpcPort, 50000, rst|ack),
		udpRec(t, t0+ms(100), agent, em, 50001, 9),
		udpRec(t, t0+ms(150), agent, em, 50001, 9),
		udpRec(t, t0+ms(200), agent, em, 50001, 9),
	)
	waitMetric(t, r.d, 1, "tpwatch_flows_total", "verdict", "blocked", "reason", "refused", "rule", "agent-em-grpc")
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}

// The flow log lets through the burst, counts the rest, and says how many
// it suppressed every SuppressedReport and once more at the stop: every
// event suppressed, including those of the flows the stop decides, is in
// a summary line.
func TestFlowLogIsRateLimitedAndSummarised(t *testing.T) {
	const pcap, site = "../pcaps/demo-site.pcapng", "../pcaps/demo-site.yaml"
	recs := fileRecords(t, pcap)
	b := newBackend()
	r := start(t, Config{ConfigFile: site, LogRate: 1e-9, LogBurst: 1, SuppressedReport: 10 * time.Millisecond}, b)
	c := b.capture(t, "eth0", 1)
	c.send(recs...)
	// A summary while running: the periodic one.
	r.log.wait(t, "a suppressed-events summary", func(es []logEvent) bool {
		for _, e := range es {
			if strings.HasPrefix(e.msg(), "suppressed ") {
				return true
			}
		}
		return false
	})
	waitMetric(t, r.d, float64(len(recs)), "tpwatch_capture_packets_total", "interface", "eth0")
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	var problems float64
	for k, v := range gatherFlows(t, r.d) {
		if strings.HasPrefix(k, "blocked/") || strings.HasPrefix(k, "unexpected/") {
			problems += v
		}
	}
	if problems < 5 {
		t.Fatalf("%v blocked or unexpected flows in the demo, want several", problems)
	}
	var logged, summarised float64
	for _, e := range r.log.all() {
		switch m := e.msg(); {
		case m == "blocked flow" || m == "unexpected flow":
			logged++
		case strings.HasPrefix(m, "suppressed "):
			summarised += e["suppressed"].(float64)
		}
	}
	if logged != 1 {
		t.Errorf("%v flow events logged, want the burst of 1", logged)
	}
	suppressed := mustMetric(t, r.d, "tpwatch_log_events_suppressed_total")
	if suppressed != problems-1 {
		t.Errorf("tpwatch_log_events_suppressed_total = %v, want %v", suppressed, problems-1)
	}
	if summarised != suppressed {
		t.Errorf("the summary lines count %v suppressed events, the metric %v", summarised, suppressed)
	}
}

// The flows the stop decides come after the housekeeping's last periodic
// summary: their suppressed events must still be summarised.
func TestStopSummarisesEventsSuppressedByTheFlush(t *testing.T) {
	dir := t.TempDir()
	b := newBackend()
	b.idle = -1 // the test moves the clock
	r := start(t, Config{ConfigFile: writeFile(t, dir, "site.yaml", liveSite), LogRate: 1e-9, LogBurst: 1, SuppressedReport: time.Hour}, b)
	c := b.capture(t, "eth0", 1)
	c.send(
		tcpRec(t, t0, agent, em, 50000, grpcPort, syn),
		tcpRec(t, t0+ms(1), em, agent, grpcPort, 50000, rst|ack), // refused: logged
		tcpRec(t, t0+ms(2), agent, em, 50001, grpcPort, syn),
		tcpRec(t, t0+ms(3), em, agent, grpcPort, 50001, rst|ack), // refused: suppressed
		tcpRec(t, t0+ms(4), agent2, em, 50002, grpcPort, syn),    // no answer yet
	)
	c.idleAt(t0 + ms(5))
	waitMetric(t, r.d, 1, "tpwatch_log_events_suppressed_total")
	r.cancel()
	r.log.waitCount(t, "suppressed 1 flow log events over the log rate limit (--log.rate); tpwatch_flows_total counts every flow", 1)
	// The last read: its clock passes the unanswered SYN's deadline.
	c.idleAt(t0 + 31*int64(time.Second))
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if v := mustMetric(t, r.d, "tpwatch_flows_total", "verdict", "blocked", "reason", "no_response", "rule", "agent-em-grpc"); v != 1 {
		t.Fatalf("blocked/no_response = %v, want the unanswered SYN", v)
	}
	var summarised float64
	for _, e := range r.log.all() {
		if strings.HasPrefix(e.msg(), "suppressed ") {
			summarised += e["suppressed"].(float64)
		}
	}
	if suppressed := mustMetric(t, r.d, "tpwatch_log_events_suppressed_total"); summarised != suppressed || suppressed != 2 {
		t.Errorf("summary lines count %v suppressed events, the metric %v; want 2 and 2", summarised, suppressed)
	}
}

// The package function Run builds and runs a daemon, and a permanent error
// at the start comes back from it at once.
func TestPackageRunReturnsAStartError(t *testing.T) {
	b := newBackend()
	b.script("eth0", openStep{err: live.ErrUnavailable})
	cfg := testConfig(t, Config{}, b)
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), cfg, zerolog.Nop()) }()
	select {
	case err := <-done:
		if !errors.Is(err, live.ErrUnavailable) {
			t.Errorf("Run: %v, want ErrUnavailable", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Run did not return")
	}
	if err := Run(context.Background(), Config{}, zerolog.Nop()); err == nil {
		t.Error("Run without an interface succeeded")
	}
}
