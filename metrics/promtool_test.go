package metrics

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/internal/testenv"
	"github.com/tpwatch/tpwatch/pipeline"
	"github.com/tpwatch/tpwatch/policy"
)

// promtool returns the path of promtool. Without it the test is skipped on
// a developer's machine and fails under CI, which must install it (Debian:
// apt-get install prometheus).
func promtool(t *testing.T) string {
	t.Helper()
	return testenv.Tool(t, "promtool", "prometheus")
}

// fullRegistry registers every collector of the package, each with values,
// as the daemon does.
func fullRegistry() *prometheus.Registry {
	flows := newTestCounters()
	for _, r := range []classifier.FlowRecord{
		record(0, classifier.Allowed, classifier.ReasonNone),
		record(1, classifier.Blocked, classifier.NoResponse),
		record(0, classifier.Unexpected, classifier.UnauthorizedClient),
		record(-1, classifier.Ignored, classifier.ReasonNone),
	} {
		flows.Observe(&r)
	}
	reload := &ReloadStatus{}
	reload.Success(time.Unix(1700000000, 0))
	suppressed := &SuppressedLogEvents{}
	suppressed.Add(3)
	reg, err := NewRegistry(Exporter{
		Version: "1.2.3", Revision: "abc123",
		Flows: flows,
		Captures: func() map[string]CaptureStats {
			return map[string]CaptureStats{"eth0": {Counts: pipeline.Counts{Records: 5, Bytes: 600}, Up: true}}
		},
		Table:               func() classifier.Stats { return classifier.Stats{Active: 1, Capacity: 1024} },
		Inventory:           func() policy.InventoryStats { return policy.InventoryStats{Hosts: 2} },
		Reloads:             reload,
		SuppressedLogEvents: suppressed,
		Runtime:             true,
	})
	if err != nil {
		panic(err)
	}
	return reg
}

func TestPromtoolCheckMetrics(t *testing.T) {
	bin := promtool(t)
	srv := httptest.NewServer(NewHandler(fullRegistry()))
	defer srv.Close()
	// Ask for the text format: promtool reads that.
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(body, []byte("tpwatch_flows_total")) {
		t.Fatalf("scrape lacks tpwatch_flows_total:\n%s", body)
	}

	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics: %v\n%s\non:\n%s", err, out, body)
	}
}
