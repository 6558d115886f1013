package classifier

import (
	"encoding/binary"

	"github.com/tpwatch/tpwatch/capture"
)

// slim is a decoded packet as a Batch carries it from the goroutine that
// reads and decodes to the table's: 40 bytes for an unfragmented IPv4 TCP
// or UDP packet, which is most traffic, against the 104 of a
// capture.Packet, with its flow's hash computed on the reading side. The
// batch crosses from one core's cache to the other's, and on two cores
// that transfer, not the work, dominated the table's time
// (docs/performance.md). Any other packet is marked Whole and carried as a
// capture.Packet beside it.
type slim struct {
	TS int64
	// Hash is the flow's hash under the seed given to set.
	Hash uint64
	// A and B are the flow's endpoints in the canonical order of its key
	// (IPv4 addresses as big-endian numbers), SrcIsA says which one sent
	// the packet: the reading goroutine orders them once, for the hash.
	A, B       uint32
	WireLen    uint32
	PayloadLen uint16 // an unfragmented IPv4 packet's payload fits
	// Ident is what Identify made of the packet's payload on the reading
	// side, a first payload of a direction on an inspected port
	// (inspect.go; 0: none read): the payload itself does not cross.
	Ident        identWord
	PortA, PortB uint16
	TCPFlags     uint8
	Proto        uint8
	SrcIsA       bool
	// Whole is set when the packet is anything else: the batch then holds
	// it as a capture.Packet (see processSlims).
	Whole bool
}

// set makes s the slim form of p, its flow hashed with seed, and reports
// whether p needs carrying whole instead (s.Whole is then set).
func (s *slim) set(p *capture.Packet, seed uint64) (whole bool) {
	if p.IPVersion != 4 || p.Fragment || p.Proto != capture.ProtoTCP && p.Proto != capture.ProtoUDP || p.PayloadLen > 0xffff {
		*s = slim{TS: p.TS, Whole: true}
		return true
	}
	src, srcOK := mappedWord(&p.Src)
	dst, dstOK := mappedWord(&p.Dst)
	if !srcOK || !dstOK {
		*s = slim{TS: p.TS, Whole: true}
		return true
	}
	s.set4(p.TS, p.WireLen, src, dst, p.SrcPort, p.DstPort, p.Proto, p.TCPFlags, p.PayloadLen, seed)
	return false
}

// setFlow4 makes s the slim form of the packet capture.DecodeFlow4 read
// into f, of time ts and length wireLen, its flow hashed with seed: what
// set makes of the packet capture.Decode would give, without it.
func (s *slim) setFlow4(f *capture.Flow4, ts int64, wireLen uint32, seed uint64) {
	s.set4(ts, wireLen, word4(f.Src), word4(f.Dst), f.SrcPort, f.DstPort, f.Proto, f.TCPFlags, f.PayloadLen, seed)
}

// set4 fills s from an IPv4 TCP or UDP packet's fields, its addresses as
// words.
func (s *slim) set4(ts int64, wireLen uint32, src, dst uint64, sport, dport uint16, proto, flags uint8, payloadLen uint32, seed uint64) {
	a, b, portA, portB, srcIsA := canonical(src, dst, sport, dport)
	// Field by field, from registers: a composite literal (or a flowKey)
	// is built on the stack and copied, and the copy's wide loads of the
	// narrow stores just made stall for want of store-to-load forwarding,
	// which cost a third of Set's time.
	s.TS, s.Hash = ts, hashKey(a, b, portA, portB, proto, seed)
	s.A, s.B, s.PortA, s.PortB = uint32(a), uint32(b), portA, portB
	s.WireLen, s.PayloadLen, s.Ident = wireLen, uint16(payloadLen), 0
	s.TCPFlags, s.Proto, s.SrcIsA, s.Whole = flags, proto, srcIsA, false
}

// packet fills p with the packet s describes (s not Whole).
func (s *slim) packet(p *capture.Packet) {
	src, dst, sport, dport := s.A, s.B, s.PortA, s.PortB
	if !s.SrcIsA {
		src, dst, sport, dport = dst, src, dport, sport
	}
	*p = capture.Packet{
		TS: s.TS, WireLen: s.WireLen, IPVersion: 4, Proto: s.Proto,
		SrcPort: sport, DstPort: dport,
		TCPFlags: s.TCPFlags, PayloadLen: uint32(s.PayloadLen),
	}
	binary.BigEndian.PutUint64(p.Src[8:], word4(src))
	binary.BigEndian.PutUint64(p.Dst[8:], word4(dst))
}
