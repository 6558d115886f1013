package policy

import (
	"bytes"
	"net/netip"
	"reflect"
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

func TestLearn(t *testing.T) {
	p, inv := learning(t, 0)
	var (
		agent   = addr("198.51.100.7")
		em      = addr("192.0.2.10")
		tm      = addr("192.0.2.20")
		sql     = addr("192.0.2.11")
		unknown = addr("192.0.2.99")
		dc      = addr("2001:db8::53")
	)
	p.Learn(TCP, agent, em, 3741)
	p.Learn(TCP, agent, tm, 10000)
	// The Threat Manager opens 1433: the SQL Server is learned, and the
	// Threat Manager is not made an Enterprise Manager, since its own rule
	// (tm-sql-tds) admits it there.
	p.Learn(TCP, tm, sql, 1433)
	// An unknown client of 1433 is taken for the Enterprise Manager.
	p.Learn(TCP, unknown, sql, 1433)
	// Kerberos teaches the domain controller (the server only); 8080 (a
	// web proxy as often as a Threat Manager console), 135 and the dynamic
	// range teach nothing.
	p.Learn(TCP, tm, dc, 88)
	p.Learn(TCP, addr("203.0.113.1"), addr("203.0.113.4"), 8080)
	p.Learn(TCP, addr("203.0.113.2"), addr("203.0.113.3"), 135)
	p.Learn(TCP, addr("203.0.113.2"), addr("203.0.113.3"), 50000)
	// A UDP port that is no rule's teaches nothing.
	p.Learn(UDP, addr("203.0.113.2"), addr("203.0.113.3"), 3741)

	want := map[[16]byte]RoleSet{
		agent:   roles(Agent),
		em:      roles(EnterpriseManager),
		tm:      roles(ThreatManager),
		sql:     roles(SQLServer),
		unknown: roles(EnterpriseManager),
		dc:      roles(DomainController),
	}
	for a, r := range want {
		if got := p.Roles(a); got != r {
			t.Errorf("Roles(%s) = %q, want %q", netip.AddrFrom16(a).Unmap(), got, r)
		}
	}
	for _, a := range []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"} {
		if got := p.Roles(addr(a)); got != 0 {
			t.Errorf("Roles(%s) = %q, want nothing learned", a, got)
		}
	}
	if m := p.Match(TCP, p.Roles(tm), p.Roles(sql), 1433); m.Kind != MatchAllowed || ruleID(p.Policy(), m) != "tm-sql-tds" {
		t.Errorf("Threat Manager to SQL after learning: %s %q, want allowed tm-sql-tds", m.Kind, ruleID(p.Policy(), m))
	}
	if st := inv.Stats(); st.Dropped != 0 || st.Hosts != len(want) {
		t.Errorf("Stats() = %+v, want %d hosts and none dropped", st, len(want))
	}
}

func TestLearnSeveralRoles(t *testing.T) {
	p, _ := learning(t, 0)
	box, agent, console := addr("192.0.2.10"), addr("198.51.100.7"), addr("198.51.100.8")
	p.Learn(TCP, agent, box, 3741)
	p.Learn(TCP, console, box, 3740)
	// The Enterprise Manager opens its own SQL Server on another box.
	p.Learn(TCP, box, addr("192.0.2.11"), 1433)
	// And a NetApp reaches the agent, which is also something else.
	p.Learn(TCP, addr("203.0.113.9"), agent, 9999)
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
	p.Learn(TCP, agent, addr("192.0.2.11"), 3741)
	if got, want := p.Roles(addr("192.0.2.11")), roles(EnterpriseManager, SQLServer); got != want {
		t.Errorf("EM+SQL box: %q, want %q", got, want)
	}
}

func TestLearnWithConfigIsNoOp(t *testing.T) {
	p := Bind(compileSite(t, "roles: {agent: [198.51.100.7]}\n"), NewInventory(0))
	p.Learn(TCP, addr("198.51.100.7"), addr("192.0.2.10"), 3741)
	if got := p.Roles(addr("192.0.2.10")); got != 0 {
		t.Errorf("a configured policy learned %q", got)
	}
}

func TestLearnCap(t *testing.T) {
	p, inv := learning(t, 3)
	p.Learn(TCP, addr("10.0.0.1"), addr("10.0.0.100"), 3741) // 2 hosts
	p.Learn(TCP, addr("10.0.0.2"), addr("10.0.0.100"), 3741) // 3 hosts
	p.Learn(TCP, addr("10.0.0.3"), addr("10.0.0.100"), 3741) // client refused
	p.Learn(TCP, addr("10.0.0.4"), addr("10.0.0.101"), 3741) // both refused
	if got := inv.Stats(); got.Dropped != 3 || got.Hosts != 3 {
		t.Errorf("Stats() = %+v, want 3 hosts and 3 dropped", got)
	}
	if got := p.Roles(addr("10.0.0.3")); got != 0 {
		t.Errorf("refused host has roles %q", got)
	}
	// A known host still learns new roles when the inventory is full.
	p.Learn(TCP, addr("10.0.0.1"), addr("10.0.0.100"), 1433)
	if got, want := p.Roles(addr("10.0.0.100")), roles(EnterpriseManager, SQLServer); got != want {
		t.Errorf("known host at the cap: %q, want %q", got, want)
	}
	if got := len(inv.Config().Roles[Agent]); got != 2 {
		t.Errorf("%d agents in the inventory, want 2", got)
	}
}

func TestLearnSteadyStateAllocs(t *testing.T) {
	p, _ := learning(t, 0)
	client, server := addr("198.51.100.7"), addr("192.0.2.10")
	p.Learn(TCP, client, server, 3741)
	if n := testing.AllocsPerRun(1000, func() {
		p.Learn(TCP, client, server, 3741)
		p.Learn(TCP, client, server, 443)
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
				p.Learn(TCP, client, server, 3741)
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
	p.Learn(TCP, addr("2001:db8::7"), addr("192.0.2.10"), 3741)
	p.Learn(TCP, addr("198.51.100.9"), addr("192.0.2.10"), 3741)
	p.Learn(TCP, addr("198.51.100.10"), addr("192.0.2.10"), 3741)
	p.Learn(TCP, addr("198.51.100.2"), addr("192.0.2.10"), 3741)
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
