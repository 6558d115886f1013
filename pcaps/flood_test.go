package pcaps

import (
	"bytes"
	"crypto/sha256"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// floodPacket is what the tests need of one packet of a flood capture,
// decoded with gopacket (not with the generator's own code).
type floodPacket struct {
	src, dst     netip.Addr
	sport, dport uint16
	udp          bool
	flags        string // "S", "SA", "RA", "R", "PA"
	payload      int
}

func readFlood(t *testing.T, data []byte) []floodPacket {
	t.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("link type %v", r.LinkType())
	}
	var out []floodPacket
	var last int64
	for {
		raw, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		if ts := ci.Timestamp.UnixNano(); ts <= last {
			t.Fatalf("packet %d: time %v does not advance", len(out), ci.Timestamp)
		} else {
			last = ts
		}
		p := gopacket.NewPacket(raw, layers.LayerTypeEthernet, gopacket.Default)
		// Errors past the transport header (gopacket guessing an
		// application protocol from a random port) do not matter here.
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if ip == nil {
			t.Fatalf("packet %d: no IPv4", len(out))
		}
		if !ipv4HeaderValid(ip.Contents) {
			t.Fatalf("packet %d: bad IPv4 header checksum", len(out))
		}
		fp := floodPacket{src: netip.AddrFrom4([4]byte(ip.SrcIP.To4())), dst: netip.AddrFrom4([4]byte(ip.DstIP.To4()))}
		switch l := p.TransportLayer().(type) {
		case *layers.TCP:
			fp.sport, fp.dport, fp.payload = uint16(l.SrcPort), uint16(l.DstPort), len(l.Payload)
			for _, f := range []struct {
				on bool
				c  string
			}{{l.RST, "R"}, {l.SYN, "S"}, {l.PSH, "P"}, {l.ACK, "A"}, {l.FIN, "F"}} {
				if f.on {
					fp.flags += f.c
				}
			}
		case *layers.UDP:
			fp.udp, fp.sport, fp.dport, fp.payload = true, uint16(l.SrcPort), uint16(l.DstPort), len(l.Payload)
		default:
			t.Fatalf("packet %d: no TCP or UDP", len(out))
		}
		out = append(out, fp)
	}
	return out
}

func ipv4HeaderValid(h []byte) bool {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return sum == 0xffff
}

func writeFloodBytes(t *testing.T, k FloodKind, n, sessions int, seed int64) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteFlood(&b, k, n, sessions, seed); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var (
	floodEMAddr = netip.MustParseAddr(FloodEnterpriseManager)
	floodAgentP = netip.MustParsePrefix(FloodAgents)
	siteNet     = netip.MustParsePrefix("10.0.0.0/8")
)

// checkSessions checks that every established session opens with a
// handshake, exchanges data floodSessionRounds times, and is still
// talking in the last tenth of the capture.
func checkSessions(t *testing.T, pkts []floodPacket, sessions int) {
	t.Helper()
	type key struct {
		addr netip.Addr
		port uint16
	}
	type seen struct {
		syn, synAck, data, answers, lastData int
	}
	got := map[key]*seen{}
	for i := 0; i < sessions; i++ {
		a, port := FloodSessionClient(i)
		got[key{netip.MustParseAddr(a), port}] = &seen{}
	}
	for i, p := range pkts {
		if p.udp {
			continue
		}
		if s := got[key{p.src, p.sport}]; s != nil && p.dst == floodEMAddr && p.dport == FloodEMPort {
			switch {
			case p.flags == "S":
				s.syn++
			case p.flags == "PA" && p.payload > 0:
				s.data++
				s.lastData = i
			}
		}
		if s := got[key{p.dst, p.dport}]; s != nil && p.src == floodEMAddr && p.sport == FloodEMPort {
			switch {
			case p.flags == "SA":
				s.synAck++
			case p.flags == "PA" && p.payload > 0:
				s.answers++
			}
		}
	}
	late := 0
	for k, s := range got {
		if !floodAgentP.Contains(k.addr) {
			t.Errorf("session client %v is not in %s", k.addr, FloodAgents)
		}
		if s.syn != 1 || s.synAck != 1 {
			t.Errorf("session %v: %d SYN, %d SYN-ACK, want one handshake", k, s.syn, s.synAck)
		}
		if s.data < floodSessionRounds-1 || s.answers != s.data {
			t.Errorf("session %v: %d requests, %d answers, want about %d of each", k, s.data, s.answers, floodSessionRounds)
		}
		if s.lastData >= len(pkts)*9/10 {
			late++
		}
	}
	if sessions > 0 && late == 0 {
		t.Errorf("no session talks in the last tenth of the capture: they must last the whole flood")
	}
}

func TestWriteFloodSYN(t *testing.T) {
	const syns, sessions = 40000, 30
	pkts := readFlood(t, writeFloodBytes(t, FloodSYN, syns, sessions, 1))
	every := syns / (sessions * floodSessionRounds)
	if want := syns + 3*sessions + 2*(syns/every); len(pkts) != want {
		t.Errorf("%d packets, want %d", len(pkts), want)
	}
	sources := map[netip.Addr]bool{}
	flood := 0
	for _, p := range pkts {
		if p.flags != "S" || floodAgentP.Contains(p.src) {
			continue
		}
		flood++
		sources[p.src] = true
		if siteNet.Contains(p.src) || !p.src.IsGlobalUnicast() {
			t.Errorf("flood source %v: want a unicast address outside the site's 10.0.0.0/8", p.src)
		}
		if p.dst != floodEMAddr || p.dport != FloodEMPort {
			t.Errorf("flood SYN to %v:%d, want the Enterprise Manager's %d", p.dst, p.dport, FloodEMPort)
		}
	}
	if flood != syns {
		t.Errorf("%d flood SYNs, want %d", flood, syns)
	}
	if len(sources) < syns*99/100 {
		t.Errorf("%d distinct sources for %d SYNs: want nearly one each", len(sources), syns)
	}
	checkSessions(t, pkts, sessions)
}

func TestWriteFloodPortScan(t *testing.T) {
	pkts := readFlood(t, writeFloodBytes(t, FloodPortScan, 65535, 10, 1))
	synTo := make([]int, 65536)
	answers := map[uint16]string{}
	for _, p := range pkts {
		switch {
		case p.src.String() == FloodScanner && p.flags == "S":
			synTo[p.dport]++
		case p.src == floodEMAddr && p.dst.String() == FloodScanner:
			answers[p.sport] += p.flags
		}
	}
	for port := 1; port <= 65535; port++ {
		if synTo[port] != 1 {
			t.Fatalf("port %d: %d SYNs, want one", port, synTo[port])
		}
	}
	if len(answers) != 65535 {
		t.Errorf("%d ports answered, want every one", len(answers))
	}
	open := map[uint16]bool{}
	for _, p := range FloodOpenPorts() {
		open[p] = true
	}
	for port, a := range answers {
		if want := map[bool]string{true: "SA", false: "RA"}[open[port]]; a != want {
			t.Errorf("port %d answered %q, want %q", port, a, want)
		}
	}
	checkSessions(t, pkts, 10)
}

func TestWriteFloodUDPSpray(t *testing.T) {
	const n = 30000
	pkts := readFlood(t, writeFloodBytes(t, FloodUDPSpray, n, 5, 1))
	ports := map[uint16]bool{}
	spray := 0
	for _, p := range pkts {
		if !p.udp {
			continue
		}
		spray++
		ports[p.dport] = true
		if p.src.String() != FloodScanner || p.dst != floodEMAddr || p.dport == 0 {
			t.Errorf("datagram %v:%d → %v:%d, want %s → %s, a port 1-65535", p.src, p.sport, p.dst, p.dport, FloodScanner, FloodEnterpriseManager)
		}
	}
	if spray != n {
		t.Errorf("%d datagrams, want %d", spray, n)
	}
	if len(ports) < 20000 {
		t.Errorf("%d distinct destination ports for %d datagrams: not a spray", len(ports), n)
	}
	checkSessions(t, pkts, 5)
}

func TestWriteFloodDeterministic(t *testing.T) {
	for _, k := range []FloodKind{FloodSYN, FloodPortScan, FloodUDPSpray} {
		a := sha256.Sum256(writeFloodBytes(t, k, 5000, 7, 42))
		b := sha256.Sum256(writeFloodBytes(t, k, 5000, 7, 42))
		c := sha256.Sum256(writeFloodBytes(t, k, 5000, 7, 43))
		if a != b {
			t.Errorf("%s: two runs with the same arguments differ", k)
		}
		if a == c {
			t.Errorf("%s: the seed changes nothing", k)
		}
	}
}

func TestWriteFloodRejects(t *testing.T) {
	cases := []struct {
		k           FloodKind
		n, sessions int
	}{
		{FloodInvalid, 10, 1},
		{FloodUDPSpray + 1, 10, 1},
		{FloodSYN, -1, 1},
		{FloodSYN, 10, -1},
		{FloodSYN, 10, 65536},
		{FloodPortScan, 65536, 1},
	}
	for _, c := range cases {
		if err := WriteFlood(&bytes.Buffer{}, c.k, c.n, c.sessions, 1); err == nil {
			t.Errorf("WriteFlood(%v, %d, %d): no error", c.k, c.n, c.sessions)
		}
	}
}

func TestFloodConfigNamesTheSite(t *testing.T) {
	cfg := string(FloodConfig())
	for _, want := range []string{"enterprise-manager: [" + FloodEnterpriseManager + "]", "agent: [" + FloodAgents + "]"} {
		if !bytes.Contains([]byte(cfg), []byte(want)) {
			t.Errorf("flood config lacks %q:\n%s", want, cfg)
		}
	}
}

func BenchmarkWriteFloodSYN(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteFlood(discard{}, FloodSYN, 100000, 100, 1); err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
