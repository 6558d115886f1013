package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"time"
)

// pcapng block types.
const (
	blockSHB       = 0x0a0d0d0a
	blockIDB       = 0x00000001
	blockPacket    = 0x00000002 // obsolete Packet Block
	blockSPB       = 0x00000003
	blockEPB       = 0x00000006
	byteOrderMagic = 0x1a2b3c4d
)

const (
	minBlockLen = 12
	// maxBlockLen is the largest block we accept, as libpcap and Wireshark
	// do; longer claims are errors, never allocations.
	maxBlockLen = 16 << 20
	// Option codes of an Interface Description Block.
	optEnd        = 0
	optIfTSResol  = 9
	optIfTSOffset = 14
)

// ngInterface is what an IDB says about the packets of one interface.
type ngInterface struct {
	link    LinkType
	snaplen uint32
	// A timestamp of t ticks is, in nanoseconds: t*mul when mul != 0,
	// t/div when div != 0, (t*1e9)>>shift when pow2.
	mul, div uint64
	pow2     bool
	shift    uint
	offsetNs int64 // if_tsoffset, in nanoseconds
}

func (ifc *ngInterface) nanoseconds(ticks uint64) int64 {
	var ns uint64
	switch {
	case ifc.pow2:
		hi, lo := bits.Mul64(ticks, 1e9)
		switch {
		case ifc.shift >= 64:
			ns = hi >> (ifc.shift - 64)
		case hi>>ifc.shift != 0:
			ns = math.MaxUint64 // past 64 bits: bounded below
		default:
			ns = lo>>ifc.shift | hi<<(64-ifc.shift)
		}
	case ifc.mul != 0:
		hi, lo := bits.Mul64(ticks, ifc.mul)
		if ns = lo; hi != 0 {
			ns = math.MaxUint64
		}
	case ifc.div != 0:
		ns = ticks / ifc.div
	}
	// Both terms are at most maxTimestamp, so the sum cannot overflow.
	return min(max(int64(min(ns, maxTimestamp))+ifc.offsetNs, 0), maxTimestamp)
}

// offsetNs is an if_tsoffset of sec seconds (signed) in nanoseconds,
// bounded so that it cannot overflow: a larger one would only reach the
// bounds of nanoseconds sooner.
func offsetNs(sec int64) int64 {
	const bound = maxTimestamp / int64(time.Second)
	return min(max(sec, -bound), bound) * int64(time.Second)
}

// maxTimestamp bounds the packet times a pcapng file can give (its
// timestamps and offsets are 64-bit numbers of any unit): 2^62 ns is the
// year 2116, and leaves the flow table room to add any timeout to a packet
// time without overflow. Times before 1970 become 1970.
const maxTimestamp = 1 << 62

// setResolution applies an if_tsresol value: a power of 10, or of 2 when
// the top bit is set.
func (ifc *ngInterface) setResolution(v uint8) {
	ifc.mul, ifc.div, ifc.pow2 = 0, 0, false
	exp := uint(v & 0x7f)
	if v&0x80 != 0 {
		ifc.pow2, ifc.shift = true, exp
		if exp == 0 {
			ifc.pow2, ifc.mul = false, 1e9
		}
		return
	}
	switch {
	case exp <= 9:
		ifc.mul = pow10(9 - exp)
	case exp-9 <= 19:
		ifc.div = pow10(exp - 9)
	}
	// Finer than 1e-28 s: every timestamp rounds to 0 ns (mul == div == 0).
}

func pow10(n uint) uint64 {
	p := uint64(1)
	for ; n > 0; n-- {
		p *= 10
	}
	return p
}

// pcapngReader reads the packets of a pcapng file, section by section.
type pcapngReader struct {
	s       *stream
	name    string
	closer  io.Closer
	order   binary.ByteOrder
	big     bool // order is big-endian; lets the hot path avoid interface calls
	ifaces  []ngInterface
	records int
	err     error
	// lastTS is the time of the last packet with a timestamp. A Simple
	// Packet Block has none; it takes this one, so packet time never runs
	// back to 1970 and timeouts still pass in an SPB capture.
	lastTS int64
}

// maxInterfaces bounds the interfaces of one section: a hostile file of
// nothing but interface descriptions must not cost memory without bound.
const maxInterfaces = 65536

func newPcapngReader(s *stream, name string, closer io.Closer) *pcapngReader {
	return &pcapngReader{s: s, name: name, closer: closer, order: binary.LittleEndian}
}

func (r *pcapngReader) u32(b []byte) uint32 {
	if r.big {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func (r *pcapngReader) u16(b []byte) uint16 {
	if r.big {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *pcapngReader) Close() error { return closeIfAny(r.closer) }

func (r *pcapngReader) fail(offset int64, err error) error {
	r.err = &ReadError{File: r.name, Record: r.records + 1, Offset: offset, Err: err}
	return r.err
}

func (r *pcapngReader) Next(rec *Record) error {
	if r.err != nil {
		return r.err
	}
	s := r.s
	for {
		offset := s.pos
		h, err := s.peek(minBlockLen)
		if len(h) < minBlockLen {
			if len(h) == 0 && err == io.EOF {
				r.err = io.EOF
				return io.EOF
			}
			return r.fail(offset, readFailure(err, len(h), minBlockLen))
		}
		typ := r.u32(h)
		if typ == blockSHB {
			// A section header sets the byte order of its own length field.
			switch uint32(byteOrderMagic) {
			case binary.LittleEndian.Uint32(h[8:]):
				r.order, r.big = binary.LittleEndian, false
			case binary.BigEndian.Uint32(h[8:]):
				r.order, r.big = binary.BigEndian, true
			default:
				return r.fail(offset, fmt.Errorf("section header has byte-order magic %x, want 1a2b3c4d", h[8:12]))
			}
		}
		blockLen := r.u32(h[4:])
		if blockLen < minBlockLen || blockLen%4 != 0 {
			return r.fail(offset, fmt.Errorf("block type %#x has length %d: not a multiple of 4 of at least 12", typ, blockLen))
		}
		if blockLen > maxBlockLen {
			return r.fail(offset, fmt.Errorf("block type %#x claims %d bytes, more than the %d a block can have", typ, blockLen, maxBlockLen))
		}
		n := int(blockLen)
		switch typ {
		case blockSHB, blockIDB, blockEPB, blockSPB, blockPacket:
		default:
			if err := r.skip(n); err != nil {
				return r.fail(offset, err)
			}
			continue
		}
		b, err := s.peek(n)
		if len(b) < n {
			return r.fail(offset, readFailure(err, len(b), n))
		}
		if trailer := r.u32(b[n-4:]); trailer != blockLen {
			return r.fail(offset, fmt.Errorf("block type %#x: trailing length %d differs from leading length %d", typ, trailer, blockLen))
		}
		var isPacket bool
		switch typ {
		case blockSHB:
			err = r.sectionHeader(b)
		case blockIDB:
			err = r.interfaceDescription(b)
		default:
			isPacket, err = r.packet(typ, b, rec)
		}
		if err != nil {
			return r.fail(offset, err)
		}
		s.consume(n)
		if isPacket {
			r.records++
			return nil
		}
	}
}

// skip discards a block this reader has no use for, checking its trailer.
func (r *pcapngReader) skip(n int) error {
	body := int64(n - 4)
	if got, err := r.s.discard(body); got < body {
		return readFailure(err, int(got), n)
	}
	t, err := r.s.peek(4)
	if len(t) < 4 {
		return readFailure(err, n-4+len(t), n)
	}
	if trailer := r.u32(t); trailer != uint32(n) {
		return fmt.Errorf("trailing length %d differs from leading length %d", trailer, n)
	}
	r.s.consume(4)
	return nil
}

func (r *pcapngReader) sectionHeader(b []byte) error {
	if len(b) < 28 {
		return fmt.Errorf("section header block of %d bytes is shorter than 28", len(b))
	}
	major, minor := r.u16(b[12:]), r.u16(b[14:])
	if major != 1 {
		return fmt.Errorf("pcapng version %d.%d not supported (want 1.x)", major, minor)
	}
	r.ifaces = r.ifaces[:0]
	return nil
}

func (r *pcapngReader) interfaceDescription(b []byte) error {
	if len(b) < 20 {
		return fmt.Errorf("interface description block of %d bytes is shorter than 20", len(b))
	}
	ifc := ngInterface{
		link:    LinkType(r.u16(b[8:])).normalize(),
		snaplen: r.u32(b[12:]),
		mul:     1e3, // default resolution: microseconds
	}
	opts := b[16 : len(b)-4]
	for len(opts) >= 4 {
		code, length := r.u16(opts), int(r.u16(opts[2:]))
		if code == optEnd {
			break
		}
		padded := (length + 3) &^ 3
		if 4+padded > len(opts) {
			return fmt.Errorf("interface %d: option %d of %d bytes overruns its block", len(r.ifaces), code, length)
		}
		val := opts[4 : 4+length]
		switch {
		case code == optIfTSResol && length >= 1:
			ifc.setResolution(val[0])
		case code == optIfTSOffset && length == 8:
			ifc.offsetNs = offsetNs(int64(r.order.Uint64(val)))
		}
		opts = opts[4+padded:]
	}
	if len(r.ifaces) >= maxInterfaces {
		return fmt.Errorf("more than %d interfaces in one section", maxInterfaces)
	}
	r.ifaces = append(r.ifaces, ifc)
	return nil
}

var errNoInterface = errors.New("simple packet block before any interface description")

// packet fills rec from an EPB, SPB or obsolete PB held whole in b.
func (r *pcapngReader) packet(typ uint32, b []byte, rec *Record) (bool, error) {
	var ifIndex, capLen, wireLen uint32
	var ticks uint64
	var data []byte
	switch typ {
	case blockSPB:
		if len(b) < 16 {
			return false, fmt.Errorf("simple packet block of %d bytes is shorter than 16", len(b))
		}
		if len(r.ifaces) == 0 {
			return false, errNoInterface
		}
		wireLen = r.u32(b[8:])
		data = b[12 : len(b)-4]
		capLen = uint32(len(data))
		if wireLen < capLen {
			capLen = wireLen // the rest is padding
		}
		if snap := r.ifaces[0].snaplen; snap != 0 && snap < capLen {
			capLen = snap
		}
	default: // EPB, obsolete PB: same layout but for the interface id's width
		if len(b) < 32 {
			return false, fmt.Errorf("packet block of %d bytes is shorter than 32", len(b))
		}
		if typ == blockEPB {
			ifIndex = r.u32(b[8:])
		} else {
			ifIndex = uint32(r.u16(b[8:]))
		}
		ticks = uint64(r.u32(b[12:]))<<32 | uint64(r.u32(b[16:]))
		capLen, wireLen = r.u32(b[20:]), r.u32(b[24:])
		data = b[28 : len(b)-4]
		if capLen > uint32(len(data)) {
			return false, fmt.Errorf("record claims %d bytes, but its block holds %d", capLen, len(data))
		}
		if ifIndex >= uint32(len(r.ifaces)) {
			return false, fmt.Errorf("packet names interface %d, but its section defines %d", ifIndex, len(r.ifaces))
		}
	}
	ifc := &r.ifaces[ifIndex]
	if wireLen < capLen {
		wireLen = capLen
	}
	// Field by field, as pcapReader.Next does (no stalled copy).
	rec.CapLen, rec.WireLen, rec.Link = capLen, wireLen, ifc.link
	rec.Interface, rec.Data = ifIndex, data[:capLen:capLen]
	if typ != blockSPB {
		r.lastTS = ifc.nanoseconds(ticks)
	}
	rec.TS = r.lastTS
	return true, nil
}
