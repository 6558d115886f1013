package classifier

import (
	"math"
	"math/bits"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/dissect"
	"github.com/tpwatch/tpwatch/policy"
)

// A live flow is held in two parallel arrays: its entry, what a packet
// of the flow reads and writes, in exactly one cache line (64 bytes, and
// the arrays start on a page), and its entryMeta, what only creating,
// deciding and ending it needs, in 24 bytes beside. The look-ahead of a
// batch, and the packet after it, then wait for one line a packet instead
// of the two that an 80-byte entry spans wherever it starts (the largest
// single cost of the table's goroutine, docs/performance.md). Neither holds
// a pointer, so the garbage collector never scans the table.
//
// Packet counters are 32 bits and stop at their maximum (4 G packets a
// direction); byte counters are 64 bits.
type entry struct {
	a, b              uint64 // the key's address words (see flowKey)
	last              int64
	bytesOut, bytesIn uint64
	// history holds, in bits 0-47, the codes of the history letters
	// (letter number + 1, 4 bits each) in order of first occurrence, in
	// bits 48-59 a bit per letter seen (letter + 6 for the server), and in
	// bits 60 and 61 whether the client and the server sent a segment with
	// ACK and without RST (ackedShift).
	history         uint64
	pktsOut, pktsIn uint32

	portA, portB uint16
	proto        uint8
	flags        uint8
	verdict      Verdict
	reason       Reason
}

// entryMeta is the rest of a live flow (see entry). What few flows need
// (an ICMP error's type, code and sender) is kept in a map beside the
// table (icmpInfo), so that this stays 24 bytes (TestEntrySize).
type entryMeta struct {
	first int64
	// announcedAgo is how long (ms) before the flow's first packet its
	// server announced its port (via epm, dcom or ssrp).
	announcedAgo             uint32
	clientRoles, serverRoles roles16
	rule                     ruleRef
	outcome                  Outcome
	// app is the application protocol its first payloads named (AppNone:
	// none read; AppUnknown: read, not named), alpn the ALPN of a TLS
	// hello.
	app  dissect.App
	alpn dissect.ALPNSet
	// via is what explains its server port on a rule whose ports are
	// announced, iface the RPC interface an endpoint mapper named.
	via   Via
	iface dissect.Interface
	_     uint8
}

// agoMillis is at's distance before now in milliseconds, bounded.
func agoMillis(now, at int64) uint32 {
	return uint32(min(max(now-at, 0)/1e6, math.MaxUint32))
}

// icmpInfo is what an ICMP error that decided a flow said, and who sent it.
type icmpInfo struct {
	typ, code uint8
	src       [16]byte
}

// roles16 is a policy.RoleSet in 16 bits: role numbers start at 1, so bit
// 0 of a RoleSet is always clear and bits 1-16 are all there is
// (TestRoleSetFitsEntry).
type roles16 uint16

func packRoles(s policy.RoleSet) roles16 { return roles16(s >> 1) }
func (r roles16) set() policy.RoleSet    { return policy.RoleSet(r) << 1 }
func (m *entryMeta) roles() (client, server policy.RoleSet) {
	return m.clientRoles.set(), m.serverRoles.set()
}

// ruleRef is a rule index plus one, 0 for none: the policy has at most
// 65535 rules.
type ruleRef uint16

func refRule(rule int32) ruleRef { return ruleRef(rule + 1) }
func (r ruleRef) index() int32   { return int32(r) - 1 }

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
	// flagAwaitOutcome: the flow is unexpected (its reason and rule are
	// set) and waits to know its outcome to be decided.
	flagAwaitOutcome
	// flagLearning: with an inferred inventory, the flow may teach its
	// hosts' roles; it is matched when it shows what it is (it worked, or
	// it failed).
	flagLearning
	// flagICMP: the table's icmp map holds the ICMP error that decided it.
	flagICMP
	// flagTaught: the inventory has had the flow's evidence (a learning
	// flow, when it was decided), and must not count it again at its end.
	flagTaught
)

// flagsJudged are the flags of a flow whose own behaviour decides it.
const flagsJudged = flagRuleAllowed | flagAwaitOutcome | flagLearning

func (e *entry) is(k *flowKey) bool {
	return e.a == k.a && e.b == k.b && e.portA == k.portA && e.portB == k.portB && e.proto == k.proto
}

func (e *entry) key() flowKey {
	return flowKey{e.a, e.b, e.portA, e.portB, e.proto}
}

func (e *entry) has(f uint8) bool { return e.flags&f != 0 }

// History letters, as numbers of the letters-seen bits of entry.history
// for the client; the server's are these plus serverLetters.
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

// seenShift is where the letters-seen bits start in entry.history;
// ackedShift where the client's and the server's acknowledged bits are.
const (
	seenShift   = 48
	seenMask    = (1<<(2*serverLetters) - 1) << seenShift
	ackedShift  = 60
	clientAcked = 1 << ackedShift
	serverAcked = 1 << (ackedShift + 1)
)

func (e *entry) saw(letter int, client bool) bool {
	if !client {
		letter += serverLetters
	}
	return e.history&(1<<(seenShift+letter)) != 0
}

// mark adds a history letter the first time the direction shows it.
func (e *entry) mark(letter int, client bool) {
	if !client {
		letter += serverLetters
	}
	bit := uint64(1) << (seenShift + letter)
	if e.history&bit != 0 {
		return
	}
	pos := bits.OnesCount64(e.history & seenMask)
	e.history |= bit | uint64(letter+1)<<(4*pos)
}

// count adds the packet to the counters and the history of its direction.
func (e *entry) count(p *seg, fromClient bool) {
	if p.ts > e.last {
		e.last = p.ts
	}
	if fromClient {
		if e.pktsOut != math.MaxUint32 {
			e.pktsOut++
		}
		e.bytesOut += uint64(p.wireLen)
	} else {
		if e.pktsIn != math.MaxUint32 {
			e.pktsIn++
		}
		e.bytesIn += uint64(p.wireLen)
	}
	if e.proto != capture.ProtoTCP {
		if p.payloadLen > 0 {
			e.mark(letterData, fromClient)
		}
		return
	}
	f := p.flags
	if f&(capture.TCPAck|capture.TCPRst) == capture.TCPAck {
		if fromClient {
			e.history |= clientAcked
		} else {
			e.history |= serverAcked
		}
	}
	switch {
	case f&capture.TCPSyn != 0 && f&capture.TCPAck != 0:
		e.mark(letterSynAck, fromClient)
	case f&capture.TCPSyn != 0:
		e.mark(letterSyn, fromClient)
	case f&(capture.TCPFin|capture.TCPRst) == 0 && f&capture.TCPAck != 0 && p.payloadLen == 0:
		e.mark(letterAck, fromClient)
	}
	if p.payloadLen > 0 {
		e.mark(letterData, fromClient)
	}
	if f&capture.TCPFin != 0 {
		e.mark(letterFin, fromClient)
	}
	if f&capture.TCPRst != 0 {
		e.mark(letterRst, fromClient)
	}
}

// evidence is what the flow has shown of its ends so far: the server
// answered (a SYN-ACK, a segment with ACK, data or a FIN, a datagram), and
// the client went on after that (the ACK of the handshake, data, a FIN; for
// UDP, the reply to its request is enough).
func (e *entry) evidence() policy.Evidence {
	var ev policy.Evidence
	if e.proto != capture.ProtoTCP {
		if e.pktsIn > 0 {
			ev = policy.ServerAnswered
			if e.pktsOut > 0 {
				ev |= policy.ClientCompleted
			}
		}
		return ev
	}
	if e.history&serverAcked != 0 {
		ev |= policy.ServerAnswered
	}
	// A client segment with ACK proves it had the server's SYN-ACK (RFC
	// 9293, 3.10.7), even where the sensor missed the answer; a FIN scan's
	// bare FIN has no ACK.
	if e.history&clientAcked != 0 {
		ev |= policy.ServerAnswered | policy.ClientCompleted
	}
	// So does a server's pure ACK: a listener sends one only on an
	// established connection (one in SYN-RECEIVED repeats its SYN-ACK, and
	// a segment of no connection gets a RST), as a capture that starts
	// mid-session shows.
	if e.saw(letterAck, false) {
		ev |= policy.ServerAnswered | policy.ClientCompleted
	}
	return ev
}

// closed reports a TCP flow that both sides finished or one side reset.
func (e *entry) closed() bool {
	const (
		fins = 1<<(seenShift+letterFin) | 1<<(seenShift+letterFin+serverLetters)
		rsts = 1<<(seenShift+letterRst) | 1<<(seenShift+letterRst+serverLetters)
	)
	return e.proto == capture.ProtoTCP && (e.history&fins == fins || e.history&rsts != 0)
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

// record fills r with the public view of flow i.
func (t *Table) record(i uint32, r *FlowRecord) {
	e, m := &t.entries[i], &t.meta[i]
	a, b := t.wide.addr(e.a), t.wide.addr(e.b)
	clientRoles, serverRoles := m.roles()
	*r = FlowRecord{
		First:       m.first,
		Last:        e.last,
		Transport:   policy.Transport(e.proto),
		Client:      a,
		Server:      b,
		ClientPort:  e.portA,
		ServerPort:  e.portB,
		ClientRoles: clientRoles,
		ServerRoles: serverRoles,
		Rule:        m.rule.index(),
		Verdict:     e.verdict,
		Reason:      e.reason,
		Outcome:     m.outcome,
		ConnState:   e.connState(),
		PacketsOut:  uint64(e.pktsOut),
		PacketsIn:   uint64(e.pktsIn),
		BytesOut:    e.bytesOut,
		BytesIn:     e.bytesIn,
	}
	if e.has(flagICMP) {
		info := t.icmp[e.key()]
		r.ICMP, r.ICMPType, r.ICMPCode, r.ICMPSrc = true, info.typ, info.code, info.src
	}
	if !e.has(flagClientIsA) {
		r.Client, r.Server = b, a
		r.ClientPort, r.ServerPort = e.portB, e.portA
	}
	if t.opts.Vantage != nil {
		r.Vantage = t.opts.Vantage.Of(r.Client, r.Server)
	}
	r.App, r.ALPN, r.Via, r.Interface = m.app, m.alpn, m.via, m.iface
	if m.via > ViaRange {
		r.AnnouncedAt = m.first - int64(m.announcedAgo)*1e6
		if m.via == ViaSSRP {
			if ann, ok := t.insp.ann.lookup(r.Server, e.proto, r.ServerPort, t.now); ok && ann.Via == ViaSSRP {
				r.Instance, r.InstanceLen = ann.Instance, ann.InstanceLen
			}
		}
	}
	n := 0
	for h := e.history & (1<<seenShift - 1); h != 0; h >>= 4 {
		r.History[n] = historyLetters[h&0xf-1]
		n++
	}
	r.HistoryLen = uint8(n)
}
