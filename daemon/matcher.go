package daemon

import (
	"sync/atomic"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/policy"
)

// livePolicy is the policy in force, shared by every flow table. A reload
// stores a new one; each call reads the pointer once, so a table sees
// either the old policy or the new one, never a mix within one call, and
// its flows keep their state across the switch.
type livePolicy struct {
	p atomic.Pointer[policy.Policy]
}

var _ classifier.Matcher = (*livePolicy)(nil)

func (l *livePolicy) load() *policy.Policy            { return l.p.Load() }
func (l *livePolicy) store(p *policy.Policy)          { l.p.Store(p) }
func (l *livePolicy) Roles(a [16]byte) policy.RoleSet { return l.p.Load().Roles(a) }
func (l *livePolicy) Learn(tr policy.Transport, client, server [16]byte, port uint16) {
	l.p.Load().Learn(tr, client, server, port)
}
func (l *livePolicy) ServerPortScore(tr policy.Transport, port uint16, roles policy.RoleSet) int {
	return l.p.Load().ServerPortScore(tr, port, roles)
}
func (l *livePolicy) Match(tr policy.Transport, client, server policy.RoleSet, port uint16) policy.Match {
	return l.p.Load().Match(tr, client, server, port)
}
func (l *livePolicy) Reply(rule int32) bool { return l.p.Load().Reply(rule) }
