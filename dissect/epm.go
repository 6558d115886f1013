package dissect

import (
	"encoding/binary"
	"net/netip"
)

// The endpoint mapper's ept_map (C706 appendix O, opnum 3) and its towers
// (C706 appendix L, MS-RPCE 2.2.1.1; research notes 1.3 and 1.4).
//
//	void ept_map([in] handle_t h, [in, ptr] uuid_p_t object,
//	    [in, ptr] twr_p_t map_tower, [in, out] ept_lookup_handle_t *entry_handle,
//	    [in] unsigned32 max_towers, [out] unsigned32 *num_towers,
//	    [out, ptr, size_is(max_towers), length_is(*num_towers)] twr_p_t towers[],
//	    [out] error_status_t *status);
//	typedef struct { unsigned32 tower_length;
//	    [size_is(tower_length)] byte tower_octet_string[]; } twr_t;

const opnumMap = 3

const (
	// maxTowersGuessed bounds max_count when the transfer syntax is
	// guessed (research notes 1.5.4): a client asks for a handful of
	// towers, so a larger count means the stub is read in the wrong
	// syntax.
	maxTowersGuessed = 64
	// maxFloors: MS-RPCE says implementations SHOULD reject towers of
	// more than six floors; an ncacn_ip_tcp tower has five.
	maxFloors = 6
	// contextHandleLen is the entry_handle: attributes u32 and a UUID.
	contextHandleLen = 20
)

// Tower floor protocol identifiers (packet-dcerpc-epm.c).
const (
	floorUUID   = 0x0d
	floorRPCCL  = 0x0a // connectionless RPC
	floorRPCCO  = 0x0b // connection-oriented RPC
	floorTCP    = 0x07
	floorUDP    = 0x08
	floorIPv4   = 0x09
	uuidFloorLH = 1 + 16 + 2 // identifier, UUID, major version
)

// ndrReader reads NDR (or NDR64) primitives from a stub, with alignment
// counted from the stub's start as the transfer syntax requires. A read
// past the end sets bad and returns zero, so a decode checks once, after
// a group of reads, instead of after each.
type ndrReader struct {
	b         []byte
	off       int
	bigEndian bool
	ndr64     bool
	bad       bool
}

func (r *ndrReader) align(n int) {
	off := (r.off + n - 1) &^ (n - 1)
	if off > len(r.b) {
		r.bad, r.off = true, len(r.b)
		return
	}
	r.off = off
}

func (r *ndrReader) take(n int) []byte {
	if n < 0 || n > len(r.b)-r.off {
		r.bad = true
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

func (r *ndrReader) u32() uint32 {
	r.align(4)
	b := r.take(4)
	if b == nil {
		return 0
	}
	if r.bigEndian {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func (r *ndrReader) u64() uint64 {
	r.align(8)
	b := r.take(8)
	if b == nil {
		return 0
	}
	if r.bigEndian {
		return binary.BigEndian.Uint64(b)
	}
	return binary.LittleEndian.Uint64(b)
}

// count reads a conformance, offset, variance or referent: 4 bytes in
// NDR, 8 (aligned to 8) in NDR64.
func (r *ndrReader) count() uint64 {
	if r.ndr64 {
		return r.u64()
	}
	return uint64(r.u32())
}

func (r *ndrReader) remaining() int { return len(r.b) - r.off }

// tower is what tpwatch reads from a tower's floors.
type tower struct {
	iface        UUID
	major, minor uint16
	syntax       Syntax
	rpcProtocol  uint8 // floor 3: floorRPCCO or floorRPCCL
	portProtocol uint8 // floor 4: floorTCP or floorUDP
	port         uint16
	ip           [4]byte
	hasIP        bool
}

// learnable reports whether the tower names a port to learn: connection-
// oriented RPC over TCP, or connectionless RPC over UDP.
func (t *tower) learnable() bool {
	return t.port != 0 && (t.rpcProtocol == floorRPCCO && t.portProtocol == floorTCP ||
		t.rpcProtocol == floorRPCCL && t.portProtocol == floorUDP)
}

// parseTower reads a tower octet string. It is not NDR: its counts are
// little-endian whatever the PDU's data representation, and the port and
// address are big-endian (network order). Floors 1 and 2 must be the
// interface and the transfer syntax; the others are found by identifier.
func parseTower(b []byte) (t tower, ok bool) {
	if len(b) < 2 {
		return t, false
	}
	n := int(binary.LittleEndian.Uint16(b))
	if n < 2 || n > maxFloors {
		return t, false
	}
	off := 2
	for i := range n {
		if off+2 > len(b) {
			return t, false
		}
		lhsLen := int(binary.LittleEndian.Uint16(b[off:]))
		off += 2
		if lhsLen == 0 || lhsLen > len(b)-off {
			return t, false
		}
		lhs := b[off : off+lhsLen]
		off += lhsLen
		if off+2 > len(b) {
			return t, false
		}
		rhsLen := int(binary.LittleEndian.Uint16(b[off:]))
		off += 2
		if rhsLen > len(b)-off {
			return t, false
		}
		rhs := b[off : off+rhsLen]
		off += rhsLen
		switch {
		case i == 0:
			if lhs[0] != floorUUID || lhsLen != uuidFloorLH || rhsLen != 2 {
				return t, false
			}
			t.iface = uuidLE(lhs[1:])
			t.major = binary.LittleEndian.Uint16(lhs[17:])
			t.minor = binary.LittleEndian.Uint16(rhs)
		case i == 1:
			if lhs[0] != floorUUID || lhsLen != uuidFloorLH {
				return t, false
			}
			t.syntax = syntaxOf(uuidLE(lhs[1:]))
		case lhs[0] == floorRPCCO || lhs[0] == floorRPCCL:
			t.rpcProtocol = lhs[0]
		case lhs[0] == floorTCP || lhs[0] == floorUDP:
			if rhsLen != 2 {
				return t, false
			}
			t.portProtocol = lhs[0]
			t.port = binary.BigEndian.Uint16(rhs)
		case lhs[0] == floorIPv4:
			if rhsLen != 4 {
				return t, false
			}
			t.ip = [4]byte(rhs)
			t.hasIP = true
		}
	}
	return t, off == len(b)
}

// mapResult is what one decode of an ept_map response found.
type mapResult struct {
	ok       bool
	towers   int // learnable towers
	bad      int // towers that did not parse (a known syntax only)
	status   uint32
	exactEnd bool // the status ended the stub
}

// decodeMap decodes an ept_map response stub in one transfer syntax.
// strict applies the checks of a guessed syntax (research notes 1.5.4):
// max_count ≤ 64, no null referent, every tower well formed, and the
// status ending the stub exactly. With emit, it writes the learnable
// towers into out (when the status is 0).
func decodeMap(stub []byte, ndr64, bigEndian, strict bool, out *RPCResult) mapResult {
	var res mapResult
	r := ndrReader{b: stub, bigEndian: bigEndian, ndr64: ndr64}
	r.take(contextHandleLen)
	numTowers := r.u32()
	maxCount, offset, actual := r.count(), r.count(), r.count()
	if r.bad || offset != 0 || actual > maxCount || actual != uint64(numTowers) {
		return res
	}
	if strict && maxCount > maxTowersGuessed {
		return res
	}
	refSize := 4
	if ndr64 {
		refSize = 8
	}
	// Every tower costs its referent and at least a conformance and a
	// length: a count beyond what the bytes can hold is a misdecode, and
	// bounding it here bounds the loops below.
	if actual > uint64(r.remaining()/(refSize+refSize+4)) {
		return res
	}
	present := 0
	for range int(actual) {
		if r.count() != 0 {
			present++
		} else if strict {
			return res
		}
	}
	// The pointees follow all the referents (deferred), each a conformant
	// struct: conformance, tower_length, the octets, then alignment.
	type found struct {
		t  tower
		ok bool
	}
	var towers [maxEndpoints]found
	nFound := 0
	for range present {
		conformance := r.count()
		length := r.u32()
		if r.bad || conformance != uint64(length) || int64(length) > int64(r.remaining()) {
			return res
		}
		t, ok := parseTower(r.take(int(length)))
		switch {
		case !ok && strict:
			return res
		case !ok:
			res.bad++
		case t.learnable():
			res.towers++
			if nFound < len(towers) {
				towers[nFound] = found{t, true}
				nFound++
			} else if out != nil {
				out.Dropped++
			}
		}
	}
	res.status = r.u32()
	if r.bad {
		return res
	}
	res.exactEnd = r.off == len(stub)
	if strict && !res.exactEnd {
		return res
	}
	res.ok = true
	if out == nil || res.status != 0 {
		return res
	}
	for i := range nFound {
		t := &towers[i].t
		e := out.add()
		if e == nil {
			break
		}
		e.Source = SourceEPM
		e.Transport = TCP
		if t.portProtocol == floorUDP {
			e.Transport = UDP
		}
		e.Port = t.port
		e.Interface = t.iface
		e.Name = LookupInterface(t.iface)
		e.VersionMajor, e.VersionMinor = t.major, t.minor
		e.Syntax = t.syntax
		if t.hasIP && t.ip != [4]byte{} {
			e.Addr = netip.AddrFrom4(t.ip)
		}
	}
	return res
}

// decodeMapResponse learns the towers of an ept_map response stub, in the
// context's transfer syntax, or, when the bind was not seen, in whichever
// of NDR and NDR64 passes the strict checks (preferring the one that
// yields towers). It reports whether the stub decoded; with out nil it
// only checks.
func decodeMapResponse(stub []byte, syntax Syntax, bigEndian bool, asked UUID, hasAsked bool, out *RPCResult) bool {
	ndr64 := syntax == SyntaxNDR64
	strict := syntax == SyntaxUnknown
	if strict {
		ndr := decodeMap(stub, false, bigEndian, true, nil)
		n64 := decodeMap(stub, true, bigEndian, true, nil)
		switch {
		case ndr.ok && n64.ok && ndr.towers == 0 && n64.towers == 0:
			// Both read as an empty answer: nothing to learn, and the
			// status is not known (they disagree on where it is).
			if out != nil {
				out.Maps++
			}
			return true
		case ndr.ok && (!n64.ok || ndr.towers > 0):
			ndr64 = false
		case n64.ok:
			ndr64 = true
		default:
			if out != nil {
				out.Malformed++
			}
			return false
		}
	}
	if out == nil {
		return true
	}
	res := decodeMap(stub, ndr64, bigEndian, strict, out)
	if !res.ok {
		out.Malformed++
		return false
	}
	out.Maps++
	out.Malformed += res.bad
	if res.status != 0 {
		out.Errors++
		out.Status = res.status
		out.Asked = UUID{}
		if hasAsked {
			out.Asked = asked
		}
	}
	return true
}

// mapRequestInterface reads the interface an ept_map request asks for:
// floor 1 of its map_tower. The request's stub is the object UUID pointer
// (referent, then the UUID when not null), then the map_tower pointer,
// conformance, tower_length and tower.
func mapRequestInterface(stub []byte, syntax Syntax, bigEndian bool) (UUID, bool) {
	try := func(ndr64 bool) (UUID, bool) {
		r := ndrReader{b: stub, bigEndian: bigEndian, ndr64: ndr64}
		if r.count() != 0 {
			r.take(16)
		}
		if r.count() == 0 {
			return UUID{}, false
		}
		conformance := r.count()
		length := r.u32()
		if r.bad || conformance != uint64(length) || int64(length) > int64(r.remaining()) {
			return UUID{}, false
		}
		t, ok := parseTower(r.take(int(length)))
		return t.iface, ok
	}
	switch syntax {
	case SyntaxNDR:
		return try(false)
	case SyntaxNDR64:
		return try(true)
	}
	if u, ok := try(false); ok {
		return u, true
	}
	return try(true)
}
