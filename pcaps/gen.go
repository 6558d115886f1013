package pcaps

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Epoch is the time of offset zero in every generated capture: packet times
// are Epoch plus a fixed offset, so captures never depend on the clock.
var Epoch = time.Date(2026, time.January, 5, 9, 0, 0, 0, time.UTC)

// Link types of the generated captures.
const (
	ethernet = layers.LinkTypeEthernet
	linuxSLL = layers.LinkTypeLinuxSLL
)

// Link is one capture interface.
type Link struct {
	Type layers.LinkType // LinkTypeEthernet or LinkTypeLinuxSLL
	Name string
	// Nanos gives the interface nanosecond timestamps: if_tsresol 9 in
	// pcapng, the nanosecond magic in classic pcap. Its packets then carry
	// sub-microsecond digits, so a reader that drops them is caught.
	Nanos bool
	// Host is, on a Linux SLL interface, the capturing host: its packets
	// are marked outgoing, all others incoming.
	Host netip.Addr
}

// Path says how a flow's packets appear on the capture: on which interface
// and under which 802.1Q tags.
type Path struct {
	Link int
	// VLANs are 802.1Q tags on an Ethernet link, outermost first. Two tags
	// make QinQ, the outer one with the 802.1ad EtherType 0x88a8.
	VLANs []uint16
}

// frame is one link-layer packet at its offset from Epoch. order breaks
// ties between frames of the same time, in the order they were built.
type frame struct {
	at    time.Duration
	order int
	link  int
	data  []byte
}

// Capture collects the frames of every flow of a scenario; flows are built
// one after another and interleave only when written, sorted by time.
type Capture struct {
	links  []Link
	frames []frame
	ipID   uint16
	flows  int // flows started so far: seeds sequence numbers
	err    error
}

// NewCapture returns an empty capture on the given interfaces (one for a
// classic pcap file).
func NewCapture(links ...Link) *Capture {
	return &Capture{links: links, ipID: 0x1000}
}

// Err returns the first error met while building frames.
func (c *Capture) Err() error { return c.err }

// End returns the offset of the last frame: the end of the capture.
func (c *Capture) End() time.Duration {
	var end time.Duration
	for _, f := range c.frames {
		if f.at > end {
			end = f.at
		}
	}
	return end
}

// sorted returns the frames in time order (stable in build order).
func (c *Capture) sorted() []frame {
	out := append([]frame(nil), c.frames...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].at != out[j].at {
			return out[i].at < out[j].at
		}
		return out[i].order < out[j].order
	})
	return out
}

var serializeOpts = gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}

// ipLayer returns the IPv4 or IPv6 header for a packet from src to dst.
func (c *Capture) ipLayer(src, dst netip.Addr, proto layers.IPProtocol, ttl uint8) gopacket.SerializableLayer {
	if src.Is4() {
		c.ipID++
		return &layers.IPv4{
			Version: 4, IHL: 5, TTL: ttl, Id: c.ipID, Flags: layers.IPv4DontFragment,
			Protocol: proto, SrcIP: net.IP(src.AsSlice()), DstIP: net.IP(dst.AsSlice()),
		}
	}
	return &layers.IPv6{
		Version: 6, HopLimit: ttl, NextHeader: proto,
		SrcIP: net.IP(src.AsSlice()), DstIP: net.IP(dst.AsSlice()),
	}
}

// networkLayer is what TCP, UDP and ICMPv6 need for their checksums.
func networkLayer(l gopacket.SerializableLayer) gopacket.NetworkLayer {
	return l.(gopacket.NetworkLayer)
}

// ipPacket serializes an IP packet: the IP header, the transport layers
// and the payload, with lengths and checksums filled in.
func ipPacket(ip gopacket.SerializableLayer, rest ...gopacket.SerializableLayer) ([]byte, error) {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, serializeOpts, append([]gopacket.SerializableLayer{ip}, rest...)...); err != nil {
		return nil, fmt.Errorf("serialize IP packet: %w", err)
	}
	return append([]byte(nil), buf.Bytes()...), nil
}

// macOf gives every host a stable, locally administered MAC address.
func macOf(a netip.Addr) net.HardwareAddr {
	b := a.As16()
	return net.HardwareAddr{0x02, 0x00, b[12], b[13], b[14], b[15]}
}

// emit frames an IP packet for its path and records it at offset at.
func (c *Capture) emit(at time.Duration, p Path, src, dst netip.Addr, packet []byte) {
	if c.err != nil {
		return
	}
	if p.Link < 0 || p.Link >= len(c.links) {
		c.err = fmt.Errorf("path names interface %d of %d", p.Link, len(c.links))
		return
	}
	etherType := layers.EthernetTypeIPv4
	if src.Is6() && !src.Is4In6() {
		etherType = layers.EthernetTypeIPv6
	}
	var data []byte
	switch c.links[p.Link].Type {
	case layers.LinkTypeEthernet:
		data = ethernetFrame(p.VLANs, macOf(src), macOf(dst), etherType, packet)
	case layers.LinkTypeLinuxSLL:
		if len(p.VLANs) > 0 {
			c.err = fmt.Errorf("VLAN tags on a Linux SLL interface")
			return
		}
		data = sllFrame(src == c.links[p.Link].Host, macOf(src), etherType, packet)
	default:
		c.err = fmt.Errorf("link type %v not supported by the generator", c.links[p.Link].Type)
		return
	}
	if c.links[p.Link].Nanos {
		// Frames of one flow are microseconds apart: this cannot reorder them.
		at += time.Duration(1 + len(c.frames)*137%999)
	}
	c.frames = append(c.frames, frame{at: at, order: len(c.frames), link: p.Link, data: data})
}

// ethernetFrame prepends an Ethernet header and the VLAN tags.
func ethernetFrame(vlans []uint16, src, dst net.HardwareAddr, etherType layers.EthernetType, packet []byte) []byte {
	ls := []gopacket.SerializableLayer{}
	next := etherType
	tags := make([]gopacket.SerializableLayer, len(vlans))
	for i := len(vlans) - 1; i >= 0; i-- {
		tags[i] = &layers.Dot1Q{VLANIdentifier: vlans[i], Type: next}
		next = layers.EthernetTypeDot1Q
		if i == 0 && len(vlans) > 1 {
			next = layers.EthernetTypeQinQ
		}
	}
	ls = append(ls, &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: next})
	ls = append(ls, tags...)
	ls = append(ls, gopacket.Payload(packet))
	buf := gopacket.NewSerializeBuffer()
	// Serializing fixed headers and a payload cannot fail.
	_ = gopacket.SerializeLayers(buf, gopacket.SerializeOptions{}, ls...)
	return append([]byte(nil), buf.Bytes()...)
}

// sllFrame prepends a Linux cooked (SLL) header, as `tcpdump -i any` on a
// host writes; gopacket cannot serialize one.
func sllFrame(outgoing bool, src net.HardwareAddr, etherType layers.EthernetType, packet []byte) []byte {
	h := make([]byte, 16, 16+len(packet))
	if outgoing {
		binary.BigEndian.PutUint16(h[0:], 4) // LINUX_SLL_OUTGOING; 0 is LINUX_SLL_HOST
	}
	binary.BigEndian.PutUint16(h[2:], 1)                  // ARPHRD_ETHER
	binary.BigEndian.PutUint16(h[4:], uint16(len(src)))   // address length
	copy(h[6:14], src)                                    // address, padded to 8
	binary.BigEndian.PutUint16(h[14:], uint16(etherType)) // protocol
	return append(h, packet...)
}
