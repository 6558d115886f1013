package report

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/policy"
)

func TestSummaryWorstFirst(t *testing.T) {
	rules := []policy.Rule{
		{ID: "agent-em-grpc", Client: policy.Agent, Server: policy.EnterpriseManager, Transport: policy.TCP, Ports: []policy.PortRange{{Low: 3741, High: 3741}}},
		{ID: "em-sql-tds", Client: policy.EnterpriseManager, Server: policy.SQLServer, Transport: policy.TCP, Ports: []policy.PortRange{{Low: 1433, High: 1433}}},
	}
	s := NewSummary(rules)
	ok := testRecord()
	ok.Rule, ok.Verdict, ok.Reason, ok.ICMP = 0, classifier.Allowed, classifier.ReasonNone, false
	s.Final(&ok)
	bad := testRecord()
	bad.Rule, bad.ServerPort = 1, 1433
	s.Final(&bad)
	s.Final(&bad) // a second flow of the same group
	unx := testRecord()
	unx.Rule, unx.Verdict, unx.Reason, unx.ICMP, unx.ServerPort = -1, classifier.Unexpected, classifier.NoRule, false, 3389
	s.Final(&unx)
	ign := testRecord()
	ign.Rule, ign.Verdict, ign.Reason = -1, classifier.Ignored, classifier.ReasonNone
	s.Final(&ign)

	if s.Problems() != 3 {
		t.Errorf("Problems() = %d, want 3", s.Problems())
	}
	var out bytes.Buffer
	if err := s.WriteTable(&out, Header{Files: []string{"x.pcap"}, Packets: 42, Inventory: "from site.yaml"}); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"42 packets", "5 flows", "1 allowed, 2 blocked, 1 unexpected, 0 pending, 1 ignored", "from site.yaml",
		"icmp_unreachable", "administratively prohibited", "no_rule", "tcp/3389", "198.51.100.7 (agent)",
		"(0 rules with no flow"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	// The blocked rule comes before the working one.
	if i, j := strings.Index(text, "em-sql-tds"), strings.Index(text, "agent-em-grpc"); i < 0 || j < 0 || i > j {
		t.Errorf("blocked rule em-sql-tds not listed before agent-em-grpc:\n%s", text)
	}
	if !strings.Contains(text, "BLOCKED") {
		t.Errorf("no BLOCKED status:\n%s", text)
	}
}

func TestSummaryBoundsGroups(t *testing.T) {
	s := NewSummary(nil)
	r := testRecord()
	r.Rule, r.Verdict, r.Reason, r.ICMP = -1, classifier.Unexpected, classifier.NoRule, false
	// A port scan: one group per port, past the bound only counted.
	for i := 0; i < maxGroups+500; i++ {
		r.ServerPort = uint16(i + 1)
		s.Final(&r)
	}
	if len(s.groups) != maxGroups || s.overflow != 500 {
		t.Errorf("groups %d overflow %d", len(s.groups), s.overflow)
	}
	var out bytes.Buffer
	if err := s.WriteTable(&out, Header{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "500 more") || !strings.Contains(out.String(), "more lines") {
		t.Errorf("overflow not reported:\n%.2000s", out.String())
	}
}

func TestSummaryGroupsClientsOfOneServerPort(t *testing.T) {
	s := NewSummary(testRules())
	r := testRecord()
	r.ICMP, r.Reason = false, classifier.NoResponse
	for i := 0; i < 300; i++ {
		r.Client = netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 150)}).As16()
		s.Final(&r)
	}
	if len(s.groups) != 1 {
		t.Fatalf("%d groups, want 1 (one server port failing one way)", len(s.groups))
	}
	var out bytes.Buffer
	if err := s.WriteTable(&out, Header{}); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"300", "198.51.100.0 (agent), 198.51.100.1 (agent), 198.51.100.2 (agent) and 97+ more"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
}
