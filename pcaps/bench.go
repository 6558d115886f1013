package pcaps

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
)

// The benchmark capture is a large Threat Prevention site in 10.0.0.0/8:
// thousands of agents, a few servers, NAS devices, and hosts in no role.
// Its packets are written from byte templates patched in place: building
// gopacket layers per packet would be a hundred times slower.

// benchPool is a run of consecutive IPv4 addresses.
type benchPool struct {
	base uint32
	n    uint32
	role string // "" for hosts in no role
}

func (p benchPool) addr(i uint32) uint32 { return p.base + i%p.n }

var (
	benchEM       = benchPool{0x0a00000a, 1, "enterprise-manager"} // 10.0.0.10
	benchSQL      = benchPool{0x0a00000b, 1, "sql-server"}         // 10.0.0.11
	benchTM       = benchPool{0x0a00000d, 1, "threat-manager"}     // 10.0.0.13
	benchDC       = benchPool{0x0a000014, 4, "domain-controller"}  // 10.0.0.20-23
	benchCEE      = benchPool{0x0a000029, 2, "cee-server"}         // 10.0.0.41-42
	benchConsole  = benchPool{0x0a000032, 8, "admin-console"}      // 10.0.0.50-57
	benchNetApp   = benchPool{0x0a00020a, 4, "netapp-cdot"}        // 10.0.2.10-13
	benchIsilon   = benchPool{0x0a000214, 2, "dell-isilon"}        // 10.0.2.20-21
	benchAgents   = benchPool{0x0a010000, 8192, "agent"}           // 10.1.0.0-10.1.31.255
	benchOutsider = benchPool{0x0a090000, 4096, ""}                // 10.9.0.0-10.9.15.255
	benchDNS      = benchPool{0x0a090035, 1, ""}                   // 10.9.0.53, also an outsider
)

// benchShape is what a benchmark flow's packets do.
type benchShape uint8

const (
	benchSession   benchShape = iota // handshake, 1-4 exchanges, FIN close
	benchRefused                     // SYN, RST/ACK
	benchNoAnswer                    // three SYNs
	benchUDPPairs                    // 1-3 request/reply pairs
	benchUDPOneWay                   // 4-12 datagrams to the server
)

// benchKind is one kind of flow of the benchmark, with its share of the
// flows (weights add up to 1000).
type benchKind struct {
	weight           int
	shape            benchShape
	udp              bool
	client, server   benchPool
	port, portSpread uint16 // server port: port + serial % portSpread
}

var benchKinds = []benchKind{
	{weight: 380, shape: benchSession, client: benchAgents, server: benchEM, port: 3741},
	{weight: 120, shape: benchSession, client: benchAgents, server: benchTM, port: 10000, portSpread: 2},
	{weight: 100, shape: benchUDPOneWay, udp: true, client: benchAgents, server: benchTM, port: 10001},
	{weight: 90, shape: benchSession, client: benchNetApp, server: benchAgents, port: 9999},
	{weight: 50, shape: benchSession, client: benchCEE, server: benchAgents, port: 49152, portSpread: 16384},
	{weight: 30, shape: benchSession, client: benchIsilon, server: benchCEE, port: 12228},
	{weight: 40, shape: benchSession, client: benchTM, server: benchDC, port: 88},
	{weight: 30, shape: benchSession, client: benchTM, server: benchDC, port: 389},
	{weight: 20, shape: benchSession, client: benchConsole, server: benchEM, port: 3740},
	{weight: 15, shape: benchSession, client: benchEM, server: benchSQL, port: 1433},
	{weight: 10, shape: benchUDPPairs, udp: true, client: benchEM, server: benchSQL, port: 1434},
	// A few percent blocked and unexpected.
	{weight: 25, shape: benchNoAnswer, client: benchAgents, server: benchEM, port: 3741},
	{weight: 15, shape: benchRefused, client: benchAgents, server: benchTM, port: 10001},
	{weight: 15, shape: benchSession, client: benchAgents, server: benchAgents, port: 3389},
	{weight: 10, shape: benchSession, client: benchOutsider, server: benchSQL, port: 1433},
	// Unrelated DNS.
	{weight: 50, shape: benchUDPPairs, udp: true, client: benchOutsider, server: benchDNS, port: 53},
}

// benchFlow is one live flow of the benchmark.
type benchFlow struct {
	live         bool
	kind         uint8
	step, steps  uint8
	rounds       uint8
	cli, srv     uint32
	cport, sport uint16
	cseq, sseq   uint32
}

// BenchConfig returns the site config of the benchmark capture.
func BenchConfig() []byte {
	cfg := Config{Comment: "Site config of the benchmark capture (gencaps -bench).\nWritten by pcaps/cmd/gencaps; do not edit."}
	for _, p := range []benchPool{benchEM, benchAgents, benchConsole, benchSQL, benchTM, benchDC, benchCEE, benchIsilon, benchNetApp} {
		var hosts []string
		if p == benchAgents {
			hosts = []string{"10.1.0.0/19"}
		} else {
			for i := uint32(0); i < p.n; i++ {
				hosts = append(hosts, ipv4String(p.base+i))
			}
		}
		cfg.Roles = append(cfg.Roles, RoleHosts{Role: p.role, Hosts: hosts})
	}
	return cfg.YAML()
}

func ipv4String(a uint32) string {
	return fmt.Sprintf("%d.%d.%d.%d", a>>24, a>>16&0xff, a>>8&0xff, a&0xff)
}

// BenchSpec is the shape of a benchmark capture.
type BenchSpec struct {
	// Packets is the number of packets.
	Packets int
	// Flows is about how many flows the capture holds in all: the mean
	// length of a flow is Packets/Flows packets (the length of the TCP
	// sessions is scaled to give it; the other shapes keep their own).
	Flows int
	// Live is how many flows are open at any time: each packet continues
	// a random live flow, and a flow that ends is replaced by a new one.
	// Live flows are interleaved packet by packet, the worst case for a
	// flow table's caches.
	Live int
	Seed int64
}

// DefaultBench is the capture of the performance issue: 10M packets,
// 200,000 flows (50 packets a flow), 20,000 of them open at once, about
// 1.6 GB.
var DefaultBench = BenchSpec{Packets: 10_000_000, Flows: 200_000, Live: 20_000, Seed: 1}

// StressBench keeps ten times more flows open at once, each shorter
// (about 10 packets): 940,000 flows in 10M packets, 200,000 live, so the
// flow table holds 250-300k flows and every packet misses the caches.
var StressBench = BenchSpec{Packets: 10_000_000, Flows: 940_000, Live: 200_000, Seed: 1}

// WriteBench writes a classic pcap (microseconds, little-endian, Ethernet)
// of Threat Prevention traffic of the given shape. The output depends only
// on the spec. TCP and UDP checksums are zero; IPv4 header checksums are
// correct.
func WriteBench(w io.Writer, spec BenchSpec) error {
	if spec.Packets < 0 || spec.Live < 1 || spec.Flows < 1 {
		return fmt.Errorf("bench capture: %d packets, %d flows, %d live: want packets >= 0, flows >= 1 and live >= 1", spec.Packets, spec.Flows, spec.Live)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := bw.Write(pcapFileHeader()); err != nil {
		return fmt.Errorf("bench capture header: %w", err)
	}

	g, err := newBenchGen(spec)
	if err != nil {
		return err
	}
	for i := 0; i < spec.Packets; i++ {
		n := g.next()
		if _, err := bw.Write(g.rec[:n]); err != nil {
			return fmt.Errorf("bench capture packet %d: %w", i, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("bench capture: %w", err)
	}
	return nil
}

func newBenchGen(spec BenchSpec) (*benchGen, error) {
	g := &benchGen{
		rng:   rand.New(rand.NewPCG(uint64(spec.Seed), 0x7470776174636821)),
		flows: make([]benchFlow, spec.Live),
		ts:    uint64(Epoch.UnixNano()),
	}
	if err := g.fillKinds(); err != nil {
		return nil, err
	}
	// The live flows at the end are cut short: on average half of each is
	// in the capture, so they count as half a flow's packets each.
	whole := max(float64(spec.Flows)-float64(spec.Live)/2, float64(spec.Flows)/2)
	g.maxRounds = sessionRounds(float64(spec.Packets) / whole)
	return g, nil
}

// sessionRounds returns the most exchanges a TCP session has (it has 1 to
// that many, evenly) for flows to be mean packets long on average.
func sessionRounds(mean float64) int {
	// Mean packets of the other shapes, and the sessions' share.
	var others, sessions float64
	for _, k := range benchKinds {
		w := float64(k.weight)
		switch k.shape {
		case benchSession:
			sessions += w
		case benchRefused:
			others += refusedSteps * w
		case benchNoAnswer:
			others += noAnswerSteps * w
		case benchUDPPairs:
			others += (1 + maxUDPPairs) * w // 2 × the mean of 1..max pairs
		case benchUDPOneWay:
			others += float64(minOneWay+maxOneWay) / 2 * w
		}
	}
	// A session of r rounds has 6 + 3r packets; rounds 1..m average (m+1)/2.
	perSession := (mean*1000 - others) / sessions
	m := int(2*(perSession-6)/3 - 1 + 0.5)
	return min(max(m, 1), maxSessionRounds)
}

// The lengths of the shapes, which sessionRounds averages and start draws.
const (
	maxSessionRounds = 83 // keeps a session's packet count (6 + 3 rounds) in a byte
	refusedSteps     = 2  // SYN, RST/ACK
	noAnswerSteps    = 3  // three SYNs
	maxUDPPairs      = 3  // 1 to 3 request/reply pairs
	minOneWay        = 4  // 4 to 12 datagrams
	maxOneWay        = 12
)

// benchGen holds the state of WriteBench.
type benchGen struct {
	rng    *rand.Rand
	flows  []benchFlow
	ts     uint64 // Unix nanoseconds of the last packet
	ipID   uint16
	kindOf [1000]uint8 // a kind for each thousandth of the flows
	serial [16]uint32  // flows started, per kind
	// maxRounds is the most exchanges of a TCP session (see sessionRounds).
	maxRounds int
	rec       [16 + 14 + 20 + 20 + 1500]byte
}

// fillKinds spreads the kinds over kindOf by their weights.
func (g *benchGen) fillKinds() error {
	if len(benchKinds) > len(g.serial) {
		return fmt.Errorf("bench capture: %d kinds of flow, room for %d", len(benchKinds), len(g.serial))
	}
	i := 0
	for k, kind := range benchKinds {
		for j := 0; j < kind.weight; j++ {
			if i == len(g.kindOf) {
				return fmt.Errorf("bench capture: flow kind weights add up to more than %d", len(g.kindOf))
			}
			g.kindOf[i] = uint8(k)
			i++
		}
	}
	if i != len(g.kindOf) {
		return fmt.Errorf("bench capture: flow kind weights add up to %d, want %d", i, len(g.kindOf))
	}
	return nil
}

// start makes f a new flow. The many-hosts end (agents, outsiders) cycles
// through its pool and the client port advances once per cycle, from an
// offset of its own per kind, so no two live flows share a 5-tuple.
func (g *benchGen) start(f *benchFlow) {
	k := g.kindOf[g.rng.IntN(1000)]
	kind := &benchKinds[k]
	n := g.serial[k]
	g.serial[k]++
	f.live, f.kind, f.step = true, k, 0
	many := kind.client.n
	if kind.server.n > many {
		many = kind.server.n
	}
	f.cli, f.srv = kind.client.addr(n), kind.server.addr(n/kind.client.n)
	if kind.client.n < kind.server.n {
		f.cli, f.srv = kind.client.addr(n/kind.server.n), kind.server.addr(n)
	}
	if f.cli == f.srv {
		f.srv = kind.server.addr(n + 1)
	}
	f.cport = uint16(1024 + (n/many+uint32(k)*4000)%64000)
	f.sport = kind.port
	if kind.portSpread > 0 {
		f.sport += uint16(n % uint32(kind.portSpread))
	}
	f.cseq, f.sseq = g.rng.Uint32(), g.rng.Uint32()
	switch kind.shape {
	case benchSession:
		f.rounds = uint8(1 + g.rng.IntN(g.maxRounds))
		f.steps = 6 + 3*f.rounds
	case benchRefused:
		f.steps = refusedSteps
	case benchNoAnswer:
		f.steps = noAnswerSteps
	case benchUDPPairs:
		f.rounds = uint8(1 + g.rng.IntN(maxUDPPairs))
		f.steps = 2 * f.rounds
	case benchUDPOneWay:
		f.steps = uint8(minOneWay + g.rng.IntN(maxOneWay-minOneWay+1))
	}
}

// TCP flag bytes as on the wire.
const (
	wFIN = 0x01
	wSYN = 0x02
	wRST = 0x04
	wPSH = 0x08
	wACK = 0x10
)

// next writes the next packet into g.rec and returns its record length.
func (g *benchGen) next() int {
	f := &g.flows[g.rng.IntN(len(g.flows))]
	if !f.live {
		g.start(f)
	}
	kind := &benchKinds[f.kind]
	fromClient, flags, payload := true, uint8(0), 0
	switch kind.shape {
	case benchSession:
		last := f.steps - 3
		switch {
		case f.step == 0:
			flags = wSYN
		case f.step == 1:
			fromClient, flags = false, wSYN|wACK
		case f.step == 2:
			flags = wACK
		case f.step < last:
			switch (f.step - 3) % 3 {
			case 0:
				flags, payload = wPSH|wACK, 40+g.rng.IntN(120)
			case 1:
				fromClient, flags, payload = false, wPSH|wACK, g.responseSize()
			case 2:
				flags = wACK
			}
		case f.step == last:
			flags = wFIN | wACK
		case f.step == last+1:
			fromClient, flags = false, wFIN|wACK
		default:
			flags = wACK
		}
	case benchRefused:
		if f.step == 0 {
			flags = wSYN
		} else {
			fromClient, flags = false, wRST|wACK
		}
	case benchNoAnswer:
		flags = wSYN
	case benchUDPPairs:
		fromClient = f.step%2 == 0
		payload = 30
		if !fromClient {
			payload = g.responseSize()
		}
	case benchUDPOneWay:
		payload = 80 + g.rng.IntN(120)
	}
	g.ts += 1000 + uint64(g.rng.IntN(8000))
	n := g.frame(f, kind.udp, fromClient, flags, payload)

	if !kind.udp {
		// Advance the sender's sequence number; a retransmitted SYN
		// keeps its own.
		seq := &f.cseq
		if !fromClient {
			seq = &f.sseq
		}
		if kind.shape != benchNoAnswer {
			*seq += uint32(payload)
			if flags&(wSYN|wFIN) != 0 {
				*seq++
			}
		}
	}
	f.step++
	if f.step >= f.steps {
		f.live = false
	}
	return n
}

// responseSize is mostly a small answer, sometimes a full segment.
func (g *benchGen) responseSize() int {
	if g.rng.IntN(100) < 8 {
		return 1200 + g.rng.IntN(260)
	}
	return 40 + g.rng.IntN(106)
}

// frame writes the pcap record header and the Ethernet, IPv4 and TCP or
// UDP headers of one packet into g.rec, with payload bytes of zeros.
func (g *benchGen) frame(f *benchFlow, udp, fromClient bool, flags uint8, payload int) int {
	src, dst, sport, dport := f.cli, f.srv, f.cport, f.sport
	seq, ack := f.cseq, f.sseq
	if !fromClient {
		src, dst, sport, dport = f.srv, f.cli, f.sport, f.cport
		seq, ack = f.sseq, f.cseq
	}
	if flags == wSYN {
		ack = 0
	}
	if flags == wRST|wACK {
		seq = 0
	}
	l4 := 20
	proto := byte(6)
	if udp {
		l4, proto = 8, 17
	}
	g.ipID++
	t := putEthIPv4(g.rec[:], g.ts, src, dst, proto, g.ipID, l4, payload)
	be := binary.BigEndian
	be.PutUint16(t[0:], sport)
	be.PutUint16(t[2:], dport)
	if udp {
		be.PutUint16(t[4:], uint16(8+payload))
		be.PutUint16(t[6:], 0)
	} else {
		be.PutUint32(t[4:], seq)
		be.PutUint32(t[8:], ack)
		t[12], t[13] = 0x50, flags
		be.PutUint16(t[14:], 64240)
		be.PutUint32(t[16:], 0) // checksum, urgent pointer
	}
	return 16 + 14 + 20 + l4 + payload
}

// pcapFileHeader is the classic pcap file header the fast writers use:
// microsecond timestamps, little-endian, Ethernet, snapLen.
func pcapFileHeader() []byte {
	hdr := make([]byte, 24)
	le := binary.LittleEndian
	le.PutUint32(hdr[0:], 0xa1b2c3d4)
	le.PutUint16(hdr[4:], 2)
	le.PutUint16(hdr[6:], 4)
	le.PutUint32(hdr[16:], snapLen)
	le.PutUint32(hdr[20:], uint32(ethernet))
	return hdr
}

// putEthIPv4 writes into rec a classic pcap record header (microseconds,
// little-endian) for time ts, then Ethernet and IPv4 headers from src to
// dst, and returns the transport header and payload bytes, zeroed, for the
// caller to fill. The MAC addresses are made from the IPv4 addresses.
func putEthIPv4(rec []byte, ts uint64, src, dst uint32, proto byte, ipID uint16, l4, payload int) []byte {
	ipLen := 20 + l4 + payload
	frameLen := 14 + ipLen
	r := rec[:16+frameLen]
	be, le := binary.BigEndian, binary.LittleEndian
	le.PutUint32(r[0:], uint32(ts/1e9))
	le.PutUint32(r[4:], uint32(ts%1e9/1000))
	le.PutUint32(r[8:], uint32(frameLen))
	le.PutUint32(r[12:], uint32(frameLen))

	e := r[16:]
	e[0], e[1] = 0x02, 0x00
	be.PutUint32(e[2:], dst)
	e[6], e[7] = 0x02, 0x00
	be.PutUint32(e[8:], src)
	be.PutUint16(e[12:], 0x0800)

	ip := e[14:34]
	ip[0], ip[1] = 0x45, 0
	be.PutUint16(ip[2:], uint16(ipLen))
	be.PutUint16(ip[4:], ipID)
	be.PutUint16(ip[6:], 0x4000)
	ip[8], ip[9] = 64, proto
	ip[10], ip[11] = 0, 0
	be.PutUint32(ip[12:], src)
	be.PutUint32(ip[16:], dst)
	be.PutUint16(ip[10:], ipv4Checksum(ip))

	t := e[34 : 34+l4+payload]
	clear(t)
	return t
}

// ipv4Checksum is the Internet checksum of an IPv4 header.
func ipv4Checksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
