package pcaps

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
)

// Flood captures are hostile traffic aimed at a Threat Prevention site: the
// overload tests replay them with a small flow table and check that tpwatch
// keeps its memory bounded and still follows the real sessions. They are
// millions of packets, so like WriteBench they are written from patched
// byte templates, and never committed: tests write them to a temporary
// directory.

// FloodKind is what a flood capture sends.
type FloodKind uint8

const (
	FloodInvalid  FloodKind = iota
	FloodSYN                // SYNs to the Enterprise Manager's 3741 from random sources and ports
	FloodPortScan           // one scanner: a SYN to every TCP port of the Enterprise Manager
	FloodUDPSpray           // one host: datagrams to random UDP ports of the Enterprise Manager
)

func (k FloodKind) String() string {
	switch k {
	case FloodSYN:
		return "syn-flood"
	case FloodPortScan:
		return "port-scan"
	case FloodUDPSpray:
		return "udp-spray"
	}
	return "invalid"
}

// The hosts of the flood captures. The flood sources are never in
// 10.0.0.0/8, where the site lives.
const (
	FloodEnterpriseManager = "10.0.0.10"
	FloodAgents            = "10.1.0.0/16" // the established sessions' clients
	FloodScanner           = "10.9.0.66"   // the port scanner and the UDP sprayer
	FloodEMPort            = 3741
)

const (
	floodEM      = 0x0a00000a // 10.0.0.10
	floodAgent0  = 0x0a010000 // 10.1.0.0
	floodScanner = 0x0a090042 // 10.9.0.66
	// floodSessionRounds is how many data exchanges each established
	// session makes over the capture, spread evenly through the flood.
	floodSessionRounds = 20
)

// floodOpenPorts are the ports of the Enterprise Manager that answer a
// port scan with SYN-ACK (some of its documented server ports); every
// other port answers RST.
var floodOpenPorts = [...]uint16{135, 445, 3740, 3741}

// FloodOpenPorts returns the ports that answer the port scan.
func FloodOpenPorts() []uint16 { return append([]uint16(nil), floodOpenPorts[:]...) }

// FloodConfig returns the site config the flood captures are replayed with:
// the Enterprise Manager and the agents; the flood sources hold no role.
func FloodConfig() []byte {
	return Config{
		Comment: "Site config of the flood captures (pcaps.WriteFlood).",
		Roles: []RoleHosts{
			{Role: "enterprise-manager", Hosts: []string{FloodEnterpriseManager}},
			{Role: "agent", Hosts: []string{FloodAgents}},
		},
	}.YAML()
}

// FloodSessionClient returns the client address and port of established
// session i (0 <= i < 65536), which talks to FloodEnterpriseManager on
// FloodEMPort.
func FloodSessionClient(i int) (addr string, port uint16) {
	a := uint32(floodAgent0) + 1 + uint32(i)
	return ipv4String(a), uint16(40000 + i%20000)
}

// WriteFlood writes a classic pcap (microseconds, little-endian, Ethernet)
// of a flood of kind k, with n flood packets (for a port scan, the ports
// 1..n scanned, n <= 65535, each answered), interleaved with sessions
// established agent → Enterprise Manager 3741 sessions: each opens with a
// handshake before the flood and exchanges data with the server
// throughout it, and none is closed. Packets are one microsecond apart.
// The output depends only on the arguments.
func WriteFlood(w io.Writer, k FloodKind, n, sessions int, seed int64) error {
	if k == FloodInvalid || k > FloodUDPSpray {
		return fmt.Errorf("flood capture: kind %d unknown", k)
	}
	if n < 0 || sessions < 0 || sessions > 65535 {
		return fmt.Errorf("flood capture %s: %d packets, %d sessions: want n >= 0 and 0 <= sessions <= 65535", k, n, sessions)
	}
	if k == FloodPortScan && n > 65535 {
		return fmt.Errorf("flood capture %s: %d ports: a host has 65535", k, n)
	}
	g := &floodGen{
		bw:   bufio.NewWriterSize(w, 1<<20),
		rng:  rand.New(rand.NewPCG(uint64(seed), 0x666c6f6f64)),
		ts:   uint64(Epoch.UnixNano()),
		kind: k,
	}
	g.header()
	g.sessions = make([]floodSession, sessions)
	for i := range g.sessions {
		s := &g.sessions[i]
		s.cli = uint32(floodAgent0) + 1 + uint32(i)
		_, s.cport = FloodSessionClient(i)
		s.cseq, s.sseq = g.rng.Uint32(), g.rng.Uint32()
		g.tcp(s.cli, floodEM, s.cport, FloodEMPort, s.cseq, 0, wSYN, 0)
		g.tcp(floodEM, s.cli, FloodEMPort, s.cport, s.sseq, s.cseq+1, wSYN|wACK, 0)
		s.cseq++
		s.sseq++
		g.tcp(s.cli, floodEM, s.cport, FloodEMPort, s.cseq, s.sseq, wACK, 0)
	}
	// One session exchange every `every` flood packets gives each session
	// floodSessionRounds exchanges over the flood.
	every := 0
	if sessions > 0 {
		every = max(1, n/(sessions*floodSessionRounds))
	}
	next := 0
	for i := 0; i < n && g.err == nil; i++ {
		g.floodPacket(i)
		if every > 0 && i%every == every-1 {
			g.exchange(&g.sessions[next])
			next = (next + 1) % sessions
		}
	}
	if g.err != nil {
		return fmt.Errorf("flood capture %s: %w", k, g.err)
	}
	if err := g.bw.Flush(); err != nil {
		return fmt.Errorf("flood capture %s: %w", k, err)
	}
	return nil
}

// floodSession is one established agent → Enterprise Manager session.
type floodSession struct {
	cli        uint32
	cport      uint16
	cseq, sseq uint32
}

// floodGen holds the state of WriteFlood.
type floodGen struct {
	bw       *bufio.Writer
	rng      *rand.Rand
	ts       uint64 // Unix nanoseconds of the last packet
	ipID     uint16
	kind     FloodKind
	sessions []floodSession
	rec      [16 + 14 + 20 + 20 + 1500]byte
	err      error
}

func (g *floodGen) header() {
	_, g.err = g.bw.Write(pcapFileHeader())
}

// floodPacket writes flood packet i and, for a port scan, its answer.
func (g *floodGen) floodPacket(i int) {
	switch g.kind {
	case FloodSYN:
		g.tcp(g.randomSource(), floodEM, uint16(1024+g.rng.IntN(64512)), FloodEMPort, g.rng.Uint32(), 0, wSYN, 0)
	case FloodPortScan:
		port := uint16(i + 1)
		sport := uint16(1024 + i%64512)
		seq := g.rng.Uint32()
		g.tcp(floodScanner, floodEM, sport, port, seq, 0, wSYN, 0)
		if isFloodOpen(port) {
			sseq := g.rng.Uint32()
			g.tcp(floodEM, floodScanner, port, sport, sseq, seq+1, wSYN|wACK, 0)
			g.tcp(floodScanner, floodEM, sport, port, seq+1, 0, wRST, 0)
		} else {
			g.tcp(floodEM, floodScanner, port, sport, 0, seq+1, wRST|wACK, 0)
		}
	case FloodUDPSpray:
		g.udp(floodScanner, floodEM, uint16(1024+g.rng.IntN(64512)), uint16(1+g.rng.IntN(65535)), 32)
	}
}

func isFloodOpen(port uint16) bool {
	for _, p := range floodOpenPorts {
		if p == port {
			return true
		}
	}
	return false
}

// randomSource returns a random unicast IPv4 address outside 0/8, 10/8 and
// 127/8.
func (g *floodGen) randomSource() uint32 {
	for {
		a := g.rng.Uint32()
		switch first := a >> 24; {
		case first == 0, first == 10, first == 127, first >= 224:
			continue
		}
		return a
	}
}

// exchange writes one request from session s's agent and the server's
// answer.
func (g *floodGen) exchange(s *floodSession) {
	const request, answer = 120, 60
	g.tcp(s.cli, floodEM, s.cport, FloodEMPort, s.cseq, s.sseq, wPSH|wACK, request)
	s.cseq += request
	g.tcp(floodEM, s.cli, FloodEMPort, s.cport, s.sseq, s.cseq, wPSH|wACK, answer)
	s.sseq += answer
}

func (g *floodGen) tcp(src, dst uint32, sport, dport uint16, seq, ack uint32, flags uint8, payload int) {
	t := g.frame(src, dst, 6, 20, payload)
	be := binary.BigEndian
	be.PutUint16(t[0:], sport)
	be.PutUint16(t[2:], dport)
	be.PutUint32(t[4:], seq)
	be.PutUint32(t[8:], ack)
	t[12], t[13] = 0x50, flags
	be.PutUint16(t[14:], 64240)
	be.PutUint32(t[16:], 0) // checksum (zero, as in WriteBench), urgent pointer
	g.write(20 + payload)
}

func (g *floodGen) udp(src, dst uint32, sport, dport uint16, payload int) {
	t := g.frame(src, dst, 17, 8, payload)
	be := binary.BigEndian
	be.PutUint16(t[0:], sport)
	be.PutUint16(t[2:], dport)
	be.PutUint16(t[4:], uint16(8+payload))
	be.PutUint16(t[6:], 0)
	g.write(8 + payload)
}

// frame fills the record header, Ethernet and IPv4 headers of a packet one
// microsecond after the last, and returns the transport header's bytes with
// its payload zeroed.
func (g *floodGen) frame(src, dst uint32, proto byte, l4, payload int) []byte {
	g.ts += 1000
	g.ipID++
	return putEthIPv4(g.rec[:], g.ts, src, dst, proto, g.ipID, l4, payload)
}

// write writes the record frame built, whose transport header and payload
// are n bytes.
func (g *floodGen) write(n int) {
	if g.err != nil {
		return
	}
	frameLen := 14 + 20 + n
	_, g.err = g.bw.Write(g.rec[:16+frameLen])
}
