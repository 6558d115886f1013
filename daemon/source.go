package daemon

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/capture/live"
	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/metrics"
	"github.com/tpwatch/tpwatch/pipeline"
	"github.com/tpwatch/tpwatch/policy"
)

// statsCheckRecords is how many records go by between two looks at the
// clock for the drop counters' next reading.
const statsCheckRecords = 1024

// source is one interface: its capture (reopened after failures), its flow
// table and its counters. Only run's goroutine and the pipeline it starts
// touch the table; the metrics read the atomics.
type source struct {
	name    string
	backend Backend
	opts    live.Options
	table   *classifier.Table
	sink    *flowSink // the table's sink, for the totals logged at the end
	log     zerolog.Logger

	retryMin, retryMax time.Duration
	statsEvery         time.Duration

	// filter is the BPF expression for the next open; open is the capture
	// in use, if any, so that a reload can change its filter.
	mu     sync.Mutex
	filter string
	open   Capture

	// timeouts, when set, are a reloaded config's, for the table's
	// goroutine to put in force (applyTimeouts).
	timeouts atomic.Pointer[policy.Timeouts]

	stats pipeline.SourceStats
	up    atomic.Bool
	// The capture's drop counters summed over every capture this source
	// has opened.
	kernelDrops, ifDrops atomic.Uint64
	// opened is a capture opened before run started (before privileges
	// were dropped), or nil, and openedWith the filter it was opened with;
	// openFailed says that attempt failed, so run waits before the next
	// one.
	opened     Capture
	openedWith string
	openFailed bool
}

// tryOpen tries once to open the interface, before privileges are
// dropped.
func (s *source) tryOpen() error {
	o := s.liveOptions()
	c, err := s.backend.Open(s.name, o)
	if err != nil {
		s.openFailed = true
		return err
	}
	s.opened, s.openedWith = c, o.BPF
	return nil
}

func (s *source) liveOptions() live.Options {
	o := s.opts
	s.mu.Lock()
	o.BPF = s.filter
	s.mu.Unlock()
	return o
}

// checkFilter says whether the open capture would accept expr.
func (s *source) checkFilter(expr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open != nil {
		return s.open.CheckFilter(expr)
	}
	return nil
}

// setFilter changes the filter of the open capture and of later opens.
func (s *source) setFilter(expr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open != nil {
		if err := s.open.SetFilter(expr); err != nil {
			return err
		}
	}
	s.filter = expr
	return nil
}

// setTimeouts asks for t to be put in force on the table.
func (s *source) setTimeouts(t policy.Timeouts) { s.timeouts.Store(&t) }

// applyTimeouts puts reloaded timeouts in force, on the table's goroutine.
func (s *source) applyTimeouts() {
	if t := s.timeouts.Swap(nil); t != nil {
		s.table.SetTimeouts(*t)
	}
}

// run captures until ctx is done, reopening the interface after a failure
// with exponential backoff, then flushes the flow table at the last packet
// time.
func (s *source) run(ctx context.Context) {
	defer s.flush()
	backoff := s.retryMin
	c, filter := s.opened, s.openedWith
	s.opened = nil
	if s.openFailed {
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, s.retryMax)
	}
	for {
		if c == nil {
			var err error
			o := s.liveOptions()
			filter = o.BPF
			c, err = s.backend.Open(s.name, o)
			if err != nil {
				s.log.Warn().Err(err).Str("interface", s.name).Stringer("retry_in", backoff).Msg("cannot open interface; retrying")
				if !sleep(ctx, backoff) {
					return
				}
				backoff = min(2*backoff, s.retryMax)
				continue
			}
		}
		s.log.Info().Str("interface", s.name).Str("link", c.Link().String()).Str("filter", s.liveOptions().BPF).Msg("capturing")
		started := time.Now()
		err := s.capture(ctx, c, filter)
		c = nil
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > s.retryMax {
			backoff = s.retryMin // it worked for a while: not a failure loop
		}
		if err == nil {
			err = errors.New("capture ended")
		}
		s.log.Error().Err(err).Str("interface", s.name).Stringer("retry_in", backoff).Msg("capture failed; reopening")
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, s.retryMax)
	}
}

// flush ends the table's flows at the last packet time and logs the
// totals of the whole run: what was counted must still be readable after
// the last scrape, so a stop in the middle of a flood loses nothing
// silently.
func (s *source) flush() {
	s.applyTimeouts()
	flows := s.table.Stats().Active
	s.table.Flush(s.stats.LastTS.Load())
	st := s.table.Stats()
	s.log.Info().Str("interface", s.name).Uint64("flows", flows).
		Uint64("packets", s.stats.Records.Load()).
		Uint64("bytes", s.stats.Bytes.Load()).
		Uint64("kernel_drops", s.kernelDrops.Load()).
		Uint64("flows_created", st.FlowsCreated).
		Uint64("flows_evicted", st.FlowsEvicted).
		Uint64("flows_expired", st.FlowsExpired).
		Uint64("flows_decided", s.sink.decided.Load()).
		Msg("flushed the flow table")
}

// capture runs the pipeline on one open capture, opened with filter,
// until it fails or ctx is done, and closes it.
func (s *source) capture(ctx context.Context, c Capture, filter string) error {
	s.mu.Lock()
	s.open = c
	var refilter error
	if s.filter != filter {
		// A reload while c was being opened changed the filter for the
		// next open only: c must follow it too.
		refilter = c.SetFilter(s.filter)
	}
	s.mu.Unlock()
	if refilter != nil {
		s.log.Error().Err(refilter).Str("interface", s.name).Msg("capture filter not changed on this interface")
	}
	s.up.Store(true)
	if b, ok := c.(interface{ Break() }); ok {
		// A capture that can end a read at once (Npcap) stops without
		// waiting for its read timeout; under Wine's wpcap.dll, whose
		// reads ignore the timeout on a quiet interface, it stops at all.
		stop := context.AfterFunc(ctx, b.Break)
		defer stop()
	}
	r := &dropCounting{Capture: c, src: s}
	err := pipeline.Run(ctx, r, s.table, &s.stats, pipeline.Options{
		// A packet trickling in waits no longer than the read timeout
		// for its batch to reach the table, and a SIGTERM neither.
		Latency:     s.opts.ReadTimeout,
		BeforeBatch: s.applyTimeouts,
	})
	s.up.Store(false)
	r.publish()
	s.mu.Lock()
	s.open = nil
	s.mu.Unlock()
	c.Close()
	return err
}

// snapshot returns the source's counters for the capture collector.
func (s *source) snapshot() metrics.CaptureStats {
	return metrics.CaptureStats{
		Counts:         s.stats.Counts(),
		KernelDrops:    s.kernelDrops.Load(),
		InterfaceDrops: s.ifDrops.Load(),
		Up:             s.up.Load(),
	}
}

// dropCounting is the capture as the pipeline reads it: it also reads the
// capture's drop counters now and then, on the reading goroutine (libpcap's
// statistics call is not meant to race with a read), and adds what they
// grew by to the source's.
type dropCounting struct {
	Capture
	src  *source
	n    int
	next time.Time
	// The last values read from this capture; they count in 32 bits, so
	// differences are taken modulo 2^32.
	lastKernel, lastIf uint32
}

func (d *dropCounting) Next(r *capture.Record) error {
	err := d.Capture.Next(r)
	d.n++
	if err != nil || d.n%statsCheckRecords == 0 {
		if now := time.Now(); now.After(d.next) {
			d.next = now.Add(d.src.statsEvery)
			d.publish()
		}
	}
	return err
}

func (d *dropCounting) publish() {
	st, err := d.Capture.Stats()
	if err != nil {
		return
	}
	d.src.kernelDrops.Add(uint64(st.KernelDrops - d.lastKernel))
	d.src.ifDrops.Add(uint64(st.InterfaceDrops - d.lastIf))
	d.lastKernel, d.lastIf = st.KernelDrops, st.InterfaceDrops
}

// sleep waits for d or until ctx is done, and says whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
