package classifier

import (
	"encoding/binary"

	"github.com/tpwatch/tpwatch/capture"
)

// Slim is a decoded packet as a batch carries it from the goroutine that
// reads and decodes to the table's: 40 bytes for an unfragmented IPv4 TCP
// or UDP packet, which is most traffic, against the 104 of a
// capture.Packet, with its flow's hash computed on the reading side. The
// batch crosses from one core's cache to the other's, and on two cores
// that transfer, not the work, dominated the table's time
// (docs/performance.md). Any other packet is marked Whole and carried as a
// capture.Packet beside it.
type Slim struct {
	TS int64
	// Hash is the flow's hash under the seed given to Set.
	Hash uint64
	// A and B are the flow's endpoints in the canonical order of its key
	// (IPv4 addresses as big-endian numbers), SrcIsA says which one sent
	// the packet: the reading goroutine orders them once, for the hash.
	A, B         uint32
	WireLen      uint32
	PayloadLen   uint32
	PortA, PortB uint16
	TCPFlags     uint8
	Proto        uint8
	SrcIsA       bool
	// Whole is set when the packet is anything else: the batch then holds
	// it as a capture.Packet (see ProcessSlim).
	Whole bool
}

// Set makes s the slim form of p, its flow hashed with seed (see
// Table.Seed), and reports whether p needs carrying whole instead (s.Whole
// is then set).
func (s *Slim) Set(p *capture.Packet, seed uint64) (whole bool) {
	if p.IPVersion != 4 || p.Fragment || p.Proto != capture.ProtoTCP && p.Proto != capture.ProtoUDP {
		*s = Slim{TS: p.TS, Whole: true}
		return true
	}
	src, srcOK := mappedWord(&p.Src)
	dst, dstOK := mappedWord(&p.Dst)
	if !srcOK || !dstOK {
		*s = Slim{TS: p.TS, Whole: true}
		return true
	}
	s.set4(p.TS, p.WireLen, src, dst, p.SrcPort, p.DstPort, p.Proto, p.TCPFlags, p.PayloadLen, seed)
	return false
}

// SetFlow4 makes s the slim form of the packet capture.DecodeFlow4 read
// into f, of time ts and length wireLen, its flow hashed with seed: what
// Set makes of the packet capture.Decode would give, without it.
func (s *Slim) SetFlow4(f *capture.Flow4, ts int64, wireLen uint32, seed uint64) {
	s.set4(ts, wireLen, word4(f.Src), word4(f.Dst), f.SrcPort, f.DstPort, f.Proto, f.TCPFlags, f.PayloadLen, seed)
}

// set4 fills s from an IPv4 TCP or UDP packet's fields, its addresses as
// words.
func (s *Slim) set4(ts int64, wireLen uint32, src, dst uint64, sport, dport uint16, proto, flags uint8, payloadLen uint32, seed uint64) {
	a, b, portA, portB, srcIsA := canonical(src, dst, sport, dport)
	// Field by field, from registers: a composite literal (or a flowKey)
	// is built on the stack and copied, and the copy's wide loads of the
	// narrow stores just made stall for want of store-to-load forwarding,
	// which cost a third of Set's time.
	s.TS, s.Hash = ts, hashKey(a, b, portA, portB, proto, seed)
	s.A, s.B, s.PortA, s.PortB = uint32(a), uint32(b), portA, portB
	s.WireLen, s.PayloadLen = wireLen, payloadLen
	s.TCPFlags, s.Proto, s.SrcIsA, s.Whole = flags, proto, srcIsA, false
}

// Packet fills p with the packet s describes (s not Whole).
func (s *Slim) Packet(p *capture.Packet) {
	src, dst, sport, dport := s.A, s.B, s.PortA, s.PortB
	if !s.SrcIsA {
		src, dst, sport, dport = dst, src, dport, sport
	}
	*p = capture.Packet{
		TS: s.TS, WireLen: s.WireLen, IPVersion: 4, Proto: s.Proto,
		SrcPort: sport, DstPort: dport,
		TCPFlags: s.TCPFlags, PayloadLen: s.PayloadLen,
	}
	binary.BigEndian.PutUint64(p.Src[8:], word4(src))
	binary.BigEndian.PutUint64(p.Dst[8:], word4(dst))
}

// key returns the canonical key of a slim packet and whether the sender
// is endpoint A.
func (s *Slim) key() (flowKey, bool) {
	return flowKey{word4(s.A), word4(s.B), s.PortA, s.PortB, s.Proto}, s.SrcIsA
}

// ProcessSlim follows a batch of slim packets in order, with exactly the
// effect of Process on each (see ProcessBatch). whole holds the packets
// marked Whole, in their order: the k-th Whole slim packet is whole[k].
// The slim packets were hashed with seed, which a table without one yet
// takes as its own (0, from a reader that has seen no flow yet, is no
// seed: a seed is never 0); under another seed they are hashed again.
func (t *Table) ProcessSlim(slim []Slim, whole []capture.Packet, seed uint64) {
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
				t.follow(i, &whole[w])
				w++
			} else {
				t.processSlim(&slim[i], &a.keys[i])
			}
		}
		slim, whole = slim[n:], whole[w:]
	}
}
