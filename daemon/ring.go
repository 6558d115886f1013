package daemon

import (
	"sync"

	"github.com/tpwatch/tpwatch/classifier"
)

// DefaultRecentFlows is how many blocked and unexpected flows the daemon
// keeps for its status page and flow API: enough to follow a burst, and a
// fixed 200 KB or so whatever the traffic.
const DefaultRecentFlows = 1000

// flowRing keeps the last blocked and unexpected flows, copied into a ring
// allocated once. Each flow gets a sequence number, so that a client that
// follows the API asks for what came after the last one it saw and learns
// how many it missed when it fell behind. Every interface's table adds to
// it; the mutex is held for the copy of one record.
type flowRing struct {
	mu      sync.Mutex
	entries []ringEntry
	next    uint64 // sequence number of the next flow; the first is 1
}

// ringEntry is one kept flow.
type ringEntry struct {
	seq   uint64
	iface string // the source's name: a shared string, not a copy
	rec   classifier.FlowRecord
}

func newFlowRing(n int) *flowRing {
	if n <= 0 {
		n = DefaultRecentFlows
	}
	return &flowRing{entries: make([]ringEntry, n), next: 1}
}

// add keeps a copy of r.
func (f *flowRing) add(iface string, r *classifier.FlowRecord) {
	f.mu.Lock()
	e := &f.entries[f.next%uint64(len(f.entries))]
	e.seq, e.iface, e.rec = f.next, iface, *r
	f.next++
	f.mu.Unlock()
}

// after returns, oldest first, the kept flows with a sequence number above
// seq that keep selects, at most limit of them (0: no limit) — the first
// ones after seq, so that a client following the ring misses none. last is
// the sequence number to ask after next time: that of the last flow
// returned, or when none the newest looked at. lost counts the flows after
// seq that had already left the ring.
func (f *flowRing) after(seq uint64, keep func(*ringEntry) bool, limit int) (out []ringEntry, last, lost uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	newest := f.next - 1
	oldest := uint64(1)
	if n := uint64(len(f.entries)); newest > n {
		oldest = newest - n + 1
	}
	from := seq + 1
	if from < oldest {
		lost = oldest - from
		from = oldest
	}
	last = max(seq, from-1)
	for s := from; s <= newest; s++ {
		e := &f.entries[s%uint64(len(f.entries))]
		last = s
		if keep != nil && !keep(e) {
			continue
		}
		out = append(out, *e)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, last, lost
}

// latest returns, oldest first, the last limit kept flows keep selects
// (0: every one), and the sequence number of the newest flow kept.
func (f *flowRing) latest(keep func(*ringEntry) bool, limit int) (out []ringEntry, newest uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	newest = f.next - 1
	n := uint64(len(f.entries))
	for s := newest; s >= 1 && newest-s < n; s-- {
		e := &f.entries[s%n]
		if keep != nil && !keep(e) {
			continue
		}
		out = append(out, *e)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, newest
}

// size is how many flows the ring keeps.
func (f *flowRing) size() int { return len(f.entries) }
