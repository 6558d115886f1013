package main

import (
	"strings"
	"testing"
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
