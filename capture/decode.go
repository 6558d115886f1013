package capture

import (
	"encoding/binary"
	"strconv"
)

// Status says how far Decode got with a packet.
type Status uint8

// The zero Status is not a result Decode returns.
const (
	// StatusOK: the IP header was decoded, and the transport header too
	// when the packet is TCP, UDP, ICMP or ICMPv6 and not a later fragment.
	StatusOK Status = iota + 1
	// StatusNotIP: a valid frame that carries no IP (ARP, LLDP, another
	// EtherType or address family). Counted, not an error.
	StatusNotIP
	// StatusTruncated: the capture ends inside a header Decode needs.
	StatusTruncated
	// StatusMalformed: a header contradicts itself or the headers around it.
	StatusMalformed
	// StatusUnsupportedLink: Decode does not know the link type.
	StatusUnsupportedLink
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusNotIP:
		return "not_ip"
	case StatusTruncated:
		return "truncated"
	case StatusMalformed:
		return "malformed"
	case StatusUnsupportedLink:
		return "unsupported_link"
	}
	return "status(" + strconv.Itoa(int(s)) + ")"
}

// EtherTypes and address families Decode follows.
const (
	etherTypeIPv4   = 0x0800
	etherTypeIPv6   = 0x86dd
	etherTypeDot1Q  = 0x8100
	etherTypeDot1AD = 0x88a8
	etherTypeQinQ   = 0x9100 // pre-802.1ad vendor QinQ

	// maxVLANTags bounds a tag stack; real networks stop at two or three.
	maxVLANTags = 8

	afInet          = 2
	afInet6BSD      = 24 // NetBSD, OpenBSD
	afInet6FreeBSD  = 28
	afInet6Darwin   = 30
	ethernetHdrLen  = 14
	vlanTagLen      = 4
	sllHdrLen       = 16
	sll2HdrLen      = 20
	loopbackHdrLen  = 4
	ipv4MinHdrLen   = 20
	ipv6HdrLen      = 40
	tcpMinHdrLen    = 20
	udpHdrLen       = 8
	icmpHdrLen      = 8
	icmpMinHdrLen   = 4
	maxIPv6Headers  = 16
	ipv4FragOffMask = 0x1fff
	ipv4MoreFrags   = 0x2000
)

// Decode reads the headers of one packet whose first byte is the start of
// a link-layer header of type link. The caller sets p.TS and p.WireLen;
// Decode resets every other field and fills what it decodes. For any
// status but StatusOK and StatusNotIP, every field but TS and WireLen is
// left zero.
//
// Decode follows tunnels (tunnel.go): for a packet it decapsulated, the
// fields describe the innermost packet, Tunnels counts the encapsulations
// removed, and WireLen becomes the length of what the innermost tunnel
// carried, as the headers around it give it (MPLS, NSH and MACsec give
// none: the length less their own headers).
//
// Decode allocates nothing and never reads outside data.
func Decode(link LinkType, data []byte, p *Packet) Status {
	*p = Packet{TS: p.TS, WireLen: p.WireLen}
	st := decodeLink(link, data, p)
	if st != StatusOK && st != StatusNotIP {
		*p = Packet{TS: p.TS, WireLen: p.WireLen}
	}
	// decodeTransport left in PayloadOff the capacity of the payload's
	// slice, which every slice of data shares to its end: the difference
	// is the payload's offset, however many headers came before it.
	if p.PayloadOff != 0 {
		p.PayloadOff = uint32(cap(data)) - p.PayloadOff
	}
	return st
}

func decodeLink(link LinkType, b []byte, p *Packet) Status {
	switch link {
	case LinkEthernet:
		if len(b) < ethernetHdrLen {
			return StatusTruncated
		}
		return decodeEtherType(binary.BigEndian.Uint16(b[12:]), b[ethernetHdrLen:], p)
	case LinkLinuxSLL:
		if len(b) < sllHdrLen {
			return StatusTruncated
		}
		return decodeEtherType(binary.BigEndian.Uint16(b[14:]), b[sllHdrLen:], p)
	case LinkLinuxSLL2:
		if len(b) < sll2HdrLen {
			return StatusTruncated
		}
		return decodeEtherType(binary.BigEndian.Uint16(b), b[sll2HdrLen:], p)
	case LinkRaw, linkRawDLT12, linkRawDLT14:
		return decodeIP(b, p)
	case LinkIPv4:
		return decodeIPv4(b, p)
	case LinkIPv6:
		return decodeIPv6(b, p)
	case LinkNull:
		if len(b) < loopbackHdrLen {
			return StatusTruncated
		}
		// Host byte order of the writer: an address family fits in 16
		// bits, so a value that does not was written big-endian.
		af := binary.LittleEndian.Uint32(b)
		if af > 0xffff {
			af = binary.BigEndian.Uint32(b)
		}
		return decodeAddressFamily(af, b[loopbackHdrLen:], p)
	case LinkLoop:
		if len(b) < loopbackHdrLen {
			return StatusTruncated
		}
		return decodeAddressFamily(binary.BigEndian.Uint32(b), b[loopbackHdrLen:], p)
	}
	return StatusUnsupportedLink
}

// decodeEtherType follows an EtherType through any stack of VLAN tags.
func decodeEtherType(etype uint16, b []byte, p *Packet) Status {
	for tags := 0; ; tags++ {
		switch etype {
		case etherTypeIPv4:
			return decodeIPv4(b, p)
		case etherTypeIPv6:
			return decodeIPv6(b, p)
		case etherTypeDot1Q, etherTypeDot1AD, etherTypeQinQ:
			if tags == maxVLANTags {
				return StatusMalformed
			}
			if len(b) < vlanTagLen {
				return StatusTruncated
			}
			etype = binary.BigEndian.Uint16(b[2:])
			b = b[vlanTagLen:]
		default:
			return decodeEncapsulation(etype, b, p)
		}
	}
}

func decodeAddressFamily(af uint32, b []byte, p *Packet) Status {
	switch af {
	case afInet:
		return decodeIPv4(b, p)
	case afInet6BSD, afInet6FreeBSD, afInet6Darwin:
		return decodeIPv6(b, p)
	}
	return StatusNotIP
}
