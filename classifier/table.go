package classifier

import (
	"time"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/policy"
)

// Table is a flow table and the classifier of its flows. It has one writer:
// every method but Stats must be called from the goroutine that owns it.
type Table struct {
	opts Options
	m    Matcher
	sink Sink
	// alive is sink when it is an AliveSink, else nil.
	alive AliveSink

	entries []entry     // entries[:live] are the live flows
	meta    []entryMeta // meta[i] is the rest of flow i (see entry)
	due     []uint16    // due[i]: flow i needs no settle before it (see due.go)
	dueBase int64       // the unit due times are relative to
	live    int
	index   []slot
	seed    uint64
	seeded  bool                 // seed is set: from the first flow's packet, or by a crossing Batch
	maps    *mapped              // the arrays the system mapped (arena.go)
	wide    wideAddrs            // the IPv6 addresses of live flows' keys
	icmp    map[flowKey]icmpInfo // the ICMP errors of live flows that have flagICMP

	now    int64      // packet clock, Unix ns
	cursor int        // the sweep's next entry
	credit uint64     // the sweep's owed work, in entry-nanoseconds (see sweepFor)
	rec    FlowRecord // handed to the sink, reused
	// evictCursor is where evict looks for a flow that is no session
	// when its sample holds sessions only.
	evictCursor int
	// lateRST is a RST recorded just before the SYN it refuses, to count
	// after the SYN when hasLateRST (see answersSyn).
	lateRST    seg
	hasLateRST bool
	// clocked says the clock has been set, by the first packet or
	// Advance; held is a packet the clock holds when holding (see
	// clockStep).
	clocked, holding bool
	held             capture.Packet

	// batch is the batch being followed, wholes how many of its whole
	// packets have been, and payload the payload carried with the packet
	// being followed (nil: none).
	batch   *Batch
	wholes  int
	payload []byte
	// insp is what payload inspection keeps (inspect_table.go).
	insp inspection

	ahead   lookAhead      // processPackets' look-ups, done ahead of the packets
	scratch capture.Packet // a slim packet made whole to create its flow
	// ident is what the reading side made of the payload of the packet
	// being followed whole (processSlim's off-clock path), as payload is
	// the payload carried with it; the packet the clock holds keeps its
	// own (heldPayload, heldIdent), followed with it when it is released.
	ident          identWord
	heldPayload    []byte
	heldHasPayload bool
	heldIdent      identWord

	counts counters
	pub    published
	unpubl int // packets since the last publication
}

// NewTable returns an empty table for opts.MaxFlows flows (see
// Options.InitialFlows), classifying with m and reporting to sink. A nil m ignores every flow; a
// nil sink discards the records.
func NewTable(opts Options, m Matcher, sink Sink) *Table {
	opts = opts.withDefaults()
	if m == nil {
		m = ignoreAll{}
	}
	if sink == nil {
		sink = discard{}
	}
	alive, _ := sink.(AliveSink)
	t := &Table{
		opts:  opts,
		m:     m,
		sink:  sink,
		alive: alive,
		maps:  &mapped{},
	}
	t.allocEntries()
	t.setUpInspection()
	t.index, t.maps.index = newIndex(indexSize(opts.InitialFlows))
	t.unmapWhenGarbage()
	t.publish()
	return t
}

// SetMatcher makes new flows use m (a reloaded configuration). Live flows
// keep their rule and reply expectation; their roles are looked up with m
// when they are decided.
func (t *Table) SetMatcher(m Matcher) {
	if m == nil {
		m = ignoreAll{}
	}
	t.m = m
}

// Process follows one decoded packet (IPVersion != 0) and moves the packet
// clock to its time. The pipeline hands packets in batches instead
// (ProcessBatch), with the same effect.
func (t *Table) Process(p *capture.Packet) { t.process(p, nil) }

// keyed is a packet's flow key and hash, computed ahead by processPackets
// so that following the packet does not compute them again. It holds only
// for the seed it was hashed with: the table may have none yet.
type keyed struct {
	k      flowKey
	srcIsA bool
	h      uint64
	seed   uint64
	// ref is the entry number + 1 that the look-ahead found for the hash,
	// or 0: a hint, right when that entry still holds the key (the packets
	// before may have moved or removed it).
	ref uint32
}

// process is Process with the flow key computed ahead, or pre nil.
func (t *Table) process(p *capture.Packet, pre *keyed) {
	if t.offClock(p.TS) && t.hold(p) {
		return
	}
	t.processOnClock(p, pre)
}

// processOnClock follows packet p, whose time the clock believes.
func (t *Table) processOnClock(p *capture.Packet, pre *keyed) {
	t.tick(p.TS)
	switch {
	case p.IPVersion == 0:
		t.counts.notFollowed++
	case p.Proto == capture.ProtoTCP || p.Proto == capture.ProtoUDP:
		if p.Fragment {
			t.counts.fragments++
		} else {
			t.processFlow(p, pre)
		}
	case p.Proto == capture.ProtoICMP || p.Proto == capture.ProtoICMPv6:
		if p.Quoted {
			t.processICMPError(p)
		} else {
			t.counts.notFollowed++
		}
	default:
		t.counts.notFollowed++
	}
	t.tock()
}

// tick counts a packet of time ts and moves the clock and the sweep.
func (t *Table) tick(ts int64) {
	t.counts.packets++
	if ts > t.now {
		elapsed := ts - t.now
		t.now = ts
		t.rebaseDue()
		t.sweepFor(elapsed)
	}
	if t.live <= smallTable {
		t.sweep(sweepPerPacket)
	}
}

// tock ends a packet: the counters are published every publishEvery.
func (t *Table) tock() {
	if t.unpubl++; t.unpubl >= publishEvery {
		t.publish()
	}
}

// Advance moves the packet clock to now without a packet (a quiet live
// capture) and lets the sweep pass over the whole table. A packet the
// clock held (see clockStep) is confirmed or not by now, as by a packet.
func (t *Table) Advance(now int64) {
	if t.holding {
		t.release(now)
	}
	if now > t.now || !t.clocked {
		t.now, t.clocked = now, true
		t.rebaseDue()
	}
	t.sweep(t.live)
	t.credit = 0
	t.publish()
}

// Flush ends every live flow at time end (the end of a replay, or a
// shutdown): an attempt whose deadline is at or before end is decided as at
// its deadline, any other undecided flow is pending. An end more than a
// day (endTrust) past the packet clock is not believed: the flows end at
// the clock. Flows are finalised in table order, which the input alone
// determines. The table is then empty and can be used again.
func (t *Table) Flush(end int64) {
	t.releaseAtEnd()
	if end-t.now > endTrust {
		end = t.now
	}
	if end > t.now {
		t.now = end
	}
	for i := range uint32(t.live) {
		t.finish(i, endFlush)
	}
	t.live, t.cursor, t.credit = 0, 0, 0
	clear(t.index)
	clear(t.icmp)
	t.wide.reset()
	t.publish()
}

// seg is what following a flow needs of a packet besides its key.
type seg struct {
	ts                  int64
	wireLen, payloadLen uint32
	flags, proto        uint8
	// seq and payload are set for a packet that carries its payload
	// (inspect.go): its TCP sequence number and the bytes captured.
	seq     uint32
	payload []byte
	// ident is what the reading side made of a first payload it read
	// itself (identWord; 0: nothing), the payload then not carried.
	ident identWord
}

// processFlow follows a TCP or UDP packet, whole.
func (t *Table) processFlow(p *capture.Packet, pre *keyed) {
	var (
		k             flowKey
		srcIsA, known bool
		h             uint64
		sg            seg
	)
	// Field by field: a composite literal is built aside and copied, and
	// the copy's wide loads of its narrow stores stall (see slim.set).
	sg.ts, sg.wireLen, sg.payloadLen, sg.flags, sg.proto = p.TS, p.WireLen, p.PayloadLen, p.TCPFlags, p.Proto
	if t.payload != nil {
		sg.seq, sg.payload = p.Seq, t.payload
	}
	sg.ident = t.ident
	if pre != nil && pre.seed == t.seed {
		k, srcIsA, h, known = pre.k, pre.srcIsA, pre.h, true
	} else {
		k, srcIsA, known = t.wide.keyOf(&p.Src, &p.Dst, p.SrcPort, p.DstPort, p.Proto, false)
		h = k.hash(t.seed)
	}
	i, found := t.find(&k, h, known, pre, &sg, srcIsA)
	var match policy.Match
	if !found {
		i, match, srcIsA = t.createFrom(p, &k, srcIsA, known)
	}
	t.follow(i, &sg, srcIsA, !found, match)
}

// processSlim follows a slim packet, whose key the look-ahead computed.
func (t *Table) processSlim(s *slim, pre *keyed) {
	if t.offClock(s.TS) {
		// Rare: made whole, for the clock to hold or to follow.
		s.packet(&t.scratch)
		t.ident = s.Ident
		if !t.hold(&t.scratch) {
			t.processOnClock(&t.scratch, nil)
		}
		t.ident = 0
		return
	}
	t.tick(s.TS)
	var sg seg
	sg.ts, sg.wireLen, sg.payloadLen, sg.flags, sg.proto = s.TS, s.WireLen, uint32(s.PayloadLen), s.TCPFlags, s.Proto
	sg.ident = s.Ident
	k, srcIsA, h := pre.k, pre.srcIsA, pre.h
	if pre.seed != t.seed {
		h = k.hash(t.seed)
	}
	i, found := t.find(&k, h, true, pre, &sg, srcIsA)
	var match policy.Match
	if !found {
		// Made whole only to create the flow.
		s.packet(&t.scratch)
		i, match, srcIsA = t.createFrom(&t.scratch, &k, srcIsA, true)
	}
	t.follow(i, &sg, srcIsA, !found, match)
	t.tock()
}

// find returns the live entry of the flow with key k and hash h (known:
// k is the flow's whole key; an IPv6 address the pool does not hold makes
// it unknown, and then the flow is not live), after applying what the
// clock says to it: a flow whose time is up, or a closed connection whose
// ports a new SYN reuses, ends here and is not found.
func (t *Table) find(k *flowKey, h uint64, known bool, pre *keyed, sg *seg, srcIsA bool) (i uint32, found bool) {
	switch {
	case pre != nil && pre.ref != 0 && int(pre.ref) <= t.live && t.entries[pre.ref-1].is(k):
		i, found = pre.ref-1, true
	case known:
		i, found = t.lookup(k, h)
	}
	// Settling an entry whose due time is still ahead does nothing (the
	// due time is a lower bound of its next deadline, see due.go): most
	// packets skip it on a 2-byte read.
	if found && int64(t.due[i]) <= t.nowUnit() && !t.settle(i) {
		return 0, false
	}
	if found && sg.proto == capture.ProtoTCP &&
		sg.flags&(capture.TCPSyn|capture.TCPAck) == capture.TCPSyn && t.entries[i].closed() {
		if t.answersSyn(i, sg, srcIsA) {
			// The flow was only the refusal of this SYN, recorded just
			// before it: it is the SYN's flow, never reported on its own.
			t.counts.created--
			t.remove(i)
			return 0, false
		}
		// A new connection on the ports of a closed one.
		t.finish(i, endReused)
		t.remove(i)
		return 0, false
	}
	return i, found
}

// rstReorder is how long before a SYN a RST from its receiver may be
// recorded and still be taken for the refusal of that SYN: captures
// merged from several interfaces or queues, or split by direction, stamp
// packets microseconds, at worst milliseconds, out of their order.
const rstReorder = int64(10 * time.Millisecond)

// answersSyn reports whether closed flow i is nothing but a RST that the
// receiver of SYN sg (sent by endpoint A when srcIsA) sent within
// rstReorder of it: its refusal, recorded first. The RST is then kept in
// t.lateRST, for follow to count once the SYN's flow is made.
func (t *Table) answersSyn(i uint32, sg *seg, srcIsA bool) bool {
	e := &t.entries[i]
	const (
		clientRst = 1 << (seenShift + letterRst)
		serverRst = 1 << (seenShift + letterRst + serverLetters)
	)
	seen := e.history & seenMask
	if e.verdict != VerdictUndecided || e.pktsOut+e.pktsIn != 1 || seen != clientRst && seen != serverRst {
		return false
	}
	rstFromA := (seen == clientRst) == e.has(flagClientIsA)
	if d := sg.ts - e.last; rstFromA == srcIsA || d > rstReorder || d < -rstReorder {
		return false
	}
	r := &t.lateRST
	r.ts, r.wireLen, r.payloadLen, r.flags, r.proto = e.last, uint32(e.bytesOut+e.bytesIn), 0, capture.TCPRst|capture.TCPAck, capture.ProtoTCP
	t.hasLateRST = true
	return true
}

// createFrom creates the flow of packet p, which find did not find; k is
// its key so far (known: whole) and srcIsA says whether the sender is its
// endpoint A. It returns the entry, the policy's match and srcIsA for the
// key the entry has.
func (t *Table) createFrom(p *capture.Packet, k *flowKey, srcIsA, known bool) (uint32, policy.Match, bool) {
	if !t.seeded {
		t.seed, t.seeded = packetSeed(p), true
	}
	key := *k
	if !known || k.a&wideWord != 0 || k.b&wideWord != 0 {
		// Hold the pool addresses for the new entry (numbering any
		// that are new to it), which gives the key its words.
		key, srcIsA, _ = t.wide.keyOf(&p.Src, &p.Dst, p.SrcPort, p.DstPort, p.Proto, true)
	}
	i, match := t.create(p, &key, key.hash(t.seed), srcIsA)
	return i, match, srcIsA
}

// follow counts packet sg of flow i, sent by endpoint A when srcIsA, and
// decides what the packet decides. created says the packet created the
// flow, with match.
func (t *Table) follow(i uint32, sg *seg, srcIsA, created bool, match policy.Match) {
	e := &t.entries[i]
	// Only a FIN or a RST can close the flow.
	closing := sg.flags&(capture.TCPFin|capture.TCPRst) != 0
	wasClosed, wasUndecided := closing && e.closed(), e.verdict == VerdictUndecided
	fromClient := e.has(flagClientIsA) == srcIsA
	e.count(sg, fromClient)
	if created {
		t.setUp(i, match)
	}
	if e.verdict == VerdictUndecided && e.flags&flagsJudged != 0 {
		t.judge(i, sg.flags, fromClient)
	}
	if sg.payload != nil || sg.ident != 0 {
		t.inspect(i, sg, fromClient)
	}
	// A later last packet only moves the flow's deadline later, which
	// keeps due[i] a lower bound; closing it (a shorter idle timeout) or
	// deciding it (no attempt deadline any more) can move it earlier.
	if created || closing && !wasClosed && e.closed() || wasUndecided && e.verdict != VerdictUndecided {
		t.setDue(i, t.nextDue(i))
	}
	if created && t.hasLateRST {
		// The refusal recorded before this SYN (answersSyn) comes after it.
		t.hasLateRST = false
		late := t.lateRST
		t.follow(i, &late, !srcIsA, false, policy.Match{})
	}
}

// processICMPError attributes an ICMP or ICMPv6 destination unreachable to
// the flow of the packet it quotes: an attempt that had not worked yet
// failed on it. Two errors are no such answer: "fragmentation needed"
// (ICMP type 3 code 4) is path-MTU discovery, and the client's own error
// about a datagram of the server (its port unreachable) says nothing of
// whether the server is reachable.
func (t *Table) processICMPError(p *capture.Packet) {
	t.counts.icmpErrors++
	if p.QProto != capture.ProtoTCP && p.QProto != capture.ProtoUDP {
		return
	}
	if p.Proto == capture.ProtoICMP && p.ICMPType == 3 && p.ICMPCode == 4 {
		return
	}
	k, srcIsA, known := t.wide.keyOf(&p.QSrc, &p.QDst, p.QSrcPort, p.QDstPort, p.QProto, false)
	if !known {
		return
	}
	i, found := t.lookup(&k, k.hash(t.seed))
	if !found || !t.settle(i) {
		return
	}
	t.counts.icmpMatched++
	e := &t.entries[i]
	if e.verdict != VerdictUndecided || e.flags&flagsJudged == 0 || e.has(flagClientIsA) != srcIsA {
		return
	}
	e.flags |= flagICMP
	if t.icmp == nil {
		t.icmp = map[flowKey]icmpInfo{}
	}
	t.icmp[k] = icmpInfo{typ: p.ICMPType, code: p.ICMPCode, src: p.Src}
	t.conclude(i, OutcomeICMPUnreachable)
	t.setDue(i, t.nextDue(i))
}

// create adds the flow of packet p, which is not in the table, and returns
// its entry number and the policy's match. The flow is oriented, then
// matched with the roles its ends hold; with an inferred inventory, a flow
// no enabled rule admits that may teach a role is marked flagLearning.
func (t *Table) create(p *capture.Packet, k *flowKey, h uint64, srcIsA bool) (uint32, policy.Match) {
	if t.live == len(t.entries) {
		t.makeRoom(h)
	}
	if t.indexFull() {
		t.growIndex()
	}
	tr := policy.Transport(p.Proto)
	srcIsClient := t.srcIsClient(p, tr)
	f := policy.Flow{Transport: tr, Client: p.Src, Server: p.Dst, Port: p.DstPort}
	if !srcIsClient {
		f.Client, f.Server, f.Port = p.Dst, p.Src, p.SrcPort
	}
	f.ClientRoles, f.ServerRoles = t.m.Roles(f.Client), t.m.Roles(f.Server)
	match, via, ann := t.announced(&f, t.m.Match(f))

	var flags uint8
	if srcIsClient == srcIsA {
		flags |= flagClientIsA
	}
	syn := p.TCPFlags&(capture.TCPSyn|capture.TCPAck) == capture.TCPSyn
	if tr == policy.UDP || syn {
		flags |= flagAttempt
	}
	if match.Kind != policy.MatchAllowed && t.m.Learns(tr, f.Port) {
		flags |= flagLearning
	}
	i := uint32(t.live)
	t.live++
	t.entries[i] = entry{
		a: k.a, b: k.b,
		portA: k.portA, portB: k.portB, proto: k.proto,
		flags: flags,
		// The packet clock, not the packet's own time: a packet older than
		// the clock (files given out of order, a capture whose time steps
		// back) would otherwise create an attempt already past its
		// deadline. In order, the two are the same.
		last: t.now,
	}
	t.meta[i] = entryMeta{
		first:       t.now,
		rule:        refRule(-1),
		clientRoles: packRoles(f.ClientRoles), serverRoles: packRoles(f.ServerRoles),
		via:   via,
		iface: ann.Interface,
	}
	if via > ViaRange {
		t.meta[i].announcedAgo = agoMillis(t.now, ann.At)
	}
	place(t.index, slot{tag: uint32(h), ref: i + 1})
	t.counts.created++
	return i, match
}

// srcIsClient orients a new flow by its first packet: the sender of a SYN
// is the client, of a SYN-ACK the server; otherwise the end whose port
// looks most like a server port is the server (a port a rule names, then a
// well-known port, then one a wide range covers: policy.ServerPortScore);
// between two equally likely ones, the end a rule would admit the other
// as a client of (a CEE server's RPC port and an agent's: the agent is the
// CEE server's server); else the lower port, else the first packet's
// receiver.
func (t *Table) srcIsClient(p *capture.Packet, tr policy.Transport) bool {
	if tr == policy.TCP && p.TCPFlags&capture.TCPSyn != 0 {
		return p.TCPFlags&capture.TCPAck == 0
	}
	if srcIsClient, ok := t.announcedServer(p); ok {
		return srcIsClient
	}
	srcRoles, dstRoles := t.m.Roles(p.Src), t.m.Roles(p.Dst)
	srcScore := t.m.ServerPortScore(tr, p.SrcPort, srcRoles)
	dstScore := t.m.ServerPortScore(tr, p.DstPort, dstRoles)
	switch {
	case srcScore != dstScore:
		return dstScore > srcScore
	case srcScore != policy.ScoreNone:
		toDst := admits(t.m.Match(policy.Flow{Transport: tr, Client: p.Src, Server: p.Dst, ClientRoles: srcRoles, ServerRoles: dstRoles, Port: p.DstPort}))
		toSrc := admits(t.m.Match(policy.Flow{Transport: tr, Client: p.Dst, Server: p.Src, ClientRoles: dstRoles, ServerRoles: srcRoles, Port: p.SrcPort}))
		if toDst != toSrc {
			return toDst
		}
	}
	if p.SrcPort != p.DstPort {
		return p.DstPort < p.SrcPort
	}
	return true
}

// admits reports a match by a rule that admits the flow's client (enabled
// or not).
func admits(m policy.Match) bool {
	return m.Kind == policy.MatchAllowed || m.Kind == policy.MatchFeatureDisabled
}
