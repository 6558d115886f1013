package classifier

import (
	"time"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/policy"
)

// A new flow is matched once, when it is created (create), and then:
//
//   - a flow an enabled rule admits (flagRuleAllowed) waits for its own
//     behaviour: allowed when it works, blocked when it fails;
//   - a flow no enabled rule admits that concerns the product
//     (flagAwaitOutcome) is unexpected, and waits for its outcome: the
//     verdict alone would not say whether the client got in;
//   - with an inferred inventory, a flow that may teach its hosts' roles
//     (flagLearning) waits until it shows what it is, then teaches the
//     inventory what it showed and is matched with the roles its ends hold
//     then;
//   - any other flow is ignored at once.
//
// A waiting flow is decided by a packet (judge), an ICMP error
// (processICMPError), its attempt timeout (decideAtDeadline) or its end
// (finish).

// setUp records what the match of a new flow i means, and decides at once
// what nothing the flow does can change. create has marked a flow that may
// teach an inferred inventory flagLearning.
func (t *Table) setUp(i uint32, m policy.Match) {
	e, meta := &t.entries[i], &t.meta[i]
	switch {
	case m.Kind == policy.MatchAllowed:
		e.flags |= flagRuleAllowed
		meta.rule = refRule(m.Rule)
		if e.proto == capture.ProtoUDP && t.m.Reply(m.Rule) {
			e.flags |= flagReplyExpected
		}
	case e.has(flagLearning):
		// The rule the flow will most likely be matched with says whether
		// a UDP flow waits for a reply or only for an ICMP error.
		if e.proto == capture.ProtoUDP {
			if a := t.m.MatchAttempt(t.flowOf(i)); a.Kind == policy.MatchAllowed && t.m.Reply(a.Rule) {
				e.flags |= flagReplyExpected
			}
		}
	default:
		v, r := verdictOf(m.Kind)
		if v == Unexpected {
			e.flags |= flagAwaitOutcome | flagReplyExpected
			e.reason, meta.rule = r, refRule(m.Rule)
			return
		}
		t.decideWithRoles(i, v, r)
	}
}

// verdictOf is the verdict and reason of a flow matched m that no rule
// admits.
func verdictOf(m policy.MatchKind) (Verdict, Reason) {
	switch m {
	case policy.MatchFeatureDisabled:
		return Unexpected, FeatureDisabled
	case policy.MatchUnauthorizedClient:
		return Unexpected, UnauthorizedClient
	case policy.MatchNoRule:
		return Unexpected, NoRule
	case policy.MatchNotProduct:
		return Ignored, NotProduct
	case policy.MatchSiteIgnored:
		return Ignored, SiteIgnore
	case policy.MatchOwnTraffic:
		return Ignored, OwnTraffic
	case policy.MatchUnannounced:
		return Unexpected, RPCUnannounced
	}
	return Ignored, ReasonNone
}

// judge looks at a packet of an undecided flow that its behaviour decides:
// did it work, or was it refused?
//
// TCP works when a SYN-ACK comes back, and also on any other segment
// carrying ACK (but not RST): a TCP stack sets ACK only once it has the
// peer's SYN (RFC 9293, 3.10.7), so such a segment proves a handshake the
// sensor did not see in full (a capture started mid-stream, or asymmetric
// routing that sends the SYN-ACK around the sensor). A RST+ACK is the
// refusal of a SYN and proves nothing. With no SYN seen at all, non-RST
// packets in both directions prove it too. A RST from the server after the
// client's SYN and before any SYN-ACK is a refusal.
//
// UDP works as soon as anything comes from the server.
//
// A learning flow waits for more after a SYN-ACK: the client going on
// after the answer (which a scan never does) or resetting it.
func (t *Table) judge(i uint32, f uint8, fromClient bool) {
	e := &t.entries[i]
	var outcome Outcome
	switch {
	case e.proto != capture.ProtoTCP:
		if !fromClient {
			outcome = OutcomeWorked
		}
	case f&capture.TCPRst != 0:
		switch {
		case !fromClient && e.saw(letterSyn, true) && e.history&serverAcked == 0:
			outcome = OutcomeRefused
		case e.has(flagLearning) && e.history&serverAcked != 0:
			// The client reset what the server answered: a scan. The
			// server answered; that is all it showed.
			outcome = OutcomeWorked
		}
	case f&capture.TCPAck != 0:
		// A learning flow takes a SYN-ACK for an answer only; the
		// server's pure ACK shows an established session (evidence).
		if !e.has(flagLearning) || fromClient || e.saw(letterAck, false) {
			outcome = OutcomeWorked
		}
	case !e.saw(letterSyn, true) && e.pktsOut > 0 && e.pktsIn > 0 && !e.has(flagLearning):
		outcome = OutcomeWorked
	}
	if outcome != OutcomeNone {
		t.conclude(i, outcome)
	}
}

// conclude decides waiting flow i, whose outcome is now known.
func (t *Table) conclude(i uint32, outcome Outcome) {
	e, meta := &t.entries[i], &t.meta[i]
	switch {
	case e.has(flagLearning):
		t.decideLearning(i, outcome)
	case e.has(flagAwaitOutcome):
		meta.outcome = outcome
		t.decide(i, Unexpected, e.reason)
	case outcome == OutcomeWorked:
		meta.outcome = outcome
		t.allow(i)
	case outcome == OutcomeUnknown:
		t.decide(i, Pending, ReasonNone)
	default:
		meta.outcome = outcome
		t.decide(i, Blocked, failure(outcome))
	}
}

// failure is the blocked reason of a failed outcome.
func failure(o Outcome) Reason {
	switch o {
	case OutcomeRefused:
		return Refused
	case OutcomeICMPUnreachable:
		return ICMPUnreachable
	}
	return NoResponse
}

// decideLearning decides a learning flow: it teaches the inventory what
// the flow showed, then matches it with the roles its ends hold now. An
// attempt that failed before its server answered is matched as an
// attempt (Matcher.MatchAttempt): the agent that cannot reach the
// Enterprise Manager has shown nothing else.
func (t *Table) decideLearning(i uint32, outcome Outcome) {
	e, meta := &t.entries[i], &t.meta[i]
	e.flags &^= flagLearning
	ev := e.evidence()
	f := t.flowOf(i)
	if ev != 0 {
		t.m.Learn(f, ev)
		e.flags |= flagTaught
		f.ClientRoles, f.ServerRoles = t.m.Roles(f.Client), t.m.Roles(f.Server)
	}
	var m policy.Match
	if ev&policy.ServerAnswered == 0 && outcome != OutcomeWorked {
		m = t.m.MatchAttempt(f)
	} else {
		m = t.m.Match(f)
	}
	switch m.Kind {
	case policy.MatchAllowed:
		e.flags |= flagRuleAllowed
		meta.rule = refRule(m.Rule)
		if outcome == OutcomeNoResponse && e.proto == capture.ProtoUDP && !t.m.Reply(m.Rule) {
			outcome = OutcomeWorked // a one-way rule: no ICMP error came back
		}
		t.conclude(i, outcome)
	default:
		v, r := verdictOf(m.Kind)
		meta.rule = refRule(m.Rule)
		if v == Unexpected {
			meta.outcome = outcome
		}
		t.decide(i, v, r)
	}
}

// flowOf is flow i as the policy sees it, with the roles its ends hold
// now.
func (t *Table) flowOf(i uint32) policy.Flow {
	e := &t.entries[i]
	client, server := t.endpoints(e)
	return policy.Flow{
		Transport: policy.Transport(e.proto),
		Client:    client, Server: server,
		ClientRoles: t.m.Roles(client), ServerRoles: t.m.Roles(server),
		Port: serverPort(e),
	}
}

// serverPort is the flow's server port.
func serverPort(e *entry) uint16 {
	if e.has(flagClientIsA) {
		return e.portB
	}
	return e.portA
}

// attemptTimeout is how long the flow's attempt waits for an answer: a
// TCP attempt for its SYN-ACK, a UDP request for its reply, and datagrams
// of a one-way UDP rule only for an ICMP error.
func (t *Table) attemptTimeout(e *entry) time.Duration {
	switch {
	case e.proto == capture.ProtoTCP:
		return t.opts.AttemptTimeout
	case e.has(flagReplyExpected):
		return t.opts.UDPReplyTimeout
	}
	return t.opts.UDPICMPWait
}

// attemptDue reports flow i as an undecided attempt whose deadline has
// come.
func (t *Table) attemptDue(i uint32) bool {
	e := &t.entries[i]
	return e.attempting() && t.meta[i].first+int64(t.attemptTimeout(e)) <= t.now
}

// attempting reports an undecided attempt: its deadline is still to
// judge.
func (e *entry) attempting() bool {
	return e.verdict == VerdictUndecided && e.flags&flagAttempt != 0 && e.flags&flagsJudged != 0
}

// decideAtDeadline decides an attempt nothing answered in time: blocked,
// unless it is UDP on a one-way rule, which works when its packets flow
// and no ICMP error comes back.
func (t *Table) decideAtDeadline(i uint32) {
	e := &t.entries[i]
	if e.has(flagRuleAllowed) && e.proto == capture.ProtoUDP && !e.has(flagReplyExpected) {
		t.conclude(i, OutcomeWorked)
		return
	}
	t.conclude(i, OutcomeNoResponse)
}

// endAt is when the flow ends: an idle timeout after its last packet (the
// closed linger for a closed TCP flow), but never before an undecided
// attempt reaches its deadline, so that an attempt the client gave up on
// (SYN then RST) is still decided as at its deadline.
func (t *Table) endAt(i uint32) int64 {
	e := &t.entries[i]
	idle := t.opts.UDPIdle
	if e.proto == capture.ProtoTCP {
		idle = t.opts.TCPIdle
		if e.closed() {
			idle = t.opts.TCPClosed
		}
	}
	end := e.last + int64(idle)
	if e.attempting() {
		end = max(end, t.meta[i].first+int64(t.attemptTimeout(e)))
	}
	return end
}

// decide gives the flow its verdict, with the roles its ends hold now, and
// tells the sink.
func (t *Table) decide(i uint32, v Verdict, r Reason) {
	client, server := t.endpoints(&t.entries[i])
	m := &t.meta[i]
	m.clientRoles, m.serverRoles = packRoles(t.m.Roles(client)), packRoles(t.m.Roles(server))
	t.decideWithRoles(i, v, r)
}

// decideWithRoles gives the flow its verdict with the roles it holds.
func (t *Table) decideWithRoles(i uint32, v Verdict, r Reason) {
	e := &t.entries[i]
	e.verdict, e.reason = v, r
	e.flags &^= flagAwaitOutcome | flagLearning
	t.record(i, &t.rec)
	t.sink.Decided(&t.rec)
}

// endCause says why a flow ends.
type endCause uint8

const (
	endExpired endCause = iota // idle timeout or closed linger
	endEvicted                 // the table needed its place
	endReused                  // a new connection on the ports of a closed one
	endFlush                   // Flush
)

// finish ends a flow: an undecided one is decided first (as at its
// deadline if that has come, else with what it showed), then the sink gets
// its final record. The caller removes the entry.
func (t *Table) finish(i uint32, cause endCause) {
	e := &t.entries[i]
	if e.awaitingApp() {
		e.history &^= awaitApp // it worked, and named no protocol
		t.decide(i, Allowed, ReasonNone)
	}
	if e.verdict == VerdictUndecided {
		if t.attemptDue(i) {
			t.decideAtDeadline(i)
		} else {
			t.conclude(i, OutcomeUnknown)
		}
	}
	if e.verdict == Allowed && !e.has(flagTaught) && t.m.Learns(policy.Transport(e.proto), serverPort(e)) {
		// A flow that worked between hosts the inventory knows counts as
		// evidence of their roles (nothing when a config names them).
		if ev := e.evidence(); ev != 0 {
			t.m.Learn(t.flowOf(i), ev)
		}
	}
	if e.proto == capture.ProtoTCP && serverPort(e) == portEPM {
		t.releaseRPC(i)
	}
	t.record(i, &t.rec)
	t.rec.Evicted = cause == endEvicted
	t.sink.Final(&t.rec)
	t.counts.ended++
	switch cause {
	case endExpired:
		t.counts.expired++
	case endEvicted:
		t.counts.evicted++
	}
}

// settle applies what the clock says to entry i: decides an attempt whose
// deadline has come and ends a flow whose end has come. It reports whether
// the flow is still live.
func (t *Table) settle(i uint32) bool {
	if t.attemptDue(i) {
		t.decideAtDeadline(i)
	}
	if e := &t.entries[i]; e.awaitingApp() && t.appDeadline(i) <= t.now {
		e.history &^= awaitApp
		t.decide(i, Allowed, ReasonNone)
	}
	if t.endAt(i) <= t.now {
		t.finish(i, endExpired)
		t.remove(i)
		return false
	}
	return true
}

// endpoints returns the client's and the server's addresses.
func (t *Table) endpoints(e *entry) (client, server [16]byte) {
	a, b := t.wide.addr(e.a), t.wide.addr(e.b)
	if e.has(flagClientIsA) {
		return a, b
	}
	return b, a
}
