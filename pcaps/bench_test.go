package pcaps

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

func TestWriteBenchReadsBack(t *testing.T) {
	const packets, flows, live = 20000, 1000, 500
	var buf bytes.Buffer
	if err := WriteBench(&buf, BenchSpec{Packets: packets, Flows: flows, Live: live, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	// Little-endian microsecond magic (gopacket 1.1.19's Reader.Resolution
	// has micro and nano swapped, so read the magic itself).
	if !bytes.HasPrefix(buf.Bytes(), []byte{0xd4, 0xc3, 0xb2, 0xa1}) {
		t.Fatalf("magic % x, want little-endian microseconds", buf.Bytes()[:4])
	}
	r, err := pcapgo.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("link type %v", r.LinkType())
	}
	type span struct {
		first, last             int
		syn, synAck, rst, other int
		udp                     bool
	}
	spans := map[tupleKey]*span{}
	var prev int64
	small, n := 0, 0
	for ; ; n++ {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("packet %d: %v", n, err)
		}
		if ts := ci.Timestamp.UnixNano(); ts < prev {
			t.Fatalf("packet %d goes back in time", n)
		} else {
			prev = ts
		}
		if len(data) <= 200 {
			small++
		}
		pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.NoCopy)
		ip, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if !ok || pkt.TransportLayer() == nil {
			t.Fatalf("packet %d: no IPv4 and transport: %v", n, pkt)
		}
		if internetSum(ip.Contents, 0) != 0xffff || int(ip.Length) != len(data)-14 {
			t.Fatalf("packet %d: bad IPv4 checksum or length", n)
		}
		src, _ := netip.AddrFromSlice(ip.SrcIP.To4())
		dst, _ := netip.AddrFromSlice(ip.DstIP.To4())
		var k tupleKey
		s := &span{first: n}
		switch l := pkt.TransportLayer().(type) {
		case *layers.TCP:
			k = keyOf("tcp", netip.AddrPortFrom(src, uint16(l.SrcPort)), netip.AddrPortFrom(dst, uint16(l.DstPort)))
			if old := spans[k]; old != nil {
				s = old
			}
			switch {
			case l.SYN && !l.ACK:
				s.syn++
			case l.SYN:
				s.synAck++
			case l.RST:
				s.rst++
			default:
				s.other++
			}
		case *layers.UDP:
			k = keyOf("udp", netip.AddrPortFrom(src, uint16(l.SrcPort)), netip.AddrPortFrom(dst, uint16(l.DstPort)))
			if old := spans[k]; old != nil {
				s = old
			}
			s.udp = true
		}
		s.last = n
		spans[k] = s
	}
	if n != packets {
		t.Fatalf("read %d packets, wrote %d", n, packets)
	}
	if small < packets*8/10 {
		t.Errorf("only %d of %d packets are 200 bytes or less", small, packets)
	}
	var sessions, udp, failed, liveAtMiddle int
	for k, s := range spans {
		switch {
		case s.udp:
			udp++
		case s.synAck > 0:
			sessions++
		case s.syn > 0:
			failed++
		}
		// A 5-tuple is used once: several SYNs only as retransmissions
		// with nothing else in the flow.
		if s.syn > 1 && s.synAck+s.rst+s.other > 0 {
			t.Errorf("5-tuple %v reused: %+v", k, *s)
		}
		if s.first < packets/2 && s.last > packets/2 {
			liveAtMiddle++
		}
	}
	total := len(spans)
	if sessions < total*6/10 || udp < total/20 || failed == 0 || failed > total/10 {
		t.Errorf("%d flows: %d TCP sessions, %d UDP, %d failed attempts", total, sessions, udp, failed)
	}
	if liveAtMiddle < live/2 || liveAtMiddle > live {
		t.Errorf("%d flows live in the middle of the capture, want about %d", liveAtMiddle, live)
	}
	if total < flows*8/10 || total > flows*13/10 {
		t.Errorf("%d flows in the capture, want about %d", total, flows)
	}
}

func TestWriteBenchDeterministic(t *testing.T) {
	write := func(seed int64) []byte {
		var buf bytes.Buffer
		if err := WriteBench(&buf, BenchSpec{Packets: 2000, Flows: 200, Live: 100, Seed: seed}); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	if !bytes.Equal(write(1), write(1)) {
		t.Error("same seed, different captures")
	}
	if bytes.Equal(write(1), write(2)) {
		t.Error("different seeds, same capture")
	}
	for _, bad := range []BenchSpec{{Packets: 10, Flows: 1}, {Packets: 10, Live: 1}, {Packets: -1, Flows: 1, Live: 1}} {
		if err := WriteBench(io.Discard, bad); err == nil {
			t.Errorf("no error for %+v", bad)
		}
	}
}

func TestBenchPacketAllocatesNothing(t *testing.T) {
	g, err := newBenchGen(BenchSpec{Packets: 10000, Flows: 100, Live: 1000, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if allocs := testing.AllocsPerRun(10000, func() { g.next() }); allocs != 0 {
		t.Errorf("%v allocations per packet", allocs)
	}
}

func TestBenchConfigParses(t *testing.T) {
	var cfg yamlConfig
	if err := yamlStrict(BenchConfig(), &cfg); err != nil {
		t.Fatal(err)
	}
	if got := cfg.rolesOf(t, "10.1.31.255"); len(got) != 1 || got[0] != "agent" {
		t.Errorf("last benchmark agent has roles %v", got)
	}
}

// BenchmarkWriteBench reports the cost of one benchmark packet.
func BenchmarkWriteBench(b *testing.B) {
	b.ReportAllocs()
	spec := DefaultBench
	spec.Packets = b.N
	if err := WriteBench(io.Discard, spec); err != nil {
		b.Fatal(err)
	}
}
