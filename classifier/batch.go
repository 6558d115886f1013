package classifier

import "github.com/tpwatch/tpwatch/capture"

// lookAheadSize is how many packets ProcessBatch looks up before it follows
// them: enough independent loads in flight to hide most of a cache (and
// TLB) miss, few enough that the lines they bring (an index slot and an
// entry line a packet, 4 KiB) are still in the L1 cache when the
// packets are followed.
const lookAheadSize = 32

// lookAhead holds the words ProcessBatch loads ahead: the loads only exist
// to bring cache lines in, but their sum is stored so that the compiler
// cannot drop them.
type lookAhead struct {
	// keys are the TCP and UDP packets' flow keys and hashes, which the
	// packets are then followed with; an ICMP error's quoted flow is
	// looked up again when it is followed (rare).
	keys   [lookAheadSize]keyed
	hash   [lookAheadSize]uint64
	flow   [lookAheadSize]bool   // the packet belongs to a flow: hash is set
	tcpUDP [lookAheadSize]bool   // keys[i] holds the packet's own flow
	ref    [lookAheadSize]uint32 // its entry number + 1 as the index has it, or 0
	words  uint64
}

// ProcessBatch follows the packets in order, with exactly the effect of
// calling Process on each in turn (a flow created by one packet is found
// by the next ones), but faster on a table larger than the CPU caches: it
// first computes the flow keys of a group of packets and loads their index
// slots, then their entries, so that the CPU waits for all those memory
// accesses at once rather than for one after another, and only then
// follows the packets.
func (t *Table) ProcessBatch(pkts []capture.Packet) {
	for len(pkts) > 0 {
		n := min(len(pkts), lookAheadSize)
		for i := range pkts[:n] {
			t.keyAhead(i, &pkts[i])
		}
		t.loadAhead(n)
		for i := range pkts[:n] {
			t.follow(i, &pkts[i])
		}
		pkts = pkts[n:]
	}
}

// follow processes packet p, number i of the group looked up ahead.
func (t *Table) follow(i int, p *capture.Packet) {
	if t.ahead.tcpUDP[i] {
		t.process(p, &t.ahead.keys[i])
	} else {
		t.process(p, nil)
	}
}

// keyAhead computes the flow key and hash of packet p, number i of the
// group to look up ahead.
func (t *Table) keyAhead(i int, p *capture.Packet) {
	a := &t.ahead
	a.tcpUDP[i] = false
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
func (a *lookAhead) setSlimKey(i int, s *Slim, hashed bool, seed uint64) {
	kk := &a.keys[i]
	kk.k.a, kk.k.b = word4(s.A), word4(s.B)
	kk.k.portA, kk.k.portB, kk.k.proto = s.PortA, s.PortB, s.Proto
	h := s.Hash
	if !hashed {
		h = hashKey(kk.k.a, kk.k.b, s.PortA, s.PortB, s.Proto, seed)
	}
	kk.srcIsA, kk.h, kk.seed = s.SrcIsA, h, seed
	a.hash[i], a.flow[i], a.tcpUDP[i] = h, true, true
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
	entries, due := t.entries, t.due
	for i := range n {
		if r := a.ref[i]; r != 0 {
			// An entry is one cache line (see entry); its due time, read
			// first when the packet is followed, is in another.
			words += entries[r-1].a + uint64(due[r-1])
		}
	}
	a.words = words
}
