package pipeline

import (
	"context"
	"errors"
	"io"
	"runtime"
	"time"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/classifier"
)

// 16 batches in flight absorb the reader's and the table's uneven speeds
// (32 measured no faster on the benchmark capture, and took 0.6 MiB more)
// without letting memory grow: 16 batches of 17 KiB, and a DeferredSink's
// chunks, 280 KiB.
const batchesInFlight = 16

// batch is a classifier.Batch on its way to the table, and what the
// reader tells the table besides its packets.
type batch struct {
	*classifier.Batch
	// advance, when non-zero, asks the table to move its clock to this
	// time after the batch's packets: a live source had nothing to read
	// for its read timeout.
	advance int64
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
	// Latency, when positive, bounds how long a packet waits in a batch
	// that is not full, in packet time: a live capture whose packets
	// trickle in hands them to the table (and notices a cancelled ctx)
	// at least this often. Zero fills every batch (a replay), and a live
	// source's read timeout still hands what it has.
	Latency time.Duration
	// BeforeBatch, when set, is called on the table's goroutine before
	// each batch, and once before the first: the daemon applies a
	// reloaded config's timeouts there, where the table may be touched.
	BeforeBatch func()
}

// Run reads src until it ends, feeding every decoded IP packet to table,
// and returns nil at a clean end of input. A read error is returned as it
// came (it says where the source stopped); every record before it has been
// classified. Cancelling ctx stops the run between batches.
func Run(ctx context.Context, src capture.Reader, table *classifier.Table, stats *SourceStats, opts Options) error {
	if opts.BeforeBatch == nil {
		opts.BeforeBatch = func() {}
	}
	opts.BeforeBatch()
	if opts.Sequential || runtime.GOMAXPROCS(0) == 1 {
		return runSequential(ctx, src, table, stats, opts)
	}
	// Made on this goroutine, the table's, before the reader starts: it
	// reads the table's hash seed.
	ld := table.NewLoader(true)
	// full has room for every batch, so that the reader never waits to
	// hand one over: it must stay free to hand a DeferredSink's chunks.
	free := make(chan *batch, batchesInFlight)
	full := make(chan *batch, batchesInFlight)
	for range batchesInFlight {
		free <- &batch{Batch: ld.NewBatch()}
	}
	d := opts.Deferred
	if d != nil {
		d.start()
	}
	r := &reading{ld: ld, latency: int64(opts.Latency)}
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
		opts.BeforeBatch()
		processBatch(table, b)
		free <- b
	}
	if d != nil {
		d.finish()
	}
	return <-readErr
}

// processBatch gives the table the batch's packets, then its Advance.
func processBatch(table *classifier.Table, b *batch) {
	table.ProcessBatch(b.Batch)
	if b.advance != 0 {
		table.Advance(b.advance)
	}
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
		err := r.fill(src, b)
		r.counts.publish(stats)
		if b.Len() > 0 || b.advance != 0 {
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

// runSequential reads a batch, then classifies it, on the calling
// goroutine.
func runSequential(ctx context.Context, src capture.Reader, table *classifier.Table, stats *SourceStats, opts Options) error {
	r := &reading{ld: table.NewLoader(false), latency: int64(opts.Latency)}
	b := &batch{Batch: r.ld.NewBatch()}
	defer r.counts.publish(stats)
	for {
		r.counts.publish(stats)
		if ctx.Err() != nil {
			return nil
		}
		err := r.fill(src, b)
		opts.BeforeBatch()
		processBatch(table, b)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// reading is the reading goroutine's own state: the record it reads into,
// the loader of its batches, and its counters.
type reading struct {
	rec     capture.Record
	ld      *classifier.Loader
	counts  localCounts
	latency int64 // Options.Latency in ns; 0: none
}

// fill decodes records into b until it is full, the source reports an
// idle moment (b.advance is then set), the latency has passed since the
// batch's first packet, or an error, which it returns.
func (r *reading) fill(src capture.Reader, b *batch) error {
	b.advance = 0
	ld := r.ld
	ld.Start(b.Batch)
	defer ld.Finish()
	first := int64(0)
	for !ld.Full() {
		if err := src.Next(&r.rec); err != nil {
			var idle *capture.Idle
			if errors.As(err, &idle) {
				b.advance = idle.Now
				return nil
			}
			return err
		}
		rec := &r.rec
		// Most packets take the short way, straight into their slim form.
		if ld.AddFrame(rec) {
			r.tally(capture.StatusOK)
		} else {
			p := ld.Packet()
			p.TS, p.WireLen = rec.TS, rec.WireLen
			status := capture.Decode(rec.Link, rec.Data, p)
			r.tally(status)
			if status == capture.StatusOK {
				if p.Tunnels != 0 {
					r.counts.decapsulated++
				}
				ld.Add(rec.Data)
			}
		}
		if r.latency > 0 {
			if first == 0 {
				first = rec.TS
			} else if rec.TS-first >= r.latency {
				return nil
			}
		}
	}
	return nil
}

// tally counts r.rec, decoded with status.
func (r *reading) tally(status capture.Status) {
	r.counts.count(status, r.rec.Link, r.rec.WireLen)
	r.counts.lastTS = r.rec.TS
}
