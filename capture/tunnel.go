package capture

import "encoding/binary"

// Tunnels. A sensor on a remote SPAN or a cloud mirror receives the
// mirrored packets inside an encapsulation addressed to itself (ERSPAN
// from Cisco, Arista and Juniper switches and VMware, VXLAN from AWS
// Traffic Mirroring and Linux, Geneve from cloud load balancers); a core
// link carries MPLS; sites are joined by GRE and IP-in-IP; a mobile core
// carries user traffic in GTP. The flow the matrix judges is the one
// inside: the outer headers are transport. So Decode follows these
// encapsulations to the packet they carry:
//
//   - VXLAN (RFC 7348) on UDP destination port 4789, and 8472, the port
//     Linux uses by default; the I flag must be set. VXLAN-GPE on 4790
//     (and any VXLAN with the P flag) names its payload in its fourth byte;
//   - Geneve (RFC 8926) on UDP destination port 6081, version 0, its
//     options skipped by their length;
//   - GRE (RFC 2784, 2890; IP protocol 47), version 0, with checksum, key
//     and sequence number words, carrying IPv4, IPv6, MPLS, an Ethernet
//     frame (transparent Ethernet bridging, 0x6558), ERSPAN type I and II
//     (0x88be) and type III (0x22eb, with its optional platform-specific
//     subheader; frame types Ethernet and IP), or a WCCP redirect
//     (0x883e);
//   - MPLS label stacks (EtherType 0x8847, 0x8848, and MPLS in UDP on
//     port 6635, RFC 7510), the payload guessed from its first nibble as
//     every tool does (MPLS does not say): 4 IPv4, 6 IPv6, 0 a pseudowire
//     control word (RFC 4385) and an Ethernet frame;
//   - IP in IP (IPv4 protocol 4, IPv6 protocol 41, in IPv4 and in IPv6);
//   - NSH (RFC 8300; EtherType 0x894f, or inside VXLAN-GPE, GRE, Geneve);
//   - GTP-U G-PDUs (3GPP TS 29.281) on UDP destination port 2152;
//   - PIM Register messages (RFC 7761 4.9; IP protocol 103), which carry
//     a multicast packet to the rendezvous point;
//   - MACsec (IEEE 802.1AE; EtherType 0x88e5) frames that are neither
//     encrypted nor modified: integrity-protected only, they carry the
//     original EtherType and packet in the clear.
//
// A packet is decapsulated only when what the tunnel carries decodes to an
// IP packet: a tunnel header that is not what its port or protocol
// announces (an ordinary UDP flow on port 4789 whose payload is not VXLAN),
// an inner frame that carries no IP (ARP, spanning tree), an inner packet
// cut short by the snap length or malformed, or a tunnel deeper than
// MaxTunnels, all leave the packet as its outer headers describe it, which
// is what Decode gave before it followed tunnels. So a packet that decoded
// before still decodes, to the packet inside or, failing that, as before,
// and a false guess costs a decode, never a packet. Packet.Tunnels counts
// the encapsulations removed. IPsec's Authentication Header is walked in
// IPv4 as in IPv6 (decode_ip.go): it is a header, not a tunnel, but in
// tunnel mode an IP packet follows it. Not followed: PPTP's enhanced GRE
// (version 1, PPP, mostly encrypted), GRE with source routing, ESP, IPComp
// (compressed), and payloads that are not headers (an OpenFlow
// packet-in).
//
// Only destination ports select a UDP tunnel: a tunnel's source port is a
// hash of the inner flow, and matching it would read an ordinary flow
// whose client happened to pick 4789 as a tunnel.

// MaxTunnels is how many encapsulations Decode removes from one packet at
// most, as Zeek's Tunnel::max_depth: a VXLAN packet inside a Geneve packet
// is two. An encapsulation deeper than that is not followed.
const MaxTunnels = 4

// IP protocols and UDP ports that carry tunnels.
const (
	ipProtoIPIP = 4  // IPv4 inside
	ipProtoIPv6 = 41 // IPv6 inside
	ipProtoGRE  = 47
	ipProtoPIM  = 103

	udpPortGTPU       = 2152
	udpPortVXLAN      = 4789
	udpPortVXLANGPE   = 4790
	udpPortGeneve     = 6081
	udpPortMPLS       = 6635
	udpPortVXLANLinux = 8472
)

// TunnelFilter is a libpcap filter expression that admits every packet
// Decode may decapsulate, whatever it carries: UDP to the tunnel ports
// (by destination port, as Decode takes them), IP in IP, GRE and PIM in
// IPv4 and IPv6, IPv4's AH (in IPv6 it is an extension header, which a
// filter selecting by port must admit on its own terms), and the
// EtherTypes of MPLS, NSH and MACsec. A capture
// filter that selects flows by address or port must admit these too: a
// tunnel's outer headers name the switch and the sensor, not the flow
// inside. It uses no keyword that moves the offsets of what follows it
// (vlan, mpls, geneve), so it can be joined to any expression with "or".
const TunnelFilter = "udp dst port 2152 or udp dst port 4789 or udp dst port 4790 or udp dst port 6081 or " +
	"udp dst port 6635 or udp dst port 8472 or " +
	"ip proto 4 or ip proto 41 or ip proto 47 or ip proto 51 or ip proto 103 or " +
	"ip6 proto 4 or ip6 proto 41 or ip6 proto 47 or ip6 proto 103 or " +
	"ether proto 0x8847 or ether proto 0x8848 or ether proto 0x894f or ether proto 0x88e5"

// EtherTypes of tunnelled payloads (GRE and Geneve name their payload by
// EtherType too).
const (
	etherTypeTEB     = 0x6558 // transparent Ethernet bridging: an Ethernet frame
	etherTypeERSPAN2 = 0x88be // ERSPAN type I (without sequence number) and II
	etherTypeERSPAN3 = 0x22eb
	etherTypeWCCP    = 0x883e
	etherTypeMPLS    = 0x8847
	etherTypeMPLSMC  = 0x8848 // multicast
	etherTypeNSH     = 0x894f
	etherTypeMACsec  = 0x88e5
)

// Header sizes and field bits.
const (
	vxlanHdrLen  = 8
	vxlanFlagI   = 0x08 // a valid VNI: set on every VXLAN packet
	vxlanFlagP   = 0x04 // VXLAN-GPE: the next protocol is in byte 3
	geneveHdrLen = 8
	greHdrLen    = 4
	greChecksum  = 0x8000 // checksum and reserved word present
	greRouting   = 0x4000 // RFC 1701 source routing: not followed
	greKey       = 0x2000 // key word present
	greSequence  = 0x1000 // sequence number word present
	greUnknown   = 0x0078 // reserved flag bits (Zeek refuses them too)
	greVersion   = 0x0007
	wccpHdrLen   = 4 // WCCPv2 redirect header
	// ERSPAN type II and III headers, and the platform-specific
	// subheader that follows type III's when its O bit is set.
	erspan2HdrLen    = 8
	erspan3HdrLen    = 12
	erspan3SubHdrLen = 8
	mplsLabelLen     = 4
	// maxMPLSLabels bounds a label stack; real ones hold two to four.
	maxMPLSLabels = 8
	pwControlLen  = 4 // pseudowire control word
	nshMinHdrLen  = 8
	gtpHdrLen     = 8
	gtpOptLen     = 4    // sequence number, N-PDU number, next extension type
	gtpGPDU       = 0xff // message type of a G-PDU: user data
	pimRegHdrLen  = 8    // PIM header and the Register flags word
	// MACsec SecTAG after its EtherType: TCI and AN, short length, packet
	// number; with the SC bit, an 8-byte secure channel identifier.
	macsecTagLen    = 6
	macsecSCILen    = 8
	macsecVersion   = 0x80
	macsecSC        = 0x20
	macsecEncrypted = 0x08
	macsecChanged   = 0x04
)

// ERSPAN type III frame types.
const (
	erspanFrameEthernet = 0
	erspanFrameIP       = 2
)

// What a tunnel's payload is, for decapsulate: an EtherType, or one of
// these.
const (
	// innerIP is an IP packet of either version, as its first nibble says.
	// Values below 0x0600 are 802.3 lengths, never EtherTypes.
	innerIP uint16 = 1
	// innerEthernet is an Ethernet frame.
	innerEthernet = etherTypeTEB
)

// DecodeTunnels decodes as Decode does but removes at most limit
// encapsulations (0 to MaxTunnels): with 0 the packet is its outermost IP
// packet, as a tool that does not follow tunnels sees it. Decode is
// DecodeTunnels with MaxTunnels. An MPLS label stack, NSH or MACsec counts
// as an encapsulation but is no IP packet of its own: a limit that stops
// there gives the packet outside it (none, StatusNotIP, when the frame
// starts with it).
//
// tshark counts a conversation on every layer of a tunnelled packet; the
// tests that compare with it take the layers Decode removed from here.
func DecodeTunnels(link LinkType, data []byte, p *Packet, limit int) Status {
	// The first MaxTunnels-limit tunnels are counted spent before
	// decoding starts, and taken off the count after.
	skip := uint8(MaxTunnels - max(0, min(MaxTunnels, limit)))
	wireLen := p.WireLen
	*p = Packet{TS: p.TS, WireLen: wireLen, Tunnels: skip}
	st := decodeLink(link, data, p)
	if st != StatusOK && st != StatusNotIP {
		*p = Packet{TS: p.TS, WireLen: wireLen}
		return st
	}
	p.Tunnels -= skip
	if p.PayloadOff != 0 {
		p.PayloadOff = uint32(cap(data)) - p.PayloadOff // as Decode
	}
	return st
}

// decapsulate decodes b, the payload of a tunnel, as a frame or packet of
// EtherType etype (or innerIP) into p; size is its length as the headers
// around it give it (b may be cut short by the snap length). When it
// decodes to an IP packet, p describes that packet, with WireLen size (no
// more than before), one more tunnel is counted and it reports true.
// Otherwise, or when the packet is MaxTunnels deep already, p is left as
// it was and it reports false.
func decapsulate(p *Packet, etype uint16, b []byte, size uint32) bool {
	if p.Tunnels >= MaxTunnels {
		return false
	}
	outer := *p
	*p = Packet{TS: outer.TS, WireLen: min(size, outer.WireLen), Tunnels: outer.Tunnels + 1}
	var st Status
	switch etype {
	case innerEthernet:
		st = decodeEthernet(b, p)
	case innerIP:
		st = decodeIP(b, p)
	default:
		st = decodeEtherType(etype, b, p)
	}
	if st == StatusOK {
		return true
	}
	*p = outer
	return false
}

// less is n less hdr bytes, or 0.
func less(n uint32, hdr int) uint32 {
	return n - min(n, uint32(hdr))
}

func decodeEthernet(b []byte, p *Packet) Status {
	if len(b) < ethernetHdrLen {
		return StatusTruncated
	}
	return decodeEtherType(binary.BigEndian.Uint16(b[12:]), b[ethernetHdrLen:], p)
}

// decodeIP decodes an IP packet of the version its first nibble gives.
func decodeIP(b []byte, p *Packet) Status {
	if len(b) == 0 {
		return StatusTruncated
	}
	switch b[0] >> 4 {
	case 4:
		return decodeIPv4(b, p)
	case 6:
		return decodeIPv6(b, p)
	}
	return StatusMalformed
}

// isTunnelPort reports whether UDP packets to port may carry a tunnel.
// It is on the path of every UDP packet: the ports of nearly all of them
// fail the first comparison (the tunnel ports lie from 2152 to 8472), and
// it inlines.
func isTunnelPort(port uint16) bool {
	return port-udpPortGTPU <= udpPortVXLANLinux-udpPortGTPU && isTunnelPortInRange(port)
}

func isTunnelPortInRange(port uint16) bool {
	switch port {
	case udpPortVXLAN, udpPortVXLANLinux, udpPortVXLANGPE, udpPortGeneve, udpPortGTPU, udpPortMPLS:
		return true
	}
	return false
}

// decodeUDPTunnel follows the tunnel that the payload b of a UDP packet to
// a tunnel port may hold; p describes the UDP packet (PayloadLen is the
// payload's length by the UDP header).
func decodeUDPTunnel(p *Packet, b []byte) {
	switch p.DstPort {
	case udpPortVXLAN, udpPortVXLANLinux, udpPortVXLANGPE:
		decodeVXLAN(p, b)
	case udpPortGeneve:
		// Ver(2)=0 | OptLen(6) | O(1) C(1) Rsvd(6) | protocol(16) |
		// VNI(24) | reserved(8), then OptLen 4-byte words of options.
		if len(b) < geneveHdrLen || b[0]>>6 != 0 {
			return
		}
		n := geneveHdrLen + int(b[0]&0x3f)*4
		if len(b) < n {
			return
		}
		decapsulate(p, binary.BigEndian.Uint16(b[2:]), b[n:], less(p.PayloadLen, n))
	case udpPortGTPU:
		decodeGTPU(p, b)
	case udpPortMPLS:
		decapsulate(p, etherTypeMPLS, b, p.PayloadLen)
	}
}

// decodeVXLAN follows a VXLAN header: flags(8), reserved(24), VNI(24),
// reserved(8), then an Ethernet frame. The I flag must be set (RFC 7348
// 5: the other bits are reserved, "ignored on receipt"). With the P flag
// (VXLAN-GPE) byte 3 names the payload: 1 IPv4, 2 IPv6, 3 Ethernet, 4 NSH,
// 5 MPLS.
func decodeVXLAN(p *Packet, b []byte) {
	if len(b) < vxlanHdrLen || b[0]&vxlanFlagI == 0 {
		return
	}
	etype := uint16(innerEthernet)
	if b[0]&vxlanFlagP != 0 {
		if etype = nextProtocol(b[3]); etype == 0 {
			return
		}
	} else if p.DstPort == udpPortVXLANGPE {
		return
	}
	decapsulate(p, etype, b[vxlanHdrLen:], less(p.PayloadLen, vxlanHdrLen))
}

// nextProtocol maps the next-protocol numbers of VXLAN-GPE and NSH to an
// EtherType, or 0.
func nextProtocol(n byte) uint16 {
	switch n {
	case 1:
		return etherTypeIPv4
	case 2:
		return etherTypeIPv6
	case 3:
		return innerEthernet
	case 4:
		return etherTypeNSH
	case 5:
		return etherTypeMPLS
	}
	return 0
}

// decodeGTPU follows a GTP-U G-PDU (3GPP TS 29.281 5.1) to the IP packet
// it carries: flags (version 1, PT 1, E, S, PN), message type 0xff,
// length, TEID; with any of E, S, PN a fourth word whose last byte starts
// the chain of extension headers, each of them as long as its first byte
// says in 4-byte words and naming the next in its last byte. Other GTP-U
// messages (echo, error indication, end marker) carry no user packet.
func decodeGTPU(p *Packet, b []byte) {
	if len(b) < gtpHdrLen || b[0]>>4 != 0x3 || b[1] != gtpGPDU {
		return
	}
	flags, whole := b[0], len(b)
	b = b[gtpHdrLen:]
	if flags&0x07 != 0 {
		if len(b) < gtpOptLen {
			return
		}
		next := b[3]
		b = b[gtpOptLen:]
		// Each extension header is at least 4 bytes, so the chain ends
		// within the packet.
		for next != 0 {
			if len(b) < 1 || b[0] == 0 || len(b) < int(b[0])*4 {
				return
			}
			n := int(b[0]) * 4
			next = b[n-1]
			b = b[n:]
		}
	}
	decapsulate(p, innerIP, b, less(p.PayloadLen, whole-len(b)))
}

// decodeIPTunnel follows the tunnel that an IP payload b of protocol
// p.Proto may be (IP in IP, GRE, PIM Register); p describes the outer
// packet (PayloadLen is the payload's length by the IP header).
func decodeIPTunnel(p *Packet, b []byte) {
	switch p.Proto {
	case ipProtoIPIP:
		// decodeIPv4 and decodeIPv6 check that the version nibble
		// agrees with the protocol.
		decapsulate(p, etherTypeIPv4, b, p.PayloadLen)
	case ipProtoIPv6:
		decapsulate(p, etherTypeIPv6, b, p.PayloadLen)
	case ipProtoGRE:
		decodeGRE(p, b)
	case ipProtoPIM:
		// Version 2, type 1 (Register): 4 bytes of PIM header, 4 of
		// flags (Border, Null-Register), then the multicast packet.
		if len(b) >= pimRegHdrLen && b[0] == 0x21 {
			decapsulate(p, innerIP, b[pimRegHdrLen:], less(p.PayloadLen, pimRegHdrLen))
		}
	}
}

// decodeGRE follows a GRE packet b (RFC 2784, RFC 2890) to its payload.
func decodeGRE(p *Packet, b []byte) {
	if len(b) < greHdrLen {
		return
	}
	flags := binary.BigEndian.Uint16(b)
	// Version 1 is PPTP's enhanced GRE, which carries PPP, mostly
	// encrypted: not followed.
	if flags&(greRouting|greUnknown|greVersion) != 0 {
		return
	}
	proto := binary.BigEndian.Uint16(b[2:])
	n := greHdrLen
	for _, bit := range [...]uint16{greChecksum, greKey, greSequence} {
		if flags&bit != 0 {
			n += 4
		}
	}
	if len(b) < n {
		return
	}
	b = b[n:]
	size := less(p.PayloadLen, n)
	switch proto {
	case etherTypeERSPAN2:
		// Type I has no header of its own, type II (with a sequence
		// number) 8 bytes: Ver(4)=1 | VLAN(12) | COS(3) En(2) T(1) |
		// session(10); reserved(12) | index(20).
		if flags&greSequence != 0 {
			if len(b) < erspan2HdrLen || b[0]>>4 != 1 {
				return
			}
			b, size = b[erspan2HdrLen:], less(size, erspan2HdrLen)
		}
		decapsulate(p, innerEthernet, b, size)
	case etherTypeERSPAN3:
		decodeERSPAN3(p, b, size)
	case etherTypeWCCP:
		// A WCCPv2 redirect header (its first nibble is 0: type and
		// flags), or, from WCCPv1, the IPv4 packet straight away.
		if len(b) > 0 && b[0]>>4 == 0 {
			if len(b) < wccpHdrLen {
				return
			}
			b, size = b[wccpHdrLen:], less(size, wccpHdrLen)
		}
		decapsulate(p, innerIP, b, size)
	default:
		// IPv4, IPv6, MPLS, NSH, transparent Ethernet bridging:
		// EtherTypes.
		decapsulate(p, proto, b, size)
	}
}

// decodeERSPAN3 follows an ERSPAN type III header: Ver(4)=2 | VLAN(12) |
// COS(3) BSO(2) T(1) | session(10); timestamp(32); SGT(16) | P(1) FT(5)
// HW ID(6) D(1) Gra(2) O(1); with O, an 8-byte platform-specific
// subheader. Frame type 0 is an Ethernet frame, 2 an IP packet; the
// others are not defined. size is b's length by the headers around it.
func decodeERSPAN3(p *Packet, b []byte, size uint32) {
	if len(b) < erspan3HdrLen || b[0]>>4 != 2 {
		return
	}
	word3 := binary.BigEndian.Uint32(b[8:])
	n := erspan3HdrLen
	if word3&1 != 0 {
		n += erspan3SubHdrLen
	}
	if len(b) < n {
		return
	}
	switch (word3 >> 10) & 0x1f {
	case erspanFrameEthernet:
		decapsulate(p, innerEthernet, b[n:], less(size, n))
	case erspanFrameIP:
		decapsulate(p, innerIP, b[n:], less(size, n))
	}
}

// decodeEncapsulation decodes a frame of an EtherType that is neither IP
// nor a VLAN tag: MPLS, NSH and MACsec are followed, the others carry no
// IP.
func decodeEncapsulation(etype uint16, b []byte, p *Packet) Status {
	switch etype {
	case etherTypeMPLS, etherTypeMPLSMC:
		return decodeMPLS(b, p)
	case etherTypeNSH:
		return decodeNSH(b, p)
	case etherTypeMACsec:
		return decodeMACsec(b, p)
	}
	return StatusNotIP
}

// decodeMPLS follows an MPLS label stack (RFC 3032) to the packet under
// it. MPLS does not say what that is: as tcpdump and Wireshark do, a first
// nibble 4 is IPv4, 6 IPv6, and 0 a pseudowire control word (RFC 4385)
// followed by an Ethernet frame. Anything else, or a stack that does not
// end, is a frame without IP, as MPLS frames were before Decode followed
// them. MPLS gives no length: the packet under it keeps p.WireLen less the
// labels.
func decodeMPLS(b []byte, p *Packet) Status {
	whole := len(b)
	for n := 0; ; n++ {
		if n == maxMPLSLabels || len(b) < mplsLabelLen {
			return StatusNotIP
		}
		bottom := b[2]&1 != 0
		b = b[mplsLabelLen:]
		if bottom {
			break
		}
	}
	if len(b) == 0 {
		return StatusNotIP
	}
	var ok bool
	switch b[0] >> 4 {
	case 4, 6:
		ok = decapsulate(p, innerIP, b, less(p.WireLen, whole-len(b)))
	case 0:
		ok = len(b) >= pwControlLen && decapsulate(p, innerEthernet, b[pwControlLen:], less(p.WireLen, whole-len(b)+pwControlLen))
	}
	if !ok {
		return StatusNotIP
	}
	return StatusOK
}

// decodeNSH follows a Network Service Header (RFC 8300 2.2): Ver(2)=0 |
// O(1) U(1) | TTL(6) | Length(6), the whole header's length in 4-byte
// words; U(4) | MD type(4) | next protocol(8); the service path header;
// context headers. The next protocol numbers are VXLAN-GPE's.
func decodeNSH(b []byte, p *Packet) Status {
	if len(b) < nshMinHdrLen || b[0]>>6 != 0 {
		return StatusNotIP
	}
	n := int(b[1]&0x3f) * 4
	etype := nextProtocol(b[3])
	if n < nshMinHdrLen || len(b) < n || etype == 0 || !decapsulate(p, etype, b[n:], less(p.WireLen, n)) {
		return StatusNotIP
	}
	return StatusOK
}

// decodeMACsec follows an 802.1AE SecTAG: TCI and AN (V=0, ES, SC, SCB, E,
// C, AN(2)), short length, packet number, with SC an SCI. A frame neither
// encrypted (E) nor changed (C) carries its EtherType and packet in the
// clear, followed by the integrity check value, which the IP lengths
// leave aside as they do Ethernet padding. Any other is a frame without
// IP, as MACsec frames were before Decode followed them.
func decodeMACsec(b []byte, p *Packet) Status {
	if len(b) < macsecTagLen || b[0]&(macsecVersion|macsecEncrypted|macsecChanged) != 0 {
		return StatusNotIP
	}
	n := macsecTagLen
	if b[0]&macsecSC != 0 {
		n += macsecSCILen
	}
	if len(b) < n+2 || !decapsulate(p, binary.BigEndian.Uint16(b[n:]), b[n+2:], less(p.WireLen, n+2)) {
		return StatusNotIP
	}
	return StatusOK
}
