package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

func TestPcapngInterfacesAndResolutions(t *testing.T) {
	eth, raw := mustHex(t, hexEthIPv4TCPSyn), mustHex(t, hexIPv6UDP)
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		t.Run(order.String(), func(t *testing.T) {
			w := &ngBuilder{order: order}
			offset := make([]byte, 8)
			order.PutUint64(offset, 100) // if_tsoffset: 100 s
			file := w.shb(1).
				idb(1, 0).                                          // 0: Ethernet, microseconds
				idb(101, 65535, w.option(optIfTSResol, []byte{9})). // 1: raw IP, nanoseconds
				block(0x00000bad, []byte("custom block to skip")).
				idb(229, 0, w.option(optIfTSResol, []byte{0x80 | 10}), w.option(optIfTSOffset, offset)). // 2: 1/1024 s
				epb(0, 1700000000_000001, 0, eth).
				epb(1, 1700000000_123456789, 1500, raw).
				epb(2, 3*1024+512, 0, raw).
				spb(uint32(len(eth)), eth).
				bytes()
			r, err := NewReader(bytes.NewReader(file), "two.pcapng")
			if err != nil {
				t.Fatal(err)
			}
			recs, err := readAll(t, r)
			if err != nil {
				t.Fatal(err)
			}
			want := []Record{
				{TS: 1700000000_000001000, CapLen: uint32(len(eth)), WireLen: uint32(len(eth)), Link: LinkEthernet, Interface: 0, Data: eth},
				{TS: 1700000000_123456789, CapLen: uint32(len(raw)), WireLen: 1500, Link: LinkRaw, Interface: 1, Data: raw},
				{TS: 103_500000000, CapLen: uint32(len(raw)), WireLen: uint32(len(raw)), Link: LinkIPv6, Interface: 2, Data: raw},
				// A simple packet block has no time: it takes the last packet's.
				{TS: 103_500000000, CapLen: uint32(len(eth)), WireLen: uint32(len(eth)), Link: LinkEthernet, Interface: 0, Data: eth},
			}
			if len(recs) != len(want) {
				t.Fatalf("%d records, want %d", len(recs), len(want))
			}
			for i := range want {
				if got := recs[i]; got.TS != want[i].TS || got.CapLen != want[i].CapLen || got.WireLen != want[i].WireLen ||
					got.Link != want[i].Link || got.Interface != want[i].Interface || !bytes.Equal(got.Data, want[i].Data) {
					t.Errorf("record %d = %+v\nwant %+v", i+1, got, want[i])
				}
			}
		})
	}
}

func TestPcapngSimplePacketSnaplen(t *testing.T) {
	eth := mustHex(t, hexEthIPv4TCPPush)
	file := (&ngBuilder{order: binary.LittleEndian}).shb(1).idb(1, 40).spb(uint32(len(eth)), eth).bytes()
	r, _ := NewReader(bytes.NewReader(file), "x")
	var rec Record
	if err := r.Next(&rec); err != nil || rec.CapLen != 40 || rec.WireLen != uint32(len(eth)) || len(rec.Data) != 40 {
		t.Errorf("got %+v, %v; want 40 of %d bytes", rec, err, len(eth))
	}
}

func TestPcapngSections(t *testing.T) {
	eth, raw := mustHex(t, hexEthIPv4TCPSyn), mustHex(t, hexIPv4UDP)
	// A little-endian section with two interfaces, then a big-endian one
	// with a single raw-IP interface: interface numbers start again.
	le := (&ngBuilder{order: binary.LittleEndian}).shb(1).idb(1, 0).idb(1, 0).epb(1, 1, 0, eth).bytes()
	be := (&ngBuilder{order: binary.BigEndian}).shb(1).idb(101, 0).epb(0, 2, 0, raw).bytes()
	r, _ := NewReader(bytes.NewReader(append(append([]byte{}, le...), be...)), "x")
	recs, err := readAll(t, r)
	if err != nil || len(recs) != 2 || recs[0].Link != LinkEthernet || recs[1].Link != LinkRaw || recs[1].Interface != 0 {
		t.Fatalf("%+v, %v", recs, err)
	}
	// Interface 1 of the first section does not exist in the second.
	bad := (&ngBuilder{order: binary.BigEndian}).shb(1).idb(101, 0).epb(1, 2, 0, raw).bytes()
	r, _ = NewReader(bytes.NewReader(append(append([]byte{}, le...), bad...)), "x")
	recs, err = readAll(t, r)
	var re *ReadError
	if len(recs) != 1 || !errors.As(err, &re) || re.Record != 2 || !strings.Contains(err.Error(), "packet names interface 1, but its section defines 1") {
		t.Errorf("%d records, %v", len(recs), err)
	}
}

func TestPcapngWrittenByGopacket(t *testing.T) {
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriter(&buf, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	id, err := w.AddInterface(pcapgo.NgInterface{LinkType: layers.LinkTypeRaw, SnapLength: 65535, TimestampResolution: 9})
	if err != nil {
		t.Fatal(err)
	}
	data := mustHex(t, hexIPv4UDP)
	if err := w.WritePacket(gopacket.CaptureInfo{CaptureLength: len(data), Length: len(data), InterfaceIndex: id}, data); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	r, _ := NewReader(&buf, "x")
	recs, err := readAll(t, r)
	if err != nil || len(recs) != 1 || recs[0].Link != LinkRaw || recs[0].Interface != uint32(id) || !bytes.Equal(recs[0].Data, data) {
		t.Errorf("%+v, %v", recs, err)
	}
}

func TestPcapngBadBlocks(t *testing.T) {
	eth := mustHex(t, hexEthIPv4TCPSyn)
	head := (&ngBuilder{order: binary.LittleEndian}).shb(1).idb(1, 0).epb(0, 1, 0, eth).bytes()
	second := int64(len(head))
	withBlock := func(typ, length uint32, body []byte) []byte {
		b := append([]byte{}, head...)
		b = binary.LittleEndian.AppendUint32(b, typ)
		b = binary.LittleEndian.AppendUint32(b, length)
		return append(b, body...)
	}
	epbClaiming := func(capLen uint32) []byte {
		b := (&ngBuilder{order: binary.LittleEndian}).epb(0, 1, 0, eth).bytes()
		binary.LittleEndian.PutUint32(b[20:], capLen)
		return append(append([]byte{}, head...), b...)
	}
	trailerMismatch := append([]byte{}, head...)
	binary.LittleEndian.PutUint32(trailerMismatch[len(head)-4:], 999)
	badVersion := (&ngBuilder{order: binary.BigEndian}).shb(2).bytes()
	for _, tc := range []struct {
		name   string
		file   []byte
		record int
		want   string
	}{
		{"length 8", withBlock(blockEPB, 8, make([]byte, 8)), 2, "block type 0x6 has length 8: not a multiple of 4 of at least 12"},
		{"length 14", withBlock(blockEPB, 14, make([]byte, 8)), 2, "block type 0x6 has length 14"},
		{"length 2 GB", withBlock(blockEPB, 0x7ffffffc, make([]byte, 8)), 2, "block type 0x6 claims 2147483644 bytes, more than the 16777216 a block can have"},
		{"skipped block 2 GB", withBlock(0xbad, 0x7ffffffc, make([]byte, 8)), 2, "block type 0xbad claims 2147483644 bytes"},
		{"trailer mismatch", trailerMismatch, 1, "trailing length 999 differs from leading length"},
		{"skipped block trailer mismatch", withBlock(0xbad, 16, make([]byte, 8)), 2, "trailing length 0 differs from leading length 16"},
		{"skipped block cut", withBlock(0xbad, 64, make([]byte, 8)), 2, "truncated in the middle of a record (16 of 64 bytes)"},
		{"epb cut", withBlock(blockEPB, 64, make([]byte, 8)), 2, "truncated in the middle of a record (16 of 64 bytes)"},
		{"epb capture length beyond block", epbClaiming(0xfffffff0), 2, "record claims 4294967280 bytes, but its block holds 60"},
		{"epb of undefined interface", append(append([]byte{}, head...), (&ngBuilder{order: binary.LittleEndian}).epb(3, 1, 0, eth).bytes()...), 2, "packet names interface 3, but its section defines 1"},
		{"spb without interface", (&ngBuilder{order: binary.LittleEndian}).shb(1).spb(60, eth).bytes(), 1, "simple packet block before any interface"},
		{"shb version 2", badVersion, 1, "pcapng version 2.0 not supported"},
		{"bad byte-order magic", append([]byte{0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0}, make([]byte, 20)...), 1, "byte-order magic 00000000"},
		{"idb option overrun", (&ngBuilder{order: binary.LittleEndian}).shb(1).idb(1, 0, []byte{9, 0, 200, 0}).bytes(), 1, "option 9 of 200 bytes overruns its block"},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r, err := NewReader(bytes.NewReader(tc.file), "bad.pcapng")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		recs, err := readAll(t, r)
		runtime.ReadMemStats(&after)
		var re *ReadError
		if !errors.As(err, &re) || re.Record != tc.record || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want record %d and %q", tc.name, err, tc.record, tc.want)
			continue
		}
		if len(recs) != tc.record-1 {
			t.Errorf("%s: %d records before the error, want %d", tc.name, len(recs), tc.record-1)
		}
		if tc.record == 2 && re.Offset != second {
			t.Errorf("%s: error at byte %d, want %d", tc.name, re.Offset, second)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
			t.Errorf("%s: reading allocated %d bytes", tc.name, grew)
		}
	}
}

func TestPcapngResolutions(t *testing.T) {
	for _, tc := range []struct {
		resol uint8
		ticks uint64
		want  int64
	}{
		{6, 1_500000, 1_500000000},
		{9, 7, 7},
		{12, 1_000000000_123, 1_000000000},
		{0, 3, 3_000000000},
		{0x80, 3, 3_000000000},
		{0x80 | 1, 3, 1_500000000},
		{0x80 | 30, 1 << 30, 1_000000000},
		{0x80 | 100, 1 << 62, 0},
		{100, 1 << 62, 0},
		// Past 2^62 ns (2116), or a product that overflows: bounded, so
		// that the flow table may add any timeout to a packet time.
		{9, 1<<63 + 5, maxTimestamp},
		{0, 1 << 62, maxTimestamp},
		{0x80 | 1, 1<<64 - 1, maxTimestamp},
	} {
		ifc := ngInterface{}
		ifc.setResolution(tc.resol)
		if got := ifc.nanoseconds(tc.ticks); got != tc.want {
			t.Errorf("if_tsresol %#x: %d ticks = %d ns, want %d", tc.resol, tc.ticks, got, tc.want)
		}
	}
	// An if_tsoffset that takes a time before 1970 or past the bound.
	for _, tc := range []struct {
		offset int64
		want   int64
	}{
		{-100, 0},
		{1 << 62, 4611686018_000000007}, // the bound of offsets, in whole seconds
		{-(1 << 62), 0},
	} {
		ifc := ngInterface{offsetNs: offsetNs(tc.offset)}
		ifc.setResolution(9)
		if got := ifc.nanoseconds(7); got != tc.want {
			t.Errorf("if_tsoffset %d s: %d ns, want %d", tc.offset, got, tc.want)
		}
	}
}

func TestPcapngReadDecodeAllocatesNothing(t *testing.T) {
	frame := mustHex(t, hexEthVLANIPv6TCPSynAck)
	w := (&ngBuilder{order: binary.BigEndian}).shb(1).idb(1, 0, (&ngBuilder{order: binary.BigEndian}).option(optIfTSResol, []byte{9}))
	for i := range 5000 {
		w.epb(0, uint64(i), 0, frame)
		if i%100 == 0 {
			w.block(0xbad, []byte("skipped"))
		}
	}
	r, err := newReader(bytes.NewReader(w.bytes()), "x", nil, 4096)
	if err != nil {
		t.Fatal(err)
	}
	assertReadDecodeAllocatesNothing(t, r)
}

func TestReadErrorUnwrap(t *testing.T) {
	err := error(&ReadError{File: "f", Record: 1, Offset: 24, Err: io.ErrUnexpectedEOF})
	if !errors.Is(err, io.ErrUnexpectedEOF) || err.Error() != "f: record 1 at byte 24: unexpected EOF" {
		t.Errorf("%v", err)
	}
}
