package policy

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

var renderRules = []Rule{
	{ID: "agent-tm-tcp", Client: Agent, Server: ThreatManager, Transport: TCP, Ports: []PortRange{{10000, 10000}, {10001, 10001}},
		Description: "Agent to Threat Manager", Section: "Agent Firewall Rules"},
	{ID: "tm-console-http", AnyClient: true, Server: ThreatManager, Transport: TCP, Ports: []PortRange{{8080, 8080}},
		Description: "Console", Section: "TM"},
	{ID: "agent-netapp7-nbns", Client: Agent, Server: NetApp7Mode, Transport: UDP, Ports: []PortRange{{137, 137}}, Reply: true,
		Feature: FeatureFPolicyManagement, Description: "NBNS", Section: "NetApp"},
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTable(&buf, renderRules, 0); err != nil {
		t.Fatal(err)
	}
	want := `ID                  CLIENT → SERVER         PORTS            FEATURE             DESCRIPTION              SECTION
agent-tm-tcp        agent → threat-manager  tcp/10000,10001  -                   Agent to Threat Manager  Agent Firewall Rules
tm-console-http     any → threat-manager    tcp/8080         -                   Console                  TM
agent-netapp7-nbns  agent → netapp-7mode    udp/137          fpolicy-management  NBNS                     NetApp
`
	if got := buf.String(); got != want {
		t.Errorf("WriteTable:\n%s\nwant:\n%s", got, want)
	}
}

// TestWriteTableFitsTheWidth: on a terminal narrower than the table, each
// rule takes three lines, none longer than the width.
func TestWriteTableFitsTheWidth(t *testing.T) {
	m, err := DefaultMatrix()
	if err != nil {
		t.Fatal(err)
	}
	for _, width := range []int{80, 60} {
		var buf bytes.Buffer
		if err := WriteTable(&buf, m.Rules, width); err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
			if n := utf8.RuneCountInString(line); n > width {
				t.Errorf("width %d: a line of %d columns: %q", width, n, line)
			}
		}
		if !strings.Contains(buf.String(), "agent-em-grpc  tcp/3741  agent → enterprise-manager\n    Agent communication with the Enterprise Manager (gRPC)") {
			t.Errorf("width %d: the stacked layout lacks agent-em-grpc:\n%s", width, buf.String())
		}
		// Each rule once: a wrapped first line once printed its rule twice.
		for _, r := range m.Rules {
			if n := strings.Count(buf.String(), r.ID+" "); n != 1 {
				t.Errorf("width %d: rule %s starts %d lines", width, r.ID, n)
			}
		}
	}
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, renderRules); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, buf.String())
	}
	if len(got) != len(renderRules) {
		t.Fatalf("%d objects, want %d", len(got), len(renderRules))
	}
	first := got[0]
	for key, want := range map[string]any{
		"id": "agent-tm-tcp", "client": "agent", "server": "threat-manager", "transport": "tcp",
		"feature": "", "reply": false, "description": "Agent to Threat Manager", "section": "Agent Firewall Rules",
	} {
		if first[key] != want {
			t.Errorf("%s = %v, want %v", key, first[key], want)
		}
	}
	if ports, _ := json.Marshal(first["ports"]); string(ports) != `["10000","10001"]` {
		t.Errorf("ports = %s", ports)
	}
	if got[1]["client"] != "any" || got[2]["reply"] != true {
		t.Errorf("second client %v, third reply %v", got[1]["client"], got[2]["reply"])
	}
	if len(first) != 10 {
		t.Errorf("fields %v, want exactly 10", first)
	}
	// The embedded matrix renders in full.
	m, err := DefaultMatrix()
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := WriteJSON(&buf, m.Rules); err != nil || !strings.Contains(buf.String(), `"49152-65535"`) {
		t.Errorf("WriteJSON(default matrix): %v", err)
	}
}
