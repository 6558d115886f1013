package capture

import "encoding/binary"

// IPv6 extension headers Decode walks through.
const (
	ipv6HopByHop    = 0
	ipv6Routing     = 43
	ipv6Fragment    = 44
	ipv6AuthHeader  = 51
	ipProtoAH       = ipv6AuthHeader // IPsec AH, in IPv4 too
	ipv6DestOptions = 60
)

// mapIPv4 stores a 4-byte address as ::ffff:a.b.c.d.
func mapIPv4(dst *[16]byte, a []byte) {
	// Two word stores: the composite literal wrote the 16 bytes one by one.
	binary.BigEndian.PutUint64(dst[:8], 0)
	binary.BigEndian.PutUint64(dst[8:], 0xffff<<32|uint64(binary.BigEndian.Uint32(a)))
}

func decodeIPv4(b []byte, p *Packet) Status {
	if len(b) < ipv4MinHdrLen {
		return StatusTruncated
	}
	if b[0]>>4 != 4 {
		return StatusMalformed
	}
	hdrLen := int(b[0]&0x0f) * 4
	if hdrLen < ipv4MinHdrLen {
		return StatusMalformed
	}
	if len(b) < hdrLen {
		return StatusTruncated
	}
	total := int(binary.BigEndian.Uint16(b[2:]))
	if total == 0 {
		// Segmentation offload: the kernel hands the capture a packet
		// before filling in its length.
		total = len(b)
	} else if total < hdrLen {
		return StatusMalformed
	}
	p.IPVersion = 4
	p.Proto = b[9]
	mapIPv4(&p.Src, b[12:16])
	mapIPv4(&p.Dst, b[16:20])
	claimed := total - hdrLen
	payload := b[hdrLen:]
	if len(payload) > claimed {
		payload = payload[:claimed] // Ethernet padding, FCS
	}
	frag := binary.BigEndian.Uint16(b[6:])
	if frag&ipv4FragOffMask != 0 {
		p.Fragment = true
		p.PayloadLen = uint32(claimed)
		return StatusOK
	}
	if p.Proto == ipProtoAH {
		payload, claimed = skipIPv4AH(p, payload, claimed)
	}
	return decodeTransport(p, payload, claimed, frag&ipv4MoreFrags != 0)
}

// skipIPv4AH walks an IPsec Authentication Header (RFC 4302) at the start
// of the payload b of an IPv4 packet, as decodeIPv6 walks it among the
// extension headers: AH authenticates without encrypting, so what it
// protects follows it in the clear, the transport header (transport mode,
// as Windows domain isolation may use it) or an IP packet (tunnel mode,
// which decodeIPTunnel then follows). It sets p.Proto to AH's next header
// and returns the rest. An AH header not all captured, or longer than the
// packet, is left as the packet's protocol, as before Decode walked it.
func skipIPv4AH(p *Packet, b []byte, claimed int) ([]byte, int) {
	if len(b) < 2 {
		return b, claimed
	}
	n := (int(b[1]) + 2) * 4
	if n > claimed || n > len(b) {
		return b, claimed
	}
	p.Proto = b[0]
	return b[n:], claimed - n
}

func decodeIPv6(b []byte, p *Packet) Status {
	if len(b) < ipv6HdrLen {
		return StatusTruncated
	}
	if b[0]>>4 != 6 {
		return StatusMalformed
	}
	p.IPVersion = 6
	p.Src = [16]byte(b[8:24])
	p.Dst = [16]byte(b[24:40])
	payload := b[ipv6HdrLen:]
	claimed := int(binary.BigEndian.Uint16(b[4:]))
	if claimed == 0 {
		// A jumbogram, or segmentation offload: the capture is the packet.
		claimed = len(payload)
	}
	if len(payload) > claimed {
		payload = payload[:claimed]
	}
	next := b[6]
	firstFragment := false
	for range maxIPv6Headers {
		var hdrLen int
		switch next {
		case ipv6HopByHop, ipv6Routing, ipv6DestOptions, ipv6AuthHeader:
			if st := need(payload, claimed, 2); st != StatusOK {
				return st
			}
			if next == ipv6AuthHeader {
				hdrLen = (int(payload[1]) + 2) * 4
			} else {
				hdrLen = (int(payload[1]) + 1) * 8
			}
		case ipv6Fragment:
			hdrLen = 8
		default:
			p.Proto = next
			return decodeTransport(p, payload, claimed, firstFragment)
		}
		if st := need(payload, claimed, hdrLen); st != StatusOK {
			return st
		}
		if next == ipv6Fragment {
			offsetAndFlags := binary.BigEndian.Uint16(payload[2:])
			if offsetAndFlags>>3 != 0 {
				p.Proto = payload[0]
				p.Fragment = true
				p.PayloadLen = uint32(claimed - hdrLen)
				return StatusOK
			}
			// Offset 0 without the M flag is an atomic fragment: whole.
			firstFragment = offsetAndFlags&1 != 0
		}
		next = payload[0]
		payload = payload[hdrLen:]
		claimed -= hdrLen
	}
	return StatusMalformed
}

// need checks that a header of n bytes fits in the packet as its lengths
// describe it (else malformed) and in what was captured (else truncated).
func need(payload []byte, claimed, n int) Status {
	if claimed < n {
		return StatusMalformed
	}
	if len(payload) < n {
		return StatusTruncated
	}
	return StatusOK
}

// decodeTransport decodes the header at the start of an IP payload whose
// length, by the IP header, is claimed. p.IPVersion and p.Proto are set.
// A first fragment too short for the transport header is marked Fragment.
func decodeTransport(p *Packet, b []byte, claimed int, firstFragment bool) Status {
	var minLen int
	switch {
	case p.Proto == ProtoTCP:
		minLen = tcpMinHdrLen
	case p.Proto == ProtoUDP:
		minLen = udpHdrLen
	case p.Proto == ProtoICMP && p.IPVersion == 4, p.Proto == ProtoICMPv6 && p.IPVersion == 6:
		minLen = icmpMinHdrLen
	default:
		p.PayloadLen = uint32(claimed)
		decodeIPTunnel(p, b)
		return StatusOK
	}
	if firstFragment && claimed < minLen {
		p.Fragment = true
		p.PayloadLen = uint32(claimed)
		return StatusOK
	}
	if st := need(b, claimed, minLen); st != StatusOK {
		return st
	}
	switch p.Proto {
	case ProtoTCP:
		hdrLen := int(b[12]>>4) * 4
		if hdrLen < tcpMinHdrLen || hdrLen > claimed && !firstFragment {
			return StatusMalformed
		}
		p.SrcPort = binary.BigEndian.Uint16(b)
		p.DstPort = binary.BigEndian.Uint16(b[2:])
		p.Seq = binary.BigEndian.Uint32(b[4:])
		p.TCPFlags = b[13]
		// A first fragment may end inside the options (a SYN's are up to
		// 40 bytes, and a path that fragments at 68 bytes leaves 48 for
		// TCP): the ports and flags are there, the payload is in later
		// fragments and its length unknown.
		p.PayloadLen = uint32(max(claimed-hdrLen, 0))
		if p.PayloadLen > 0 && len(b) > hdrLen {
			p.PayloadOff = uint32(cap(b) - hdrLen) // Decode makes it an offset
		}
	case ProtoUDP:
		length := int(binary.BigEndian.Uint16(b[4:]))
		if length == 0 {
			length = claimed // IPv6 jumbogram
		}
		if length < udpHdrLen {
			return StatusMalformed
		}
		// A length past the IP payload is bounded by it, as Zeek bounds it:
		// the ports are there, the sender broken or hostile. A first
		// fragment holds only part of the datagram the UDP length
		// describes, which is the payload's true length.
		if !firstFragment && length > claimed {
			length = claimed
		}
		p.SrcPort = binary.BigEndian.Uint16(b)
		p.DstPort = binary.BigEndian.Uint16(b[2:])
		p.PayloadLen = uint32(length - udpHdrLen)
		if p.PayloadLen > 0 && len(b) > udpHdrLen {
			p.PayloadOff = uint32(cap(b) - udpHdrLen) // Decode makes it an offset
		}
		// After PayloadOff: a tunnel that decodes replaces the whole
		// Packet, PayloadOff included, with the packet inside.
		if isTunnelPort(p.DstPort) {
			decodeUDPTunnel(p, b[udpHdrLen:min(len(b), length)])
		}
	default: // ICMP, ICMPv6
		p.ICMPType, p.ICMPCode = b[0], b[1]
		p.PayloadLen = uint32(claimed)
		if isDestinationUnreachable(p) && len(b) > icmpHdrLen {
			decodeQuoted(b[icmpHdrLen:], p)
		}
	}
	return StatusOK
}

func isDestinationUnreachable(p *Packet) bool {
	if p.IPVersion == 4 {
		return p.ICMPType == 3
	}
	return p.ICMPType == 1
}

// decodeQuoted reads the packet an ICMP error quotes: its IP header and
// the first bytes of its transport header. Only what was quoted and
// captured counts (the quoted header's lengths describe the original
// packet, not the quote). Quoted is set only when the addresses, and for
// TCP and UDP the ports, are all there; a damaged quote leaves the outer
// packet's decoding intact.
func decodeQuoted(b []byte, p *Packet) {
	var q Packet
	var transport []byte
	switch b[0] >> 4 {
	case 4:
		if len(b) < ipv4MinHdrLen {
			return
		}
		hdrLen := int(b[0]&0x0f) * 4
		if hdrLen < ipv4MinHdrLen || len(b) < hdrLen {
			return
		}
		q.Proto = b[9]
		mapIPv4(&q.Src, b[12:16])
		mapIPv4(&q.Dst, b[16:20])
		if binary.BigEndian.Uint16(b[6:])&ipv4FragOffMask != 0 {
			q.Fragment = true
		}
		transport = b[hdrLen:]
	case 6:
		if len(b) < ipv6HdrLen {
			return
		}
		q.Src = [16]byte(b[8:24])
		q.Dst = [16]byte(b[24:40])
		q.Proto, transport, q.Fragment = skipQuotedIPv6Headers(b[6], b[ipv6HdrLen:])
		if transport == nil {
			return
		}
	default:
		return
	}
	if (q.Proto == ProtoTCP || q.Proto == ProtoUDP) && !q.Fragment {
		if len(transport) < 4 {
			return
		}
		p.QSrcPort = binary.BigEndian.Uint16(transport)
		p.QDstPort = binary.BigEndian.Uint16(transport[2:])
	}
	p.Quoted = true
	p.QProto = q.Proto
	p.QSrc, p.QDst = q.Src, q.Dst
}

// skipQuotedIPv6Headers walks the extension headers of a quoted IPv6
// packet. It returns a nil transport when the quote ends inside them.
func skipQuotedIPv6Headers(next uint8, b []byte) (proto uint8, transport []byte, laterFragment bool) {
	for range maxIPv6Headers {
		var hdrLen int
		switch next {
		case ipv6HopByHop, ipv6Routing, ipv6DestOptions, ipv6AuthHeader:
			if len(b) < 2 {
				return 0, nil, false
			}
			if next == ipv6AuthHeader {
				hdrLen = (int(b[1]) + 2) * 4
			} else {
				hdrLen = (int(b[1]) + 1) * 8
			}
		case ipv6Fragment:
			hdrLen = 8
		default:
			return next, b, false
		}
		if len(b) < hdrLen {
			return 0, nil, false
		}
		if next == ipv6Fragment && binary.BigEndian.Uint16(b[2:])>>3 != 0 {
			return b[0], b[hdrLen:], true
		}
		next = b[0]
		b = b[hdrLen:]
	}
	return 0, nil, false
}
