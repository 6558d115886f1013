package pcaps

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// readPacket is one packet read back from a capture.
type readPacket struct {
	ts       time.Time
	linkType layers.LinkType
	iface    int
	data     []byte
}

// readCapture reads a pcap or pcapng file with gopacket's readers, which
// share no code with the writers of this package except the pcapng
// writer's format.
func readCapture(t *testing.T, data []byte) []readPacket {
	t.Helper()
	var out []readPacket
	if bytes.HasPrefix(data, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		r, err := pcapgo.NewNgReader(bytes.NewReader(data), pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			t.Fatalf("read pcapng: %v", err)
		}
		for {
			d, ci, err := r.ReadPacketData()
			if errors.Is(err, io.EOF) {
				return out
			}
			if err != nil {
				t.Fatalf("read pcapng packet %d: %v", len(out), err)
			}
			lt := ci.AncillaryData[0].(layers.LinkType)
			out = append(out, readPacket{ts: ci.Timestamp, linkType: lt, iface: ci.InterfaceIndex, data: append([]byte(nil), d...)})
		}
	}
	r, err := pcapgo.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("read pcap: %v", err)
	}
	for {
		d, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("read pcap packet %d: %v", len(out), err)
		}
		out = append(out, readPacket{ts: ci.Timestamp, linkType: r.LinkType(), data: append([]byte(nil), d...)})
	}
}

// observed is what the packets of one flow show, oriented by the
// expected file's client and server.
type observed struct {
	clientSYN, serverSYNACK, serverRST, clientRST bool
	clientFIN, serverFIN                          bool
	fromClient, fromServer                        int
	first, last                                   time.Time
}

type tupleKey struct {
	transport string
	a, b      netip.AddrPort // a < b, so both directions share a key
}

func keyOf(transport string, x, y netip.AddrPort) tupleKey {
	if x.Compare(y) > 0 {
		x, y = y, x
	}
	return tupleKey{transport, x, y}
}

// decoded is the IP-level view of a packet.
type decoded struct {
	transport  string
	src, dst   netip.AddrPort
	tcp        *layers.TCP
	icmpTC     uint16
	quoted     *tupleKey
	quotedFrom netip.AddrPort
}

func addrOf(ip []byte) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// decodePacket decodes a frame and checks every checksum in it.
func decodePacket(p readPacket) (decoded, error) {
	first := layers.LayerTypeEthernet
	if p.linkType == layers.LinkTypeLinuxSLL {
		first = layers.LayerTypeLinuxSLL
	}
	pkt := gopacket.NewPacket(p.data, first, gopacket.Default)
	// Application dissectors may reject the generated payloads; only the
	// headers up to the transport (or ICMP) must decode.
	if el := pkt.ErrorLayer(); el != nil && pkt.TransportLayer() == nil && pkt.Layer(layers.LayerTypeICMPv4) == nil && pkt.Layer(layers.LayerTypeICMPv6) == nil {
		return decoded{}, fmt.Errorf("decode: %v", el.Error())
	}
	var d decoded
	var src, dst netip.Addr
	var pseudo []byte
	switch n := pkt.NetworkLayer().(type) {
	case *layers.IPv4:
		if sum := internetSum(n.Contents, 0); sum != 0xffff {
			return d, fmt.Errorf("bad IPv4 header checksum")
		}
		src, dst = addrOf(n.SrcIP), addrOf(n.DstIP)
		pseudo = append(append(append([]byte{}, n.SrcIP.To4()...), n.DstIP.To4()...), 0, byte(n.Protocol), byte(len(n.Payload)>>8), byte(len(n.Payload)))
	case *layers.IPv6:
		src, dst = addrOf(n.SrcIP), addrOf(n.DstIP)
		pseudo = append(append([]byte{}, n.SrcIP...), n.DstIP...)
		pseudo = binary.BigEndian.AppendUint32(pseudo, uint32(len(n.Payload)))
		pseudo = append(pseudo, 0, 0, 0, byte(n.NextHeader))
	default:
		return d, fmt.Errorf("no IP layer")
	}
	transportBytes := pkt.NetworkLayer().LayerPayload()
	switch l := pkt.Layer(layers.LayerTypeTCP).(type) {
	case *layers.TCP:
		d.transport, d.tcp = "tcp", l
		d.src, d.dst = netip.AddrPortFrom(src, uint16(l.SrcPort)), netip.AddrPortFrom(dst, uint16(l.DstPort))
		if internetSum(transportBytes, internetSum(pseudo, 0)) != 0xffff {
			return d, fmt.Errorf("bad TCP checksum")
		}
		return d, nil
	}
	if u, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
		d.transport = "udp"
		d.src, d.dst = netip.AddrPortFrom(src, uint16(u.SrcPort)), netip.AddrPortFrom(dst, uint16(u.DstPort))
		if internetSum(transportBytes, internetSum(pseudo, 0)) != 0xffff {
			return d, fmt.Errorf("bad UDP checksum")
		}
		return d, nil
	}
	var inner []byte
	if ic, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
		if internetSum(transportBytes, 0) != 0xffff {
			return d, fmt.Errorf("bad ICMP checksum")
		}
		d.icmpTC = uint16(ic.TypeCode)
		inner = ic.Payload
	} else if ic, ok := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok {
		if internetSum(transportBytes, internetSum(pseudo, 0)) != 0xffff {
			return d, fmt.Errorf("bad ICMPv6 checksum")
		}
		d.icmpTC = uint16(ic.TypeCode)
		if len(ic.Payload) < 4 {
			return d, fmt.Errorf("short ICMPv6 error")
		}
		inner = ic.Payload[4:]
	} else {
		return d, fmt.Errorf("neither TCP, UDP nor ICMP")
	}
	// The quoted packet: an IP header and at least the ports.
	q := gopacket.NewPacket(inner, map[bool]gopacket.LayerType{true: layers.LayerTypeIPv4, false: layers.LayerTypeIPv6}[src.Is4()], gopacket.Default)
	var qsrc, qdst netip.Addr
	var proto layers.IPProtocol
	var rest []byte
	switch n := q.NetworkLayer().(type) {
	case *layers.IPv4:
		qsrc, qdst, proto, rest = addrOf(n.SrcIP), addrOf(n.DstIP), n.Protocol, n.Payload
	case *layers.IPv6:
		qsrc, qdst, proto, rest = addrOf(n.SrcIP), addrOf(n.DstIP), n.NextHeader, n.Payload
	default:
		return d, fmt.Errorf("ICMP error quotes no IP packet")
	}
	if len(rest) < 4 {
		return d, fmt.Errorf("ICMP error quotes no ports")
	}
	qs := netip.AddrPortFrom(qsrc, binary.BigEndian.Uint16(rest[0:]))
	qd := netip.AddrPortFrom(qdst, binary.BigEndian.Uint16(rest[2:]))
	tr := map[layers.IPProtocol]string{layers.IPProtocolTCP: "tcp", layers.IPProtocolUDP: "udp"}[proto]
	k := keyOf(tr, qs, qd)
	d.quoted, d.quotedFrom = &k, qs
	d.src, d.dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
	return d, nil
}

// internetSum adds b to a one's complement sum.
func internetSum(b []byte, sum uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return sum
}

func readExpected(t *testing.T, data []byte) []Expected {
	t.Helper()
	var es []Expected
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var e Expected
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("expected line %d: %v", len(es)+1, err)
		}
		es = append(es, e)
	}
	return es
}

// TestCapturesMatchExpected reads every committed capture back and checks,
// from the packets alone, that each expected line describes a flow that is
// in the capture and behaves as its verdict, reason and conn_state say,
// and that the capture has no flow the expected file lacks.
func TestCapturesMatchExpected(t *testing.T) {
	for _, s := range Scenarios() {
		t.Run(s.Capture, func(t *testing.T) {
			capData, err := os.ReadFile(s.Capture)
			if err != nil {
				t.Fatalf("%v (regenerate: go run ./pcaps/cmd/gencaps -out pcaps/)", err)
			}
			expData, err := os.ReadFile(s.ExpectedFile())
			if err != nil {
				t.Fatal(err)
			}
			packets := readCapture(t, capData)
			expected := readExpected(t, expData)
			checkPackets(t, s, packets)
			checkFlows(t, packets, expected)
		})
	}
}

// checkPackets checks times, interfaces and link types.
func checkPackets(t *testing.T, s Scenario, packets []readPacket) {
	if len(packets) == 0 {
		t.Fatal("no packets")
	}
	if start := packets[0].ts; start.Before(Epoch) || start.Sub(Epoch) >= time.Microsecond {
		t.Errorf("first packet at %v, want %v", start, Epoch)
	}
	ifaces, subMicro := map[int]bool{}, map[int]bool{}
	for i, p := range packets {
		if i > 0 && p.ts.Before(packets[i-1].ts) {
			t.Errorf("packet %d at %v goes back in time", i, p.ts)
		}
		if p.iface >= len(s.Links) || s.Links[p.iface].Type != p.linkType {
			t.Errorf("packet %d: interface %d, link type %v", i, p.iface, p.linkType)
		}
		ifaces[p.iface] = true
		if p.ts.Nanosecond()%1000 != 0 {
			if !s.Links[p.iface].Nanos {
				t.Errorf("packet %d: sub-microsecond time on a microsecond interface", i)
			}
			subMicro[p.iface] = true
		}
	}
	for i, l := range s.Links {
		if l.Nanos && !subMicro[i] {
			t.Errorf("interface %d has nanosecond timestamps, but none below a microsecond", i)
		}
	}
	if len(ifaces) != len(s.Links) {
		t.Errorf("packets on %d interfaces, want %d", len(ifaces), len(s.Links))
	}
}

func checkFlows(t *testing.T, packets []readPacket, expected []Expected) {
	seen := map[tupleKey]bool{}
	quotes := map[tupleKey][]icmpQuote{}
	for i, p := range packets {
		d, err := decodePacket(p)
		if err != nil {
			t.Errorf("packet %d: %v", i, err)
			continue
		}
		if d.quoted != nil {
			quotes[*d.quoted] = append(quotes[*d.quoted], icmpQuote{d.icmpTC, d.quotedFrom, d.src.Addr()})
			continue
		}
		seen[keyOf(d.transport, d.src, d.dst)] = true
	}
	byKey := map[tupleKey]Expected{}
	for _, e := range expected {
		cli := netip.AddrPortFrom(netip.MustParseAddr(e.SrcIP), e.SrcPort)
		srv := netip.AddrPortFrom(netip.MustParseAddr(e.DstIP), e.DstPort)
		k := keyOf(e.Transport, cli, srv)
		if _, dup := byKey[k]; dup {
			t.Errorf("flow %v listed twice", k)
		}
		byKey[k] = e
	}
	for k := range seen {
		if _, ok := byKey[k]; !ok {
			t.Errorf("capture has flow %v, expected file lacks it", k)
		}
	}
	for k := range quotes {
		if _, ok := byKey[k]; !ok {
			t.Errorf("an ICMP error quotes %v, which is no expected flow", k)
		}
	}
	oriented := orient(t, packets, byKey)
	end := packets[len(packets)-1].ts
	for k, e := range byKey {
		o, ok := oriented[k]
		if !ok {
			t.Errorf("expected flow %s %s:%d -> %s:%d not in the capture", e.Transport, e.SrcIP, e.SrcPort, e.DstIP, e.DstPort)
			continue
		}
		checkFlow(t, e, o, quotes[k], end)
	}
}

// orient gathers each expected flow's facts with the expected client and
// server.
func orient(t *testing.T, packets []readPacket, byKey map[tupleKey]Expected) map[tupleKey]*observed {
	out := map[tupleKey]*observed{}
	for _, p := range packets {
		d, err := decodePacket(p)
		if err != nil || d.quoted != nil {
			continue
		}
		k := keyOf(d.transport, d.src, d.dst)
		e, ok := byKey[k]
		if !ok {
			continue
		}
		o := out[k]
		if o == nil {
			o = &observed{first: p.ts}
			out[k] = o
		}
		o.last = p.ts
		fromClient := d.src.Addr().String() == e.SrcIP && d.src.Port() == e.SrcPort
		if fromClient {
			o.fromClient++
		} else {
			o.fromServer++
		}
		if tc := d.tcp; tc != nil {
			switch {
			case tc.SYN && !tc.ACK && fromClient:
				o.clientSYN = true
			case tc.SYN && !tc.ACK:
				t.Errorf("%v: SYN from the expected server", k)
			case tc.SYN && tc.ACK && !fromClient:
				o.serverSYNACK = true
			case tc.SYN && tc.ACK:
				t.Errorf("%v: SYN-ACK from the expected client", k)
			}
			if tc.RST && fromClient {
				o.clientRST = true
			} else if tc.RST {
				o.serverRST = true
			}
			if tc.FIN && fromClient {
				o.clientFIN = true
			} else if tc.FIN {
				o.serverFIN = true
			}
		}
	}
	return out
}

// icmpQuote is an ICMP error quoting a flow: its type and code, and the
// sender of the quoted packet.
type icmpQuote struct {
	tc     uint16
	from   netip.AddrPort
	sender netip.Addr // the host that sent the ICMP error
}

// checkFlow checks one expected line against the flow's packets.
func checkFlow(t *testing.T, e Expected, o *observed, quotes []icmpQuote, end time.Time) {
	name := fmt.Sprintf("%s %s:%d -> %s:%d (%s/%s %s)", e.Transport, e.SrcIP, e.SrcPort, e.DstIP, e.DstPort, e.Verdict, e.Reason, e.ConnState)
	errorf := func(format string, args ...any) { t.Errorf("%s: "+format, append([]any{name}, args...)...) }

	icmpDecided := e.Reason == "icmp_unreachable" || e.Outcome == "icmp_unreachable"
	if (e.ICMPType != nil) != icmpDecided || (e.ICMPType != nil) != (e.ICMPCode != nil) || (e.ICMPType != nil) != (e.ICMPSrc != "") {
		errorf("icmp_type, icmp_code and icmp_src present exactly when an ICMP error decided the flow")
	}
	if e.ICMPType != nil {
		want := uint16(*e.ICMPType)<<8 | uint16(*e.ICMPCode)
		found := false
		for _, q := range quotes {
			found = found || (q.tc == want && q.from.Addr().String() == e.SrcIP && q.sender.String() == e.ICMPSrc)
		}
		if !found {
			errorf("no ICMP %d/%d from %s quoting a packet of the client", *e.ICMPType, *e.ICMPCode, e.ICMPSrc)
		}
	} else if len(quotes) > 0 {
		errorf("an ICMP error quotes the flow but the expectation ignores it")
	}
	if (e.Verdict == "ignored" || e.Reason == "no_rule") != (e.Rule == "") {
		errorf("rule %q does not fit the verdict", e.Rule)
	}
	switch e.Verdict {
	case "allowed", "pending":
		if e.Reason != "" {
			errorf("reason does not fit the verdict")
		}
	case "ignored":
		if e.Reason != "" && e.Reason != "not_product" && e.Reason != "site_ignore" {
			errorf("reason does not fit the verdict")
		}
	default:
		if e.Reason == "" {
			errorf("reason does not fit the verdict")
		}
	}
	// An unexpected flow says how it went, and the packets agree.
	switch {
	case (e.Outcome != "") != (e.Verdict == "unexpected"):
		errorf("outcome %q present exactly for unexpected flows", e.Outcome)
	case e.Outcome == "worked" && o.fromServer == 0 && o.fromClient == 0:
		errorf("worked with no packet")
	case e.Outcome == "refused" && !o.serverRST:
		errorf("refused, but the server sent no RST")
	case (e.Outcome == "no_response" || e.Outcome == "unknown") && o.fromServer > 0:
		errorf("%s, but the server sent packets", e.Outcome)
	}

	switch e.ConnState {
	case "SF":
		if e.Transport == "tcp" && !(o.clientSYN && o.serverSYNACK && o.clientFIN && o.serverFIN && !o.clientRST && !o.serverRST) {
			errorf("not a complete TCP connection: %+v", *o)
		}
		if e.Transport == "udp" && (o.fromClient == 0 || o.fromServer == 0) {
			errorf("UDP SF without packets both ways")
		}
	case "S1":
		if !o.clientSYN || !o.serverSYNACK || o.clientFIN || o.serverFIN || o.clientRST || o.serverRST {
			errorf("not an established, unclosed connection")
		}
	case "RSTO":
		if !o.clientSYN || !o.serverSYNACK || !o.clientRST {
			errorf("not an established connection reset by the client")
		}
	case "REJ":
		if !o.clientSYN || o.serverSYNACK || !o.serverRST || o.fromServer != 1 {
			errorf("not a SYN answered by one RST")
		}
	case "S0":
		if o.fromServer != 0 || o.fromClient == 0 || (e.Transport == "tcp" && !o.clientSYN) {
			errorf("S0 flow with %d packets from the server", o.fromServer)
		}
	case "OTH":
		if o.clientSYN || o.serverSYNACK {
			errorf("mid-stream flow with a SYN")
		}
	default:
		errorf("conn_state not produced by the generator")
	}

	timeout := TCPAttemptTimeout
	if e.Transport == "udp" {
		timeout = UDPAttemptTimeout
	}
	noResponse := e.Reason == "no_response" || e.Outcome == "no_response"
	switch {
	case (e.Verdict == "pending" || e.Outcome == "unknown") && end.Sub(o.first) >= timeout:
		errorf("%s, but the capture ends %v after the first packet", e.Verdict, end.Sub(o.first))
	case noResponse && end.Sub(o.first) <= timeout:
		errorf("no_response, but the capture ends %v after the first packet", end.Sub(o.first))
	case (noResponse || e.Verdict == "pending") && o.fromServer > 0:
		errorf("an unanswered attempt with packets from the server")
	case e.Verdict == "allowed" && e.ConnState == "S0" && (e.Transport != "udp" || end.Sub(o.first) < UDPICMPWait):
		errorf("one-way flow allowed, but the capture ends %v after its first packet", end.Sub(o.first))
	}
}
