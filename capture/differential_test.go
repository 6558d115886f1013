package capture

import (
	"encoding/binary"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/tpwatch/tpwatch/internal/testenv"
)

// gopacketView is what gopacket makes of the headers Decode reads.
type gopacketView struct {
	version          uint8
	src, dst         [16]byte
	proto            uint8
	hasPorts         bool
	srcPort, dstPort uint16
	tcpFlags         uint8
	fragment         bool // a fragment other than the first
	firstFragment    bool // offset 0, more fragments follow
	decodeError      bool // gopacket stopped with a DecodeFailure layer
	hasICMP          bool
	icmpType         uint8
	icmpCode         uint8
}

func to16(ip net.IP) [16]byte { return [16]byte(ip.To16()) }

// gopacketDecode decodes with gopacket, starting at the layer that matches
// link, and describes its first IP layer, or with innermost its last (the
// packet inside the tunnels gopacket follows). ok is false when gopacket
// has no decoder for it, finds no IP header, or panics.
func gopacketDecode(link LinkType, data []byte, innermost bool) (v gopacketView, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	var first gopacket.Decoder
	switch link {
	case LinkEthernet:
		first = layers.LayerTypeEthernet
	case LinkLinuxSLL:
		first = layers.LayerTypeLinuxSLL
	case LinkLinuxSLL2:
		// gopacket 1.1.19 has no SLL2 decoder: start after the header,
		// at the protocol it names.
		if len(data) < sll2HdrLen {
			return v, false
		}
		first, data = layers.EthernetType(binary.BigEndian.Uint16(data)), data[sll2HdrLen:]
	case LinkRaw:
		first = layers.LinkTypeRaw
	case LinkIPv4:
		first = layers.LayerTypeIPv4
	case LinkIPv6:
		first = layers.LayerTypeIPv6
	case LinkNull, LinkLoop:
		first = layers.LayerTypeLoopback
	default:
		return v, false
	}
	pkt := gopacket.NewPacket(data, first, gopacket.DecodeOptions{NoCopy: true})
	ls := pkt.Layers()
	i := 0
	for ; i < len(ls); i++ {
		if t := ls[i].LayerType(); t == layers.LayerTypeIPv4 || t == layers.LayerTypeIPv6 {
			break
		}
	}
	if i == len(ls) {
		return v, false
	}
	for j := i + 1; innermost && j < len(ls); j++ {
		if t := ls[j].LayerType(); t == layers.LayerTypeIPv4 || t == layers.LayerTypeIPv6 {
			i = j
		}
	}
	switch ip := ls[i].(type) {
	case *layers.IPv4:
		v.version, v.src, v.dst, v.proto = 4, to16(ip.SrcIP), to16(ip.DstIP), uint8(ip.Protocol)
		v.fragment = ip.FragOffset != 0
		v.firstFragment = ip.FragOffset == 0 && ip.Flags&layers.IPv4MoreFragments != 0
	case *layers.IPv6:
		v.version, v.src, v.dst, v.proto = 6, to16(ip.SrcIP), to16(ip.DstIP), uint8(ip.NextHeader)
	}
	for i++; i < len(ls); i++ {
		switch l := ls[i].(type) {
		case *layers.IPv6HopByHop:
			v.proto = uint8(l.NextHeader)
			continue
		case *layers.IPv6Routing:
			v.proto = uint8(l.NextHeader)
			continue
		case *layers.IPv6Destination:
			v.proto = uint8(l.NextHeader)
			continue
		case *layers.IPSecAH:
			v.proto = uint8(l.NextHeader)
			continue
		case *layers.IPv6Fragment:
			v.proto = uint8(l.NextHeader)
			v.fragment = l.FragmentOffset != 0
			v.firstFragment = l.FragmentOffset == 0 && l.MoreFragments
			continue
		case *layers.TCP:
			v.hasPorts, v.srcPort, v.dstPort = true, uint16(l.SrcPort), uint16(l.DstPort)
			v.tcpFlags = flagByte(l)
		case *layers.UDP:
			v.hasPorts, v.srcPort, v.dstPort = true, uint16(l.SrcPort), uint16(l.DstPort)
		case *layers.ICMPv4:
			v.hasICMP, v.icmpType, v.icmpCode = true, l.TypeCode.Type(), l.TypeCode.Code()
		case *layers.ICMPv6:
			v.hasICMP, v.icmpType, v.icmpCode = true, l.TypeCode.Type(), l.TypeCode.Code()
		}
		break
	}
	v.decodeError = pkt.ErrorLayer() != nil
	return v, true
}

func flagByte(t *layers.TCP) uint8 {
	var f uint8
	for i, set := range []bool{t.FIN, t.SYN, t.RST, t.PSH, t.ACK, t.URG, t.ECE, t.CWR} {
		if set {
			f |= 1 << i
		}
	}
	return f
}

// differenceExplanations says why Decode and gopacket may disagree. Every
// kind of difference the differential test finds must be listed here;
// each entry is checked to still occur, so the table cannot go stale.
var differenceExplanations = map[string]string{
	"first fragment: ports": "gopacket never decodes the transport header of a fragment, even a first fragment that holds it; " +
		"Decode reads the ports (packet.go: a first fragment keeps its ports)",
	"first fragment: ports; gopacket failed too": "as above, in fuzzed packets gopacket also rejects",
	"fragment (ours true)": "a first fragment too short for the TCP/UDP header (tiny-fragment captures): " +
		"packet.go marks it Fragment, gopacket looks only at the offset",
	"fragment (ours true); gopacket failed too": "IPv6 payload length 0 without a jumbo option: gopacket stops at the IPv6 header, " +
		"Decode takes the length from the capture and finds a later fragment",
	"ports present (ours true)": "IPv6 atomic fragments (RFC 6946: fragment header, offset 0, no M flag) are whole packets; " +
		"gopacket decodes nothing after a fragment header",
	"ports present (ours true); gopacket failed too": "gopacket rejects a header Decode walks (IPv6 payload length 0 in BIG TCP/GSO captures, " +
		"Mobile IPv6 options) and stops before TCP/UDP",
	"protocol": "the first fragment of an IPv4 packet with an Authentication Header (ah-ipip-ping): Decode walks AH to the " +
		"ICMP header the fragment holds, as it walks the headers of an IPv6 first fragment; gopacket decodes nothing past " +
		"the IP header of a fragment",
	"protocol; gopacket failed too": "gopacket 1.1.19 rejects segment routing (type 4) and mobile (type 2) routing headers, " +
		"zero-length AH and payload length 0; Decode walks them and reports the protocol after them",
	"status malformed where gopacket decoded IP": "an IP version nibble that contradicts the EtherType (bad-ipv4-version, " +
		"ipv6-bad-version), which gopacket decodes past, and an IPv6 chain of more extension headers than Decode walks " +
		"(ipv6_ext_headers, about a hundred)",
	"status malformed where gopacket decoded IP; gopacket failed too": "broken IP or transport header lengths; gopacket keeps " +
		"the layers before the failure, Decode reports nothing from a malformed packet",
	"status not_ip where gopacket decoded IP": "MPLS: gopacket follows labels to the IP packet; the outermost packet " +
		"(DecodeTunnels with no tunnel) of an MPLS frame is not IP",
	"status not_ip where gopacket decoded IP; gopacket failed too": "MPLS, as above, and truncated",
	"status truncated where gopacket decoded IP": "the capture ends right after the IPv4 header: gopacket returns the IP layer " +
		"alone, Decode reports truncated because the flow cannot be known without the ports",
	"status truncated where gopacket decoded IP; gopacket failed too": "truncated transport or extension headers: both stop, " +
		"gopacket keeping the IP layer",

	// Tunnels: the innermost packets of Decode and of gopacket, where
	// either followed one. Decode's were checked frame by frame against
	// tshark's innermost IP layer on every corpus capture with a tunnel:
	// they agree but where said below.
	"tunnel (ours only): addresses": "tunnels gopacket 1.1.19 does not follow: ERSPAN type I (it reads a type II header that " +
		"is not there) and type III, VXLAN on Linux's port 8472 (tshark, too, shows it only as data), VXLAN-GPE and NSH, " +
		"MPLS in UDP, WCCP redirects in GRE",
	"tunnel (ours only): addresses; gopacket failed too": "as above (ERSPAN type I), and tunnels behind a header gopacket " +
		"rejects: PIM Register (gopacket has no PIM), IPv6 in IPv6 after a segment routing header, IPv6 payload length 0 " +
		"(BIG TCP) in the outer packet",
	"tunnel (ours only): ip version; gopacket failed too": "BIG TCP: an outer IPv6 packet with payload length 0 carries " +
		"VXLAN or Geneve and IPv4; gopacket stops at the outer header, Decode takes the length from the capture",
	"tunnel: ports present (ours true); gopacket failed too": "BIG TCP: the inner IPv6 packet has payload length 0; gopacket " +
		"stops at it, Decode takes the length from the capture and reads the TCP header",
	"tunnel: ip version": "MPLS, IPv6 in IPv6, then IPv4 in IPv6 cut short (zeek's mpls-6in6-6in6-4in6-trunc): Decode follows " +
		"a tunnel only to a packet it can decode, so it stops at the second IPv6 packet; gopacket reports the cut IPv4 header " +
		"(tshark shows its layer without addresses)",
	"tunnel (gopacket only): addresses; gopacket failed too": "ERSPAN type I carrying ARP: Decode finds no IP in the mirrored " +
		"frame and keeps the outer packet; gopacket reads a type II header that is not there and an IP header in the ARP",
}

// tunnelDifference prefixes the difference of the innermost packets with
// which decoder followed a tunnel.
func tunnelDifference(p *Packet, outer, inner gopacketView) string {
	switch {
	case p.Tunnels == 0:
		return "tunnel (gopacket only): "
	case inner == outer:
		return "tunnel (ours only): "
	}
	return "tunnel: "
}

// difference names how our decoding of a packet differs from gopacket's,
// or returns "" when they agree.
func difference(st Status, p *Packet, g gopacketView) string {
	kind := rawDifference(st, p, g)
	if kind != "" && g.decodeError {
		kind += "; gopacket failed too"
	}
	return kind
}

func rawDifference(st Status, p *Packet, g gopacketView) string {
	if st != StatusOK {
		return "status " + st.String() + " where gopacket decoded IP"
	}
	switch {
	case p.IPVersion != g.version:
		return "ip version"
	case p.Src != g.src || p.Dst != g.dst:
		return "addresses"
	case p.Fragment != g.fragment:
		return fmt.Sprintf("fragment (ours %v)", p.Fragment)
	case p.Proto != g.proto:
		return "protocol"
	}
	ourPorts := !p.Fragment && (p.Proto == ProtoTCP || p.Proto == ProtoUDP)
	switch {
	case ourPorts && !g.hasPorts && g.firstFragment:
		return "first fragment: ports"
	case ourPorts != g.hasPorts:
		return fmt.Sprintf("ports present (ours %v)", ourPorts)
	case ourPorts && (p.SrcPort != g.srcPort || p.DstPort != g.dstPort):
		return "ports"
	case p.Proto == ProtoTCP && ourPorts && p.TCPFlags != g.tcpFlags:
		return "tcp flags"
	case g.hasICMP && (p.ICMPType != g.icmpType || p.ICMPCode != g.icmpCode):
		return "icmp type/code"
	}
	return ""
}

func TestDecodeAgreesWithGopacket(t *testing.T) {
	corpus := testenv.Corpus(t)
	type example struct {
		file   string
		record int
	}
	counts := map[string]int{}
	examples := map[string][]example{}
	compared := 0
	var unusable, tunnels int
	for _, e := range readManifest(t, corpus) {
		r, err := OpenFile(filepath.Join(corpus, e.path))
		if err != nil {
			continue
		}
		var rec Record
		var p Packet
		for n := 1; ; n++ {
			if err := r.Next(&rec); err != nil {
				break
			}
			// The outermost packet, then the innermost where either
			// decoder followed a tunnel.
			st := DecodeTunnels(rec.Link, rec.Data, &p, 0)
			if st == StatusUnsupportedLink {
				continue
			}
			g, ok := gopacketDecode(rec.Link, rec.Data, false)
			if !ok {
				unusable++
				continue
			}
			compared++
			kinds := []string{difference(st, &p, g)}
			st = Decode(rec.Link, rec.Data, &p)
			if gi, _ := gopacketDecode(rec.Link, rec.Data, true); p.Tunnels > 0 || gi != g {
				tunnels++
				if kind := difference(st, &p, gi); kind != "" {
					kinds = append(kinds, tunnelDifference(&p, g, gi)+kind)
				}
			}
			for _, kind := range kinds {
				if kind == "" {
					continue
				}
				counts[kind]++
				if len(examples[kind]) < 12 {
					examples[kind] = append(examples[kind], example{e.path, n})
				}
			}
		}
		r.Close()
	}
	if compared < 10000 {
		t.Errorf("only %d packets compared; the corpus should give tens of thousands", compared)
	}
	kinds := make([]string, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		ex := examples[k]
		if why, ok := differenceExplanations[k]; ok {
			t.Logf("explained: %-40s %5d packets (e.g. %v): %s", k, counts[k], ex, why)
		} else {
			t.Errorf("unexplained difference %q in %d packets, e.g. %v", k, counts[k], ex)
		}
	}
	for k := range differenceExplanations {
		if counts[k] == 0 {
			t.Errorf("explained difference %q no longer occurs: remove it from the table", k)
		}
	}
	t.Logf("compared %d packets with gopacket (%d more had no IP header gopacket could decode), %d of them inside tunnels too",
		compared, unusable, tunnels)
}
