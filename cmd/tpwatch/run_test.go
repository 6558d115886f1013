package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/capture/live"
)

func TestRunUsage(t *testing.T) {
	_, stderr, status := tpwatch(t, "run")
	if status != exitError || !strings.Contains(stderr, "interface") {
		t.Errorf("run without an interface: status %d, stderr %q", status, stderr)
	}
	bad := writeFile(t, "bad.yaml", "roles:\n  agnet: [198.51.100.0/24]\n")
	_, stderr, status = tpwatch(t, "run", "--interface", "lo", "--config", bad)
	if status != exitError || !strings.Contains(stderr, "bad.yaml:2:3") {
		t.Errorf("run with a bad config: status %d, stderr %q", status, stderr)
	}
	out, _, status := tpwatch(t, "run", "--help")
	if status != exitOK {
		t.Fatalf("run --help: status %d", status)
	}
	for _, want := range []string{"--interface", "--web.listen-address", ":19740", "--web.telemetry-path", "/metrics", "--web.config.file", "--promiscuous", "SIGHUP", "Examples:"} {
		if !strings.Contains(out, want) {
			t.Errorf("run --help lacks %q", want)
		}
	}
}

// A filter libpcap refuses is a usage error at once, as in tcpdump, with
// one line that quotes it: not an interface retried forever.
func TestRunRefusesABadFilterAtOnce(t *testing.T) {
	if err := live.CheckFilter("tcp", capture.LinkEthernet, live.Options{}); errors.Is(err, live.ErrUnavailable) {
		t.Skip("built without live capture: no libpcap compiles filters here")
	}
	type result struct {
		stderr string
		status int
	}
	done := make(chan result, 1)
	go func() {
		_, stderr, status := tpwatch(t, "run", "--interface", "lo", "--web.listen-address", "127.0.0.1:0", "--bpf", "tcp and nonsense")
		done <- result{stderr, status}
	}()
	select {
	case r := <-done:
		msg := strings.TrimSuffix(r.stderr, "\n")
		if r.status != exitError || strings.Contains(msg, "\n") ||
			!strings.Contains(msg, "--bpf") || !strings.Contains(msg, `"tcp and nonsense"`) {
			t.Errorf("status %d, stderr %q; want 2 and one line naming the filter", r.status, r.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tpwatch run with a bad filter still runs after 30s")
	}
}

// A binary built without cgo has no libpcap: `tpwatch run` says so and
// exits 2 at once instead of retrying an interface it can never open.
func TestRunWithoutCgoSaysLiveCaptureIsUnavailable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tpwatch")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "tpwatch")
	build := exec.Command(goBin, "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "run", "--interface", "lo", "--web.listen-address", "127.0.0.1:0")
	cmd.Stderr = &stderr
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatal("tpwatch run without cgo still runs after 30s")
	}
	var exit *exec.ExitError
	msg := strings.TrimSuffix(stderr.String(), "\n")
	if !errors.As(err, &exit) || exit.ExitCode() != exitError || strings.Contains(msg, "\n") ||
		!strings.Contains(msg, "live capture is not available in this build") {
		t.Errorf("run: %v, stderr %q; want exit status 2 and one line saying live capture is not available", err, stderr.String())
	}
}
