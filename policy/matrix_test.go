package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultMatrix(t *testing.T) {
	m, err := DefaultMatrix()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]Rule{}
	for _, r := range m.Rules {
		byID[r.ID] = r
	}
	if len(byID) != len(m.Rules) {
		t.Errorf("%d ids for %d rules", len(byID), len(m.Rules))
	}
	checks := []struct {
		id    string
		check func(Rule) bool
	}{
		{"agent-em-grpc", func(r Rule) bool {
			return r.Client == Agent && r.Server == EnterpriseManager && r.Transport == TCP && r.PortsString() == "3741" && r.Infer == InferBoth
		}},
		{"tm-console-http", func(r Rule) bool {
			return r.AnyClient && r.Client == RoleInvalid && r.Server == ThreatManager && r.Infer == InferNone
		}},
		{"em-agent-wmi-dcom", func(r Rule) bool {
			return r.Feature == FeatureWMIAutoDeploy && r.PortsString() == "1024-65535" && r.Infer == InferNone
		}},
		{"agent-tm-tcp", func(r Rule) bool { return r.PortsString() == "10000,10001" }},
		{"agent-netapp7-rpc", func(r Rule) bool { return r.PortsString() == "135,139,49152-65535" }},
		{"agent-netapp7-nbns", func(r Rule) bool { return r.Transport == UDP && r.Reply }},
		{"agent-netapp7-nbdgm", func(r Rule) bool { return r.Transport == UDP && !r.Reply }},
		{"agent-tm-events-udp", func(r Rule) bool { return r.Transport == UDP && !r.Reply }},
	}
	for _, c := range checks {
		r, ok := byID[c.id]
		if !ok || !c.check(r) {
			t.Errorf("rule %s = %+v (found %v)", c.id, r, ok)
		}
	}
}

func TestRuleHasPort(t *testing.T) {
	r := Rule{Ports: []PortRange{{135, 135}, {139, 139}, {49152, 65535}}}
	for port, want := range map[uint16]bool{135: true, 136: false, 139: true, 49151: false, 49152: true, 60000: true, 65535: true, 1: false} {
		if got := r.HasPort(port); got != want {
			t.Errorf("HasPort(%d) = %v, want %v", port, got, want)
		}
	}
	if got := r.PortsString(); got != "135,139,49152-65535" {
		t.Errorf("PortsString() = %q", got)
	}
}

func TestLoadMatrix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tm3.yaml")
	// Threat Manager 3.x: 10000 is UDP syslog.
	data := "rules:\n  - {id: agent-tm-syslog, client: agent, server: threat-manager, transport: udp, ports: [10000], infer: both}\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := LoadMatrix(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Rules) != 1 || m.Rules[0].Transport != UDP || m.Rules[0].Reply {
		t.Errorf("LoadMatrix = %+v", m.Rules)
	}
	if _, err := LoadMatrix(filepath.Join(t.TempDir(), "none.yaml")); err == nil || !strings.Contains(err.Error(), "none.yaml") {
		t.Errorf("LoadMatrix of a missing file: %v", err)
	}
}

func TestParseMatrixErrors(t *testing.T) {
	const ok = "{id: a, client: agent, server: enterprise-manager, transport: tcp, ports: [3741]}"
	tests := []struct{ name, yaml, want string }{
		{"empty", "", `m.yaml: empty matrix: want a rules: list`},
		{"no rules", "rules: []\n", `m.yaml: no rules: a matrix needs at least one`},
		{"unknown top key", "rule:\n  - " + ok + "\n", `m.yaml:1:1: unknown key "rule" in the matrix (did you mean "rules"?)`},
		{"unknown rule key", "rules:\n  - {id: a, client: agent, server: agent, transport: tcp, ports: [1], infr: both}\n",
			`m.yaml:2:71: unknown key "infr" in rule (did you mean "infer"?)`},
		{"duplicate id", "rules:\n  - " + ok + "\n  - " + ok + "\n",
			`m.yaml:3:5: duplicate rule id "a" (first at line 2): ids must be unique`},
		{"bad roles", "rules:\n  - {id: a, client: agnet, server: any, transport: tcp, ports: [1]}\n",
			"m.yaml:2:21: unknown role \"agnet\" (did you mean \"agent\"?)\n" +
				`m.yaml:2:36: server cannot be "any": name the role that accepts the flow`},
		{"bad ports", "rules:\n  - {id: a, client: any, server: agent, transport: tcp, ports: [0, 65536, 9-1]}\n",
			"m.yaml:2:65: bad port \"0\": want a port 1-65535 or a range such as 49152-65535\n" +
				"m.yaml:2:68: bad port \"65536\": want a port 1-65535 or a range such as 49152-65535\n" +
				`m.yaml:2:75: bad port "9-1": low is above high; write 1-9`},
		{"reply on tcp", "rules:\n  - {id: a, client: any, server: agent, transport: tcp, ports: [1], reply: true}\n",
			`m.yaml:2:69: reply: applies to udp rules only; remove it from this tcp rule`},
		{"siem feature", "rules:\n  - {id: a, client: any, server: siem, transport: udp, ports: [514], feature: siem}\n",
			`m.yaml:2:79: unknown feature "siem" (SIEM rules come from siem.ports in the site config)`},
		{"bad feature", "rules:\n  - {id: a, client: any, server: agent, transport: tcp, ports: [1], feature: wmi-autodeploy}\n",
			`m.yaml:2:78: unknown feature "wmi-autodeploy" (did you mean "wmi-auto-deploy"?)`},
		{"bad infer", "rules:\n  - {id: a, client: any, server: agent, transport: tcp, ports: [1], infer: client}\n",
			`m.yaml:2:76: bad infer "client": want both, server or known-client, or leave it out`},
		{"missing fields", "rules:\n  - {id: a, client: any}\n",
			"m.yaml:2:5: rule \"a\": missing server\n" +
				"m.yaml:2:5: rule \"a\": missing transport\n" +
				`m.yaml:2:5: rule "a": missing ports`},
		{"tcp/udp", "rules:\n  - {id: a, client: any, server: agent, transport: tcp/udp, ports: [1]}\n",
			`m.yaml:2:52: bad transport "tcp/udp": want tcp or udp (a TCP/UDP row is two rules)`},
		{"not a list", "rules: {id: a}\n", `m.yaml:1:8: rules: want a list such as - {id: ..., client: ..., server: ...}`},
		{"syntax", "rules:\n  - {id: a\n", `m.yaml:1: YAML syntax: did not find expected ',' or '}'`},
		{"reply not bool", "rules:\n  - {id: a, client: any, server: agent, transport: udp, ports: [1], reply: yes}\n",
			`m.yaml:2:76: reply: want true or false, got "yes"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMatrix([]byte(tt.yaml), "m.yaml")
			if err == nil {
				t.Fatalf("ParseMatrix = %+v, want error %q", m, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}
