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
	Hash             uint64
	Src, Dst         uint32 // the IPv4 addresses, as big-endian numbers
	WireLen          uint32
	PayloadLen       uint32
	SrcPort, DstPort uint16
	TCPFlags         uint8
	Proto            uint8
	// Whole is set when the packet is anything else: the batch then holds
	// it as a capture.Packet at the same index.
	Whole bool
	_     uint8
}

// Set makes s the slim form of p, its flow hashed with seed (see
// Table.Seed), and reports whether p needs carrying whole instead (s.Whole
// is then set).
func (s *Slim) Set(p *capture.Packet, seed uint64) (whole bool) {
	src, sok := mappedWord(&p.Src)
	dst, dok := mappedWord(&p.Dst)
	if p.IPVersion != 4 || p.Fragment || p.Proto != capture.ProtoTCP && p.Proto != capture.ProtoUDP || !sok || !dok {
		*s = Slim{TS: p.TS, Whole: true}
		return true
	}
	*s = Slim{
		TS: p.TS, Src: uint32(src), Dst: uint32(dst),
		WireLen: p.WireLen, PayloadLen: p.PayloadLen,
		SrcPort: p.SrcPort, DstPort: p.DstPort,
		TCPFlags: p.TCPFlags, Proto: p.Proto,
	}
	k, _ := s.key()
	s.Hash = k.hash(seed)
	return false
}

// Packet fills p with the packet s describes (s not Whole).
func (s *Slim) Packet(p *capture.Packet) {
	*p = capture.Packet{
		TS: s.TS, WireLen: s.WireLen, IPVersion: 4, Proto: s.Proto,
		SrcPort: s.SrcPort, DstPort: s.DstPort,
		TCPFlags: s.TCPFlags, PayloadLen: s.PayloadLen,
	}
	binary.BigEndian.PutUint64(p.Src[8:], 0xffff<<32|uint64(s.Src))
	binary.BigEndian.PutUint64(p.Dst[8:], 0xffff<<32|uint64(s.Dst))
}

// key returns the canonical key of a slim packet and whether the sender
// is endpoint A.
func (s *Slim) key() (flowKey, bool) {
	src, dst := 0xffff<<32|uint64(s.Src), 0xffff<<32|uint64(s.Dst)
	if src < dst || src == dst && s.SrcPort <= s.DstPort {
		return flowKey{src, dst, s.SrcPort, s.DstPort, s.Proto}, true
	}
	return flowKey{dst, src, s.DstPort, s.SrcPort, s.Proto}, false
}

// ProcessSlim follows a batch of slim packets in order, with exactly the
// effect of Process on each (see ProcessBatch). whole holds the packets
// marked Whole, in their order: the k-th Whole slim packet is whole[k].
// The slim packets were hashed with seed, which a table without one yet
// takes as its own; under another seed they are hashed again.
func (t *Table) ProcessSlim(slim []Slim, whole []capture.Packet, seed uint64) {
	if len(slim) == 0 {
		return // and an empty batch's seed means nothing
	}
	if !t.seeded {
		t.seed, t.seeded = seed, true
	}
	hashed := seed == t.seed
	for len(slim) > 0 {
		n := min(len(slim), lookAheadSize)
		a := &t.ahead
		w := 0 // whole packets of this group so far
		for i := range slim[:n] {
			if s := &slim[i]; s.Whole {
				t.keyAhead(i, &whole[w])
				w++
			} else {
				kd := &a.keys[i]
				kd.k, kd.srcIsA = s.key()
				kd.h, kd.seed = s.Hash, t.seed
				if !hashed {
					kd.h = kd.k.hash(t.seed)
				}
				a.hash[i], a.flow[i], a.tcpUDP[i] = kd.h, true, true
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
