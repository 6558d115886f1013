package pipeline

import (
	"bytes"
	"context"
	"testing"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/pcaps"
	"github.com/tpwatch/tpwatch/policy"
	"github.com/tpwatch/tpwatch/report"
)

// oneByOne hides a table's ProcessBatch, so that Run feeds it one Process
// call a packet: the reference the batched paths are compared with.
type oneByOne struct{ t *classifier.Table }

func (o oneByOne) Process(p *capture.Packet) { o.t.Process(p) }
func (o oneByOne) Advance(now int64)         { o.t.Advance(now) }

// replayJSON replays a capture through Run into a fresh table and returns
// the JSON report.
func replayJSON(t testing.TB, pcap []byte, pol *policy.Policy, opts Options, wrap func(*classifier.Table) Table) []byte {
	t.Helper()
	var out bytes.Buffer
	w := report.NewJSONWriter(&out, pol.Rules(), true)
	topts := classifier.DefaultOptions()
	to := pol.Timeouts()
	topts.AttemptTimeout, topts.UDPReplyTimeout = to.TCPAttempt, to.UDPReply
	topts.TCPIdle, topts.UDPIdle, topts.TCPClosed = to.TCPIdle, to.UDPIdle, to.TCPClosed
	topts.InitialFlows, topts.MaxFlows = 64, 4096 // growth and eviction too
	tab := classifier.NewTable(topts, pol, w)
	src, err := capture.NewReader(bytes.NewReader(pcap), "bench.pcap")
	if err != nil {
		t.Fatal(err)
	}
	var stats SourceStats
	if err := Run(context.Background(), src, wrap(tab), &stats, opts); err != nil {
		t.Fatal(err)
	}
	tab.Flush(stats.LastTS.Load())
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func benchPolicy(t testing.TB) *policy.Policy {
	t.Helper()
	m, err := policy.DefaultMatrix()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := policy.ParseConfig(pcaps.BenchConfig(), "bench.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Compile(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// TestPathsGiveIdenticalJSON replays one generated capture through every
// path (one Process call a packet; batched on one goroutine; batched on
// two) and wants byte-identical reports.
func TestPathsGiveIdenticalJSON(t *testing.T) {
	var pcap bytes.Buffer
	if err := pcaps.WriteBench(&pcap, pcaps.BenchSpec{Packets: 60000, Flows: 5600, Live: 3000, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	pol := benchPolicy(t)
	want := replayJSON(t, pcap.Bytes(), pol, Options{Sequential: true}, func(t *classifier.Table) Table { return oneByOne{t} })
	if n := bytes.Count(want, []byte("\n")); n < 3000 {
		t.Fatalf("only %d flows reported: the capture is too small to test anything", n)
	}
	for _, seq := range []bool{true, false} {
		got := replayJSON(t, pcap.Bytes(), pol, Options{Sequential: seq}, func(t *classifier.Table) Table { return t })
		if !bytes.Equal(got, want) {
			t.Errorf("sequential=%v: the batched report differs from the one-by-one report (%d and %d bytes)", seq, len(got), len(want))
		}
	}
}
