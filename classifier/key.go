package classifier

import (
	"encoding/binary"
	"math/bits"

	"github.com/tpwatch/tpwatch/capture"
)

// flowKey identifies a flow whatever the direction of its packets: the two
// endpoints in canonical order, the lower (address, port) first. Addresses
// are held as big-endian words so that the order is the addresses' natural
// order and comparing or hashing a key is a handful of word operations.
type flowKey struct {
	a0, a1, b0, b1 uint64 // endpoint A's then endpoint B's address
	portA, portB   uint16
	proto          uint8
}

// makeKey returns the canonical key of the packet src:sport → dst:dport and
// whether the sender is endpoint A.
func makeKey(src, dst *[16]byte, sport, dport uint16, proto uint8) (k flowKey, srcIsA bool) {
	s0, s1 := binary.BigEndian.Uint64(src[:8]), binary.BigEndian.Uint64(src[8:])
	d0, d1 := binary.BigEndian.Uint64(dst[:8]), binary.BigEndian.Uint64(dst[8:])
	srcIsA = s0 < d0 || s0 == d0 && (s1 < d1 || s1 == d1 && sport <= dport)
	if srcIsA {
		return flowKey{s0, s1, d0, d1, sport, dport, proto}, true
	}
	return flowKey{d0, d1, s0, s1, dport, sport, proto}, false
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

// hash is the table's hash of a key under a seed: three multiplications,
// the first two independent. It is symmetric because the key is canonical.
func (k *flowKey) hash(seed uint64) uint64 {
	x := mix(k.a0^seed^hk0, k.b0^hk1)
	y := mix(k.a1^hk2, k.b1^seed^hk3)
	w := uint64(k.portA)<<40 | uint64(k.portB)<<24 | uint64(k.proto)
	return mix(x^w^hk4, y^hk5)
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
	var k flowKey
	if p.Quoted && (p.Proto == capture.ProtoICMP || p.Proto == capture.ProtoICMPv6) {
		k, _ = makeKey(&p.QSrc, &p.QDst, p.QSrcPort, p.QDstPort, p.QProto)
	} else {
		k, _ = makeKey(&p.Src, &p.Dst, p.SrcPort, p.DstPort, p.Proto)
	}
	h := k.hash(flowHashSeed)
	return mix(h^hk5, hk0)
}

// packetSeed derives a table's hash seed from the first packet it sees:
// unknown in advance to whoever crafts traffic against a live sensor, the
// same for every replay of one capture.
func packetSeed(p *capture.Packet) uint64 {
	return mix(uint64(p.TS)^hk3, binary.BigEndian.Uint64(p.Src[8:])^hk2) | 1
}

func (k *flowKey) addrA() (a [16]byte) {
	binary.BigEndian.PutUint64(a[:8], k.a0)
	binary.BigEndian.PutUint64(a[8:], k.a1)
	return a
}

func (k *flowKey) addrB() (b [16]byte) {
	binary.BigEndian.PutUint64(b[:8], k.b0)
	binary.BigEndian.PutUint64(b[8:], k.b1)
	return b
}
