package capture

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
)

// Packets below were written with gopacket's layers (checksums computed)
// or, where gopacket cannot write the header, by hand (checksums zero; no
// decoder here looks at checksums). Addresses are from the documentation
// ranges: 192.0.2.0/24 and 2001:db8::/32.
const (
	// Ethernet 00:1b:21:3a:4c:5d > 00:50:56:ab:cd:ef, IPv4 192.0.2.10.49152 >
	// 192.0.2.11.3741: Flags [S], seq 1000, win 64240, options [mss 1460].
	hexEthIPv4TCPSyn = "005056abcdef001b213a4c5d0800" +
		"4500002c1c46400040069a70c000020ac000020b" +
		"c0000e9d000003e8000000006002faf0469a0000020405b4" +
		"0000" // Ethernet padding
	// Ethernet, IPv4 192.0.2.10.49152 > 192.0.2.11.3741: Flags [P.],
	// seq 1001:1014, ack 5001, length 13 ("hello tpwatch").
	hexEthIPv4TCPPush = "005056abcdef001b213a4c5d0800" +
		"450000351c46400040069a67c000020ac000020b" +
		"c0000e9d000003e900001389501801f6377c0000" +
		"68656c6c6f2074707761746368"
	// Ethernet, 802.1Q vlan 100, IPv6 2001:db8::10.445 > 2001:db8::20.50000:
	// Flags [S.], seq 7, ack 1001, win 8192.
	hexEthVLANIPv6TCPSynAck = "005056abcdef001b213a4c5d8100" + "006486dd" +
		"6000000000140640" + "20010db8000000000000000000000010" + "20010db8000000000000000000000020" +
		"01bdc35000000007000003e9501220006b330000"
	// Ethernet, 802.1ad vlan 10, 802.1Q vlan 20, IPv4 192.0.2.10.53000 >
	// 192.0.2.11.88: UDP, length 8 ("kerberos").
	hexEthQinQIPv4UDP = "005056abcdef001b213a4c5d88a8" + "000a8100" + "00140800" +
		"450000241c46400040119a6dc000020ac000020b" +
		"cf0800580010f9a9" + "6b65726265726f73" + "0000"
	// IPv4 192.0.2.10.53000 > 192.0.2.11.88: UDP, length 8.
	hexIPv4UDP = "450000241c46400040119a6dc000020ac000020b" + "cf0800580010f9a9" + "6b65726265726f73"
	// IPv6 2001:db8::10.5353 > 2001:db8::20.10001: UDP, length 5 ("event").
	hexIPv6UDP = "60000000000d1140" + "20010db8000000000000000000000010" + "20010db8000000000000000000000020" +
		"14e92711000d2953" + "6576656e74"
	// IPv4 192.0.2.10 > 192.0.2.11: ICMP echo request, id 1, seq 1.
	hexIPv4ICMPEcho = "450000201c46400040019a81c000020ac000020b" + "0800192d00010001" + "70696e67"
	// IPv6 2001:db8::10 > 2001:db8::20: ICMP6, echo request, id 1, seq 1.
	hexIPv6ICMPEcho = "60000000000c3a40" + "20010db8000000000000000000000010" + "20010db8000000000000000000000020" +
		"800045440001000170696e67"
	// Ethernet, ARP, Request who-has 192.0.2.11 tell 192.0.2.10.
	hexEthARP = "005056abcdef001b213a4c5d0806" +
		"0001080006040001001b213a4c5dc000020a000000000000c000020b" + "000000000000000000000000000000000000"
	// IPv4 192.0.2.1 > 192.0.2.10: ICMP 192.0.2.11 tcp port 3741 unreachable,
	// administratively prohibited (type 3 code 13), quoting the SYN
	// 192.0.2.10.49152 > 192.0.2.11.3741 (IP header + 8 bytes).
	hexIPv4ICMPUnreachTCP = "45000038000000004001f6b9c0000201c000020a" + "030d2a6d00000000" +
		"450000281c46400040069a74c000020ac000020b" + "c0000e9d000003e8"
	// IPv4 192.0.2.1 > 192.0.2.10: ICMP 192.0.2.11 udp port 88 unreachable
	// (type 3 code 3), quoting 192.0.2.10.53000 > 192.0.2.11.88.
	hexIPv4ICMPUnreachUDP = "45000038000000004001f6b9c0000201c000020a" + "030333e200000000" +
		"450000241c46400040119a6dc000020ac000020b" + "cf0800580010f9a9"
	// IPv6 2001:db8::1 > 2001:db8::10: ICMP6, destination unreachable,
	// administratively prohibited (type 1 code 1), quoting the whole SYN
	// 2001:db8::10.50000 > 2001:db8::20.445.
	hexIPv6ICMPUnreachTCP = "6000000000443a40" + "20010db8000000000000000000000001" + "20010db8000000000000000000000010" +
		"01013cc300000000" +
		"6000000000140640" + "20010db8000000000000000000000010" + "20010db8000000000000000000000020" +
		"c35001bd0000000100000000500220006f320000"
	// IPv6 2001:db8::1 > 2001:db8::10: ICMP6, destination unreachable, port
	// unreachable (type 1 code 4), quoting 2001:db8::10.5353 > 2001:db8::20.10001.
	hexIPv6ICMPUnreachUDP = "60000000003d3a40" + "20010db8000000000000000000000001" + "20010db8000000000000000000000010" +
		"010431d200000000" +
		"60000000000d1140" + "20010db8000000000000000000000010" + "20010db8000000000000000000000020" +
		"14e92711000d29536576656e74"
	// IPv4 with a Router Alert option (IHL 6) 192.0.2.10.53000 >
	// 192.0.2.11.88: UDP, length 8. Hand-written.
	hexIPv4OptionsUDP = "460000281c4640004011000" + "0c000020ac000020b" + "94040000" +
		"cf08005800100000" + "6b65726265726f73"
	// IPv4 first fragment (MF, offset 0) of a 1500-byte UDP datagram
	// 192.0.2.10.53000 > 192.0.2.11.88; 16 bytes of it. Hand-written.
	hexIPv4FirstFragment = "450000241c47200040110000c000020ac000020b" + "cf08005805dc0000" + "6b65726265726f73"
	// IPv4 first fragment (MF, offset 0) of a TCP SYN 192.0.2.10.49152 >
	// 192.0.2.11.3741 whose 40-byte header (data offset 10) the fragment
	// cuts after 4 bytes of options (MSS 1460): the ports and flags are
	// there, the rest of the options in the next fragment. Hand-written.
	hexIPv4FirstFragmentSplitOptions = "4500002c1c4820004006" + "0000c000020ac000020b" +
		"c0000e9d0000000100000000a0022000" + "00000000" + "020405b4"
	// IPv4 later fragment (offset 1480, last) of the same datagram.
	hexIPv4LaterFragment = "4500001c1c4700b940110000c000020ac000020b" + "667261676d656e74"
	// IPv6 2001:db8::10 > 2001:db8::20 with a hop-by-hop header (PadN) and a
	// fragment header (offset 0, M set, id 0xabcd), then UDP 5353 > 10001 of
	// a 1500-byte datagram. Hand-written.
	hexIPv6HopByHopFirstFragment = "6000000000200040" + "20010db8000000000000000000000010" + "20010db8000000000000000000000020" +
		"2c00010400000000" + "110000010000abcd" + "14e9271105dc0000" + "667261676d656e74"
	// The next fragment of it (offset 1448, last).
	hexIPv6HopByHopLaterFragment = "6000000000180040" + "20010db8000000000000000000000010" + "20010db8000000000000000000000020" +
		"2c00010400000000" + "110005a80000abcd" + "667261676d656e74"
)

// Link headers put in front of the IP packets above.
const (
	hexNullLE   = "02000000"                                      // BSD loopback, AF_INET, little-endian host
	hexNullBE30 = "0000001e"                                      // BSD loopback, AF_INET6 (Darwin 30), big-endian host
	hexLoop24   = "00000018"                                      // OpenBSD loopback, AF_INET6 (24)
	hexSLLIPv4  = "00000001000600" + "1b213a4c5d000008" + "00"    // Linux SLL: outgoing, ARPHRD_ETHER, IPv4
	hexSLL2IPv6 = "86dd0000000000020001000600" + "1b213a4c5d0000" // Linux SLL2: IPv6, ifindex 2
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// addr is an IPv6 address as Packet stores it.
func addr(s string) [16]byte { return netip.MustParseAddr(s).As16() }

// v4 is an IPv4 address as Packet stores it: IPv4-mapped.
func v4(s string) [16]byte { return netip.MustParseAddr("::ffff:" + s).As16() }

var decodeTests = []struct {
	name   string
	link   LinkType
	hex    string
	status Status
	want   Packet
}{
	{"ethernet ipv4 tcp syn", LinkEthernet, hexEthIPv4TCPSyn, StatusOK, Packet{
		IPVersion: 4, Proto: ProtoTCP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
		SrcPort: 49152, DstPort: 3741, TCPFlags: TCPSyn, Seq: 1000}},
	{"ethernet ipv4 tcp push with payload", LinkEthernet, hexEthIPv4TCPPush, StatusOK, Packet{
		IPVersion: 4, Proto: ProtoTCP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
		SrcPort: 49152, DstPort: 3741, TCPFlags: TCPPsh | TCPAck, PayloadLen: 13, PayloadOff: 54, Seq: 1001}},
	{"802.1q ipv6 tcp syn-ack", LinkEthernet, hexEthVLANIPv6TCPSynAck, StatusOK, Packet{
		IPVersion: 6, Proto: ProtoTCP, Src: addr("2001:db8::10"), Dst: addr("2001:db8::20"),
		SrcPort: 445, DstPort: 50000, TCPFlags: TCPSyn | TCPAck, Seq: 7}},
	{"802.1ad+802.1q ipv4 udp, padded", LinkEthernet, hexEthQinQIPv4UDP, StatusOK, Packet{
		IPVersion: 4, Proto: ProtoUDP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
		SrcPort: 53000, DstPort: 88, PayloadLen: 8, PayloadOff: 50}},
	{"ethernet arp", LinkEthernet, hexEthARP, StatusNotIP, Packet{}},
	{"raw ipv4 udp", LinkRaw, hexIPv4UDP, StatusOK, Packet{
		IPVersion: 4, Proto: ProtoUDP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
		SrcPort: 53000, DstPort: 88, PayloadLen: 8, PayloadOff: 28}},
	{"raw (DLT 12) ipv6 udp", linkRawDLT12, hexIPv6UDP, StatusOK, Packet{
		IPVersion: 6, Proto: ProtoUDP, Src: addr("2001:db8::10"), Dst: addr("2001:db8::20"),
		SrcPort: 5353, DstPort: 10001, PayloadLen: 5, PayloadOff: 48}},
	{"linktype ipv4 icmp echo", LinkIPv4, hexIPv4ICMPEcho, StatusOK, Packet{
		IPVersion: 4, Proto: ProtoICMP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
		ICMPType: 8, PayloadLen: 12}},
	{"linktype ipv6 icmpv6 echo", LinkIPv6, hexIPv6ICMPEcho, StatusOK, Packet{
		IPVersion: 6, Proto: ProtoICMPv6, Src: addr("2001:db8::10"), Dst: addr("2001:db8::20"),
		ICMPType: 128, PayloadLen: 12}},
	{"linktype ipv4 given ipv6", LinkIPv4, hexIPv6UDP, StatusMalformed, Packet{}},
	{"null little-endian ipv4 udp", LinkNull, hexNullLE + hexIPv4UDP, StatusOK, Packet{
		IPVersion: 4, Proto: ProtoUDP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
		SrcPort: 53000, DstPort: 88, PayloadLen: 8, PayloadOff: 32}},
	{"null big-endian AF 30 ipv6 udp", LinkNull, hexNullBE30 + hexIPv6UDP, StatusOK, Packet{
		IPVersion: 6, Proto: ProtoUDP, Src: addr("2001:db8::10"), Dst: addr("2001:db8::20"),
		SrcPort: 5353, DstPort: 10001, PayloadLen: 5, PayloadOff: 52}},
	{"null unknown family", LinkNull, "07000000" + hexIPv4UDP, StatusNotIP, Packet{}},
	{"loop AF 24 ipv6 icmpv6", LinkLoop, hexLoop24 + hexIPv6ICMPEcho, StatusOK, Packet{
		IPVersion: 6, Proto: ProtoICMPv6, Src: addr("2001:db8::10"), Dst: addr("2001:db8::20"),
		ICMPType: 128, PayloadLen: 12}},
	{"linux sll ipv4 udp", LinkLinuxSLL, hexSLLIPv4 + hexIPv4UDP, StatusOK, Packet{
		IPVersion: 4, Proto: ProtoUDP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
		SrcPort: 53000, DstPort: 88, PayloadLen: 8, PayloadOff: 44}},
	{"linux sll2 ipv6 udp", LinkLinuxSLL2, hexSLL2IPv6 + hexIPv6UDP, StatusOK, Packet{
		IPVersion: 6, Proto: ProtoUDP, Src: addr("2001:db8::10"), Dst: addr("2001:db8::20"),
		SrcPort: 5353, DstPort: 10001, PayloadLen: 5, PayloadOff: 68}},
	{"unsupported link (radiotap)", LinkType(127), hexIPv4UDP, StatusUnsupportedLink, Packet{}},
	{"ipv4 options", LinkRaw, hexIPv4OptionsUDP, StatusOK, Packet{
		IPVersion: 4, Proto: ProtoUDP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
		SrcPort: 53000, DstPort: 88, PayloadLen: 8, PayloadOff: 32}},
	{"ipv4 first fragment keeps ports", LinkRaw, hexIPv4FirstFragment, StatusOK, Packet{
		IPVersion: 4, Proto: ProtoUDP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
		SrcPort: 53000, DstPort: 88, PayloadLen: 1492, PayloadOff: 28}},
	// Issue 17, #9: it was malformed, and the SYN lost.
	{"ipv4 first fragment of a syn, options split", LinkRaw, hexIPv4FirstFragmentSplitOptions, StatusOK, Packet{
		IPVersion: 4, Proto: ProtoTCP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
		SrcPort: 49152, DstPort: 3741, TCPFlags: TCPSyn, Seq: 1}},
	{"ipv4 whole syn whose header overruns the packet", LinkRaw,
		"4500002c1c4840004006" + "0000c000020ac000020b" + "c0000e9d0000000100000000a0022000" + "00000000" + "020405b4",
		StatusMalformed, Packet{}},
	{"ipv4 later fragment", LinkRaw, hexIPv4LaterFragment, StatusOK, Packet{
		IPVersion: 4, Proto: ProtoUDP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
		Fragment: true, PayloadLen: 8}},
	{"ipv4 first fragment too short for ports", LinkRaw,
		"450000181c47200040110000c000020ac000020b" + "cf080058", StatusOK, Packet{
			IPVersion: 4, Proto: ProtoUDP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
			Fragment: true, PayloadLen: 4}},
	{"ipv6 hop-by-hop + first fragment", LinkRaw, hexIPv6HopByHopFirstFragment, StatusOK, Packet{
		IPVersion: 6, Proto: ProtoUDP, Src: addr("2001:db8::10"), Dst: addr("2001:db8::20"),
		SrcPort: 5353, DstPort: 10001, PayloadLen: 1492, PayloadOff: 64}},
	{"ipv6 hop-by-hop + later fragment", LinkRaw, hexIPv6HopByHopLaterFragment, StatusOK, Packet{
		IPVersion: 6, Proto: ProtoUDP, Src: addr("2001:db8::10"), Dst: addr("2001:db8::20"),
		Fragment: true, PayloadLen: 8}},
	{"icmp unreachable quoting tcp", LinkRaw, hexIPv4ICMPUnreachTCP, StatusOK, Packet{
		IPVersion: 4, Proto: ProtoICMP, Src: v4("192.0.2.1"), Dst: v4("192.0.2.10"),
		ICMPType: 3, ICMPCode: 13, PayloadLen: 36,
		Quoted: true, QProto: ProtoTCP, QSrc: v4("192.0.2.10"), QDst: v4("192.0.2.11"), QSrcPort: 49152, QDstPort: 3741}},
	{"icmp unreachable quoting udp", LinkRaw, hexIPv4ICMPUnreachUDP, StatusOK, Packet{
		IPVersion: 4, Proto: ProtoICMP, Src: v4("192.0.2.1"), Dst: v4("192.0.2.10"),
		ICMPType: 3, ICMPCode: 3, PayloadLen: 36,
		Quoted: true, QProto: ProtoUDP, QSrc: v4("192.0.2.10"), QDst: v4("192.0.2.11"), QSrcPort: 53000, QDstPort: 88}},
	{"icmpv6 unreachable quoting tcp", LinkRaw, hexIPv6ICMPUnreachTCP, StatusOK, Packet{
		IPVersion: 6, Proto: ProtoICMPv6, Src: addr("2001:db8::1"), Dst: addr("2001:db8::10"),
		ICMPType: 1, ICMPCode: 1, PayloadLen: 68,
		Quoted: true, QProto: ProtoTCP, QSrc: addr("2001:db8::10"), QDst: addr("2001:db8::20"), QSrcPort: 50000, QDstPort: 445}},
	{"icmpv6 unreachable quoting udp", LinkRaw, hexIPv6ICMPUnreachUDP, StatusOK, Packet{
		IPVersion: 6, Proto: ProtoICMPv6, Src: addr("2001:db8::1"), Dst: addr("2001:db8::10"),
		ICMPType: 1, ICMPCode: 4, PayloadLen: 61,
		Quoted: true, QProto: ProtoUDP, QSrc: addr("2001:db8::10"), QDst: addr("2001:db8::20"), QSrcPort: 5353, QDstPort: 10001}},
	{"icmp unreachable with quote cut short", LinkRaw,
		"45000024000000004001f6b9c0000201c000020a" + "030d2a6d00000000" + "450000281c464000", StatusOK, Packet{
			IPVersion: 4, Proto: ProtoICMP, Src: v4("192.0.2.1"), Dst: v4("192.0.2.10"),
			ICMPType: 3, ICMPCode: 13, PayloadLen: 16}},
	{"ipv4 header length 16", LinkRaw, "44" + hexIPv4UDP[2:], StatusMalformed, Packet{}},
	{"ipv4 total length below header", LinkRaw, "45000010" + hexIPv4UDP[8:], StatusMalformed, Packet{}},
	{"tcp data offset 16", LinkEthernet, strings.Replace(hexEthIPv4TCPSyn, "6002faf0", "4002faf0", 1), StatusMalformed, Packet{}},
	{"tcp data offset beyond packet", LinkEthernet, strings.Replace(hexEthIPv4TCPSyn, "6002faf0", "f002faf0", 1), StatusMalformed, Packet{}},
	{"udp length 4", LinkRaw, strings.Replace(hexIPv4UDP, "00580010", "00580004", 1), StatusMalformed, Packet{}},
	// Zeek keeps the flow (a "UDP_datagram_length_mismatch" weird) and
	// tshark the conversation: the ports are there, the IP length bounds
	// the payload.
	{"udp length beyond ip", LinkRaw, strings.Replace(hexIPv4UDP, "00580010", "00580011", 1), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoUDP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
		SrcPort: 53000, DstPort: 88, PayloadLen: 8, PayloadOff: 28}},
	{"udp length 65535 in a 36-byte packet", LinkRaw, strings.Replace(hexIPv4UDP, "00580010", "0058ffff", 1), StatusOK, Packet{
		IPVersion: 4, Proto: ProtoUDP, Src: v4("192.0.2.10"), Dst: v4("192.0.2.11"),
		SrcPort: 53000, DstPort: 88, PayloadLen: 8, PayloadOff: 28}},
	{"raw ip version 5", LinkRaw, "55" + hexIPv4UDP[2:], StatusMalformed, Packet{}},
	{"ipv6 extension header beyond payload length", LinkRaw,
		"6000000000080040" + "20010db8000000000000000000000010" + "20010db8000000000000000000000020" + "1101000000000000" + "0000000000000000",
		StatusMalformed, Packet{}},
	{"nine vlan tags", LinkEthernet, "005056abcdef001b213a4c5d8100" + strings.Repeat("00018100", 8) + "00010800" + hexIPv4UDP, StatusMalformed, Packet{}},
	{"empty frame", LinkEthernet, "", StatusTruncated, Packet{}},
}

func TestDecode(t *testing.T) {
	for _, tt := range decodeTests {
		t.Run(tt.name, func(t *testing.T) {
			p := Packet{TS: 42, WireLen: 1514, Quoted: true, SrcPort: 9} // stale fields must be reset
			got := Decode(tt.link, mustHex(t, tt.hex), &p)
			if got != tt.status {
				t.Fatalf("status = %v, want %v", got, tt.status)
			}
			want := tt.want
			want.TS, want.WireLen = 42, 1514
			if p != want {
				t.Errorf("decoded\n %+v\nwant\n %+v", p, want)
			}
		})
	}
}

// TestDecodeEveryTruncation cuts full packets at every length: no panic,
// and a cut inside the headers is StatusTruncated, never StatusOK with
// half-read fields; a cut in the payload decodes exactly like the whole
// packet.
func TestDecodeEveryTruncation(t *testing.T) {
	for _, tc := range []struct {
		name      string
		link      LinkType
		hex       string
		headerLen int
	}{
		{"ethernet ipv4 tcp", LinkEthernet, hexEthIPv4TCPPush, 14 + 20 + 20},
		{"802.1q ipv6 tcp", LinkEthernet, hexEthVLANIPv6TCPSynAck, 18 + 40 + 20},
		{"ipv6 hop-by-hop fragment udp", LinkRaw, hexIPv6HopByHopFirstFragment, 40 + 16 + 8},
		{"icmpv6 unreachable", LinkRaw, hexIPv6ICMPUnreachTCP, 40 + 4},
	} {
		full := mustHex(t, tc.hex)
		var whole Packet
		if st := Decode(tc.link, full, &whole); st != StatusOK {
			t.Fatalf("%s: whole packet: %v", tc.name, st)
		}
		for n := 0; n < len(full); n++ {
			var p Packet
			// A copy of exactly n bytes, so reading past it would be caught
			// by the race detector and by -d=checkptr, not just bounds checks.
			cut := append([]byte(nil), full[:n]...)
			st := Decode(tc.link, cut, &p)
			switch {
			case n < tc.headerLen:
				if st != StatusTruncated {
					t.Errorf("%s cut at %d: status %v, want truncated", tc.name, n, st)
				}
				if p != (Packet{}) {
					t.Errorf("%s cut at %d: fields left set: %+v", tc.name, n, p)
				}
			case st != StatusOK:
				t.Errorf("%s cut at %d (in payload): status %v, want ok", tc.name, n, st)
			case p.Src != whole.Src || p.Dst != whole.Dst || p.SrcPort != whole.SrcPort ||
				p.DstPort != whole.DstPort || p.Proto != whole.Proto || p.TCPFlags != whole.TCPFlags ||
				p.PayloadLen != whole.PayloadLen || p.Fragment != whole.Fragment || p.Seq != whole.Seq:
				t.Errorf("%s cut at %d: %+v, want %+v", tc.name, n, p, whole)
			case n > tc.headerLen && whole.PayloadOff != 0 && p.PayloadOff != whole.PayloadOff,
				n == tc.headerLen && p.PayloadOff != 0:
				// The payload's place, once a byte of it is captured.
				t.Errorf("%s cut at %d: payload at %d, want %d (0 when none is captured)", tc.name, n, p.PayloadOff, whole.PayloadOff)
			}
		}
	}
}

func TestDecodeAllocatesNothing(t *testing.T) {
	frames := [][]byte{mustHex(t, hexEthIPv4TCPSyn), mustHex(t, hexEthVLANIPv6TCPSynAck), mustHex(t, hexEthARP)}
	icmp := mustHex(t, hexIPv6ICMPUnreachTCP)
	var p Packet
	allocs := testing.AllocsPerRun(1000, func() {
		for _, f := range frames {
			Decode(LinkEthernet, f, &p)
		}
		Decode(LinkRaw, icmp, &p)
		for _, tt := range tunnelDecodeTests {
			Decode(tt.link, tt.frame, &p)
		}
	})
	if allocs != 0 {
		t.Errorf("Decode allocates %.1f times per run, want 0", allocs)
	}
}

func TestStatusAndLinkTypeNames(t *testing.T) {
	for s, want := range map[Status]string{StatusOK: "ok", StatusNotIP: "not_ip", StatusTruncated: "truncated",
		StatusMalformed: "malformed", StatusUnsupportedLink: "unsupported_link", 0: "status(0)"} {
		if s.String() != want {
			t.Errorf("Status(%d).String() = %q, want %q", s, s.String(), want)
		}
	}
	for l, want := range map[LinkType]string{LinkEthernet: "ethernet", LinkLinuxSLL2: "linux_sll2", 14: "raw", 127: "linktype(127)"} {
		if l.String() != want {
			t.Errorf("LinkType(%d).String() = %q, want %q", l, l.String(), want)
		}
	}
}
