package daemon

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/capture/live"
)

// feedItem is what one call to a fake capture's Next returns: a record,
// or an error (an *capture.Idle, io.EOF, a read error), after delay.
type feedItem struct {
	rec   capture.Record
	err   error
	delay time.Duration
}

// fakeCapture is a live capture whose packets the test hands it. Like a
// live one it never ends by itself: with nothing to read, Next waits for
// the read timeout and returns an *capture.Idle (at the packet time of
// the last record, so a test's clock moves only when the test says), and
// after Close it returns io.EOF.
type fakeCapture struct {
	iface string
	opts  live.Options
	link  capture.LinkType
	idle  time.Duration // < 0: Next waits for a record or for wake
	feed  chan feedItem

	closed    chan struct{}
	closeOnce sync.Once
	// wake, once closed, makes Next return an Idle when it has nothing
	// to read, for a test that turned the read timeout off and ends.
	wake     chan struct{}
	wakeOnce sync.Once
	// reading is closed at the first call to Next: the pipeline runs.
	reading     chan struct{}
	readingOnce sync.Once
	clock       int64 // packet time of the last record: Next's goroutine only

	mu         sync.Mutex
	filter     string                  // in force
	setFilters []string                // every filter SetFilter put in force
	refuse     func(expr string) error // CheckFilter and SetFilter refuse what it does
	refuseSet  func(expr string) error // SetFilter alone
	stats      []live.Stats            // Stats returns these in turn, then the last again
	statsCalls int
}

var _ Capture = (*fakeCapture)(nil)

func (c *fakeCapture) Next(r *capture.Record) error {
	c.readingOnce.Do(func() { close(c.reading) })
	select {
	case it := <-c.feed:
		return c.deliver(it, r)
	case <-c.closed:
		return io.EOF
	default:
	}
	var timeout <-chan time.Time
	if c.idle > 0 {
		tm := time.NewTimer(c.idle)
		defer tm.Stop()
		timeout = tm.C
	}
	select {
	case it := <-c.feed:
		return c.deliver(it, r)
	case <-c.closed:
		return io.EOF
	case <-timeout:
		return &capture.Idle{Now: c.clock}
	case <-c.wake:
		return &capture.Idle{Now: c.clock}
	}
}

func (c *fakeCapture) deliver(it feedItem, r *capture.Record) error {
	if it.delay > 0 {
		tm := time.NewTimer(it.delay)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-c.closed:
			return io.EOF
		}
	}
	if it.err != nil {
		if idle, ok := errors.AsType[*capture.Idle](it.err); ok {
			c.clock = max(c.clock, idle.Now)
		}
		return it.err
	}
	*r = it.rec
	c.clock = max(c.clock, r.TS)
	return nil
}

func (c *fakeCapture) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

func (c *fakeCapture) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

func (c *fakeCapture) Link() capture.LinkType { return c.link }

func (c *fakeCapture) Stats() (live.Stats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.statsCalls++
	if len(c.stats) == 0 {
		return live.Stats{}, errors.New("no stats on this fake")
	}
	st := c.stats[0]
	if len(c.stats) > 1 {
		c.stats = c.stats[1:]
	}
	return st, nil
}

func (c *fakeCapture) CheckFilter(expr string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refuse != nil {
		return c.refuse(expr)
	}
	return nil
}

func (c *fakeCapture) SetFilter(expr string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, refuse := range []func(string) error{c.refuse, c.refuseSet} {
		if refuse != nil {
			if err := refuse(expr); err != nil {
				return err
			}
		}
	}
	c.filter = expr
	c.setFilters = append(c.setFilters, expr)
	return nil
}

// filters returns the filter in force and every one SetFilter accepted.
func (c *fakeCapture) filters() (string, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.filter, slices.Clone(c.setFilters)
}

func (c *fakeCapture) setRefuse(refuse, refuseSet func(string) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refuse, c.refuseSet = refuse, refuseSet
}

// send queues records for Next.
func (c *fakeCapture) send(recs ...capture.Record) {
	for _, r := range recs {
		c.feed <- feedItem{rec: r}
	}
}

// idleAt queues a read timeout that moves the packet clock to ns.
func (c *fakeCapture) idleAt(ns int64) { c.feed <- feedItem{err: &capture.Idle{Now: ns}} }

// fail queues an error for Next to return after delay.
func (c *fakeCapture) fail(err error, delay time.Duration) {
	c.feed <- feedItem{err: err, delay: delay}
}

// waitReading waits until the pipeline reads the capture.
func (c *fakeCapture) waitReading(t *testing.T) {
	t.Helper()
	select {
	case <-c.reading:
	case <-time.After(waitLimit):
		t.Fatalf("capture of %s never read", c.iface)
	}
}

// openStep is what one call to Open does: fail with err, or open a
// capture and let setup prepare it (queue its records, script its stats).
type openStep struct {
	err   error
	setup func(c *fakeCapture)
}

// openAttempt is one call to Open.
type openAttempt struct {
	iface string
	opts  live.Options
	at    time.Time
	err   error
	c     *fakeCapture // nil when it failed
}

func (a openAttempt) String() string {
	return fmt.Sprintf("%s at %s: %v", a.iface, a.at.Format("15:04:05.000"), a.err)
}

// fakeBackend opens fake captures, following each interface's script of
// open steps; once a script runs out, opens succeed.
type fakeBackend struct {
	idle time.Duration // the captures' read timeout; 0: Options.ReadTimeout

	mu          sync.Mutex
	scripts     map[string][]openStep
	checkFilter func(expr string, o live.Options) error

	attempts watched[openAttempt]
}

var _ Backend = (*fakeBackend)(nil)

func newBackend() *fakeBackend { return &fakeBackend{scripts: map[string][]openStep{}} }

// script appends open steps for iface.
func (b *fakeBackend) script(iface string, steps ...openStep) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.scripts[iface] = append(b.scripts[iface], steps...)
}

func (b *fakeBackend) Open(iface string, o live.Options) (Capture, error) {
	b.mu.Lock()
	var step openStep
	if s := b.scripts[iface]; len(s) > 0 {
		step, b.scripts[iface] = s[0], s[1:]
	}
	b.mu.Unlock()
	a := openAttempt{iface: iface, opts: o, at: time.Now(), err: step.err}
	if step.err != nil {
		b.attempts.add(a)
		return nil, step.err
	}
	idle := b.idle
	if idle == 0 {
		idle = o.ReadTimeout
	}
	c := &fakeCapture{
		iface: iface, opts: o, link: capture.LinkEthernet, idle: idle,
		feed:   make(chan feedItem, 1<<12),
		closed: make(chan struct{}), wake: make(chan struct{}), reading: make(chan struct{}),
		filter: o.BPF,
	}
	if step.setup != nil {
		step.setup(c)
	}
	a.c = c
	b.attempts.add(a)
	return c, nil
}

func (b *fakeBackend) CheckFilter(expr string, o live.Options) error {
	b.mu.Lock()
	check := b.checkFilter
	b.mu.Unlock()
	if check != nil {
		return check(expr, o)
	}
	return nil
}

func (b *fakeBackend) setCheckFilter(f func(string, live.Options) error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.checkFilter = f
}

// capture waits for the n-th capture (from 1) opened on iface.
func (b *fakeBackend) capture(t *testing.T, iface string, n int) *fakeCapture {
	t.Helper()
	var got []*fakeCapture
	b.attempts.wait(t, fmt.Sprintf("capture %d of %s", n, iface), func(as []openAttempt) bool {
		got = got[:0]
		for _, a := range as {
			if a.iface == iface && a.c != nil {
				got = append(got, a.c)
			}
		}
		return len(got) >= n
	})
	return got[n-1]
}

// wakeAll lets every capture's Next return Idle when it has nothing, so
// that a daemon whose context is done stops even where the test turned
// the read timeout off.
func (b *fakeBackend) wakeAll() {
	for _, a := range b.attempts.all() {
		if a.c != nil {
			a.c.wakeOnce.Do(func() { close(a.c.wake) })
		}
	}
}
