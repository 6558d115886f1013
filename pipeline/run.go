package pipeline

import (
	"context"
	"errors"
	"io"
	"runtime"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/classifier"
)

// Batches of decoded packets travel from the reader to the flow table. 256
// packets amortise the channel hand-off (about 100 ns) to well under a
// nanosecond a packet, and 16 batches in flight absorb the reader's and
// the table's uneven speeds (32 measured no faster on the benchmark
// capture, and took 0.6 MiB more) without letting memory grow: 16 × (256
// slim packets of 40 B and 64 whole ones), 270 KiB, and a DeferredSink's
// chunks, 280 KiB.
const (
	batchSize       = 256
	batchesInFlight = 16
	// wholePerBatch bounds the packets a batch carries whole: an IPv6
	// capture gets batches of 64 packets, an IPv4 one does not pay 26 KiB
	// a batch for room it does not use.
	wholePerBatch = 64
)

type batch struct {
	n int
	// advance, when non-zero, asks the table to move its clock to this
	// packet time after the batch's packets (a live source's read timeout).
	advance int64
	// slim holds the packets, and whole, in order, those of them marked
	// Whole (an IPv6 packet, an ICMP error...): a batch ends when whole is
	// full. Only the slim packets, half a cache line each, and the whole
	// ones there are, cross to the table's core.
	slim   [batchSize]classifier.Slim
	whole  [wholePerBatch]capture.Packet
	wholes int
	seed   uint64 // the slim packets' flows are hashed with it; 0: none yet
}

// Table is the part of the classifier the pipeline drives.
type Table interface {
	Process(p *capture.Packet)
	Advance(now int64)
}

// BatchTable is a Table that follows a batch of packets faster than one
// Process call each, with the same effect: the pipeline hands it whole
// batches (see classifier.Table.ProcessSlim).
type BatchTable interface {
	Table
	ProcessSlim(slim []classifier.Slim, whole []capture.Packet, seed uint64)
	// Seed is the table's hash seed, once it has one: the reading
	// goroutine hashes the flows of the slim packets with it.
	Seed() (uint64, bool)
}

var _ BatchTable = (*classifier.Table)(nil)

// processBatch gives the table the batch's packets, then its Advance.
func processBatch(table Table, b *batch) {
	if bt, ok := table.(BatchTable); ok {
		bt.ProcessSlim(b.slim[:b.n], b.whole[:b.wholes], b.seed)
	} else {
		var p capture.Packet
		w := 0
		for i := range b.n {
			if b.slim[i].Whole {
				table.Process(&b.whole[w])
				w++
			} else {
				b.slim[i].Packet(&p)
				table.Process(&p)
			}
		}
	}
	if b.advance != 0 {
		table.Advance(b.advance)
	}
}

// Options tune Run.
type Options struct {
	// Sequential runs reading, decoding and classification on the calling
	// goroutine. The result is identical; it exists to prove that, and is
	// what Run does anyway when the Go runtime has one processor
	// (GOMAXPROCS=1: a one-core machine), where a second goroutine would
	// only take turns with the first.
	Sequential bool
	// Deferred, when the table's sink, has its work done on the reading
	// goroutine (see DeferredSink).
	Deferred *DeferredSink
}

// Run reads src until it ends, feeding every decoded IP packet to table,
// and returns nil at a clean end of input. A read error is returned as it
// came (it says where the source stopped); every record before it has been
// classified. Cancelling ctx stops the run between batches.
func Run(ctx context.Context, src capture.Reader, table Table, stats *SourceStats, opts Options) error {
	if opts.Sequential || runtime.GOMAXPROCS(0) == 1 {
		return runSequential(ctx, src, table, stats)
	}
	// full has room for every batch, so that the reader never waits to
	// hand one over: it must stay free to hand a DeferredSink's chunks.
	free := make(chan *batch, batchesInFlight)
	full := make(chan *batch, batchesInFlight)
	for range batchesInFlight {
		free <- new(batch)
	}
	d := opts.Deferred
	if d != nil {
		d.start()
	}
	r := newReading(table) // before the reader starts: the table is this goroutine's
	readErr := make(chan error, 1)
	go func() {
		err := readBatches(ctx, src, r, stats, free, full, d)
		close(full)
		if d != nil {
			// Hand the table's last chunks, until it is done.
			for q := range d.filled {
				d.hand(q)
			}
		}
		readErr <- err
	}()
	for b := range full {
		processBatch(table, b)
		free <- b
	}
	if d != nil {
		d.finish()
	}
	return <-readErr
}

// readBatches is the reading goroutine: it fills free batches with the
// packets it decodes and hands them to the table, and meanwhile, whenever
// it has a DeferredSink's chunks to hand, hands them.
func readBatches(ctx context.Context, src capture.Reader, r *reading, stats *SourceStats, free chan *batch, full chan<- *batch, d *DeferredSink) error {
	for {
		var b *batch
		if d == nil {
			b = <-free
		} else {
			d.handReady()
			select {
			case b = <-free:
			case q := <-d.filled:
				d.hand(q)
				continue
			}
		}
		err := readBatch(src, r, b)
		r.counts.publish(stats)
		if b.n > 0 || b.advance != 0 {
			full <- b
		} else {
			free <- b // empty: back where Run counts its batches at the end
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// WholeBatchTable is a Table that follows a batch of whole packets faster
// than one Process call each (classifier.Table.ProcessBatch).
type WholeBatchTable interface {
	Table
	ProcessBatch(pkts []capture.Packet)
}

// runSequential reads a batch, then classifies it, on the calling
// goroutine. The packets stay whole: their slim form only pays for itself
// when the batch crosses to another core.
func runSequential(ctx context.Context, src capture.Reader, table Table, stats *SourceStats) error {
	var (
		pkts [batchSize]capture.Packet
		r    reading
	)
	wb, batched := table.(WholeBatchTable)
	defer r.counts.publish(stats)
	for {
		r.counts.publish(stats)
		if ctx.Err() != nil {
			return nil
		}
		n, advance, err := readWhole(src, &r, pkts[:])
		if batched {
			wb.ProcessBatch(pkts[:n])
		} else {
			for i := range pkts[:n] {
				table.Process(&pkts[i])
			}
		}
		if advance != 0 {
			table.Advance(advance)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// readWhole decodes records into pkts until it is full, the source
// reports an idle moment (advance is then its time) or an error.
func readWhole(src capture.Reader, r *reading, pkts []capture.Packet) (n int, advance int64, err error) {
	for n < len(pkts) {
		ok, advance, err := r.decodeNext(src, &pkts[n])
		if err != nil || advance != 0 {
			return n, advance, err
		}
		if ok {
			n++
		}
	}
	return n, 0, nil
}

// decodeNext reads the next record into p and counts it: ok when p is an
// IP packet to follow; advance, when the source reports an idle moment,
// is its time.
func (r *reading) decodeNext(src capture.Reader, p *capture.Packet) (ok bool, advance int64, err error) {
	idle, now, err := r.next(src)
	if err != nil || idle {
		return false, now, err
	}
	return r.decode(p), 0, nil
}

// next reads the next record into r.rec, or reports an idle moment of the
// source (idle, at time now) and leaves r.rec as it was.
func (r *reading) next(src capture.Reader) (idle bool, now int64, err error) {
	if err := src.Next(&r.rec); err != nil {
		var i *capture.Idle
		if errors.As(err, &i) {
			return true, i.Now, nil
		}
		return false, 0, err
	}
	return false, 0, nil
}

// decode decodes r.rec into p and counts it: true when p is an IP packet
// to follow.
func (r *reading) decode(p *capture.Packet) bool {
	rec := &r.rec
	p.TS, p.WireLen = rec.TS, rec.WireLen
	status := capture.Decode(rec.Link, rec.Data, p)
	r.tally(status)
	return status == capture.StatusOK
}

// tally counts r.rec, decoded with status.
func (r *reading) tally(status capture.Status) {
	r.counts.count(status, r.rec.Link, r.rec.WireLen)
	r.counts.lastTS = r.rec.TS
}

// reading is the reading goroutine's own state: the record and the packet
// it decodes into, the batch's slim packets as they are made, and its
// counters. The slim packets are staged here and copied into the batch
// when it is complete: storing each one into the batch, whose lines were
// last read on the table's core, made every store wait for a line from
// the other core and took a third of the replay's CPU; one copy of the
// whole batch moves the same lines many at a time.
type reading struct {
	rec    capture.Record
	pkt    capture.Packet
	flow4  capture.Flow4
	counts localCounts
	seed   uint64
	seeded bool
	stage  [batchSize]classifier.Slim
}

// newReading returns the reading state for table, with its seed if it
// has one.
func newReading(table Table) *reading {
	r := new(reading)
	if bt, ok := table.(BatchTable); ok {
		r.seed, r.seeded = bt.Seed()
	}
	return r
}

// readBatch decodes records into b until it is full, the source reports
// an idle moment (b.advance is then set) or an error, which it returns.
// Flows are hashed with r's seed; a reader without one (a table without
// one) takes it from the packet the table would take it from.
func readBatch(src capture.Reader, r *reading, b *batch) error {
	b.n, b.advance, b.wholes = 0, 0, 0
	err := stageBatch(src, r, b)
	copy(b.slim[:b.n], r.stage[:b.n])
	b.seed = r.seed
	return err
}

func stageBatch(src capture.Reader, r *reading, b *batch) error {
	p := &r.pkt
	for b.n < batchSize && b.wholes < wholePerBatch {
		idle, now, err := r.next(src)
		if err != nil || idle {
			b.advance = now
			return err
		}
		// Most packets take the short way, straight into their slim form
		// (the first, which seeds the hash, the general one).
		rec := &r.rec
		if r.seeded && rec.Link == capture.LinkEthernet && capture.DecodeFlow4(rec.Data, &r.flow4) {
			r.tally(capture.StatusOK)
			r.stage[b.n].SetFlow4(&r.flow4, rec.TS, rec.WireLen, r.seed)
			b.n++
			continue
		}
		if r.decode(p) {
			if !r.seeded {
				r.seed, r.seeded = classifier.SeedFrom(p)
			}
			if r.stage[b.n].Set(p, r.seed) {
				b.whole[b.wholes] = *p
				b.wholes++
			}
			b.n++
		}
	}
	return nil
}
