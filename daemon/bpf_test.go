//go:build cgo

package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"

	"github.com/tpwatch/tpwatch/capture"
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
	case "gre", "ipip", "6in4", "pim", "ah":
		// The filter sees the outer headers only: a protocol and bytes.
		ip.Protocol = map[string]layers.IPProtocol{"gre": 47, "ipip": 4, "6in4": 41, "pim": 103, "ah": 51}[proto]
		l = []gopacket.SerializableLayer{eth, ip, gopacket.Payload(make([]byte, 40))}
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
	cases = append(cases, tunnelCases(t)...)
	for _, c := range cases {
		ci := gopacket.CaptureInfo{CaptureLength: len(c.pkt), Length: len(c.pkt)}
		if got := bpf.Matches(ci, c.pkt); got != c.captured {
			t.Errorf("%s: captured %v, want %v (filter %s)", c.name, got, c.captured, expr)
		}
	}
}

// tunnelCases are frames of tunnels between hosts the filter does not
// name (a switch mirroring to a sensor), and ordinary traffic of such
// hosts on the tunnels' ports that is not a tunnel.
func tunnelCases(t *testing.T) []struct {
	name     string
	pkt      []byte
	captured bool
} {
	const sw, sensor = "198.51.100.1", "198.51.100.2"
	mpls := frame(t, "tcp", "192.0.2.7", "192.0.2.8", 50000, 22, 0)
	mpls = append(append(append([]byte{}, mpls[:12]...), 0x88, 0x47, 0x00, 0x01, 0x01, 0x40), mpls[14:]...)
	return []struct {
		name     string
		pkt      []byte
		captured bool
	}{
		{"vxlan", frame(t, "udp", sw, sensor, 50000, 4789, 0), true},
		{"vxlan on 8472", frame(t, "udp", sw, sensor, 50000, 8472, 0), true},
		{"geneve", frame(t, "udp", sw, sensor, 50000, 6081, 0), true},
		{"gtp-u", frame(t, "udp", sw, sensor, 2152, 2152, 0), true},
		{"udp from port 4789", frame(t, "udp", sw, sensor, 4789, 50000, 0), false},
		{"tcp to port 4789", frame(t, "tcp", sw, sensor, 50000, 4789, 0), false},
		{"gre, erspan", frame(t, "gre", sw, sensor, 0, 0, 0), true},
		{"ip in ip", frame(t, "ipip", sw, sensor, 0, 0, 0), true},
		{"ipv6 in ip", frame(t, "6in4", sw, sensor, 0, 0, 0), true},
		{"pim register", frame(t, "pim", sw, sensor, 0, 0, 0), true},
		{"ipsec ah", frame(t, "ah", sw, sensor, 0, 0, 0), true},
		{"mpls", mpls, true},
		{"802.1Q: vxlan", tagged(frame(t, "udp", sw, sensor, 50000, 4789, 0), 1), true},
		{"802.1Q: gre", tagged(frame(t, "gre", sw, sensor, 0, 0, 0), 1), true},
		{"802.1Q: mpls", tagged(mpls, 1), true},
		{"QinQ: erspan", tagged(frame(t, "gre", sw, sensor, 0, 0, 0), 2), true},
	}
}

// TestBPFFilterAdmitsTunnelsInEveryForm checks each form BPFFilter
// chooses (inferred; the inventory's hosts; the product hosts; all TCP and
// UDP, when even those are too many) on Ethernet, tagged or not: every
// tunnel between two hosts the site does not list gets through.
func TestBPFFilterAdmitsTunnelsInEveryForm(t *testing.T) {
	var scattered strings.Builder
	scattered.WriteString("roles:\n  enterprise-manager:\n")
	for i := range 2 * maxFilterHosts {
		fmt.Fprintf(&scattered, "    - 10.9.%d.1\n", 2*i)
	}
	for _, c := range []struct{ form, site string }{
		{"inferred", ""},
		{"hosts", manyAgents(8, false)},
		{"product hosts", manyAgents(100, false)},
		{"tcp and udp", scattered.String()},
	} {
		expr := BPFFilter(compileSite(t, c.site))
		bpf, err := pcap.NewBPF(layers.LinkTypeEthernet, 256, live.InVLANs(expr))
		if err != nil {
			t.Fatalf("%s: %v", c.form, err)
		}
		for _, tc := range tunnelCases(t) {
			ci := gopacket.CaptureInfo{CaptureLength: len(tc.pkt), Length: len(tc.pkt)}
			if tc.captured && !bpf.Matches(ci, tc.pkt) {
				t.Errorf("%s: %s dropped: %s", c.form, tc.name, expr)
			}
		}
	}
}

// TestBPFFilterOnCookedAndRawLinks compiles the derived filters for the
// other link types a capture gets (Linux "any" is SLL, a tun device raw
// IP, BSD and Npcap loopback null) and runs them on cooked frames: the
// tunnel terms must neither break them nor admit what the rest refuses.
func TestBPFFilterOnCookedAndRawLinks(t *testing.T) {
	for _, expr := range []string{BPFFilter(compileSite(t, bpfSite)), BPFFilter(compileSite(t, ""))} {
		for _, link := range []capture.LinkType{capture.LinkLinuxSLL, capture.LinkRaw, capture.LinkNull} {
			if err := live.CheckFilter(expr, link, live.Options{}); err != nil {
				t.Errorf("libpcap rejects the filter on %v: %v", link, err)
			}
		}
	}
	expr := BPFFilter(compileSite(t, bpfSite))
	bpf, err := pcap.NewBPF(layers.LinkTypeLinuxSLL, 256, expr)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append([]struct {
		name     string
		pkt      []byte
		captured bool
	}{
		{"unknown hosts on 3741", frame(t, "tcp", "192.0.2.7", "192.0.2.8", 50000, 3741, 0), true},
		{"unknown hosts on ssh", frame(t, "tcp", "192.0.2.7", "192.0.2.8", 50000, 22, 0), false},
		{"agent on any port", frame(t, "tcp", "10.1.0.9", "192.0.2.8", 50000, 22, 0), true},
	}, tunnelCases(t)...) {
		if strings.HasPrefix(c.name, "802.1Q") || strings.HasPrefix(c.name, "QinQ") {
			continue // Linux hands a cooked capture its frames untagged
		}
		pkt := cooked(c.pkt)
		ci := gopacket.CaptureInfo{CaptureLength: len(pkt), Length: len(pkt)}
		if got := bpf.Matches(ci, pkt); got != c.captured {
			t.Errorf("cooked, %s: captured %v, want %v", c.name, got, c.captured)
		}
	}
}

// cooked turns an Ethernet frame into a Linux SLL one: packet type
// (unicast to us), ARPHRD_ETHER, the source address, the EtherType.
func cooked(f []byte) []byte {
	out := []byte{0, 0, 0, 1, 0, 6}
	out = append(out, f[6:12]...)
	out = append(out, 0, 0)
	return append(out, f[12:]...)
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

// frame6 builds an Ethernet/IPv6 frame from src to dst whose fixed header
// is followed by the extension headers exts (next-header numbers: 0
// hop-by-hop, 44 fragment, 60 destination options; 8 bytes each, a
// fragment header of offset 0) and then a TCP SYN or a UDP datagram.
func frame6(src, dst string, exts []byte, proto byte, sport, dport uint16) []byte {
	var transport []byte
	switch proto {
	case 6:
		transport = make([]byte, 20)
		transport[12] = 5 << 4
		transport[13] = 0x02 // SYN
	case 17:
		transport = make([]byte, 9)
		transport[5] = 9
	}
	transport[0], transport[1] = byte(sport>>8), byte(sport)
	transport[2], transport[3] = byte(dport>>8), byte(dport)
	var payload []byte
	chain := append(append([]byte{}, exts...), proto)
	for i := range exts {
		ext := make([]byte, 8)
		ext[0] = chain[i+1]
		payload = append(payload, ext...)
	}
	payload = append(payload, transport...)
	ip := make([]byte, 40)
	ip[0] = 6 << 4
	ip[4], ip[5] = byte(len(payload)>>8), byte(len(payload))
	ip[6] = chain[0]
	ip[7] = 64
	copy(ip[8:24], net.ParseIP(src).To16())
	copy(ip[24:40], net.ParseIP(dst).To16())
	eth := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd}
	return append(append(eth, ip...), payload...)
}

// Issue 17, #4: libpcap's "tcp" and "udp" read only the IPv6 fixed
// header's next header, and "tcp or udp or icmp or icmp6" lost every
// segment behind an extension header, which replay decodes. Every filter
// tpwatch derives admits them, with or without a config, tagged or not.
func TestBPFFilterIPv6ExtensionHeaders(t *testing.T) {
	const unknownA, unknownB = "2001:db8:99::7", "2001:db8:99::8"
	for _, c := range []struct {
		name string
		site string
	}{
		{"inferred", ""},
		{"hosts", bpfSite},
		{"ports", manyAgents(1000, false)},
	} {
		expr := BPFFilter(compileSite(t, c.site))
		bpf, err := pcap.NewBPF(layers.LinkTypeEthernet, 256, live.InVLANs(expr))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, ext := range [][]byte{nil, {0}, {44}, {60}, {0, 60}, {0, 44, 60}} {
			for _, proto := range []byte{6, 17} {
				for _, tags := range []int{0, 1} {
					pkt := frame6(unknownA, unknownB, ext, proto, 50000, 1434)
					if proto == 6 {
						pkt = frame6(unknownA, unknownB, ext, proto, 50000, 3741)
					}
					if tags > 0 {
						pkt = tagged(pkt, tags)
					}
					ci := gopacket.CaptureInfo{CaptureLength: len(pkt), Length: len(pkt)}
					if !bpf.Matches(ci, pkt) {
						t.Errorf("%s: proto %d behind extension headers %v (%d tags) not captured by %s", c.name, proto, ext, tags, expr)
					}
				}
			}
		}
	}
}

// manyAgents is a site config with an Enterprise Manager, a SQL Server and
// n agents listed one by one: every other address of 10.0.0.0/8 when
// scattered (no two of them merge into a prefix), else n in a row.
func manyAgents(n int, contiguous bool) string {
	var b strings.Builder
	b.WriteString("roles:\n  enterprise-manager: [192.0.2.10]\n  sql-server: [192.0.2.20]\n  agent:\n")
	for i := range n {
		j := 2 * i
		if contiguous {
			j = i
		}
		fmt.Fprintf(&b, "    - 10.%d.%d.%d\n", j>>16&255, j>>8&255, j&255)
	}
	return b.String()
}

// Issue 17, #1: a filter naming every host of the inventory took libpcap
// 26 s to compile for 300 agents listed one by one, and more than 17
// minutes for 2,000. Whatever the inventory, the derived filter stays
// short and compiles fast, and what it drops is only traffic the policy
// ignores anyway.
func TestBPFFilterScalesWithInventory(t *testing.T) {
	for _, n := range []int{10, 100, 1000, 10000} {
		for _, contiguous := range []bool{false, true} {
			expr := BPFFilter(compileSite(t, manyAgents(n, contiguous)))
			if len(expr) > 1200 {
				t.Errorf("%d agents (contiguous %v): filter of %d characters", n, contiguous, len(expr))
			}
			start := time.Now()
			prog, err := pcap.CompileBPFFilter(layers.LinkTypeEthernet, 256, live.InVLANs(expr))
			took := time.Since(start)
			if err != nil {
				t.Fatalf("%d agents: %v", n, err)
			}
			// The kernel takes at most 4,096 instructions; libpcap filters
			// in user space past that, after copying every packet.
			if len(prog) > 2000 {
				t.Errorf("%d agents (contiguous %v): %d instructions", n, contiguous, len(prog))
			}
			// Generous: about 30 ms on an idle machine, and this one may be
			// shared.
			if took > time.Second {
				t.Errorf("%d agents (contiguous %v): compiled in %v", n, contiguous, took)
			}
			t.Logf("%5d agents, contiguous %-5v: %4d characters, %4d instructions, compiled in %v", n, contiguous, len(expr), len(prog), took.Round(time.Millisecond))
		}
	}
}

// The filter drops only what the policy ignores: for every packet between
// hosts of the inventory and strangers, on the rules' ports and others, a
// packet the filter drops belongs to a flow that no orientation makes
// anything but ignored. Checked on each form of the filter.
func TestBPFFilterDropsOnlyIgnoredFlows(t *testing.T) {
	for _, c := range []struct {
		name, site string
		hosts      []string
	}{
		{"hosts", manyAgents(8, false), []string{"10.0.0.0", "10.0.0.2", "192.0.2.10", "192.0.2.20"}},
		{"product hosts", manyAgents(100, false), []string{"10.0.0.0", "10.0.0.2", "10.0.0.198", "192.0.2.10", "192.0.2.20"}},
		{"contiguous", manyAgents(5000, true), []string{"10.0.0.0", "10.0.19.135", "192.0.2.10", "192.0.2.20"}},
	} {
		pol := compileSite(t, c.site)
		expr := BPFFilter(pol)
		bpf, err := pcap.NewBPF(layers.LinkTypeEthernet, 256, live.InVLANs(expr))
		if err != nil {
			t.Fatal(err)
		}
		hosts := append(c.hosts, "198.51.100.1", "198.51.100.2")
		var ports []uint16
		for p := range uint16(1024) {
			ports = append(ports, p+1)
		}
		ports = append(ports, 1433, 1434, 3389, 3740, 3741, 4497, 5985, 8080, 10001, 12228, 49152, 50000, 65535)
		checked, dropped := 0, 0
		for _, src := range hosts {
			for _, dst := range hosts {
				if src == dst {
					continue
				}
				for _, proto := range []string{"tcp", "udp"} {
					for _, dport := range ports {
						for _, sport := range []uint16{80, 1023, 50000} {
							pkt := frame(t, proto, src, dst, sport, dport, 0)
							checked++
							if bpf.Matches(gopacket.CaptureInfo{CaptureLength: len(pkt), Length: len(pkt)}, pkt) {
								continue
							}
							dropped++
							if m, ok := mattersTo(pol, proto, src, dst, sport, dport); ok {
								t.Errorf("%s: %s %s:%d → %s:%d dropped, but the policy says %v", c.name, proto, src, sport, dst, dport, m)
							}
						}
					}
				}
			}
		}
		if dropped == 0 {
			t.Errorf("%s: the filter dropped none of %d packets: it filters nothing", c.name, checked)
		}
		t.Logf("%s: %d of %d packets dropped, every one of an ignored flow", c.name, dropped, checked)
	}
}

// mattersTo reports a match that is not ignored for the flow of a packet
// from src to dst, with either end as its server.
func mattersTo(p *policy.Policy, proto, src, dst string, sport, dport uint16) (policy.Match, bool) {
	tr := policy.TCP
	if proto == "udp" {
		tr = policy.UDP
	}
	addr := func(s string) [16]byte { return netip.MustParseAddr(s).As16() }
	bound := policy.Bind(p, nil)
	for _, f := range []policy.Flow{
		{Transport: tr, Client: addr(src), Server: addr(dst), Port: dport},
		{Transport: tr, Client: addr(dst), Server: addr(src), Port: sport},
	} {
		f.ClientRoles, f.ServerRoles = bound.Roles(f.Client), bound.Roles(f.Server)
		switch m := p.Match(f); m.Kind {
		case policy.MatchIgnored, policy.MatchNotProduct, policy.MatchSiteIgnored:
		default:
			return m, true
		}
	}
	return policy.Match{}, false
}

func TestCoverExactly(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"10.0.0.1/32", "10.0.0.1/32"},
		{"10.0.0.1/32 10.0.0.1/32", "10.0.0.1/32"},
		{"10.0.0.0/32 10.0.0.1/32", "10.0.0.0/31"},
		{"10.0.0.1/32 10.0.0.2/32", "10.0.0.1/32 10.0.0.2/32"},
		{"10.0.0.0/32 10.0.0.1/32 10.0.0.2/32 10.0.0.3/32", "10.0.0.0/30"},
		{"10.0.0.0/32 10.0.0.1/32 10.0.0.2/32", "10.0.0.0/31 10.0.0.2/32"},
		{"10.0.0.0/24 10.0.0.7/32 10.0.1.0/24", "10.0.0.0/23"},
		{"10.0.0.0/25 10.0.0.128/25 10.0.1.0/24 10.0.2.0/23", "10.0.0.0/22"},
		{"0.0.0.0/1 128.0.0.0/1", "0.0.0.0/0"},
		{"2001:db8::/64 2001:db8:0:1::/64", "2001:db8::/63"},
		// The families stay apart: ::/1 and 128.0.0.0/1 are no halves.
		{"::/1 128.0.0.0/1", "128.0.0.0/1 ::/1"},
		{"10.0.0.5/24", "10.0.0.0/24"},
	} {
		var in []netip.Prefix
		for f := range strings.FieldsSeq(c.in) {
			in = append(in, netip.MustParsePrefix(f))
		}
		var got []string
		for _, p := range coverExactly(in) {
			got = append(got, p.String())
		}
		if s := strings.Join(got, " "); s != c.want {
			t.Errorf("coverExactly(%s) = %s, want %s", c.in, s, c.want)
		}
	}
	// 10,000 agents in a row are 10.0.0.0 to 10.0.39.15: five prefixes
	// (8,192 + 1,024 + 512 + 256 + 16 addresses).
	var row []netip.Prefix
	for i := range 10000 {
		row = append(row, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 32))
	}
	if got := coverExactly(row); len(got) != 5 || got[0].String() != "10.0.0.0/19" || got[4].String() != "10.0.39.0/28" {
		t.Errorf("10,000 agents in a row cover as %v", got)
	}
}
