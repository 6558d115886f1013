package classifier

import (
	"math/bits"
	"runtime/debug"
	"unsafe"
)

// slot is one index position: the low 32 bits of the key's hash (which also
// give the slot's home position, so the index can be rebuilt and shifted
// without reading entries) and the entry number plus one (0: empty).
type slot struct {
	tag uint32
	ref uint32
}

// maxLoadNum/maxLoadDen is the highest load factor of the index.
const maxLoadNum, maxLoadDen = 3, 4

// indexSize is the power of two of slots that holds n flows at the highest
// load factor.
func indexSize(n int) int {
	need := (n*maxLoadDen + maxLoadNum - 1) / maxLoadNum
	if need < 2 {
		need = 2
	}
	return 1 << bits.Len(uint(need-1))
}

// lookup returns the entry number of key k with hash h.
func (t *Table) lookup(k *flowKey, h uint64) (uint32, bool) {
	tag := uint32(h)
	mask := uint32(len(t.index) - 1)
	for pos := tag & mask; ; pos = (pos + 1) & mask {
		s := t.index[pos]
		if s.ref == 0 {
			return 0, false
		}
		if s.tag == tag && t.entries[s.ref-1].is(k) {
			return s.ref - 1, true
		}
	}
}

// place puts a slot in the first free position of its probe run.
func place(index []slot, s slot) {
	mask := uint32(len(index) - 1)
	pos := s.tag & mask
	for index[pos].ref != 0 {
		pos = (pos + 1) & mask
	}
	index[pos] = s
}

// slotOf returns the index position referring to entry i, whose hash is h.
func (t *Table) slotOf(h uint64, i uint32) uint32 {
	mask := uint32(len(t.index) - 1)
	pos := uint32(h) & mask
	for t.index[pos].ref != i+1 {
		pos = (pos + 1) & mask
	}
	return pos
}

// unslot empties an index position without leaving a tombstone (Knuth's
// algorithm R): each later slot of the probe run whose home is at or before
// the hole moves into it, and the hole moves on to where it was, so every
// key stays reachable from its home and probe runs stay as short as if the
// deleted key had never been there.
func (t *Table) unslot(pos uint32) {
	mask := uint32(len(t.index) - 1)
	for j := (pos + 1) & mask; t.index[j].ref != 0; j = (j + 1) & mask {
		home := t.index[j].tag & mask
		if (j-home)&mask >= (j-pos)&mask {
			t.index[pos] = t.index[j]
			pos = j
		}
	}
	t.index[pos] = slot{}
}

// remove deletes entry i: its slot leaves the index and the last entry
// moves into its place, so the live entries stay dense.
//
// Both hashes are computed first, from the entries in place: the position
// of the second slot is then known early enough for its load to start
// while the first slot is still being searched, and the moved key is not
// read back from the copy just stored.
func (t *Table) remove(i uint32) {
	last := uint32(t.live - 1)
	k := t.entries[i].key()
	h := k.hash(t.seed)
	var lastHash uint64
	if i != last {
		lk := t.entries[last].key()
		lastHash = lk.hash(t.seed)
	}
	t.unslot(t.slotOf(h, i))
	if t.entries[i].has(flagICMP) {
		delete(t.icmp, k)
	}
	t.wide.releaseKey(k.a, k.b)
	if i != last {
		t.entries[i] = t.entries[last]
		t.meta[i] = t.meta[last]
		t.due[i] = t.due[last]
		t.index[t.slotOf(lastHash, last)].ref = i + 1
	}
	t.live--
}

// growEntries doubles the entries (up to MaxFlows) of a table whose
// arrays are Go slices (see arena.go).
func (t *Table) growEntries() {
	n := min(2*len(t.entries), t.opts.MaxFlows)
	entries := make([]entry, n)
	copy(entries, t.entries[:t.live])
	t.entries = entries
	meta := make([]entryMeta, n)
	copy(meta, t.meta[:t.live])
	t.meta = meta
	due := make([]uint16, n)
	copy(due, t.due[:t.live])
	t.due = due
	if uintptr(n)*unsafe.Sizeof(entry{}) >= releaseAfterGrowth {
		debug.FreeOSMemory()
	}
}

// indexFull reports an index that cannot take one more flow within its
// highest load factor.
func (t *Table) indexFull() bool {
	return (t.live+1)*maxLoadDen > len(t.index)*maxLoadNum
}

// growIndex doubles the index, rebuilt from the slots' own hash bits.
func (t *Table) growIndex() {
	index, mapping := newIndex(2 * len(t.index))
	for _, s := range t.index {
		if s.ref != 0 {
			place(index, s)
		}
	}
	old := t.maps.index
	t.index, t.maps.index = index, mapping
	switch {
	case old != nil:
		unmapBytes(old)
	case uintptr(len(index))*unsafe.Sizeof(slot{}) >= releaseAfterGrowth:
		debug.FreeOSMemory()
	}
}

// releaseAfterGrowth is the size of Go-slice arrays from which growing the
// table hands the old arrays back to the system at once. They are garbage as
// soon as the new ones are filled, but a program that allocates nothing
// per packet may not collect for a long time, and until then every
// growth adds its old arrays to the resident memory. Collecting a heap
// whose bulk is pointer-free costs a few milliseconds, and a table grows a
// handful of times in its life.
const releaseAfterGrowth = 16 << 20
