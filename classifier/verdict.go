package classifier

import (
	"time"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/policy"
)

// decideMatch decides, at creation, a flow that no enabled rule admits: its
// verdict does not depend on how it behaves.
func (t *Table) decideMatch(e *entry, m policy.Match) {
	switch m.Kind {
	case policy.MatchFeatureDisabled:
		e.rule = refRule(m.Rule)
		t.decideWithRoles(e, Unexpected, FeatureDisabled)
	case policy.MatchUnauthorizedClient:
		e.rule = refRule(m.Rule)
		t.decideWithRoles(e, Unexpected, UnauthorizedClient)
	case policy.MatchNoRule:
		e.rule = refRule(m.Rule)
		t.decideWithRoles(e, Unexpected, NoRule)
	default:
		t.decideWithRoles(e, Ignored, ReasonNone)
	}
}

// judge looks at a packet of a flow whose rule admits it and that is not
// decided yet: did it work, or was it refused?
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
func (t *Table) judge(e *entry, f uint8, fromClient bool) {
	if e.proto != capture.ProtoTCP {
		if !fromClient {
			t.decide(e, Allowed, ReasonNone)
		}
		return
	}
	switch {
	case f&capture.TCPRst != 0:
		if !fromClient && e.saw(letterSyn, true) {
			t.decide(e, Blocked, Refused)
		}
	case f&capture.TCPAck != 0:
		t.decide(e, Allowed, ReasonNone)
	case !e.saw(letterSyn, true) && e.pktsOut > 0 && e.pktsIn > 0:
		t.decide(e, Allowed, ReasonNone)
	}
}

// attemptTimeout is how long the flow's attempt waits for an answer.
func (t *Table) attemptTimeout(e *entry) time.Duration {
	if e.proto == capture.ProtoTCP {
		return t.opts.AttemptTimeout
	}
	return t.opts.UDPReplyTimeout
}

// attemptDue reports an undecided attempt whose deadline has come.
func (t *Table) attemptDue(e *entry) bool {
	const want = flagAttempt | flagRuleAllowed
	return e.verdict == VerdictUndecided && e.flags&want == want &&
		e.first+int64(t.attemptTimeout(e)) <= t.now
}

// decideAtDeadline decides an attempt nothing answered in time: blocked,
// unless it is UDP on a one-way rule, which works when its packets flow
// and no ICMP error comes back.
func (t *Table) decideAtDeadline(e *entry) {
	if e.proto == capture.ProtoUDP && !e.has(flagReplyExpected) {
		t.decide(e, Allowed, ReasonNone)
		return
	}
	t.decide(e, Blocked, NoResponse)
}

// endAt is when the flow ends: an idle timeout after its last packet (the
// closed linger for a closed TCP flow), but never before an undecided
// attempt reaches its deadline, so that an attempt the client gave up on
// (SYN then RST) is still decided as at its deadline.
func (t *Table) endAt(e *entry) int64 {
	idle := t.opts.UDPIdle
	if e.proto == capture.ProtoTCP {
		idle = t.opts.TCPIdle
		if e.closed() {
			idle = t.opts.TCPClosed
		}
	}
	end := e.last + int64(idle)
	const want = flagAttempt | flagRuleAllowed
	if e.verdict == VerdictUndecided && e.flags&want == want {
		end = max(end, e.first+int64(t.attemptTimeout(e)))
	}
	return end
}

// decide gives the flow its verdict, with the roles its ends hold now, and
// tells the sink.
func (t *Table) decide(e *entry, v Verdict, r Reason) {
	client, server := t.endpoints(e)
	e.clientRoles, e.serverRoles = packRoles(t.m.Roles(client)), packRoles(t.m.Roles(server))
	t.decideWithRoles(e, v, r)
}

// decideWithRoles gives the flow its verdict with the roles it holds.
func (t *Table) decideWithRoles(e *entry, v Verdict, r Reason) {
	e.verdict, e.reason = v, r
	t.record(e, &t.rec)
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
// deadline if that has come, else pending), then the sink gets its final
// record. The caller removes the entry.
func (t *Table) finish(e *entry, cause endCause) {
	if e.verdict == VerdictUndecided {
		if t.attemptDue(e) {
			t.decideAtDeadline(e)
		} else {
			t.decide(e, Pending, ReasonNone)
		}
	}
	t.record(e, &t.rec)
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
	e := &t.entries[i]
	if t.attemptDue(e) {
		t.decideAtDeadline(e)
	}
	if t.endAt(e) <= t.now {
		t.finish(e, endExpired)
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
