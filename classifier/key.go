package classifier

import (
	"encoding/binary"
	"math/bits"

	"github.com/tpwatch/tpwatch/capture"
)

// flowKey identifies a flow whatever the direction of its packets: the two
// endpoints in canonical order (the lower address and port first, by the
// full 16-byte addresses), each address held as one word (see wideWord).
type flowKey struct {
	a, b         uint64 // endpoint A's and endpoint B's address words
	portA, portB uint16
	proto        uint8
}

// An address word is the low 64 bits of an IPv4-mapped address
// (0x0000ffff_aabbccdd: its high 64 bits are zero), or, for any other
// address, wideWord plus the address's number in the table's pool of IPv6
// addresses (wideAddrs). The two never meet: a mapped word's top 16 bits
// are zero. This keeps a key, and so an entry, small for the IPv4 flows
// that make most traffic, at the cost of a pool look-up per IPv6 address.
const wideWord = 1 << 63

// mappedWord returns the word of an IPv4-mapped address, or false for
// any other address.
func mappedWord(a *[16]byte) (uint64, bool) {
	hi, lo := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
	return lo, hi == 0 && lo>>32 == 0xffff
}

// word4 is the address word of the IPv4 address addr (a big-endian
// number).
func word4(addr uint32) uint64 { return 0xffff<<32 | uint64(addr) }

// canonical orders the endpoints s:sport and d:dport of a flow whose
// addresses are words (mapped words order as their addresses do) into
// its key's A and B, and reports whether the sender s is A.
func canonical(s, d uint64, sport, dport uint16) (a, b uint64, portA, portB uint16, srcIsA bool) {
	if s < d || s == d && sport <= dport {
		return s, d, sport, dport, true
	}
	return d, s, dport, sport, false
}

// srcFirst reports whether src:sport orders before (or equals) dst:dport,
// which makes the sender endpoint A of the canonical key.
func srcFirst(src, dst *[16]byte, sport, dport uint16) bool {
	s0, s1 := binary.BigEndian.Uint64(src[:8]), binary.BigEndian.Uint64(src[8:])
	d0, d1 := binary.BigEndian.Uint64(dst[:8]), binary.BigEndian.Uint64(dst[8:])
	return s0 < d0 || s0 == d0 && (s1 < d1 || s1 == d1 && sport <= dport)
}

// makeKey4 returns the canonical key of an IPv4 packet src:sport →
// dst:dport and whether the sender is endpoint A; ok is false when an
// address is not IPv4-mapped (the table's pool must name it).
func makeKey4(src, dst *[16]byte, sport, dport uint16, proto uint8) (k flowKey, srcIsA, ok bool) {
	a, b, portA, portB, srcIsA, ok := order4(src, dst, sport, dport)
	return flowKey{a, b, portA, portB, proto}, srcIsA, ok
}

// order4 is makeKey4 with the key's fields returned one by one, in
// registers.
func order4(src, dst *[16]byte, sport, dport uint16) (a, b uint64, portA, portB uint16, srcIsA, ok bool) {
	s, sok := mappedWord(src)
	d, dok := mappedWord(dst)
	if !sok || !dok {
		return 0, 0, 0, 0, false, false
	}
	a, b, portA, portB, srcIsA = canonical(s, d, sport, dport)
	return a, b, portA, portB, srcIsA, true
}

// Hash constants: odd 64-bit numbers with well-mixed bits (the fractional
// parts of sqrt(2), sqrt(3), sqrt(5), sqrt(7), pi and e).
const (
	hk0 = 0x6a09e667f3bcc909
	hk1 = 0xbb67ae8584caa73b
	hk2 = 0x3c6ef372fe94f82b
	hk3 = 0xa54ff53a5f1d36f1
	hk4 = 0x243f6a8885a308d3
	hk5 = 0xb7e151628aed2a6b
)

// mix folds the 128-bit product of a and b: one multiplication that lets
// every input bit reach most output bits.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// hash is the table's hash of a key under a seed: two multiplications. It
// is symmetric because the key is canonical.
func (k *flowKey) hash(seed uint64) uint64 {
	return hashKey(k.a, k.b, k.portA, k.portB, k.proto, seed)
}

// hashKey is flowKey.hash of the key with these fields, for callers that
// hold them in registers rather than in a flowKey.
func hashKey(a, b uint64, portA, portB uint16, proto uint8, seed uint64) uint64 {
	w := uint64(portA)<<40 | uint64(portB)<<24 | uint64(proto)
	x := mix(a^seed^hk0, b^hk1)
	return mix(x^w^hk2, seed^hk3)
}

// flowHashSeed seeds FlowHash. It differs from every table seed in
// practice, and FlowHash re-mixes its result, so that a shard's packets,
// which share FlowHash bits, still spread over the whole of its table.
const flowHashSeed = 0x9e3779b97f4a7c15

// FlowHash returns a hash of the packet's flow that is the same in both
// directions (A→B and B→A), for sharding packets across tables each owned
// by one goroutine. An ICMP or ICMPv6 error quoting a packet hashes as the
// quoted packet's flow, so that it reaches the shard holding that flow.
func FlowHash(p *capture.Packet) uint64 {
	src, dst, sport, dport, proto := &p.Src, &p.Dst, p.SrcPort, p.DstPort, p.Proto
	if p.Quoted && (p.Proto == capture.ProtoICMP || p.Proto == capture.ProtoICMPv6) {
		src, dst, sport, dport, proto = &p.QSrc, &p.QDst, p.QSrcPort, p.QDstPort, p.QProto
	}
	if !srcFirst(src, dst, sport, dport) {
		src, dst, sport, dport = dst, src, dport, sport
	}
	w := uint64(sport)<<40 | uint64(dport)<<24 | uint64(proto)
	x := mix(binary.BigEndian.Uint64(src[:8])^flowHashSeed^hk0, binary.BigEndian.Uint64(dst[:8])^hk1)
	y := mix(binary.BigEndian.Uint64(src[8:])^hk2, binary.BigEndian.Uint64(dst[8:])^flowHashSeed^hk3)
	return mix(mix(x^w^hk4, y^hk5)^hk5, hk0)
}

// seedFrom returns the hash seed a table without one takes from packet p,
// and whether p is a packet it takes one from: the first packet of its
// first flow, a TCP or UDP packet that is not a later fragment. Whoever
// hashes flows for the table ahead of it (a Loader, on the reading
// goroutine) must take the seed from the same packet.
func seedFrom(p *capture.Packet) (uint64, bool) {
	if p.IPVersion == 0 || p.Fragment || p.Proto != capture.ProtoTCP && p.Proto != capture.ProtoUDP {
		return 0, false
	}
	return packetSeed(p), true
}

// packetSeed derives a table's hash seed from its first flow's packet:
// unknown in advance (its time to the nanosecond) to whoever crafts
// traffic against a live sensor, the same for every replay of one capture.
// It is never 0.
func packetSeed(p *capture.Packet) uint64 {
	return mix(uint64(p.TS)^hk3, binary.BigEndian.Uint64(p.Src[8:])^hk2) | 1
}
