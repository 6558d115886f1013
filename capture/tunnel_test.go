package capture

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// Tunnelled frames from the shared corpus (file and frame number named),
// whole or cut after the innermost headers (their lengths still describe
// the whole packet, as with a snap length). Decode's innermost addresses
// and ports for each were checked against tshark's.
const (
	// tcpdump/vxlan.pcap frame 1: 192.168.203.1.45149 > 192.168.202.1.4789:
	// VXLAN, flags [I] (0x08), vni 100; 192.168.203.3 > 192.168.203.5:
	// ICMP echo request, id 1292, seq 1, length 64.
	hexVXLANICMP = "00163e0871cf36dc851eb340080045000086d2c0400040115152c0a8cb01c0a8ca01b05d12b500720000" +
		"0800000000006400" +
		"00308801000200163e37f6040800" +
		"45000054000040004001234fc0a8cb03c0a8cb050800f6f2050c0001fce2975100000000a6f8020000000000" +
		"101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637"
	// tcpdump/geneve.pcap frame 5: 20.0.0.2.43443 > 20.0.0.1.6081: Geneve,
	// vni 0xb, proto TEB; 30.0.0.2.51225 > 30.0.0.1.22: Flags [.], ack 1.
	hexGeneveTCP = "001b213cab64001b213cac300800450000668807400040118a7d1400000214000001a9b317c100520000" +
		"0000655800000b00" +
		"b69ed2495148fe71d883724f0800" +
		"450000345a1240004006a4af1e0000021e000001c819001617b30cb0ad805fe380100073af9600000101080aab6d56be05058989"
	// tcpdump/geneve-gcp.pcap frame 1: Geneve with 40 bytes of options,
	// proto IPv4 (no inner Ethernet); 192.168.100.2.2905 > 192.168.100.1.8080.
	hexGeneveOptionsIPv4 = "4201c0a864034201c0a864fe0800450000740000400002112e27c0a864fec0a86403f5fe17c100600000" +
		"0a00080000000000" + "01320101800000d1013202040800000dc0a864020000000000000000013203020000000000001234" +
		"45000028d944000040065837c0a86402c0a864010b591f902d5ade4078e9bfda50000200f5470000"
	// tcpdump/erspan-type-i-1.pcap frame 1: GRE (no sequence number)
	// proto ERSPAN: type I, an 802.1Q frame; 10.52.128.233 > 10.52.128.234:
	// ICMP echo request.
	hexERSPAN1ICMP = "00e0009b6d8100259e81b354080045fc007e00000000202fd7a501010101c0a8ff05" +
		"000088be" +
		"00115c3dde0000259e81b3548100c0650800" +
		"450000549f430000ff01062a0a3480e90a3480ea0800042aac520003fda18a280d0b1600504e4700fda18a28" +
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627"
	// tcpdump/erspan-type-ii-2.pcap frame 1: GRE flags [S] proto ERSPAN,
	// seq 1086760; ERSPAN type II, vlan 101, session 1, index 540773;
	// 10.200.101.2.1985 > 224.0.0.2.1985: HSRPv0.
	hexERSPAN2HSRP = "000c29f1581e005056c0000108004500006201284000fc2f74ebc0a8c343c0a8c3c4" +
		"100088be00109528" + "1065c00100084065" +
		"01005e00000200000c07acfe0800" +
		"45c0003000000000011169310ac86502e000000207c107c1001cd965000010010369fe00636973636f0000000ac86501"
	// tcpdump/erspan-type-iii-ft-0.pcap frame 1: GRE proto 0x22eb; ERSPAN
	// type III, vlan 20, frame type 0; an 802.1Q frame (vlan 20);
	// 10.29.11.1 > 10.29.20.21: ICMP echo request.
	hexERSPAN3ICMP = "005056acc80cf8c28890d27b08004500008a000000003f2f3d970a1d1e680a1d0b0d" +
		"000022eb" + "20140000a3595bff00000006" +
		"005056ac18a0f8c28890d27b810000140800" +
		"450000549d1240003f016b470a1d0b010a1d14150800269c3fcb00e22264905d0000000015220a0000000000" +
		"101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637"
	// tcpdump/erspan-type-iii-ft-7.pcap frame 1: ERSPAN type III with frame
	// type 7, which no document defines.
	hexERSPAN3FrameType7 = "001018b38f10881dfcc9dc0308004500007000000000ff2f3669c0a801acc0a801f9" +
		"100022eb0000bade" + "2001186534760b0100001e00" +
		"0000abc500004b87010081000100001969dfdc01810000010013aaaa0300008101a200000000000115830c02" +
		"00000000000000000000000000000000000000000000000000000000"
	// protocols/zeek/mpls-in-vlan.pcap frame 2, cut after 90 bytes:
	// 802.1Q vlan 0, MPLS label 16106 (bottom); 65.65.65.65.80 >
	// 65.65.65.65.32828: Flags [.], length 1448.
	hexMPLSTCP = "0008e34141410008e341414181000000" + "8847" + "03eea12c" +
		"450005dc397040003006504441414141414141410050803c185ca49ea030c48f80100036368500000101080a2f8facbb1f106e24" +
		"41414141414141414141414141414141"
	// tcpdump/mpls-over-udp.pcap frame 1: 10.100.12.170.58699 >
	// 10.100.13.157.6635: MPLS label 21 (bottom); 10.3.0.10 > 10.1.0.10:
	// ICMP echo request.
	hexMPLSoverUDP = "529a00c84f88529a00825c62080045000074676f00004011e3fb0a640caa0a640d9de54b19eb00600000" +
		"0001513f" +
		"45000054676f40003f01c0220a03000a0a01000a08007643a6eb001094073f5e000000004588030000000000" +
		"101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637"
	// protocols/libpcap/filter/AH-IPcomp-IPv4.pcap frame 1: 40.0.0.2 >
	// 30.0.0.1 protocol 51: AH (next header 4, length 4: 24 bytes, SPI
	// 0xc67ceadf, seq 1, 12 bytes of ICV), then 50.0.1.1.1026 >
	// 150.0.1.1.80: Flags [S], with options: tunnel-mode AH.
	hexAHTunnelTCP = "005056af07f0aabbcc0000000800" + "45000064430800004033f15c280000021e000001" +
		"04040000c67ceadf00000001ce9113cb69e210d6dbd24b8a" +
		"45000038fc4100004006b47c3200010196000101" +
		"040200504e850ec10000000090020b6811b80000020405b40402080a0a43091100000000"
	// protocols/arkime/ipv6-in-ipv4.pcap frame 1: 10.0.0.1 > 10.0.0.2
	// protocol 41; 2001:db8:0:1::1 > 2001:db8:0:1::2: ICMP6 echo request.
	hexIPv6inIPv4 = "c20142020000c200420200000800" + "4500007800090000ff29a7510a0000010a000002" +
		"60000000003c3a4020010db800000001000000000000000120010db800000001000000000000000280007e8f18dc0000" +
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f30313233"
	// tcpdump/wccp_redirect_gre.pcap frame 1, cut after 110 bytes: GRE
	// proto WCCP, a WCCPv2 redirect header; 10.254.127.195.1291 >
	// 10.254.108.228.445: Flags [P.], length 188.
	hexWCCP = "00145e2899a8000f353aab4008004500010cac830000fd2fa42e0afe7fc20afed652" +
		"0000883e" + "05590048" +
		"450000f0911440004006a6500afe7fc30afe6ce4050b01bd8383a18a550ac89d8018f98f290900000101080a00009e1e01abcb5f" +
		"000000b8ff534d4225000000"
	// protocols/arkime/ipv6-gtp6.pcap frame 1, cut after 130 bytes:
	// 802.1Q, IPv6, UDP to 2152: GTP-U G-PDU (flags 0x30), TEID 0x022be642;
	// IPv6 1111:2222:3333:4444:5555:7777::.53 >
	// 1111:2222:3333:4444:5555:8888:a8ac:7bc0.57030: DNS response.
	hexGTPU = "2c21720000000025ba000000" + "8100080086dd" +
		"60000000018c11fe1111222233334444555566660000000111112222333344445555666600000000" +
		"f35d0868018cadfe" + "30ff017c022be642" +
		"6002d995015411f211112222333344445555777700000000111122223333444455558888a8ac7bc0" +
		"0035dec60154e86a9d468180"
	// tcpdump/nsh-over-vxlan-gpe.pcap frame 1: UDP to 4790: VXLAN-GPE
	// (flags I P, next protocol NSH); NSH, 24 bytes, next protocol IPv4;
	// 192.168.0.1.10000 > 192.168.0.2.20000: UDP, length 4.
	hexVXLANGPENSH = "00000000000000000000000008004500005c402340004011fc6b7f0000017f00000112b612b6004849f7" +
		"0c000004ffffff00" + "30060201ffffffff00010201123456780002030112345678" +
		"45000020d4310000ff116647c0a80001c0a8000227104e20000c217874657374"
	// tcpdump/nsh.pcap frame 1: EtherType NSH, 24 bytes, next protocol
	// IPv4; 10.0.8.3.52229 > 10.13.13.13.8000: UDP, length 6.
	hexNSH = "5254004b735f02420a000803894f" + "000601010003090700000001000000020000000300000004" +
		"45000022284440004011e96a0a0008030a0d0d0dcc051f40000e0000626567696e0a"
	// tcpdump/pim-packet-assortment.pcap frame 55, cut after 80 bytes:
	// 10.0.0.2 > 10.0.0.1: PIMv2 Register; 10.0.0.2.2468 > 225.0.0.2.2468:
	// UDP, length 1344.
	hexPIMRegister = "d2f85a08d467100000000002080045000578000100004067611c0a0000020a000001" +
		"2100deff00000000" +
		"4500055c0001000040118a8c0a000002e100000209a409a405485772616161616161616161616161616161616161"
	// tcpdump/macsec-short-valid.pcap frame 1: MACsec, SC, not encrypted,
	// short length 34; 192.168.114.1.37459 > 192.168.114.2.6666: UDP,
	// length 4; then the 16-byte ICV.
	hexMACsecUDP = "b6b95d808d79caf9df4f509a88e5" + "202200000042caf9df4f509a" + "0064" + "0800" +
		"450000202df140004011a787c0a87201c0a8720292531a0a000c89e73132330a" +
		"079d1505db571783ceb1aec143e4e374"
	// tcpdump/macsec-encrypted.pcap frame 1, cut after 40 bytes: MACsec,
	// encrypted.
	hexMACsecEncrypted = "3e6ff374237c2eb73f3995c388e52c00000000482eb73f3995c3000150c68aabf6822b69adc7f4bca4d8"
	// protocols/zeek/tunnels/geneve-vxlan-dns-truncated.pcap frame 1:
	// 127.0.0.1.11803 > 127.0.0.1.6081: Geneve, proto IPv4; 127.0.0.1.26383 >
	// 127.0.0.1.4789: VXLAN, vni 4242; 172.16.11.201.36872 > 1.1.1.1.53: DNS.
	hexGeneveVXLANDNS = "0c552183136e0c552183136d0800450000a80000000020119c437f0000017f000001" +
		"2e1b17c100941f5b" + "0000080000109200" +
		"450000840000000020119c677f0000017f000001" + "670f12b500701f63" + "0800000000109200" +
		"74acb93fd27d48f17fa3b6ff0800" +
		"45000052f30000004011cdbfac100bc901010101" + "90080035003ec791" +
		"fa480120000100000000000109636f72656c6967687403636f6d0000010001000029100000000000000c000a00088731"
)

// hx decodes hex written in this file.
func hx(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// Builders of synthetic tunnelled packets, for what the corpus lacks.
// Lengths are computed, checksums left zero (Decode reads none).

func ethFrame(etype uint16, payload []byte) []byte {
	b := hx("005056abcdef001b213a4c5d")
	return append(binary.BigEndian.AppendUint16(b, etype), payload...)
}

func ipv4Packet(proto byte, src, dst string, payload []byte) []byte {
	b := make([]byte, 20, 20+len(payload))
	b[0], b[8], b[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(payload)))
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	return append(b, payload...)
}

func ipv6Packet(next byte, src, dst string, payload []byte) []byte {
	b := make([]byte, 40, 40+len(payload))
	b[0], b[6], b[7] = 0x60, next, 64
	binary.BigEndian.PutUint16(b[4:], uint16(len(payload)))
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	return append(b, payload...)
}

func udpDatagram(sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(payload)))
	return append(b, payload...)
}

// cat joins byte slices.
func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// nestIPinIP wraps the IPv4 packet inner in n IPv4 headers (protocol 4),
// the outermost from 10.0.0.1 to 10.0.1.1, the next from 10.0.0.2, ...
func nestIPinIP(n int, inner []byte) []byte {
	for i := n; i >= 1; i-- {
		inner = ipv4Packet(ipProtoIPIP, "10.0.0."+string(rune('0'+i)), "10.0.1."+string(rune('0'+i)), inner)
	}
	return inner
}

var (
	ipv4UDP    = hx(hexIPv4UDP)
	ethTCPSyn  = hx(hexEthIPv4TCPSyn)
	mplsLabel  = hx("00010040") // label 16, not the bottom of the stack
	mplsBottom = hx("00010140") // label 16, bottom of the stack
)

// The outer UDP datagram of hexVXLANICMP as tpwatch saw it before it
// followed tunnels, and still sees it when it is no tunnel.
var vxlanOuter = Packet{IPVersion: 4, Proto: ProtoUDP, Src: v4("192.168.203.1"), Dst: v4("192.168.202.1"),
	SrcPort: 45149, DstPort: 4789, PayloadLen: 106, PayloadOff: 42, WireLen: 1514}

var tunnelDecodeTests = []struct {
	name   string
	link   LinkType
	frame  []byte
	status Status
	want   Packet // WireLen: what Decode makes of 1514: the length the tunnel gives its payload
}{
	{"vxlan: icmp", LinkEthernet, hx(hexVXLANICMP), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoICMP, Src: v4("192.168.203.3"), Dst: v4("192.168.203.5"),
		ICMPType: 8, PayloadLen: 64, Tunnels: 1, WireLen: 98}},
	{"vxlan on linux's port 8472", LinkEthernet, hx(strings.Replace(hexVXLANICMP, "b05d12b5", "b05d2118", 1)), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoICMP, Src: v4("192.168.203.3"), Dst: v4("192.168.203.5"),
		ICMPType: 8, PayloadLen: 64, Tunnels: 1, WireLen: 98}},
	{"vxlan, a trailer after the outer packet (fcs, a switch's timestamp): the inner frame's length", LinkEthernet,
		cat(hx(hexVXLANICMP), hx("0123456789abcdef")), StatusOK, Packet{
			IPVersion: 4, Proto: ProtoICMP, Src: v4("192.168.203.3"), Dst: v4("192.168.203.5"),
			ICMPType: 8, PayloadLen: 64, Tunnels: 1, WireLen: 98}},
	{"udp to 4789 without the vxlan I flag stays udp", LinkEthernet,
		hx(strings.Replace(hexVXLANICMP, "0800000000006400", "0000000000006400", 1)), StatusOK, vxlanOuter},
	{"vxlan carrying arp stays the udp datagram", LinkEthernet,
		hx(strings.Replace(hexVXLANICMP, "f60408004500", "f60408064500", 1)), StatusOK, vxlanOuter},
	{"udp from port 4789 is not vxlan", LinkEthernet, hx(strings.Replace(hexVXLANICMP, "b05d12b5", "12b5b05d", 1)), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoUDP, Src: v4("192.168.203.1"), Dst: v4("192.168.202.1"),
		SrcPort: 4789, DstPort: 45149, PayloadLen: 106, WireLen: 1514, PayloadOff: 42}},
	{"vxlan: icmp unreachable quotes the inner flow", LinkEthernet,
		ethFrame(etherTypeIPv4, ipv4Packet(ProtoUDP, "198.51.100.1", "198.51.100.2",
			udpDatagram(50000, 4789, cat(hx("0800000000006400"), ethFrame(etherTypeIPv4, hx(hexIPv4ICMPUnreachTCP)))))),
		StatusOK, Packet{
			IPVersion: 4, Proto: ProtoICMP, Src: v4("192.0.2.1"), Dst: v4("192.0.2.10"),
			ICMPType: 3, ICMPCode: 13, PayloadLen: 36, Tunnels: 1, WireLen: 14 + 56,
			Quoted: true, QProto: ProtoTCP, QSrc: v4("192.0.2.10"), QDst: v4("192.0.2.11"), QSrcPort: 49152, QDstPort: 3741}},
	{"geneve: tcp", LinkEthernet, hx(hexGeneveTCP), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoTCP, Src: v4("30.0.0.2"), Dst: v4("30.0.0.1"),
		SrcPort: 51225, DstPort: 22, TCPFlags: TCPAck, Tunnels: 1, WireLen: 66, Seq: 397610160}},
	{"geneve: 40 bytes of options, ipv4 without ethernet", LinkEthernet, hx(hexGeneveOptionsIPv4), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoTCP, Src: v4("192.168.100.2"), Dst: v4("192.168.100.1"),
		SrcPort: 2905, DstPort: 8080, Tunnels: 1, WireLen: 40, Seq: 760929856}},
	{"geneve version 1 stays udp", LinkEthernet, hx(strings.Replace(hexGeneveTCP, "0000655800000b00", "4000655800000b00", 1)), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoUDP, Src: v4("20.0.0.2"), Dst: v4("20.0.0.1"),
		SrcPort: 43443, DstPort: 6081, PayloadLen: 74, WireLen: 1514, PayloadOff: 42}},
	{"geneve in which vxlan: dns", LinkEthernet, hx(hexGeneveVXLANDNS), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoUDP, Src: v4("172.16.11.201"), Dst: v4("1.1.1.1"),
		SrcPort: 36872, DstPort: 53, PayloadLen: 54, Tunnels: 2, WireLen: 96, PayloadOff: 128}},
	{"erspan type I: vlan, icmp", LinkEthernet, hx(hexERSPAN1ICMP), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoICMP, Src: v4("10.52.128.233"), Dst: v4("10.52.128.234"),
		ICMPType: 8, PayloadLen: 64, Tunnels: 1, WireLen: 102}},
	{"erspan type II: hsrp", LinkEthernet, hx(hexERSPAN2HSRP), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoUDP, Src: v4("10.200.101.2"), Dst: v4("224.0.0.2"),
		SrcPort: 1985, DstPort: 1985, PayloadLen: 20, Tunnels: 1, WireLen: 62, PayloadOff: 92}},
	{"erspan type II version 2 stays gre", LinkEthernet, hx(strings.Replace(hexERSPAN2HSRP, "1065c001", "2065c001", 1)), StatusOK, Packet{
		IPVersion: 4, Proto: ipProtoGRE, Src: v4("192.168.195.67"), Dst: v4("192.168.195.196"),
		PayloadLen: 78, WireLen: 1514}},
	{"erspan type III: vlan, icmp", LinkEthernet, hx(hexERSPAN3ICMP), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoICMP, Src: v4("10.29.11.1"), Dst: v4("10.29.20.21"),
		ICMPType: 8, PayloadLen: 64, Tunnels: 1, WireLen: 102}},
	{"erspan type III frame type 7 stays gre", LinkEthernet, hx(hexERSPAN3FrameType7), StatusOK, Packet{
		IPVersion: 4, Proto: ipProtoGRE, Src: v4("192.168.1.172"), Dst: v4("192.168.1.249"),
		PayloadLen: 92, WireLen: 1514}},
	{"erspan type III with the platform subheader", LinkEthernet,
		ethFrame(etherTypeIPv4, ipv4Packet(ipProtoGRE, "198.51.100.1", "198.51.100.2",
			cat(hx("000022eb"), hx("20140000a3595bff00000007"), hx("0123456789abcdef"), ethTCPSyn))),
		StatusOK, Packet{
			IPVersion: 4, Proto: ProtoTCP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
			SrcPort: 49152, DstPort: 3741, TCPFlags: TCPSyn, Tunnels: 1, WireLen: 60, Seq: 1000}},
	{"erspan type III frame type 2: ip", LinkEthernet,
		ethFrame(etherTypeIPv4, ipv4Packet(ipProtoGRE, "198.51.100.1", "198.51.100.2",
			cat(hx("000022eb"), hx("20140000a3595bff00000800"), ipv4UDP))),
		StatusOK, Packet{
			IPVersion: 4, Proto: ProtoUDP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
			SrcPort: 53000, DstPort: 88, PayloadLen: 8, Tunnels: 1, WireLen: 36, PayloadOff: 78}},
	{"gre with checksum, key and sequence number: ipv4", LinkRaw,
		ipv4Packet(ipProtoGRE, "198.51.100.1", "198.51.100.2", cat(hx("b0000800"), hx("00000000"), hx("0000002a"), hx("00000001"), ipv4UDP)),
		StatusOK, Packet{
			IPVersion: 4, Proto: ProtoUDP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
			SrcPort: 53000, DstPort: 88, PayloadLen: 8, Tunnels: 1, WireLen: 36, PayloadOff: 64}},
	{"gre transparent ethernet bridging", LinkEthernet,
		ethFrame(etherTypeIPv4, ipv4Packet(ipProtoGRE, "198.51.100.1", "198.51.100.2", cat(hx("00006558"), ethTCPSyn))),
		StatusOK, Packet{
			IPVersion: 4, Proto: ProtoTCP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
			SrcPort: 49152, DstPort: 3741, TCPFlags: TCPSyn, Tunnels: 1, WireLen: 60, Seq: 1000}},
	{"gre over ipv6: ipv6", LinkRaw,
		ipv6Packet(ipProtoGRE, "2001:db8::1", "2001:db8::2", cat(hx("000086dd"), hx(hexIPv6UDP))),
		StatusOK, Packet{
			IPVersion: 6, Proto: ProtoUDP, Src: addr("2001:db8::10"), Dst: addr("2001:db8::20"),
			SrcPort: 5353, DstPort: 10001, PayloadLen: 5, Tunnels: 1, WireLen: 53, PayloadOff: 92}},
	{"gre version 1 (pptp) stays gre", LinkRaw,
		ipv4Packet(ipProtoGRE, "198.51.100.1", "198.51.100.2", cat(hx("3001880b00240001"), hx("00000001"), ipv4UDP)),
		StatusOK, Packet{
			IPVersion: 4, Proto: ipProtoGRE, Src: v4("198.51.100.1"), Dst: v4("198.51.100.2"), PayloadLen: 48, WireLen: 1514}},
	{"gre with routing stays gre", LinkRaw,
		ipv4Packet(ipProtoGRE, "198.51.100.1", "198.51.100.2", cat(hx("40000800"), ipv4UDP)),
		StatusOK, Packet{
			IPVersion: 4, Proto: ipProtoGRE, Src: v4("198.51.100.1"), Dst: v4("198.51.100.2"), PayloadLen: 40, WireLen: 1514}},
	{"gre: mpls: ipv4", LinkRaw,
		ipv4Packet(ipProtoGRE, "198.51.100.1", "198.51.100.2", cat(hx("00008847"), mplsBottom, ipv4UDP)),
		StatusOK, Packet{
			IPVersion: 4, Proto: ProtoUDP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
			SrcPort: 53000, DstPort: 88, PayloadLen: 8, Tunnels: 2, WireLen: 36, PayloadOff: 56}},
	{"wccp redirect in gre", LinkEthernet, hx(hexWCCP), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoTCP, Src: v4("10.254.127.195"), Dst: v4("10.254.108.228"),
		SrcPort: 1291, DstPort: 445, TCPFlags: TCPPsh | TCPAck, PayloadLen: 188, Tunnels: 1, WireLen: 240, PayloadOff: 94, Seq: 2206441866}},
	{"mpls in vlan: tcp", LinkEthernet, hx(hexMPLSTCP), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoTCP, Src: v4("65.65.65.65"), Dst: v4("65.65.65.65"),
		SrcPort: 80, DstPort: 32828, TCPFlags: TCPAck, PayloadLen: 1448, Tunnels: 1, WireLen: 1514 - 4, PayloadOff: 74, Seq: 408724638}},
	{"mpls, two labels: ipv4", LinkEthernet, ethFrame(etherTypeMPLS, cat(mplsLabel, mplsBottom, ipv4UDP)), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoUDP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
		SrcPort: 53000, DstPort: 88, PayloadLen: 8, Tunnels: 1, WireLen: 1514 - 8, PayloadOff: 50}},
	{"mpls pseudowire: control word, ethernet", LinkEthernet, ethFrame(etherTypeMPLS, cat(mplsBottom, hx("00000000"), ethTCPSyn)), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoTCP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
		SrcPort: 49152, DstPort: 3741, TCPFlags: TCPSyn, Tunnels: 1, WireLen: 1514 - 8, Seq: 1000}},
	{"mpls, payload nibble 5", LinkEthernet, ethFrame(etherTypeMPLS, cat(mplsBottom, hx("55"+hexIPv4UDP[2:]))), StatusNotIP, Packet{WireLen: 1514}},
	{"mpls, nine labels", LinkEthernet, ethFrame(etherTypeMPLS, cat(bytesRepeat(mplsLabel, 8), mplsBottom, ipv4UDP)), StatusNotIP, Packet{WireLen: 1514}},
	{"mpls, bottom label last", LinkEthernet, ethFrame(etherTypeMPLS, cat(mplsLabel, mplsBottom)), StatusNotIP, Packet{WireLen: 1514}},
	{"mpls over udp", LinkEthernet, hx(hexMPLSoverUDP), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoICMP, Src: v4("10.3.0.10"), Dst: v4("10.1.0.10"),
		ICMPType: 8, PayloadLen: 64, Tunnels: 2, WireLen: 84}},
	{"ipv6 in ipv4", LinkEthernet, hx(hexIPv6inIPv4), StatusOK, Packet{
		IPVersion: 6, Proto: ProtoICMPv6, Src: addr("2001:db8:0:1::1"), Dst: addr("2001:db8:0:1::2"),
		ICMPType: 128, PayloadLen: 60, Tunnels: 1, WireLen: 100}},
	{"ipv4 in ipv6", LinkRaw, ipv6Packet(ipProtoIPIP, "2001:db8::1", "2001:db8::2", ipv4UDP), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoUDP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
		SrcPort: 53000, DstPort: 88, PayloadLen: 8, Tunnels: 1, WireLen: 36, PayloadOff: 68}},
	{"ipv6 in ipv6", LinkRaw, ipv6Packet(ipProtoIPv6, "2001:db8::1", "2001:db8::2", hx(hexIPv6UDP)), StatusOK, Packet{
		IPVersion: 6, Proto: ProtoUDP, Src: addr("2001:db8::10"), Dst: addr("2001:db8::20"),
		SrcPort: 5353, DstPort: 10001, PayloadLen: 5, Tunnels: 1, WireLen: 53, PayloadOff: 88}},
	{"ipv4 protocol 4 holding ipv6 stays outer", LinkRaw, ipv4Packet(ipProtoIPIP, "198.51.100.1", "198.51.100.2", hx(hexIPv6UDP)), StatusOK, Packet{
		IPVersion: 4, Proto: ipProtoIPIP, Src: v4("198.51.100.1"), Dst: v4("198.51.100.2"), PayloadLen: 53, WireLen: 1514}},
	{"ip in ip, 4 deep", LinkRaw, nestIPinIP(4, ipv4UDP), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoUDP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
		SrcPort: 53000, DstPort: 88, PayloadLen: 8, Tunnels: 4, WireLen: 36, PayloadOff: 108}},
	{"ip in ip, 5 deep: the fifth is not followed", LinkRaw, nestIPinIP(5, ipv4UDP), StatusOK, Packet{
		IPVersion: 4, Proto: ipProtoIPIP, Src: v4("10.0.0.5"), Dst: v4("10.0.1.5"),
		PayloadLen: 36, Tunnels: 4, WireLen: 56}},
	{"later fragment of a gre packet", LinkRaw,
		hx(strings.Replace(hexIPv4LaterFragment, "40110000", "402f0000", 1)), StatusOK, Packet{
			IPVersion: 4, Proto: ipProtoGRE, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
			Fragment: true, PayloadLen: 8, WireLen: 1514}},
	{"gtp-u: ipv6 udp", LinkEthernet, hx(hexGTPU), StatusOK, Packet{
		IPVersion: 6, Proto: ProtoUDP, Src: addr("1111:2222:3333:4444:5555:7777::"), Dst: addr("1111:2222:3333:4444:5555:8888:a8ac:7bc0"),
		SrcPort: 53, DstPort: 57030, PayloadLen: 332, Tunnels: 1, WireLen: 380, PayloadOff: 122}},
	{"gtp-u with an extension header", LinkRaw,
		ipv4Packet(ProtoUDP, "198.51.100.1", "198.51.100.2", udpDatagram(2152, 2152, cat(hx("34ff002c00000001"), hx("00000085"), hx("01100000"), ipv4UDP))),
		StatusOK, Packet{
			IPVersion: 4, Proto: ProtoUDP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
			SrcPort: 53000, DstPort: 88, PayloadLen: 8, Tunnels: 1, WireLen: 36, PayloadOff: 72}},
	{"gtp-u echo request stays udp", LinkRaw,
		ipv4Packet(ProtoUDP, "198.51.100.1", "198.51.100.2", udpDatagram(2152, 2152, hx("320100040000000000010000"))),
		StatusOK, Packet{
			IPVersion: 4, Proto: ProtoUDP, Src: v4("198.51.100.1"), Dst: v4("198.51.100.2"),
			SrcPort: 2152, DstPort: 2152, PayloadLen: 12, WireLen: 1514, PayloadOff: 28}},
	{"vxlan-gpe: nsh: udp", LinkEthernet, hx(hexVXLANGPENSH), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoUDP, Src: v4("192.168.0.1"), Dst: v4("192.168.0.2"),
		SrcPort: 10000, DstPort: 20000, PayloadLen: 4, Tunnels: 2, WireLen: 32, PayloadOff: 102}},
	{"nsh over ethernet", LinkEthernet, hx(hexNSH), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoUDP, Src: v4("10.0.8.3"), Dst: v4("10.13.13.13"),
		SrcPort: 52229, DstPort: 8000, PayloadLen: 6, Tunnels: 1, WireLen: 1514 - 24, PayloadOff: 66}},
	{"pim register", LinkEthernet, hx(hexPIMRegister), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoUDP, Src: v4("10.0.0.2"), Dst: v4("225.0.0.2"),
		SrcPort: 2468, DstPort: 2468, PayloadLen: 1344, Tunnels: 1, WireLen: 1372, PayloadOff: 70}},
	{"ipv4 ah, tunnel mode: tcp", LinkEthernet, hx(hexAHTunnelTCP), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoTCP, Src: v4("50.0.1.1"), Dst: v4("150.0.1.1"),
		SrcPort: 1026, DstPort: 80, TCPFlags: TCPSyn, Seq: 0x4e850ec1, Tunnels: 1, WireLen: 56}},
	{"ipv4 ah, transport mode: udp (not a tunnel)", LinkRaw,
		ipv4Packet(ipProtoAH, "192.0.2.10", "192.0.2.11", cat(hx("11040000c67ceadf00000001ce9113cb69e210d6dbd24b8a"), hx(hexIPv4UDP[40:]))),
		StatusOK, Packet{
			IPVersion: 4, Proto: ProtoUDP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
			SrcPort: 53000, DstPort: 88, PayloadLen: 8, PayloadOff: 20 + 24 + 8, WireLen: 1514}},
	{"ipv4 ah longer than the packet stays ah", LinkRaw,
		ipv4Packet(ipProtoAH, "192.0.2.10", "192.0.2.11", cat(hx("11ff0000c67ceadf00000001ce9113cb69e210d6dbd24b8a"), hx(hexIPv4UDP[40:]))),
		StatusOK, Packet{
			IPVersion: 4, Proto: ipProtoAH, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"), PayloadLen: 40, WireLen: 1514}},
	{"ipv4 ah carrying ipcomp stays ipcomp", LinkRaw,
		ipv4Packet(ipProtoAH, "192.0.2.10", "192.0.2.11", cat(hx("6c040000c67ceadf00000001ce9113cb69e210d6dbd24b8a"), hx("04000001"), bytesRepeat(hx("ab"), 16))),
		StatusOK, Packet{
			IPVersion: 4, Proto: 108, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"), PayloadLen: 20, WireLen: 1514}},
	{"macsec, integrity only", LinkEthernet, hx(hexMACsecUDP), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoUDP, Src: v4("192.168.114.1"), Dst: v4("192.168.114.2"),
		SrcPort: 37459, DstPort: 6666, PayloadLen: 4, Tunnels: 1, WireLen: 1514 - 16, PayloadOff: 58}},
	{"macsec, encrypted", LinkEthernet, hx(hexMACsecEncrypted), StatusNotIP, Packet{WireLen: 1514}},
}

func bytesRepeat(b []byte, n int) []byte {
	var out []byte
	for range n {
		out = append(out, b...)
	}
	return out
}

func TestDecodeTunnels(t *testing.T) {
	for _, tt := range tunnelDecodeTests {
		t.Run(tt.name, func(t *testing.T) {
			p := Packet{TS: 42, WireLen: 1514, Quoted: true, SrcPort: 9, Tunnels: 3}
			got := Decode(tt.link, tt.frame, &p)
			if got != tt.status {
				t.Fatalf("status = %v, want %v", got, tt.status)
			}
			want := tt.want
			want.TS = 42
			if p != want {
				t.Errorf("decoded\n %+v\nwant\n %+v", p, want)
			}
			if why := transportBefore(tt.frame, &p); why != "" {
				t.Errorf("PayloadOff %d: %s", p.PayloadOff, why)
			}
			if ok, why := flow4Disagreement(tt.link, tt.frame); why != "" || ok && p.Tunnels > 0 {
				t.Errorf("DecodeFlow4 takes a tunnelled frame: %v %s", ok, why)
			}
		})
	}
}

// transportBefore checks, apart from the decoder's arithmetic, that a
// payload's offset is right behind the header of the transport Decode
// reported, however many tunnels came before it: the UDP header, or a TCP
// header whose data offset ends there, with the packet's ports.
func transportBefore(frame []byte, p *Packet) string {
	off := int(p.PayloadOff)
	if off == 0 {
		return ""
	}
	if off >= len(frame) {
		return "past the frame"
	}
	ports := func(h int) bool {
		return h >= 0 && binary.BigEndian.Uint16(frame[h:]) == p.SrcPort && binary.BigEndian.Uint16(frame[h+2:]) == p.DstPort
	}
	switch p.Proto {
	case ProtoUDP:
		if ports(off - udpHdrLen) {
			return ""
		}
	case ProtoTCP:
		for h := off - tcpMinHdrLen; h >= max(0, off-60); h -= 4 {
			if ports(h) && h+int(frame[h+12]>>4)*4 == off {
				return ""
			}
		}
	}
	return "not right after the packet's transport header"
}

// TestDecodeTunnelsLimit checks DecodeTunnels layer by layer: each limit
// gives the packet that many tunnels down, and a limit beyond the packet's
// depth gives what Decode gives.
func TestDecodeTunnelsLimit(t *testing.T) {
	frame := hx(hexGeneveVXLANDNS)
	layers := []Packet{
		{IPVersion: 4, Proto: ProtoUDP, Src: v4("127.0.0.1"), Dst: v4("127.0.0.1"), SrcPort: 11803, DstPort: 6081,
			PayloadLen: 140, PayloadOff: 42, WireLen: 1514},
		{IPVersion: 4, Proto: ProtoUDP, Src: v4("127.0.0.1"), Dst: v4("127.0.0.1"), SrcPort: 26383, DstPort: 4789,
			PayloadLen: 104, PayloadOff: 78, Tunnels: 1, WireLen: 132},
		{IPVersion: 4, Proto: ProtoUDP, Src: v4("172.16.11.201"), Dst: v4("1.1.1.1"), SrcPort: 36872, DstPort: 53,
			PayloadLen: 54, PayloadOff: 128, Tunnels: 2, WireLen: 96},
	}
	for limit := -1; limit <= MaxTunnels+1; limit++ {
		want := layers[min(max(limit, 0), len(layers)-1)]
		p := Packet{WireLen: 1514}
		if st := DecodeTunnels(LinkEthernet, frame, &p, limit); st != StatusOK || p != want {
			t.Errorf("limit %d: %v %+v, want %+v", limit, st, p, want)
		}
	}
}

// TestDecodeTunnelsEveryTruncation cuts tunnelled frames at every length:
// no panic; a cut inside the outermost headers is truncated (past the
// Ethernet header of MPLS and MACsec, which have no outer IP packet, a
// frame without IP, as before Decode followed them); any other
// cut gives one of the whole frame's layers, as DecodeTunnels gives it,
// never a half-read one, deeper as the cut moves on, and the innermost
// once all its headers are there.
func TestDecodeTunnelsEveryTruncation(t *testing.T) {
	for _, tc := range []struct {
		name           string
		link           LinkType
		frame          []byte
		outer, headers int // outermost headers, all headers
		short          Status
	}{
		{"vxlan", LinkEthernet, hx(hexVXLANICMP), 14 + 20 + 8, 50 + 14 + 20 + 4, StatusTruncated},
		{"geneve in which vxlan", LinkEthernet, hx(hexGeneveVXLANDNS), 14 + 20 + 8, 86 + 14 + 20 + 8, StatusTruncated},
		{"geneve options", LinkEthernet, hx(hexGeneveOptionsIPv4), 14 + 20 + 8, 90 + 40, StatusTruncated},
		{"erspan II", LinkEthernet, hx(hexERSPAN2HSRP), 14 + 20, 50 + 14 + 20 + 8, StatusTruncated},
		{"erspan III subheader", LinkEthernet, tunnelFrame(t, "erspan type III with the platform subheader"), 14 + 20, 58 + 14 + 20 + 20, StatusTruncated},
		{"gre flags", LinkRaw, tunnelFrame(t, "gre with checksum, key and sequence number: ipv4"), 20, 36 + 28, StatusTruncated},
		{"gtp-u extension", LinkRaw, tunnelFrame(t, "gtp-u with an extension header"), 28, 44 + 28, StatusTruncated},
		{"vxlan-gpe nsh", LinkEthernet, hx(hexVXLANGPENSH), 14 + 20 + 8, 74 + 28, StatusTruncated},
		{"ip in ip 4 deep", LinkRaw, nestIPinIP(4, ipv4UDP), 20, 80 + 28, StatusTruncated},
		{"mpls pseudowire", LinkEthernet, tunnelFrame(t, "mpls pseudowire: control word, ethernet"), 22 + 14 + 20 + 20, 22 + 14 + 20 + 20, StatusNotIP},
		{"macsec", LinkEthernet, hx(hexMACsecUDP), 30 + 28, 30 + 28, StatusNotIP},
	} {
		var whole Packet
		if st := Decode(tc.link, tc.frame, &whole); st != StatusOK || whole.Tunnels == 0 {
			t.Fatalf("%s: whole frame: %v, %d tunnels", tc.name, st, whole.Tunnels)
		}
		layers := make([]Packet, whole.Tunnels+1)
		for i := range layers {
			DecodeTunnels(tc.link, tc.frame, &layers[i], i)
		}
		depth := 0
		for n := 0; n <= len(tc.frame); n++ {
			var p Packet
			// Exactly n bytes, so that reading past them is caught by the
			// race detector and -d=checkptr too.
			cut := append([]byte(nil), tc.frame[:n]...)
			st := Decode(tc.link, cut, &p)
			switch {
			case n < tc.outer:
				if st != StatusTruncated && st != tc.short {
					t.Errorf("%s cut at %d: %v, want %v", tc.name, n, st, tc.short)
				}
				if p != (Packet{}) {
					t.Errorf("%s cut at %d: fields left set: %+v", tc.name, n, p)
				}
				continue
			case st != StatusOK:
				t.Errorf("%s cut at %d: %v, want ok", tc.name, n, st)
				continue
			}
			// A payload none of which is captured has no place.
			uncut := func(l Packet) Packet {
				if n <= int(l.PayloadOff) {
					l.PayloadOff = 0
				}
				return l
			}
			if int(p.Tunnels) < depth || int(p.Tunnels) >= len(layers) || p != uncut(layers[p.Tunnels]) {
				t.Errorf("%s cut at %d: %+v, not one of the layers at or below %d", tc.name, n, p, depth)
				continue
			}
			depth = int(p.Tunnels)
			if n >= tc.headers && p != uncut(whole) {
				t.Errorf("%s cut at %d (all headers there): %+v, want %+v", tc.name, n, p, whole)
			}
		}
	}
}

// TestDecodeIPv4AHEveryTruncation cuts a tunnel-mode AH frame at every
// length past the outer IPv4 header: a cut inside AH leaves the packet
// what it was before Decode walked AH (protocol 51); past AH it is the IP
// in IP packet AH protects, until the inner packet's headers are all
// there.
func TestDecodeIPv4AHEveryTruncation(t *testing.T) {
	frame := hx(hexAHTunnelTCP)
	var whole Packet
	Decode(LinkEthernet, frame, &whole)
	const ah, inner = 14 + 20 + 24, 14 + 20 + 24 + 20 + 20
	for n := 14 + 20; n <= len(frame); n++ {
		var p Packet
		st := Decode(LinkEthernet, append([]byte(nil), frame[:n]...), &p)
		var want uint8
		switch {
		case n < ah:
			want = ipProtoAH
		case n < inner:
			want = ipProtoIPIP
		default:
			if st != StatusOK || p != whole {
				t.Errorf("cut at %d: %v %+v, want %+v", n, st, p, whole)
			}
			continue
		}
		if st != StatusOK || p.Proto != want || p.Tunnels != 0 || p.Src != v4("40.0.0.2") || p.SrcPort != 0 {
			t.Errorf("cut at %d: %v %+v, want the outer packet of protocol %d", n, st, p, want)
		}
	}
}

// tunnelFrame returns the frame of a tunnelDecodeTests row.
func tunnelFrame(t testing.TB, name string) []byte {
	t.Helper()
	for _, tt := range tunnelDecodeTests {
		if tt.name == name {
			return tt.frame
		}
	}
	t.Fatalf("no tunnel test %q", name)
	return nil
}

// TestDecodeTunnelsFallBack changes each byte of the tunnel headers of a
// VXLAN and an ERSPAN frame to a spread of values: whatever Decode makes
// of it is the outer packet or a decapsulated one, and a packet that is
// not decapsulated is exactly the outer packet.
func TestDecodeTunnelsFallBack(t *testing.T) {
	values := []byte{0x00, 0x01, 0x04, 0x08, 0x0c, 0x10, 0x20, 0x22, 0x3f, 0x40, 0x45, 0x60, 0x80, 0xff}
	for _, tc := range []struct {
		name     string
		frame    []byte
		from, to int // the tunnel's own header bytes and the inner headers
	}{
		{"vxlan", hx(hexVXLANICMP), 42, 50 + 14 + 20},
		{"erspan II", hx(hexERSPAN2HSRP), 34, 50 + 14 + 20},
		{"geneve", hx(hexGeneveOptionsIPv4), 42, 90 + 20},
	} {
		var outer Packet
		DecodeTunnels(LinkEthernet, tc.frame, &outer, 0)
		for i := tc.from; i < tc.to; i++ {
			for _, v := range values {
				d := append([]byte(nil), tc.frame...)
				d[i] = v
				var p Packet
				st := Decode(LinkEthernet, d, &p)
				if st != StatusOK || p.Tunnels == 0 && p != outer {
					t.Errorf("%s, byte %d set to %#x: %v %+v, want the outer packet %+v", tc.name, i, v, st, p, outer)
				}
			}
		}
	}
}

// TestTunnelFilterNamesEveryTunnel checks TunnelFilter against what Decode
// follows: every UDP port and no other, every IP protocol and EtherType.
func TestTunnelFilterNamesEveryTunnel(t *testing.T) {
	terms := map[string]bool{}
	for _, term := range strings.Split(TunnelFilter, " or ") {
		terms[term] = true
	}
	for port := range 1 << 16 {
		if in := terms["udp dst port "+strconv.Itoa(port)]; in != isTunnelPort(uint16(port)) {
			t.Errorf("udp port %d: in the filter %v, a tunnel port %v", port, in, !in)
		}
	}
	for _, proto := range []int{ipProtoIPIP, ipProtoIPv6, ipProtoGRE, ipProtoPIM} {
		for _, ip := range []string{"ip", "ip6"} {
			if term := ip + " proto " + strconv.Itoa(proto); !terms[term] {
				t.Errorf("the filter lacks %q", term)
			}
		}
	}
	if term := "ip proto " + strconv.Itoa(ipProtoAH); !terms[term] {
		t.Errorf("the filter lacks %q", term)
	}
	for _, etype := range []int{etherTypeMPLS, etherTypeMPLSMC, etherTypeNSH, etherTypeMACsec} {
		if term := "ether proto 0x" + strconv.FormatInt(int64(etype), 16); !terms[term] {
			t.Errorf("the filter lacks %q", term)
		}
	}
}
