package capture

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func FuzzDecode(f *testing.F) {
	for _, tt := range decodeTests {
		f.Add(uint32(tt.link), mustHex(f, tt.hex))
	}
	f.Fuzz(func(t *testing.T, link uint32, data []byte) {
		var p Packet
		st := Decode(LinkType(link), data, &p)
		if st < StatusOK || st > StatusUnsupportedLink {
			t.Fatalf("status %d out of range", st)
		}
		if st != StatusOK && st != StatusNotIP && p != (Packet{}) {
			t.Fatalf("status %v with fields set: %+v", st, p)
		}
		if st == StatusOK && p.IPVersion != 4 && p.IPVersion != 6 {
			t.Fatalf("ok without an IP version: %+v", p)
		}
	})
}

// corpusSeeds adds a few small corpus captures of the given kind, when the
// corpus is there (fuzzing works without it).
func corpusSeeds(f *testing.F, names ...string) {
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join("..", "..", "shared", "corpus", name))
		if err == nil {
			f.Add(b)
		}
	}
}

// fuzzRead reads a whole capture with a small buffer, so that growth and
// compaction run too, and checks the memory it took.
func fuzzRead(t *testing.T, data []byte) {
	r, err := newReader(bytes.NewReader(data), "fuzz", nil, 512)
	if err != nil {
		return
	}
	var rec Record
	var p Packet
	for range 100000 {
		err := r.Next(&rec)
		if err != nil {
			if err != io.EOF {
				if _, ok := err.(*ReadError); !ok {
					t.Fatalf("error %T is not a *ReadError: %v", err, err)
				}
			}
			break
		}
		if int(rec.CapLen) != len(rec.Data) || rec.WireLen < rec.CapLen {
			t.Fatalf("record lengths: caplen %d, wirelen %d, %d bytes", rec.CapLen, rec.WireLen, len(rec.Data))
		}
		Decode(rec.Link, rec.Data, &p)
	}
	var buf []byte
	switch rd := r.(type) {
	case *pcapReader:
		buf = rd.s.buf
	case *pcapngReader:
		buf = rd.s.buf
	}
	if len(buf) > 2*len(data)+1024 {
		t.Fatalf("buffer grew to %d bytes for a %d-byte input", len(buf), len(data))
	}
}

func FuzzPcapReader(f *testing.F) {
	syn, udp := mustHex(f, hexEthIPv4TCPSyn), mustHex(f, hexIPv4UDP)
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		for _, magic := range []uint32{pcapMagicMicro, pcapMagicNano, pcapMagicModified} {
			f.Add(buildPcap(order, magic, 1, 65535, []testRecord{{sec: 1, data: syn}, {sec: 2, wireLen: 1500, data: syn}}))
		}
	}
	f.Add(buildPcap(binary.LittleEndian, pcapMagicMicro, 101, 96, []testRecord{{data: udp}}))
	corpusSeeds(f, "tcpdump/02-sunrise-sunset-esp.pcap", "protocols/libpcap/pcap-invalid-version-2.pcap",
		"protocols/suricata-verify/bug-6875-01/fuzz.pcap")
	f.Fuzz(fuzzRead)
}

func FuzzPcapngReader(f *testing.F) {
	eth, raw := mustHex(f, hexEthVLANIPv6TCPSynAck), mustHex(f, hexIPv6UDP)
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		w := &ngBuilder{order: order}
		f.Add(w.shb(1).idb(1, 0).idb(101, 64, w.option(optIfTSResol, []byte{0x80 | 20})).
			epb(0, 1, 0, eth).block(0xbad, []byte("x")).epb(1, 2, 1500, raw).spb(uint32(len(eth)), eth).bytes())
	}
	corpusSeeds(f, "protocols/gopacket/pcapgo/tests/le/test002.pcapng", "protocols/gopacket/pcapgo/tests/be/test010.pcapng",
		"protocols/libpcap/shb-option-too-long.pcapng")
	f.Fuzz(fuzzRead)
}
