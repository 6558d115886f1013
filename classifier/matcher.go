package classifier

import "github.com/tpwatch/tpwatch/policy"

// Matcher is the policy as the classifier sees it; it is consulted once per
// new or decided flow, never per packet. *policy.Policy implements it.
type Matcher interface {
	// Roles returns the roles of a host (IPv4-mapped for IPv4).
	Roles(addr [16]byte) policy.RoleSet
	// Learn tells the inventory about a new flow (inference; a no-op when
	// the inventory comes from a config file). It is called before Match.
	Learn(tr policy.Transport, client, server [16]byte, serverPort uint16)
	// ServerPortScore says how strongly port is a server port of a host
	// holding roles: 2 a specific port, 1 a wide range, 0 none.
	ServerPortScore(tr policy.Transport, port uint16, roles policy.RoleSet) int
	// Match matches a flow's transport, roles and server port to a rule.
	Match(tr policy.Transport, client, server policy.RoleSet, port uint16) policy.Match
	// Reply reports whether the (UDP) rule expects a reply.
	Reply(rule int32) bool
}

// ignoreAll is the Matcher of a table given none: every flow is ignored.
type ignoreAll struct{}

func (ignoreAll) Roles([16]byte) policy.RoleSet                                { return 0 }
func (ignoreAll) Learn(policy.Transport, [16]byte, [16]byte, uint16)           {}
func (ignoreAll) ServerPortScore(policy.Transport, uint16, policy.RoleSet) int { return 0 }
func (ignoreAll) Match(policy.Transport, policy.RoleSet, policy.RoleSet, uint16) policy.Match {
	return policy.Match{Kind: policy.MatchIgnored, Rule: -1}
}
func (ignoreAll) Reply(int32) bool { return false }

// discard is the Sink of a table given none.
type discard struct{}

func (discard) Decided(*FlowRecord) {}
func (discard) Final(*FlowRecord)   {}
