package classifier

import (
	"time"

	"github.com/tpwatch/tpwatch/capture"
)

// The packet clock follows packet time, and must not believe a clock that
// lies. One packet stamped ten years ahead moved it ten years at once:
// every flow expired, the working ones then reported twice when their next
// packets came, and the attempts after it timed from the future. A clock
// that stepped back an hour left the packet clock where it was, so every
// flow of that hour was stamped with its time, not its own.
//
// So a packet more than clockStep away from the clock, ahead or behind, is
// held (one at a time, copied: it is rare) until the next packet, or the
// idle moment of a live capture, says whether the clock really moved:
//
//   - ahead: it did unless the next packet comes back to more than
//     clockStep before the held one's time. Then the clock moves to the
//     held packet's time and the packets are followed in their order, as
//     if nothing had been held: a gap in a capture, two files a day apart,
//     a sparse capture's packets minutes apart, all give what they gave;
//   - behind: it did if the next packet is more than clockStep behind the
//     clock too. Then the clock steps back to the held packet's time, and
//     flows are stamped with their own times again;
//   - otherwise the held packet's time was wrong: it is followed at the
//     clock's time, and counted in Stats.ClockJumps.
//
// The first packet sets the clock. When the input ends (Flush), nothing can
// confirm a held packet any more: one less than endTrust ahead is believed
// (a capture's last packet a minute after the one before is common), one
// further ahead or behind is followed at the clock's time, and Flush's own
// end time is believed on the same terms. Everything depends on the
// packets alone, so a replay stays deterministic.
//
// A second is well under the shortest default timeout (the two seconds a
// one-way UDP datagram waits for an ICMP error), so a clock that jumps by
// less than that, unconfirmed, decides nothing early: an attempt the jump
// passes the deadline of had waited all but a second of its timeout
// already.
const clockStep = int64(time.Second)

// endTrust bounds how far ahead of the clock the end of the input is
// believed without a packet after it to confirm it: a day, the longest
// idle timeout there may be. A capture whose last packet comes more than a
// day after the one before is a clock that lies, not a capture.
const endTrust = int64(24 * time.Hour)

// offClock reports whether a packet of time ts needs the clock's scrutiny
// (hold): it is more than clockStep from the clock, or a packet is held.
func (t *Table) offClock(ts int64) bool {
	d := ts - t.now
	return t.holding || d > clockStep || d < -clockStep
}

// hold decides what to do with packet p, which offClock pointed out: it
// first settles the packet held before, which p confirms or not, then
// holds p when p is itself off the clock, and reports whether it did; if
// not, the caller follows p now.
func (t *Table) hold(p *capture.Packet) bool {
	if !t.clocked {
		t.clocked = true // by this packet, once followed
		return false
	}
	if t.holding {
		t.release(p.TS)
	}
	if d := p.TS - t.now; -clockStep <= d && d <= clockStep {
		return false
	}
	t.held, t.holding = *p, true
	// Its payload lives in the batch, which is reused: keep a copy.
	t.heldHasPayload = t.payload != nil
	t.heldPayload = append(t.heldPayload[:0], t.payload...)
	t.heldIdent = t.ident
	return true
}

// release follows the held packet, given the time of what came next (a
// packet, or a live capture's idle moment): at its own time if next
// confirms it, else at the clock's.
func (t *Table) release(next int64) {
	t.holding = false
	h := &t.held
	switch {
	case h.TS > t.now:
		if next < h.TS-clockStep {
			t.counts.clockJumps++
			h.TS = t.now
		}
	default:
		if next < t.now-clockStep {
			// The clock stepped back. A due time stays a lower bound of
			// its deadline whatever the clock does, so only the clock
			// moves.
			t.now = h.TS
		} else {
			t.counts.clockJumps++
			h.TS = t.now
		}
	}
	t.processHeld()
}

// processHeld follows the held packet with its own carried payload or
// identification, not those of the packet that released it.
func (t *Table) processHeld() {
	pl, id := t.payload, t.ident
	t.payload, t.ident = nil, t.heldIdent
	if t.heldHasPayload {
		t.payload = t.heldPayload
	}
	t.processOnClock(&t.held, nil)
	t.payload, t.ident = pl, id
}

// releaseAtEnd follows the packet held when the input ends, at its own
// time if it is at most endTrust ahead of the clock, else at the clock's.
func (t *Table) releaseAtEnd() {
	if !t.holding {
		return
	}
	t.holding = false
	if d := t.held.TS - t.now; d < 0 || d > endTrust {
		t.counts.clockJumps++
		t.held.TS = t.now
	}
	t.processHeld()
}
