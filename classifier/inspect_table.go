package classifier

import (
	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/dissect"
	"github.com/tpwatch/tpwatch/policy"
)

// inspection is what the table keeps to read carried payloads (see
// inspect.go): the ports learned, the endpoint mapper connections being
// followed, and the dissectors' reused results.
type inspection struct {
	ann *Announcements
	// conns is the pool of endpoint mapper connections, connOf the one a
	// live flow to 135 holds, free the ones to reuse.
	conns  []dissect.RPCConn
	connOf map[flowKey]uint16
	free   []uint16

	res  dissect.RPCResult
	ssrp dissect.SSRPResponse
	id   dissect.Identification
}

// maxRPCConns bounds the endpoint mapper connections followed at once
// (3 KB each): a connection past it is counted and not read.
const maxRPCConns = 256

// Bits 62 and 63 of entry.history, free of letters: awaitApp marks a flow
// that worked on a port with an expected protocol and waits for its first
// payload to name it (allow); appNamed, a flow whose application protocol
// is named, so that the payloads carried after that one are passed over
// without reading the flow's meta (a cache miss per payload otherwise).
const (
	awaitApp = 1 << 62
	appNamed = 1 << 63
)

func (e *entry) awaitingApp() bool { return e.history&awaitApp != 0 }

// setUpInspection prepares a table that inspects payloads.
func (t *Table) setUpInspection() {
	if t.opts.Inspect == nil {
		return
	}
	t.insp.ann = t.opts.Announcements
	if t.insp.ann == nil {
		t.insp.ann = NewAnnouncements(0, 0)
	}
	t.insp.connOf = make(map[flowKey]uint16)
}

// inspect reads the payload sg carries, of flow i, sent by its client when
// fromClient: the learners' ports first, then, until one names it, the
// application protocol (or takes what the reading side made of it: sg.ident).
func (t *Table) inspect(i uint32, sg *seg, fromClient bool) {
	if t.opts.Inspect == nil {
		return
	}
	e := &t.entries[i]
	port := serverPort(e)
	if sg.payload != nil {
		switch {
		case e.proto == capture.ProtoTCP && port == portEPM:
			t.feedRPC(i, sg, fromClient)
		case e.proto == capture.ProtoUDP && port == portSSRP && !fromClient:
			t.readSSRP(i, sg)
		}
	}
	if e.history&appNamed != 0 || !t.opts.Inspect.first[transportSlot(e.proto)].has(port) {
		return
	}
	w := sg.ident
	if w == 0 {
		id := &t.insp.id
		dissect.Identify(dissect.Transport(e.proto), sg.payload, int(sg.payloadLen), id)
		w = packIdent(id)
	}
	app, alpn, needMore := w.unpack()
	m := &t.meta[i]
	switch {
	case app > dissect.AppUnknown:
		m.app, m.alpn = app, alpn
		e.history |= appNamed
		t.counts.identified++
		if e.awaitingApp() {
			e.history &^= awaitApp
			t.allow(i)
		}
	default:
		if m.app == dissect.AppNone {
			m.app = dissect.AppUnknown // a payload was seen; it named nothing
		}
		// Bytes no signature knows (a proprietary or encrypted protocol)
		// never mismatch: the flow is allowed now, unless the payload was
		// too short to tell and the next one may.
		if e.awaitingApp() && !needMore {
			e.history &^= awaitApp
			t.allow(i)
		}
	}
}

// feedRPC follows the endpoint mapper connection of flow i, and learns the
// ports its answers announce, for the flow's server.
func (t *Table) feedRPC(i uint32, sg *seg, fromClient bool) {
	in := &t.insp
	k := t.entries[i].key()
	c, ok := in.connOf[k]
	if !ok {
		switch {
		case len(in.free) > 0:
			c = in.free[len(in.free)-1]
			in.free = in.free[:len(in.free)-1]
			in.conns[c].Reset()
		case len(in.conns) < maxRPCConns:
			in.conns = append(in.conns, dissect.RPCConn{})
			c = uint16(len(in.conns) - 1)
		default:
			t.counts.rpcConnsDropped++
			return
		}
		in.connOf[k] = c
	}
	side := dissect.SideServer
	if fromClient {
		side = dissect.SideClient
	}
	r := &in.res
	in.conns[c].Feed(side, sg.seq, sg.payload, int(sg.payloadLen), r)
	t.counts.epmAnswers += uint64(r.Maps)
	t.counts.dcomAnswers += uint64(r.Activations)
	t.counts.answersUnreadable += uint64(r.Encrypted + r.Faults + r.Malformed + r.Truncated)
	t.counts.epmErrors += uint64(r.Errors)
	if r.NumEndpoints == 0 {
		return
	}
	_, server := t.endpoints(&t.entries[i])
	for j := range r.Endpoints[:r.NumEndpoints] {
		ep := &r.Endpoints[j]
		if ep.Transport != dissect.TCP || ep.Port == 0 {
			continue
		}
		ann := Announcement{Via: ViaEPM, Interface: ep.Name, At: t.now}
		if ep.Source == dissect.SourceDCOM {
			ann.Via, ann.Interface = ViaDCOM, dissect.InterfaceOther
		}
		in.ann.learn(server, capture.ProtoTCP, ep.Port, ann)
	}
}

// releaseRPC returns the endpoint mapper connection flow i holds, if any.
func (t *Table) releaseRPC(i uint32) {
	in := &t.insp
	if len(in.connOf) == 0 {
		return
	}
	k := t.entries[i].key()
	if c, ok := in.connOf[k]; ok {
		delete(in.connOf, k)
		in.free = append(in.free, c)
	}
}

// readSSRP learns the ports of the instances a SQL Server Browser answer
// of flow i names, for the flow's server.
func (t *Table) readSSRP(i uint32, sg *seg) {
	r := &t.insp.ssrp
	if !dissect.ParseSSRPResponse(sg.payload, r) {
		return
	}
	t.counts.ssrpAnswers++
	_, server := t.endpoints(&t.entries[i])
	if r.DAC && r.DACPort != 0 {
		t.insp.ann.learn(server, capture.ProtoTCP, r.DACPort, announcedInstance("DAC", t.now))
	}
	for j := range r.Instances[:r.NumInstances] {
		inst := &r.Instances[j]
		if inst.TCPPort == 0 || inst.BadPort {
			continue
		}
		t.insp.ann.learn(server, capture.ProtoTCP, inst.TCPPort, announcedInstance(string(inst.Name()), t.now))
	}
}

func announcedInstance(name string, at int64) Announcement {
	a := Announcement{Via: ViaSSRP, At: at}
	a.InstanceLen = uint8(copy(a.Instance[:], name))
	return a
}

// announced looks a new flow's server port up among the announced ones,
// and matches the flow with the rules the announcement stands for: a flow
// to a port a domain controller's endpoint mapper handed out matches the
// Threat Manager's dynamic RPC rule whatever range that lists. A flow a
// rule admits by its range alone, with nothing announced, says so (via
// range), and under --rpc-strict is unexpected.
func (t *Table) announced(f *policy.Flow, match policy.Match) (policy.Match, Via, Announcement) {
	if f.Transport == policy.TCP && t.insp.ann != nil {
		if ann, ok := t.insp.ann.lookup(f.Server, capture.ProtoTCP, f.Port, t.now); ok {
			kind := policy.AnnounceRPC
			if ann.Via == ViaSSRP {
				kind = policy.AnnounceSQLBrowser
			}
			if match.Kind == policy.MatchAllowed {
				if r := t.m.Rule(match.Rule); r != nil && r.Announced == kind {
					return match, ann.Via, ann
				}
				return match, ViaNone, Announcement{}
			}
			if m, ok := t.m.MatchAnnounced(*f, kind); ok {
				return m, ann.Via, ann
			}
		}
	}
	if match.Kind == policy.MatchAllowed {
		if r := t.m.Rule(match.Rule); r != nil && r.Announced == policy.AnnounceRPC && !r.ListsPort(f.Port) {
			if t.opts.RPCStrict && t.opts.Inspect != nil {
				return policy.Match{Kind: policy.MatchUnannounced, Rule: match.Rule}, ViaRange, Announcement{}
			}
			return match, ViaRange, Announcement{}
		}
	}
	return match, ViaNone, Announcement{}
}

// announcedServer orients a flow seen first mid-stream by the ports
// announced: the end whose port was announced is the server. It reports
// ok false when neither or both were.
func (t *Table) announcedServer(p *capture.Packet) (srcIsClient, ok bool) {
	if p.Proto != capture.ProtoTCP || t.insp.ann == nil || t.insp.ann.Len() == 0 {
		return false, false
	}
	_, dst := t.insp.ann.lookup(p.Dst, capture.ProtoTCP, p.DstPort, t.now)
	_, src := t.insp.ann.lookup(p.Src, capture.ProtoTCP, p.SrcPort, t.now)
	return dst, dst != src
}

// expectation is what the server port of flow i, on its rule, may carry;
// ok false when nothing is expected there or its payload is not read.
func (t *Table) expectation(i uint32) (dissect.Expectation, bool) {
	e := &t.entries[i]
	port := serverPort(e)
	if t.opts.Inspect == nil || !t.opts.Inspect.first[transportSlot(e.proto)].has(port) {
		return dissect.Expectation{}, false
	}
	r := t.m.Rule(t.meta[i].rule.index())
	if r == nil {
		return dissect.Expectation{}, false
	}
	exp, ok := dissect.ExpectedApps(r.ID, port)
	return exp, ok && exp.Apps != 0
}

// allow decides flow i, which worked on a rule that admits it: allowed,
// or unexpected/protocol_mismatch when its payload named a protocol its
// port does not carry; with no payload read yet on a port whose protocol
// is expected, it waits for the first one (appDeadline).
func (t *Table) allow(i uint32) {
	e, m := &t.entries[i], &t.meta[i]
	if exp, ok := t.expectation(i); ok {
		switch {
		case m.app == dissect.AppNone && !e.awaitingApp() && t.appDeadline(i) > t.now:
			e.history |= awaitApp
			e.flags &^= flagAttempt // it worked: no attempt deadline any more
			t.setDue(i, t.nextDue(i))
			return
		case e.awaitingApp():
			return // until a payload names it, or the deadline
		case exp.Mismatch(m.app):
			m.outcome = OutcomeWorked
			t.decide(i, Unexpected, ProtocolMismatch)
			return
		}
	}
	e.history &^= awaitApp
	t.decide(i, Allowed, ReasonNone)
}

// appDeadline is when a flow waiting for its protocol is allowed without
// it: once it has been quiet for AppWait (its first payload, which a
// client sends right after the handshake, names it as soon as it comes).
// A later packet only moves it later, which keeps a stored due time a
// lower bound (due.go).
func (t *Table) appDeadline(i uint32) int64 {
	return t.entries[i].last + int64(t.opts.AppWait)
}
