package classifier

import "github.com/tpwatch/tpwatch/policy"

// Matcher is the policy as the classifier sees it: the matrix, the site
// config and the inventory (*policy.Bound, or the daemon's live policy). It
// is consulted when a flow is created and when it is decided, never per
// packet.
type Matcher interface {
	// Roles returns the roles of a host (IPv4-mapped for IPv4).
	Roles(addr [16]byte) policy.RoleSet
	// ServerPortScore says how strongly port is a server port of a host
	// holding roles (policy.ScoreNone to policy.ScoreNamed).
	ServerPortScore(tr policy.Transport, port uint16, roles policy.RoleSet) int
	// Match matches a flow's transport, ends, roles and server port to a
	// rule.
	Match(f policy.Flow) policy.Match
	// MatchAttempt matches an attempt that failed before its server
	// answered: with an inferred inventory, a client known for nothing is
	// taken for the one the rule expects (policy.Policy.MatchAttempt).
	MatchAttempt(f policy.Flow) policy.Match
	// Reply reports whether the (UDP) rule expects a reply.
	Reply(rule int32) bool
	// Learns reports whether a flow to this server port may teach the
	// inventory a role (an inferred inventory only).
	Learns(tr policy.Transport, port uint16) bool
	// Learn tells the inventory what a flow showed of its hosts.
	Learn(f policy.Flow, ev policy.Evidence)
	// Rule returns the rule a match names (nil for none), for what its
	// definition says of announced ports and expected protocols.
	Rule(i int32) *policy.Rule
	// MatchAnnounced matches a flow to a port its server announced with
	// the rules the announcement may stand for (policy.Policy.MatchAnnounced).
	MatchAnnounced(f policy.Flow, a policy.Announce) (policy.Match, bool)
}

// ignoreAll is the Matcher of a table given none: every flow is ignored.
type ignoreAll struct{}

func (ignoreAll) Roles([16]byte) policy.RoleSet                                { return 0 }
func (ignoreAll) ServerPortScore(policy.Transport, uint16, policy.RoleSet) int { return 0 }
func (ignoreAll) Match(policy.Flow) policy.Match {
	return policy.Match{Kind: policy.MatchIgnored, Rule: -1}
}
func (ignoreAll) MatchAttempt(policy.Flow) policy.Match {
	return policy.Match{Kind: policy.MatchIgnored, Rule: -1}
}
func (ignoreAll) Reply(int32) bool                     { return false }
func (ignoreAll) Learns(policy.Transport, uint16) bool { return false }
func (ignoreAll) Learn(policy.Flow, policy.Evidence)   {}
func (ignoreAll) Rule(int32) *policy.Rule              { return nil }
func (ignoreAll) MatchAnnounced(policy.Flow, policy.Announce) (policy.Match, bool) {
	return policy.Match{Kind: policy.MatchIgnored, Rule: -1}, false
}

// discard is the Sink of a table given none.
type discard struct{}

func (discard) Decided(*FlowRecord) {}
func (discard) Final(*FlowRecord)   {}
