package classifier

import (
	"slices"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/capture"
)

// TestProcessBatchSeesFlowsCreatedInTheSameBatch hands a whole handshake,
// data and close to ProcessBatch at once: the SYN creates the flow and
// every later packet of the batch must find it (one flow, allowed, all
// packets counted), exactly as with one Process call each.
func TestProcessBatchSeesFlowsCreatedInTheSameBatch(t *testing.T) {
	pkts := cat(
		handshake(A, 40000, E, 3741, 0),
		[]capture.Packet{
			tcpPkt(3*ms, A, 40000, E, 3741, pshack, 100),
			tcpPkt(4*ms, E, 3741, A, 40000, pshack, 100),
			tcpPkt(5*ms, A, 40000, E, 3741, finack, 0),
			tcpPkt(6*ms, E, 3741, A, 40000, finack, 0),
		},
	)
	rec := newRecorder(t)
	tab := NewTable(testOptions(), newFakeMatcher(), rec)
	tab.ProcessBatch(pkts)
	tab.Flush(at(time.Minute))
	s := tab.Stats()
	if s.FlowsCreated != 1 || s.Packets != uint64(len(pkts)) {
		t.Fatalf("%d flows from %d packets, want 1 from %d", s.FlowsCreated, s.Packets, len(pkts))
	}
	if len(rec.finals) != 1 || rec.finals[0].Verdict != Allowed || rec.finals[0].PacketsOut+rec.finals[0].PacketsIn != uint64(len(pkts)) {
		t.Errorf("sink calls %q", rec.lines)
	}
}

// TestProcessBatchIsProcess compares ProcessBatch with Process on traffic
// that grows the table, evicts, expires, reuses ports and sends ICMP
// errors, in batches of every size: the sink must see the same calls in
// the same order, and the tables must end in the same state.
func TestProcessBatchIsProcess(t *testing.T) {
	pkts := randomTraffic(11, 6000)
	opts := testOptions()
	opts.InitialFlows, opts.MaxFlows = 8, 48
	want, one := run(t, opts, pkts, -1)
	wantCounts, wantLive := one.counts, one.live
	one.Flush(at(time.Hour))
	if len(want.lines) < 1000 || wantCounts.evicted < 100 {
		t.Fatalf("only %d sink calls, %d evictions: the traffic is too tame to test anything", len(want.lines), wantCounts.evicted)
	}
	// Which flow a full table evicts depends on the hash: the slim packets
	// are hashed with the seed Process takes from the first packet.
	slimSeed := packetSeed(&pkts[0])
	// The same packets in slim form, the others whole beside them.
	// wholeBefore[i] counts the whole packets before packet i.
	slim, wholeBefore := make([]Slim, len(pkts)), make([]int, len(pkts)+1)
	var whole []capture.Packet
	for i := range pkts {
		if slim[i].Set(&pkts[i], slimSeed) {
			whole = append(whole, pkts[i])
		}
		wholeBefore[i+1] = len(whole)
	}
	if len(whole) == 0 || len(whole) == len(pkts) {
		t.Fatalf("%d of %d packets whole: the slim path is not tested", len(whole), len(pkts))
	}
	for _, size := range []int{1, 7, lookAheadSize, lookAheadSize + 1, 256, len(pkts)} {
		for _, slimmed := range []bool{false, true} {
			rec := newRecorder(t)
			tab := NewTable(opts, newFakeMatcher(), rec)
			for from := 0; from < len(pkts); from += size {
				to := min(from+size, len(pkts))
				if slimmed {
					tab.ProcessSlim(slim[from:to], whole[wholeBefore[from]:wholeBefore[to]], slimSeed)
				} else {
					tab.ProcessBatch(pkts[from:to])
				}
			}
			if tab.counts != wantCounts || tab.live != wantLive {
				t.Errorf("batches of %d (slim %v): counters %+v, %d live, want %+v, %d live", size, slimmed, tab.counts, tab.live, wantCounts, wantLive)
			}
			tab.Flush(at(time.Hour))
			if !slices.Equal(rec.lines, want.lines) {
				for i := range min(len(rec.lines), len(want.lines)) {
					if rec.lines[i] != want.lines[i] {
						t.Fatalf("batches of %d (slim %v) differ at sink call %d:\n got  %s\n want %s", size, slimmed, i, rec.lines[i], want.lines[i])
					}
				}
				t.Fatalf("batches of %d (slim %v): %d sink calls, want %d", size, slimmed, len(rec.lines), len(want.lines))
			}
		}
	}
}

func TestProcessBatchZeroAllocations(t *testing.T) {
	opts := testOptions()
	opts.InitialFlows, opts.MaxFlows = 1<<12, 1<<12
	tab := NewTable(opts, newFakeMatcher(), nil)
	pkts := make([]capture.Packet, 256)
	n := uint32(0)
	allocs := testing.AllocsPerRun(100, func() {
		for i := range pkts {
			pkts[i] = synFrom(at(time.Duration(n)), n%3000, n%2 == 0, 3741)
			n++
		}
		tab.ProcessBatch(pkts)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch of %d packets", allocs, len(pkts))
	}
	if tab.counts.created < 3000 {
		t.Fatalf("only %d flows created", tab.counts.created)
	}
}

// TestProcessSlimTakesNoSeedFromAnEmptyBatch: a live source's idle batch
// carries no packet, and its seed is not one the reader chose.
func TestProcessSlimTakesNoSeedFromAnEmptyBatch(t *testing.T) {
	tab := NewTable(testOptions(), newFakeMatcher(), nil)
	tab.ProcessSlim(nil, nil, 0)
	if _, ok := tab.Seed(); ok {
		t.Fatal("an empty batch seeded the table")
	}
	p := synFrom(at(0), 1, false, 3741)
	var s Slim
	s.Set(&p, 77)
	tab.ProcessSlim([]Slim{s}, nil, 77)
	if seed, ok := tab.Seed(); !ok || seed != 77 {
		t.Fatalf("seed %d (%v) after the first batch, want 77", seed, ok)
	}
}
