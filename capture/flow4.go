package capture

import "encoding/binary"

// Flow4 is what DecodeFlow4 reads of the commonest packet by far: an
// unfragmented IPv4 TCP or UDP packet in an untagged Ethernet frame.
// Addresses are big-endian numbers (192.0.2.1 is 0xc0000201).
type Flow4 struct {
	Src, Dst         uint32
	PayloadLen       uint32
	PayloadOff       uint32 // as Packet.PayloadOff
	Seq              uint32 // TCP
	SrcPort, DstPort uint16
	Proto            uint8
	TCPFlags         uint8
}

// DecodeFlow4 decodes the Ethernet frame b into f when it is such a packet
// with all its headers captured, and reports whether it was. For any other
// frame (a VLAN tag, IPv6, ICMP, a fragment, a segmentation-offload length,
// UDP to a port that may carry a tunnel, anything truncated or malformed)
// it reports false and leaves f unspecified: Decode then decodes it. For
// every frame it accepts, f holds exactly what Decode gives
// (TestDecodeFlow4IsDecode, over the corpus).
//
// It exists for speed: the reading goroutine's share of a replay was
// mostly Decode's general path (the link switch, the VLAN loop, 104 bytes
// of Packet cleared and written, 16-byte addresses read back).
func DecodeFlow4(b []byte, f *Flow4) bool {
	if len(b) < ethernetHdrLen+ipv4MinHdrLen || binary.BigEndian.Uint16(b[12:]) != etherTypeIPv4 {
		return false
	}
	ip := b[ethernetHdrLen:]
	if ip[0]>>4 != 4 {
		return false
	}
	hdrLen := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:]))
	// A fragment (offset or more-fragments set), a header that does not
	// fit, or a length of 0 (segmentation offload): the general path.
	if hdrLen < ipv4MinHdrLen || len(ip) < hdrLen || total < hdrLen ||
		binary.BigEndian.Uint16(ip[6:])&(ipv4FragOffMask|ipv4MoreFrags) != 0 {
		return false
	}
	claimed := total - hdrLen
	l4 := ip[hdrLen:]
	proto := ip[9]
	switch proto {
	case ProtoTCP:
		if claimed < tcpMinHdrLen || len(l4) < tcpMinHdrLen {
			return false
		}
		thl := int(l4[12]>>4) * 4
		if thl < tcpMinHdrLen || thl > claimed {
			return false
		}
		f.PayloadLen = uint32(claimed - thl)
		f.TCPFlags = l4[13]
		f.Seq = binary.BigEndian.Uint32(l4[4:])
		f.PayloadOff = 0
		if f.PayloadLen > 0 && len(l4) > thl {
			f.PayloadOff = uint32(ethernetHdrLen + hdrLen + thl)
		}
	case ProtoUDP:
		if claimed < udpHdrLen || len(l4) < udpHdrLen {
			return false
		}
		length := int(binary.BigEndian.Uint16(l4[4:]))
		if length == 0 {
			length = claimed
		}
		if length < udpHdrLen || length > claimed || isTunnelPort(binary.BigEndian.Uint16(l4[2:])) {
			return false
		}
		f.PayloadLen = uint32(length - udpHdrLen)
		f.TCPFlags, f.Seq, f.PayloadOff = 0, 0, 0
		if f.PayloadLen > 0 && len(l4) > udpHdrLen {
			f.PayloadOff = uint32(ethernetHdrLen + hdrLen + udpHdrLen)
		}
	default:
		return false
	}
	f.Src, f.Dst = binary.BigEndian.Uint32(ip[12:]), binary.BigEndian.Uint32(ip[16:])
	f.SrcPort, f.DstPort = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
	f.Proto = proto
	return true
}
