package daemon

import (
	"sync/atomic"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/policy"
)

// livePolicy is the policy in force, shared by every flow table. A reload
// stores a new snapshot; each call reads the pointer once, and the flows
// of the tables keep their state across the switch.
//
// Flows keep the rule number they got when they were created, and may be
// decided after a reload that added, removed or reordered rules (SIEM rules
// come before allow rules, so adding a SIEM port moves every allow rule).
// The numbers the tables see are therefore stable: a rule id keeps its
// number for the daemon's lifetime, and the snapshot translates to and
// from the numbers of the compiled policy.
//
// Without a site config the daemon learns its inventory from the traffic:
// inventory is then that inventory, which outlives every reload (a reload
// of the matrix alone keeps what was learned).
type livePolicy struct {
	p         atomic.Pointer[ruleSnapshot]
	inventory *policy.Inventory // nil with a site config
	// own, once the daemon listens, is its metrics endpoint: a scrape of
	// it is the daemon's own traffic, never a finding.
	own atomic.Pointer[endpoints]
}

// endpoints are the TCP endpoints the daemon serves on: its listen ports
// on its own addresses.
type endpoints struct {
	ports map[uint16]bool
	addrs map[[16]byte]bool // nil: any address of this host (listening on all)
}

// serves reports whether server:port is one of the daemon's endpoints.
func (e *endpoints) serves(server [16]byte, port uint16) bool {
	return e != nil && e.ports[port] && (e.addrs == nil || e.addrs[server])
}

// ruleSnapshot is one compiled policy and the stable numbering of its rules.
type ruleSnapshot struct {
	policy *policy.Policy
	// rules holds, by stable number, the latest definition of every rule
	// id the daemon has had in force; ids are never removed, so a number
	// handed out before a reload still names its rule.
	rules      []policy.Rule
	toStable   []int32 // policy rule index → stable number
	fromStable []int32 // stable number → policy rule index, -1 if no longer in force
}

func newRuleSnapshot(prev *ruleSnapshot, p *policy.Policy) *ruleSnapshot {
	s := &ruleSnapshot{policy: p}
	number := map[string]int32{}
	if prev != nil {
		s.rules = append(s.rules, prev.rules...)
		for i, r := range prev.rules {
			number[r.ID] = int32(i)
		}
	}
	current := p.Rules()
	s.toStable = make([]int32, len(current))
	for i, r := range current {
		n, ok := number[r.ID]
		if !ok {
			n = int32(len(s.rules))
			number[r.ID] = n
			s.rules = append(s.rules, r)
		}
		s.rules[n] = r
		s.toStable[i] = n
	}
	s.fromStable = make([]int32, len(s.rules))
	for i := range s.fromStable {
		s.fromStable[i] = -1
	}
	for i, n := range s.toStable {
		s.fromStable[n] = int32(i)
	}
	return s
}

var _ classifier.Matcher = (*livePolicy)(nil)

func (l *livePolicy) load() *policy.Policy { return l.p.Load().policy }

// snapshot returns the snapshot in force.
func (l *livePolicy) snapshot() *ruleSnapshot { return l.p.Load() }

// store puts p in force and returns the new snapshot. Calls are serialised
// by the daemon's reload lock.
func (l *livePolicy) store(p *policy.Policy) *ruleSnapshot {
	s := newRuleSnapshot(l.p.Load(), p)
	l.p.Store(s)
	return s
}

// Roles returns the roles of a host: from the config in force, or from
// the inventory the daemon learns when it has none.
func (l *livePolicy) Roles(a [16]byte) policy.RoleSet {
	if l.inventory != nil {
		return l.inventory.Roles(a)
	}
	return l.p.Load().policy.Roles(a)
}

// Learns reports whether a flow to this port may teach the daemon's
// inventory, when it learns one.
func (l *livePolicy) Learns(tr policy.Transport, port uint16) bool {
	return l.inventory != nil && l.p.Load().policy.Learns(tr, port)
}

// Learn teaches the daemon's inventory, when it learns one.
func (l *livePolicy) Learn(f policy.Flow, ev policy.Evidence) {
	if l.inventory != nil {
		l.inventory.Learn(l.p.Load().policy, f, ev)
	}
}

func (l *livePolicy) ServerPortScore(tr policy.Transport, port uint16, roles policy.RoleSet) int {
	return l.p.Load().policy.ServerPortScore(tr, port, roles)
}

// Match matches with the policy in force and returns the rule's stable
// number. A scrape of the daemon's own metrics is own traffic.
func (l *livePolicy) Match(f policy.Flow) policy.Match {
	if f.Transport == policy.TCP && l.own.Load().serves(f.Server, f.Port) {
		return policy.Match{Kind: policy.MatchOwnTraffic, Rule: -1}
	}
	s := l.p.Load()
	return s.stable(s.policy.Match(f))
}

// MatchAttempt is Match for an attempt that failed before its server
// answered (policy.Policy.MatchAttempt).
func (l *livePolicy) MatchAttempt(f policy.Flow) policy.Match {
	s := l.p.Load()
	return s.stable(s.policy.MatchAttempt(f))
}

// MatchAnnounced is policy.Policy.MatchAnnounced with the policy in force,
// the rule given its stable number.
func (l *livePolicy) MatchAnnounced(f policy.Flow, a policy.Announce) (policy.Match, bool) {
	s := l.p.Load()
	m, ok := s.policy.MatchAnnounced(f, a)
	return s.stable(m), ok
}

// Rule returns the rule of a stable number, in its last definition.
func (l *livePolicy) Rule(i int32) *policy.Rule {
	s := l.p.Load()
	if i < 0 || int(i) >= len(s.rules) {
		return nil
	}
	return &s.rules[i]
}

// stable gives m the stable number of its rule.
func (s *ruleSnapshot) stable(m policy.Match) policy.Match {
	if m.Rule >= 0 && int(m.Rule) < len(s.toStable) {
		m.Rule = s.toStable[m.Rule]
	}
	return m
}

// Reply answers for a stable rule number; a rule no longer in force keeps
// the expectation of its last definition.
func (l *livePolicy) Reply(rule int32) bool {
	s := l.p.Load()
	if rule < 0 || int(rule) >= len(s.rules) {
		return false
	}
	return s.rules[rule].Reply
}
