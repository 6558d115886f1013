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
)

// fakeSource yields n raw IPv4/UDP records with distinct source ports, then
// ends with end (io.EOF or an error).
type fakeSource struct {
	n, i          int
	frame, frame6 []byte
	end           error
	idle          int // yield an Idle every idle records (0: never)
	v6            int // make every v6-th record IPv6 (0: none)
	gapAt         int // records after this one are two minutes later (0: none)
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
		return &capture.Idle{Now: int64(s.i)}
	}
	frame, port := s.frame, 20
	if s.v6 > 0 && s.i%s.v6 == 0 {
		frame, port = s.frame6, 40
	}
	binary.BigEndian.PutUint16(frame[port:], uint16(s.i))
	r.TS, r.Link, r.Data = int64(s.i), capture.LinkRaw, frame
	if s.gapAt > 0 && s.i > s.gapAt {
		r.TS += int64(2 * time.Minute)
	}
	r.CapLen, r.WireLen = uint32(len(frame)), uint32(len(frame))
	return nil
}

func (s *fakeSource) Close() error { return nil }

// recordingTable remembers the order of what it was given.
type recordingTable struct {
	ports    []uint16
	advances []int64
}

func (t *recordingTable) Process(p *capture.Packet) { t.ports = append(t.ports, p.SrcPort) }
func (t *recordingTable) Advance(now int64)         { t.advances = append(t.advances, now) }

func TestRunDeliversEveryPacketInOrder(t *testing.T) {
	for _, seq := range []bool{false, true} {
		src := newFakeSource(10000, io.EOF)
		var tab recordingTable
		var stats SourceStats
		if err := Run(context.Background(), src, &tab, &stats, Options{Sequential: seq}); err != nil {
			t.Fatalf("sequential=%v: %v", seq, err)
		}
		if len(tab.ports) != 10000 {
			t.Fatalf("sequential=%v: %d packets, want 10000", seq, len(tab.ports))
		}
		for i, p := range tab.ports {
			if p != uint16(i+1) {
				t.Fatalf("sequential=%v: packet %d has port %d: order lost", seq, i, p)
			}
		}
		if stats.Records.Load() != 10000 || stats.Bytes.Load() != 280000 || stats.LastTS.Load() != 10000 {
			t.Errorf("sequential=%v: stats %d records %d bytes last %d", seq, stats.Records.Load(), stats.Bytes.Load(), stats.LastTS.Load())
		}
	}
}

// recordingBatchTable remembers the order of the packets of its batches.
type recordingBatchTable struct {
	recordingTable
	batches, wholes int
}

func (t *recordingBatchTable) Seed() (uint64, bool) { return 0, false }

func (t *recordingBatchTable) ProcessSlim(slim []classifier.Slim, whole []capture.Packet, seed uint64) {
	t.batches++
	for i := range slim {
		if slim[i].Whole {
			t.ports = append(t.ports, whole[0].SrcPort)
			whole = whole[1:]
			t.wholes++
		} else {
			var p capture.Packet
			slim[i].Packet(&p)
			t.ports = append(t.ports, p.SrcPort)
		}
	}
	if len(whole) != 0 {
		panic("whole packets left over")
	}
}

// TestRunMixesSlimAndWholeInOrder sends IPv4 packets, carried slim, and
// IPv6 ones, carried whole, more of them than a batch holds whole.
func TestRunMixesSlimAndWholeInOrder(t *testing.T) {
	for _, seq := range []bool{false, true} {
		src := newFakeSource(10000, io.EOF)
		src.v6 = 2
		var tab recordingBatchTable
		if err := Run(context.Background(), src, &tab, nil, Options{Sequential: seq}); err != nil {
			t.Fatal(err)
		}
		// Sequential, packets stay whole and go to Process one by one.
		if len(tab.ports) != 10000 || !seq && tab.wholes != 5000 {
			t.Fatalf("sequential=%v: %d packets, %d whole, want 10000 and 5000", seq, len(tab.ports), tab.wholes)
		}
		for i, p := range tab.ports {
			if p != uint16(i+1) {
				t.Fatalf("sequential=%v: packet %d has port %d: order lost", seq, i, p)
			}
		}
		if want := 10000 / (2 * wholePerBatch); !seq && tab.batches < want {
			t.Errorf("sequential=%v: %d batches, want at least %d (%d whole packets a batch)", seq, tab.batches, want, wholePerBatch)
		}
	}
}

func TestRunReturnsReadErrorAfterClassifyingWhatCameBefore(t *testing.T) {
	boom := errors.New("record 1001 at byte 9999: truncated")
	for _, seq := range []bool{false, true} {
		var tab recordingTable
		err := Run(context.Background(), newFakeSource(1000, boom), &tab, nil, Options{Sequential: seq})
		if !errors.Is(err, boom) {
			t.Errorf("sequential=%v: err %v, want the read error", seq, err)
		}
		if len(tab.ports) != 1000 {
			t.Errorf("sequential=%v: %d packets classified before the error, want 1000", seq, len(tab.ports))
		}
	}
}

func TestRunAdvancesOnIdle(t *testing.T) {
	for _, seq := range []bool{false, true} {
		src := newFakeSource(1000, io.EOF)
		src.idle = 100
		var tab recordingTable
		if err := Run(context.Background(), src, &tab, nil, Options{Sequential: seq}); err != nil {
			t.Fatal(err)
		}
		if len(tab.advances) != 10 || tab.advances[0] != 100 {
			t.Errorf("sequential=%v: advances %v", seq, tab.advances)
		}
		if len(tab.ports) != 990 {
			t.Errorf("sequential=%v: %d packets", seq, len(tab.ports))
		}
	}
}

func TestRunCountsUndecodable(t *testing.T) {
	src := newFakeSource(10, io.EOF)
	src.frame[0] = 0x15 // IP version 1: not a packet Decode follows
	var tab recordingTable
	var stats SourceStats
	if err := Run(context.Background(), src, &tab, &stats, Options{}); err != nil {
		t.Fatal(err)
	}
	if len(tab.ports) != 0 || stats.Records.Load() != 10 || stats.DecodeErrors()+stats.NotIP.Load() != 10 {
		t.Errorf("packets %d records %d errors %d notip %d", len(tab.ports), stats.Records.Load(), stats.DecodeErrors(), stats.NotIP.Load())
	}
}

func BenchmarkRunParallel(b *testing.B)   { benchmarkRun(b, false) }
func BenchmarkRunSequential(b *testing.B) { benchmarkRun(b, true) }

type countingTable struct{ n int }

func (t *countingTable) Process(*capture.Packet) { t.n++ }
func (t *countingTable) Advance(int64)           {}

// benchmarkRun measures the pipeline's own cost (hand-off, decode) with a
// table that does nothing.
func benchmarkRun(b *testing.B, seq bool) {
	b.ReportAllocs()
	src := newFakeSource(b.N, io.EOF)
	var tab countingTable
	b.ResetTimer()
	if err := Run(context.Background(), src, &tab, nil, Options{Sequential: seq}); err != nil {
		b.Fatal(err)
	}
	if tab.n != b.N {
		b.Fatalf("%d of %d", tab.n, b.N)
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
