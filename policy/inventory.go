package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// hostTable answers "which roles does this address hold" for a configured
// inventory. Prefixes are grouped by family and length, so a look-up is one
// map read per distinct length (a handful in practice) whatever the number
// of entries, and a host matching several entries gets the union of their
// roles. The families are apart: IPv4 addresses are kept IPv4-mapped, which
// an IPv6 prefix such as ::/0 would otherwise cover.
type hostTable struct {
	bits  []int                  // distinct lengths, in 16-byte form (IPv4 /24 is 120)
	is4   []bool                 // the family of each length's prefixes
	byLen []map[[16]byte]RoleSet // masked address → roles, per length
}

func newHostTable(roles map[Role][]netip.Prefix) hostTable {
	var t hostTable
	type group struct {
		bits int
		is4  bool
	}
	slot := map[group]int{}
	for r, prefixes := range roles {
		for _, p := range prefixes {
			addr, bits := as16(p)
			g := group{bits, p.Addr().Is4()}
			i, ok := slot[g]
			if !ok {
				i = len(t.bits)
				slot[g] = i
				t.bits = append(t.bits, bits)
				t.is4 = append(t.is4, g.is4)
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
	is4 := isMapped(&addr)
	for i, bits := range t.bits {
		if t.is4[i] == is4 {
			s |= t.byLen[i][maskAddr(addr, bits)]
		}
	}
	return s
}

// isMapped reports an IPv4-mapped address (::ffff:a.b.c.d).
func isMapped(a *[16]byte) bool {
	return a[10] == 0xff && a[11] == 0xff && a[0]|a[1]|a[2]|a[3]|a[4]|a[5]|a[6]|a[7]|a[8]|a[9] == 0
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

// maxUndecided bounds the hosts an inventory keeps a "could not decide"
// note for.
const maxUndecided = 256

// Inventory is the inventory learned from the traffic when no site config
// names the hosts: which roles each host has shown it holds, and the
// evidence. It belongs to whoever follows the traffic (a replay, the
// daemon), not to a Policy: a daemon keeps it across config reloads, and a
// compiled Policy stays immutable. Its methods are safe for concurrent use.
type Inventory struct {
	mu        sync.RWMutex // guards hosts and undecided
	hosts     map[[16]byte]*hostFacts
	undecided map[[16]byte]*useNote
	max       int
	dropped   atomic.Uint64
}

// hostFacts are what one host has shown: its roles, and for each role the
// flows that taught it.
type hostFacts struct {
	roles    RoleSet
	evidence []roleEvidence
}

// roleEvidence is why a host holds a role: the flows of one rule that
// showed it, the first of them as an example.
type roleEvidence struct {
	role   Role
	server bool // the host answered as the rule's server (else: its client)
	rule   string
	tr     Transport
	port   uint16
	peer   [16]byte
	flows  uint64
}

// useNote is a host that used a product's port whose clients are not
// learned (a SQL Server's 1433) and holds no role: "could not decide".
type useNote struct {
	rule   string
	tr     Transport
	port   uint16
	server [16]byte
	flows  uint64
}

// InventoryStats are the numbers of an inferred inventory.
type InventoryStats struct {
	// Hosts is the number of hosts that hold a role.
	Hosts int
	// Dropped counts the hosts not learned because the inventory was full.
	Dropped uint64
	// Capacity is the most hosts it holds (NewInventory's maxHosts).
	Capacity int
}

// NewInventory returns an empty inventory of at most maxHosts hosts
// (DefaultMaxInferredHosts when maxHosts <= 0).
func NewInventory(maxHosts int) *Inventory {
	if maxHosts <= 0 {
		maxHosts = DefaultMaxInferredHosts
	}
	return &Inventory{hosts: map[[16]byte]*hostFacts{}, undecided: map[[16]byte]*useNote{}, max: maxHosts}
}

// Stats returns the inventory's numbers.
func (v *Inventory) Stats() InventoryStats {
	v.mu.RLock()
	n := len(v.hosts)
	v.mu.RUnlock()
	return InventoryStats{Hosts: n, Dropped: v.dropped.Load(), Capacity: v.max}
}

// Roles returns the roles addr has been seen to hold.
func (v *Inventory) Roles(addr [16]byte) RoleSet {
	v.mu.RLock()
	var s RoleSet
	if h := v.hosts[addr]; h != nil {
		s = h.roles
	}
	v.mu.RUnlock()
	return s
}

// Learns reports whether a flow to this server port can teach an inferred
// inventory a role: a rule names the port and infers.
func (p *Policy) Learns(tr Transport, port uint16) bool {
	for _, i := range p.candidates(tr, port) {
		if p.rules[i].Infer != InferNone {
			return true
		}
	}
	return false
}

// Learn teaches the inventory what flow f showed of its hosts (ev), under
// the rules of p; f's roles are ignored (the inventory's own are used).
// Only evidence teaches: a server takes a role for answering on its port,
// a client for a flow that then worked. The first rule, in rule order,
// that names the port and whose inference applies decides: the server
// takes its server role; for an InferBoth rule, a client that completed
// takes its client role, unless it already holds a role that a rule on
// this port admits towards this server (a Threat Manager known from 10000
// stays one when it opens 1433, where its own rule admits it).
func (v *Inventory) Learn(p *Policy, f Flow, ev Evidence) {
	if ev&ServerAnswered == 0 {
		return // nothing answered: nothing is known
	}
	cands := p.candidates(f.Transport, f.Port)
	v.mu.Lock()
	defer v.mu.Unlock()
	client, server := v.rolesOf(f.Client), v.rolesOf(f.Server)
	var unlearned *Rule // a rule whose client this flow's does not hold
	defer func() {
		if unlearned != nil {
			v.note(f, unlearned)
		}
	}()
	for _, i := range cands {
		r := &p.rules[i]
		switch r.Infer {
		case InferNone:
			continue
		case InferKnownClient:
			if r.AnyClient || !client.Has(r.Client) {
				if unlearned == nil && client == 0 && ev&ClientCompleted != 0 && server.Has(r.Server) {
					unlearned = r
				}
				continue
			}
		}
		unlearned = nil
		v.learn(f.Server, r, true, f)
		if r.Infer == InferBoth && !r.AnyClient && ev&ClientCompleted != 0 &&
			(client.Has(r.Client) || !admittedElsewhere(p, cands, client, server.With(r.Server))) {
			v.learn(f.Client, r, false, f)
		}
		return
	}
}

// admittedElsewhere reports whether a client holding roles client is
// already admitted by a rule among cands towards a server holding server.
func admittedElsewhere(p *Policy, cands []uint16, client, server RoleSet) bool {
	for _, i := range cands {
		q := &p.rules[i]
		if !q.AnyClient && server.Has(q.Server) && client.Has(q.Client) {
			return true
		}
	}
	return false
}

func (v *Inventory) rolesOf(addr [16]byte) RoleSet {
	if h := v.hosts[addr]; h != nil {
		return h.roles
	}
	return 0
}

// learn gives addr the role of rule r (its server role when server), with
// flow f as evidence, within the cap. The caller holds v.mu for writing.
func (v *Inventory) learn(addr [16]byte, r *Rule, server bool, f Flow) {
	role, peer := r.Client, f.Server
	if server {
		role, peer = r.Server, f.Client
	}
	h := v.hosts[addr]
	if h == nil {
		if len(v.hosts) >= v.max {
			v.dropped.Add(1)
			return
		}
		h = &hostFacts{}
		v.hosts[addr] = h
		delete(v.undecided, addr)
	}
	h.roles = h.roles.With(role)
	for j := range h.evidence {
		if e := &h.evidence[j]; e.role == role && e.rule == r.ID && e.server == server {
			e.flows++
			return
		}
	}
	h.evidence = append(h.evidence, roleEvidence{role: role, server: server, rule: r.ID, tr: f.Transport, port: f.Port, peer: peer, flows: 1})
}

// note remembers that f's client, which holds no role, used a port of a
// server whose clients rule r does not learn. The caller holds v.mu.
func (v *Inventory) note(f Flow, r *Rule) {
	if n := v.undecided[f.Client]; n != nil {
		n.flows++
		return
	}
	if len(v.undecided) < maxUndecided {
		v.undecided[f.Client] = &useNote{rule: r.ID, tr: f.Transport, port: f.Port, server: f.Server, flows: 1}
	}
}

// Config returns what was learned as a Config, for --print-inventory: the
// roles, every feature off. Addresses are sorted; the result shares
// nothing with the inventory.
func (v *Inventory) Config() *Config {
	c := &Config{Roles: map[Role][]netip.Prefix{}, Features: map[string]bool{}}
	v.mu.RLock()
	for addr, h := range v.hosts {
		a := netip.AddrFrom16(addr).Unmap()
		for _, r := range h.roles.Roles() {
			c.Roles[r] = append(c.Roles[r], netip.PrefixFrom(a, a.BitLen()))
		}
	}
	v.mu.RUnlock()
	for r, prefixes := range c.Roles {
		c.Roles[r] = sortedPrefixes(prefixes)
	}
	return c
}

// Evidence says, for each host and role learned, why: one line a role,
// such as "answered tcp/3741 (agent-em-grpc): 12 flows, the first from
// 198.51.100.7".
func (v *Inventory) Evidence() map[netip.Addr]map[Role]string {
	out := map[netip.Addr]map[Role]string{}
	v.mu.RLock()
	defer v.mu.RUnlock()
	for addr, h := range v.hosts {
		byRole := map[Role]string{}
		for _, e := range h.evidence {
			var text string
			if e.server {
				text = fmt.Sprintf("answered %s/%d (%s): %s, the first from %s", e.tr, e.port, e.rule, plural(e.flows, "flow"), netip.AddrFrom16(e.peer).Unmap())
			} else {
				text = fmt.Sprintf("reached %s/%d of %s (%s): %s", e.tr, e.port, netip.AddrFrom16(e.peer).Unmap(), e.rule, plural(e.flows, "flow"))
			}
			if prev, ok := byRole[e.role]; ok {
				text = prev + "; " + text
			}
			byRole[e.role] = text
		}
		out[netip.AddrFrom16(addr).Unmap()] = byRole
	}
	return out
}

// Undecided lists what the inventory could not decide, one sentence each,
// sorted: hosts that used a product's port and hold no role, and roles a
// site normally has one host of that several hosts answered as.
func (v *Inventory) Undecided() []string {
	var out []string
	v.mu.RLock()
	defer v.mu.RUnlock()
	for addr, n := range v.undecided {
		if v.hosts[addr] != nil {
			continue
		}
		out = append(out, fmt.Sprintf("%s used %s/%d of %s and nothing else (%s): it is taken for no role; name it in the config if it is Threat Prevention's",
			netip.AddrFrom16(addr).Unmap(), n.tr, n.port, netip.AddrFrom16(n.server).Unmap(), plural(n.flows, "flow")))
	}
	for _, role := range []Role{EnterpriseManager, ThreatManager} {
		var hosts []string
		for addr, h := range v.hosts {
			if h.roles.Has(role) {
				hosts = append(hosts, netip.AddrFrom16(addr).Unmap().String())
			}
		}
		if len(hosts) > 1 {
			slices.Sort(hosts)
			out = append(out, fmt.Sprintf("%d hosts answered as %s (%s): a site usually has one; check which is", len(hosts), role, strings.Join(hosts, ", ")))
		}
	}
	slices.Sort(out)
	return out
}

// plural writes a count and a noun, with an s when the count is not one.
func plural(n uint64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatUint(n, 10) + " " + noun + "s"
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

// Learns reports whether a flow to this port may teach the inventory:
// never with a site config.
func (b *Bound) Learns(tr Transport, port uint16) bool {
	return b.p.inferred && b.p.Learns(tr, port)
}

// Learn tells the inventory what a flow showed; nothing with a site
// config.
func (b *Bound) Learn(f Flow, ev Evidence) {
	if b.p.inferred {
		b.inv.Learn(b.p, f, ev)
	}
}

// ServerPortScore is Policy.ServerPortScore.
func (b *Bound) ServerPortScore(tr Transport, port uint16, roles RoleSet) int {
	return b.p.ServerPortScore(tr, port, roles)
}

// Match is Policy.Match.
func (b *Bound) Match(f Flow) Match { return b.p.Match(f) }

// MatchAttempt is Policy.MatchAttempt with the inventory's inference.
func (b *Bound) MatchAttempt(f Flow) Match { return b.p.MatchAttempt(f) }

// Reply is Policy.Reply.
func (b *Bound) Reply(rule int32) bool { return b.p.Reply(rule) }

// Rule returns rule i of the policy, nil when there is none.
func (b *Bound) Rule(i int32) *Rule { return b.p.Rule(i) }

// MatchAnnounced is the policy's MatchAnnounced.
func (b *Bound) MatchAnnounced(f Flow, a Announce) (Match, bool) { return b.p.MatchAnnounced(f, a) }

// MatchAttempt matches an attempt that failed before its server answered
// (no answer, a reset, an ICMP error). With an inferred inventory its
// client, which no flow that worked has taught a role, is taken for the
// client a rule that learns both ends expects towards a server that holds
// the rule's server role: an agent that cannot reach the Enterprise Manager
// is exactly what such a capture is replayed to find, and it has no other
// way to show it is one. With a site config, or when no such rule applies,
// it is Match.
func (p *Policy) MatchAttempt(f Flow) Match {
	if p.inferred && f.ClientRoles == 0 {
		for _, i := range p.candidates(f.Transport, f.Port) {
			r := &p.rules[i]
			if r.Infer == InferBoth && !r.AnyClient && f.ServerRoles.Has(r.Server) {
				f.ClientRoles = RoleSet(0).With(r.Client)
				break
			}
		}
	}
	return p.Match(f)
}
