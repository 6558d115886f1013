package pipeline

import (
	"context"
	"errors"
	"io"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/classifier"
)

// Batches of decoded packets travel from the reader to the flow table. The
// sizes follow the feasibility measurements of the performance issue: 256
// packets amortise the channel hand-off (about 100 ns) to well under a
// nanosecond a packet, and 32 batches in flight absorb the reader's and
// the table's uneven speeds without letting memory grow (32×256×32 B of
// slim packets, 256 KiB, and the rare whole ones).
const (
	batchSize       = 256
	batchesInFlight = 32
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
	ProcessSlim(slim []classifier.Slim, whole []capture.Packet)
}

var _ BatchTable = (*classifier.Table)(nil)

// processBatch gives the table the batch's packets, then its Advance.
func processBatch(table Table, b *batch) {
	if bt, ok := table.(BatchTable); ok {
		bt.ProcessSlim(b.slim[:b.n], b.whole[:b.wholes])
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
	// goroutine. The result is identical; it exists to prove that, and for
	// one-core machines.
	Sequential bool
}

// Run reads src until it ends, feeding every decoded IP packet to table,
// and returns nil at a clean end of input. A read error is returned as it
// came (it says where the source stopped); every record before it has been
// classified. Cancelling ctx stops the run between batches.
func Run(ctx context.Context, src capture.Reader, table Table, stats *SourceStats, opts Options) error {
	if opts.Sequential {
		return runSequential(ctx, src, table, stats)
	}
	free := make(chan *batch, batchesInFlight)
	full := make(chan *batch, batchesInFlight)
	for range batchesInFlight {
		free <- new(batch)
	}
	readErr := make(chan error, 1)
	go func() {
		readErr <- readBatches(ctx, src, stats, free, full)
		close(full)
	}()
	for b := range full {
		processBatch(table, b)
		free <- b
	}
	return <-readErr
}

// readBatches is the reading goroutine: it decodes records straight into
// the packets of a free batch, so a packet is never copied.
func readBatches(ctx context.Context, src capture.Reader, stats *SourceStats, free <-chan *batch, full chan<- *batch) error {
	r := new(reading)
	for b := range free {
		err := readBatch(src, r, b)
		r.counts.publish(stats)
		if b.n > 0 || b.advance != 0 {
			full <- b
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
	return nil
}

// runSequential reads a batch, then classifies it, on the calling
// goroutine.
func runSequential(ctx context.Context, src capture.Reader, table Table, stats *SourceStats) error {
	var (
		b batch
		r reading
	)
	defer r.counts.publish(stats)
	for {
		r.counts.publish(stats)
		if ctx.Err() != nil {
			return nil
		}
		err := readBatch(src, &r, &b)
		processBatch(table, &b)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
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
	counts localCounts
	stage  [batchSize]classifier.Slim
}

// readBatch decodes records into b until it is full, the source reports
// an idle moment (b.advance is then set) or an error, which it returns.
func readBatch(src capture.Reader, r *reading, b *batch) error {
	b.n, b.advance, b.wholes = 0, 0, 0
	err := stageBatch(src, r, b)
	copy(b.slim[:b.n], r.stage[:b.n])
	return err
}

func stageBatch(src capture.Reader, r *reading, b *batch) error {
	rec, p, counts := &r.rec, &r.pkt, &r.counts
	for b.n < batchSize && b.wholes < wholePerBatch {
		err := src.Next(rec)
		if err != nil {
			var idle *capture.Idle
			if errors.As(err, &idle) {
				b.advance = idle.Now
				return nil
			}
			return err
		}
		p.TS, p.WireLen = rec.TS, rec.WireLen
		status := capture.Decode(rec.Link, rec.Data, p)
		counts.count(status, rec.Link, rec.WireLen)
		counts.lastTS = rec.TS
		if status == capture.StatusOK {
			if r.stage[b.n].Set(p) {
				b.whole[b.wholes] = *p
				b.wholes++
			}
			b.n++
		}
	}
	return nil
}
