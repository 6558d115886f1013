package daemon

import (
	"net"
	"testing"

	"github.com/tpwatch/tpwatch/policy"
)

func compileTest(t *testing.T, yaml string) *policy.Policy {
	t.Helper()
	m, err := policy.DefaultMatrix()
	if err != nil {
		t.Fatal(err)
	}
	c, err := policy.ParseConfig([]byte(yaml), "site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Compile(m, c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A flow created before a reload keeps its rule number; a reload that
// moves the rule in the compiled list (SIEM rules come before allow rules)
// must not make that number name another rule.
func TestRuleNumbersSurviveReload(t *testing.T) {
	const roles = "roles:\n  agent: [198.51.100.0/24]\n  admin-console: [192.0.2.50]\n"
	const rdp = "allow:\n  - {id: rdp-admin, client: admin-console, server: agent, transport: tcp, ports: [3389]}\n"
	var live livePolicy
	live.store(compileTest(t, roles+rdp))
	console, agent := policy.RoleSet(0).With(policy.AdminConsole), policy.RoleSet(0).With(policy.Agent)
	before := live.Match(policy.Flow{Client: flowClient, Server: flowServer, Transport: policy.TCP, ClientRoles: console, ServerRoles: agent, Port: 3389})
	if before.Kind != policy.MatchAllowed || live.snapshot().rules[before.Rule].ID != "rdp-admin" {
		t.Fatalf("before the reload: %+v", before)
	}

	// The reload adds SIEM ports: in the compiled list rdp-admin moves.
	snap := live.store(compileTest(t, roles+"siem:\n  ports: [udp/514, tcp/6514]\n"+rdp))
	if got := snap.rules[before.Rule].ID; got != "rdp-admin" {
		t.Errorf("after the reload, the number of rdp-admin names %q", got)
	}
	after := live.Match(policy.Flow{Client: flowClient, Server: flowServer, Transport: policy.TCP, ClientRoles: console, ServerRoles: agent, Port: 3389})
	if after.Rule != before.Rule {
		t.Errorf("rdp-admin's number changed from %d to %d", before.Rule, after.Rule)
	}
	siem := live.Match(policy.Flow{Client: flowClient, Server: flowServer, Transport: policy.UDP, ClientRoles: policy.RoleSet(0).With(policy.EnterpriseManager), ServerRoles: policy.RoleSet(0).With(policy.SIEM), Port: 514})
	if siem.Kind != policy.MatchAllowed || snap.rules[siem.Rule].ID != "em-siem-udp-514" {
		t.Errorf("new SIEM rule: %+v", siem)
	}

	// A reload that drops the rule: its number still names it, and a flow
	// created before keeps its reply expectation.
	snap = live.store(compileTest(t, roles))
	if snap.rules[before.Rule].ID != "rdp-admin" || snap.fromStable[before.Rule] != -1 {
		t.Errorf("dropped rule: number names %q, in force as %d", snap.rules[before.Rule].ID, snap.fromStable[before.Rule])
	}
	if m := live.Match(policy.Flow{Client: flowClient, Server: flowServer, Transport: policy.TCP, ClientRoles: console, ServerRoles: agent, Port: 3389}); m.Kind == policy.MatchAllowed {
		t.Errorf("dropped rule still allows: %+v", m)
	}
	for i, r := range live.load().Rules() {
		if n := snap.toStable[i]; snap.rules[n].ID != r.ID {
			t.Errorf("rule %s has stable number %d naming %s", r.ID, n, snap.rules[n].ID)
		}
	}
}

// TestOwnScrapesAreOwnTraffic: a scrape of the daemon's metrics endpoint
// is never a finding; the same port on another host is looked at as any
// flow.
func TestOwnScrapesAreOwnTraffic(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var live livePolicy
	pol, err := policy.Load("", "")
	if err != nil {
		t.Fatal(err)
	}
	live.store(pol)
	live.own.Store(ownEndpoints([]net.Listener{l}))
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	scrape := policy.Flow{Transport: policy.TCP, Client: addr(192, 0, 2, 9), Server: addr(127, 0, 0, 1), Port: port,
		ClientRoles: policy.RoleSet(0).With(policy.EnterpriseManager), ServerRoles: policy.RoleSet(0).With(policy.Agent)}
	if m := live.Match(scrape); m.Kind != policy.MatchOwnTraffic {
		t.Errorf("a scrape of the endpoint: %v, want own traffic", m)
	}
	elsewhere := scrape
	elsewhere.Server = addr(192, 0, 2, 10)
	if m := live.Match(elsewhere); m.Kind == policy.MatchOwnTraffic {
		t.Errorf("the same port on another host: %v, want it looked at", m)
	}
}
