//go:build cgo

package daemon

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/capture/live"
)

// compilingBackend is a fake backend that compiles every filter with
// libpcap, as a live one does: once to check it at start and on reload,
// once more when a capture opens.
func compilingBackend() *fakeBackend {
	b := newBackend()
	b.setCheckFilter(func(expr string, o live.Options) error {
		return live.CheckFilter(expr, capture.LinkEthernet, o)
	})
	return b
}

// Issue 17, #1: with 10,000 agents listed one by one, the daemon captures
// within 2 s of its start and honours a stop (SIGTERM) within 1 s. The
// filter is compiled by libpcap at start and again at the capture's open,
// as a live daemon does; the time counts the config's loading too.
func TestTenThousandHostsStartAndStopFast(t *testing.T) {
	site := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(site, []byte(manyAgents(10000, false)), 0o644); err != nil {
		t.Fatal(err)
	}
	b := compilingBackend()
	b.script("eth0", openStep{setup: func(c *fakeCapture) {
		if err := live.CheckFilter(c.opts.BPF, capture.LinkEthernet, c.opts); err != nil {
			t.Errorf("open: %v", err)
		}
	}})
	began := time.Now()
	r := start(t, Config{ConfigFile: site, HeadersOnly: true}, b) // a handshake without payload, as in retry_test.go
	c := b.capture(t, "eth0", 1)
	c.waitReading(t)
	capturing := time.Since(began)
	c.send(tcpRec(t, t0, "10.0.0.2", em, 50000, grpcPort, syn),
		tcpRec(t, t0+ms(1), em, "10.0.0.2", grpcPort, 50000, syn|ack))
	waitMetric(t, r.d, 1, "tpwatch_flows_total", "verdict", "allowed", "rule", "agent-em-grpc")
	stopping := time.Now()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Since(stopping)
	t.Logf("10,000 agents: capturing %v after start, stopped %v after the signal; filter %q",
		capturing.Round(time.Millisecond), stopped.Round(time.Millisecond), c.opts.BPF)
	if capturing > 2*time.Second {
		t.Errorf("capturing %v after start, want within 2s", capturing)
	}
	if stopped > time.Second {
		t.Errorf("stopped %v after the signal, want within 1s", stopped)
	}
}

// A stop asked while the capture filter is still compiling (a long --bpf:
// libpcap's compile cannot be interrupted) is honoured at once, and the
// capture that open returns later is closed.
func TestStopDuringFilterCompile(t *testing.T) {
	release := make(chan struct{})
	b := newBackend()
	b.setCheckFilter(func(string, live.Options) error {
		<-release
		return nil
	})
	r := start(t, Config{Live: live.Options{BPF: "tcp"}}, b)
	// Run is in the compile: no capture opened yet.
	time.Sleep(50 * time.Millisecond)
	stopping := time.Now()
	r.cancel()
	if err := r.wait("Run to return while the filter compiles"); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if took := time.Since(stopping); took > time.Second {
		t.Errorf("stopped %v after the signal, want within 1s", took)
	}
	if n := len(b.attempts.all()); n != 0 {
		t.Fatalf("%d captures opened before the compile ended", n)
	}
	close(release)
	c := b.capture(t, "eth0", 1)
	deadline := time.Now().Add(waitLimit)
	for !c.isClosed() {
		if time.Now().After(deadline) {
			t.Fatal("the capture opened after the stop was never closed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
