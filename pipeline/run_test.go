package pipeline

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/policy"
)

// fakeSource yields n raw IPv4/UDP records with distinct source ports, then
// ends with end (io.EOF or an error).
type fakeSource struct {
	n, i          int
	frame, frame6 []byte
	end           error
	idle          int   // yield an Idle every idle records (0: never)
	idleAt        int64 // the Idles' time (0: the record's number)
	v6            int   // make every v6-th record IPv6 (0: none)
	gapAt         int   // records after this one are gap later (0: none)
	gap           int64 // 0: two minutes
}

func newFakeSource(n int, end error) *fakeSource {
	f := make([]byte, 28)
	f[0] = 0x45
	binary.BigEndian.PutUint16(f[2:], 28)
	f[8], f[9] = 64, 17
	copy(f[12:16], []byte{192, 0, 2, 1})
	copy(f[16:20], []byte{192, 0, 2, 2})
	binary.BigEndian.PutUint16(f[22:], 1434)
	binary.BigEndian.PutUint16(f[24:], 8)
	// The same datagram over IPv6, for sources that mix them in.
	f6 := make([]byte, 48)
	f6[0] = 0x60
	binary.BigEndian.PutUint16(f6[4:], 8)
	f6[6], f6[7] = 17, 64
	f6[8], f6[9], f6[23] = 0x20, 0x01, 1
	f6[24], f6[25], f6[39] = 0x20, 0x01, 2
	binary.BigEndian.PutUint16(f6[42:], 1434)
	binary.BigEndian.PutUint16(f6[44:], 8)
	return &fakeSource{n: n, frame: f, frame6: f6, end: end}
}

func (s *fakeSource) Next(r *capture.Record) error {
	if s.i >= s.n {
		return s.end
	}
	s.i++
	if s.idle > 0 && s.i%s.idle == 0 {
		if s.idleAt != 0 {
			return &capture.Idle{Now: s.idleAt}
		}
		return &capture.Idle{Now: int64(s.i)}
	}
	frame, port := s.frame, 20
	if s.v6 > 0 && s.i%s.v6 == 0 {
		frame, port = s.frame6, 40
	}
	binary.BigEndian.PutUint16(frame[port:], uint16(s.i))
	r.TS, r.Link, r.Data = int64(s.i), capture.LinkRaw, frame
	if s.gapAt > 0 && s.i > s.gapAt {
		gap := s.gap
		if gap == 0 {
			gap = int64(2 * time.Minute)
		}
		r.TS += gap
	}
	r.CapLen, r.WireLen = uint32(len(frame)), uint32(len(frame))
	return nil
}

func (s *fakeSource) Close() error { return nil }

// portLog is a sink that records the source port of every flow decided
// (the fake sources send from port i to 1434), and how many flows it saw
// decided blocked.
type portLog struct {
	ports   []uint16
	blocked int
}

func (l *portLog) Decided(r *classifier.FlowRecord) {
	l.ports = append(l.ports, r.ClientPort+r.ServerPort-1434)
	if r.Verdict == classifier.Blocked {
		l.blocked++
	}
}
func (l *portLog) Final(*classifier.FlowRecord) {}

// replyRule is a policy of one rule for every host and port: a UDP
// request that wants a reply, so a datagram nothing answers is an attempt
// that time decides.
type replyRule struct{}

func (replyRule) Roles([16]byte) policy.RoleSet        { return 1 << policy.Agent }
func (replyRule) Learns(policy.Transport, uint16) bool { return false }
func (replyRule) Learn(policy.Flow, policy.Evidence)   {}
func (replyRule) ServerPortScore(_ policy.Transport, port uint16, _ policy.RoleSet) int {
	if port == 1434 {
		return 2
	}
	return 0
}
func (replyRule) Match(policy.Flow) policy.Match {
	return policy.Match{Kind: policy.MatchAllowed, Rule: 0}
}
func (r replyRule) MatchAttempt(f policy.Flow) policy.Match { return r.Match(f) }
func (replyRule) Reply(int32) bool                          { return true }
func (replyRule) Rule(int32) *policy.Rule                   { return nil }
func (replyRule) MatchAnnounced(policy.Flow, policy.Announce) (policy.Match, bool) {
	return policy.Match{Kind: policy.MatchIgnored, Rule: -1}, false
}

// ignoring returns a table that ignores every flow, deciding each as it
// is created: the sink's calls are then in the order of the packets, one
// flow a packet in the fake sources (each has its own source port).
func ignoring(log *portLog) *classifier.Table {
	return classifier.NewTable(classifier.DefaultOptions(), nil, log)
}

func TestRunDeliversEveryPacketInOrder(t *testing.T) {
	for _, seq := range []bool{false, true} {
		src := newFakeSource(10000, io.EOF)
		var log portLog
		tab := ignoring(&log)
		var stats SourceStats
		if err := Run(context.Background(), src, tab, &stats, Options{Sequential: seq}); err != nil {
			t.Fatalf("sequential=%v: %v", seq, err)
		}
		tab.Advance(0) // publishes its counters
		if len(log.ports) != 10000 || tab.Stats().Packets != 10000 {
			t.Fatalf("sequential=%v: %d flows of %d packets, want 10000", seq, len(log.ports), tab.Stats().Packets)
		}
		for i, p := range log.ports {
			if p != uint16(i+1) {
				t.Fatalf("sequential=%v: flow %d has port %d: order lost", seq, i, p)
			}
		}
		if stats.Records.Load() != 10000 || stats.Bytes.Load() != 280000 || stats.LastTS.Load() != 10000 {
			t.Errorf("sequential=%v: stats %d records %d bytes last %d", seq, stats.Records.Load(), stats.Bytes.Load(), stats.LastTS.Load())
		}
	}
}

// TestRunMixesSlimAndWholeInOrder sends IPv4 packets, which cross to the
// table in their slim form, and IPv6 ones, carried whole, more of them
// than a batch holds whole: the order must survive, and batches end when
// their room for whole packets is full.
func TestRunMixesSlimAndWholeInOrder(t *testing.T) {
	for _, seq := range []bool{false, true} {
		src := newFakeSource(10000, io.EOF)
		src.v6 = 2
		var log portLog
		batches := 0
		if err := Run(context.Background(), src, ignoring(&log), nil, Options{Sequential: seq, BeforeBatch: func() { batches++ }}); err != nil {
			t.Fatal(err)
		}
		if len(log.ports) != 10000 {
			t.Fatalf("sequential=%v: %d flows, want 10000", seq, len(log.ports))
		}
		for i, p := range log.ports {
			if p != uint16(i+1) {
				t.Fatalf("sequential=%v: flow %d has port %d: order lost", seq, i, p)
			}
		}
		// 5000 IPv6 packets, at most 64 whole a crossing batch.
		if want := 5000 / 64; !seq && batches < want {
			t.Errorf("sequential=%v: %d batches, want at least %d", seq, batches, want)
		}
	}
}

func TestRunReturnsReadErrorAfterClassifyingWhatCameBefore(t *testing.T) {
	boom := errors.New("record 1001 at byte 9999: truncated")
	for _, seq := range []bool{false, true} {
		var log portLog
		err := Run(context.Background(), newFakeSource(1000, boom), ignoring(&log), nil, Options{Sequential: seq})
		if !errors.Is(err, boom) {
			t.Errorf("sequential=%v: err %v, want the read error", seq, err)
		}
		if len(log.ports) != 1000 {
			t.Errorf("sequential=%v: %d packets classified before the error, want 1000", seq, len(log.ports))
		}
	}
}

// TestRunAdvancesOnIdle: an idle moment of the source moves the table's
// clock to its time, which decides the attempts whose timeout has passed
// by then, before the packets read after it.
func TestRunAdvancesOnIdle(t *testing.T) {
	for _, seq := range []bool{false, true} {
		src := newFakeSource(1000, io.EOF)
		src.idle = 100
		src.idleAt = int64(time.Hour)
		// The packets after the first idle come after it: packets
		// stamped an hour before an idle moment would be a clock
		// stepping back, which the table follows.
		src.gapAt, src.gap = 100, int64(time.Hour)
		var log portLog
		tab := classifier.NewTable(classifier.DefaultOptions(), replyRule{}, &log)
		if err := Run(context.Background(), src, tab, nil, Options{Sequential: seq}); err != nil {
			t.Fatal(err)
		}
		// The first idle, after 99 datagrams, is an hour later: the 99
		// requests, unanswered, are blocked then, and nothing after.
		if log.blocked != 99 || len(log.ports) != 99 {
			t.Errorf("sequential=%v: %d flows decided, %d blocked; want 99 blocked at the first idle", seq, len(log.ports), log.blocked)
		}
		tab.Advance(0)
		if got := tab.Stats().Packets; got != 990 {
			t.Errorf("sequential=%v: %d packets", seq, got)
		}
	}
}

// TestRunLatency: with a latency, a batch is handed on once its first
// packet is that old in packet time, full or not.
func TestRunLatency(t *testing.T) {
	for _, seq := range []bool{false, true} {
		src := newFakeSource(1000, io.EOF) // a packet each nanosecond
		var log portLog
		batches := 0
		opts := Options{Sequential: seq, Latency: 10, BeforeBatch: func() { batches++ }}
		if err := Run(context.Background(), src, ignoring(&log), nil, opts); err != nil {
			t.Fatal(err)
		}
		if len(log.ports) != 1000 {
			t.Fatalf("sequential=%v: %d flows, want 1000", seq, len(log.ports))
		}
		// 11 packets a batch at most; BeforeBatch also runs once first.
		if batches < 1000/11 {
			t.Errorf("sequential=%v: %d batches for 1000 packets, want one every 11 packets at most", seq, batches)
		}
	}
}

func TestRunCountsUndecodable(t *testing.T) {
	src := newFakeSource(10, io.EOF)
	src.frame[0] = 0x15 // IP version 1: not a packet Decode follows
	var log portLog
	tab := ignoring(&log)
	var stats SourceStats
	if err := Run(context.Background(), src, tab, &stats, Options{}); err != nil {
		t.Fatal(err)
	}
	tab.Advance(0)
	if tab.Stats().Packets != 0 || stats.Records.Load() != 10 || stats.DecodeErrors()+stats.NotIP.Load() != 10 {
		t.Errorf("packets %d records %d errors %d notip %d", tab.Stats().Packets, stats.Records.Load(), stats.DecodeErrors(), stats.NotIP.Load())
	}
}

// TestRunCountsDecapsulated sends every datagram of a fake source inside
// IP in IP: each is classified by its inner flow (the source port that
// varies is the inner one) and counted as decapsulated.
func TestRunCountsDecapsulated(t *testing.T) {
	src := newFakeSource(10, io.EOF)
	outer := make([]byte, 20, 20+len(src.frame))
	outer[0], outer[8], outer[9] = 0x45, 64, 4
	binary.BigEndian.PutUint16(outer[2:], uint16(20+len(src.frame)))
	copy(outer[12:], []byte{198, 51, 100, 1, 198, 51, 100, 2})
	// The fake source writes the port 40 bytes in for its "v6" frames:
	// the inner source port here.
	src.frame6, src.v6 = append(outer, src.frame...), 1
	var log portLog
	tab := ignoring(&log)
	var stats SourceStats
	if err := Run(context.Background(), src, tab, &stats, Options{}); err != nil {
		t.Fatal(err)
	}
	tab.Advance(0)
	if c := stats.Counts(); c.Records != 10 || c.Decapsulated != 10 || c.DecodeErrors() != 0 {
		t.Errorf("counts %+v, want 10 records, all decapsulated", c)
	}
	if want := []uint16{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(log.ports, want) {
		t.Errorf("flows of source ports %v, want the inner ones %v", log.ports, want)
	}
}

func BenchmarkRunParallel(b *testing.B)   { benchmarkRun(b, false) }
func BenchmarkRunSequential(b *testing.B) { benchmarkRun(b, true) }

// benchmarkRun measures the pipeline with a table that ignores every flow:
// the hand-off, the decoding and the table's work for a new flow.
func benchmarkRun(b *testing.B, seq bool) {
	b.ReportAllocs()
	src := newFakeSource(b.N, io.EOF)
	tab := classifier.NewTable(classifier.DefaultOptions(), nil, nil)
	b.ResetTimer()
	if err := Run(context.Background(), src, tab, nil, Options{Sequential: seq}); err != nil {
		b.Fatal(err)
	}
	tab.Advance(0)
	if n := tab.Stats().Packets; n != uint64(b.N) {
		b.Fatalf("%d of %d", n, b.N)
	}
}

// callOrder records a sink's calls, in order.
type callOrder struct{ calls []string }

func (c *callOrder) Decided(r *classifier.FlowRecord) {
	c.calls = append(c.calls, fmt.Sprintf("decided %d %v", r.ClientPort, r.Verdict))
}
func (c *callOrder) Final(r *classifier.FlowRecord) {
	c.calls = append(c.calls, fmt.Sprintf("final %d %v", r.ClientPort, r.Verdict))
}

// replayBothWays replays through a table with a direct sink, then with a
// DeferredSink (d nil for the first), and returns the sink calls each
// made. The deferred replay must end within a minute: if it does not, the
// table and the reader wait for each other.
func replayBothWays(t *testing.T, replay func(tab *classifier.Table, d *DeferredSink) error) (direct, deferred []string) {
	t.Helper()
	calls := func(deferred bool) ([]string, error) {
		var log callOrder
		var d *DeferredSink
		var sink classifier.Sink = &log
		if deferred {
			d = NewDeferredSink(&log)
			sink = d.TableSink()
		}
		tab := classifier.NewTable(classifier.DefaultOptions(), nil, sink)
		if err := replay(tab, d); err != nil {
			return nil, err
		}
		tab.Flush(int64(time.Hour))
		return log.calls, nil
	}
	direct, err := calls(false)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		calls []string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		c, err := calls(true)
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return direct, r.calls
	case <-time.After(time.Minute):
		t.Fatal("the deferred replay did not end within a minute: the table and the reader wait for each other")
	}
	return nil, nil
}

// TestDeferredSinkKeepsOrderThroughABigSweep ends 20,000 flows with one
// packet (two minutes of packet time go by): the table makes far more sink
// calls than a DeferredSink's chunks hold while the reader is busy, so the
// table must wait for it without deadlock, and Target must get every call
// in the order a direct sink does.
func TestDeferredSinkKeepsOrderThroughABigSweep(t *testing.T) {
	want, got := replayBothWays(t, func(tab *classifier.Table, d *DeferredSink) error {
		src := newFakeSource(25000, io.EOF)
		src.gapAt = 20000
		return Run(context.Background(), src, tab, nil, Options{Deferred: d})
	})
	if len(want) < 2*25000 {
		t.Fatalf("%d sink calls: the test makes too few to fill the chunks", len(want))
	}
	if len(got) != len(want) {
		t.Fatalf("deferred: %d sink calls, direct: %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("call %d: deferred %q, direct %q", i, got[i], want[i])
		}
	}
}

// TestDeferredSinkServesSeveralRuns replays three sources through one table
// and one DeferredSink, as a replay of three files does: its chunks must
// all come back after each Run, and Target must see what a direct sink
// sees.
func TestDeferredSinkServesSeveralRuns(t *testing.T) {
	want, got := replayBothWays(t, func(tab *classifier.Table, d *DeferredSink) error {
		for range 3 {
			src := newFakeSource(5000, io.EOF)
			src.gapAt = 2500
			if err := Run(context.Background(), src, tab, nil, Options{Deferred: d}); err != nil {
				return err
			}
			if d != nil && len(d.spare) != chunks {
				return fmt.Errorf("%d of %d chunks spare after Run", len(d.spare), chunks)
			}
		}
		return nil
	})
	if !slices.Equal(got, want) {
		t.Fatalf("deferred: %d sink calls, direct: %d, or another order", len(got), len(want))
	}
	if len(want) < 10000 {
		t.Fatalf("only %d sink calls", len(want))
	}
}
