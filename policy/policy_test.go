package policy

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
)

const siteYAML = `
roles:
  enterprise-manager: [192.0.2.10]
  sql-server: [192.0.2.10, 192.0.2.11]
  agent: [198.51.100.0/24, "2001:db8:1::/64"]
  threat-manager: [192.0.2.20, "2001:db8::20"]
  admin-console: [198.51.100.0/25]
  netapp-7mode: [203.0.113.7]
features:
  wmi-auto-deploy: true
siem:
  ports: [udp/514, tcp/6000-6010]
allow:
  - {id: rdp-admin, client: admin-console, server: agent, transport: tcp, ports: [3389]}
`

func compileSite(t testing.TB, configYAML string) *Policy {
	t.Helper()
	m, err := DefaultMatrix()
	if err != nil {
		t.Fatal(err)
	}
	var c *Config
	if configYAML != "" {
		if c, err = ParseConfig([]byte(configYAML), "site.yaml"); err != nil {
			t.Fatal(err)
		}
	}
	p, err := Compile(m, c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func roles(rs ...Role) RoleSet {
	var s RoleSet
	for _, r := range rs {
		s = s.With(r)
	}
	return s
}

func addr(s string) [16]byte { return netip.MustParseAddr(s).As16() }

func ruleID(p *Policy, m Match) string {
	if m.Rule < 0 {
		return ""
	}
	return p.Rules()[m.Rule].ID
}

func TestMatch(t *testing.T) {
	p := compileSite(t, siteYAML)
	tests := []struct {
		name           string
		tr             Transport
		client, server RoleSet
		port           uint16
		kind           MatchKind
		rule           string
	}{
		{"agent to EM", TCP, roles(Agent), roles(EnterpriseManager), 3741, MatchAllowed, "agent-em-grpc"},
		{"agent to EM+SQL box", TCP, roles(Agent), roles(EnterpriseManager, SQLServer), 3741, MatchAllowed, "agent-em-grpc"},
		{"client with several roles", TCP, roles(SQLServer, Agent), roles(EnterpriseManager), 3741, MatchAllowed, "agent-em-grpc"},
		{"EM to SQL", TCP, roles(EnterpriseManager), roles(SQLServer), 1433, MatchAllowed, "em-sql-tds"},
		{"TM to SQL: its own rule", TCP, roles(ThreatManager), roles(SQLServer), 1433, MatchAllowed, "tm-sql-tds"},
		{"SQL browser is udp", UDP, roles(EnterpriseManager), roles(SQLServer), 1434, MatchAllowed, "em-sql-browser"},
		{"no udp 1433 rule", UDP, roles(EnterpriseManager), roles(SQLServer), 1433, MatchNoRule, ""},
		{"wmi on: 135", TCP, roles(EnterpriseManager), roles(Agent), 135, MatchAllowed, "em-agent-wmi-rpc"},
		{"wmi on: DCOM", TCP, roles(EnterpriseManager), roles(Agent), 2000, MatchAllowed, "em-agent-wmi-dcom"},
		{"fpolicy off", TCP, roles(Agent), roles(NetApp7Mode), 443, MatchFeatureDisabled, "agent-netapp7-ontapi-https"},
		{"unknown client to EM", TCP, 0, roles(EnterpriseManager), 3741, MatchUnauthorizedClient, "agent-em-grpc"},
		{"wrong role to EM", TCP, roles(SQLServer), roles(EnterpriseManager), 3741, MatchUnauthorizedClient, "agent-em-grpc"},
		{"any client 8080", TCP, 0, roles(ThreatManager), 8080, MatchAllowed, "tm-console-http"},
		{"any known client 8080", TCP, roles(Agent), roles(ThreatManager), 8080, MatchAllowed, "tm-console-http"},
		{"8080 elsewhere", TCP, 0, roles(EnterpriseManager), 8080, MatchIgnored, ""},
		// An agent's whole range 1024-65535 is a server port only of the
		// shared WMI DCOM rule: agents run on servers every workstation
		// talks to, so an unknown client there is not Threat Prevention's.
		{"unknown client of an agent", TCP, 0, roles(Agent), 8080, MatchIgnored, ""},
		{"unknown client of an agent's SMB", TCP, 0, roles(Agent), 445, MatchIgnored, ""},
		{"workstation to a DC's kerberos", TCP, 0, roles(DomainController), 88, MatchIgnored, ""},
		{"unknown client of an agent's FPolicy port", TCP, 0, roles(Agent), 9999, MatchUnauthorizedClient, "netappc-agent-fpolicy"},
		{"unknown client of the SQL server", TCP, 0, roles(SQLServer), 1433, MatchUnauthorizedClient, "em-sql-tds"},
		// Agents on domain controllers and file servers: their ordinary
		// traffic on generic ports is not the product's.
		{"agent to agent SMB", TCP, roles(Agent), roles(Agent), 445, MatchNotProduct, ""},
		{"DC+agent to DC+agent RPC", TCP, roles(Agent, DomainController), roles(Agent, DomainController), 135, MatchNotProduct, ""},
		{"DC+agent to DC+agent dynamic", TCP, roles(Agent, DomainController), roles(Agent, DomainController), 49668, MatchNotProduct, ""},
		{"agent to agent on a product port", TCP, roles(Agent), roles(Agent), 3741, MatchNoRule, ""},
		{"console to an agent's SMB", TCP, roles(AdminConsole), roles(Agent), 445, MatchNoRule, ""},
		{"EM+agent box to a DC's SMB", TCP, roles(EnterpriseManager, Agent), roles(DomainController), 445, MatchNotProduct, ""},
		{"EM+SQL box to a DC's LDAP", TCP, roles(EnterpriseManager, SQLServer), roles(DomainController), 389, MatchNoRule, ""},
		{"TM to DC dynamic", TCP, roles(ThreatManager), roles(DomainController, Agent), 49668, MatchAllowed, "tm-dc-rpc-dynamic"},
		{"SIEM port is no product port", UDP, roles(Agent), roles(DomainController), 514, MatchNotProduct, ""},
		{"both known, no rule", TCP, roles(Agent), roles(EnterpriseManager), 22, MatchNoRule, ""},
		{"server unknown", TCP, roles(Agent), 0, 3741, MatchIgnored, ""},
		{"nobody known", TCP, 0, 0, 3741, MatchIgnored, ""},
		{"other transport", Transport(1), roles(Agent), roles(EnterpriseManager), 3741, MatchNoRule, ""},
		{"allow rule", TCP, roles(AdminConsole), roles(Agent), 3389, MatchAllowed, "rdp-admin"},
		{"allow rule, other client", TCP, roles(EnterpriseManager), roles(Agent), 3389, MatchAllowed, "em-agent-wmi-dcom"},
		{"siem udp", UDP, roles(EnterpriseManager), roles(SIEM), 514, MatchAllowed, "em-siem-udp-514"},
		{"siem tcp range", TCP, roles(EnterpriseManager), roles(SIEM), 6005, MatchAllowed, "em-siem-tcp-6000-6010"},
		{"siem unauthorized", UDP, roles(Agent), roles(SIEM), 514, MatchUnauthorizedClient, "em-siem-udp-514"},
		{"siem port not listed", TCP, roles(EnterpriseManager), roles(SIEM), 6514, MatchNoRule, ""},
		{"udp one-way 10001", UDP, roles(Agent), roles(ThreatManager), 10001, MatchAllowed, "agent-tm-events-udp"},
		{"range low edge", TCP, roles(ThreatManager), roles(DomainController), 49152, MatchAllowed, "tm-dc-rpc-dynamic"},
		{"range high edge", TCP, roles(ThreatManager), roles(DomainController), 65535, MatchAllowed, "tm-dc-rpc-dynamic"},
		{"below range", TCP, roles(ThreatManager), roles(DomainController), 49151, MatchNoRule, ""},
		{"SQL to SQL", TCP, roles(SQLServer), roles(SQLServer), 5022, MatchNotProduct, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := p.Match(Flow{Client: testClient, Server: testServer, Transport: tt.tr, ClientRoles: tt.client, ServerRoles: tt.server, Port: tt.port})
			if m.Kind != tt.kind || ruleID(p, m) != tt.rule {
				t.Errorf("Match(%s, %s, %s, %d) = %s %q, want %s %q", tt.tr, tt.client, tt.server, tt.port,
					m.Kind, ruleID(p, m), tt.kind, tt.rule)
			}
			if (m.Rule < 0) != (tt.rule == "") {
				t.Errorf("rule index %d for kind %s", m.Rule, m.Kind)
			}
		})
	}
}

func TestMatchFeatureOff(t *testing.T) {
	p := compileSite(t, "roles: {agent: [198.51.100.0/24]}\nfeatures: {fpolicy-management: true}\n")
	if p.FeatureEnabled(FeatureWMIAutoDeploy) || !p.FeatureEnabled(FeatureFPolicyManagement) || p.FeatureEnabled(FeatureSIEM) {
		t.Errorf("features: wmi %v fpolicy %v siem %v, want false true false", p.FeatureEnabled(FeatureWMIAutoDeploy),
			p.FeatureEnabled(FeatureFPolicyManagement), p.FeatureEnabled(FeatureSIEM))
	}
	for _, port := range []uint16{135, 1024, 49999, 65535} {
		m := p.Match(Flow{Client: testClient, Server: testServer, Transport: TCP, ClientRoles: roles(EnterpriseManager), ServerRoles: roles(Agent), Port: port})
		if m.Kind != MatchFeatureDisabled || !strings.HasPrefix(ruleID(p, m), "em-agent-wmi-") {
			t.Errorf("port %d with wmi-auto-deploy off: %s %q, want feature_disabled em-agent-wmi-*", port, m.Kind, ruleID(p, m))
		}
	}
	m := p.Match(Flow{Client: testClient, Server: testServer, Transport: TCP, ClientRoles: roles(Agent), ServerRoles: roles(NetAppCDOT), Port: 80})
	if m.Kind != MatchAllowed || ruleID(p, m) != "agent-netappc-ontapi-http" {
		t.Errorf("fpolicy on, port 80: %s %q", m.Kind, ruleID(p, m))
	}
	// An enabled rule wins over a disabled one listed earlier.
	m = p.Match(Flow{Client: testClient, Server: testServer, Transport: TCP, ClientRoles: roles(NetApp7Mode), ServerRoles: roles(Agent), Port: 50000})
	if m.Kind != MatchAllowed || ruleID(p, m) != "netapp7-agent-rpc" {
		t.Errorf("netapp7 to agent 50000: %s %q, want allowed netapp7-agent-rpc", m.Kind, ruleID(p, m))
	}
}

func TestReply(t *testing.T) {
	p := compileSite(t, siteYAML)
	for i, r := range p.Rules() {
		if got := p.Reply(int32(i)); got != r.Reply {
			t.Errorf("Reply(%d) (%s) = %v, want %v", i, r.ID, got, r.Reply)
		}
	}
	for _, id := range []string{"em-sql-browser", "agent-netapp7-nbns"} {
		if !p.Reply(ruleIndex(t, p, id)) {
			t.Errorf("%s expects no reply", id)
		}
	}
	for _, id := range []string{"agent-tm-events-udp", "agent-netapp7-nbdgm", "em-siem-udp-514"} {
		if p.Reply(ruleIndex(t, p, id)) {
			t.Errorf("%s expects a reply", id)
		}
	}
	if p.Reply(-1) || p.Reply(int32(len(p.Rules()))) {
		t.Error("Reply out of range is true")
	}
}

func ruleIndex(t *testing.T, p *Policy, id string) int32 {
	t.Helper()
	for i, r := range p.Rules() {
		if r.ID == id {
			return int32(i)
		}
	}
	t.Fatalf("no rule %q", id)
	return -1
}

func TestCompileRuleOrder(t *testing.T) {
	m, err := DefaultMatrix()
	if err != nil {
		t.Fatal(err)
	}
	p := compileSite(t, siteYAML)
	rules := p.Rules()
	want := len(m.Rules) + 2 + 1
	if len(rules) != want {
		t.Fatalf("%d rules, want %d (matrix, 2 siem, 1 allow)", len(rules), want)
	}
	siem := rules[len(m.Rules)]
	if siem.ID != "em-siem-udp-514" || siem.Client != EnterpriseManager || siem.Server != SIEM ||
		siem.Feature != FeatureSIEM || siem.Reply || siem.Transport != UDP {
		t.Errorf("first siem rule = %+v", siem)
	}
	if rules[len(rules)-1].ID != "rdp-admin" {
		t.Errorf("last rule %q, want the allow rule", rules[len(rules)-1].ID)
	}
	if !p.FeatureEnabled(FeatureSIEM) || p.Inferred() {
		t.Errorf("siem %v inferred %v, want true false", p.FeatureEnabled(FeatureSIEM), p.Inferred())
	}
}

func TestCompileAllowCollision(t *testing.T) {
	m, err := DefaultMatrix()
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig([]byte("allow:\n  - {id: agent-em-grpc, client: agent, server: agent, transport: tcp, ports: [1]}\n"), "site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile(m, c)
	if err == nil || !strings.Contains(err.Error(), `"agent-em-grpc" of the site config is already a matrix rule id`) {
		t.Errorf("Compile with a colliding allow id: %v", err)
	}
}

func TestTimeoutsOfPolicy(t *testing.T) {
	if got := compileSite(t, "").Timeouts(); got != DefaultTimeouts() {
		t.Errorf("inferred policy timeouts %+v, want defaults", got)
	}
	p := compileSite(t, "timeouts: {udp_idle: 3m}\n")
	want := DefaultTimeouts()
	want.UDPIdle = 3 * 60e9
	if got := p.Timeouts(); got != want {
		t.Errorf("Timeouts() = %+v, want %+v", got, want)
	}
}

func TestRolesFromConfig(t *testing.T) {
	p := compileSite(t, siteYAML)
	tests := []struct {
		addr string
		want RoleSet
	}{
		{"192.0.2.10", roles(EnterpriseManager, SQLServer)},
		{"::ffff:192.0.2.11", roles(SQLServer)},
		{"198.51.100.1", roles(Agent, AdminConsole)}, // in /24 and /25
		{"198.51.100.200", roles(Agent)},             // /24 only
		{"198.51.101.1", 0},                          // outside
		{"2001:db8:1::1234", roles(Agent)},           // v6 /64
		{"2001:db8:1:1::1", 0},                       // next /64
		{"2001:db8::20", roles(ThreatManager)},       // v6 host
		{"192.0.2.20", roles(ThreatManager)},         // v4 host
		{"203.0.113.7", roles(NetApp7Mode)},          // v4 host
		{"c000:20a::", 0},                            // IPv6 with the bytes of 192.0.2.10, not mapped
	}
	for _, tt := range tests {
		if got := p.Roles(addr(tt.addr)); got != tt.want {
			t.Errorf("Roles(%s) = %q, want %q", tt.addr, got, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { p.Roles(addr("198.51.100.1")) }); n != 0 {
		t.Errorf("Roles allocates %v times", n)
	}
}

func TestServerPortScore(t *testing.T) {
	p := compileSite(t, siteYAML)
	tests := []struct {
		tr    Transport
		port  uint16
		roles RoleSet
		want  int
	}{
		{TCP, 3741, roles(EnterpriseManager), ScoreNamed},
		{TCP, 3741, roles(Agent), ScoreRange}, // an agent's 1024-65535 (WMI DCOM)
		{TCP, 3741, roles(SQLServer), ScoreNone},
		{TCP, 3741, roles(Agent, EnterpriseManager), ScoreNamed},
		{TCP, 10001, roles(ThreatManager), ScoreNamed},
		{UDP, 10001, roles(ThreatManager), ScoreNamed},
		{UDP, 10000, roles(ThreatManager), ScoreNone},
		{TCP, 50000, roles(Agent), ScoreRange},            // 1024-65535 and 49152-65535 only
		{TCP, 50000, roles(DomainController), ScoreRange}, // 49152-65535
		{TCP, 135, roles(Agent), ScoreNamed},              // WMI 135
		{TCP, 6005, roles(SIEM), ScoreNamed},              // a range of 11 ports
		{TCP, 8080, 0, ScoreNone},                         // nobody holds the role
		{TCP, 8080, roles(ThreatManager), ScoreNamed},
		{TCP, 22, roles(Agent, EnterpriseManager), ScoreWellKnown}, // a service's port, no rule's
		{TCP, 445, roles(EnterpriseManager), ScoreWellKnown},       // beats the agent's DCOM range
		{TCP, 1023, 0, ScoreWellKnown},
		{TCP, 1024, 0, ScoreNone},
	}
	for _, tt := range tests {
		if got := p.ServerPortScore(tt.tr, tt.port, tt.roles); got != tt.want {
			t.Errorf("ServerPortScore(%s, %d, %q) = %d, want %d", tt.tr, tt.port, tt.roles, got, tt.want)
		}
	}

	// "Named" is a range of fewer than 100 ports.
	ranges := compileSite(t, "allow:\n"+
		"  - {id: r99, client: agent, server: siem, transport: tcp, ports: [7000-7098]}\n"+
		"  - {id: r100, client: agent, server: siem, transport: tcp, ports: [8000-8099]}\n")
	if got := ranges.ServerPortScore(TCP, 7098, roles(SIEM)); got != ScoreNamed {
		t.Errorf("ServerPortScore in a 99-port range = %d, want %d", got, ScoreNamed)
	}
	if got := ranges.ServerPortScore(TCP, 8000, roles(SIEM)); got != ScoreRange {
		t.Errorf("ServerPortScore in a 100-port range = %d, want %d", got, ScoreRange)
	}

	inferred := compileSite(t, "")
	for _, tt := range []struct {
		tr   Transport
		port uint16
		want int
	}{
		{TCP, 3741, ScoreNamed},    // infer: both
		{TCP, 88, ScoreNamed},      // infer: server
		{TCP, 8080, ScoreNone},     // generic, teaches nothing
		{TCP, 135, ScoreWellKnown}, // teaches nothing, but a service's port
		{TCP, 50000, ScoreNone},    // the dynamic ranges teach nothing
		{UDP, 10001, ScoreNamed},
	} {
		if got := inferred.ServerPortScore(tt.tr, tt.port, 0); got != tt.want {
			t.Errorf("inferred ServerPortScore(%s, %d, none) = %d, want %d", tt.tr, tt.port, got, tt.want)
		}
	}
	if got := inferred.ServerPortScore(TCP, 50000, roles(DomainController)); got != ScoreRange {
		t.Errorf("inferred ServerPortScore(tcp, 50000, domain-controller) = %d, want %d", got, ScoreRange)
	}
}

// TestSiteIgnore: an entry of the ignore list turns what no rule admits
// into site_ignored, and never touches what a rule allows.
func TestSiteIgnore(t *testing.T) {
	p := compileSite(t, siteYAML+`ignore:
  - {id: backup, networks: [10.9.0.0/16]}
  - {ports: [tcp/8530], server: agent}
  - {client: domain-controller, server: domain-controller}
`)
	agent, em, backup, other := addr("198.51.100.7"), addr("192.0.2.10"), addr("10.9.1.1"), addr("203.0.113.5")
	tests := []struct {
		name string
		f    Flow
		want MatchKind
	}{
		{"backup server to the EM", Flow{Transport: TCP, Client: backup, Server: em, ServerRoles: roles(EnterpriseManager), Port: 3741}, MatchSiteIgnored},
		{"an agent to the backup network", Flow{Transport: TCP, Client: agent, Server: backup, ClientRoles: roles(Agent), ServerRoles: roles(EnterpriseManager), Port: 22}, MatchSiteIgnored},
		{"allowed stays allowed", Flow{Transport: TCP, Client: backup, Server: em, ClientRoles: roles(Agent), ServerRoles: roles(EnterpriseManager), Port: 3741}, MatchAllowed},
		{"WSUS on an agent", Flow{Transport: TCP, Client: em, Server: agent, ClientRoles: roles(SQLServer), ServerRoles: roles(Agent), Port: 8530}, MatchSiteIgnored},
		{"port entry needs its role", Flow{Transport: TCP, Client: agent, Server: em, ClientRoles: roles(Agent), ServerRoles: roles(EnterpriseManager), Port: 8530}, MatchNoRule},
		{"udp is another port", Flow{Transport: UDP, Client: em, Server: agent, ClientRoles: roles(EnterpriseManager), ServerRoles: roles(Agent), Port: 8530}, MatchNoRule},
		{"DC replication on a product port", Flow{Transport: TCP, Client: agent, Server: other, ClientRoles: roles(DomainController, Agent), ServerRoles: roles(DomainController, Agent), Port: 3741}, MatchSiteIgnored},
		{"elsewhere", Flow{Transport: TCP, Client: other, Server: em, ServerRoles: roles(EnterpriseManager), Port: 3741}, MatchUnauthorizedClient},
	}
	for _, tt := range tests {
		if got := p.Match(tt.f); got.Kind != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got.Kind, tt.want)
		}
	}
}

// TestIPv6PrefixDoesNotCoverIPv4: IPv4 addresses are kept IPv4-mapped,
// inside ::/0 and ::ffff:0:0/96, and an IPv6 prefix of the config must
// not give its role to every IPv4 host.
func TestIPv6PrefixDoesNotCoverIPv4(t *testing.T) {
	p := compileSite(t, "roles:\n  agent: [\"::/0\"]\n  siem: [\"::ffff:0:0/96\", 0.0.0.0/0]\n  enterprise-manager: [192.0.2.10]\n")
	if got := p.Roles(addr("192.0.2.10")); got != roles(EnterpriseManager, SIEM) {
		t.Errorf("192.0.2.10: %q, want enterprise-manager,siem", got)
	}
	if got := p.Roles(addr("2001:db8::1")); got != roles(Agent) {
		t.Errorf("2001:db8::1: %q, want agent", got)
	}
	if got := p.Roles(addr("198.51.100.1")); got != roles(SIEM) {
		t.Errorf("198.51.100.1: %q, want siem (0.0.0.0/0 and the IPv4 /96, not ::/0)", got)
	}
}

func TestMatchAllocs(t *testing.T) {
	p := compileSite(t, siteYAML)
	n := testing.AllocsPerRun(1000, func() {
		p.Match(Flow{Client: testClient, Server: testServer, Transport: TCP, ClientRoles: roles(Agent), ServerRoles: roles(EnterpriseManager), Port: 3741})
		p.Match(Flow{Client: testClient, Server: testServer, Transport: TCP, ClientRoles: roles(ThreatManager), ServerRoles: roles(DomainController), Port: 50000})
		p.Match(Flow{Client: testClient, Server: testServer, Transport: UDP, ClientRoles: 0, ServerRoles: roles(SIEM), Port: 514})
		p.ServerPortScore(TCP, 50000, roles(Agent))
		p.FeatureEnabled(FeatureWMIAutoDeploy)
	})
	if n != 0 {
		t.Errorf("Match and ServerPortScore allocate %v times per run", n)
	}
}

// TestMatchIndexAgainstScan checks the port index against the obvious scan
// of every rule, for every port of both transports and a spread of roles.
func TestMatchIndexAgainstScan(t *testing.T) {
	p := compileSite(t, siteYAML)
	roleSets := []RoleSet{0, roles(Agent), roles(EnterpriseManager), roles(ThreatManager),
		roles(EnterpriseManager, SQLServer), roles(SIEM), roles(NetApp7Mode), roles(DomainController)}
	for _, tr := range []Transport{TCP, UDP} {
		for port := 1; port <= 65535; port += 7 {
			for _, c := range roleSets {
				for _, s := range roleSets {
					got := p.Match(Flow{Client: testClient, Server: testServer, Transport: tr, ClientRoles: c, ServerRoles: s, Port: uint16(port)})
					want := scanMatch(p, tr, c, s, uint16(port))
					if got != want {
						t.Fatalf("Match(%s, %q, %q, %d) = %v, scan says %v", tr, c, s, port, got, want)
					}
				}
			}
		}
	}
}

// scanMatrix is the embedded matrix, parsed once for scanMatch.
var scanMatrix = sync.OnceValue(func() *Matrix {
	m, err := DefaultMatrix()
	if err != nil {
		panic(err)
	}
	return m
})

func scanMatch(p *Policy, tr Transport, client, server RoleSet, port uint16) Match {
	m := scanMatrix()
	var serverRules, admitted, enabled []int32
	productPort := false
	for i, r := range p.Rules() {
		if r.Transport != tr || !r.HasPort(port) {
			continue
		}
		if i < len(m.Rules) && !r.Shared {
			productPort = true
		}
		if !server.Has(r.Server) {
			continue
		}
		if !r.Shared {
			serverRules = append(serverRules, int32(i))
		}
		if r.AnyClient || client.Has(r.Client) {
			admitted = append(admitted, int32(i))
			if r.Feature == "" || p.FeatureEnabled(r.Feature) {
				enabled = append(enabled, int32(i))
			}
		}
	}
	product := func(s RoleSet) bool { return s&m.ProductHosts != 0 && s&m.SharedHosts == 0 }
	switch {
	case len(enabled) > 0:
		return Match{MatchAllowed, enabled[0]}
	case len(admitted) > 0:
		return Match{MatchFeatureDisabled, admitted[0]}
	case len(serverRules) > 0:
		return Match{MatchUnauthorizedClient, serverRules[0]}
	case client != 0 && server != 0 && (productPort || product(client) || product(server)):
		return Match{MatchNoRule, -1}
	case client != 0 && server != 0:
		return Match{MatchNotProduct, -1}
	}
	return Match{MatchIgnored, -1}
}

func BenchmarkMatch(b *testing.B) {
	p := compileSite(b, siteYAML)
	flows := []struct {
		tr             Transport
		client, server RoleSet
		port           uint16
	}{
		{TCP, roles(Agent), roles(EnterpriseManager), 3741},
		{TCP, roles(ThreatManager), roles(DomainController), 50000},
		{TCP, roles(Agent), roles(NetApp7Mode), 55000},
		{UDP, roles(EnterpriseManager), roles(SIEM), 514},
		{TCP, 0, 0, 443},
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f := flows[i%len(flows)]
		p.Match(Flow{Client: testClient, Server: testServer, Transport: f.tr, ClientRoles: f.client, ServerRoles: f.server, Port: f.port})
	}
}

func BenchmarkRoles(b *testing.B) {
	p := compileSite(b, siteYAML)
	hosts := [][16]byte{addr("198.51.100.1"), addr("192.0.2.10"), addr("2001:db8:1::5"), addr("10.1.2.3")}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.Roles(hosts[i%len(hosts)])
	}
}

// testClient and testServer are two hosts for flows whose addresses do
// not matter (two different ones: a host with itself is own traffic).
var (
	testClient = addr("198.51.100.200")
	testServer = addr("192.0.2.200")
)

func TestOwnTraffic(t *testing.T) {
	p := compileSite(t, siteYAML)
	for _, tt := range []struct {
		client, server string
		own            bool
	}{
		{"192.0.2.10", "192.0.2.10", true},
		{"127.0.0.1", "127.0.0.5", true},
		{"::1", "::1", true},
		{"127.0.0.1", "192.0.2.10", false},
		{"198.51.100.7", "192.0.2.10", false},
	} {
		f := Flow{Transport: TCP, Client: addr(tt.client), Server: addr(tt.server), Port: 3741,
			ClientRoles: roles(Agent), ServerRoles: roles(EnterpriseManager)}
		if got := p.Match(f).Kind == MatchOwnTraffic; got != tt.own {
			t.Errorf("%s → %s: own traffic %v, want %v", tt.client, tt.server, got, tt.own)
		}
	}
}
