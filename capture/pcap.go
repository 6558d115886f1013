package capture

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Classic pcap magic numbers, as the first four bytes of a file read in
// the writer's byte order.
const (
	pcapMagicMicro    = 0xa1b2c3d4
	pcapMagicNano     = 0xa1b23c4d
	pcapMagicModified = 0xa1b2cd34 // Alexey Kuznetsov's patched libpcap: 8 more bytes per record
)

const (
	pcapFileHeaderLen     = 24
	pcapRecordHeaderLen   = 16
	pcapModifiedHeaderLen = 24
	// maxPacketLen is the largest packet libpcap accepts (MAXIMUM_SNAPLEN).
	// A record may exceed it only when the file's snap length says so.
	maxPacketLen = 262144
	// maxRecordLen caps what a snap length can raise the limit to, so that
	// a header claiming 4 GB packets does not make 4 GB records legal.
	maxRecordLen = 16 << 20
)

// The link type field of a classic pcap header holds the link type in its
// low 16 bits; bits 16-25 are reserved and must be zero (libpcap's
// LT_RESERVED1); bit 26 and bits 28-31 describe a frame check sequence.
const (
	linkTypeMask     = 0x0000ffff
	linkReservedMask = 0x03ff0000
)

// pcapReader reads classic pcap records.
type pcapReader struct {
	s       *stream
	name    string
	closer  io.Closer
	order   binary.ByteOrder
	bigEnd  bool
	nano    bool
	link    LinkType
	maxCap  uint32
	hdrLen  int
	records int
	err     error // sticky: once failed, Next keeps failing the same way
}

func newPcapReader(s *stream, name string, closer io.Closer) (*pcapReader, error) {
	h, err := s.peek(pcapFileHeaderLen)
	if len(h) < pcapFileHeaderLen {
		return nil, fmt.Errorf("%s: pcap file header: %w", name, readFailure(err, len(h), pcapFileHeaderLen))
	}
	r := &pcapReader{s: s, name: name, closer: closer, hdrLen: pcapRecordHeaderLen}
	var magic uint32
	if m := binary.LittleEndian.Uint32(h); m == pcapMagicMicro || m == pcapMagicNano || m == pcapMagicModified {
		r.order, magic = binary.LittleEndian, m
	} else {
		r.order, r.bigEnd, magic = binary.BigEndian, true, binary.BigEndian.Uint32(h)
	}
	switch magic {
	case pcapMagicNano:
		r.nano = true
	case pcapMagicModified:
		r.hdrLen = pcapModifiedHeaderLen
	case pcapMagicMicro:
	default:
		return nil, fmt.Errorf("%s: not a pcap file (magic %x)", name, h[:4])
	}
	major, minor := r.order.Uint16(h[4:]), r.order.Uint16(h[6:])
	if major != 2 {
		return nil, fmt.Errorf("%s: pcap version %d.%d not supported (want 2.x)", name, major, minor)
	}
	snaplen := r.order.Uint32(h[16:])
	linkField := r.order.Uint32(h[20:])
	if linkField&linkReservedMask != 0 {
		return nil, fmt.Errorf("%s: pcap link type field %#08x has reserved bits set", name, linkField)
	}
	// The FCS length (bits 28-31, valid when bit 26 is set) says how many
	// 16-bit words of frame check sequence end each packet. Decode takes
	// lengths from the IP header, so trailing FCS bytes need no handling.
	r.link = LinkType(linkField & linkTypeMask).normalize()
	r.maxCap = maxPacketLen
	if snaplen > r.maxCap {
		r.maxCap = min(snaplen, maxRecordLen)
	}
	s.consume(pcapFileHeaderLen)
	return r, nil
}

func (r *pcapReader) Next(rec *Record) error {
	if r.err != nil {
		return r.err
	}
	s := r.s
	h, err := s.peek(r.hdrLen)
	if len(h) < r.hdrLen {
		if len(h) == 0 && err == io.EOF {
			r.err = io.EOF
			return io.EOF
		}
		return r.fail(readFailure(err, len(h), r.hdrLen))
	}
	var sec, frac, capLen, wireLen uint32
	if r.bigEnd {
		sec, frac = binary.BigEndian.Uint32(h), binary.BigEndian.Uint32(h[4:])
		capLen, wireLen = binary.BigEndian.Uint32(h[8:]), binary.BigEndian.Uint32(h[12:])
	} else {
		sec, frac = binary.LittleEndian.Uint32(h), binary.LittleEndian.Uint32(h[4:])
		capLen, wireLen = binary.LittleEndian.Uint32(h[8:]), binary.LittleEndian.Uint32(h[12:])
	}
	if capLen > r.maxCap {
		return r.fail(fmt.Errorf("record claims %d bytes, more than the %d a packet can have", capLen, r.maxCap))
	}
	total := r.hdrLen + int(capLen)
	b, err := s.peek(total)
	if len(b) < total {
		return r.fail(readFailure(err, len(b), total))
	}
	ts := int64(sec) * 1e9
	if r.nano {
		ts += int64(frac)
	} else {
		ts += int64(frac) * 1e3
	}
	if wireLen < capLen {
		wireLen = capLen
	}
	// Field by field: a composite literal is built on the stack and
	// copied, and the copy's wide loads of the narrow stores just made
	// stall (no store-to-load forwarding): a third of Next's time.
	rec.TS, rec.CapLen, rec.WireLen = ts, capLen, wireLen
	rec.Link, rec.Interface, rec.Data = r.link, 0, b[r.hdrLen:total:total]
	s.consume(total)
	r.records++
	return nil
}

func (r *pcapReader) fail(err error) error {
	r.err = &ReadError{File: r.name, Record: r.records + 1, Offset: r.s.pos, Err: err}
	return r.err
}

func (r *pcapReader) Close() error { return closeIfAny(r.closer) }

// readFailure explains why fewer than want bytes could be read.
func readFailure(err error, have, want int) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errTruncated(int64(have), int64(want))
	}
	return err
}

func closeIfAny(c io.Closer) error {
	if c == nil {
		return nil
	}
	return c.Close()
}
