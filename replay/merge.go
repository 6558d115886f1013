package replay

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/tpwatch/tpwatch/capture"
)

// merged reads several capture files as one capture, record by record in
// packet time, as mergecap merges them: a capture split by direction or
// by interface is one conversation again, and a reply is never read
// before its request because it sits in another file. Equal times keep
// the order of the files as given.
//
// A file is opened only when the merge reaches the time of its first
// packet, and closed at its end, so that a ring buffer of hundreds of
// files that follow one another holds one or two open at a time. A record
// it hands out is the file reader's own, valid until its next Next, which
// the merge calls only when asked for the record after: nothing is copied.
//
// A file that cannot be read, or not to its end, leaves the merge with
// what it gave; its error, which names the file and where it stopped, is
// kept for the end (errs) rather than ending the merge. merged itself
// never returns an error but io.EOF.
type merged struct {
	// later are the files not opened yet, by the time of their first
	// packet, latest first (the next to open is the last).
	later []laterFile
	// heap holds the open files, the earliest current record at the top.
	heap []*mergeFile
	// given is the file whose record Next handed out last: it moves on to
	// its next record at the next call.
	given *mergeFile
	// done are the files read to their end or their error, in that order.
	done []*mergeFile
	// mostOpen is the most files open at once so far.
	mostOpen int
}

// laterFile is a file to open when the merge reaches first.
type laterFile struct {
	name  string
	first int64
	order int
}

// mergeFile is one open file of the merge and its current record.
type mergeFile struct {
	name    string
	order   int // its place in the list given
	r       capture.Reader
	rec     capture.Record
	records int   // records handed out
	err     error // why it ended early, or nil
	// unsupported counts its records of a link type Decode does not read,
	// unsupLink is the last such type; lastLink is the link type of its
	// last record (when linkSeen) and lastOK whether Decode reads it.
	unsupported int
	unsupLink   capture.LinkType
	lastLink    capture.LinkType
	linkSeen    bool
	lastOK      bool
}

var _ capture.Reader = (*merged)(nil)

// newMerged prepares the merge of files: it reads the first packet of
// each (and closes it again) to know when to open it.
func newMerged(files []string) *merged {
	m := &merged{}
	var failed []laterFile
	for i, name := range files {
		f := laterFile{name: name, order: i}
		src, err := capture.OpenFile(name)
		if err != nil {
			failed = append(failed, f)
			continue
		}
		var rec capture.Record
		if src.Next(&rec) == nil {
			f.first = rec.TS
			m.later = append(m.later, f)
		} else {
			failed = append(failed, f)
		}
		src.Close()
	}
	slices.SortStableFunc(m.later, func(a, b laterFile) int {
		if c := cmp.Compare(a.first, b.first); c != 0 {
			return -c
		}
		return -cmp.Compare(a.order, b.order)
	})
	// A file whose first packet could not be read is opened now: its
	// error (or its emptiness) is known at once, and were it readable
	// after all, its packets still take their place by time.
	for _, f := range failed {
		m.open(f)
	}
	return m
}

// files returns the names in the order of their first packet, those that
// have none at the end.
func (m *merged) files() []string {
	var names []string
	for i := len(m.later) - 1; i >= 0; i-- {
		names = append(names, m.later[i].name)
	}
	for _, f := range m.heap {
		names = append(names, f.name)
	}
	for _, f := range m.done {
		names = append(names, f.name)
	}
	return names
}

// open opens f and adds it to the heap at its first record, or to done.
func (m *merged) open(f laterFile) {
	mf := &mergeFile{name: f.name, order: f.order}
	r, err := capture.OpenFile(f.name)
	if err != nil {
		mf.err = err
		m.done = append(m.done, mf)
		return
	}
	mf.r = r
	if !m.read(mf) {
		return
	}
	m.heap = append(m.heap, mf)
	m.up(len(m.heap) - 1)
	m.mostOpen = max(m.mostOpen, len(m.heap))
}

// read moves f to its next record, and reports false when it has none:
// f is then closed and done.
func (m *merged) read(f *mergeFile) bool {
	err := f.r.Next(&f.rec)
	if err == nil {
		if l := f.rec.Link; l != f.lastLink || !f.linkSeen {
			f.lastLink, f.lastOK, f.linkSeen = l, l.Decodable(), true
		}
		return true
	}
	if !errors.Is(err, io.EOF) {
		f.err = err
	}
	f.r.Close()
	f.r = nil
	m.done = append(m.done, f)
	return false
}

// Next hands out the earliest record of the open files, after opening the
// files whose first packet comes no later.
func (m *merged) Next(rec *capture.Record) error {
	if f := m.given; f != nil {
		m.given = nil
		if m.read(f) {
			m.down(0)
		} else {
			m.pop()
		}
	}
	for n := len(m.later); n > 0 && (len(m.heap) == 0 || m.later[n-1].first <= m.heap[0].rec.TS); n = len(m.later) {
		f := m.later[n-1]
		m.later = m.later[:n-1]
		m.open(f)
	}
	if len(m.heap) == 0 {
		return io.EOF
	}
	f := m.heap[0]
	*rec = f.rec
	f.records++
	if !f.lastOK {
		f.unsupported++
		f.unsupLink = f.rec.Link
	}
	m.given = f
	return nil
}

// Close closes the files still open.
func (m *merged) Close() error {
	for _, f := range m.heap {
		f.r.Close()
	}
	m.heap, m.given = nil, nil
	return nil
}

// errs returns what went wrong with each file, in the order the files
// ended: read errors with the packets read before them, and files of a
// link type tpwatch does not decode.
func (m *merged) errs() []error {
	var out []error
	for _, f := range m.done {
		switch {
		case f.err != nil && f.records > 0:
			out = append(out, fmt.Errorf("%w (the %d packets before it were classified)", f.err, f.records))
		case f.err != nil:
			out = append(out, f.err)
		}
		if f.unsupported > 0 {
			out = append(out, unsupportedError(f.name, uint64(f.unsupported), uint64(f.records), f.unsupLink))
		}
	}
	return out
}

// before orders the heap: earlier records first, and between equal
// times, the file given first.
func (m *merged) before(i, j int) bool {
	a, b := m.heap[i], m.heap[j]
	if a.rec.TS != b.rec.TS {
		return a.rec.TS < b.rec.TS
	}
	return a.order < b.order
}

func (m *merged) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !m.before(i, parent) {
			return
		}
		m.heap[i], m.heap[parent] = m.heap[parent], m.heap[i]
		i = parent
	}
}

func (m *merged) down(i int) {
	n := len(m.heap)
	for {
		least, l, r := i, 2*i+1, 2*i+2
		if l < n && m.before(l, least) {
			least = l
		}
		if r < n && m.before(r, least) {
			least = r
		}
		if least == i {
			return
		}
		m.heap[i], m.heap[least] = m.heap[least], m.heap[i]
		i = least
	}
}

// pop removes the top of the heap.
func (m *merged) pop() {
	n := len(m.heap) - 1
	m.heap[0] = m.heap[n]
	m.heap[n] = nil
	m.heap = m.heap[:n]
	if n > 0 {
		m.down(0)
	}
}
