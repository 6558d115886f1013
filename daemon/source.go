package daemon

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/metrics"
	"github.com/tpwatch/tpwatch/pipeline"
)

// statsEvery is how often the reading goroutine asks libpcap for its drop
// counters: often enough for a scrape, rarely enough to cost nothing.
const (
	statsEvery        = time.Second
	statsCheckRecords = 1024
)

// source is one interface: its capture (reopened after failures), its flow
// table and its counters. Only run's goroutine and the pipeline it starts
// touch the table; the metrics read the atomics.
type source struct {
	name  string
	opts  capture.LiveOptions
	table *classifier.Table
	sink  *flowSink // the table's sink, for the totals logged at the end
	log   zerolog.Logger

	retryMin, retryMax time.Duration

	// filter is the BPF expression for the next open; live is the open
	// capture, if any, so a reload can change its filter.
	mu     sync.Mutex
	filter string
	live   *capture.Live

	stats pipeline.SourceStats
	up    atomic.Bool
	// pcap counters summed over every handle this source has opened.
	kernelDrops, ifDrops atomic.Uint64
	// opened is a capture opened before run started (before privileges
	// were dropped), or nil; openFailed says that attempt failed, so run
	// waits before the next one.
	opened     *capture.Live
	openFailed bool
}

// open tries once to open the interface, before privileges are dropped.
func (s *source) open() error {
	live, err := capture.OpenLive(s.name, s.liveOptions())
	if err != nil {
		s.openFailed = true
		return err
	}
	s.opened = live
	return nil
}

func (s *source) liveOptions() capture.LiveOptions {
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
	if s.live != nil {
		return s.live.CheckFilter(expr)
	}
	return nil
}

// setFilter changes the filter of the open capture and of later opens.
func (s *source) setFilter(expr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live != nil {
		if err := s.live.SetFilter(expr); err != nil {
			return err
		}
	}
	s.filter = expr
	return nil
}

// run captures until ctx is done, reopening the interface after a failure
// with exponential backoff, then flushes the flow table at the last packet
// time.
func (s *source) run(ctx context.Context) {
	defer func() {
		flows := s.table.Stats().Active
		s.table.Flush(s.stats.LastTS.Load())
		// The totals of the whole run, once the flush has decided what it
		// could: what was counted must still be readable after the last
		// scrape, so a stop in the middle of a flood loses nothing silently.
		st := s.table.Stats()
		ev := s.log.Info().Str("interface", s.name).Uint64("flows", flows).
			Uint64("packets", s.stats.Records.Load()).
			Uint64("bytes", s.stats.Bytes.Load()).
			Uint64("kernel_drops", s.kernelDrops.Load()).
			Uint64("flows_created", st.FlowsCreated).
			Uint64("flows_evicted", st.FlowsEvicted).
			Uint64("flows_expired", st.FlowsExpired)
		if s.sink != nil {
			ev = ev.Uint64("flows_decided", s.sink.decided.Load())
		}
		ev.Msg("flushed the flow table")
	}()
	backoff := s.retryMin
	live := s.opened
	s.opened = nil
	if s.openFailed {
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, s.retryMax)
	}
	for {
		if live == nil {
			var err error
			live, err = capture.OpenLive(s.name, s.liveOptions())
			if err != nil {
				s.log.Warn().Err(err).Str("interface", s.name).Stringer("retry_in", backoff).Msg("cannot open interface; retrying")
				if !sleep(ctx, backoff) {
					return
				}
				backoff = min(2*backoff, s.retryMax)
				continue
			}
		}
		s.log.Info().Str("interface", s.name).Str("link", live.Link().String()).Str("filter", s.liveOptions().BPF).Msg("capturing")
		started := time.Now()
		err := s.capture(ctx, live)
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
		live = nil
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, s.retryMax)
	}
}

// capture runs the pipeline on one open handle until it fails or ctx is
// done, and closes the handle.
func (s *source) capture(ctx context.Context, live *capture.Live) error {
	s.mu.Lock()
	s.live = live
	s.mu.Unlock()
	s.up.Store(true)
	interval := s.opts.ReadTimeout
	if interval <= 0 {
		interval = capture.DefaultLiveReadTimeout
	}
	reader := &liveReader{live: live, src: s, interval: int64(interval), lastIdle: time.Now().UnixNano()}
	err := pipeline.Run(ctx, reader, s.table, &s.stats, pipeline.Options{})
	s.up.Store(false)
	reader.publish()
	s.mu.Lock()
	s.live = nil
	s.mu.Unlock()
	live.Close()
	return err
}

// snapshot returns the source's counters for the capture collector.
func (s *source) snapshot() metrics.CaptureStats {
	return metrics.CaptureStats{
		Packets:           s.stats.Records.Load(),
		Bytes:             s.stats.Bytes.Load(),
		KernelDrops:       s.kernelDrops.Load(),
		InterfaceDrops:    s.ifDrops.Load(),
		DecodeTruncated:   s.stats.Truncated.Load(),
		DecodeMalformed:   s.stats.Malformed.Load(),
		DecodeUnsupported: s.stats.Unsupported.Load(),
		Up:                s.up.Load(),
	}
}

// liveReader is the capture as the pipeline reads it. It adds two things
// a live source needs:
//
//   - libpcap's drop counters, read now and then on the reading goroutine
//     (libpcap's statistics call is not meant to race with a read);
//   - an Idle at least every read timeout of packet time, even while
//     packets trickle in: the pipeline hands a partial batch to the table
//     and checks for shutdown only at an Idle or a full batch, and a
//     trickle that never lets the read time out would otherwise hold a few
//     packets (and a SIGTERM) back until 256 had come.
type liveReader struct {
	live     *capture.Live
	src      *source
	interval int64 // ns of packet time between Idles

	n        int
	next     time.Time
	lastIdle int64
	idle     capture.Idle   // returned by pointer; the pipeline keeps nothing
	held     capture.Record // a record read but returned after an Idle
	holding  bool
	// last values seen from this handle; libpcap counts in 32 bits, so
	// differences are taken modulo 2^32.
	lastKernel, lastIf uint32
}

func (d *liveReader) Next(r *capture.Record) error {
	if d.holding {
		// Data still points into libpcap's buffer: the handle has not
		// been read since.
		*r, d.holding = d.held, false
		return nil
	}
	err := d.live.Next(r)
	d.n++
	if err != nil || d.n%statsCheckRecords == 0 {
		if now := time.Now(); now.After(d.next) {
			d.next = now.Add(statsEvery)
			d.publish()
		}
	}
	if err != nil {
		var idle *capture.Idle
		if errors.As(err, &idle) {
			d.lastIdle = idle.Now
		}
		return err
	}
	if r.TS-d.lastIdle >= d.interval {
		d.held, d.holding = *r, true
		d.lastIdle = r.TS
		d.idle.Now = r.TS
		return &d.idle
	}
	return nil
}

func (d *liveReader) Close() error { return d.live.Close() }

func (d *liveReader) publish() {
	_, kernel, iface, err := d.live.Stats()
	if err != nil {
		return
	}
	k, i := uint32(kernel), uint32(iface)
	d.src.kernelDrops.Add(uint64(k - d.lastKernel))
	d.src.ifDrops.Add(uint64(i - d.lastIf))
	d.lastKernel, d.lastIf = k, i
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
