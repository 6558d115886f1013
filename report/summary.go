package report

import (
	"math/bits"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/dissect"
	"github.com/tpwatch/tpwatch/policy"
)

// Bounds of a Summary's memory, whatever the traffic: a port scan makes a
// group per port, a spoofed flood a client per packet.
const (
	// maxGroups bounds the groups of problem flows; past it the rest are
	// counted in Overflow.
	maxGroups = 10000
	// maxClients bounds the distinct clients remembered over all groups:
	// a group counts its clients exactly until then, and "at least" after.
	maxClients = 1 << 16
)

// Summary aggregates flows for the reports a person reads (the terminal
// table, the HTML page): per rule, what was seen working, blocked and
// unexpected, and the problem flows grouped the way an administrator fixes
// them. It keeps counts and groups, never one entry per flow. It is a
// classifier.Sink; Final counts a flow once, at its end.
type Summary struct {
	rules    []policy.Rule
	perRule  []ruleCounts // by rule index
	noRule   ruleCounts   // flows without a rule
	groups   map[groupKey]*group
	order    uint64 // groups made so far, to order them as they came
	overflow uint64 // problem flows past maxGroups
	verdicts [classifier.NumVerdicts]uint64
	reasons  [classifier.NumReasons]uint64
	first    int64
	last     int64
	evicted  uint64
	clients  int // distinct clients remembered, over all groups
	// timeline counts flows by verdict over time, grid by the role pair
	// of their rule: fixed arrays, so the picture of a capture costs the
	// same memory whatever its size, and nothing per flow.
	timeline timeline
	grid     [gridClients][gridServers][gridVerdicts]uint64
}

type ruleCounts struct {
	allowed, blocked, unexpected, pending uint64
	lastWorking                           int64
}

func (rc ruleCounts) total() uint64 { return rc.allowed + rc.blocked + rc.unexpected + rc.pending }

// groupKey groups problem flows the way an administrator fixes them: one
// server port of one host failing in one way (and, for an ICMP error, sent
// by one device), whichever clients tried.
type groupKey struct {
	verdict            classifier.Verdict
	reason             classifier.Reason
	outcome            classifier.Outcome
	rule               int32
	transport          policy.Transport
	server             [16]byte
	port               uint16
	icmp               bool
	icmpType, icmpCode uint8
	icmpSrc            [16]byte
	// What payload inspection said: the protocol seen (a mismatch), and
	// what announced the port.
	app   dissect.App
	via   classifier.Via
	iface dissect.Interface
}

// group is the problem flows of one groupKey.
type group struct {
	order       uint64
	flows       uint64
	first, last int64
	connState   classifier.ConnState
	history     string
	// serverRoles are the roles the server had in the group's first flow.
	serverRoles policy.RoleSet
	// clients are the distinct clients in order of appearance, the roles
	// they had then and their flows; complete unless capped.
	clients   []client
	seen      map[[16]byte]int // client address → its index in clients
	capped    bool             // past maxClients: clients holds the first ones only
	clientSet policy.RoleSet
	// instance is the SQL Server instance SQL Browser announced the port
	// for, in the group's first flow.
	instance string
}

type client struct {
	addr  [16]byte
	roles policy.RoleSet
	flows uint64
}

// NewSummary aggregates flows classified against rules.
func NewSummary(rules []policy.Rule) *Summary {
	return &Summary{rules: rules, perRule: make([]ruleCounts, len(rules)), groups: make(map[groupKey]*group)}
}

// SetRules replaces the rules flows are counted against, for a daemon
// whose reloads keep rule numbers stable: the list may only grow, and a
// number keeps naming the same rule id (see daemon's livePolicy).
func (s *Summary) SetRules(rules []policy.Rule) {
	s.rules = rules
	for len(s.perRule) < len(rules) {
		s.perRule = append(s.perRule, ruleCounts{})
	}
}

// Decided implements classifier.Sink; the summary counts final verdicts.
func (s *Summary) Decided(*classifier.FlowRecord) {}

// Working moves the last working time of an allowed flow's rule, for a
// daemon that counts flows when they are decided and sees long sessions
// go on working after that.
func (s *Summary) Working(r *classifier.FlowRecord) {
	if r.Verdict == classifier.Allowed && r.Rule >= 0 && int(r.Rule) < len(s.perRule) {
		rc := &s.perRule[r.Rule]
		rc.lastWorking = max(rc.lastWorking, r.Last)
	}
}

// Final implements classifier.Sink.
func (s *Summary) Final(r *classifier.FlowRecord) {
	if int(r.Verdict) < len(s.verdicts) {
		s.verdicts[r.Verdict]++
	}
	if int(r.Reason) < len(s.reasons) {
		s.reasons[r.Reason]++
	}
	if r.Evicted {
		s.evicted++
	}
	if s.first == 0 || r.First < s.first {
		s.first = r.First
	}
	s.last = max(s.last, r.Last)
	s.timeline.add(r.First, r.Verdict)
	if r.Verdict == classifier.Ignored {
		return
	}
	rc := &s.noRule
	if r.Rule >= 0 && int(r.Rule) < len(s.perRule) {
		rc = &s.perRule[r.Rule]
	}
	s.countPair(r)
	switch r.Verdict {
	case classifier.Allowed:
		rc.allowed++
		rc.lastWorking = max(rc.lastWorking, r.Last)
		return
	case classifier.Pending:
		rc.pending++
		return
	case classifier.Blocked:
		rc.blocked++
	case classifier.Unexpected:
		rc.unexpected++
	default:
		return
	}
	k := groupKey{verdict: r.Verdict, reason: r.Reason, rule: r.Rule, transport: r.Transport,
		server: r.Server, port: r.ServerPort, icmp: r.ICMP, icmpType: r.ICMPType, icmpCode: r.ICMPCode}
	if r.Verdict == classifier.Unexpected {
		k.outcome = r.Outcome
	}
	if r.ICMP {
		k.icmpSrc = r.ICMPSrc
	}
	if r.Reason == classifier.ProtocolMismatch {
		k.app = r.App
	}
	k.via, k.iface = r.Via, r.Interface
	g := s.groups[k]
	if g == nil {
		if len(s.groups) >= maxGroups {
			s.overflow++
			return
		}
		s.order++
		g = &group{order: s.order, first: r.First, connState: r.ConnState, history: r.HistoryString(),
			serverRoles: r.ServerRoles, seen: map[[16]byte]int{}, instance: r.InstanceName()}
		s.groups[k] = g
	}
	g.flows++
	g.first, g.last = min(g.first, r.First), max(g.last, r.Last)
	s.addClient(g, r.Client, r.ClientRoles)
}

// Grid dimensions: a row per client role (slot 0 for a client with no
// role, the last for rules that admit any client), a column per server
// role (slot 0: no role), and the verdicts a cell counts.
const (
	gridClients  = 33
	gridServers  = 32
	anyClient    = gridClients - 1
	gridVerdicts = 4 // allowed, blocked, unexpected, pending: see gridVerdict
)

// gridVerdict is the index of a verdict in a grid cell, or -1.
func gridVerdict(v classifier.Verdict) int {
	switch v {
	case classifier.Allowed:
		return 0
	case classifier.Blocked:
		return 1
	case classifier.Unexpected:
		return 2
	case classifier.Pending:
		return 3
	}
	return -1
}

// countPair counts a flow in the grid, in its rule's role pair, or, with
// no rule, in the pair of its ends' first roles.
func (s *Summary) countPair(r *classifier.FlowRecord) {
	v := gridVerdict(r.Verdict)
	if v < 0 {
		return
	}
	var c, sv int
	if r.Rule >= 0 && int(r.Rule) < len(s.rules) {
		rule := &s.rules[r.Rule]
		c, sv = int(rule.Client), int(rule.Server)
		if rule.AnyClient {
			c = anyClient
		}
	} else {
		c, sv = firstRole(r.ClientRoles), firstRole(r.ServerRoles)
	}
	if c < gridClients && sv < gridServers {
		s.grid[c][sv][v]++
	}
}

// firstRole is the slot of a role set's first role, 0 when it is empty.
func firstRole(set policy.RoleSet) int {
	if set == 0 {
		return 0
	}
	return bits.TrailingZeros32(uint32(set))
}

func (s *Summary) addClient(g *group, a [16]byte, roles policy.RoleSet) {
	g.clientSet |= roles
	if i, ok := g.seen[a]; ok {
		g.clients[i].flows++
		return
	}
	if s.clients >= maxClients {
		g.capped = true
		return
	}
	s.clients++
	g.seen[a] = len(g.clients)
	g.clients = append(g.clients, client{addr: a, roles: roles, flows: 1})
}

// Problems is the number of blocked and unexpected flows.
func (s *Summary) Problems() uint64 {
	return s.verdicts[classifier.Blocked] + s.verdicts[classifier.Unexpected]
}

// Verdicts returns the number of flows of each verdict (indexed by
// classifier.Verdict).
func (s *Summary) Verdicts() [classifier.NumVerdicts]uint64 { return s.verdicts }
