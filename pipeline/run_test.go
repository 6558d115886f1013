package pipeline

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/tpwatch/tpwatch/capture"
)

// fakeSource yields n raw IPv4/UDP records with distinct source ports, then
// ends with end (io.EOF or an error).
type fakeSource struct {
	n, i  int
	frame []byte
	end   error
	idle  int // yield an Idle every idle records (0: never)
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
	return &fakeSource{n: n, frame: f, end: end}
}

func (s *fakeSource) Next(r *capture.Record) error {
	if s.i >= s.n {
		return s.end
	}
	s.i++
	if s.idle > 0 && s.i%s.idle == 0 {
		return &capture.Idle{Now: int64(s.i)}
	}
	binary.BigEndian.PutUint16(s.frame[20:], uint16(s.i))
	r.TS, r.Link, r.Data = int64(s.i), capture.LinkRaw, s.frame
	r.CapLen, r.WireLen = uint32(len(s.frame)), uint32(len(s.frame))
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
