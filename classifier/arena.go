package classifier

import (
	"math"
	"runtime"
	"unsafe"
)

// The table's arrays hold no pointers, so they can live outside the Go
// heap. Where the system allows (arena_unix.go), the entries, their meta
// and their due times are mapped once for MaxFlows flows, without reserving swap: the
// system backs a page only when the table first writes it, so the table
// costs the memory of the most flows it has held, never copies entries to
// grow, and leaves no old arrays for the garbage collector to find later.
// The index, whose slots are spread by hash and so all touched, is mapped
// at the size its load needs and unmapped as soon as it has been rebuilt
// larger. Elsewhere, or when the system refuses a mapping, the arrays are
// Go slices that grow by doubling.

// mapped are the table's arrays that the system mapped, to unmap when the
// table is garbage.
type mapped struct {
	entries, meta, due, index []byte
}

func (m *mapped) unmapAll() {
	for _, b := range []*[]byte{&m.entries, &m.meta, &m.due, &m.index} {
		if *b != nil {
			unmapBytes(*b)
			*b = nil
		}
	}
}

// viewAs is b as a slice of n values of T (b holds at least n of them,
// suitably aligned: mappings are page-aligned).
func viewAs[T any](b []byte, n int) []T {
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), n)
}

// allocEntries gives the table its entries, meta and due times: reserved
// for MaxFlows if the system maps them, else for InitialFlows.
func (t *Table) allocEntries() {
	n := t.opts.MaxFlows
	size := uint64(n) * uint64(unsafe.Sizeof(entry{})+unsafe.Sizeof(entryMeta{}))
	if size > math.MaxInt/2 {
		t.sliceEntries() // a 32-bit system cannot map that much
		return
	}
	eb, err1 := mapBytes(n * int(unsafe.Sizeof(entry{})))
	mb, err2 := mapBytes(n * int(unsafe.Sizeof(entryMeta{})))
	db, err3 := mapBytes(n * 2)
	if err1 == nil && err2 == nil && err3 == nil {
		t.maps.entries, t.maps.meta, t.maps.due = eb, mb, db
		t.entries, t.meta, t.due = viewAs[entry](eb, n), viewAs[entryMeta](mb, n), viewAs[uint16](db, n)
		return
	}
	for _, b := range [][]byte{eb, mb, db} {
		if b != nil {
			unmapBytes(b)
		}
	}
	t.sliceEntries()
}

// sliceEntries gives the table entries, meta and due times as Go slices
// for InitialFlows, which growEntries doubles.
func (t *Table) sliceEntries() {
	t.entries = make([]entry, t.opts.InitialFlows)
	t.meta = make([]entryMeta, t.opts.InitialFlows)
	t.due = make([]uint16, t.opts.InitialFlows)
}

// newIndex returns an empty index of size slots and its mapping, or a Go
// slice and nil where the system maps nothing.
func newIndex(size int) ([]slot, []byte) {
	if b, err := mapBytes(size * int(unsafe.Sizeof(slot{}))); err == nil {
		return viewAs[slot](b, size), b
	}
	return make([]slot, size), nil
}

// unmapWhenGarbage has the mappings unmapped once t is garbage (a test, a
// replay's table, a reloaded daemon's).
func (t *Table) unmapWhenGarbage() {
	runtime.AddCleanup(t, (*mapped).unmapAll, t.maps)
}
