package classifier

import "math"

// Each entry has a due time: a lower bound of when settle next has
// something to do for it (nextDue), kept in a compact array parallel to the
// entries so that the sweep can pass over the entries whose time has not
// come without reading them (8 to 16 entries' worth of due times share a
// cache line that holds less than one entry).
//
// A due time is stored in 2 bytes: in units of 2^dueShift ns (67 ms),
// relative to the table's dueBase, rounded down, and clamped to
// [0, MaxUint16]. Rounding down and clamping only make the bound lower, so
// it stays a bound: the sweep passes over an entry only when its due unit
// is after now's, which implies the due time is after now; an entry due
// within the current unit, or clamped, is merely settled for nothing
// (settle then stores its bound again). 2 bytes instead of 8 keep a
// million flows under 128 bytes a flow.
const dueShift = 26

// dueRebaseAfter is how far (in units) now may run ahead of dueBase before
// the base moves up to now: then every stored value still spans at least
// MaxUint16 - dueRebaseAfter units (about 37 minutes) ahead of now.
const dueRebaseAfter = 1 << 15

// nextDue is when settle has something to do for the flow: its attempt's
// deadline while that is undecided (endAt is never earlier), else its end.
// Only a packet that closes or decides the flow can make it earlier; any
// other packet makes it later or leaves it, so a stored nextDue stays a
// lower bound until one of those two things happens.
func (t *Table) nextDue(i uint32) int64 {
	if e := &t.entries[i]; e.attempting() {
		return t.meta[i].first + int64(t.attemptTimeout(e))
	} else if e.awaitingApp() {
		return min(t.appDeadline(i), t.endAt(i))
	}
	return t.endAt(i)
}

// setDue stores entry i's due time, at ns.
func (t *Table) setDue(i uint32, ns int64) {
	t.due[i] = uint16(min(max(ns>>dueShift-t.dueBase, 0), math.MaxUint16))
}

// nowUnit is the packet clock in due units relative to dueBase: an entry
// whose stored due is greater needs nothing yet.
func (t *Table) nowUnit() int64 { return t.now>>dueShift - t.dueBase }

// rebaseDue moves dueBase up to now once now has run far enough ahead of
// it, lowering every stored due time by as much (down to 0), so that the
// stored values keep room for the deadlines ahead. It runs once every
// half hour of packet time, and at the first packet.
func (t *Table) rebaseDue() {
	shift := t.nowUnit()
	if shift < dueRebaseAfter {
		return
	}
	t.dueBase += shift
	for i, v := range t.due[:t.live] {
		t.due[i] = uint16(max(int64(v)-shift, 0))
	}
}
