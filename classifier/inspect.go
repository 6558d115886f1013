package classifier

import (
	"encoding/binary"
	"math/bits"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/dissect"
	"github.com/tpwatch/tpwatch/policy"
)

// Payload inspection reads a few payload bytes of the flows that need it,
// once per flow direction, never per packet:
//
//   - every payload of TCP port 135 (the RPC endpoint mapper and DCOM
//     activation, which announce ports) and UDP port 1434 (SQL Server
//     Browser, which announces an instance's port): small exchanges, read
//     whole by the dissect learners;
//   - the first payload of each direction (and the second, when the first
//     is shorter than settleLen) on a port a rule lists on its own and
//     whose protocol is known (dissect.ExpectedApps): enough to name the
//     application protocol and tell a port that carries another one.
//     Ports a rule covers only by a range (the dynamic RPC range, which
//     every Windows client's own ports fall in) are not inspected.
//
// The reading goroutine decides which packets are read: a small
// direct-mapped table of flow directions there keeps the count per
// direction, and a collision only makes it read a payload again. It names
// the protocol of a first payload itself (Loader.identify) when the batch
// crosses to the table's goroutine, which then takes the 16-bit answer
// (identWord); the learners' payloads, and every payload of a batch that
// stays on one goroutine, travel whole (at most maxCarry bytes each) and
// the table reads them (Table.inspect). A packet the table's clock holds
// keeps its own payload or answer until it is followed (clock.go).

// InspectPorts are the server ports whose first payloads name the
// application protocol. It is read-only once made and shared by the
// loaders of every table.
type InspectPorts struct {
	first [2]portBits // by transport (0 TCP, 1 UDP)
}

type portBits [1 << 16 / 64]uint64

func (b *portBits) set(p uint16)      { b[p>>6] |= 1 << (p & 63) }
func (b *portBits) has(p uint16) bool { return b[p>>6]&(1<<(p&63)) != 0 }

// NewInspectPorts returns the ports of rules that a rule lists on its own
// and whose protocol dissect knows.
func NewInspectPorts(rules []policy.Rule) *InspectPorts {
	ins := &InspectPorts{}
	for i := range rules {
		r := &rules[i]
		ti := transportSlot(uint8(r.Transport))
		if ti < 0 {
			continue
		}
		for _, pr := range r.Ports {
			if pr.Low != pr.High {
				continue
			}
			if e, ok := dissect.ExpectedApps(r.ID, pr.Low); ok && e.Apps != 0 {
				ins.first[ti].set(pr.Low)
			}
		}
	}
	return ins
}

func transportSlot(proto uint8) int {
	switch proto {
	case capture.ProtoTCP:
		return 0
	case capture.ProtoUDP:
		return 1
	}
	return -1
}

// Ports announced on, read whole.
const (
	portEPM  = 135  // TCP: the RPC endpoint mapper, DCOM activation
	portSSRP = 1434 // UDP: SQL Server Browser
)

// readsAll reports a packet of a learner's port: every payload is read.
func readsAll(proto uint8, sport, dport uint16) bool {
	if proto == capture.ProtoTCP {
		return sport == portEPM || dport == portEPM
	}
	return proto == capture.ProtoUDP && (sport == portSSRP || dport == portSSRP)
}

// Carrying bounds.
const (
	// maxCarry is the most payload bytes a packet carries: a learner
	// assembles PDUs up to dissect's 2 KB; Identify needs far less.
	maxCarry = 2048
	// carryArena is the payload room of one batch: a batch is full when
	// less than maxCarry of it is left (Loader.Full), so it holds at
	// least 31 payloads of the largest size.
	carryArena = 64 << 10
	// firstPayloads is how many payloads of each direction the reading
	// side carries for identification: a first one too short for a
	// signature (a keepalive byte) gets a second chance. One of
	// settleLen bytes or more holds the start of any signature
	// (dissect.Identify reads a few dozen bytes, a TLS hello's first
	// record): it is the direction's only one. On the bench capture,
	// whose every flow is on an inspected port, carrying two per
	// direction whatever their size cost a third more of the table's
	// time than one.
	firstPayloads = 2
	settleLen     = 64
	// seenBits sizes the reading side's table of flow directions: 2^16
	// slots of 16 bits (a 14-bit tag and a 2-bit count), 128 KiB, small
	// enough to stay in the core's L2 cache beside the batch. Every packet
	// of an inspected port looks a slot up, so a table of 64-bit slots
	// (512 KiB) made that lookup a cache miss and replay 70% slower on the
	// bench capture; a 14-bit tag lets one direction in 16,384 that shares
	// a slot pass for another, which only skips its identification.
	seenBits = 16
)

// firstPort reports whether a packet of these ports is on a port whose
// first payloads name the protocol.
func (l *Loader) firstPort(proto uint8, sport, dport uint16) bool {
	ti := transportSlot(proto)
	return ti >= 0 && (l.inspect.first[ti].has(sport) || l.inspect.first[ti].has(dport))
}

// carryFirst reports whether a payload of payloadLen bytes is one of the
// first of its flow direction, h (dirHash), and counts it.
func (l *Loader) carryFirst(h uint64, payloadLen uint32) bool {
	tag := uint16(h) &^ 3
	slot := &l.seen[h>>(64-seenBits)]
	count := uint16(0)
	if *slot&^3 == tag {
		count = *slot & 3
		if count >= firstPayloads {
			return false
		}
	}
	count++
	if payloadLen >= settleLen {
		count = firstPayloads
	}
	*slot = tag | count
	return true
}

// dirHash is the hash of a flow direction: the flow's hash (the slim
// form's, hashKey), turned for the packets B sends so that the two
// directions take different slots and tags.
func dirHash(flowHash uint64, srcIsA bool) uint64 {
	if srcIsA {
		return flowHash
	}
	return bits.RotateLeft64(flowHash, 32)
}

// wholeDirHash is dirHash for a packet without a slim form: its flow
// hashed as the slim form would be (an IPv4 flow the same on both
// paths), an IPv6 address folded into a word first.
func (l *Loader) wholeDirHash(p *capture.Packet) uint64 {
	a, b, portA, portB, srcIsA := canonical(addrWord(&p.Src), addrWord(&p.Dst), p.SrcPort, p.DstPort)
	return dirHash(hashKey(a, b, portA, portB, p.Proto, l.seed), srcIsA)
}

// mix64 is a 64-bit finaliser (splitmix64's).
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// addrWord folds an address into a word for wholeDirHash: an IPv4
// (mapped) address is its key word (word4), as in the slim form.
func addrWord(a *[16]byte) uint64 {
	if w, ok := mappedWord(a); ok {
		return w
	}
	return mix64(binary.BigEndian.Uint64(a[:8])) ^ binary.BigEndian.Uint64(a[8:])
}

// wantsPayload reports whether the payload of decoded packet p is read:
// every payload of a learner's port (learner set: its packet travels
// whole), or a first payload of its direction. s is p's slim form, whose
// flow hash it reuses, or nil.
func (l *Loader) wantsPayload(p *capture.Packet, s *slim) (want, learner bool) {
	if l.inspect == nil || p.PayloadOff == 0 || p.Fragment || p.Proto != capture.ProtoTCP && p.Proto != capture.ProtoUDP {
		return false, false
	}
	if readsAll(p.Proto, p.SrcPort, p.DstPort) {
		return true, true
	}
	if !l.firstPort(p.Proto, p.SrcPort, p.DstPort) {
		return false, false
	}
	h := uint64(0)
	if s != nil {
		h = dirHash(s.Hash, s.SrcIsA)
	} else {
		h = l.wholeDirHash(p)
	}
	return l.carryFirst(h, p.PayloadLen), false
}

// carry copies the payload of the packet just decoded from data into the
// batch, for its k-th whole packet.
func (l *Loader) carry(k int, p *capture.Packet, data []byte) {
	b := l.b
	off := int(p.PayloadOff)
	if off >= len(data) {
		return
	}
	n := min(len(data)-off, int(p.PayloadLen), maxCarry)
	start := len(b.arena)
	b.arena = append(b.arena, data[off:off+n]...)
	b.pay[k] = payRef{off: uint32(start), n: uint32(n)}
}

// identify names the protocol of payload, the captured bytes of a first
// payload of payloadLen, on the reading side: the bytes are in this core's
// cache now, and only the 16-bit answer crosses to the table's core with
// the slim packet (copying the payload over cost the table a cache miss
// per payload, and a quarter of its time on the bench capture).
func (l *Loader) identify(proto uint8, payload []byte, payloadLen uint32) identWord {
	// The bytes a whole packet would carry (carry), so that both paths
	// read the same: a hello past maxCarry names TLS, not its ALPN.
	payload = payload[:min(len(payload), maxCarry)]
	dissect.Identify(dissect.Transport(proto), payload, int(payloadLen), &l.id)
	return packIdent(&l.id)
}

// identWord is an Identification as a slim packet carries it: bit 15 set
// (0 is no identification), NeedMore in bit 13, the app in bits 8-12, the
// ALPN set in bits 0-7.
type identWord uint16

const (
	identSet      = 1 << 15
	identNeedMore = 1 << 13
	identAppShift = 8
	identAppMask  = 0x1f
)

func packIdent(id *dissect.Identification) identWord {
	w := identWord(identSet) | identWord(id.App&identAppMask)<<identAppShift | identWord(id.TLS.ALPN)
	if id.NeedMore {
		w |= identNeedMore
	}
	return w
}

func (w identWord) unpack() (app dissect.App, alpn dissect.ALPNSet, needMore bool) {
	return dissect.App(w>>identAppShift) & identAppMask, dissect.ALPNSet(w), w&identNeedMore != 0
}

// payRef is where a whole packet's carried payload is in its batch's
// arena (n 0: none).
type payRef struct{ off, n uint32 }
