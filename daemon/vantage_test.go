package daemon

import (
	"net/netip"
	"testing"

	"github.com/rs/zerolog"
)

// TestVantageFromTheHostsAddresses: on agent1 of the demo site, the flows
// agent1 opens are counted as seen by their client, those it serves as
// seen by their server, the others in transit; tpwatch_host_info gives
// agent1's roles. A sensor forced to transit counts everything there.
func TestVantageFromTheHostsAddresses(t *testing.T) {
	const pcap, site = "../pcaps/demo-site.pcapng", "../pcaps/demo-site.yaml"
	recs := fileRecords(t, pcap)
	agent1 := func() ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("198.51.100.21"), netip.MustParseAddr("127.0.0.1")}, nil
	}
	b := newBackend()
	r := start(t, Config{ConfigFile: site, LocalAddrs: agent1}, b)
	c := b.capture(t, "eth0", 1)
	c.send(recs...)
	waitMetric(t, r.d, float64(len(recs)), "tpwatch_capture_packets_total", "interface", "eth0")
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		rule, vantage string
		want          float64
	}{
		{"agent-em-grpc", "client", 2},         // agent1's two sessions to the EM
		{"agent-em-grpc", "transit", 2},        // agent3's
		{"netappc-agent-fpolicy", "server", 2}, // the NetApp's events to agent1
		{"agent-panzura-api", "client", 0},     // exported at zero: agent1 may open it
		{"em-sql-tds", "transit", 4},
	} {
		if got, _ := metric(t, r.d, "tpwatch_flows_total", "rule", tt.rule, "verdict", "allowed", "vantage", tt.vantage); got != tt.want {
			t.Errorf("%s seen as %s: %v, want %v", tt.rule, tt.vantage, got, tt.want)
		}
	}
	if _, found := metric(t, r.d, "tpwatch_flows_total", "rule", "agent-panzura-api", "verdict", "allowed", "vantage", "client"); !found {
		t.Error("an agent does not export its client series of agent-panzura-api at zero")
	}
	if _, found := metric(t, r.d, "tpwatch_flows_total", "rule", "netappc-agent-fpolicy", "verdict", "allowed", "vantage", "client"); found {
		t.Error("an agent exports client series of netappc-agent-fpolicy, a rule whose client it can never be")
	}
	if v, ok := metric(t, r.d, "tpwatch_host_info", "roles", "agent", "vantage", "auto"); !ok || v != 1 {
		t.Errorf("tpwatch_host_info{roles=agent,vantage=auto} = %v (%v), want 1", v, ok)
	}

	b = newBackend()
	r = start(t, Config{ConfigFile: site, LocalAddrs: agent1, Vantage: "transit"}, b)
	c = b.capture(t, "eth0", 1)
	c.send(recs...)
	waitMetric(t, r.d, float64(len(recs)), "tpwatch_capture_packets_total", "interface", "eth0")
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if got, _ := metric(t, r.d, "tpwatch_flows_total", "rule", "agent-em-grpc", "verdict", "allowed", "vantage", "transit"); got != 4 {
		t.Errorf("a sensor: agent-em-grpc in transit = %v, want all 4", got)
	}
	if _, found := metric(t, r.d, "tpwatch_flows_total", "rule", "agent-em-grpc", "verdict", "allowed", "vantage", "client"); found {
		t.Error("a sensor exports client series")
	}
}

func TestVantageRefused(t *testing.T) {
	if _, err := New(testConfig(t, Config{Vantage: "sideways"}, newBackend()), zerolog.Nop()); err == nil {
		t.Error("--vantage sideways accepted")
	}
}
