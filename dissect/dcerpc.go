package dissect

import "encoding/binary"

// The connection-oriented DCE/RPC PDU (C706 chapter 12, MS-RPCE 2.2.2;
// research notes 1.2).

// PDU types of the connection-oriented protocol (1 and 4-10 are
// connectionless only).
const (
	ptypeRequest   = 0
	ptypeResponse  = 2
	ptypeFault     = 3
	ptypeBind      = 11
	ptypeBindAck   = 12
	ptypeBindNak   = 13
	ptypeAlter     = 14
	ptypeAlterResp = 15
	ptypeAuth3     = 16
	ptypeShutdown  = 17
	ptypeCancel    = 18
	ptypeOrphaned  = 19
)

// pfc_flags bits.
const (
	flagFirstFrag  = 0x01
	flagLastFrag   = 0x02
	flagObjectUUID = 0x80
)

const (
	rpcHeaderLen = 16
	// rpcCallHeaderLen is the header of a request or response: the
	// common header, alloc_hint, p_cont_id and opnum or cancel_count.
	rpcCallHeaderLen = 24
	secTrailerLen    = 8
	authLevelPrivacy = 6
)

// rpcHeader is the common header of a PDU.
type rpcHeader struct {
	ptype     uint8
	flags     uint8
	bigEndian bool
	fragLen   int
	authLen   int
	callID    uint32
}

// minBody is the least frag_length a PDU of each type can have: the
// common header plus its fixed fields. Zero marks a type that is not
// connection-oriented.
var minBody = [20]uint8{
	ptypeRequest:   rpcCallHeaderLen,
	ptypeResponse:  rpcCallHeaderLen,
	ptypeFault:     32,
	ptypeBind:      28,
	ptypeBindAck:   28,
	ptypeBindNak:   18,
	ptypeAlter:     28,
	ptypeAlterResp: 28,
	ptypeAuth3:     20,
	ptypeShutdown:  rpcHeaderLen,
	ptypeCancel:    rpcHeaderLen,
	ptypeOrphaned:  rpcHeaderLen,
}

// parseRPCHeader reads and checks the common header at the start of b. It
// is strict on purpose: the same test finds the next PDU of a stream whose
// start was not captured, so it accepts only what real stacks send
// (version 5.0 or 5.1, a connection-oriented type, an integer
// representation of 0 or 1, ASCII or EBCDIC characters, one of the four
// float formats, zero reserved bytes, and lengths that fit each other).
func parseRPCHeader(b []byte) (h rpcHeader, ok bool) {
	if len(b) < rpcHeaderLen || b[0] != 5 || b[1] > 1 || b[2] >= uint8(len(minBody)) || minBody[b[2]] == 0 {
		return h, false
	}
	if b[4]>>4 > 1 || b[4]&0x0f > 1 || b[5] > 3 || b[6] != 0 || b[7] != 0 {
		return h, false
	}
	h.ptype, h.flags = b[2], b[3]
	h.bigEndian = b[4]>>4 == 0
	if h.bigEndian {
		h.fragLen = int(binary.BigEndian.Uint16(b[8:]))
		h.authLen = int(binary.BigEndian.Uint16(b[10:]))
		h.callID = binary.BigEndian.Uint32(b[12:])
	} else {
		h.fragLen = int(binary.LittleEndian.Uint16(b[8:]))
		h.authLen = int(binary.LittleEndian.Uint16(b[10:]))
		h.callID = binary.LittleEndian.Uint32(b[12:])
	}
	need := int(minBody[h.ptype])
	if h.ptype == ptypeRequest && h.flags&flagObjectUUID != 0 {
		need += 16 // the object UUID before the stub
	}
	if h.authLen > 0 {
		need += secTrailerLen + h.authLen
	}
	if h.fragLen < need {
		return h, false
	}
	return h, true
}

func (h *rpcHeader) u16(b []byte) uint16 {
	if h.bigEndian {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

// stubBounds returns where the stub of a request or response ends in a
// PDU of which pdu holds the first bytes (perhaps not all), and the auth
// level (0 without authentication). ok is false when the trailer's fields
// disagree with the lengths; known is false when the trailer was not
// captured, so neither the level nor the stub's end is known.
func (h *rpcHeader) stubBounds(pdu []byte, start int) (end int, level uint8, known, ok bool) {
	if h.authLen == 0 {
		return h.fragLen, 0, true, true
	}
	trailer := h.fragLen - h.authLen - secTrailerLen
	if trailer < start {
		return 0, 0, true, false
	}
	if trailer+secTrailerLen > len(pdu) {
		return 0, 0, false, true
	}
	level, pad := pdu[trailer+1], int(pdu[trailer+2])
	end = trailer - pad
	if end < start {
		return 0, level, true, false
	}
	return end, level, true, true
}

// Limits of the state an RPCConn keeps.
const (
	// maxContexts presentation contexts are remembered per connection;
	// Windows binds one to three per interface (NDR, NDR64, bind-time
	// feature negotiation). A context beyond them is forgotten, and its
	// calls decode as if the bind had not been seen.
	maxContexts = 8
	// maxCalls calls awaiting their response are remembered; the oldest
	// is forgotten first.
	maxCalls = 8
	// assemblyCap bounds the bytes kept to put a PDU of interest back
	// together when it spans TCP segments, or a stub that spans PDU
	// fragments. EPM answers are 152-304 bytes and a DCOM activation
	// answer about 1.1 KB in every capture seen (research notes 1.10).
	assemblyCap = 2048
)

// callKind says what a response teaches.
type callKind uint8

const (
	callNothing    callKind = iota
	callMap                 // ept_map: towers
	callActivation          // DCOM activation or OXID resolution: string bindings
	callUnknown             // interface or opnum not seen: try both, strictly
)

type rpcContext struct {
	id     uint16
	iface  Interface
	syntax Syntax
	used   bool
}

type rpcCall struct {
	callID uint32
	opnum  uint16
	ctxID  uint16
	// asked is the interface an ept_map request asked for.
	asked    UUID
	hasAsked bool
	used     bool
}

// rpcHeadCap is how much of a PDU that spans segments is kept to read it
// when it completes: the contexts of a bind, the opnum and map tower of a
// request, the start of an answer too large to assemble.
const rpcHeadCap = 256

// rpcStream is where one direction of the connection stands.
type rpcStream struct {
	nextSeq uint32
	// seqKnown is set once a segment of the direction was fed.
	seqKnown bool
	// lost is set when the stream position is unknown (a capture begun
	// mid-stream, a lost segment that held a header): the next header is
	// searched for.
	lost bool
	// inPDU is set while a PDU begun in an earlier segment goes on; seen
	// counts its bytes so far, hdr is its header once 16 bytes of it were
	// seen (hdrKnown), head holds its first headLen bytes.
	inPDU    bool
	hdrKnown bool
	hdr      rpcHeader
	seen     int
	head     [rpcHeadCap]byte
	headLen  int
	// broken is set when some bytes of the PDU in progress were not
	// captured (a snap length, a lost segment).
	broken bool
	// collect is set while the PDU in progress, an answer, is copied
	// whole into the assembly.
	collect bool
}

// RPCConn follows one TCP connection to an endpoint mapper (port 135).
// The zero value is ready; Reset makes an RPCConn ready for another
// connection. It holds no pointer, so a pool of them costs the garbage
// collector nothing.
//
// Feed it every payload-carrying segment of the connection, both
// directions, in capture order. It copies what it keeps (a few header
// fields per context and call, and the bytes of a PDU of interest that
// spans segments); the payload slice is free to reuse when Feed returns.
type RPCConn struct {
	streams  [2]rpcStream // [0] client to server, [1] server to client
	contexts [maxContexts]rpcContext
	// offered lists, in order, the contexts the last bind or
	// alter_context proposed: its ack answers them by position.
	offered   [maxContexts]rpcContext
	nOffered  uint8
	calls     [maxCalls]rpcCall
	nextCall  uint8
	nextCtxAt uint8
	asm       assembly
}

// assembly holds, in one buffer, the stub of the earlier fragments of a
// fragmented response (buf[:stubLen]) followed by the bytes of a PDU that
// spans segments (buf[stubLen:stubLen+pduLen]).
type assembly struct {
	// fragmented is set while buf[:stubLen] holds the stub of the earlier
	// fragments of callID.
	fragmented bool
	callID     uint32
	kind       callKind
	syntax     Syntax
	bigEndian  bool
	asked      UUID
	hasAsked   bool
	stubLen    int
	// pduAt is where the PDU being collected starts in buf: stubLen when
	// it began.
	pduAt  int
	pduLen int
	buf    [assemblyCap]byte
}

// Reset forgets everything, for another connection.
func (c *RPCConn) Reset() {
	for i := range c.streams {
		c.streams[i].reset()
	}
	c.contexts = [maxContexts]rpcContext{}
	c.offered = [maxContexts]rpcContext{}
	c.nOffered, c.nextCall, c.nextCtxAt = 0, 0, 0
	c.calls = [maxCalls]rpcCall{}
	c.asm.fragmented, c.asm.stubLen, c.asm.pduLen = false, 0, 0
}

func (s *rpcStream) reset() {
	s.nextSeq, s.seqKnown, s.lost = 0, false, false
	s.endPDU()
}

func (s *rpcStream) endPDU() {
	s.inPDU, s.hdrKnown, s.seen, s.headLen, s.broken, s.collect = false, false, 0, 0, false, false
}

// Feed reads one TCP segment of the connection into out (which it resets
// first). from says who sent it: SideClient for the end that connected to
// port 135, SideServer for the endpoint mapper; anything else is ignored.
// seq is the segment's TCP sequence number, by which retransmissions and
// lost segments are told apart from new bytes. payload is the segment's
// payload as captured; payloadLen its length by the IP and TCP headers,
// which is more when a snap length cut the capture.
func (c *RPCConn) Feed(from Side, seq uint32, payload []byte, payloadLen int, out *RPCResult) {
	out.reset()
	var dir int
	switch from {
	case SideClient:
		dir = 0
	case SideServer:
		dir = 1
	default:
		return
	}
	if payloadLen < len(payload) {
		payload = payload[:payloadLen] // link-layer padding the caller left on
	}
	if payloadLen <= 0 {
		return
	}
	s := &c.streams[dir]
	start := 0
	if s.seqKnown {
		switch d := int32(seq - s.nextSeq); {
		case d < 0:
			if int64(-d) >= int64(payloadLen) {
				out.Retransmitted++
				return
			}
			start = int(-d) // the segment overlaps what was seen: read only its new part
		case d > 0:
			c.lose(dir, int(d), out)
		}
	} else {
		s.lost = true // a connection's first segment need not start a PDU
	}
	s.seqKnown = true
	s.nextSeq = seq + uint32(payloadLen)
	if start > 0 {
		payload = payload[min(start, len(payload)):]
		payloadLen -= start
	}
	c.walk(dir, payload, payloadLen, out)
}

// lose accounts for gap bytes that were never seen in direction dir.
func (c *RPCConn) lose(dir, gap int, out *RPCResult) {
	s := &c.streams[dir]
	if dir == 1 && c.asm.fragmented {
		c.dropFragments() // a fragment of the answer being put together may be gone
		out.Truncated++
	}
	if s.inPDU && s.hdrKnown && s.hdr.fragLen-s.seen >= gap {
		// The lost bytes were the middle of a PDU: it is broken, but
		// the next header is still where its length says.
		s.seen += gap
		s.broken = true
		return
	}
	if s.inPDU && dir == 1 && s.hdr.ptype == ptypeResponse {
		out.Truncated++ // an answer that will never complete
	}
	s.endPDU()
	s.lost = true
}

// walk reads the PDUs of one segment: payload as captured, declared bytes
// by the headers.
func (c *RPCConn) walk(dir int, payload []byte, declared int, out *RPCResult) {
	s := &c.streams[dir]
	pos := 0
	for pos < declared {
		if !s.inPDU {
			if pos+rpcHeaderLen > declared && declared == len(payload) && (!s.lost || payload[pos] == 5) {
				// A header split across segments: keep its first bytes.
				s.inPDU = true
			} else {
				if pos+rpcHeaderLen > len(payload) {
					// The header was cut by the snap length (its PDU's
					// length is unknown), or what is left cannot start
					// one.
					s.lost = true
					out.Unsynced += declared - pos
					return
				}
				h, ok := parseRPCHeader(payload[pos:])
				if !ok {
					next := findRPCHeader(payload, pos+1)
					if !s.lost {
						out.Malformed++ // a header was due here
						s.lost = true
					}
					if next < 0 {
						out.Unsynced += declared - pos
						return
					}
					out.Unsynced += next - pos
					pos = next
					continue
				}
				s.lost = false
				if end := pos + h.fragLen; end <= declared {
					pdu := payload[pos:min(end, len(payload))]
					c.pdu(dir, &h, pdu, len(pdu) == h.fragLen, out)
					pos = end
					continue
				}
				s.inPDU, s.hdrKnown, s.hdr = true, true, h
				c.startCollecting(dir)
			}
		}
		// The PDU in progress takes the bytes it still needs: all of
		// them, or those that complete its header.
		take := declared - pos
		if s.hdrKnown {
			take = min(take, s.hdr.fragLen-s.seen)
		} else {
			take = min(take, rpcHeaderLen-s.seen)
		}
		c.keep(dir, payload[min(pos, len(payload)):min(pos+take, len(payload))], take)
		pos += take
		if !s.hdrKnown && s.seen == rpcHeaderLen {
			h, ok := parseRPCHeader(s.head[:rpcHeaderLen])
			if !ok {
				// Not a header after all: search again from the bytes
				// that follow (the kept ones are gone).
				if !s.lost {
					out.Malformed++
				}
				out.Unsynced += rpcHeaderLen
				s.endPDU()
				s.lost = true
				continue
			}
			s.hdrKnown, s.hdr = true, h
			c.startCollecting(dir)
		}
		if s.hdrKnown && s.seen == s.hdr.fragLen {
			c.completed(dir, out)
		}
	}
}

// startCollecting decides, once the header of a PDU that spans segments
// is known, whether to put it back together whole: only an answer (a
// request or a bind is read from its first bytes), and only when it fits
// the assembly.
func (c *RPCConn) startCollecting(dir int) {
	s := &c.streams[dir]
	a := &c.asm
	if dir != 1 || s.hdr.ptype != ptypeResponse || s.broken || a.stubLen+s.hdr.fragLen > assemblyCap {
		return
	}
	s.collect = true
	a.pduAt = a.stubLen
	a.pduLen = copy(a.buf[a.pduAt:], s.head[:s.headLen])
}

// keep adds the next n bytes of the PDU in progress, of which b were
// captured.
func (c *RPCConn) keep(dir int, b []byte, n int) {
	s := &c.streams[dir]
	if len(b) < n {
		s.broken = true
	}
	if s.headLen < rpcHeadCap {
		s.headLen += copy(s.head[s.headLen:], b)
	}
	if s.collect {
		if s.broken {
			// Counted as truncated when the PDU completes, if it
			// matters.
			s.collect = false
			c.asm.pduLen = 0
		} else {
			c.asm.pduLen += copy(c.asm.buf[c.asm.pduAt+c.asm.pduLen:], b)
		}
	}
	s.seen += n
}

// completed reads the PDU in progress, now that its last byte came.
func (c *RPCConn) completed(dir int, out *RPCResult) {
	s := &c.streams[dir]
	h := s.hdr
	if s.collect {
		a := &c.asm
		pdu := a.buf[a.pduAt : a.pduAt+a.pduLen]
		a.pduLen = 0
		c.pdu(dir, &h, pdu, len(pdu) == h.fragLen, out)
	} else {
		c.pdu(dir, &h, s.head[:s.headLen], !s.broken && s.headLen == h.fragLen, out)
	}
	s.endPDU()
}

// findRPCHeader returns the offset of the first plausible PDU header in b
// at or after from, or -1.
func findRPCHeader(b []byte, from int) int {
	for i := from; i+rpcHeaderLen <= len(b); i++ {
		if b[i] != 5 {
			continue
		}
		if _, ok := parseRPCHeader(b[i:]); ok {
			return i
		}
	}
	return -1
}

// pdu handles one PDU of which pdu holds the first bytes (all of them when
// whole is set).
func (c *RPCConn) pdu(dir int, h *rpcHeader, pdu []byte, whole bool, out *RPCResult) {
	switch {
	case dir == 0 && (h.ptype == ptypeBind || h.ptype == ptypeAlter):
		c.bind(h, pdu)
	case dir == 1 && (h.ptype == ptypeBindAck || h.ptype == ptypeAlterResp):
		c.bindAck(h, pdu)
	case dir == 1 && h.ptype == ptypeBindNak:
		c.nOffered = 0
	case dir == 0 && h.ptype == ptypeRequest:
		c.request(h, pdu)
	case dir == 1 && h.ptype == ptypeResponse:
		c.response(h, pdu, whole, out)
	case dir == 1 && h.ptype == ptypeFault:
		if call := c.findCall(h.callID); call != nil {
			if c.kindOf(call, c.findContext(call.ctxID)) != callNothing {
				out.Faults++
			}
			call.used = false
		} else {
			out.Faults++ // the request was not seen: on port 135 it is of interest
		}
	}
}

// bind records the contexts a bind or alter_context proposes, in order:
// its ack answers them by position. A context element is p_cont_id u16,
// n_transfer_syn u8, a reserved byte, the abstract syntax (UUID, u16
// major, u16 minor) and n_transfer_syn 20-byte transfer syntaxes.
func (c *RPCConn) bind(h *rpcHeader, pdu []byte) {
	c.nOffered = 0
	if len(pdu) < 28 {
		return
	}
	n := int(pdu[24])
	off := 28
	for i := 0; i < n && c.nOffered < maxContexts; i++ {
		if off+24 > len(pdu) || off+24 > h.fragLen {
			return
		}
		nSyntaxes := int(pdu[off+2])
		c.offered[c.nOffered] = rpcContext{
			id:    h.u16(pdu[off:]),
			iface: LookupInterface(uuidIn(pdu[off+4:], h.bigEndian)),
			used:  true,
		}
		c.nOffered++
		off += 24 + 20*nSyntaxes
	}
}

// bindAck applies the results of a bind_ack or alter_context_resp to the
// contexts its bind proposed: max_xmit, max_recv, assoc_group, then
// sec_addr (u16 length and bytes), padding to 4, n_results and per result
// u16 result, u16 reason and the 20-byte transfer syntax.
func (c *RPCConn) bindAck(h *rpcHeader, pdu []byte) {
	offered := int(c.nOffered)
	c.nOffered = 0
	if len(pdu) < 26 {
		return
	}
	off := 26 + int(h.u16(pdu[24:]))
	off = (off + 3) &^ 3
	if off+4 > len(pdu) || off+4 > h.fragLen {
		return
	}
	n := int(pdu[off])
	off += 4
	for i := 0; i < n && i < offered; i++ {
		if off+24 > len(pdu) || off+24 > h.fragLen {
			return
		}
		if h.u16(pdu[off:]) == 0 { // acceptance
			ctx := c.offered[i]
			ctx.syntax = syntaxOf(uuidIn(pdu[off+4:], h.bigEndian))
			c.setContext(ctx)
		}
		off += 24
	}
}

func (c *RPCConn) setContext(ctx rpcContext) {
	for i := range c.contexts {
		if c.contexts[i].used && c.contexts[i].id == ctx.id {
			c.contexts[i] = ctx
			return
		}
	}
	c.contexts[c.nextCtxAt%maxContexts] = ctx
	c.nextCtxAt = (c.nextCtxAt + 1) % maxContexts
}

func (c *RPCConn) findContext(id uint16) *rpcContext {
	for i := range c.contexts {
		if c.contexts[i].used && c.contexts[i].id == id {
			return &c.contexts[i]
		}
	}
	return nil
}

func (c *RPCConn) findCall(callID uint32) *rpcCall {
	for i := range c.calls {
		if c.calls[i].used && c.calls[i].callID == callID {
			return &c.calls[i]
		}
	}
	return nil
}

// request records a call: its opnum and context, and for an ept_map the
// interface it asks for (which an error answer does not repeat).
func (c *RPCConn) request(h *rpcHeader, pdu []byte) {
	if len(pdu) < rpcCallHeaderLen {
		return
	}
	call := c.findCall(h.callID)
	if call == nil {
		call = &c.calls[c.nextCall%maxCalls]
		c.nextCall = (c.nextCall + 1) % maxCalls
	} else if h.flags&flagFirstFrag == 0 {
		return // a later fragment of a request already recorded
	}
	*call = rpcCall{callID: h.callID, ctxID: h.u16(pdu[20:]), opnum: h.u16(pdu[22:]), used: true}
	ctx := c.findContext(call.ctxID)
	if call.opnum != opnumMap || (ctx != nil && ctx.iface != InterfaceEPM) {
		return
	}
	start := rpcCallHeaderLen
	if h.flags&flagObjectUUID != 0 {
		start += 16
	}
	end, level, known, ok := h.stubBounds(pdu, start)
	if !known || !ok || level == authLevelPrivacy || start > len(pdu) {
		return
	}
	syntax := SyntaxUnknown
	if ctx != nil {
		syntax = ctx.syntax
	}
	call.asked, call.hasAsked = mapRequestInterface(pdu[start:min(end, len(pdu))], syntax, h.bigEndian)
}

// kindOf says what the response to call on ctx teaches (either may be
// nil: not seen). On port 135 an interface not seen is the endpoint
// mapper's or DCOM's, so an unknown call is worth a strict try.
func (c *RPCConn) kindOf(call *rpcCall, ctx *rpcContext) callKind {
	opnumKnown := call != nil
	var opnum uint16
	if opnumKnown {
		opnum = call.opnum
	}
	if ctx == nil {
		if !opnumKnown || opnum == opnumMap {
			return callUnknown
		}
		// Opnums of the activation and OXID resolution calls:
		// ResolveOxid / RemoteActivation (0), RemoteCreateInstance /
		// ResolveOxid2 (4).
		if opnum == 0 || opnum == 4 {
			return callActivation
		}
		return callNothing
	}
	switch ctx.iface {
	case InterfaceEPM:
		if !opnumKnown || opnum == opnumMap {
			return callMap
		}
	case InterfaceRemoteSCMActivator, InterfaceRemoteActivation, InterfaceObjectExporter:
		return callActivation
	case InterfaceOther:
		if !opnumKnown || opnum == opnumMap {
			return callUnknown
		}
	}
	return callNothing
}

// response reads a response PDU (its first bytes, or all of it when whole
// is set).
func (c *RPCConn) response(h *rpcHeader, pdu []byte, whole bool, out *RPCResult) {
	if len(pdu) < rpcCallHeaderLen {
		out.Truncated++
		return
	}
	call := c.findCall(h.callID)
	ctx := c.findContext(h.u16(pdu[20:]))
	kind := c.kindOf(call, ctx)
	a := &c.asm
	if h.flags&flagFirstFrag == 0 && !(a.fragmented && a.callID == h.callID) {
		kind = callNothing // a later fragment whose first was not seen
	}
	if h.flags&flagLastFrag != 0 && call != nil {
		call.used = false
	}
	if kind == callNothing {
		return
	}
	end, level, known, ok := h.stubBounds(pdu, rpcCallHeaderLen)
	switch {
	case !ok:
		out.Malformed++
		c.dropFragments()
		return
	case !known:
		out.Truncated++
		c.dropFragments()
		return
	case level == authLevelPrivacy:
		out.Encrypted++
		c.dropFragments()
		return
	}
	stubWhole := whole || end <= len(pdu)
	stub := pdu[rpcCallHeaderLen:min(end, len(pdu))]
	syntax := SyntaxUnknown
	if ctx != nil {
		syntax = ctx.syntax
	}
	var asked UUID
	var hasAsked bool
	if call != nil {
		asked, hasAsked = call.asked, call.hasAsked
	}
	switch first, last := h.flags&flagFirstFrag != 0, h.flags&flagLastFrag != 0; {
	case first && last:
		c.dropFragments()
		decodeStub(kind, stub, stubWhole, syntax, h.bigEndian, asked, hasAsked, out)
	case first:
		// The first of several fragments: keep its stub for the others.
		if !stubWhole || len(stub) > assemblyCap {
			out.Truncated++
			c.dropFragments()
			return
		}
		copy(a.buf[:], stub) // stub may lie in buf already (a collected PDU): copy moves it safely
		a.fragmented, a.callID, a.kind, a.syntax, a.bigEndian = true, h.callID, kind, syntax, h.bigEndian
		a.asked, a.hasAsked, a.stubLen = asked, hasAsked, len(stub)
	default:
		if !stubWhole || a.stubLen+len(stub) > assemblyCap {
			out.Truncated++
			c.dropFragments()
			return
		}
		copy(a.buf[a.stubLen:], stub)
		a.stubLen += len(stub)
		if last {
			decodeStub(a.kind, a.buf[:a.stubLen], true, a.syntax, a.bigEndian, a.asked, a.hasAsked, out)
			c.dropFragments()
		}
	}
}

func (c *RPCConn) dropFragments() {
	c.asm.fragmented = false
	c.asm.stubLen = 0
}

// decodeStub learns what a response stub teaches.
func decodeStub(kind callKind, stub []byte, whole bool, syntax Syntax, bigEndian bool, asked UUID, hasAsked bool, out *RPCResult) {
	switch kind {
	case callMap:
		if !whole {
			out.Truncated++
			return
		}
		decodeMapResponse(stub, syntax, bigEndian, asked, hasAsked, out)
	case callActivation:
		// A string binding is found wherever it is, so a cut stub still
		// teaches what was captured.
		if !whole {
			out.Truncated++
		}
		out.Activations++
		scanStringBindings(stub, out)
	case callUnknown:
		if !whole {
			out.Truncated++
		} else if decodeMapResponse(stub, SyntaxUnknown, bigEndian, asked, hasAsked, nil) {
			decodeMapResponse(stub, SyntaxUnknown, bigEndian, asked, hasAsked, out)
			return
		}
		if scanStringBindings(stub, nil) > 0 {
			out.Activations++
			scanStringBindings(stub, out)
		}
	}
}
