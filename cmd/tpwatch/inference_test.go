package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/pcaps"
)

// Issue 17, #10: without --config, 70,000 spoofed SYNs filled the learned
// host list, and the next real agent was unauthorized_client. The
// inventory learns from evidence only (an unanswered SYN teaches nothing):
// after the flood it holds the Enterprise Manager and the agent that
// reached it, the next agent's working session is allowed, and the
// metrics show the list's size, its bound and that nothing was dropped.
func TestSpoofedSYNFloodTeachesTheInventoryNothing(t *testing.T) {
	dir := t.TempDir()
	flood := filepath.Join(dir, "flood.pcap")
	f, err := os.Create(flood)
	if err != nil {
		t.Fatal(err)
	}
	// One established agent session, then 70,000 SYNs from random
	// sources to the Enterprise Manager's 3741, a microsecond apart.
	if err := pcaps.WriteFlood(f, pcaps.FloodSYN, 70_000, 1, 1); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// A second agent, after the flood, reaches the Enterprise Manager.
	const newAgent = "10.1.0.200"
	em := pcaps.FloodEnterpriseManager
	after := writePcapAt(t, "after.pcap", []time.Duration{time.Second, time.Second + 400*time.Microsecond, time.Second + 800*time.Microsecond},
		tcpPacket(t, newAgent, em, 50200, pcaps.FloodEMPort, true, false, false),
		tcpPacket(t, em, newAgent, pcaps.FloodEMPort, 50200, true, true, false),
		tcpPacket(t, newAgent, em, 50200, pcaps.FloodEMPort, false, true, false))
	prom := filepath.Join(dir, "replay.prom")
	out, stderr, status := tpwatch(t, "replay", "--format", "json", "--metrics-out", prom, flood, after)
	if status != exitOK && status != exitProblems {
		t.Fatalf("status %d: %s", status, stderr)
	}
	var agentFlow map[string]any
	for _, fl := range parseNDJSON(t, out) {
		if fl["src_ip"] == newAgent {
			agentFlow = fl
		}
	}
	if agentFlow == nil || agentFlow["verdict"] != "allowed" || agentFlow["rule"] != "agent-em-grpc" {
		t.Errorf("the agent after the flood: %v, want allowed by agent-em-grpc", agentFlow)
	}
	metrics, err := os.ReadFile(prom)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"tpwatch_inventory_learned_hosts 3\n", // the Enterprise Manager and two agents
		"tpwatch_inventory_capacity_hosts 65536\n",
		"tpwatch_inventory_learnings_dropped_total 0\n",
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q:\n%s", want, grepLines(string(metrics), "tpwatch_inventory"))
		}
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return strings.Join(out, "\n")
}
