package classifier

import (
	"encoding/binary"
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
	tab.processPackets(pkts)
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
	slim, wholeBefore := make([]slim, len(pkts)), make([]int, len(pkts)+1)
	var whole []capture.Packet
	for i := range pkts {
		if slim[i].set(&pkts[i], slimSeed) {
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
					tab.processSlims(slim[from:to], whole[wholeBefore[from]:wholeBefore[to]], slimSeed)
				} else {
					tab.processPackets(pkts[from:to])
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
		tab.processPackets(pkts)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch of %d packets", allocs, len(pkts))
	}
	if tab.counts.created < 3000 {
		t.Fatalf("only %d flows created", tab.counts.created)
	}
}

// TestProcessSlimsTakesNoSeedFromAnEmptyBatch: a live source's idle batch
// carries no packet, and its seed is not one the reader chose.
func TestProcessSlimsTakesNoSeedFromAnEmptyBatch(t *testing.T) {
	tab := NewTable(testOptions(), newFakeMatcher(), nil)
	tab.processSlims(nil, nil, 0)
	if tab.seeded {
		t.Fatal("an empty batch seeded the table")
	}
	p := synFrom(at(0), 1, false, 3741)
	var s slim
	s.set(&p, 77)
	tab.processSlims([]slim{s}, nil, 77)
	if !tab.seeded || tab.seed != 77 {
		t.Fatalf("seed %d (%v) after the first batch, want 77", tab.seed, tab.seeded)
	}
}

// TestLoaderBatchesAreProcess loads the packets of TestProcessBatchIsProcess
// through a Loader, as the pipeline does, into batches for another
// goroutine (slim, hashed ahead, the first flow's packet seeding the hash)
// and for the table's own: ProcessBatch must have the effect of Process on
// each packet. The IPv4 TCP and UDP packets also go as Ethernet frames
// through AddFrame, the pipeline's short way.
func TestLoaderBatchesAreProcess(t *testing.T) {
	pkts := randomTraffic(12, 6000)
	opts := testOptions()
	opts.InitialFlows, opts.MaxFlows = 8, 48
	want, _ := run(t, opts, pkts, time.Hour)
	for _, crossing := range []bool{true, false} {
		rec := newRecorder(t)
		tab := NewTable(opts, newFakeMatcher(), rec)
		ld := tab.NewLoader(crossing)
		b := ld.NewBatch()
		ld.Start(b)
		frames := 0
		for i := range pkts {
			p := &pkts[i]
			if frame, ok := ethernetFrame(p); ok {
				r := capture.Record{TS: p.TS, WireLen: p.WireLen, Link: capture.LinkEthernet, Data: frame}
				r.CapLen = uint32(len(frame))
				if ld.AddFrame(&r) {
					frames++
					goto added
				}
			}
			*ld.Packet() = *p
			ld.Add(nil)
		added:
			if ld.Full() || i == len(pkts)-1 {
				tab.ProcessBatch(ld.Finish())
				ld.Start(b)
			}
		}
		tab.Flush(at(time.Hour))
		if crossing && frames < len(pkts)/2 || !crossing && frames != 0 {
			t.Fatalf("crossing=%v: %d of %d packets went through AddFrame", crossing, frames, len(pkts))
		}
		if !slices.Equal(rec.lines, want.lines) {
			t.Fatalf("crossing=%v: %d sink calls, want %d, or another order", crossing, len(rec.lines), len(want.lines))
		}
	}
}

// ethernetFrame writes p as an untagged Ethernet frame when it is an
// unfragmented IPv4 TCP or UDP packet, with the headers that decode back
// to it (payload lengths declared, not carried).
func ethernetFrame(p *capture.Packet) ([]byte, bool) {
	if p.IPVersion != 4 || p.Fragment || p.Proto != capture.ProtoTCP && p.Proto != capture.ProtoUDP {
		return nil, false
	}
	l4 := 8
	if p.Proto == capture.ProtoTCP {
		l4 = 20
	}
	f := make([]byte, 14+20+l4)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, p.Proto
	binary.BigEndian.PutUint16(ip[2:], uint16(20+l4+int(p.PayloadLen)))
	copy(ip[12:16], p.Src[12:])
	copy(ip[16:20], p.Dst[12:])
	tp := ip[20:]
	binary.BigEndian.PutUint16(tp[0:], p.SrcPort)
	binary.BigEndian.PutUint16(tp[2:], p.DstPort)
	if p.Proto == capture.ProtoTCP {
		tp[12], tp[13] = 5<<4, p.TCPFlags
	} else {
		binary.BigEndian.PutUint16(tp[4:], uint16(8+p.PayloadLen))
	}
	return f, true
}
