package classifier

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/policy"
)

// The test inventory: an Enterprise Manager, an agent, an admin console,
// and anything else unknown.
var (
	emAddr      = "10.0.0.1"
	agentAddr   = "10.0.0.2"
	consoleAddr = "10.0.0.3"
	em6Addr     = "2001:db8::1"
	agent6Addr  = "2001:db8::2"
)

// Test rules, indexed as in a policy's rule list.
const (
	ruleAgentToEM   = 0 // tcp agent → enterprise-manager 3741
	ruleEventStream = 1 // udp agent → enterprise-manager 10001, one way
	ruleDNSLike     = 2 // udp agent → enterprise-manager 5353, reply expected
	ruleWMI         = 3 // tcp enterprise-manager → agent 135, feature off
	ruleDynamic     = 4 // tcp enterprise-manager → agent 49152-65535
)

// fakeMatcher is a small policy: a few rules keyed by port, roles by
// address. With log set it records the calls it gets.
type fakeMatcher struct {
	roles  map[[16]byte]policy.RoleSet
	log    bool
	learns bool // an inferred inventory: 3741 teaches (see Learn)
	calls  []string
}

func addr(s string) [16]byte { return netip.MustParseAddr(s).As16() }

func newFakeMatcher() *fakeMatcher {
	return &fakeMatcher{roles: map[[16]byte]policy.RoleSet{
		addr(emAddr):      policy.RoleSet(0).With(policy.EnterpriseManager),
		addr(em6Addr):     policy.RoleSet(0).With(policy.EnterpriseManager),
		addr(agentAddr):   policy.RoleSet(0).With(policy.Agent),
		addr(agent6Addr):  policy.RoleSet(0).With(policy.Agent),
		addr(consoleAddr): policy.RoleSet(0).With(policy.AdminConsole),
		addr("10.0.0.4"):  policy.RoleSet(0).With(policy.EnterpriseManager).With(policy.Agent),
	}}
}

func (f *fakeMatcher) note(format string, args ...any) {
	if f.log {
		f.calls = append(f.calls, fmt.Sprintf(format, args...))
	}
}

func (f *fakeMatcher) Roles(a [16]byte) policy.RoleSet { return f.roles[a] }

func (f *fakeMatcher) Learns(tr policy.Transport, port uint16) bool { return f.learns }

// Learn records the evidence of a flow and, like an inventory learning
// the roles of one rule, makes the server of a 3741 flow that answered an
// Enterprise Manager and its client an agent once the flow worked.
func (f *fakeMatcher) Learn(fl policy.Flow, ev policy.Evidence) {
	if f.log {
		f.note("learn %v %v %v %d ev=%d", fl.Transport, netip.AddrFrom16(fl.Client).Unmap(), netip.AddrFrom16(fl.Server).Unmap(), fl.Port, ev)
	}
	if !f.learns || fl.Transport != policy.TCP || fl.Port != 3741 {
		return
	}
	if ev&policy.ServerAnswered != 0 {
		f.roles[fl.Server] = f.roles[fl.Server].With(policy.EnterpriseManager)
	}
	if ev&policy.ClientCompleted != 0 {
		f.roles[fl.Client] = f.roles[fl.Client].With(policy.Agent)
	}
}

// Rule returns a rule of the fake policy: rule 0 (agent → EM 3741) is
// agent-em-grpc, whose protocol dissect knows; rule 5 is the Threat
// Manager's dynamic RPC rule, whose ports an endpoint mapper announces.
func (f *fakeMatcher) Rule(i int32) *policy.Rule {
	switch i {
	case 0:
		return &policy.Rule{ID: "agent-em-grpc", Client: policy.Agent, Server: policy.EnterpriseManager, Transport: policy.TCP, Ports: []policy.PortRange{{Low: 3741, High: 3741}}}
	case ruleDynamic:
		return &policy.Rule{ID: "em-agent-wmi-dcom", Client: policy.EnterpriseManager, Server: policy.Agent, Transport: policy.TCP,
			Ports: []policy.PortRange{{Low: 49152, High: 65535}}, Announced: policy.AnnounceRPC}
	case fakeDynamicRule:
		return &policy.Rule{ID: "tm-dc-rpc-dynamic", Client: policy.ThreatManager, Server: policy.DomainController, Transport: policy.TCP,
			Ports: []policy.PortRange{{Low: 49152, High: 65535}}, Announced: policy.AnnounceRPC}
	case fakeSQLRule:
		return &policy.Rule{ID: "em-sql-tds", Client: policy.EnterpriseManager, Server: policy.SQLServer, Transport: policy.TCP,
			Ports: []policy.PortRange{{Low: 1433, High: 1433}}, Announced: policy.AnnounceSQLBrowser}
	}
	return nil
}

// The numbers of the fake policy's rules that only announcements reach:
// the Threat Manager's dynamic RPC to a domain controller, and the
// Enterprise Manager's SQL connection.
const (
	fakeDynamicRule = 5
	fakeSQLRule     = 6
)

// MatchAnnounced admits a Threat Manager to a domain controller's
// announced RPC port, and an Enterprise Manager to a SQL Server's
// announced instance port.
func (f *fakeMatcher) MatchAnnounced(fl policy.Flow, a policy.Announce) (policy.Match, bool) {
	switch {
	case fl.Transport != policy.TCP:
	case a == policy.AnnounceRPC && fl.ClientRoles.Has(policy.ThreatManager) && fl.ServerRoles.Has(policy.DomainController):
		return policy.Match{Kind: policy.MatchAllowed, Rule: fakeDynamicRule}, true
	case a == policy.AnnounceSQLBrowser && fl.ClientRoles.Has(policy.EnterpriseManager) && fl.ServerRoles.Has(policy.SQLServer):
		return policy.Match{Kind: policy.MatchAllowed, Rule: fakeSQLRule}, true
	}
	return policy.Match{Kind: policy.MatchIgnored, Rule: -1}, false
}

// MatchAttempt takes an unknown client of an Enterprise Manager's 3741 for
// an agent, when learning.
func (f *fakeMatcher) MatchAttempt(fl policy.Flow) policy.Match {
	if f.learns && fl.ClientRoles == 0 && fl.Transport == policy.TCP && fl.Port == 3741 && fl.ServerRoles.Has(policy.EnterpriseManager) {
		fl.ClientRoles = fl.ClientRoles.With(policy.Agent)
	}
	return f.Match(fl)
}

func (f *fakeMatcher) ServerPortScore(tr policy.Transport, port uint16, roles policy.RoleSet) int {
	switch {
	case roles.Has(policy.EnterpriseManager) && (tr == policy.TCP && port == 3741 || tr == policy.UDP && (port == 10001 || port == 5353)):
		return policy.ScoreNamed
	case roles.Has(policy.Agent) && (tr == policy.TCP && port == 135):
		return policy.ScoreNamed
	case port < 1024:
		return policy.ScoreWellKnown
	case roles.Has(policy.Agent) && tr == policy.TCP && port >= 49152:
		return policy.ScoreRange
	}
	return policy.ScoreNone
}

func (f *fakeMatcher) Match(fl policy.Flow) policy.Match {
	tr, client, server, port := fl.Transport, fl.ClientRoles, fl.ServerRoles, fl.Port
	if f.log {
		f.note("match %v %d", tr, port)
	}
	type rule struct {
		id             int32
		tr             policy.Transport
		client, server policy.Role
		low, high      uint16
		enabled        bool
	}
	rules := []rule{
		{ruleAgentToEM, policy.TCP, policy.Agent, policy.EnterpriseManager, 3741, 3741, true},
		{ruleEventStream, policy.UDP, policy.Agent, policy.EnterpriseManager, 10001, 10001, true},
		{ruleDNSLike, policy.UDP, policy.Agent, policy.EnterpriseManager, 5353, 5353, true},
		{ruleWMI, policy.TCP, policy.EnterpriseManager, policy.Agent, 135, 135, false},
		{ruleDynamic, policy.TCP, policy.EnterpriseManager, policy.Agent, 49152, 65535, true},
	}
	for _, r := range rules {
		if r.tr != tr || port < r.low || port > r.high || !server.Has(r.server) {
			continue
		}
		if !client.Has(r.client) {
			return policy.Match{Kind: policy.MatchUnauthorizedClient, Rule: r.id}
		}
		if !r.enabled {
			return policy.Match{Kind: policy.MatchFeatureDisabled, Rule: r.id}
		}
		return policy.Match{Kind: policy.MatchAllowed, Rule: r.id}
	}
	if client != 0 && server != 0 {
		return policy.Match{Kind: policy.MatchNoRule, Rule: -1}
	}
	return policy.Match{Kind: policy.MatchIgnored, Rule: -1}
}

func (f *fakeMatcher) Reply(rule int32) bool { return rule == ruleDNSLike }

// recorder is a Sink that keeps a line per call and checks that every flow
// is decided exactly once, before its single Final.
type recorder struct {
	t       testing.TB
	lines   []string
	finals  []FlowRecord
	decided map[string]int
}

func newRecorder(t testing.TB) *recorder { return &recorder{t: t, decided: map[string]int{}} }

func flowID(r *FlowRecord) string {
	return fmt.Sprintf("%s@%d", endpoints(r), r.First)
}

func endpoints(r *FlowRecord) string {
	return fmt.Sprintf("%v %v:%d>%v:%d", r.Transport, netip.AddrFrom16(r.Client).Unmap(), r.ClientPort,
		netip.AddrFrom16(r.Server).Unmap(), r.ServerPort)
}

func (s *recorder) Decided(r *FlowRecord) {
	if r.Verdict == VerdictUndecided {
		s.t.Errorf("Decided without a verdict: %s", describe(r))
	}
	id := flowID(r)
	s.decided[id]++
	if s.decided[id] > 1 {
		s.t.Errorf("flow decided twice: %s", describe(r))
	}
	s.lines = append(s.lines, "decided "+describe(r))
}

func (s *recorder) Final(r *FlowRecord) {
	id := flowID(r)
	if s.decided[id] != 1 {
		s.t.Errorf("final of a flow decided %d times: %s", s.decided[id], describe(r))
	}
	delete(s.decided, id)
	s.lines = append(s.lines, "final "+describe(r))
	s.finals = append(s.finals, *r)
}

// describe is the one-line summary the scenarios compare.
func describe(r *FlowRecord) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", endpoints(r), r.Verdict)
	if r.Reason != ReasonNone {
		fmt.Fprintf(&b, "/%s", r.Reason)
	}
	if r.Verdict == Unexpected {
		fmt.Fprintf(&b, " outcome=%s", r.Outcome)
	}
	fmt.Fprintf(&b, " rule=%d %s %q out=%d/%d in=%d/%d", r.Rule, r.ConnState, r.HistoryString(),
		r.PacketsOut, r.BytesOut, r.PacketsIn, r.BytesIn)
	if r.ICMP {
		fmt.Fprintf(&b, " icmp=%d/%d from %s", r.ICMPType, r.ICMPCode, netip.AddrFrom16(r.ICMPSrc).Unmap())
	}
	if r.Evicted {
		b.WriteString(" evicted")
	}
	return b.String()
}

// t0 is the scenarios' time origin.
const t0 = int64(1_700_000_000) * int64(time.Second)

func at(d time.Duration) int64 { return t0 + int64(d) }

// Packet builders. Every packet is 100 bytes on the wire unless said.
const wire = 100

func tcpPkt(ts time.Duration, src string, sport uint16, dst string, dport uint16, flags uint8, payload uint32) capture.Packet {
	p := ipPkt(ts, src, dst, capture.ProtoTCP)
	p.SrcPort, p.DstPort, p.TCPFlags, p.PayloadLen = sport, dport, flags, payload
	return p
}

func udpPkt(ts time.Duration, src string, sport uint16, dst string, dport uint16, payload uint32) capture.Packet {
	p := ipPkt(ts, src, dst, capture.ProtoUDP)
	p.SrcPort, p.DstPort, p.PayloadLen = sport, dport, payload
	return p
}

func ipPkt(ts time.Duration, src, dst string, proto uint8) capture.Packet {
	s := netip.MustParseAddr(src)
	v := uint8(4)
	if !s.Is4() {
		v = 6
	}
	return capture.Packet{TS: at(ts), WireLen: wire, IPVersion: v, Proto: proto, Src: addr(src), Dst: addr(dst)}
}

// confirm is a packet no flow takes (an ICMP echo) at ts. After a gap of
// more than a second the packet clock holds a packet until the next one
// confirms its time (clockStep): a scenario without Flush whose last packet
// comes after a gap ends with this one.
func confirm(ts time.Duration) capture.Packet {
	p := ipPkt(ts, X, Y, capture.ProtoICMP)
	p.ICMPType = 8
	return p
}

// icmpErr is an ICMP (or ICMPv6) destination unreachable from router about
// the packet q.
func icmpErr(ts time.Duration, router string, typ, code uint8, q capture.Packet) capture.Packet {
	proto := uint8(capture.ProtoICMP)
	if q.IPVersion == 6 {
		proto = capture.ProtoICMPv6
	}
	p := ipPkt(ts, router, netip.AddrFrom16(q.Src).Unmap().String(), proto)
	p.ICMPType, p.ICMPCode = typ, code
	p.Quoted, p.QProto = true, q.Proto
	p.QSrc, p.QDst, p.QSrcPort, p.QDstPort = q.Src, q.Dst, q.SrcPort, q.DstPort
	return p
}

const (
	syn    = capture.TCPSyn
	synack = capture.TCPSyn | capture.TCPAck
	ack    = capture.TCPAck
	pshack = capture.TCPPsh | capture.TCPAck
	finack = capture.TCPFin | capture.TCPAck
	rst    = capture.TCPRst
	rstack = capture.TCPRst | capture.TCPAck
)

// testOptions are short, round timeouts.
func testOptions() Options {
	return Options{
		AttemptTimeout:  30 * time.Second,
		UDPReplyTimeout: 10 * time.Second,
		TCPIdle:         5 * time.Minute,
		UDPIdle:         time.Minute,
		TCPClosed:       5 * time.Second,
		MaxFlows:        1024,
		InitialFlows:    16,
	}
}

// run feeds the packets to a fresh table and, when flush >= 0, flushes at
// t0+flush.
func run(t testing.TB, opts Options, pkts []capture.Packet, flush time.Duration) (*recorder, *Table) {
	rec := newRecorder(t)
	tab := NewTable(opts, newFakeMatcher(), rec)
	for i := range pkts {
		tab.Process(&pkts[i])
	}
	if flush >= 0 {
		tab.Flush(at(flush))
		if len(rec.decided) != 0 {
			t.Errorf("decided flows without a Final after Flush: %v", rec.decided)
		}
	}
	return rec, tab
}
