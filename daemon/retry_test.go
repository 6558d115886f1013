package daemon

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os/user"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/capture/live"
)

// An interface that cannot be opened is retried with a backoff that
// doubles up to RetryMax; a capture that fails is reopened on the same
// flow table; the backoff starts again from RetryMin only after a capture
// that worked for longer than RetryMax. tpwatch_capture_up follows.
func TestRetriesBackOffAndReopenOnTheSameTable(t *testing.T) {
	const retryMin, retryMax = 50 * time.Millisecond, 200 * time.Millisecond
	synRec := tcpRec(t, t0, agent, em, 50000, grpcPort, syn)
	synAckRec := tcpRec(t, t0+ms(1), em, agent, grpcPort, 50000, syn|ack)
	b := newBackend()
	b.script("eth0",
		openStep{err: errNoDevice}, // at the start: Run goes on
		openStep{err: errNoDevice},
		openStep{err: errNoDevice},
		openStep{err: errNoDevice},
		openStep{setup: func(c *fakeCapture) {
			c.send(synRec)
			c.fail(errors.New("read eth0: device went away"), 0)
		}},
		openStep{setup: func(c *fakeCapture) {
			// The handshake's answer, on the reopened capture.
			c.send(synAckRec)
			c.fail(errors.New("read eth0: device went away again"), 2*retryMax)
		}},
		openStep{setup: func(c *fakeCapture) { c.fail(io.EOF, 0) }},
		openStep{err: errNoDevice},
	)
	dir := t.TempDir()
	// HeadersOnly: the handshake carries no payload, and on 3741, whose
	// protocol is checked, an allowed flow would wait for it (AppWait).
	r := start(t, Config{ConfigFile: writeFile(t, dir, "site.yaml", liveSite), RetryMin: retryMin, RetryMax: retryMax, HeadersOnly: true}, b)

	b.attempts.wait(t, "4 failed opens", func(as []openAttempt) bool { return len(as) >= 4 })
	if v := mustMetric(t, r.d, "tpwatch_capture_up", "interface", "eth0"); v != 0 {
		t.Errorf("tpwatch_capture_up = %v while the interface cannot be opened, want 0", v)
	}
	if !r.running() {
		t.Fatal("Run returned on a missing interface")
	}
	b.attempts.wait(t, "the failed open after three captures", func(as []openAttempt) bool { return len(as) >= 8 })
	if v := mustMetric(t, r.d, "tpwatch_capture_up", "interface", "eth0"); v != 0 {
		t.Errorf("tpwatch_capture_up = %v after the capture failed and the reopen failed, want 0", v)
	}
	last := b.capture(t, "eth0", 4)
	last.waitReading(t)
	if v := mustMetric(t, r.d, "tpwatch_capture_up", "interface", "eth0"); v != 1 {
		t.Errorf("tpwatch_capture_up = %v while capturing, want 1", v)
	}
	waitMetric(t, r.d, 1, "tpwatch_flows_total", "verdict", "allowed", "reason", "", "rule", "agent-em-grpc")

	logs := r.log.all()
	if n := len(with(logs, "cannot open interface; will retry")); n != 1 {
		t.Errorf("%d start-up open failures logged, want 1", n)
	}
	if got, want := retryIns(logs, "cannot open interface; retrying"), []string{"100ms", "200ms", "200ms", "200ms"}; !slices.Equal(got, want) {
		t.Errorf("open retries logged retry_in %v, want %v", got, want)
	}
	// A quick failure keeps the backoff; a capture that worked longer
	// than RetryMax resets it; the next quick failure doubles it again.
	if got, want := retryIns(logs, "capture failed; reopening"), []string{"200ms", "50ms", "100ms"}; !slices.Equal(got, want) {
		t.Errorf("capture failures logged retry_in %v, want %v", got, want)
	}
	failures := with(logs, "capture failed; reopening")
	if len(failures) == 3 {
		for i, want := range []string{"read eth0: device went away", "read eth0: device went away again", "capture ended"} {
			if failures[i]["error"] != want {
				t.Errorf("capture failure %d logged error %v, want %q", i, failures[i]["error"], want)
			}
		}
	}
	// Timers never fire early: each attempt waited at least its backoff.
	as := b.attempts.all()
	for i, want := range map[int]time.Duration{
		1: retryMin, 2: 2 * retryMin, 3: retryMax, 4: retryMax, 5: retryMax, 6: 2*retryMax + retryMin, 7: 2 * retryMin, 8: retryMax,
	} {
		if got := as[i].at.Sub(as[i-1].at); got < want {
			t.Errorf("open %d came %v after the one before, want at least %v", i+1, got, want)
		}
	}
	for _, a := range as {
		if a.opts.BPF == "" || !a.opts.BPFInVLANs || a.opts.ReadTimeout != 20*time.Millisecond {
			t.Errorf("open with options %+v, want the derived filter, in VLANs too, and the configured read timeout", a.opts)
		}
	}
	for i, a := range as {
		if a.c != nil && a.c != last && !a.c.isClosed() {
			t.Errorf("capture of open %d was not closed after it failed", i+1)
		}
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}

// An interface missing for good does not stop the daemon: it serves its
// metrics, with tpwatch_capture_up 0, until it is stopped.
func TestMissingInterfaceDoesNotStopRun(t *testing.T) {
	b := newBackend()
	for range 1000 {
		b.script("eth0", openStep{err: errNoDevice})
	}
	r := start(t, Config{RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond}, b)
	b.attempts.wait(t, "5 opens", func(as []openAttempt) bool { return len(as) >= 5 })
	if !r.running() {
		t.Fatalf("Run returned: %v", r.wait(""))
	}
	if _, body := r.get("/metrics"); !strings.Contains(body, `tpwatch_capture_up{interface="eth0"} 0`) {
		t.Errorf("/metrics lacks tpwatch_capture_up 0 for the missing interface")
	}
	if err := r.stop(); err != nil {
		t.Errorf("Run: %v, want nil after a stop", err)
	}
}

// What cannot work (no live capture in this build, no right to capture, a
// filter libpcap refuses, an unknown --user) ends Run at once with the
// error, before any retry, and closes what it opened.
func TestRunRefusesWhatCannotWork(t *testing.T) {
	badFilter := func(expr string, o live.Options) error {
		return fmt.Errorf("%w %q: syntax error", live.ErrBadFilter, expr)
	}
	cases := []struct {
		name     string
		cfg      Config
		eth1     []openStep
		check    func(string, live.Options) error
		want     error
		wantText string
		opens    int // calls to Open
	}{
		{name: "no permission", eth1: []openStep{{err: fmt.Errorf("open eth1: %w", live.ErrPermission)}},
			want: live.ErrPermission, wantText: "open eth1", opens: 2},
		{name: "no live capture", eth1: []openStep{{err: fmt.Errorf("open eth1: %w", live.ErrUnavailable)}},
			want: live.ErrUnavailable, wantText: "open eth1", opens: 2},
		{name: "bad --bpf", cfg: Config{Live: live.Options{BPF: "tcp and nonsense"}}, check: badFilter,
			want: live.ErrBadFilter, wantText: `--bpf: invalid capture filter "tcp and nonsense"`},
		{name: "bad derived filter", check: badFilter,
			want: live.ErrBadFilter, wantText: "the capture filter derived from the config: invalid capture filter"},
		{name: "unknown user", cfg: Config{User: "tpwatch-no-such-user"},
			want: user.UnknownUserError("tpwatch-no-such-user"), wantText: "--user tpwatch-no-such-user", opens: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend()
			b.script("eth1", tc.eth1...)
			b.setCheckFilter(tc.check)
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			cfg := tc.cfg
			cfg.Interfaces = []string{"eth0", "eth1"}
			cfg.Listeners = []net.Listener{l}
			r := start(t, cfg, b)
			err = r.wait("Run to return an error at once")
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("Run: %v, want %v naming %q", err, tc.want, tc.wantText)
			}
			as := b.attempts.all()
			if len(as) != tc.opens {
				t.Errorf("%d opens, want %d: %v", len(as), tc.opens, as)
			}
			for _, a := range as {
				if a.c != nil && !a.c.isClosed() {
					t.Errorf("the capture of %s was left open", a.iface)
				}
			}
			if !listenerClosed(l) {
				t.Error("the metrics listener was left open")
			}
		})
	}
}

// A listen address in use is an error at the start, and the listeners
// opened before it are closed again.
func TestRunRefusesAListenAddressInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()

	b := newBackend()
	r := start(t, Config{ListenAddresses: []string{freeAddr, busy.Addr().String()}}, b)
	err = r.wait("Run to return an error at once")
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "listen on "+busy.Addr().String()) {
		t.Errorf("Run: %v, want EADDRINUSE naming %s", err, busy.Addr())
	}
	if as := b.attempts.all(); len(as) != 0 {
		t.Errorf("%d captures opened with no metrics endpoint", len(as))
	}
	again, err := net.Listen("tcp", freeAddr)
	if err != nil {
		t.Errorf("the first listen address was not released: %v", err)
	} else {
		again.Close()
	}
}

// Without its metrics endpoint the daemon is blind: a listener that fails
// stops Run with the error, after the flow tables are flushed.
func TestRunStopsWhenTheMetricsEndpointFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend()
	r := start(t, Config{Listeners: []net.Listener{l}}, b)
	b.capture(t, "eth0", 1).waitReading(t)
	r.log.waitCount(t, "tpwatch running", 1)
	l.Close()
	err = r.wait("Run to return after its listener failed")
	if err == nil || !strings.Contains(err.Error(), "serve metrics") {
		t.Errorf("Run: %v, want the endpoint's error", err)
	}
	r.log.waitCount(t, "flushed the flow table", 1)
}

// libpcap's drop counters are 32 bits and wrap: the daemon adds what they
// grew by, modulo 2^32, and sums them over every capture of the interface.
func TestDropCountersWrapAndSumOverReopens(t *testing.T) {
	b := newBackend()
	b.script("eth0",
		openStep{setup: func(c *fakeCapture) {
			c.stats = []live.Stats{
				{KernelDrops: 0xFFFFFFF0, InterfaceDrops: 7}, // read at the first Idle
				{KernelDrops: 0x10, InterfaceDrops: 9},       // read when the capture fails: wrapped
			}
			c.idleAt(0)
			c.fail(errors.New("read eth0: gone"), 0)
		}},
		openStep{setup: func(c *fakeCapture) {
			c.stats = []live.Stats{{KernelDrops: 5, InterfaceDrops: 1}}
		}},
	)
	// Long enough that only the first Idle and the end of each capture
	// read the counters.
	r := start(t, Config{StatsInterval: time.Hour}, b)
	const kernel = 0xFFFFFFF0 + 0x20 + 5
	waitMetric(t, r.d, kernel, "tpwatch_capture_kernel_drops_total", "interface", "eth0")
	waitMetric(t, r.d, 7+2+1, "tpwatch_capture_interface_drops_total", "interface", "eth0")
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	// The last capture's final reading repeats its first: nothing more.
	if v := mustMetric(t, r.d, "tpwatch_capture_kernel_drops_total", "interface", "eth0"); v != kernel {
		t.Errorf("kernel drops after stop = %v, want %v", v, float64(kernel))
	}
	var flushed logEvent
	if fl := with(r.log.all(), "flushed the flow table"); len(fl) == 1 {
		flushed = fl[0]
	}
	if flushed["kernel_drops"] != float64(kernel) {
		t.Errorf("flush line kernel_drops = %v, want %v", flushed["kernel_drops"], float64(kernel))
	}
}
