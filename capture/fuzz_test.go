package capture

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tpwatch/tpwatch/internal/testenv"
)

func FuzzDecode(f *testing.F) {
	for _, tt := range decodeTests {
		f.Add(uint32(tt.link), mustHex(f, tt.hex))
	}
	for _, tt := range tunnelDecodeTests {
		f.Add(uint32(tt.link), tt.frame)
	}
	addCorpusPackets(f)
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
		if _, why := flow4Disagreement(LinkType(link), data); why != "" {
			t.Fatal(why)
		}
		// The payload inspection reads data[PayloadOff:]: right behind
		// the transport header of the packet reported, however deep.
		if why := transportBefore(data, &p); why != "" {
			t.Fatalf("PayloadOff %d: %s: %+v", p.PayloadOff, why, p)
		}
		checkTunnelLayers(t, LinkType(link), data, st, &p)
	})
}

// checkTunnelLayers checks what Decode made of a packet against
// DecodeTunnels: no more than MaxTunnels tunnels, and none unless the
// packet decoded; as the limit grows, IP packets no deeper than the limit
// and deeper each time (an MPLS label stack, NSH or MACsec is no IP packet
// of its own, so a limit that stops there gives the packet outside it, or
// a frame without IP); with MaxTunnels, what Decode gives.
func checkTunnelLayers(t *testing.T, link LinkType, data []byte, st Status, p *Packet) {
	t.Helper()
	if p.Tunnels > MaxTunnels || st != StatusOK && p.Tunnels != 0 {
		t.Fatalf("status %v with %d tunnels", st, p.Tunnels)
	}
	var layer Packet
	deepest, seenIP := 0, false
	for limit := 0; limit < int(p.Tunnels); limit++ {
		lst := DecodeTunnels(link, data, &layer, limit)
		switch {
		case lst == StatusNotIP && !seenIP:
		case lst != StatusOK || int(layer.Tunnels) > limit || int(layer.Tunnels) < deepest:
			t.Fatalf("limit %d (of %d tunnels): %v, %d tunnels", limit, p.Tunnels, lst, layer.Tunnels)
		default:
			deepest, seenIP = int(layer.Tunnels), true
		}
	}
	if lst := DecodeTunnels(link, data, &layer, MaxTunnels); lst != st || layer != *p {
		t.Fatalf("DecodeTunnels with MaxTunnels: %v %+v, Decode: %v %+v", lst, layer, st, *p)
	}
}

// Seeds from the shared corpus: every capture up to corpusSeedMaxBytes
// seeds the reader it is for, and the first corpusSeedPackets packets of
// each seed FuzzDecode, so the fuzzer starts from real, and deliberately
// malformed, captures of every link type the corpus has.
const (
	corpusSeedMaxBytes = 64 << 10
	corpusSeedPackets  = 4
)

// corpusSeed is one small corpus capture, read whole.
type corpusSeed struct {
	path   string
	pcapng bool
	data   []byte
}

// corpusSeeds returns the corpus captures of at most corpusSeedMaxBytes.
// The file's magic says whether it is pcap or pcapng; for a file whose
// first bytes are neither (corrupt on purpose) the MANIFEST format column
// does. Without the corpus it returns nothing (fuzzing works without it),
// except under CI, where the corpus must be there.
func corpusSeeds(f *testing.F) []corpusSeed {
	f.Helper()
	shared, err := testenv.SharedDir()
	corpus := filepath.Join(shared, "corpus")
	if err == nil {
		_, err = os.Stat(filepath.Join(corpus, "MANIFEST.tsv"))
	}
	if err != nil {
		if testenv.CI() {
			testenv.Missing(f, "../shared/corpus", err)
		}
		return nil
	}
	var seeds []corpusSeed
	for _, e := range readManifest(f, corpus) {
		path := filepath.Join(corpus, e.path)
		if fi, err := os.Stat(path); err != nil || fi.Size() > corpusSeedMaxBytes {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatalf("read corpus seed: %v", err)
		}
		seed := corpusSeed{path: e.path, data: data, pcapng: strings.HasPrefix(e.format, "pcapng")}
		if len(data) >= 4 {
			switch {
			case binary.LittleEndian.Uint32(data) == blockSHB:
				seed.pcapng = true
			case isPcapMagic(data):
				seed.pcapng = false
			}
		}
		seeds = append(seeds, seed)
	}
	if len(seeds) == 0 {
		f.Fatalf("no corpus capture of %d bytes or less in %s", corpusSeedMaxBytes, corpus)
	}
	return seeds
}

// addCorpusSeeds adds the corpus captures of one format to a reader's
// fuzz target.
func addCorpusSeeds(f *testing.F, pcapng bool) {
	for _, s := range corpusSeeds(f) {
		if s.pcapng == pcapng {
			f.Add(s.data)
		}
	}
}

// addCorpusPackets adds the first packets of every small corpus capture,
// as the package's reader gives them, to FuzzDecode.
func addCorpusPackets(f *testing.F) {
	for _, s := range corpusSeeds(f) {
		r, err := NewReader(bytes.NewReader(s.data), s.path)
		if err != nil {
			continue
		}
		var rec Record
		for range corpusSeedPackets {
			if r.Next(&rec) != nil {
				break
			}
			// Data points into the reader's buffer: the seed keeps a copy.
			f.Add(uint32(rec.Link), bytes.Clone(rec.Data))
		}
		r.Close()
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
	addCorpusSeeds(f, false)
	f.Fuzz(fuzzRead)
}

func FuzzPcapngReader(f *testing.F) {
	eth, raw := mustHex(f, hexEthVLANIPv6TCPSynAck), mustHex(f, hexIPv6UDP)
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		w := &ngBuilder{order: order}
		f.Add(w.shb(1).idb(1, 0).idb(101, 64, w.option(optIfTSResol, []byte{0x80 | 20})).
			epb(0, 1, 0, eth).block(0xbad, []byte("x")).epb(1, 2, 1500, raw).spb(uint32(len(eth)), eth).bytes())
	}
	addCorpusSeeds(f, true)
	f.Fuzz(fuzzRead)
}
