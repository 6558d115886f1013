package pipeline

import "github.com/tpwatch/tpwatch/classifier"

// DeferredSink moves a table's sink work (the JSON line, the report's
// counts) off the table's goroutine, the one a replay waits for, onto the
// reading goroutine, which has time to spare. Built with the real sink as
// Target and given to the table as its sink and to Run in Options, it only
// copies each record into the batch being followed; when the batch comes
// back to be filled again, the reading goroutine hands its records to
// Target, in the order the table made them. Outside Run (a Flush after
// it), records go straight to Target.
//
// Target sees the same calls in the same order as it would as the table's
// own sink, one batch later.
type DeferredSink struct {
	Target classifier.Sink
	alive  classifier.AliveSink // Target, when it is one
	cur    *records             // the queue of the batch being followed, or nil
}

// NewDeferredSink returns a DeferredSink for target.
func NewDeferredSink(target classifier.Sink) *DeferredSink {
	alive, _ := target.(classifier.AliveSink)
	return &DeferredSink{Target: target, alive: alive}
}

// records are the sink calls made while one batch was followed.
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

func (d *DeferredSink) Decided(r *classifier.FlowRecord) {
	if d.cur == nil {
		d.Target.Decided(r)
		return
	}
	d.cur.calls = append(d.cur.calls, deferredCall{callDecided, *r})
}

func (d *DeferredSink) Final(r *classifier.FlowRecord) {
	if d.cur == nil {
		d.Target.Final(r)
		return
	}
	d.cur.calls = append(d.cur.calls, deferredCall{callFinal, *r})
}

// Alive implements classifier.AliveSink; it is passed on only when Target
// is one.
func (d *DeferredSink) Alive(r *classifier.FlowRecord) {
	if d.alive == nil {
		return
	}
	if d.cur == nil {
		d.alive.Alive(r)
		return
	}
	d.cur.calls = append(d.cur.calls, deferredCall{callAlive, *r})
}

// hand gives Target the calls recorded in q, and empties it.
func (d *DeferredSink) hand(q *records) {
	for i := range q.calls {
		c := &q.calls[i]
		switch c.kind {
		case callDecided:
			d.Target.Decided(&c.rec)
		case callFinal:
			d.Target.Final(&c.rec)
		case callAlive:
			d.alive.Alive(&c.rec)
		}
	}
	q.calls = q.calls[:0]
}
