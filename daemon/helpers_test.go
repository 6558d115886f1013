package daemon

// The helpers of the tests that run a daemon: waiting on its log and
// metrics, running and stopping it, and the packets fed to it. The fake
// capture backend is in fake_test.go.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/capture/live"
	"github.com/tpwatch/tpwatch/policy"
	"github.com/tpwatch/tpwatch/replay"
)

// waitLimit bounds every wait for the daemon to do something. It is
// generous on purpose: a wait ends as soon as the thing happens, and the
// race detector on a loaded two-core machine is slow.
const waitLimit = 15 * time.Second

// t0 is the packet time the tests' own traffic starts at.
var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC).UnixNano()

// watched is a list that grows while other goroutines append to it, and
// that a test waits on until what it needs is there: no sleeping and
// guessing how long the daemon takes.
type watched[T any] struct {
	mu      sync.Mutex
	items   []T
	changed chan struct{} // closed at the next add; nil while nobody waits
}

func (w *watched[T]) add(v T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.items = append(w.items, v)
	if w.changed != nil {
		close(w.changed)
		w.changed = nil
	}
}

func (w *watched[T]) all() []T {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.items)
}

// wait returns the items once cond holds of them, and fails t if that
// takes longer than waitLimit.
func (w *watched[T]) wait(t *testing.T, what string, cond func([]T) bool) []T {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		items := slices.Clone(w.items)
		if cond(items) {
			w.mu.Unlock()
			return items
		}
		if w.changed == nil {
			w.changed = make(chan struct{})
		}
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("waited %v for %s; have %d items: %v", waitLimit, what, len(items), items)
		}
	}
}

// logEvent is one line of the daemon's JSON log.
type logEvent map[string]any

func (e logEvent) msg() string { s, _ := e["message"].(string); return s }

// logLines is the daemon's log, line by line, for the test to wait on.
type logLines struct{ watched[logEvent] }

func (l *logLines) Write(p []byte) (int, error) {
	for line := range bytes.SplitSeq(bytes.TrimSpace(p), []byte("\n")) {
		e := logEvent{}
		if err := json.Unmarshal(line, &e); err != nil {
			e = logEvent{"message": "unparsed: " + string(line)}
		}
		l.add(e)
	}
	return len(p), nil
}

// with returns the events with message msg.
func with(events []logEvent, msg string) []logEvent {
	var out []logEvent
	for _, e := range events {
		if e.msg() == msg {
			out = append(out, e)
		}
	}
	return out
}

// waitCount waits for n events with message msg and returns them.
func (l *logLines) waitCount(t *testing.T, msg string, n int) []logEvent {
	t.Helper()
	return with(l.wait(t, fmt.Sprintf("%d log lines %q", n, msg), func(es []logEvent) bool {
		return len(with(es, msg)) >= n
	}), msg)
}

// running is a daemon run by a test on a fake backend.
type running struct {
	t       *testing.T
	d       *Daemon
	b       *fakeBackend
	log     *logLines
	addr    string // of the metrics listener
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

// testConfig fills what a test leaves zero with values that keep it fast:
// one interface, a metrics listener on a free loopback port, a short read
// timeout and short retries.
func testConfig(t *testing.T, cfg Config, b *fakeBackend) Config {
	t.Helper()
	if cfg.Interfaces == nil {
		cfg.Interfaces = []string{"eth0"}
	}
	if cfg.Listeners == nil && cfg.ListenAddresses == nil {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		cfg.Listeners = []net.Listener{l}
	}
	if cfg.Live.ReadTimeout == 0 {
		cfg.Live.ReadTimeout = 20 * time.Millisecond
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin = 5 * time.Millisecond
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 20 * time.Millisecond
	}
	cfg.Backend = b
	return cfg
}

// start runs a daemon with cfg (see testConfig) until the test stops it
// or ends.
func start(t *testing.T, cfg Config, b *fakeBackend) *running {
	t.Helper()
	cfg = testConfig(t, cfg, b)
	r := &running{t: t, b: b, log: &logLines{}, done: make(chan error, 1)}
	d, err := New(cfg, zerolog.New(r.log))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r.d = d
	if len(cfg.Listeners) > 0 {
		r.addr = cfg.Listeners[0].Addr().String()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- d.Run(ctx) }()
	t.Cleanup(func() {
		if !r.stopped {
			r.stop()
		}
	})
	return r
}

// stop cancels the daemon's context, as SIGTERM does, and returns what
// Run returned.
func (r *running) stop() error {
	r.t.Helper()
	r.cancel()
	r.b.wakeAll()
	err := r.wait("Run to return after its context was cancelled")
	r.stopped = true
	return err
}

// wait waits for Run to return by itself.
func (r *running) wait(what string) error {
	r.t.Helper()
	select {
	case err := <-r.done:
		r.stopped = true
		return err
	case <-time.After(waitLimit):
		r.t.Fatalf("waited %v for %s", waitLimit, what)
		return nil
	}
}

// running reports whether Run has not returned.
func (r *running) running() bool {
	select {
	case err := <-r.done:
		r.done <- err
		return false
	default:
		return true
	}
}

// get fetches a path from the metrics listener.
func (r *running) get(path string) (int, string) {
	r.t.Helper()
	client := &http.Client{Timeout: waitLimit}
	resp, err := client.Get("http://" + r.addr + path)
	if err != nil {
		r.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// metric returns the value of the series of name whose labels include
// labels (name=value pairs), and whether there is one.
func metric(t *testing.T, d *Daemon, name string, labels ...string) (float64, bool) {
	t.Helper()
	mfs, err := d.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	// The series that have these labels, summed: tpwatch_flows_total of a
	// rule, verdict and reason has one series per vantage.
	sum, found := 0.0, false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				sum += value(m)
				found = true
			}
		}
	}
	return sum, found
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	return m.GetUntyped().GetValue()
}

// mustMetric is metric for a series that must exist.
func mustMetric(t *testing.T, d *Daemon, name string, labels ...string) float64 {
	t.Helper()
	v, ok := metric(t, d, name, labels...)
	if !ok {
		t.Fatalf("no series %s%v", name, labels)
	}
	return v
}

// waitMetric waits until the series has the value want. Metrics have no
// event to wait on, so it looks again every few milliseconds; it returns
// as soon as the value is there.
func waitMetric(t *testing.T, d *Daemon, want float64, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		v, ok := metric(t, d, name, labels...)
		if ok && v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s%v = %v; it is %v (exists: %v)", waitLimit, name, labels, want, v, ok)
		}
		<-tick.C
	}
}

// flowCounts returns tpwatch_flows_total's non-zero series, keyed
// "verdict/reason/rule".
func flowCounts(t *testing.T, mfs []*dto.MetricFamily) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "tpwatch_flows_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if v := value(m); v != 0 {
				out[l["verdict"]+"/"+l["reason"]+"/"+l["rule"]] += v // summed over the vantages
			}
		}
	}
	return out
}

func gatherFlows(t *testing.T, d *Daemon) map[string]float64 {
	t.Helper()
	mfs, err := d.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	return flowCounts(t, mfs)
}

// fileRecords reads every record of a capture file, each with its own
// copy of the bytes.
func fileRecords(t *testing.T, path string) []capture.Record {
	t.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var out []capture.Record
	for {
		var r capture.Record
		err := src.Next(&r)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		r.Data = slices.Clone(r.Data)
		out = append(out, r)
	}
}

// TCP flags for tcpRec.
const (
	syn = 1 << iota
	ack
	rst
	fin
)

// tcpRec builds an Ethernet/IPv4/TCP record at packet time ts.
func tcpRec(t *testing.T, ts int64, src, dst string, sport, dport uint16, flags int) capture.Record {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Window: 1024,
		SYN: flags&syn != 0, ACK: flags&ack != 0, RST: flags&rst != 0, FIN: flags&fin != 0}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return serialize(t, ts, ip, tcp)
}

// udpRec builds an Ethernet/IPv4/UDP record with a one-byte payload.
func udpRec(t *testing.T, ts int64, src, dst string, sport, dport uint16) capture.Record {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return serialize(t, ts, ip, udp, gopacket.Payload("x"))
}

func serialize(t *testing.T, ts int64, l ...gopacket.SerializableLayer) capture.Record {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, append([]gopacket.SerializableLayer{eth}, l...)...); err != nil {
		t.Fatal(err)
	}
	data := slices.Clone(buf.Bytes())
	return capture.Record{TS: ts, CapLen: uint32(len(data)), WireLen: uint32(len(data)), Link: capture.LinkEthernet, Data: data}
}

// ms is n milliseconds of packet time.
func ms(n int) int64 { return int64(n) * int64(time.Millisecond) }

// liveSite is the inventory of the tests' own traffic: agent → EM on
// tcp/3741 is rule agent-em-grpc, which expects an answer.
const liveSite = `roles:
  enterprise-manager: [192.0.2.10]
  agent: [198.51.100.21, 198.51.100.22]
`

const (
	agent, agent2, em = "198.51.100.21", "198.51.100.22", "192.0.2.10"
	grpcPort          = 3741
)

// replayFlows replays a capture file with replay.Run and returns its
// tpwatch_flows_total, read back from the metrics textfile it writes.
func replayFlows(t *testing.T, configFile, pcap string) map[string]float64 {
	t.Helper()
	pol, err := policy.Load("", configFile)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "replay.prom")
	if _, err := replay.Run(context.Background(), replay.Config{
		Policy: pol, ConfigName: configFile, Files: []string{pcap}, MetricsOut: out, Log: zerolog.Nop(),
	}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(f)
	if err != nil {
		t.Fatal(err)
	}
	mf := families["tpwatch_flows_total"]
	if mf == nil {
		t.Fatal("the replay textfile has no tpwatch_flows_total")
	}
	return flowCounts(t, []*dto.MetricFamily{mf})
}

// expectedFlows counts the flows of a capture's expected NDJSON (every
// flow, the ignored ones too) by verdict, reason and rule, the keys of
// flowCounts.
func expectedFlows(t *testing.T, path string) map[string]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var fl struct{ Verdict, Reason, Rule string }
		if err := json.Unmarshal(sc.Bytes(), &fl); err != nil {
			t.Fatal(err)
		}
		out[fl.Verdict+"/"+fl.Reason+"/"+fl.Rule]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func sameCounts(t *testing.T, what string, got, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %v, want %v", what, k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: %s = %v, want none", what, k, v)
		}
	}
}

var errNoDevice = fmt.Errorf("open eth0: %w", live.ErrNoDevice)

// retryIns returns the retry_in field of the log lines with message msg.
func retryIns(events []logEvent, msg string) []string {
	var out []string
	for _, e := range with(events, msg) {
		s, _ := e["retry_in"].(string)
		out = append(out, s)
	}
	return out
}

// listenerClosed says whether the daemon closed a listener it was given.
func listenerClosed(l net.Listener) bool { return errors.Is(l.Close(), net.ErrClosed) }

// replaceFile writes content to path through a rename, as an editor or a
// configuration manager does, so a reload never reads half a file.
func replaceFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func loadPolicy(t *testing.T, configFile string) *policy.Policy {
	t.Helper()
	p, err := policy.Load("", configFile)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ruleIDs(p *policy.Policy) map[string]bool {
	ids := map[string]bool{"": true}
	for _, r := range p.Rules() {
		ids[r.ID] = true
	}
	return ids
}

// flowClient and flowServer are two hosts for flows whose addresses do
// not matter (two different ones: a host with itself is own traffic).
var (
	flowClient = addr(198, 51, 100, 200)
	flowServer = addr(192, 0, 2, 200)
)
