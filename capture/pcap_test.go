package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// readAll reads every record of a capture, copying the data.
func readAll(t testing.TB, r Reader) ([]Record, error) {
	t.Helper()
	var recs []Record
	for {
		var rec Record
		err := r.Next(&rec)
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return recs, err
		}
		if int(rec.CapLen) != len(rec.Data) {
			t.Fatalf("record %d: CapLen %d but %d bytes", len(recs)+1, rec.CapLen, len(rec.Data))
		}
		rec.Data = append([]byte(nil), rec.Data...)
		recs = append(recs, rec)
	}
}

func TestPcapMagicsAndByteOrders(t *testing.T) {
	syn, udp := mustHex(t, hexEthIPv4TCPSyn), mustHex(t, hexEthQinQIPv4UDP)
	for _, tc := range []struct {
		name  string
		order binary.ByteOrder
		magic uint32
		frac  uint32 // 250 ms in the file's unit
	}{
		{"little-endian microseconds", binary.LittleEndian, pcapMagicMicro, 250000},
		{"big-endian microseconds", binary.BigEndian, pcapMagicMicro, 250000},
		{"little-endian nanoseconds", binary.LittleEndian, pcapMagicNano, 250000000},
		{"big-endian nanoseconds", binary.BigEndian, pcapMagicNano, 250000000},
		{"little-endian modified (24-byte records)", binary.LittleEndian, pcapMagicModified, 250000},
		{"big-endian modified (24-byte records)", binary.BigEndian, pcapMagicModified, 250000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := buildPcap(tc.order, tc.magic, 1, 65535, []testRecord{
				{sec: 1700000000, frac: tc.frac, data: syn},
				{sec: 1700000001, wireLen: 1514, data: udp},
			})
			r, err := NewReader(bytes.NewReader(file), "test.pcap")
			if err != nil {
				t.Fatal(err)
			}
			recs, err := readAll(t, r)
			if err != nil {
				t.Fatal(err)
			}
			want := []Record{
				{TS: 1700000000_250000000, CapLen: uint32(len(syn)), WireLen: uint32(len(syn)), Link: LinkEthernet, Data: syn},
				{TS: 1700000001_000000000, CapLen: uint32(len(udp)), WireLen: 1514, Link: LinkEthernet, Data: udp},
			}
			if len(recs) != len(want) {
				t.Fatalf("read %d records, want %d", len(recs), len(want))
			}
			for i := range want {
				if fmt.Sprint(recs[i]) != fmt.Sprint(want[i]) {
					t.Errorf("record %d = %+v, want %+v", i+1, recs[i], want[i])
				}
			}
			var rec Record
			if err := r.Next(&rec); err != io.EOF {
				t.Errorf("Next after the end = %v, want io.EOF", err)
			}
		})
	}
}

// TestPcapWrittenByGopacket reads what another implementation wrote.
func TestPcapWrittenByGopacket(t *testing.T) {
	for _, nanos := range []bool{false, true} {
		var buf bytes.Buffer
		var w *pcapgo.Writer
		if nanos {
			w = pcapgo.NewWriterNanos(&buf)
		} else {
			w = pcapgo.NewWriter(&buf)
		}
		if err := w.WriteFileHeader(65535, layers.LinkTypeLinuxSLL); err != nil {
			t.Fatal(err)
		}
		data := mustHex(t, hexSLLIPv4+hexIPv4UDP)
		ts := time.Unix(1700000000, 123456789)
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(data), Length: len(data)}, data); err != nil {
			t.Fatal(err)
		}
		r, err := NewReader(&buf, "gopacket.pcap")
		if err != nil {
			t.Fatal(err)
		}
		recs, err := readAll(t, r)
		if err != nil || len(recs) != 1 {
			t.Fatalf("nanos=%v: %d records, %v", nanos, len(recs), err)
		}
		wantTS := ts.UnixNano()
		if !nanos {
			wantTS = ts.Truncate(time.Microsecond).UnixNano()
		}
		if recs[0].TS != wantTS || recs[0].Link != LinkLinuxSLL || !bytes.Equal(recs[0].Data, data) {
			t.Errorf("nanos=%v: got %+v", nanos, recs[0])
		}
	}
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func gzipped(t testing.TB, data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestOpenFileGzip(t *testing.T) {
	syn := mustHex(t, hexEthIPv4TCPSyn)
	pcap := buildPcap(binary.BigEndian, pcapMagicNano, 1, 65535, []testRecord{{sec: 1, data: syn}, {sec: 2, data: syn}})
	ng := (&ngBuilder{order: binary.LittleEndian}).shb(1).idb(1, 0).epb(0, 5, 0, syn).bytes()
	for name, data := range map[string][]byte{"x.pcap.gz": gzipped(t, pcap), "x.pcapng.gz": gzipped(t, ng)} {
		r, err := OpenFile(writeTemp(t, name, data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		recs, err := readAll(t, r)
		if err != nil || len(recs) == 0 || !bytes.Equal(recs[0].Data, syn) {
			t.Errorf("%s: %d records, %v", name, len(recs), err)
		}
		if err := r.Close(); err != nil {
			t.Errorf("%s: Close: %v", name, err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	le := binary.LittleEndian
	badVersion := buildPcap(le, pcapMagicMicro, 1, 65535, nil)
	le.PutUint16(badVersion[4:], 3)
	for _, tc := range []struct {
		name, data, want string
	}{
		{"empty", "", "x: empty file, not a capture"},
		{"unknown magic", "GIF89a....", "x: not a pcap, pcapng or gzip file (starts with 47494638)"},
		{"short", "\xd4\xc3", "x: capture header: truncated in the middle of a record (2 of 4 bytes)"},
		{"pcap header cut", string(buildPcap(le, pcapMagicMicro, 1, 65535, nil)[:20]), "x: pcap file header: truncated"},
		{"pcap version 3", string(badVersion), "x: pcap version 3.4 not supported (want 2.x)"},
		{"reserved link bits", string(buildPcap(le, pcapMagicMicro, 0x00300000, 65535, nil)), "x: pcap link type field 0x00300000 has reserved bits set"},
		{"bad gzip", "\x1f\x8b\x08\x00garbage", "x: gzip"},
		{"gzip of garbage", string(gzipped(t, []byte("hello, world"))), "x: not a pcap, pcapng or gzip file (starts with 68656c6c)"},
	} {
		_, err := NewReader(strings.NewReader(tc.data), "x")
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := OpenFile(filepath.Join(t.TempDir(), "missing.pcap")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want os.ErrNotExist", err)
	}
}

func TestPcapLinkTypeField(t *testing.T) {
	ip := mustHex(t, hexIPv4UDP)
	for _, tc := range []struct {
		field uint32
		want  LinkType
	}{
		{1 | 0x04000000 | 2<<28, LinkEthernet}, // FCS length 2 (4 bytes) present
		{12, LinkRaw},
		{14, LinkRaw},
		{101, LinkRaw},
		{127, LinkType(127)},
	} {
		r, err := NewReader(bytes.NewReader(buildPcap(binary.LittleEndian, pcapMagicMicro, tc.field, 65535, []testRecord{{data: ip}})), "x")
		if err != nil {
			t.Fatalf("field %#x: %v", tc.field, err)
		}
		var rec Record
		if err := r.Next(&rec); err != nil || rec.Link != tc.want {
			t.Errorf("field %#x: link %v (%v), want %v", tc.field, rec.Link, err, tc.want)
		}
	}
}

func TestPcapCapLenAboveWireLen(t *testing.T) {
	data := mustHex(t, hexEthIPv4TCPSyn)
	file := buildPcap(binary.LittleEndian, pcapMagicMicro, 1, 65535, []testRecord{{wireLen: 20, data: data}})
	r, _ := NewReader(bytes.NewReader(file), "x")
	var rec Record
	if err := r.Next(&rec); err != nil || rec.WireLen != rec.CapLen || rec.CapLen != uint32(len(data)) {
		t.Errorf("got %+v, %v; want WireLen raised to CapLen %d", rec, err, len(data))
	}
}

func TestPcapHugeRecordClaim(t *testing.T) {
	data := mustHex(t, hexEthIPv4TCPSyn)
	for _, tc := range []struct {
		name    string
		snaplen uint32
		claim   uint32
		want    string
	}{
		{"4 MiB with snaplen 65535", 65535, 4325376, "capture.pcap: record 2 at byte 100: record claims 4325376 bytes, more than the 262144 a packet can have"},
		{"4 GB with snaplen 4 GB", 0xffffffff, 0xfffffff0, "capture.pcap: record 2 at byte 100: record claims 4294967280 bytes, more than the 16777216 a packet can have"},
	} {
		file := buildPcap(binary.LittleEndian, pcapMagicMicro, 1, tc.snaplen, []testRecord{{data: data}, {data: data}})
		binary.LittleEndian.PutUint32(file[24+16+len(data)+8:], tc.claim)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r, _ := NewReader(bytes.NewReader(file), "capture.pcap")
		recs, err := readAll(t, r)
		runtime.ReadMemStats(&after)
		if len(recs) != 1 {
			t.Errorf("%s: %d records before the error, want 1", tc.name, len(recs))
		}
		var re *ReadError
		if !errors.As(err, &re) || err.Error() != tc.want {
			t.Errorf("%s: error %v\nwant %s", tc.name, err, tc.want)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
			t.Errorf("%s: reading allocated %d bytes", tc.name, grew)
		}
	}
}

// A record length that only the snap length allows, larger than the
// initial buffer, must grow the buffer, and only that far.
func TestPcapRecordLargerThanBuffer(t *testing.T) {
	big := bytes.Repeat([]byte{0xab}, 5000)
	file := buildPcap(binary.LittleEndian, pcapMagicMicro, 1, 65535, []testRecord{{data: big}, {data: big[:10]}, {data: big}})
	for _, src := range []io.Reader{bytes.NewReader(file), iotest.OneByteReader(bytes.NewReader(file)), iotest.DataErrReader(bytes.NewReader(file))} {
		r, err := newReader(src, "x", nil, 64)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := readAll(t, r)
		if err != nil || len(recs) != 3 || !bytes.Equal(recs[2].Data, big) {
			t.Fatalf("%d records, %v", len(recs), err)
		}
		if n := len(r.(*pcapReader).s.buf); n > 2*len(big) {
			t.Errorf("buffer grew to %d bytes for %d-byte records", n, len(big))
		}
	}
}

func TestPcapCutMidRecord(t *testing.T) {
	syn := mustHex(t, hexEthIPv4TCPSyn)
	file := buildPcap(binary.LittleEndian, pcapMagicMicro, 1, 65535, []testRecord{{data: syn}, {data: syn}, {data: syn}})
	third := int64(24 + 2*(16+len(syn)))
	for _, tc := range []struct {
		cut  int64
		want string
	}{
		{third + 16 + 12, fmt.Sprintf("cut.pcap: record 3 at byte %d: truncated in the middle of a record (28 of %d bytes)", third, 16+len(syn))},
		{third + 5, fmt.Sprintf("cut.pcap: record 3 at byte %d: truncated in the middle of a record (5 of 16 bytes)", third)},
	} {
		r, _ := NewReader(bytes.NewReader(file[:tc.cut]), "cut.pcap")
		recs, err := readAll(t, r)
		if len(recs) != 2 {
			t.Errorf("cut at %d: %d records before the error, want 2", tc.cut, len(recs))
		}
		var re *ReadError
		if !errors.As(err, &re) || re.Record != 3 || re.Offset != third || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut at %d: error %#v", tc.cut, err)
		}
		if err.Error() != tc.want {
			t.Errorf("cut at %d: error %q\nwant %q", tc.cut, err, tc.want)
		}
		var rec Record
		if again := r.Next(&rec); again != err {
			t.Errorf("Next after an error = %v, want the same error", again)
		}
	}
}

// manyRecords builds a capture of n copies of frame.
func manyRecords(frame []byte, n int) []testRecord {
	recs := make([]testRecord, n)
	for i := range recs {
		recs[i] = testRecord{sec: uint32(i), data: frame}
	}
	return recs
}

func assertReadDecodeAllocatesNothing(t *testing.T, r Reader) {
	t.Helper()
	var rec Record
	var p Packet
	step := func() {
		if err := r.Next(&rec); err != nil {
			t.Fatal(err)
		}
		p.TS, p.WireLen = rec.TS, rec.WireLen
		Decode(rec.Link, rec.Data, &p)
	}
	for range 10 {
		step()
	}
	if allocs := testing.AllocsPerRun(2000, step); allocs != 0 {
		t.Errorf("Next+Decode allocates %.2f times per packet, want 0", allocs)
	}
}

func TestPcapReadDecodeAllocatesNothing(t *testing.T) {
	file := buildPcap(binary.LittleEndian, pcapMagicNano, 1, 65535, manyRecords(mustHex(t, hexEthIPv4TCPPush), 5000))
	r, err := newReader(bytes.NewReader(file), "x", nil, 4096) // small buffer: compaction runs too
	if err != nil {
		t.Fatal(err)
	}
	assertReadDecodeAllocatesNothing(t, r)
}

func TestOpenFileDirectory(t *testing.T) {
	dir := t.TempDir()
	_, err := OpenFile(dir)
	if err == nil || err.Error() != dir+": is a directory, not a capture file" {
		t.Errorf("OpenFile(directory) = %v", err)
	}
}
