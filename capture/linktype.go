package capture

import "strconv"

// LinkType is a pcap LINKTYPE_ value: what header starts each packet.
type LinkType uint32

// The link types Decode understands. Others are read and returned as
// records, and Decode reports them as StatusUnsupportedLink.
const (
	// LinkNull is BSD loopback: a 4-byte address family in the byte order
	// of the host that wrote the capture.
	LinkNull LinkType = 0
	// LinkEthernet is Ethernet II, possibly with 802.1Q/802.1ad tags.
	LinkEthernet LinkType = 1
	// LinkRaw is a bare IPv4 or IPv6 packet; the version nibble tells which.
	// The DLT_RAW values 12 and 14 that some systems wrote into files are
	// read as LinkRaw.
	LinkRaw LinkType = 101
	// LinkLoop is OpenBSD loopback: a 4-byte address family in network
	// byte order.
	LinkLoop LinkType = 108
	// LinkLinuxSLL is the 16-byte Linux "cooked" header (any device).
	LinkLinuxSLL LinkType = 113
	// LinkIPv4 is a bare IPv4 packet.
	LinkIPv4 LinkType = 228
	// LinkIPv6 is a bare IPv6 packet.
	LinkIPv6 LinkType = 229
	// LinkLinuxSLL2 is the 20-byte Linux cooked header, version 2.
	LinkLinuxSLL2 LinkType = 276
)

// DLT_RAW as some systems wrote it into capture files instead of 101.
const (
	linkRawDLT12 LinkType = 12
	linkRawDLT14 LinkType = 14
)

// NormalLinkType maps a DLT or LINKTYPE value to the LinkType of capture
// files: the platform-specific DLT_RAW values (12, 14) become LinkRaw, as
// libpcap does when it reads a file; the others are the same number.
func NormalLinkType(v int) LinkType { return LinkType(v).normalize() }

func (l LinkType) normalize() LinkType {
	if l == linkRawDLT12 || l == linkRawDLT14 {
		return LinkRaw
	}
	return l
}

// Decodable reports whether Decode reads packets of this link type (any
// other is StatusUnsupportedLink).
func (l LinkType) Decodable() bool {
	switch l.normalize() {
	case LinkNull, LinkEthernet, LinkRaw, LinkLoop, LinkLinuxSLL, LinkIPv4, LinkIPv6, LinkLinuxSLL2:
		return true
	}
	return false
}

// String returns the name libpcap gives the link type (lower case), or
// "linktype(N)" for one Decode does not know.
func (l LinkType) String() string {
	switch l {
	case LinkNull:
		return "null"
	case LinkEthernet:
		return "ethernet"
	case LinkRaw, linkRawDLT12, linkRawDLT14:
		return "raw"
	case LinkLoop:
		return "loop"
	case LinkLinuxSLL:
		return "linux_sll"
	case LinkIPv4:
		return "ipv4"
	case LinkIPv6:
		return "ipv6"
	case LinkLinuxSLL2:
		return "linux_sll2"
	}
	return "linktype(" + strconv.FormatUint(uint64(l), 10) + ")"
}
