package pipeline

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/pcaps"
	"github.com/tpwatch/tpwatch/policy"
	"github.com/tpwatch/tpwatch/report"
)

var (
	benchCaptureOnce sync.Once
	benchCapture     []byte
)

// benchCaptureBytes is a generated capture of Threat Prevention traffic
// (the shape of the 10M-packet benchmark file cut to 500k packets: 10k
// flows, 20k live at a time at the start),
// made once per test binary.
func benchCaptureBytes(b *testing.B) []byte {
	benchCaptureOnce.Do(func() {
		var buf bytes.Buffer
		if err := pcaps.WriteBench(&buf, pcaps.BenchSpec{Packets: 500_000, Flows: 10_000, Live: 20_000, Seed: 1}); err != nil {
			b.Fatal(err)
		}
		benchCapture = buf.Bytes()
	})
	return benchCapture
}

func BenchmarkReplayJSONSequential(b *testing.B) { benchmarkReplayJSON(b, true) }
func BenchmarkReplayJSONParallel(b *testing.B)   { benchmarkReplayJSON(b, false) }

// benchmarkReplayJSON is the whole replay: read, decode, flow table,
// policy, JSON lines to io.Discard. It reports packets per second and
// allocations per packet (b.N counts whole replays).
func benchmarkReplayJSON(b *testing.B, seq bool) {
	data := benchCaptureBytes(b)
	pol := benchPolicy(b)
	const packets = 500_000
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		w := report.NewJSONWriter(io.Discard, pol.Rules(), false)
		tab := classifier.NewTable(classifier.DefaultOptions(), policy.Bind(pol, nil), w)
		src, err := capture.NewReader(bytes.NewReader(data), "bench.pcap")
		if err != nil {
			b.Fatal(err)
		}
		var stats SourceStats
		if err := Run(context.Background(), src, tab, &stats, Options{Sequential: seq}); err != nil {
			b.Fatal(err)
		}
		tab.Flush(stats.LastTS.Load())
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*packets/b.Elapsed().Seconds()/1e6, "Mpps")
}

// TestRunAllocatesNothingPerPacket runs the same table through Run with
// ten times more packets: the allocations (channels, batches) must not
// grow with the packet count.
func TestRunAllocatesNothingPerPacket(t *testing.T) {
	for _, seq := range []bool{true, false} {
		opts := classifier.DefaultOptions()
		opts.InitialFlows = 1 << 16
		tab := classifier.NewTable(opts, nil, nil)
		allocs := func(n int) float64 {
			return testing.AllocsPerRun(5, func() {
				src := newFakeSource(n, io.EOF)
				if err := Run(context.Background(), src, tab, nil, Options{Sequential: seq}); err != nil {
					t.Fatal(err)
				}
			})
		}
		small, large := allocs(5_000), allocs(50_000)
		if large > small {
			t.Errorf("sequential=%v: %v allocations for 5000 packets, %v for 50000: %.4f a packet", seq, small, large, (large-small)/45_000)
		}
	}
}
