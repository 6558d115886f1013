package report

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/dissect"
	"github.com/tpwatch/tpwatch/policy"
)

// Header describes the input of a report, for its first lines.
type Header struct {
	Files   []string
	Packets uint64
	// Inventory says where the roles came from, in one line.
	Inventory string
	// Problems are what went wrong reading the input (a truncated or
	// unreadable file): named at the top, so that a report pasted into a
	// ticket does not look complete when it is not.
	Problems []string
	// Undecided is what an inferred inventory could not decide.
	Undecided []string
	// Roles gives the roles a host holds in the final inventory, so that
	// a host shows one role set throughout; nil keeps the roles the
	// flows had when they were decided.
	Roles func(addr [16]byte) policy.RoleSet

	// Version is tpwatch's, Matrix names the matrix in force.
	Version, Matrix string
	// Inferred says the inventory was learned from the traffic. Hosts
	// are its hosts (configured addresses and prefixes, or those
	// learned, with the evidence), sorted and cut at a bound; MoreHosts
	// counts the rest. InventoryRoles are the roles some host holds.
	Inferred       bool
	Hosts          []InventoryHost
	MoreHosts      int
	InventoryRoles policy.RoleSet
	// Captures are the health of what was read: one entry for a replay,
	// one per interface for the daemon.
	Captures []CaptureHealth
	// LocalRoles, when set, are the roles of the host a daemon runs on:
	// the rules not seen are then listed only when they concern it.
	LocalRoles policy.RoleSet
}

// InventoryHost is one entry of the inventory: an address or a prefix, its
// roles, and for a learned one the evidence, a line a role.
type InventoryHost struct {
	Prefix   netip.Prefix
	Roles    policy.RoleSet
	Evidence []string
}

// CaptureHealth is what a capture read and could not: a report built on a
// lossy capture must say so.
type CaptureHealth struct {
	Name                              string
	Up                                bool // live captures: capturing now
	Live                              bool
	Packets, Bytes, NotIP             uint64
	Truncated, Malformed, Unsupported uint64
	KernelDrops, InterfaceDrops       uint64
}

// DecodeErrors is the number of packets whose headers could not be read.
func (c *CaptureHealth) DecodeErrors() uint64 { return c.Truncated + c.Malformed + c.Unsupported }

// View is what a report shows, computed from a Summary: the data of the
// terminal table and of the HTML page alike, every list bounded.
type View struct {
	Header      Header
	First, Last time.Time
	Flows       uint64
	Verdicts    [classifier.NumVerdicts]uint64
	// Reasons counts the flows by reason (indexed by classifier.Reason).
	Reasons [classifier.NumReasons]uint64
	// Rules are the rules that saw flows, the worst first; Unlisted counts
	// those of the matrix that saw none, and Unseen are their rows, in
	// matrix order (those of the host's roles only when
	// Header.LocalRoles is set).
	Rules    []RuleRow
	Unlisted int
	Unseen   []RuleRow
	// Timeline is the flows by verdict over time; Grid, the matrix as
	// client role × server role, with what was seen in each pair.
	Timeline Timeline
	Grid     Grid
	// ToOpen are the blocked flows the network dropped (no answer, an
	// ICMP error): what to open on which firewall. Refused are the blocked
	// flows a server reset. Unexpected are the unexpected flows, those
	// that got in first.
	ToOpen, Refused, Unexpected []Problem
	// Hosts are the hosts of the problems, for the per-host view, those
	// with the most problem flows first.
	Hosts []HostView
	// MoreToOpen, MoreRefused and MoreUnexpected count the problems
	// beyond the limit the view was made with; Overflow counts problem
	// flows the summary could not group (its memory bound); Evicted the
	// flows a full flow table ended early.
	MoreToOpen, MoreRefused, MoreUnexpected int
	MoreHosts                               int
	Overflow, Evicted                       uint64
}

// RuleRow is one rule's line: what its flows did.
type RuleRow struct {
	ID                                    string // "" for flows no rule matched
	Client                                string // a role, or "any"
	Server                                string
	Ports                                 string // "tcp/3741"
	Feature                               string
	Section                               string
	Description                           string
	Status                                Status
	Allowed, Blocked, Unexpected, Pending uint64
	LastWorking                           time.Time // zero when never seen working

	clientRole, serverRole policy.Role
	anyClient              bool
}

// concerns reports whether a host holding roles takes part in the rule's
// flows.
func (r *RuleRow) concerns(roles policy.RoleSet) bool {
	return roles.Has(r.serverRole) || r.anyClient || roles.Has(r.clientRole)
}

// Status is a rule's state in a report: the worst of its flows.
type Status uint8

const (
	StatusOK Status = iota
	StatusPending
	StatusUnexpected
	StatusBlocked
	// StatusNotSeen is a rule of the matrix no flow of the capture used.
	StatusNotSeen
)

func (s Status) String() string {
	if s > StatusNotSeen {
		return "invalid"
	}
	return [...]string{"ok", "PENDING", "UNEXPECTED", "BLOCKED", "not seen"}[s]
}

// Endpoint is a host and the roles it holds.
type Endpoint struct {
	Addr  netip.Addr
	Roles policy.RoleSet
}

// Problem is a group of blocked or unexpected flows: one server port of
// one host failing (or reached) in one way, and the clients that tried.
type Problem struct {
	Verdict   classifier.Verdict
	Reason    classifier.Reason
	Outcome   classifier.Outcome // unexpected flows
	Rule      string             // "" when no rule
	Section   string
	Transport policy.Transport
	Port      uint16
	Server    Endpoint
	Flows     uint64
	First     time.Time
	Last      time.Time
	// Clients are the first clients, in order of appearance; ClientCount
	// is how many distinct clients there were (a lower bound when
	// ClientsAtLeast), ClientRoles the roles they hold.
	Clients        []Endpoint
	ClientCount    int
	ClientsAtLeast bool
	ClientRoles    policy.RoleSet
	ConnState      string
	History        string
	// ICMP is set when an ICMP error decided the flows: its type, code
	// and what it means, and the device that sent it.
	ICMP               bool
	ICMPType, ICMPCode uint8
	ICMPSrc            netip.Addr
	// App is the protocol a protocol_mismatch carried, Expected what its
	// port should carry ("tls, http2 or grpc").
	App      dissect.App
	Expected string
	// Via says what announced the port (epm, dcom, ssrp) or that only the
	// rule's range admits it; Interface is the RPC interface an endpoint
	// mapper named, Instance the SQL Server instance SQL Browser named.
	Via       classifier.Via
	Interface dissect.Interface
	Instance  string
}

// Announcement says, in words, what told the clients to use the
// problem's port: "the endpoint mapper of 192.0.2.5 (drsuapi)". Empty when
// nothing did.
func (p *Problem) Announcement() string {
	switch p.Via {
	case classifier.ViaEPM:
		return fmt.Sprintf("announced by the endpoint mapper of %s (%s)", p.Server.Addr, p.Interface)
	case classifier.ViaDCOM:
		return fmt.Sprintf("announced by a DCOM activation on %s", p.Server.Addr)
	case classifier.ViaSSRP:
		return fmt.Sprintf("announced by SQL Server Browser on %s for instance %q", p.Server.Addr, p.Instance)
	case classifier.ViaRange:
		return "in the rule's dynamic range; no endpoint mapper answer named it"
	}
	return ""
}

// ICMPMeaning says what the problem's ICMP error means.
func (p *Problem) ICMPMeaning() string { return icmpMeaning(p.ICMPType, p.ICMPCode) }

// HostView is one host's problems: what it could not reach or reached
// unexpectedly as a client, and what could not reach it or reached it
// unexpectedly as a server.
type HostView struct {
	Host         Endpoint
	AsClient     []Problem
	AsServer     []Problem
	Flows        uint64 // problem flows it took part in
	MoreAsClient int
	MoreAsServer int
}

// clientsListed is how many clients of a problem a view keeps.
const clientsListed = 8

// Limits bound the lists of a view (0: no limit): the problems of each
// kind, the hosts, and each host's problems as client and as server.
type Limits struct {
	Problems, Hosts, PerHost int
}

// View computes the view of what the summary holds, each list of problems
// and hosts cut at limit (0: no limit).
func (s *Summary) View(h Header, limit int) *View {
	return s.ViewLimits(h, Limits{Problems: limit, Hosts: limit, PerHost: limit})
}

// ViewLimits is View with a bound for each kind of list.
func (s *Summary) ViewLimits(h Header, l Limits) *View {
	roles := h.Roles
	v := &View{Header: h, Verdicts: s.verdicts, Overflow: s.overflow, Evicted: s.evicted}
	for _, n := range s.verdicts {
		v.Flows += n
	}
	if s.first != 0 {
		v.First, v.Last = time.Unix(0, s.first).UTC(), time.Unix(0, s.last).UTC()
	}
	v.Rules, v.Unseen = s.ruleRows()
	v.Unlisted = len(v.Unseen)
	if local := h.LocalRoles; local != 0 {
		// A daemon on one host shows the rules of that host's roles only.
		v.Unseen = slices.DeleteFunc(v.Unseen, func(r RuleRow) bool { return !r.concerns(local) })
	}
	v.Reasons = s.reasons
	v.Timeline = s.timeline.view()
	v.Grid = s.gridView(h)

	type keyed struct {
		k groupKey
		g *group
	}
	all := make([]keyed, 0, len(s.groups))
	for k, g := range s.groups {
		all = append(all, keyed{k, g})
	}
	// Most flows first; ties in the order they came, which the input
	// alone decides.
	slices.SortFunc(all, func(a, b keyed) int {
		return cmp.Or(cmp.Compare(b.g.flows, a.g.flows), cmp.Compare(a.g.order, b.g.order))
	})
	hosts := map[netip.Addr]*HostView{}
	host := func(e Endpoint) *HostView {
		hv := hosts[e.Addr]
		if hv == nil {
			hv = &HostView{Host: e}
			hosts[e.Addr] = hv
		}
		return hv
	}
	for _, kg := range all {
		p := s.problem(kg.k, kg.g, roles)
		switch {
		case p.Verdict == classifier.Unexpected:
			v.Unexpected = append(v.Unexpected, p)
		case p.Reason == classifier.Refused:
			v.Refused = append(v.Refused, p)
		default:
			v.ToOpen = append(v.ToOpen, p)
		}
		sv := host(p.Server)
		sv.AsServer = append(sv.AsServer, p)
		sv.Flows += p.Flows
		for _, c := range kg.g.clients {
			cv := host(endpoint(c.addr, c.roles, roles))
			q := p
			q.Clients, q.ClientCount, q.ClientsAtLeast, q.ClientRoles, q.Flows = []Endpoint{cv.Host}, 1, false, cv.Host.Roles, c.flows
			cv.AsClient = append(cv.AsClient, q)
			cv.Flows += c.flows
		}
	}
	// Unexpected flows that got in before those that were turned away.
	slices.SortStableFunc(v.Unexpected, func(a, b Problem) int {
		return cmp.Compare(outcomeRank(a.Outcome), outcomeRank(b.Outcome))
	})
	v.ToOpen, v.MoreToOpen = cut(v.ToOpen, l.Problems)
	v.Refused, v.MoreRefused = cut(v.Refused, l.Problems)
	v.Unexpected, v.MoreUnexpected = cut(v.Unexpected, l.Problems)

	for _, hv := range hosts {
		v.Hosts = append(v.Hosts, *hv)
	}
	slices.SortFunc(v.Hosts, func(a, b HostView) int {
		return cmp.Or(cmp.Compare(b.Flows, a.Flows), a.Host.Addr.Compare(b.Host.Addr))
	})
	v.Hosts, v.MoreHosts = cut(v.Hosts, l.Hosts)
	for i := range v.Hosts {
		hv := &v.Hosts[i]
		hv.AsClient, hv.MoreAsClient = cut(hv.AsClient, l.PerHost)
		hv.AsServer, hv.MoreAsServer = cut(hv.AsServer, l.PerHost)
	}
	return v
}

// outcomeRank orders unexpected outcomes: the flows that got in first.
func outcomeRank(o classifier.Outcome) int {
	if o == classifier.OutcomeWorked {
		return 0
	}
	return 1
}

func cut[T any](list []T, limit int) ([]T, int) {
	if limit <= 0 || len(list) <= limit {
		return list, 0
	}
	return list[:limit], len(list) - limit
}

// endpoint is a host with the roles the final inventory gives it, or, when
// there is none, those it had.
func endpoint(addr [16]byte, had policy.RoleSet, roles func([16]byte) policy.RoleSet) Endpoint {
	if roles != nil {
		had = roles(addr)
	}
	return Endpoint{Addr: netip.AddrFrom16(addr).Unmap(), Roles: had}
}

func (s *Summary) problem(k groupKey, g *group, roles func([16]byte) policy.RoleSet) Problem {
	p := Problem{
		Verdict: k.verdict, Reason: k.reason, Outcome: k.outcome,
		Transport: k.transport, Port: k.port,
		Flows:       g.flows,
		First:       time.Unix(0, g.first).UTC(),
		Last:        time.Unix(0, g.last).UTC(),
		ClientCount: len(g.clients), ClientsAtLeast: g.capped,
		ConnState: g.connState.String(), History: g.history,
		ICMP: k.icmp, ICMPType: k.icmpType, ICMPCode: k.icmpCode,
	}
	if k.icmp {
		p.ICMPSrc = netip.AddrFrom16(k.icmpSrc).Unmap()
	}
	p.App, p.Via, p.Interface, p.Instance = k.app, k.via, k.iface, g.instance
	if k.rule >= 0 && int(k.rule) < len(s.rules) {
		p.Rule, p.Section = s.rules[k.rule].ID, s.rules[k.rule].Section
		if k.reason == classifier.ProtocolMismatch {
			p.Expected = expectedText(s.rules[k.rule].ID, k.port)
		}
	}
	for _, c := range g.clients {
		e := endpoint(c.addr, c.roles, roles)
		p.ClientRoles |= e.Roles
		if len(p.Clients) < clientsListed {
			p.Clients = append(p.Clients, e)
		}
	}
	if roles == nil {
		p.ClientRoles = g.clientSet
	}
	p.Server = endpoint(k.server, g.serverRoles, roles)
	return p
}

// expectedText says what a rule's port should carry: "tls, http2 or grpc".
func expectedText(ruleID string, port uint16) string {
	exp, ok := dissect.ExpectedApps(ruleID, port)
	if !ok {
		return ""
	}
	var names []string
	for a := dissect.AppNone; a < 64; a++ {
		if exp.Apps.Has(a) {
			names = append(names, a.String())
		}
	}
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// ruleRows returns the rows of the rules that saw flows, the worst first
// and the matrix order within each status, and those of the rules that saw
// none, in matrix order.
func (s *Summary) ruleRows() (seen, unseen []RuleRow) {
	for i := range s.rules {
		rc := s.perRule[i]
		r := &s.rules[i]
		row := RuleRow{ID: r.ID, Client: r.ClientName(), Server: r.Server.String(),
			Ports: portsText(r), Feature: r.Feature, Section: r.Section, Description: r.Description,
			serverRole: r.Server, clientRole: r.Client, anyClient: r.AnyClient}
		if rc.total() == 0 {
			row.Status = StatusNotSeen
			unseen = append(unseen, row)
			continue
		}
		row.Status, row.Allowed, row.Blocked, row.Unexpected, row.Pending = status(rc), rc.allowed, rc.blocked, rc.unexpected, rc.pending
		if rc.lastWorking != 0 {
			row.LastWorking = time.Unix(0, rc.lastWorking).UTC()
		}
		seen = append(seen, row)
	}
	if rc := s.noRule; rc.total() > 0 {
		seen = append(seen, RuleRow{Status: status(rc), Allowed: rc.allowed, Blocked: rc.blocked, Unexpected: rc.unexpected, Pending: rc.pending})
	}
	slices.SortStableFunc(seen, func(a, b RuleRow) int { return cmp.Compare(b.Status, a.Status) })
	return seen, unseen
}

func status(rc ruleCounts) Status {
	switch {
	case rc.blocked > 0:
		return StatusBlocked
	case rc.unexpected > 0:
		return StatusUnexpected
	case rc.pending > 0 && rc.allowed == 0:
		// Attempts cut off by the end of the capture say nothing bad
		// about a rule already seen working.
		return StatusPending
	}
	return StatusOK
}

// icmpMeaning names the common destination-unreachable codes (ICMPv4 type
// 3, ICMPv6 type 1), which is what an administrator needs to know to find
// the device that refused.
func icmpMeaning(typ, code uint8) string {
	if typ == 3 {
		switch code {
		case 0:
			return "net unreachable"
		case 1:
			return "host unreachable"
		case 2:
			return "protocol unreachable"
		case 3:
			return "port unreachable"
		case 9:
			return "network administratively prohibited"
		case 10:
			return "host administratively prohibited"
		case 13:
			return "communication administratively prohibited"
		}
		return "destination unreachable"
	}
	switch code {
	case 0:
		return "no route to destination"
	case 1:
		return "administratively prohibited"
	case 3:
		return "address unreachable"
	case 4:
		return "port unreachable"
	case 5:
		return "source address failed ingress/egress policy"
	case 6:
		return "reject route to destination"
	}
	return "destination unreachable"
}

// portsText names a rule's ports as the report shows them: "tcp/3741";
// a rule whose server announces its port adds "or announced", since its
// flows may go elsewhere than the ports listed (the endpoint mapper's
// answers, SQL Server Browser's).
func portsText(r *policy.Rule) string {
	s := r.Transport.String() + "/" + r.PortsString()
	if r.Announced != policy.AnnounceNone {
		s += " or announced"
	}
	return s
}
