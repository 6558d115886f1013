package classifier

import (
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"

	"github.com/tpwatch/tpwatch/capture"
)

// cpuMeter reports, beside ns/op (wall clock, inflated on a shared
// machine), the CPU time per packet and the packet rate it allows.
type cpuMeter struct {
	b     *testing.B
	start time.Duration
}

func startCPU(b *testing.B) cpuMeter {
	b.ReportAllocs()
	b.ResetTimer()
	start, _ := processCPUTime()
	return cpuMeter{b, start}
}

func (m cpuMeter) stop() {
	m.b.StopTimer()
	end, ok := processCPUTime()
	if !ok || m.b.N == 0 {
		return
	}
	ns := float64(end-m.start) / float64(m.b.N)
	m.b.ReportMetric(ns, "cpu-ns/pkt")
	m.b.ReportMetric(1e3/ns, "cpu-Mpps")
}

// ackFrom is a data segment of flow n from its client, as established by
// synFrom(n) and answered.
func ackFrom(ts int64, n uint32, dport uint16) capture.Packet {
	p := synFrom(ts, n, false, dport)
	p.TCPFlags, p.PayloadLen = pshack, 100
	return p
}

// establish opens flows 0..n-1 (SYN, SYN-ACK) on the agent port 3741.
func establish(tab *Table, n int) {
	for i := range uint32(n) {
		p := synFrom(at(0), i, false, 3741)
		tab.Process(&p)
		p.Src, p.Dst, p.SrcPort, p.DstPort = p.Dst, p.Src, p.DstPort, p.SrcPort
		p.TCPFlags = synack
		tab.Process(&p)
	}
}

func BenchmarkProcessExisting(b *testing.B) {
	const flows = 1000
	tab := NewTable(DefaultOptions(), newFakeMatcher(), nil)
	establish(tab, flows)
	pkts := make([]capture.Packet, flows)
	for i := range pkts {
		pkts[i] = ackFrom(at(0), uint32(i), 3741)
		if i%2 == 1 { // half the packets go the other way
			p := &pkts[i]
			p.Src, p.Dst, p.SrcPort, p.DstPort = p.Dst, p.Src, p.DstPort, p.SrcPort
		}
	}
	cpu := startCPU(b)
	for i := range b.N {
		p := &pkts[i%flows]
		p.TS = at(0) + int64(i)
		tab.Process(p)
	}
	cpu.stop()
}

// BenchmarkProcessNewFlows creates a flow a packet (a SYN) in a pre-sized
// table, flushed (off the clock) whenever it is full.
func BenchmarkProcessNewFlows(b *testing.B) {
	opts := DefaultOptions()
	opts.InitialFlows = opts.MaxFlows
	tab := NewTable(opts, newFakeMatcher(), nil)
	p := synFrom(at(0), 0, false, 3741)
	var flushing time.Duration
	cpu := startCPU(b)
	for i := range b.N {
		if tab.live == opts.MaxFlows {
			b.StopTimer()
			before, _ := processCPUTime()
			tab.Flush(p.TS)
			after, _ := processCPUTime()
			flushing += after - before
			b.StartTimer()
		}
		p.TS = at(0) + int64(i)
		p.Src = hostAddr(uint32(i), false)
		p.SrcPort = uint16(1024 + i>>24)
		tab.Process(&p)
	}
	cpu.start += flushing
	cpu.stop()
}

// BenchmarkProcessEvicting creates a flow a packet in a full table: every
// packet evicts a flow.
func BenchmarkProcessEvicting(b *testing.B) {
	opts := DefaultOptions()
	opts.InitialFlows, opts.MaxFlows = 1<<16, 1<<16
	tab := NewTable(opts, newFakeMatcher(), nil)
	establish(tab, opts.MaxFlows)
	p := synFrom(at(0), 0, false, 3741)
	cpu := startCPU(b)
	for i := range b.N {
		n := uint32(opts.MaxFlows + i)
		p.TS = at(0) + int64(i)
		p.Src = hostAddr(n, false)
		p.SrcPort = uint16(1024 + n>>24)
		tab.Process(&p)
	}
	cpu.stop()
}

// BenchmarkProcess1MFlows sends data segments of one million established
// flows in a random order: nearly every packet misses the CPU caches.
func BenchmarkProcess1MFlows(b *testing.B) {
	const flows = 1_000_000
	opts := DefaultOptions()
	opts.InitialFlows = opts.MaxFlows
	tab := NewTable(opts, newFakeMatcher(), nil)
	establish(tab, flows)
	if tab.live != flows {
		b.Fatalf("%d live flows, want %d", tab.live, flows)
	}
	order := rand.New(rand.NewPCG(1, 1)).Perm(flows)
	p := ackFrom(at(0), 0, 3741)
	cpu := startCPU(b)
	for i := range b.N {
		n := uint32(order[i%flows])
		p.TS = at(0) + int64(i)
		p.Src = hostAddr(n, false)
		p.SrcPort = uint16(1024 + n%50000)
		tab.Process(&p)
	}
	cpu.stop()
	bytes := float64(len(tab.entries))*float64(unsafe.Sizeof(entry{})+unsafe.Sizeof(entryMeta{})+unsafe.Sizeof(tab.due[0])) + float64(len(tab.index))*float64(unsafe.Sizeof(slot{}))
	b.ReportMetric(bytes/flows, "B/flow")
}

// BenchmarkProcessBatch1MFlows is BenchmarkProcess1MFlows through
// ProcessBatch, in batches of 256 as the pipeline hands them.
func BenchmarkProcessBatch1MFlows(b *testing.B) {
	const flows = 1_000_000
	opts := DefaultOptions()
	opts.InitialFlows = opts.MaxFlows
	tab := NewTable(opts, newFakeMatcher(), nil)
	establish(tab, flows)
	order := rand.New(rand.NewPCG(1, 1)).Perm(flows)
	pkts := make([]capture.Packet, 256)
	for i := range pkts {
		pkts[i] = ackFrom(at(0), 0, 3741)
	}
	cpu := startCPU(b)
	for i := 0; i < b.N; i += len(pkts) {
		for j := range pkts {
			n := uint32(order[(i+j)%flows])
			p := &pkts[j]
			p.TS = at(0) + int64(i+j)
			p.Src = hostAddr(n, false)
			p.SrcPort = uint16(1024 + n%50000)
		}
		tab.processPackets(pkts[:min(len(pkts), b.N-i)])
	}
	cpu.stop()
}

// BenchmarkExpire300kFlows ends 300,000 established flows by their idle
// timeout, the way the sweep ends flows on a replay (finish, then remove:
// its index slot and the moved entry's), at scattered places in the table:
// the flows were last seen in random order, and the clock advances in 20
// steps. It reports the wall time a flow of the Advances that end them;
// setting the table up is not timed.
func BenchmarkExpire300kFlows(b *testing.B) {
	const flows, steps = 300_000, 20
	opts := DefaultOptions()
	opts.InitialFlows = 1 << 19
	order := rand.New(rand.NewPCG(2, 2)).Perm(flows)
	b.ReportAllocs()
	b.ResetTimer()
	var spent time.Duration
	for range b.N {
		b.StopTimer()
		tab := NewTable(opts, newFakeMatcher(), nil)
		establish(tab, flows)
		for k, n := range order {
			p := ackFrom(at(time.Second)+int64(k)*int64(time.Millisecond), uint32(n), 3741)
			tab.Process(&p)
		}
		b.StartTimer()
		start := time.Now()
		step := int64(flows) * int64(time.Millisecond) / steps
		for s := range int64(steps + 1) {
			tab.Advance(at(time.Second+opts.TCPIdle) + s*step)
		}
		spent += time.Since(start)
		if tab.live != 0 {
			b.Fatalf("%d flows live after their timeout", tab.live)
		}
	}
	b.ReportMetric(float64(spent.Nanoseconds())/float64(b.N*flows), "ns/flow")
}

// BenchmarkProcessSlim1MFlows is BenchmarkProcess1MFlows through
// ProcessSlim, the pipeline's path: batches of 256 slim packets hashed
// ahead with the table's seed (on the reading goroutine, in a replay; here
// outside the timed loop's table work, but inside the benchmark's time).
// It reports the bytes a flow costs (the arrays as mapped: entries for
// MaxFlows, so a little more than the flows touch, and the index) and the
// process's resident memory.
func BenchmarkProcessSlim1MFlows(b *testing.B) {
	const flows = 1_000_000
	opts := DefaultOptions()
	tab := NewTable(opts, newFakeMatcher(), nil)
	establish(tab, flows)
	if tab.live != flows {
		b.Fatalf("%d live flows, want %d", tab.live, flows)
	}
	seed := tab.seed
	order := rand.New(rand.NewPCG(1, 1)).Perm(flows)
	slim := make([]slim, 256)
	p := ackFrom(at(0), 0, 3741)
	cpu := startCPU(b)
	for i := 0; i < b.N; i += len(slim) {
		for j := range slim {
			n := uint32(order[(i+j)%flows])
			p.TS = at(0) + int64(i+j)
			p.Src = hostAddr(n, false)
			p.SrcPort = uint16(1024 + n%50000)
			slim[j].set(&p, seed)
		}
		tab.processSlims(slim[:min(len(slim), b.N-i)], nil, seed)
	}
	cpu.stop()
	bytes := float64(len(tab.entries))*float64(unsafe.Sizeof(entry{})+unsafe.Sizeof(entryMeta{})+unsafe.Sizeof(tab.due[0])) + float64(len(tab.index))*float64(unsafe.Sizeof(slot{}))
	b.ReportMetric(bytes/flows, "B/flow")
	if rss, ok := residentBytes(); ok {
		b.ReportMetric(float64(rss)/(1<<20), "RSS-MiB")
	}
	if tab.live != flows {
		b.Fatalf("%d live flows after the run, want %d", tab.live, flows)
	}
}
