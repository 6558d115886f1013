package classifier

import (
	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/dissect"
)

// A Batch carries decoded packets from the goroutine that reads and decodes
// them to the table's, and ProcessBatch follows them: that is the
// pipeline's one way into the table. What a batch holds is the
// classifier's business. Made for another goroutine (NewLoader with
// crossing set), it holds most packets in a slim form of 40 bytes, their
// flows already hashed with the table's seed, and carries the others whole
// beside them: between two cores the transfer of the batch, not the work,
// was what cost most (docs/performance.md). Made for the table's own
// goroutine, it holds every packet whole, as decoded: there the slim form
// would only cost its making.
type Batch struct {
	n      int // packets
	wholes int // of them, carried whole (whole[:wholes])
	// seed is the hash seed of the slim packets' flows; 0: none yet.
	seed     uint64
	crossing bool
	slim     [BatchSize]slim
	whole    []capture.Packet
	// pay[k] is the payload carried with whole[k] (inspect.go), in arena;
	// both are nil for a table that inspects none.
	pay   []payRef
	arena []byte
}

// BatchSize is the most packets a Batch holds: 256 amortise a channel
// hand-off between goroutines (about 100 ns) to well under a nanosecond a
// packet.
const BatchSize = 256

// wholePerBatch bounds the packets a crossing batch carries whole: an IPv6
// capture gets batches of 64 packets, an IPv4 one does not pay 26 KiB a
// batch for room it does not use.
const wholePerBatch = 64

// Len is the number of packets in the batch.
func (b *Batch) Len() int { return b.n }

// A Loader fills Batches for one table, on the goroutine that reads and
// decodes. It hashes the flows of slim packets with the table's hash seed,
// or, for a table without one yet, with the seed the table will take from
// the same packet (seedFrom). Slim packets are staged in the loader and
// copied into the batch when it is complete: storing each into the batch,
// whose lines were last read on the table's core, made every store wait
// for a line from the other core and took a third of the replay's CPU; one
// copy of the whole batch moves the same lines many at a time.
type Loader struct {
	crossing bool
	seed     uint64
	seeded   bool
	b        *Batch
	pkt      capture.Packet
	flow4    capture.Flow4
	stage    [BatchSize]slim

	// inspect, when set, says which payloads the table reads (inspect.go);
	// seen counts the first payloads of each flow direction carried.
	inspect *InspectPorts
	seen    []uint16
	id      dissect.Identification
}

// NewLoader returns a loader of batches for t. crossing says whether the
// batches go to another goroutine (see Batch). It must be called on the
// table's goroutine, before the reading one starts: it reads the table's
// seed.
func (t *Table) NewLoader(crossing bool) *Loader {
	l := &Loader{crossing: crossing, seed: t.seed, seeded: t.seeded, inspect: t.opts.Inspect}
	if l.inspect != nil {
		l.seen = make([]uint16, 1<<seenBits)
	}
	return l
}

// NewBatch returns an empty batch of the loader's kind.
func (l *Loader) NewBatch() *Batch {
	n := BatchSize
	if l.crossing {
		n = wholePerBatch
	}
	b := &Batch{crossing: l.crossing, whole: make([]capture.Packet, n)}
	if l.inspect != nil {
		b.pay, b.arena = make([]payRef, n), make([]byte, 0, carryArena)
	}
	return b
}

// Start empties b and makes it the batch that Add and AddFrame fill.
func (l *Loader) Start(b *Batch) {
	b.n, b.wholes = 0, 0
	b.arena = b.arena[:0]
	l.b = b
}

// Full reports a batch that takes no more packets: no room for another
// packet, whole packet, or carried payload of the largest size (so that
// no payload the table should read is ever left behind).
func (l *Loader) Full() bool {
	b := l.b
	return b.n == BatchSize || b.wholes == len(b.whole) || b.arena != nil && cap(b.arena)-len(b.arena) < maxCarry
}

// Len is the number of packets loaded into the batch so far.
func (l *Loader) Len() int { return l.b.n }

// AddFrame adds the packet of an Ethernet frame when it is the commonest
// kind (untagged, unfragmented IPv4 TCP or UDP: capture.DecodeFlow4), and
// reports whether it did; any other frame is for Packet and Add. It takes
// the short way, straight into the slim form, without capture.Decode.
func (l *Loader) AddFrame(rec *capture.Record) bool {
	if !l.crossing || !l.seeded || rec.Link != capture.LinkEthernet || !capture.DecodeFlow4(rec.Data, &l.flow4) {
		return false
	}
	f := &l.flow4
	inspect := l.inspect != nil && f.PayloadOff != 0
	if inspect && readsAll(f.Proto, f.SrcPort, f.DstPort) {
		// A learner's port: its reader follows TCP sequence numbers,
		// which only a whole packet carries.
		return false
	}
	s := &l.stage[l.b.n]
	s.setFlow4(f, rec.TS, rec.WireLen, l.seed)
	if inspect && l.firstPort(f.Proto, f.SrcPort, f.DstPort) && l.carryFirst(dirHash(s.Hash, s.SrcIsA), f.PayloadLen) {
		s.Ident = l.identify(f.Proto, rec.Data[f.PayloadOff:], f.PayloadLen)
	}
	l.b.n++
	return true
}

// Packet is where the caller decodes the next packet; Add then adds it.
func (l *Loader) Packet() *capture.Packet {
	if !l.crossing {
		return &l.b.whole[l.b.n]
	}
	return &l.pkt
}

// Add adds the packet decoded into Packet() from data, an IP packet
// (IPVersion set). data is read only here: the few payload bytes the table
// inspects are copied into the batch.
func (l *Loader) Add(data []byte) {
	b := l.b
	if !l.crossing {
		if b.pay != nil {
			b.pay[b.n] = payRef{}
			if p := &b.whole[b.n]; l.inspect != nil {
				if want, _ := l.wantsPayload(p, nil); want {
					l.carry(b.n, p, data)
				}
			}
		}
		b.n++
		b.wholes++
		return
	}
	p := &l.pkt
	if !l.seeded {
		l.seed, l.seeded = seedFrom(p)
	}
	s := &l.stage[b.n]
	whole := s.set(p, l.seed)
	var carry bool
	if l.inspect != nil {
		slimForm := s
		if whole {
			slimForm = nil
		}
		var learner bool
		carry, learner = l.wantsPayload(p, slimForm)
		if carry && !whole && !learner {
			// A first payload of a slim packet: named here, not carried.
			if off := int(p.PayloadOff); off < len(data) {
				s.Ident = l.identify(p.Proto, data[off:], p.PayloadLen)
			}
			carry = false
		}
	}
	if whole || carry {
		*s = slim{TS: p.TS, Whole: true}
		b.whole[b.wholes] = *p
		if b.pay != nil {
			b.pay[b.wholes] = payRef{}
			if carry {
				l.carry(b.wholes, p, data)
			}
		}
		b.wholes++
	}
	b.n++
}

// Finish completes the batch being loaded and returns it, ready for
// ProcessBatch.
func (l *Loader) Finish() *Batch {
	b := l.b
	if l.crossing {
		copy(b.slim[:b.n], l.stage[:b.n])
		b.seed = l.seed
	}
	l.b = nil
	return b
}

// ProcessBatch follows the packets of b in order, with exactly the effect
// of Process on each. b may be reused once it returns.
func (t *Table) ProcessBatch(b *Batch) {
	t.batch, t.wholes = b, 0
	if b.crossing {
		t.processSlims(b.slim[:b.n], b.whole[:b.wholes], b.seed)
	} else {
		t.processPackets(b.whole[:b.n])
	}
	t.batch = nil
}

// processSlims follows a batch of slim packets in order, with exactly the
// effect of Process on each (see processPackets). whole holds the packets
// marked Whole, in their order: the k-th Whole slim packet is whole[k].
// The slim packets were hashed with seed, which a table without one yet
// takes as its own (0, from a reader that has seen no flow yet, is no
// seed: a seed is never 0); under another seed they are hashed again.
func (t *Table) processSlims(slim []slim, whole []capture.Packet, seed uint64) {
	if len(slim) == 0 {
		return // and an empty batch's seed means nothing
	}
	if !t.seeded && seed != 0 {
		t.seed, t.seeded = seed, true
	}
	hashed := seed == t.seed
	// The batch was written on the reading goroutine's core: bring its
	// lines over in a loop of nothing but independent loads, as many in
	// flight as the core allows, rather than one or two at a time as the
	// packets are keyed.
	var words uint64
	for i := range slim {
		words += slim[i].Hash
	}
	t.ahead.words += words
	for len(slim) > 0 {
		n := min(len(slim), lookAheadSize)
		a := &t.ahead
		w := 0 // whole packets of this group so far
		for i := range slim[:n] {
			if s := &slim[i]; s.Whole {
				t.keyAhead(i, &whole[w])
				w++
			} else {
				a.setSlimKey(i, s, hashed, t.seed)
			}
		}
		t.loadAhead(n)
		w = 0
		for i := range slim[:n] {
			if slim[i].Whole {
				t.followAhead(i, &whole[w])
				w++
			} else {
				t.processSlim(&slim[i], &a.keys[i])
			}
		}
		slim, whole = slim[n:], whole[w:]
	}
}

// lookAheadSize is how many packets processPackets looks up before it
// follows them: enough independent loads in flight to hide most of a cache
// (and TLB) miss, few enough that the lines they bring (an index slot and
// an entry line a packet, 4 KiB) are still in the L1 cache when the
// packets are followed.
const lookAheadSize = 32

// lookAhead holds the words processPackets loads ahead: the loads only
// exist to bring cache lines in, but their sum is stored so that the
// compiler cannot drop them.
type lookAhead struct {
	// keys are the TCP and UDP packets' flow keys and hashes, which the
	// packets are then followed with; an ICMP error's quoted flow is
	// looked up again when it is followed (rare).
	keys   [lookAheadSize]keyed
	hash   [lookAheadSize]uint64
	flow   [lookAheadSize]bool   // the packet belongs to a flow: hash is set
	tcpUDP [lookAheadSize]bool   // keys[i] holds the packet's own flow
	ref    [lookAheadSize]uint32 // its entry number + 1 as the index has it, or 0
	// meta: the packet brings a first payload's identification, which
	// reads the flow's meta too (Table.inspect): its line is loaded with
	// the entry's.
	meta  [lookAheadSize]bool
	words uint64
}

// processPackets follows the packets in order, with exactly the effect of
// calling Process on each in turn (a flow created by one packet is found
// by the next ones), but faster on a table larger than the CPU caches: it
// first computes the flow keys of a group of packets and loads their index
// slots, then their entries, so that the CPU waits for all those memory
// accesses at once rather than for one after another, and only then
// follows the packets.
func (t *Table) processPackets(pkts []capture.Packet) {
	for len(pkts) > 0 {
		n := min(len(pkts), lookAheadSize)
		for i := range pkts[:n] {
			t.keyAhead(i, &pkts[i])
		}
		t.loadAhead(n)
		for i := range pkts[:n] {
			t.followAhead(i, &pkts[i])
		}
		pkts = pkts[n:]
	}
}

// followAhead processes packet p, number i of the group looked up ahead.
func (t *Table) followAhead(i int, p *capture.Packet) {
	// Whole packets are followed in their batch order: the count says
	// which carried payload, if any, is this one's.
	t.payload = t.batch.payloadOf(t.wholes)
	t.wholes++
	if t.ahead.tcpUDP[i] {
		t.process(p, &t.ahead.keys[i])
	} else {
		t.process(p, nil)
	}
	t.payload = nil
}

// payloadOf returns the payload carried with the batch's k-th whole
// packet, nil when none (or b nil: a packet given to Process).
func (b *Batch) payloadOf(k int) []byte {
	if b == nil || b.pay == nil {
		return nil
	}
	r := b.pay[k]
	if r.n == 0 {
		return nil
	}
	return b.arena[r.off : r.off+r.n]
}

// keyAhead computes the flow key and hash of packet p, number i of the
// group to look up ahead.
func (t *Table) keyAhead(i int, p *capture.Packet) {
	a := &t.ahead
	a.tcpUDP[i], a.meta[i] = false, false
	switch {
	case p.IPVersion == 0 || p.Fragment:
		a.flow[i] = false
	case p.Proto == capture.ProtoTCP || p.Proto == capture.ProtoUDP:
		// An IPv6 key depends on the table's pool of addresses, which the
		// packets before this one may change: it is computed when the
		// packet is followed, and not loaded ahead.
		if k, srcIsA, ok := makeKey4(&p.Src, &p.Dst, p.SrcPort, p.DstPort, p.Proto); ok {
			a.setKey(i, &k, srcIsA, k.hash(t.seed), t.seed)
		} else {
			a.flow[i] = false
		}
	case p.Quoted && (p.Proto == capture.ProtoICMP || p.Proto == capture.ProtoICMPv6):
		k, _, ok := makeKey4(&p.QSrc, &p.QDst, p.QSrcPort, p.QDstPort, p.QProto)
		a.hash[i], a.flow[i] = k.hash(t.seed), ok
	default:
		a.flow[i] = false
	}
}

// setKey records packet i's own flow key, hashed with seed.
func (a *lookAhead) setKey(i int, k *flowKey, srcIsA bool, h, seed uint64) {
	// Field by field: a keyed literal is built on the stack and copied,
	// and the copy's wide loads of its narrow stores stall.
	kk := &a.keys[i]
	kk.k.a, kk.k.b, kk.k.portA, kk.k.portB, kk.k.proto = k.a, k.b, k.portA, k.portB, k.proto
	kk.srcIsA, kk.h, kk.seed = srcIsA, h, seed
	a.hash[i], a.flow[i], a.tcpUDP[i] = h, true, true
}

// setSlimKey records slim packet i's flow key and its hash under seed:
// s.Hash when hashed says s was hashed with it.
func (a *lookAhead) setSlimKey(i int, s *slim, hashed bool, seed uint64) {
	kk := &a.keys[i]
	kk.k.a, kk.k.b = word4(s.A), word4(s.B)
	kk.k.portA, kk.k.portB, kk.k.proto = s.PortA, s.PortB, s.Proto
	h := s.Hash
	if !hashed {
		h = hashKey(kk.k.a, kk.k.b, s.PortA, s.PortB, s.Proto, seed)
	}
	kk.srcIsA, kk.h, kk.seed = s.SrcIsA, h, seed
	a.hash[i], a.flow[i], a.tcpUDP[i], a.meta[i] = h, true, true, s.Ident != 0
}

// loadAhead touches the index slots, then the entries, that the first n
// packets of the group will look up (keyAhead has hashed them). It changes
// nothing: a packet whose flow the table does not hold yet, or that an
// earlier packet of the group creates, moves or ends, merely loads a line
// in vain.
func (t *Table) loadAhead(n int) {
	a := &t.ahead
	mask := uint32(len(t.index) - 1)
	var words uint64
	// A loop of nothing but independent loads, so that the CPU's window
	// of instructions in flight holds as many of them as it can.
	index := t.index
	for i := range n {
		words += uint64(index[uint32(a.hash[i])&mask].ref)
	}
	// The index slots are in the cache now: find each packet's entry,
	// then load the entries, again in a loop of independent loads.
	for i := range n {
		a.ref[i], a.keys[i].ref = 0, 0
		if !a.flow[i] {
			continue
		}
		tag := uint32(a.hash[i])
		for pos := tag & mask; ; pos = (pos + 1) & mask {
			s := index[pos]
			if s.ref == 0 {
				break
			}
			if s.tag == tag && int(s.ref) <= t.live {
				a.ref[i], a.keys[i].ref = s.ref, s.ref
				break
			}
		}
	}
	entries, due, meta := t.entries, t.due, t.meta
	for i := range n {
		if r := a.ref[i]; r != 0 {
			// An entry is one cache line (see entry); its due time, read
			// first when the packet is followed, is in another.
			words += entries[r-1].a + uint64(due[r-1])
			if a.meta[i] {
				words += uint64(meta[r-1].first)
			}
		}
	}
	a.words = words
}
