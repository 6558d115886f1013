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
// the table's uneven speeds without letting memory grow (32×256×~110 B,
// under 1 MiB).
const (
	batchSize       = 256
	batchesInFlight = 32
)

type batch struct {
	n int
	// advance, when non-zero, asks the table to move its clock to this
	// packet time after the batch's packets (a live source's read timeout).
	advance int64
	pkts    [batchSize]capture.Packet
}

// Table is the part of the classifier the pipeline drives.
type Table interface {
	Process(p *capture.Packet)
	Advance(now int64)
}

// BatchTable is a Table that follows a batch of packets faster than one
// Process call each, with the same effect: the pipeline hands it whole
// batches.
type BatchTable interface {
	Table
	ProcessBatch(pkts []capture.Packet)
}

var _ BatchTable = (*classifier.Table)(nil)

// processBatch gives the table the batch's packets, then its Advance.
func processBatch(table Table, b *batch) {
	if bt, ok := table.(BatchTable); ok {
		bt.ProcessBatch(b.pkts[:b.n])
	} else {
		for i := range b.n {
			table.Process(&b.pkts[i])
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
	var (
		rec    capture.Record
		counts localCounts
	)
	for b := range free {
		err := readBatch(src, &rec, b, &counts)
		counts.publish(stats)
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
		b      batch
		rec    capture.Record
		counts localCounts
	)
	defer counts.publish(stats)
	for {
		counts.publish(stats)
		if ctx.Err() != nil {
			return nil
		}
		err := readBatch(src, &rec, &b, &counts)
		processBatch(table, &b)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// readBatch decodes records into b until it is full, the source reports
// an idle moment (b.advance is then set) or an error, which it returns.
func readBatch(src capture.Reader, rec *capture.Record, b *batch, counts *localCounts) error {
	b.n, b.advance = 0, 0
	for b.n < batchSize {
		err := src.Next(rec)
		if err != nil {
			var idle *capture.Idle
			if errors.As(err, &idle) {
				b.advance = idle.Now
				return nil
			}
			return err
		}
		p := &b.pkts[b.n]
		p.TS, p.WireLen = rec.TS, rec.WireLen
		status := capture.Decode(rec.Link, rec.Data, p)
		counts.count(status, rec.Link, rec.WireLen)
		counts.lastTS = rec.TS
		if status == capture.StatusOK {
			b.n++
		}
	}
	return nil
}
