package policy

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// hostTable answers "which roles does this address hold" for a configured
// inventory. Prefixes are grouped by length, so a look-up is one map read
// per distinct length (a handful in practice) whatever the number of
// entries, and a host matching several entries gets the union of their
// roles.
type hostTable struct {
	bits  []int                  // distinct lengths, in 16-byte form (IPv4 /24 is 120)
	byLen []map[[16]byte]RoleSet // masked address → roles, per length
}

func newHostTable(roles map[Role][]netip.Prefix) hostTable {
	var t hostTable
	slot := map[int]int{}
	for r, prefixes := range roles {
		for _, p := range prefixes {
			addr, bits := as16(p)
			i, ok := slot[bits]
			if !ok {
				i = len(t.bits)
				slot[bits] = i
				t.bits = append(t.bits, bits)
				t.byLen = append(t.byLen, map[[16]byte]RoleSet{})
			}
			key := maskAddr(addr, bits)
			t.byLen[i][key] = t.byLen[i][key].With(r)
		}
	}
	return t
}

// as16 returns a prefix in the 16-byte form of the flow table: IPv4
// IPv4-mapped, its length counted from the start of the IPv6 address.
func as16(p netip.Prefix) ([16]byte, int) {
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	return p.Addr().As16(), bits
}

func maskAddr(a [16]byte, bits int) [16]byte {
	for i := range a {
		switch rest := bits - 8*i; {
		case rest <= 0:
			a[i] = 0
		case rest < 8:
			a[i] &= ^byte(0xff >> rest)
		}
	}
	return a
}

func (t *hostTable) lookup(addr [16]byte) RoleSet {
	var s RoleSet
	for i, bits := range t.bits {
		s |= t.byLen[i][maskAddr(addr, bits)]
	}
	return s
}

// Roles returns the roles the site config gives addr (none when the
// inventory is inferred: see Inventory). addr is 16 bytes, IPv4
// IPv4-mapped (::ffff:a.b.c.d).
func (p *Policy) Roles(addr [16]byte) RoleSet {
	if p.inferred {
		return 0
	}
	return p.static.lookup(addr)
}

// DefaultMaxInferredHosts bounds an inferred inventory, so a scan or a
// spoofed flood cannot grow it without limit.
const DefaultMaxInferredHosts = 65536

// Inventory is the inventory learned from the traffic when no site config
// names the hosts: which roles each host has shown it holds. It belongs to
// whoever follows the traffic (a replay, the daemon), not to a Policy:
// a daemon keeps it across config reloads, and a compiled Policy stays
// immutable. Its methods are safe for concurrent use.
type Inventory struct {
	mu      sync.RWMutex // guards learned
	learned map[[16]byte]RoleSet
	max     int
	dropped atomic.Uint64
}

// InventoryStats are the numbers of an inferred inventory.
type InventoryStats struct {
	// Hosts is the number of hosts that hold a role.
	Hosts int
	// Dropped counts the hosts not learned because the inventory was full.
	Dropped uint64
}

// NewInventory returns an empty inventory of at most maxHosts hosts
// (DefaultMaxInferredHosts when maxHosts <= 0).
func NewInventory(maxHosts int) *Inventory {
	if maxHosts <= 0 {
		maxHosts = DefaultMaxInferredHosts
	}
	return &Inventory{learned: map[[16]byte]RoleSet{}, max: maxHosts}
}

// Stats returns the inventory's numbers.
func (v *Inventory) Stats() InventoryStats {
	v.mu.RLock()
	n := len(v.learned)
	v.mu.RUnlock()
	return InventoryStats{Hosts: n, Dropped: v.dropped.Load()}
}

// Roles returns the roles addr has been seen to hold.
func (v *Inventory) Roles(addr [16]byte) RoleSet {
	v.mu.RLock()
	s := v.learned[addr]
	v.mu.RUnlock()
	return s
}

// Learn teaches the inventory what a flow of transport tr from client to
// server's serverPort says about its hosts, under the rules of p.
//
// The first rule, in rule order, that names the port and infers something
// decides: the server takes its server role; for an InferBoth rule the
// client takes its client role, unless the client already holds a role that
// a rule on this port admits towards this server (a Threat Manager known
// from 10000 stays one when it opens 1433, where its own rule admits it).
func (v *Inventory) Learn(p *Policy, tr Transport, client, server [16]byte, serverPort uint16) {
	cands := p.candidates(tr, serverPort)
	rule := -1
	for _, i := range cands {
		if p.rules[i].Infer != InferNone {
			rule = int(i)
			break
		}
	}
	if rule < 0 {
		return
	}
	r := &p.rules[rule]
	// Most flows teach nothing new: decide under the read lock first.
	v.mu.RLock()
	clientRoles, serverRoles := v.lesson(p, cands, r, client, server)
	changes := clientRoles != v.learned[client] || serverRoles != v.learned[server]
	v.mu.RUnlock()
	if !changes {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	clientRoles, serverRoles = v.lesson(p, cands, r, client, server)
	v.learn(server, serverRoles)
	v.learn(client, clientRoles)
}

// lesson returns the roles client and server hold once rule r is learned.
// The caller holds v.mu.
func (v *Inventory) lesson(p *Policy, cands []uint16, r *Rule, client, server [16]byte) (RoleSet, RoleSet) {
	clientRoles, serverRoles := v.learned[client], v.learned[server].With(r.Server)
	if r.Infer != InferBoth || r.AnyClient {
		return clientRoles, serverRoles
	}
	for _, i := range cands {
		q := &p.rules[i]
		if !q.AnyClient && serverRoles.Has(q.Server) && clientRoles.Has(q.Client) {
			return clientRoles, serverRoles
		}
	}
	return clientRoles.With(r.Client), serverRoles
}

// learn stores the roles of addr, within the cap. The caller holds v.mu
// for writing.
func (v *Inventory) learn(addr [16]byte, roles RoleSet) {
	old, known := v.learned[addr]
	if roles == old {
		return
	}
	if !known && len(v.learned) >= v.max {
		v.dropped.Add(1)
		return
	}
	v.learned[addr] = roles
}

// Config returns what was learned as a Config, for --print-inventory: the
// roles, every feature off. Addresses are sorted; the result shares
// nothing with the inventory.
func (v *Inventory) Config() *Config {
	c := &Config{Roles: map[Role][]netip.Prefix{}, Features: map[string]bool{}}
	v.mu.RLock()
	for addr, roles := range v.learned {
		a := netip.AddrFrom16(addr).Unmap()
		for _, r := range roles.Roles() {
			c.Roles[r] = append(c.Roles[r], netip.PrefixFrom(a, a.BitLen()))
		}
	}
	v.mu.RUnlock()
	for r, prefixes := range c.Roles {
		c.Roles[r] = sortedPrefixes(prefixes)
	}
	return c
}

// InventoryConfig returns a copy of the site config the policy was
// compiled with, or nil when its inventory is inferred (see
// Inventory.Config). Addresses are sorted; the result shares nothing with
// the policy.
func (p *Policy) InventoryConfig() *Config {
	if p.inferred {
		return nil
	}
	c := &Config{Roles: map[Role][]netip.Prefix{}, Features: map[string]bool{}}
	for r, prefixes := range p.config.Roles {
		if len(prefixes) > 0 {
			c.Roles[r] = sortedPrefixes(prefixes)
		}
	}
	for name, on := range p.config.Features {
		c.Features[name] = on
	}
	c.SIEMPorts = slices.Clone(p.config.SIEMPorts)
	for _, r := range p.config.Allow {
		r.Ports = slices.Clone(r.Ports)
		c.Allow = append(c.Allow, r)
	}
	c.Timeouts = p.config.Timeouts
	return c
}

// sortedPrefixes returns a sorted copy: IPv4 before IPv6, then by address,
// then shorter prefixes first.
func sortedPrefixes(prefixes []netip.Prefix) []netip.Prefix {
	out := slices.Clone(prefixes)
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out)
}

// Bound is a policy bound to the inventory its flows are classified with:
// the classifier's view (a classifier.Matcher). With a site config, roles
// come from the config and nothing is learned; without one, from inv,
// which Learn teaches.
type Bound struct {
	p   *Policy
	inv *Inventory
}

// Bind binds p to inv, which may be nil when p has a site config.
func Bind(p *Policy, inv *Inventory) *Bound {
	if p.inferred && inv == nil {
		inv = NewInventory(0)
	}
	return &Bound{p: p, inv: inv}
}

// Policy returns the bound policy.
func (b *Bound) Policy() *Policy { return b.p }

// Roles returns the roles of a host (IPv4-mapped for IPv4).
func (b *Bound) Roles(addr [16]byte) RoleSet {
	if b.p.inferred {
		return b.inv.Roles(addr)
	}
	return b.p.static.lookup(addr)
}

// Learn tells the inventory about a new flow (inference); nothing when
// the policy has a site config.
func (b *Bound) Learn(tr Transport, client, server [16]byte, serverPort uint16) {
	if b.p.inferred {
		b.inv.Learn(b.p, tr, client, server, serverPort)
	}
}

// ServerPortScore is Policy.ServerPortScore.
func (b *Bound) ServerPortScore(tr Transport, port uint16, roles RoleSet) int {
	return b.p.ServerPortScore(tr, port, roles)
}

// Match is Policy.Match.
func (b *Bound) Match(tr Transport, client, server RoleSet, port uint16) Match {
	return b.p.Match(tr, client, server, port)
}

// Reply is Policy.Reply.
func (b *Bound) Reply(rule int32) bool { return b.p.Reply(rule) }
