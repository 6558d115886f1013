package report

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/policy"
)

func twoRules() []policy.Rule {
	return []policy.Rule{
		{ID: "agent-em-grpc", Client: policy.Agent, Server: policy.EnterpriseManager, Transport: policy.TCP, Ports: []policy.PortRange{{Low: 3741, High: 3741}},
			Section: "Agent Firewall Rules"},
		{ID: "em-sql-tds", Client: policy.EnterpriseManager, Server: policy.SQLServer, Transport: policy.TCP, Ports: []policy.PortRange{{Low: 1433, High: 1433}}},
	}
}

func text(t *testing.T, s *Summary, h Header, o TextOptions) string {
	t.Helper()
	var out bytes.Buffer
	if err := s.View(h, TextLines).WriteText(&out, o); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func mustContain(t *testing.T, text string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
}

// exampleSummary: one rule working, one blocked by an ICMP error and by a
// refusal, an unexpected flow that got in and one turned away, and an
// ignored one.
func exampleSummary() *Summary {
	s := NewSummary(twoRules())
	ok := testRecord()
	ok.Rule, ok.Verdict, ok.Reason, ok.ICMP = 0, classifier.Allowed, classifier.ReasonNone, false
	s.Final(&ok)
	icmp := testRecord()
	icmp.Rule, icmp.ServerPort = 1, 1433
	icmp.ICMPSrc = netip.MustParseAddr("2001:db8::fe").As16()
	s.Final(&icmp)
	s.Final(&icmp) // a second flow of the same group
	refused := testRecord()
	refused.Rule, refused.Reason, refused.ICMP, refused.ConnState = 0, classifier.Refused, false, classifier.REJ
	s.Final(&refused)
	in := testRecord()
	in.Rule, in.Verdict, in.Reason, in.Outcome, in.ICMP, in.ServerPort = -1, classifier.Unexpected, classifier.NoRule, classifier.OutcomeWorked, false, 3389
	s.Final(&in)
	away := in
	away.ServerPort, away.Outcome = 22, classifier.OutcomeRefused
	s.Final(&away)
	ign := testRecord()
	ign.Rule, ign.Verdict, ign.Reason, ign.ICMP = -1, classifier.Ignored, classifier.NotProduct, false
	s.Final(&ign)
	return s
}

func TestReportSaysWhatToChange(t *testing.T) {
	s := exampleSummary()
	if s.Problems() != 5 {
		t.Errorf("Problems() = %d, want 5", s.Problems())
	}
	got := text(t, s, Header{Files: []string{"x.pcap"}, Packets: 42, Inventory: "from site.yaml"}, TextOptions{})
	mustContain(t, got, "42 packets", "7 flows", "1 allowed, 3 blocked, 2 unexpected, 0 pending, 1 ignored", "from site.yaml",
		// What to open, and who rejected it.
		"TO OPEN", "tcp/1433 to 2001:db8::10 (enterprise-manager,sql-server) from 198.51.100.7 (agent)",
		"em-sql-tds · 2 flows, rejected by 2001:db8::fe (ICMP 1/1 administratively prohibited)",
		// A refusal apart, with what it means.
		"REFUSED: the server answered with a reset: the service is not listening, or a host firewall resets",
		"tcp/3741 on 2001:db8::10",
		// Unexpected flows say whether the client got in, those that did first.
		"GOT IN: tcp/3389 on 2001:db8::10", "turned away (reset): tcp/22 on 2001:db8::10")
	// The blocked rule comes before the working one, in the rules table.
	rules := got[strings.Index(got, "RULES"):strings.Index(got, "TO OPEN")]
	if i, j := strings.Index(rules, "em-sql-tds"), strings.Index(rules, "(no rule)"); i < 0 || j < 0 || i > j {
		t.Errorf("blocked rule em-sql-tds not listed before the unexpected row:\n%s", rules)
	}
	if strings.Index(got, "GOT IN") > strings.Index(got, "turned away") {
		t.Errorf("the unexpected flow that got in is not listed first:\n%s", got)
	}
}

// TestReportCountsEveryClient: a group names its first clients and counts
// the others exactly, not "97+".
func TestReportCountsEveryClient(t *testing.T) {
	s := NewSummary(testRules())
	r := testRecord()
	r.ICMP, r.Reason = false, classifier.NoResponse
	for i := range 1200 {
		r.Client = netip.AddrFrom4([4]byte{198, 51, byte(100 + i/256), byte(i)}).As16()
		s.Final(&r)
		s.Final(&r) // two flows each
	}
	if len(s.groups) != 1 {
		t.Fatalf("%d groups, want 1 (one server port failing one way)", len(s.groups))
	}
	got := text(t, s, Header{}, TextOptions{})
	mustContain(t, got, "1200 hosts (agent): 198.51.100.0, 198.51.100.1, 198.51.100.2 and 1197 more", "2400 flows, no answer")
}

func TestSummaryBoundsGroups(t *testing.T) {
	s := NewSummary(nil)
	r := testRecord()
	r.Rule, r.Verdict, r.Reason, r.Outcome, r.ICMP = -1, classifier.Unexpected, classifier.NoRule, classifier.OutcomeWorked, false
	// A port scan: one group per port, past the bound only counted.
	for i := 0; i < maxGroups+500; i++ {
		r.ServerPort = uint16(i + 1)
		s.Final(&r)
	}
	if len(s.groups) != maxGroups || s.overflow != 500 {
		t.Errorf("groups %d overflow %d", len(s.groups), s.overflow)
	}
	got := text(t, s, Header{}, TextOptions{})
	mustContain(t, got, "500 more blocked or unexpected flows", "... 9960 more")
}

// TestReportFitsTheWidth: no line is wider than the terminal, on the
// example and on a group of many clients with long addresses.
func TestReportFitsTheWidth(t *testing.T) {
	s := exampleSummary()
	r := testRecord()
	r.Reason, r.ICMP = classifier.NoResponse, false
	for i := range 50 {
		r.Client = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, byte(i)}).As16()
		s.Final(&r)
	}
	h := Header{Files: []string{"/a/rather/long/path/to/a/customer/capture-2026-01-05.pcapng"}, Packets: 1,
		Problems: []string{"x.pcap: record 7 at byte 900: truncated in the middle of a record (12 of 60 bytes)"}}
	for _, width := range []int{60, 80, 120} {
		for _, byHost := range []bool{false, true} {
			got := text(t, s, h, TextOptions{Width: width, ByHost: byHost})
			for _, line := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
				if n := utf8.RuneCountInString(line); n > width {
					t.Errorf("width %d, by host %v: a line of %d columns: %q", width, byHost, n, line)
				}
			}
		}
	}
}

// TestReportNamesTheProblemsOfTheInputFirst: a truncated capture is said
// at the top of the report, where a ticket shows it.
func TestReportNamesTheProblemsOfTheInputFirst(t *testing.T) {
	got := text(t, exampleSummary(), Header{Files: []string{"x.pcap"}, Problems: []string{"x.pcap: record 7 at byte 900: truncated"}}, TextOptions{})
	if i := strings.Index(got, "Incomplete: x.pcap: record 7 at byte 900: truncated"); i < 0 || i > strings.Index(got, "Verdicts") {
		t.Errorf("the read problem is not named before the verdicts:\n%s", got)
	}
}

// TestReportShowsTheFinalInventory: every mention of a host shows the
// roles it holds at the end, not those it had when each flow was decided.
func TestReportShowsTheFinalInventory(t *testing.T) {
	s := exampleSummary()
	client := netip.MustParseAddr("::ffff:198.51.100.7").As16()
	roles := func(a [16]byte) policy.RoleSet {
		if a == client {
			return policy.RoleSet(0).With(policy.Agent).With(policy.DomainController)
		}
		return policy.RoleSet(0).With(policy.EnterpriseManager)
	}
	got := text(t, s, Header{Roles: roles}, TextOptions{})
	if strings.Contains(got, "198.51.100.7 (agent)") || !strings.Contains(got, "198.51.100.7 (agent,domain-controller)") {
		t.Errorf("the client's roles are not the final inventory's:\n%s", got)
	}
}

func TestReportByHost(t *testing.T) {
	got := text(t, exampleSummary(), Header{}, TextOptions{ByHost: true})
	mustContain(t, got, "HOSTS with blocked or unexpected flows",
		"198.51.100.7 (agent)\n    could not reach tcp/1433 on 2001:db8::10",
		"reached, unexpectedly, tcp/3389 on 2001:db8::10",
		"2001:db8::10 (enterprise-manager,sql-server)\n",
		"reached unexpectedly by 198.51.100.7 (agent) on tcp/3389")
	if strings.Contains(got, "RULES") {
		t.Errorf("the per-host view has the rules table:\n%s", got)
	}
}

// TestReportColour: colour only when asked.
func TestReportColour(t *testing.T) {
	plain := text(t, exampleSummary(), Header{}, TextOptions{Width: 100})
	if strings.Contains(plain, "\x1b[") {
		t.Errorf("escape codes without colour:\n%q", plain)
	}
	colour := text(t, exampleSummary(), Header{}, TextOptions{Width: 100, Color: true})
	if !strings.Contains(colour, "\x1b[1;31mBLOCKED\x1b[0m") {
		t.Errorf("no red BLOCKED with colour:\n%q", colour)
	}
}
