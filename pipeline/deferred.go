package pipeline

import "github.com/tpwatch/tpwatch/classifier"

// DeferredSink moves a table's sink work (the JSON line, the report's
// counts) off the table's goroutine, the one a replay waits for, onto the
// reading goroutine, which has time to spare. Made with the real sink as
// Target, its TableSink is given to the table and the DeferredSink itself
// to Run in Options: during Run the table only copies each call into a
// chunk, and the reading goroutine hands full chunks to Target, in the
// order the table made the calls, whenever it waits for a batch to fill;
// at the end of Run the rest is handed before Run returns. Outside Run (a
// Flush after it), calls go straight to Target.
//
// Memory is bounded: when every chunk waits to be handed (a sweep that
// ends a whole table at once), the table waits for the reader, which is
// then the direct sink's speed.
//
// Target sees the same calls in the same order as it would as the table's
// own sink, later. For a live capture, whose metrics should not lag, use
// the sink directly.
type DeferredSink struct {
	Target classifier.Sink
	alive  classifier.AliveSink // Target, when it is one

	// During Run: cur is the chunk the table fills (nil: calls go
	// straight to Target); filled are full chunks in order, spare empty
	// ones.
	cur           *records
	filled, spare chan *records
}

// NewDeferredSink returns a DeferredSink for target.
func NewDeferredSink(target classifier.Sink) *DeferredSink {
	alive, _ := target.(classifier.AliveSink)
	return &DeferredSink{Target: target, alive: alive}
}

// TableSink is the sink to give the table: an AliveSink only when Target
// is one, so that the table does not report live flows for nothing.
func (d *DeferredSink) TableSink() classifier.Sink {
	if d.alive != nil {
		return deferredAlive{deferredPlain{d}}
	}
	return deferredPlain{d}
}

// Chunks: 16 of 128 calls (17 KiB each) keep a replay's table from ever
// waiting on the benchmark capture (92 calls a batch at most), in 280 KiB.
const (
	chunkCalls = 128
	chunks     = 16
)

// records are sink calls in the order the table made them.
type records struct {
	calls []deferredCall
}

type callKind uint8

const (
	callDecided callKind = iota
	callFinal
	callAlive
)

type deferredCall struct {
	kind callKind
	rec  classifier.FlowRecord
}

// start gives the table its first chunk; Run calls it before the reader
// starts. The chunks are made once and serve every Run (a replay of many
// files): all are spare again when a Run has returned.
func (d *DeferredSink) start() {
	if d.spare == nil {
		d.spare = make(chan *records, chunks)
		for range chunks {
			d.spare <- &records{calls: make([]deferredCall, 0, chunkCalls)}
		}
	}
	d.filled = make(chan *records, chunks)
	d.cur = <-d.spare
}

// finish sends the table's last chunk and closes the queue: the reader
// hands what is left, then ends. Run calls it once the table is done.
func (d *DeferredSink) finish() {
	d.filled <- d.cur
	close(d.filled)
	d.cur = nil
}

// add records a call on the table's goroutine, or makes it when outside
// Run.
func (d *DeferredSink) add(kind callKind, r *classifier.FlowRecord) {
	if d.cur == nil {
		d.call(kind, r)
		return
	}
	d.cur.calls = append(d.cur.calls, deferredCall{kind, *r})
	if len(d.cur.calls) == chunkCalls {
		d.filled <- d.cur // never blocks: there are as many places as chunks
		d.cur = <-d.spare // waits while the reader is behind
	}
}

func (d *DeferredSink) call(kind callKind, r *classifier.FlowRecord) {
	switch kind {
	case callDecided:
		d.Target.Decided(r)
	case callFinal:
		d.Target.Final(r)
	case callAlive:
		d.alive.Alive(r)
	}
}

// hand gives Target the calls of a chunk, on the reading goroutine, and
// returns the chunk to the table.
func (d *DeferredSink) hand(q *records) {
	for i := range q.calls {
		d.call(q.calls[i].kind, &q.calls[i].rec)
	}
	q.calls = q.calls[:0]
	d.spare <- q // never blocks: there are as many places as chunks
}

// handReady hands the chunks that are full, without waiting.
func (d *DeferredSink) handReady() {
	for {
		select {
		case q, ok := <-d.filled:
			if !ok {
				return
			}
			d.hand(q)
		default:
			return
		}
	}
}

// deferredPlain and deferredAlive are the table's view of a DeferredSink.
type deferredPlain struct{ d *DeferredSink }

func (s deferredPlain) Decided(r *classifier.FlowRecord) { s.d.add(callDecided, r) }
func (s deferredPlain) Final(r *classifier.FlowRecord)   { s.d.add(callFinal, r) }

type deferredAlive struct{ deferredPlain }

func (s deferredAlive) Alive(r *classifier.FlowRecord) { s.d.add(callAlive, r) }
