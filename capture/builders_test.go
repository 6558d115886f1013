package capture

import (
	"bytes"
	"encoding/binary"
)

// testRecord is a record as the test capture builders write it.
type testRecord struct {
	sec, frac uint32 // frac in the file's own unit
	wireLen   uint32 // 0: len(data)
	data      []byte
}

// buildPcap writes a classic pcap file in the given byte order and
// timestamp precision.
func buildPcap(order binary.ByteOrder, magic uint32, link uint32, snaplen uint32, recs []testRecord) []byte {
	var b bytes.Buffer
	hdr := make([]byte, 24)
	order.PutUint32(hdr, magic)
	order.PutUint16(hdr[4:], 2)
	order.PutUint16(hdr[6:], 4)
	order.PutUint32(hdr[16:], snaplen)
	order.PutUint32(hdr[20:], link)
	b.Write(hdr)
	for _, r := range recs {
		rh := make([]byte, 16)
		wire := r.wireLen
		if wire == 0 {
			wire = uint32(len(r.data))
		}
		order.PutUint32(rh, r.sec)
		order.PutUint32(rh[4:], r.frac)
		order.PutUint32(rh[8:], uint32(len(r.data)))
		order.PutUint32(rh[12:], wire)
		b.Write(rh)
		if magic == pcapMagicModified {
			b.Write(make([]byte, 8))
		}
		b.Write(r.data)
	}
	return b.Bytes()
}

// ngBuilder writes pcapng blocks in one byte order.
type ngBuilder struct {
	order binary.ByteOrder
	buf   bytes.Buffer
}

func (w *ngBuilder) block(typ uint32, body []byte) *ngBuilder {
	padded := (len(body) + 3) &^ 3
	n := uint32(12 + padded)
	var h [8]byte
	w.order.PutUint32(h[:], typ)
	w.order.PutUint32(h[4:], n)
	w.buf.Write(h[:])
	w.buf.Write(body)
	w.buf.Write(make([]byte, padded-len(body)))
	w.order.PutUint32(h[:], n)
	w.buf.Write(h[:4])
	return w
}

func (w *ngBuilder) shb(major uint16) *ngBuilder {
	body := make([]byte, 16)
	w.order.PutUint32(body, byteOrderMagic)
	w.order.PutUint16(body[4:], major)
	w.order.PutUint64(body[8:], ^uint64(0)) // section length unknown
	return w.block(blockSHB, body)
}

// option encodes one option, padded.
func (w *ngBuilder) option(code uint16, val []byte) []byte {
	o := make([]byte, 4, 4+len(val)+3)
	w.order.PutUint16(o, code)
	w.order.PutUint16(o[2:], uint16(len(val)))
	o = append(o, val...)
	return append(o, make([]byte, (4-len(val)%4)%4)...)
}

func (w *ngBuilder) idb(link uint16, snaplen uint32, opts ...[]byte) *ngBuilder {
	body := make([]byte, 8)
	w.order.PutUint16(body, link)
	w.order.PutUint32(body[4:], snaplen)
	for _, o := range opts {
		body = append(body, o...)
	}
	if len(opts) > 0 {
		body = append(body, 0, 0, 0, 0) // opt_endofopt
	}
	return w.block(blockIDB, body)
}

func (w *ngBuilder) epb(iface uint32, ticks uint64, wireLen uint32, data []byte) *ngBuilder {
	body := make([]byte, 20, 20+len(data))
	w.order.PutUint32(body, iface)
	w.order.PutUint32(body[4:], uint32(ticks>>32))
	w.order.PutUint32(body[8:], uint32(ticks))
	w.order.PutUint32(body[12:], uint32(len(data)))
	if wireLen == 0 {
		wireLen = uint32(len(data))
	}
	w.order.PutUint32(body[16:], wireLen)
	return w.block(blockEPB, append(body, data...))
}

func (w *ngBuilder) spb(wireLen uint32, data []byte) *ngBuilder {
	body := make([]byte, 4, 4+len(data))
	w.order.PutUint32(body, wireLen)
	return w.block(blockSPB, append(body, data...))
}

func (w *ngBuilder) bytes() []byte { return w.buf.Bytes() }
