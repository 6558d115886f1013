package capture

// Packet is the decoded header of one packet: the fields the flow table
// needs and nothing else. The decoder fills a Packet the caller owns and
// reuses, so decoding allocates nothing; no field refers to the packet's
// bytes, which the reader may overwrite with the next record.
//
// Addresses are 16 bytes; an IPv4 address is stored IPv4-mapped
// (::ffff:a.b.c.d) so that one fixed-size key serves both families.
type Packet struct {
	// TS is the capture time in Unix nanoseconds.
	TS int64
	// WireLen is the packet's original length on the wire; for a packet
	// Decode took out of a tunnel, the length of the frame or packet the
	// innermost tunnel carried (Decode says how it is found).
	WireLen uint32

	// IPVersion is 4 or 6, or 0 when the packet carries no IP header
	// (ARP, LLDP, a non-IP link protocol): such a packet is counted, not
	// followed.
	IPVersion uint8
	// Proto is the transport protocol number (6 TCP, 17 UDP, 1 ICMP,
	// 58 ICMPv6, or another number that is counted, not followed).
	Proto uint8
	// Fragment is set for an IPv4 or IPv6 fragment other than the first,
	// and for a first fragment too short to hold the ports: fragments are
	// counted, never mistaken for flows.
	Fragment bool

	Src, Dst         [16]byte
	SrcPort, DstPort uint16

	// TCPFlags holds the TCP flag bits (FIN 0x01, SYN 0x02, RST 0x04,
	// PSH 0x08, ACK 0x10, URG 0x20, ECE 0x40, CWR 0x80).
	TCPFlags uint8
	// Tunnels is the number of encapsulations (VXLAN, Geneve, GRE,
	// ERSPAN, MPLS, IP in IP, ...) Decode removed to reach the packet the
	// other fields describe; 0 for a packet as it was sent.
	Tunnels uint8
	// PayloadLen is the transport payload length taken from the IP and
	// transport headers (not from the captured length, which a snap length
	// may have cut).
	PayloadLen uint32
	// PayloadOff is where a TCP or UDP payload starts in the data given to
	// Decode, 0 when none of it was captured: what of the payload there is
	// is data[PayloadOff:][:min(PayloadLen, len(data)-PayloadOff)]. The
	// Packet refers to no byte of data; a caller that wants the payload
	// reads it before data is reused (classifier.Loader copies the few it
	// inspects).
	PayloadOff uint32
	// Seq is the TCP sequence number.
	Seq uint32

	// ICMPType and ICMPCode are set for ICMP and ICMPv6 packets.
	ICMPType, ICMPCode uint8
	// Quoted is set when the packet is an ICMP or ICMPv6 destination
	// unreachable that quotes the IP header and the first transport bytes
	// of the packet it answers; Q* then describe that quoted packet, in its
	// own direction (QSrc is the host that sent the original packet).
	Quoted             bool
	QProto             uint8
	QSrc, QDst         [16]byte
	QSrcPort, QDstPort uint16
}

// TCP flag bits, as they appear in Packet.TCPFlags.
const (
	TCPFin = 0x01
	TCPSyn = 0x02
	TCPRst = 0x04
	TCPPsh = 0x08
	TCPAck = 0x10
	TCPUrg = 0x20
)

// IP protocol numbers tpwatch follows.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)
