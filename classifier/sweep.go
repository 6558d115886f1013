package classifier

// sweepPeriodShift sets how fast the sweep goes: it checks every live entry
// once per 2^30 ns (about a second) of packet time, spread over the packets
// of that second. The work thus follows packet time, not the packet rate:
// a fast capture pays a fraction of an entry a packet, and no deadline
// (the shortest, the closed linger, is 5 s by default) is seen more than
// about a second late by the sweep, which does not change any outcome: a
// flow is settled whenever it is touched, and a decision never depends on
// when the check runs (see the package comment).
const sweepPeriodShift = 30

// A table of at most smallTable flows (about 200 KiB of entries, in the
// CPU caches) is also swept sweepPerPacket entries a packet, which costs
// next to nothing there and makes a small table end flows at once, as soon
// as a packet's time reaches their end. A large table is swept by packet
// time only: checking a fixed number of entries a packet would stream
// hundreds of bytes of entries through the caches for every packet, for
// deadlines that are seconds apart.
const (
	smallTable     = 2048
	sweepPerPacket = 4
)

// sweepFor lets the sweep do the work owed for elapsed ns of packet time:
// live entries × elapsed / period, carried over in entry-nanoseconds so
// that many small steps add up to the same work as one big one.
func (t *Table) sweepFor(elapsed int64) {
	if elapsed >= 1<<sweepPeriodShift {
		t.sweep(t.live)
		t.credit = 0
		return
	}
	t.credit += uint64(elapsed) * uint64(t.live)
	if n := t.credit >> sweepPeriodShift; n > 0 {
		t.credit &= 1<<sweepPeriodShift - 1
		t.sweep(int(n))
	}
}

// sweep checks up to n entries from the cursor, deciding attempts whose
// deadline has come and ending flows whose end has come. When it ends the
// entry at the cursor, the last entry moves there and is checked next.
// An entry whose due time is still ahead is passed over without being
// read: most are, and a due time is 2 bytes where an entry is 64.
func (t *Table) sweep(n int) {
	now := t.nowUnit()
	for ; n > 0 && t.live > 0; n-- {
		if t.cursor >= t.live {
			t.cursor = 0
		}
		c := uint32(t.cursor)
		if int64(t.due[c]) > now {
			t.cursor++
			continue
		}
		if t.settle(c) {
			e := &t.entries[c]
			// Due, yet still open: an allowed session past another idle
			// timeout's worth of packet time. Tell an AliveSink.
			if t.alive != nil && e.verdict == Allowed {
				t.record(c, &t.rec)
				t.alive.Alive(&t.rec)
			}
			t.setDue(c, t.nextDue(c))
			t.cursor++
		}
	}
}

// Eviction samples the flows whose slots follow the new flow's home slot:
// a pseudo-random sample, since homes are hashes.
const (
	evictSample = 8  // flows compared
	evictProbes = 64 // index slots looked at, at most
	reclaimScan = 64 // entries the sweep checks before growing or evicting
	// evictScan bounds the entries looked at, from the table's eviction
	// cursor, for a flow that is no session when the sample holds only
	// sessions: a table of up to 4,096 flows is searched whole, and a
	// larger one in which fewer than one flow in 4,096 is anything but a
	// session is full of sessions (--max-flows is too small for the
	// site), so one of them goes.
	evictScan = 4096
)

// makeRoom frees an entry for a new flow whose hash is h: it first lets the
// sweep end flows whose time has come, then grows the table, and only at
// MaxFlows evicts a flow.
func (t *Table) makeRoom(h uint64) {
	t.sweep(reclaimScan)
	if t.live < len(t.entries) {
		return
	}
	if len(t.entries) < t.opts.MaxFlows {
		t.growEntries()
		return
	}
	t.evict(h)
}

// evict ends one flow among those sampled near h's home slot: one whose
// time has come if any; else the least recently seen of the least
// valuable class (see evictionClass). When the sample holds sessions
// only, a flow of the table that is no session is evicted instead, the
// first found from the eviction cursor: a session evicted is reported at
// once and again, as a new flow, at its next packet, where an attempt or
// a flow already decided loses little.
func (t *Table) evict(h uint64) {
	mask := uint32(len(t.index) - 1)
	pos := uint32(h) & mask
	victim, victimClass, victimLast := -1, 0, int64(0)
	for probes, sampled := 0, 0; probes < evictProbes && sampled < evictSample; probes++ {
		s := t.index[pos]
		pos = (pos + 1) & mask
		if s.ref == 0 {
			continue
		}
		sampled++
		i := s.ref - 1
		e := &t.entries[i]
		if t.endAt(i) <= t.now {
			t.settle(i)
			return
		}
		class := evictionClass(e)
		if victim < 0 || class < victimClass || class == victimClass && e.last < victimLast {
			victim, victimClass, victimLast = int(i), class, e.last
		}
	}
	if victim < 0 || victimClass >= classOneWay {
		if i, ok := t.nonSession(); ok {
			if t.endAt(i) <= t.now {
				t.settle(i) // its time has come: it ends, not evicted
				return
			}
			victim = int(i)
		}
	}
	if victim < 0 {
		victim = int(h % uint64(t.live))
	}
	t.finish(uint32(victim), endEvicted)
	t.remove(uint32(victim))
}

// nonSession finds, from the eviction cursor on and within evictScan
// entries, a flow of a class below classOneWay, and leaves the cursor on
// it: the flow that the table's last entry replaces there, once it is
// evicted, is often the next victim (a flood's flows are the newest).
func (t *Table) nonSession() (uint32, bool) {
	for n := min(t.live, evictScan); n > 0; n-- {
		if t.evictCursor >= t.live {
			t.evictCursor = 0
		}
		i := uint32(t.evictCursor)
		if evictionClass(&t.entries[i]) < classOneWay {
			return i, true
		}
		t.evictCursor++
	}
	return 0, false
}

// Eviction classes, from the least worth keeping: a full table evicts a
// flow of the lowest class it finds (see evict).
const (
	// classDone: the flow's verdict is counted and nothing is left to
	// decide: blocked, ignored, closed or reset and waiting out its
	// linger, one-way unexpected traffic.
	classDone = iota
	// classAttempt: an attempt or a flow still waiting for what decides
	// it; evicted, it is reported pending.
	classAttempt
	// classOneWay: an open flow of an allowed rule seen in one direction
	// only (a one-way UDP stream, a capture that misses the answers).
	// Packets from spoofed addresses make these too, which is why they
	// rank below the sessions.
	classOneWay
	// classUnexpectedSession: an open unexpected flow with traffic both
	// ways: a client that got in where no rule lets it.
	classUnexpectedSession
	// classSession: an established session of an allowed rule, traffic
	// both ways: what a report must see end once.
	classSession
)

// evictionClass ranks what a flow is worth keeping when the table is full
// (see the classes). Only traffic both ways makes a session: it takes the
// answers of a real server, which a flood of spoofed packets does not
// have, so a flood can push out its own kind and attempts, never the
// sessions.
func evictionClass(e *entry) int {
	open := !e.closed()
	both := e.pktsIn > 0 && e.pktsOut > 0
	// A flow waiting for its protocol to be named has worked on an
	// allowed rule: it ranks as the allowed flow it almost certainly is.
	allowed := e.verdict == Allowed || e.awaitingApp()
	switch {
	case allowed && open && both:
		return classSession
	case e.verdict == Unexpected && open && both:
		return classUnexpectedSession
	case allowed && open:
		return classOneWay
	case e.verdict == VerdictUndecided:
		return classAttempt
	}
	return classDone
}
