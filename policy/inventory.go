package policy

import (
	"net/netip"
	"slices"
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

// Roles returns the roles addr holds: from the config, or learned so far
// when the inventory is inferred. addr is 16 bytes, IPv4 IPv4-mapped
// (::ffff:a.b.c.d).
func (p *Policy) Roles(addr [16]byte) RoleSet {
	if !p.inferred {
		return p.static.lookup(addr)
	}
	p.mu.RLock()
	s := p.learned[addr]
	p.mu.RUnlock()
	return s
}

// SetMaxInferredHosts bounds the number of hosts Learn remembers; n <= 0
// restores DefaultMaxInferredHosts. Hosts already learned are kept.
func (p *Policy) SetMaxInferredHosts(n int) {
	if n <= 0 {
		n = DefaultMaxInferredHosts
	}
	p.mu.Lock()
	p.maxInferred = n
	p.mu.Unlock()
}

// InferOverflow returns how many times Learn refused a new host because the
// inferred inventory was full.
func (p *Policy) InferOverflow() uint64 { return p.overflow.Load() }

// Learn teaches the inferred inventory what a flow of transport tr from
// client to server's serverPort says about its hosts. It does nothing when
// the inventory comes from a config.
//
// The first rule, in rule order, that names the port and infers something
// decides: the server takes its server role; for an InferBoth rule the
// client takes its client role, unless the client already holds a role that
// a rule on this port admits towards this server (a Threat Manager known
// from 10000 stays one when it opens 1433, where its own rule admits it).
func (p *Policy) Learn(tr Transport, client, server [16]byte, serverPort uint16) {
	if !p.inferred {
		return
	}
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
	// Most flows teach nothing new: decide under the read lock first.
	p.mu.RLock()
	changes := p.lessonNeeded(cands, &p.rules[rule], client, server)
	p.mu.RUnlock()
	if !changes {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r := &p.rules[rule]
	clientRoles, serverRoles := p.lesson(cands, r, client, server)
	p.learn(server, serverRoles)
	p.learn(client, clientRoles)
}

func (p *Policy) lessonNeeded(cands []uint16, r *Rule, client, server [16]byte) bool {
	clientRoles, serverRoles := p.lesson(cands, r, client, server)
	return clientRoles != p.learned[client] || serverRoles != p.learned[server]
}

// lesson returns the roles client and server hold once rule r is learned.
// The caller holds p.mu.
func (p *Policy) lesson(cands []uint16, r *Rule, client, server [16]byte) (RoleSet, RoleSet) {
	clientRoles, serverRoles := p.learned[client], p.learned[server].With(r.Server)
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

// learn stores the roles of addr, within the cap. The caller holds p.mu
// for writing.
func (p *Policy) learn(addr [16]byte, roles RoleSet) {
	old, known := p.learned[addr]
	if roles == old {
		return
	}
	if !known && len(p.learned) >= p.maxInferred {
		p.overflow.Add(1)
		return
	}
	p.learned[addr] = roles
}

// InventoryConfig returns the inventory as a Config, for --print-inventory:
// the config given to Compile, or what was learned so far with every
// feature off. Addresses are sorted; the result shares nothing with the
// policy.
func (p *Policy) InventoryConfig() *Config {
	c := &Config{Roles: map[Role][]netip.Prefix{}, Features: map[string]bool{}}
	if !p.inferred {
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
	p.mu.RLock()
	for addr, roles := range p.learned {
		a := netip.AddrFrom16(addr).Unmap()
		for _, r := range roles.Roles() {
			c.Roles[r] = append(c.Roles[r], netip.PrefixFrom(a, a.BitLen()))
		}
	}
	p.mu.RUnlock()
	for r, prefixes := range c.Roles {
		c.Roles[r] = sortedPrefixes(prefixes)
	}
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

// KeepLearned copies into p what old learned from the traffic, so that a
// reload of the matrix alone (no --config) does not forget the inferred
// inventory. It does nothing unless both infer their inventory.
func (p *Policy) KeepLearned(old *Policy) {
	if p == old || !p.Inferred() || old == nil || !old.Inferred() {
		return
	}
	old.mu.RLock()
	defer old.mu.RUnlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, roles := range old.learned {
		if len(p.learned) >= p.maxInferred {
			break
		}
		p.learned[addr] = p.learned[addr] | roles
	}
}
