package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tpwatch/tpwatch/internal/testenv"
)

func TestReplayMetricsOut(t *testing.T) {
	out := filepath.Join(t.TempDir(), "demo.prom")
	_, stderr, status := tpwatch(t, "replay", "--format", "json", "--config", "../../pcaps/demo-site.yaml",
		"--metrics-out", out, "../../pcaps/demo-site.pcapng")
	if status != exitProblems {
		t.Fatalf("status %d: %s", status, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []string{
		`tpwatch_flows_total{reason="refused",rule="agent-tm-tcp",vantage="transit",verdict="blocked"} 1`,
		`tpwatch_flows_total{reason="no_response",rule="agent-em-grpc",vantage="transit",verdict="blocked"} 2`,
		`tpwatch_flows_total{reason="icmp_unreachable",rule="isilon-cee",vantage="transit",verdict="blocked"} 2`,
		`tpwatch_flows_total{reason="",rule="agent-em-grpc",vantage="transit",verdict="allowed"} 4`,
		`tpwatch_unexpected_flows_total{client_role="admin-console",outcome="worked",port="3389",server_role="enterprise-manager",transport="tcp",vantage="transit"} 1`,
		`tpwatch_capture_packets_total{interface="replay"} 266`,
		`tpwatch_rule_last_working_timestamp_seconds{rule="agent-em-grpc"}`,
		`tpwatch_build_info{`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("textfile lacks %s", want)
		}
	}
	// The textfile format has no timestamps: every sample line is name, value.
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		want := 1 // the value after the labels
		if !strings.Contains(line, "}") {
			want = 2 // name and value
		}
		if f := strings.Fields(line[strings.LastIndex(line, "}")+1:]); len(f) != want {
			t.Errorf("sample line with a timestamp or garbage: %q", line)
		}
	}
	promtool := testenv.Tool(t, "promtool", "prometheus")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if msg, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(msg))) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, msg)
	}

	// An unwritable path is an error, and the run says so.
	_, stderr, status = tpwatch(t, "replay", "--format", "json", "--metrics-out", "/nonexistent/dir/x.prom", "../../pcaps/demo-site.pcapng")
	if status != exitError || !strings.HasPrefix(stderr, "tpwatch: --metrics-out /nonexistent/dir/x.prom:") {
		t.Errorf("unwritable --metrics-out: status %d, stderr %q", status, stderr)
	}
}
