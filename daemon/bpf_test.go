//go:build cgo

package daemon

import (
	"net"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"

	"github.com/tpwatch/tpwatch/capture/live"
	"github.com/tpwatch/tpwatch/policy"
)

func compileSite(t *testing.T, yaml string) *policy.Policy {
	t.Helper()
	m, err := policy.DefaultMatrix()
	if err != nil {
		t.Fatal(err)
	}
	var c *policy.Config
	if yaml != "" {
		if c, err = policy.ParseConfig([]byte(yaml), "site.yaml"); err != nil {
			t.Fatal(err)
		}
	}
	p, err := policy.Compile(m, c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const bpfSite = `roles:
  enterprise-manager: [10.0.0.1, "2001:db8::1"]
  sql-server: [10.0.0.1]
  agent: [10.1.0.0/24]
`

// frame builds an Ethernet/IPv4 frame carrying a TCP SYN, a UDP datagram
// or an ICMP message of the given type.
func frame(t *testing.T, proto string, src, dst string, sport, dport uint16, icmpType uint8) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	var l []gopacket.SerializableLayer
	switch proto {
	case "tcp":
		ip.Protocol = layers.IPProtocolTCP
		tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), SYN: true, Window: 1024}
		_ = tcp.SetNetworkLayerForChecksum(ip)
		l = []gopacket.SerializableLayer{eth, ip, tcp}
	case "udp":
		ip.Protocol = layers.IPProtocolUDP
		udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
		_ = udp.SetNetworkLayerForChecksum(ip)
		l = []gopacket.SerializableLayer{eth, ip, udp, gopacket.Payload("x")}
	case "icmp":
		ip.Protocol = layers.IPProtocolICMPv4
		l = []gopacket.SerializableLayer{eth, ip, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(icmpType, 0)}, gopacket.Payload(make([]byte, 28))}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, l...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBPFFilterCompilesAndSelects(t *testing.T) {
	expr := BPFFilter(compileSite(t, bpfSite))
	if len(expr) > 3000 {
		t.Errorf("filter is %d characters long: %s", len(expr), expr)
	}
	for _, want := range []string{"host 10.0.0.1", "net 10.1.0.0/24", "host 2001:db8::1", "portrange 3740-3741", "icmp[0] == 3", "icmp6[0] == 1"} {
		if !strings.Contains(expr, want) {
			t.Errorf("filter lacks %q: %s", want, expr)
		}
	}
	if strings.Count(expr, "host 10.0.0.1") != 1 {
		t.Errorf("a host holding two roles is listed twice: %s", expr)
	}
	if strings.Contains(expr, "49152") || strings.Contains(expr, "1024-65535") {
		t.Errorf("filter admits a dynamic port range: %s", expr)
	}
	if _, err := pcap.CompileBPFFilter(layers.LinkTypeEthernet, 256, expr); err != nil {
		t.Fatalf("libpcap rejects %q: %v", expr, err)
	}
	// What the capture applies on Ethernet: the same inside VLAN tags.
	bpf, err := pcap.NewBPF(layers.LinkTypeEthernet, 256, live.InVLANs(expr))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		pkt      []byte
		captured bool
	}{
		{"unknown hosts on 3741", frame(t, "tcp", "192.0.2.7", "192.0.2.8", 50000, 3741, 0), true},
		{"unknown hosts on 1433", frame(t, "tcp", "192.0.2.7", "192.0.2.8", 50000, 1433, 0), true},
		{"unknown hosts, reply from 3741", frame(t, "tcp", "192.0.2.8", "192.0.2.7", 3741, 50000, 0), true},
		{"unknown hosts on udp 1434", frame(t, "udp", "192.0.2.7", "192.0.2.8", 50000, 1434, 0), true},
		{"unknown hosts on ssh", frame(t, "tcp", "192.0.2.7", "192.0.2.8", 50000, 22, 0), false},
		{"unknown hosts on a dynamic port", frame(t, "tcp", "192.0.2.7", "192.0.2.8", 50000, 50001, 0), false},
		{"agent on any port", frame(t, "tcp", "10.1.0.9", "192.0.2.8", 50000, 22, 0), true},
		{"to the enterprise manager on any port", frame(t, "udp", "192.0.2.7", "10.0.0.1", 50000, 9, 0), true},
		{"icmp unreachable", frame(t, "icmp", "192.0.2.7", "192.0.2.8", 0, 0, 3), true},
		{"icmp echo", frame(t, "icmp", "192.0.2.7", "192.0.2.8", 0, 0, 8), false},
		{"802.1Q: agent on any port", tagged(frame(t, "tcp", "10.1.0.9", "192.0.2.8", 50000, 22, 0), 1), true},
		{"802.1Q: unknown hosts on 3741", tagged(frame(t, "tcp", "192.0.2.7", "192.0.2.8", 50000, 3741, 0), 1), true},
		{"802.1Q: unknown hosts on ssh", tagged(frame(t, "tcp", "192.0.2.7", "192.0.2.8", 50000, 22, 0), 1), false},
		{"QinQ: unknown hosts on 3741", tagged(frame(t, "tcp", "192.0.2.7", "192.0.2.8", 50000, 3741, 0), 2), true},
		{"QinQ: unknown hosts on ssh", tagged(frame(t, "tcp", "192.0.2.7", "192.0.2.8", 50000, 22, 0), 2), false},
	}
	for _, c := range cases {
		ci := gopacket.CaptureInfo{CaptureLength: len(c.pkt), Length: len(c.pkt)}
		if got := bpf.Matches(ci, c.pkt); got != c.captured {
			t.Errorf("%s: captured %v, want %v (filter %s)", c.name, got, c.captured, expr)
		}
	}
}

// tagged inserts n 802.1Q tags (VLAN 7) after the MAC addresses of an
// Ethernet frame.
func tagged(f []byte, n int) []byte {
	out := append([]byte{}, f[:12]...)
	for range n {
		out = append(out, 0x81, 0x00, 0x00, 0x07)
	}
	return append(out, f[12:]...)
}

func TestBPFFilterInferred(t *testing.T) {
	expr := BPFFilter(compileSite(t, ""))
	if expr != inferredFilter {
		t.Errorf("without a config the filter is %q, want %q", expr, inferredFilter)
	}
	if _, err := pcap.CompileBPFFilter(layers.LinkTypeEthernet, 256, expr); err != nil {
		t.Fatalf("libpcap rejects %q: %v", expr, err)
	}
}

func TestMergeRanges(t *testing.T) {
	in := []policy.PortRange{{Low: 3741, High: 3741}, {Low: 135, High: 135}, {Low: 3740, High: 3740}, {Low: 10000, High: 10001}, {Low: 10001, High: 10001}, {Low: 139, High: 139}, {Low: 137, High: 138}}
	got := mergeRanges(in)
	want := []policy.PortRange{{Low: 135, High: 135}, {Low: 137, High: 139}, {Low: 3740, High: 3741}, {Low: 10000, High: 10001}}
	if len(got) != len(want) {
		t.Fatalf("mergeRanges = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("mergeRanges = %v, want %v", got, want)
		}
	}
}
