package classifier

import (
	"time"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/policy"
)

// decideMatch decides, at creation, a flow that no enabled rule admits: its
// verdict does not depend on how it behaves.
func (t *Table) decideMatch(i uint32, m policy.Match) {
	meta := &t.meta[i]
	switch m.Kind {
	case policy.MatchFeatureDisabled:
		meta.rule = refRule(m.Rule)
		t.decideWithRoles(i, Unexpected, FeatureDisabled)
	case policy.MatchUnauthorizedClient:
		meta.rule = refRule(m.Rule)
		t.decideWithRoles(i, Unexpected, UnauthorizedClient)
	case policy.MatchNoRule:
		meta.rule = refRule(m.Rule)
		t.decideWithRoles(i, Unexpected, NoRule)
	default:
		t.decideWithRoles(i, Ignored, ReasonNone)
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
func (t *Table) judge(i uint32, f uint8, fromClient bool) {
	e := &t.entries[i]
	if e.proto != capture.ProtoTCP {
		if !fromClient {
			t.decide(i, Allowed, ReasonNone)
		}
		return
	}
	switch {
	case f&capture.TCPRst != 0:
		if !fromClient && e.saw(letterSyn, true) {
			t.decide(i, Blocked, Refused)
		}
	case f&capture.TCPAck != 0:
		t.decide(i, Allowed, ReasonNone)
	case !e.saw(letterSyn, true) && e.pktsOut > 0 && e.pktsIn > 0:
		t.decide(i, Allowed, ReasonNone)
	}
}

// attemptTimeout is how long the flow's attempt waits for an answer.
func (t *Table) attemptTimeout(e *entry) time.Duration {
	if e.proto == capture.ProtoTCP {
		return t.opts.AttemptTimeout
	}
	return t.opts.UDPReplyTimeout
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
	const want = flagAttempt | flagRuleAllowed
	return e.verdict == VerdictUndecided && e.flags&want == want
}

// decideAtDeadline decides an attempt nothing answered in time: blocked,
// unless it is UDP on a one-way rule, which works when its packets flow
// and no ICMP error comes back.
func (t *Table) decideAtDeadline(i uint32) {
	if e := &t.entries[i]; e.proto == capture.ProtoUDP && !e.has(flagReplyExpected) {
		t.decide(i, Allowed, ReasonNone)
		return
	}
	t.decide(i, Blocked, NoResponse)
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
// deadline if that has come, else pending), then the sink gets its final
// record. The caller removes the entry.
func (t *Table) finish(i uint32, cause endCause) {
	if t.entries[i].verdict == VerdictUndecided {
		if t.attemptDue(i) {
			t.decideAtDeadline(i)
		} else {
			t.decide(i, Pending, ReasonNone)
		}
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
