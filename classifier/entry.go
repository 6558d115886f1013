package classifier

import (
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/policy"
)

// entry is one live flow. It holds no pointer, so the garbage collector
// never scans the table, and its fields are ordered so that it packs into
// 104 bytes without padding holes. Packet counters are 32 bits and stop at
// their maximum (4 G packets a direction); byte counters are 64 bits.
type entry struct {
	a0, a1, b0, b1 uint64 // the key (see flowKey), inlined to use its padding
	portA, portB   uint16
	proto          uint8

	flags   uint8
	verdict Verdict
	reason  Reason

	first, last       int64
	bytesOut, bytesIn uint64
	pktsOut, pktsIn   uint32
	rule              int32

	clientRoles, serverRoles policy.RoleSet
	icmpType, icmpCode       uint8

	// seen has a bit per history letter (letter + 6 for the server);
	// history lists their codes (bit number + 1), 4 bits each, in order of
	// first occurrence.
	seen    uint16
	history uint64
}

// entry flags.
const (
	flagClientIsA = 1 << iota // the client is endpoint A of the key
	// flagAttempt: the flow opened with an attempt that has a deadline (a
	// client SYN, or any UDP packet).
	flagAttempt
	// flagRuleAllowed: an enabled rule admits the flow; its verdict waits
	// for its behaviour.
	flagRuleAllowed
	flagReplyExpected // the (UDP) rule expects a reply
)

func (e *entry) is(k *flowKey) bool {
	return e.a0 == k.a0 && e.a1 == k.a1 && e.b0 == k.b0 && e.b1 == k.b1 &&
		e.portA == k.portA && e.portB == k.portB && e.proto == k.proto
}

func (e *entry) key() flowKey {
	return flowKey{e.a0, e.a1, e.b0, e.b1, e.portA, e.portB, e.proto}
}

func (e *entry) has(f uint8) bool { return e.flags&f != 0 }

// History letters, as bit numbers of entry.seen for the client; the
// server's are these plus serverLetters.
const (
	letterSyn    = iota // S: a SYN without ACK
	letterSynAck        // H: a SYN with ACK
	letterAck           // A: a pure ACK
	letterData          // D: payload
	letterFin           // F
	letterRst           // R
	serverLetters
)

const historyLetters = "SHADFRshadfr"

func (e *entry) saw(letter int, client bool) bool {
	if !client {
		letter += serverLetters
	}
	return e.seen&(1<<letter) != 0
}

// mark adds a history letter the first time the direction shows it.
func (e *entry) mark(letter int, client bool) {
	if !client {
		letter += serverLetters
	}
	bit := uint16(1) << letter
	if e.seen&bit != 0 {
		return
	}
	pos := bits.OnesCount16(e.seen)
	e.seen |= bit
	e.history |= uint64(letter+1) << (4 * pos)
}

// count adds the packet to the counters and the history of its direction.
func (e *entry) count(p *capture.Packet, fromClient bool) {
	if p.TS > e.last {
		e.last = p.TS
	}
	if fromClient {
		if e.pktsOut != math.MaxUint32 {
			e.pktsOut++
		}
		e.bytesOut += uint64(p.WireLen)
	} else {
		if e.pktsIn != math.MaxUint32 {
			e.pktsIn++
		}
		e.bytesIn += uint64(p.WireLen)
	}
	if e.proto != capture.ProtoTCP {
		if p.PayloadLen > 0 {
			e.mark(letterData, fromClient)
		}
		return
	}
	f := p.TCPFlags
	switch {
	case f&capture.TCPSyn != 0 && f&capture.TCPAck != 0:
		e.mark(letterSynAck, fromClient)
	case f&capture.TCPSyn != 0:
		e.mark(letterSyn, fromClient)
	case f&(capture.TCPFin|capture.TCPRst) == 0 && f&capture.TCPAck != 0 && p.PayloadLen == 0:
		e.mark(letterAck, fromClient)
	}
	if p.PayloadLen > 0 {
		e.mark(letterData, fromClient)
	}
	if f&capture.TCPFin != 0 {
		e.mark(letterFin, fromClient)
	}
	if f&capture.TCPRst != 0 {
		e.mark(letterRst, fromClient)
	}
}

// closed reports a TCP flow that both sides finished or one side reset.
func (e *entry) closed() bool {
	const (
		fins = 1<<letterFin | 1<<(letterFin+serverLetters)
		rsts = 1<<letterRst | 1<<(letterRst+serverLetters)
	)
	return e.proto == capture.ProtoTCP && (e.seen&fins == fins || e.seen&rsts != 0)
}

// connState is Zeek's conn_state, computed from what each side sent. An
// endpoint is "active" in Zeek's sense when it took part in a handshake: the
// client sent a SYN, the server a SYN-ACK.
func (e *entry) connState() ConnState {
	if e.proto != capture.ProtoTCP {
		switch {
		case e.pktsOut > 0 && e.pktsIn > 0:
			return SF
		case e.pktsOut > 0:
			return S0
		case e.pktsIn > 0:
			return SHR
		}
		return OTH
	}
	clientSyn, serverSynAck := e.saw(letterSyn, true), e.saw(letterSynAck, false)
	switch {
	case e.saw(letterRst, false):
		if clientSyn && !serverSynAck {
			return REJ
		}
		if !clientSyn {
			return RSTRH
		}
		return RSTR
	case e.saw(letterRst, true):
		if serverSynAck {
			return RSTO
		}
		// Zeek's RSTOS0 wants the history to go from S to R with no
		// handshake ACK or FIN from the client in between.
		if clientSyn && !e.saw(letterAck, true) && !e.saw(letterFin, true) && !e.saw(letterSynAck, true) {
			return RSTOS0
		}
		return OTH
	case e.saw(letterFin, true) && e.saw(letterFin, false):
		return SF
	case e.saw(letterFin, true):
		if serverSynAck {
			return S2
		}
		return SH
	case e.saw(letterFin, false):
		if clientSyn {
			return S3
		}
		return SHR
	case clientSyn && e.pktsIn == 0:
		return S0
	case clientSyn && serverSynAck:
		return S1
	}
	return OTH
}

// record fills r with the public view of the flow.
func (e *entry) record(r *FlowRecord) {
	var a, b [16]byte
	binary.BigEndian.PutUint64(a[:8], e.a0)
	binary.BigEndian.PutUint64(a[8:], e.a1)
	binary.BigEndian.PutUint64(b[:8], e.b0)
	binary.BigEndian.PutUint64(b[8:], e.b1)
	*r = FlowRecord{
		First:       e.first,
		Last:        e.last,
		Transport:   policy.Transport(e.proto),
		Client:      a,
		Server:      b,
		ClientPort:  e.portA,
		ServerPort:  e.portB,
		ClientRoles: e.clientRoles,
		ServerRoles: e.serverRoles,
		Rule:        e.rule,
		Verdict:     e.verdict,
		Reason:      e.reason,
		ConnState:   e.connState(),
		PacketsOut:  uint64(e.pktsOut),
		PacketsIn:   uint64(e.pktsIn),
		BytesOut:    e.bytesOut,
		BytesIn:     e.bytesIn,
		ICMP:        e.reason == ICMPUnreachable,
		ICMPType:    e.icmpType,
		ICMPCode:    e.icmpCode,
	}
	if !e.has(flagClientIsA) {
		r.Client, r.Server = b, a
		r.ClientPort, r.ServerPort = e.portB, e.portA
	}
	n := 0
	for h := e.history; h != 0; h >>= 4 {
		r.History[n] = historyLetters[h&0xf-1]
		n++
	}
	r.HistoryLen = uint8(n)
}
