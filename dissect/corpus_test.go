package dissect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/internal/testenv"
)

// corpusFrame is the transport payload of one frame of the shared corpus,
// as corpus_frames_test.go holds it.
type corpusFrame struct {
	file             string // under shared/corpus
	frame            int    // 1-based, as tshark numbers frames
	transport        Transport
	srcPort, dstPort uint16
	seq              uint32 // the raw TCP sequence number
	payloadLen       int
	payload          []byte // the first bytes (all of them when len == payloadLen)
}

// from says which side of a connection to 135 sent the frame.
func (f *corpusFrame) from() Side {
	if f.dstPort == 135 {
		return SideClient
	}
	return SideServer
}

// corpusPacket is one TCP or UDP packet of a corpus capture.
type corpusPacket struct {
	frame            int
	ts               int64
	transport        Transport
	src, dst         netip.Addr
	srcPort, dstPort uint16
	seq              uint32
	tcpFlags         uint8
	// payload is the captured payload, valid during the callback only;
	// payloadLen its length by the headers.
	payload    []byte
	payloadLen int
	// link, frameData (valid during the callback only) and wireLen are
	// the whole frame, to write it again.
	link      capture.LinkType
	frameData []byte
	wireLen   uint32
}

// eachCorpusPacket calls fn for every TCP and UDP packet of a capture
// that tpwatch's decoder reads (not fragments), until fn returns false.
// The headers come from capture.Decode, the payload bytes from gopacket.
// A capture that ends in error (the corpus has truncated ones on purpose)
// yields the packets before it.
func eachCorpusPacket(t testing.TB, path string, fn func(p *corpusPacket) bool) {
	t.Helper()
	r, err := capture.OpenFile(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer r.Close()
	var rec capture.Record
	var hdr capture.Packet
	for frame := 1; ; frame++ {
		if err := r.Next(&rec); err != nil {
			var re *capture.ReadError
			if !errors.Is(err, io.EOF) && !errors.As(err, &re) {
				t.Fatalf("%s: %v", path, err)
			}
			return
		}
		hdr = capture.Packet{}
		if capture.Decode(rec.Link, rec.Data, &hdr) != capture.StatusOK || hdr.Fragment ||
			(hdr.Proto != capture.ProtoTCP && hdr.Proto != capture.ProtoUDP) {
			continue
		}
		p := corpusPacket{
			frame: frame, ts: rec.TS, transport: Transport(hdr.Proto),
			src: netip.AddrFrom16(hdr.Src).Unmap(), dst: netip.AddrFrom16(hdr.Dst).Unmap(),
			srcPort: hdr.SrcPort, dstPort: hdr.DstPort, tcpFlags: hdr.TCPFlags,
			payloadLen: int(hdr.PayloadLen),
			link:       rec.Link, frameData: rec.Data, wireLen: rec.WireLen,
		}
		if !gopacketPayload(rec.Link, rec.Data, &p) {
			continue
		}
		if !fn(&p) {
			return
		}
	}
}

// gopacketPayload finds the TCP or UDP payload (and sequence number) of a
// frame that capture.Decode read.
func gopacketPayload(link capture.LinkType, data []byte, p *corpusPacket) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false // gopacket 1.1.19 panics on a few malformed frames
		}
	}()
	var first gopacket.Decoder
	switch link {
	case capture.LinkEthernet:
		first = layers.LayerTypeEthernet
	case capture.LinkLinuxSLL:
		first = layers.LayerTypeLinuxSLL
	case capture.LinkLinuxSLL2:
		if len(data) < 20 {
			return false
		}
		first, data = layers.EthernetType(uint16(data[0])<<8|uint16(data[1])), data[20:]
	case capture.LinkRaw:
		first = layers.LinkTypeRaw
	case capture.LinkIPv4:
		first = layers.LayerTypeIPv4
	case capture.LinkIPv6:
		first = layers.LayerTypeIPv6
	case capture.LinkNull, capture.LinkLoop:
		first = layers.LayerTypeLoopback
	default:
		return false
	}
	pkt := gopacket.NewPacket(data, first, gopacket.DecodeOptions{NoCopy: true, Lazy: true})
	switch l := pkt.TransportLayer().(type) {
	case *layers.TCP:
		if p.transport != TCP {
			return false
		}
		p.seq = l.Seq
		p.payload = l.LayerPayload()
	case *layers.UDP:
		if p.transport != UDP {
			return false
		}
		p.payload = l.LayerPayload()
	default:
		return false
	}
	if len(p.payload) > p.payloadLen {
		p.payload = p.payload[:p.payloadLen]
	}
	return true
}

// TestCorpusFrames checks the bytes of corpus_frames_test.go against the
// corpus, read with tpwatch's own reader: the table tests run without the
// corpus, and this test proves they run on real frames.
func TestCorpusFrames(t *testing.T) {
	dir := testenv.Corpus(t)
	byFile := map[string][]string{}
	for name, f := range corpusFrames {
		byFile[f.file] = append(byFile[f.file], name)
	}
	files := make([]string, 0, len(byFile))
	for file := range byFile {
		files = append(files, file)
	}
	sort.Strings(files)
	for _, file := range files {
		want := map[int]string{}
		for _, name := range byFile[file] {
			want[corpusFrames[name].frame] = name
		}
		eachCorpusPacket(t, filepath.Join(dir, file), func(p *corpusPacket) bool {
			name, ok := want[p.frame]
			if !ok {
				return true
			}
			delete(want, p.frame)
			if err := corpusFrames[name].matches(p); err != nil {
				t.Errorf("%s (%s frame %d): %v", name, file, p.frame, err)
			}
			return len(want) > 0
		})
		for frame, name := range want {
			t.Errorf("%s: %s has no TCP or UDP frame %d", name, file, frame)
		}
	}
}

func (f *corpusFrame) matches(p *corpusPacket) error {
	switch {
	case p.transport != f.transport:
		return fmt.Errorf("transport %v, want %v", p.transport, f.transport)
	case p.srcPort != f.srcPort || p.dstPort != f.dstPort:
		return fmt.Errorf("ports %d → %d, want %d → %d", p.srcPort, p.dstPort, f.srcPort, f.dstPort)
	case f.transport == TCP && p.seq != f.seq:
		return fmt.Errorf("seq %d, want %d", p.seq, f.seq)
	case p.payloadLen != f.payloadLen:
		return fmt.Errorf("payload length %d, want %d", p.payloadLen, f.payloadLen)
	case len(p.payload) < len(f.payload) || !bytes.Equal(p.payload[:len(f.payload)], f.payload):
		return fmt.Errorf("payload differs from the bytes held here")
	}
	return nil
}
