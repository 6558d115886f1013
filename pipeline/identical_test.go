package pipeline

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/pcaps"
	"github.com/tpwatch/tpwatch/policy"
	"github.com/tpwatch/tpwatch/report"
)

// oneByOne feeds the table one Process call a packet, without Run: the
// reference the batched paths are compared with.
func oneByOne(src capture.Reader, tab *classifier.Table, stats *SourceStats) error {
	var (
		rec capture.Record
		p   capture.Packet
	)
	for {
		if err := src.Next(&rec); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		stats.LastTS.Store(rec.TS)
		p.TS, p.WireLen = rec.TS, rec.WireLen
		if capture.Decode(rec.Link, rec.Data, &p) == capture.StatusOK {
			tab.Process(&p)
		}
	}
}

// callLog is a sink that writes the JSON report of the flows that end and
// a line for each decision, so that a test sees both kinds of call in
// their order.
type callLog struct {
	json    *report.JSONWriter
	decided bytes.Buffer
}

func (c *callLog) Decided(r *classifier.FlowRecord) {
	fmt.Fprintf(&c.decided, "%x:%d %x:%d %v %v\n", r.Client, r.ClientPort, r.Server, r.ServerPort, r.Verdict, r.Reason)
}

func (c *callLog) Final(r *classifier.FlowRecord) { c.json.Final(r) }

// replayJSON replays a capture through Run (or oneByOne) into a fresh
// table and returns the JSON report, then the decisions (see callLog).
// With opts.Deferred set (to anything), the sink is deferred to the
// reading goroutine.
func replayJSON(t testing.TB, pcap []byte, pol *policy.Policy, opts Options, byOne bool) []byte {
	t.Helper()
	var out bytes.Buffer
	w := report.NewJSONWriter(&out, pol.Rules(), true)
	log := &callLog{json: w}
	var sink classifier.Sink = log
	if opts.Deferred != nil {
		opts.Deferred = NewDeferredSink(log)
		sink = opts.Deferred.TableSink()
	}
	topts := classifier.DefaultOptions()
	to := pol.Timeouts()
	topts.AttemptTimeout, topts.UDPReplyTimeout = to.TCPAttempt, to.UDPReply
	topts.TCPIdle, topts.UDPIdle, topts.TCPClosed = to.TCPIdle, to.UDPIdle, to.TCPClosed
	topts.InitialFlows, topts.MaxFlows = 64, 4096 // growth and eviction too
	tab := classifier.NewTable(topts, policy.Bind(pol, nil), sink)
	src, err := capture.NewReader(bytes.NewReader(pcap), "bench.pcap")
	if err != nil {
		t.Fatal(err)
	}
	var stats SourceStats
	if byOne {
		err = oneByOne(src, tab, &stats)
	} else {
		err = Run(context.Background(), src, tab, &stats, opts)
	}
	if err != nil {
		t.Fatal(err)
	}
	tab.Flush(stats.LastTS.Load())
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return append(out.Bytes(), log.decided.Bytes()...)
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
	want := replayJSON(t, pcap.Bytes(), pol, Options{}, true)
	if n := bytes.Count(want, []byte("\n")); n < 3000 {
		t.Fatalf("only %d flows reported: the capture is too small to test anything", n)
	}
	for _, seq := range []bool{true, false} {
		for _, deferred := range []bool{false, true} {
			opts := Options{Sequential: seq}
			if deferred {
				opts.Deferred = &DeferredSink{}
			}
			got := replayJSON(t, pcap.Bytes(), pol, opts, false)
			if !bytes.Equal(got, want) {
				t.Errorf("sequential=%v deferred=%v: the batched report differs from the one-by-one report (%d and %d bytes)", seq, deferred, len(got), len(want))
			}
		}
	}
}

// TestPathsAgreeWhenTheCaptureStartsWithoutAFlow puts an ICMP echo before
// the first flow: which flows a full table evicts depends on its hash seed,
// and every path must take the seed from the same packet, the first flow's.
func TestPathsAgreeWhenTheCaptureStartsWithoutAFlow(t *testing.T) {
	var gen bytes.Buffer
	if err := pcaps.WriteBench(&gen, pcaps.BenchSpec{Packets: 60000, Flows: 5600, Live: 3000, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	// The file header, an echo request (Ethernet, IPv4, ICMP) a microsecond
	// before the first packet, then the rest.
	b := gen.Bytes()
	first := binary.LittleEndian.Uint32(b[24:]) // seconds of the first record
	echo := make([]byte, 16+14+20+8)
	binary.LittleEndian.PutUint32(echo[0:], first-1)
	binary.LittleEndian.PutUint32(echo[8:], 14+20+8)
	binary.LittleEndian.PutUint32(echo[12:], 14+20+8)
	binary.BigEndian.PutUint16(echo[16+12:], 0x0800)
	ip := echo[16+14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 1
	binary.BigEndian.PutUint16(ip[2:], 28)
	copy(ip[12:16], []byte{10, 9, 9, 9})
	copy(ip[16:20], []byte{10, 0, 0, 10})
	ip[20] = 8 // echo request
	pcap := slices.Concat(b[:24], echo, b[24:])

	pol := benchPolicy(t)
	want := replayJSON(t, pcap, pol, Options{}, true)
	if !bytes.Contains(want, []byte(`"evicted":true`)) {
		t.Fatal("no flow evicted: the test does not depend on the seed")
	}
	for _, seq := range []bool{true, false} {
		got := replayJSON(t, pcap, pol, Options{Sequential: seq, Deferred: &DeferredSink{}}, false)
		if !bytes.Equal(got, want) {
			t.Errorf("sequential=%v: the report differs from the one-by-one report (%d and %d bytes)", seq, len(got), len(want))
		}
	}
}
