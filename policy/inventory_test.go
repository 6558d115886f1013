package policy

import (
	"bytes"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// learning returns an inferred policy bound to a new inventory of at
// most maxHosts hosts (0: the default).
func learning(t *testing.T, maxHosts int) (*Bound, *Inventory) {
	t.Helper()
	pol := compileSite(t, "")
	if !pol.Inferred() {
		t.Fatal("a policy without config is not inferred")
	}
	inv := NewInventory(maxHosts)
	return Bind(pol, inv), inv
}

// worked tells the inventory of a flow that worked for both ends;
// answered of one the server answered and the client did not go on with
// (a scan's SYN-ACK); tried of one nothing answered.
func worked(p *Bound, tr Transport, client, server [16]byte, port uint16) {
	p.Learn(Flow{Transport: tr, Client: client, Server: server, Port: port}, ServerAnswered|ClientCompleted)
}

func answered(p *Bound, tr Transport, client, server [16]byte, port uint16) {
	p.Learn(Flow{Transport: tr, Client: client, Server: server, Port: port}, ServerAnswered)
}

func tried(p *Bound, tr Transport, client, server [16]byte, port uint16) {
	p.Learn(Flow{Transport: tr, Client: client, Server: server, Port: port}, 0)
}

func TestLearn(t *testing.T) {
	p, inv := learning(t, 0)
	var (
		agent   = addr("198.51.100.7")
		em      = addr("192.0.2.10")
		tm      = addr("192.0.2.20")
		sql     = addr("192.0.2.11")
		tmSQL   = addr("192.0.2.12")
		unknown = addr("192.0.2.99")
		dc      = addr("2001:db8::53")
		scanner = addr("203.0.113.66")
	)
	worked(p, TCP, agent, em, 3741)
	worked(p, TCP, agent, tm, 10000)
	// The Enterprise Manager and the Threat Manager teach their SQL
	// Servers; the Threat Manager is not made an Enterprise Manager, since
	// its own rule (tm-sql-tds) admits it there.
	worked(p, TCP, em, sql, 1433)
	worked(p, TCP, tm, tmSQL, 1433)
	// An unknown client of a SQL Server is no Enterprise Manager: any
	// program talks to a SQL Server.
	worked(p, TCP, unknown, sql, 1433)
	// Nor does a SQL Server nobody known uses become one.
	worked(p, TCP, unknown, addr("192.0.2.13"), 1433)
	// Kerberos teaches the domain controller (the server only); 8080 (a
	// web proxy as often as a Threat Manager console), 135 and the dynamic
	// range teach nothing.
	worked(p, TCP, tm, dc, 88)
	worked(p, TCP, addr("203.0.113.1"), addr("203.0.113.4"), 8080)
	worked(p, TCP, addr("203.0.113.2"), addr("203.0.113.3"), 135)
	worked(p, TCP, addr("203.0.113.2"), addr("203.0.113.3"), 50000)
	// A UDP port that is no rule's teaches nothing.
	worked(p, UDP, addr("203.0.113.2"), addr("203.0.113.3"), 3741)
	// A scan: the server that answers is an Enterprise Manager, the
	// scanner, which never completes a handshake, nothing; a SYN nothing
	// answers teaches nothing at all.
	answered(p, TCP, scanner, addr("192.0.2.30"), 3741)
	tried(p, TCP, scanner, addr("192.0.2.31"), 3741)
	tried(p, TCP, scanner, addr("192.0.2.31"), 10000)

	want := map[[16]byte]RoleSet{
		agent:              roles(Agent),
		em:                 roles(EnterpriseManager),
		tm:                 roles(ThreatManager),
		sql:                roles(SQLServer),
		tmSQL:              roles(SQLServer),
		dc:                 roles(DomainController),
		addr("192.0.2.30"): roles(EnterpriseManager),
	}
	for a, r := range want {
		if got := p.Roles(a); got != r {
			t.Errorf("Roles(%s) = %q, want %q", netip.AddrFrom16(a).Unmap(), got, r)
		}
	}
	for _, a := range []string{"203.0.113.1", "203.0.113.2", "203.0.113.3", "192.0.2.99", "192.0.2.13", "203.0.113.66", "192.0.2.31"} {
		if got := p.Roles(addr(a)); got != 0 {
			t.Errorf("Roles(%s) = %q, want nothing learned", a, got)
		}
	}
	if m := p.Match(Flow{Client: testClient, Server: testServer, Transport: TCP, ClientRoles: p.Roles(tm), ServerRoles: p.Roles(tmSQL), Port: 1433}); m.Kind != MatchAllowed || ruleID(p.Policy(), m) != "tm-sql-tds" {
		t.Errorf("Threat Manager to SQL after learning: %s %q, want allowed tm-sql-tds", m.Kind, ruleID(p.Policy(), m))
	}
	if st := inv.Stats(); st.Dropped != 0 || st.Hosts != len(want) {
		t.Errorf("Stats() = %+v, want %d hosts and none dropped", st, len(want))
	}
	// What it could not decide: the SQL client, and the two Enterprise
	// Managers.
	got := strings.Join(inv.Undecided(), "\n")
	for _, wantText := range []string{
		"192.0.2.99 used tcp/1433 of 192.0.2.11 and nothing else (1 flow)",
		"2 hosts answered as enterprise-manager (192.0.2.10, 192.0.2.30)",
	} {
		if !strings.Contains(got, wantText) {
			t.Errorf("Undecided() lacks %q:\n%s", wantText, got)
		}
	}
	if strings.Contains(got, "192.0.2.13") {
		t.Errorf("Undecided() notes a client of a SQL Server that is nobody's:\n%s", got)
	}
}

func TestMatchAttempt(t *testing.T) {
	p, _ := learning(t, 0)
	em, agent, stranger := addr("192.0.2.10"), addr("198.51.100.7"), addr("198.51.100.99")
	worked(p, TCP, agent, em, 3741)
	f := Flow{Transport: TCP, Client: stranger, Server: em, ServerRoles: p.Roles(em), Port: 3741}
	// An unknown host whose SYN to the Enterprise Manager got no answer is
	// taken for an agent that cannot reach it...
	if m := p.MatchAttempt(f); m.Kind != MatchAllowed || ruleID(p.Policy(), m) != "agent-em-grpc" {
		t.Errorf("failed attempt of an unknown host: %s %q, want allowed agent-em-grpc", m.Kind, ruleID(p.Policy(), m))
	}
	// ...but when the server answered and the flow did not go on, it is
	// what it is: no agent.
	if m := p.Match(f); m.Kind != MatchUnauthorizedClient {
		t.Errorf("Match of an unknown host: %s, want unauthorized_client", m.Kind)
	}
	// With a site config nobody is taken for anything.
	conf := Bind(compileSite(t, "roles: {enterprise-manager: [192.0.2.10]}\n"), nil)
	f.ServerRoles = conf.Roles(em)
	if m := conf.MatchAttempt(f); m.Kind != MatchUnauthorizedClient {
		t.Errorf("configured: %s, want unauthorized_client", m.Kind)
	}
}

func TestLearnSeveralRoles(t *testing.T) {
	p, _ := learning(t, 0)
	box, agent, console := addr("192.0.2.10"), addr("198.51.100.7"), addr("198.51.100.8")
	worked(p, TCP, agent, box, 3741)
	worked(p, TCP, console, box, 3740)
	// The Enterprise Manager opens its own SQL Server on another box.
	worked(p, TCP, box, addr("192.0.2.11"), 1433)
	// And a NetApp reaches the agent, which is also something else.
	worked(p, TCP, addr("203.0.113.9"), agent, 9999)
	if got, want := p.Roles(box), roles(EnterpriseManager); got != want {
		t.Errorf("EM box: %q, want %q", got, want)
	}
	if got, want := p.Roles(agent), roles(Agent); got != want {
		t.Errorf("agent: %q, want %q", got, want)
	}
	if got, want := p.Roles(addr("203.0.113.9")), roles(NetAppCDOT); got != want {
		t.Errorf("netapp: %q, want %q", got, want)
	}
	// A SQL Server that also runs the Enterprise Manager service.
	worked(p, TCP, agent, addr("192.0.2.11"), 3741)
	if got, want := p.Roles(addr("192.0.2.11")), roles(EnterpriseManager, SQLServer); got != want {
		t.Errorf("EM+SQL box: %q, want %q", got, want)
	}
}

func TestLearnWithConfigIsNoOp(t *testing.T) {
	p := Bind(compileSite(t, "roles: {agent: [198.51.100.7]}\n"), NewInventory(0))
	worked(p, TCP, addr("198.51.100.7"), addr("192.0.2.10"), 3741)
	if got := p.Roles(addr("192.0.2.10")); got != 0 {
		t.Errorf("a configured policy learned %q", got)
	}
	if p.Learns(TCP, 3741) {
		t.Error("a configured policy learns")
	}
}

func TestLearnCap(t *testing.T) {
	p, inv := learning(t, 3)
	worked(p, TCP, addr("10.0.0.1"), addr("10.0.0.100"), 3741) // 2 hosts
	worked(p, TCP, addr("10.0.0.2"), addr("10.0.0.100"), 3741) // 3 hosts
	worked(p, TCP, addr("10.0.0.3"), addr("10.0.0.100"), 3741) // client refused
	worked(p, TCP, addr("10.0.0.4"), addr("10.0.0.101"), 3741) // both refused
	if got := inv.Stats(); got.Dropped != 3 || got.Hosts != 3 {
		t.Errorf("Stats() = %+v, want 3 hosts and 3 dropped", got)
	}
	if got := p.Roles(addr("10.0.0.3")); got != 0 {
		t.Errorf("refused host has roles %q", got)
	}
	// A known host still learns new roles when the inventory is full.
	worked(p, TCP, addr("10.0.0.1"), addr("10.0.0.100"), 10000)
	if got, want := p.Roles(addr("10.0.0.100")), roles(EnterpriseManager, ThreatManager); got != want {
		t.Errorf("known host at the cap: %q, want %q", got, want)
	}
	if got := len(inv.Config().Roles[Agent]); got != 2 {
		t.Errorf("%d agents in the inventory, want 2", got)
	}
}

func TestLearnSteadyStateAllocs(t *testing.T) {
	p, _ := learning(t, 0)
	client, server := addr("198.51.100.7"), addr("192.0.2.10")
	worked(p, TCP, client, server, 3741)
	if n := testing.AllocsPerRun(1000, func() {
		worked(p, TCP, client, server, 3741)
		worked(p, TCP, client, server, 443)
		p.Roles(server)
	}); n != 0 {
		t.Errorf("Learn of a known flow allocates %v times", n)
	}
}

// TestLearnConcurrent is for the race detector: Learn and Roles from
// several goroutines.
func TestLearnConcurrent(t *testing.T) {
	p, inv := learning(t, 0)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				var client, server [16]byte
				client = addr("10.0.0.1")
				client[14], client[15] = byte(g), byte(i)
				server = addr("10.1.0.1")
				server[15] = byte(i % 4)
				worked(p, TCP, client, server, 3741)
				p.Roles(client)
			}
		}()
	}
	wg.Wait()
	if got := p.Roles(addr("10.1.0.1")); got != roles(EnterpriseManager) {
		t.Errorf("Roles(10.1.0.1) = %q after concurrent learning", got)
	}
	if got := len(inv.Config().Roles[Agent]); got != 4*256 {
		t.Errorf("%d agents learned, want %d", got, 4*256)
	}
}

func TestInventoryConfigInferred(t *testing.T) {
	p, inv := learning(t, 0)
	worked(p, TCP, addr("2001:db8::7"), addr("192.0.2.10"), 3741)
	worked(p, TCP, addr("198.51.100.9"), addr("192.0.2.10"), 3741)
	worked(p, TCP, addr("198.51.100.10"), addr("192.0.2.10"), 3741)
	worked(p, TCP, addr("198.51.100.2"), addr("192.0.2.10"), 3741)
	c := inv.Config()
	wantAgents := []netip.Prefix{
		netip.MustParsePrefix("198.51.100.2/32"), netip.MustParsePrefix("198.51.100.9/32"),
		netip.MustParsePrefix("198.51.100.10/32"), netip.MustParsePrefix("2001:db8::7/128"),
	}
	if !reflect.DeepEqual(c.Roles[Agent], wantAgents) {
		t.Errorf("agents %v, want %v", c.Roles[Agent], wantAgents)
	}
	var buf bytes.Buffer
	if err := WriteConfig(&buf, c); err != nil {
		t.Fatal(err)
	}
	back, err := ParseConfig(buf.Bytes(), "inventory")
	if err != nil {
		t.Fatalf("written inventory does not parse: %v\n%s", err, buf.String())
	}
	assertSameConfig(t, back, c)

	// The written inventory, given back as --config, describes the same
	// hosts.
	m, err := DefaultMatrix()
	if err != nil {
		t.Fatal(err)
	}
	q, err := Compile(m, back)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"2001:db8::7", "198.51.100.9", "192.0.2.10", "192.0.2.11"} {
		if got, want := q.Roles(addr(a)), p.Roles(addr(a)); got != want {
			t.Errorf("Roles(%s) from the written inventory %q, learned %q", a, got, want)
		}
	}
}

func TestInventoryConfigGiven(t *testing.T) {
	p := compileSite(t, siteYAML)
	c := p.InventoryConfig()
	want, err := ParseConfig([]byte(siteYAML), "site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	assertSameConfig(t, c, want)
	c.Roles[Agent][0] = netip.MustParsePrefix("10.0.0.0/8")
	if p.Roles(addr("10.1.1.1")) != 0 || p.InventoryConfig().Roles[Agent][0].String() == "10.0.0.0/8" {
		t.Error("InventoryConfig shares its slices with the policy")
	}
}

func TestInventoryConfigOfInferredPolicy(t *testing.T) {
	if c := compileSite(t, "").InventoryConfig(); c != nil {
		t.Errorf("an inferred policy's InventoryConfig is %+v, want nil (the Inventory has it)", c)
	}
}
