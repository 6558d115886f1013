package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/capture/live"
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

// feedItem is what one call to a fake capture's Next returns: a record,
// or an error (an *capture.Idle, io.EOF, a read error), after delay.
type feedItem struct {
	rec   capture.Record
	err   error
	delay time.Duration
}

// fakeCapture is a live capture whose packets the test hands it. Like a
// live one it never ends by itself: with nothing to read, Next waits for
// the read timeout and returns an *capture.Idle (at the packet time of
// the last record, so a test's clock moves only when the test says), and
// after Close it returns io.EOF.
type fakeCapture struct {
	iface string
	opts  live.Options
	link  capture.LinkType
	idle  time.Duration // < 0: Next waits for a record or for wake
	feed  chan feedItem

	closed    chan struct{}
	closeOnce sync.Once
	// wake, once closed, makes Next return an Idle when it has nothing
	// to read, for a test that turned the read timeout off and ends.
	wake     chan struct{}
	wakeOnce sync.Once
	// reading is closed at the first call to Next: the pipeline runs.
	reading     chan struct{}
	readingOnce sync.Once
	clock       int64 // packet time of the last record: Next's goroutine only

	mu         sync.Mutex
	filter     string                  // in force
	setFilters []string                // every filter SetFilter put in force
	refuse     func(expr string) error // CheckFilter and SetFilter refuse what it does
	refuseSet  func(expr string) error // SetFilter alone
	stats      []live.Stats            // Stats returns these in turn, then the last again
	statsCalls int
}

var _ Capture = (*fakeCapture)(nil)

func (c *fakeCapture) Next(r *capture.Record) error {
	c.readingOnce.Do(func() { close(c.reading) })
	select {
	case it := <-c.feed:
		return c.deliver(it, r)
	case <-c.closed:
		return io.EOF
	default:
	}
	var timeout <-chan time.Time
	if c.idle > 0 {
		tm := time.NewTimer(c.idle)
		defer tm.Stop()
		timeout = tm.C
	}
	select {
	case it := <-c.feed:
		return c.deliver(it, r)
	case <-c.closed:
		return io.EOF
	case <-timeout:
		return &capture.Idle{Now: c.clock}
	case <-c.wake:
		return &capture.Idle{Now: c.clock}
	}
}

func (c *fakeCapture) deliver(it feedItem, r *capture.Record) error {
	if it.delay > 0 {
		tm := time.NewTimer(it.delay)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-c.closed:
			return io.EOF
		}
	}
	if it.err != nil {
		if idle, ok := errors.AsType[*capture.Idle](it.err); ok {
			c.clock = max(c.clock, idle.Now)
		}
		return it.err
	}
	*r = it.rec
	c.clock = max(c.clock, r.TS)
	return nil
}

func (c *fakeCapture) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

func (c *fakeCapture) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

func (c *fakeCapture) Link() capture.LinkType { return c.link }

func (c *fakeCapture) Stats() (live.Stats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.statsCalls++
	if len(c.stats) == 0 {
		return live.Stats{}, errors.New("no stats on this fake")
	}
	st := c.stats[0]
	if len(c.stats) > 1 {
		c.stats = c.stats[1:]
	}
	return st, nil
}

func (c *fakeCapture) CheckFilter(expr string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refuse != nil {
		return c.refuse(expr)
	}
	return nil
}

func (c *fakeCapture) SetFilter(expr string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, refuse := range []func(string) error{c.refuse, c.refuseSet} {
		if refuse != nil {
			if err := refuse(expr); err != nil {
				return err
			}
		}
	}
	c.filter = expr
	c.setFilters = append(c.setFilters, expr)
	return nil
}

// filters returns the filter in force and every one SetFilter accepted.
func (c *fakeCapture) filters() (string, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.filter, slices.Clone(c.setFilters)
}

func (c *fakeCapture) setRefuse(refuse, refuseSet func(string) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refuse, c.refuseSet = refuse, refuseSet
}

// send queues records for Next.
func (c *fakeCapture) send(recs ...capture.Record) {
	for _, r := range recs {
		c.feed <- feedItem{rec: r}
	}
}

// idleAt queues a read timeout that moves the packet clock to ns.
func (c *fakeCapture) idleAt(ns int64) { c.feed <- feedItem{err: &capture.Idle{Now: ns}} }

// fail queues an error for Next to return after delay.
func (c *fakeCapture) fail(err error, delay time.Duration) {
	c.feed <- feedItem{err: err, delay: delay}
}

// waitReading waits until the pipeline reads the capture.
func (c *fakeCapture) waitReading(t *testing.T) {
	t.Helper()
	select {
	case <-c.reading:
	case <-time.After(waitLimit):
		t.Fatalf("capture of %s never read", c.iface)
	}
}

// openStep is what one call to Open does: fail with err, or open a
// capture and let setup prepare it (queue its records, script its stats).
type openStep struct {
	err   error
	setup func(c *fakeCapture)
}

// openAttempt is one call to Open.
type openAttempt struct {
	iface string
	opts  live.Options
	at    time.Time
	err   error
	c     *fakeCapture // nil when it failed
}

func (a openAttempt) String() string {
	return fmt.Sprintf("%s at %s: %v", a.iface, a.at.Format("15:04:05.000"), a.err)
}

// fakeBackend opens fake captures, following each interface's script of
// open steps; once a script runs out, opens succeed.
type fakeBackend struct {
	idle time.Duration // the captures' read timeout; 0: Options.ReadTimeout

	mu          sync.Mutex
	scripts     map[string][]openStep
	checkFilter func(expr string, o live.Options) error

	attempts watched[openAttempt]
}

var _ Backend = (*fakeBackend)(nil)

func newBackend() *fakeBackend { return &fakeBackend{scripts: map[string][]openStep{}} }

// script appends open steps for iface.
func (b *fakeBackend) script(iface string, steps ...openStep) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.scripts[iface] = append(b.scripts[iface], steps...)
}

func (b *fakeBackend) Open(iface string, o live.Options) (Capture, error) {
	b.mu.Lock()
	var step openStep
	if s := b.scripts[iface]; len(s) > 0 {
		step, b.scripts[iface] = s[0], s[1:]
	}
	b.mu.Unlock()
	a := openAttempt{iface: iface, opts: o, at: time.Now(), err: step.err}
	if step.err != nil {
		b.attempts.add(a)
		return nil, step.err
	}
	idle := b.idle
	if idle == 0 {
		idle = o.ReadTimeout
	}
	c := &fakeCapture{
		iface: iface, opts: o, link: capture.LinkEthernet, idle: idle,
		feed:   make(chan feedItem, 1<<12),
		closed: make(chan struct{}), wake: make(chan struct{}), reading: make(chan struct{}),
		filter: o.BPF,
	}
	if step.setup != nil {
		step.setup(c)
	}
	a.c = c
	b.attempts.add(a)
	return c, nil
}

func (b *fakeBackend) CheckFilter(expr string, o live.Options) error {
	b.mu.Lock()
	check := b.checkFilter
	b.mu.Unlock()
	if check != nil {
		return check(expr, o)
	}
	return nil
}

func (b *fakeBackend) setCheckFilter(f func(string, live.Options) error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.checkFilter = f
}

// capture waits for the n-th capture (from 1) opened on iface.
func (b *fakeBackend) capture(t *testing.T, iface string, n int) *fakeCapture {
	t.Helper()
	var got []*fakeCapture
	b.attempts.wait(t, fmt.Sprintf("capture %d of %s", n, iface), func(as []openAttempt) bool {
		got = got[:0]
		for _, a := range as {
			if a.iface == iface && a.c != nil {
				got = append(got, a.c)
			}
		}
		return len(got) >= n
	})
	return got[n-1]
}

// wakeAll lets every capture's Next return Idle when it has nothing, so
// that a daemon whose context is done stops even where the test turned
// the read timeout off.
func (b *fakeBackend) wakeAll() {
	for _, a := range b.attempts.all() {
		if a.c != nil {
			a.c.wakeOnce.Do(func() { close(a.c.wake) })
		}
	}
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
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				return value(m), true
			}
		}
	}
	return 0, false
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
				out[l["verdict"]+"/"+l["reason"]+"/"+l["rule"]] = v
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
