package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tpwatch/tpwatch/pcaps"
)

// Issue 17, #3, through the command with the figures:
// `tpwatch replay --max-flows 256` of 200 established agent sessions and a
// flood of 20,000 SYNs. Every session is reported once, allowed, never
// evicted; the flood's flows are what the full table evicts.
func TestReplayFullTableKeepsTheSessions(t *testing.T) {
	bin := buildTpwatch(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "flood.yaml")
	if err := os.WriteFile(config, pcaps.FloodConfig(), 0o644); err != nil {
		t.Fatal(err)
	}
	const sessions, flood, maxFlows = 200, 20_000, 256
	capFile := filepath.Join(dir, "syn-flood.pcap")
	writeFloodFile(t, capFile, pcaps.FloodSYN, flood, sessions)
	res := replayFlood(t, bin, config, capFile, maxFlows)
	t.Logf("%d flows, %d evicted (%d reported evicted); sessions: %d reported, %d evicted, %d not allowed; %d lines",
		res.flows, res.evicted, res.evictedLines, res.sessions, res.sessionsEvicted, res.sessionsNotAllowed, res.lines)
	if res.sessions != sessions || res.sessionsEvicted != 0 || res.sessionsNotAllowed != 0 {
		t.Errorf("of %d sessions: %d reported, %d evicted, %d not allowed; want each reported once, allowed, none evicted",
			sessions, res.sessions, res.sessionsEvicted, res.sessionsNotAllowed)
	}
	if res.evicted < flood+sessions-maxFlows {
		t.Errorf("%d flows evicted: the flood did not fill the table", res.evicted)
	}
	if uint64(res.lines) != res.flows {
		t.Errorf("%d lines for %d flows: each flow is reported exactly once", res.lines, res.flows)
	}
}
