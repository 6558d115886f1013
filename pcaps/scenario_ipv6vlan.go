package pcaps

import "time"

// ipv6VLAN carries the usual kinds of flows over IPv6, 802.1Q and QinQ, on
// two interfaces of different link types and timestamp resolutions: a SPAN
// port (Ethernet, microseconds) and an agent capturing its own traffic
// (Linux SLL, nanoseconds).
func ipv6VLAN() Scenario {
	var (
		em6     = addr("2001:db8:2::10")
		sql6    = addr("2001:db8:2::11")
		tm6     = addr("2001:db8:2::13")
		router6 = addr("2001:db8:2::1")
		agent6A = addr("2001:db8:100::20")
		agent6B = addr("2001:db8:100::21")
		agent6C = addr("2001:db8:100::22") // the capturing host of interface 1
		netapp7 = addr("2001:db8:113::24")
		netappC = addr("2001:db8:113::25")
		other6A = addr("2001:db8:ffff::200")
		other6B = addr("2001:db8:ffff::53")

		em4     = addr("192.0.2.10")
		sql4    = addr("192.0.2.11")
		tm4     = addr("192.0.2.13")
		agent4A = addr("198.51.100.20")
		agent4C = addr("198.51.100.22")

		eph ephemeral
	)
	var (
		span   = Path{Link: 0}
		vlan20 = Path{Link: 0, VLANs: []uint16{20}}
		vlan30 = Path{Link: 0, VLANs: []uint16{30}}
		qinq   = Path{Link: 0, VLANs: []uint16{100, 20}}
		qinq4  = Path{Link: 0, VLANs: []uint16{200, 30}}
		host   = Path{Link: 1}
	)
	s := func(i int) time.Duration { return time.Duration(i) * 300 * time.Millisecond }
	adminProhib6 := ICMPError{From: router6, Type: ICMPv6Unreachable, Code: ICMPv6CodeAdminProhib}
	portUnreach6 := ICMPError{From: netapp7, Type: ICMPv6Unreachable, Code: ICMPv6CodePortUnreach}
	adminProhib4 := ICMPError{From: tm4, Type: ICMPv4Unreachable, Code: ICMPv4CodeAdminProhib}
	flows := []Flow{
		{Shape: TCPSession, Path: span, At: s(0), Client: ap(agent6A, eph.port()), Server: ap(em6, 3741), Rule: "agent-em-grpc"},
		{Shape: TCPICMP, Path: vlan20, At: s(1), Client: ap(agent6B, eph.port()), Server: ap(em6, 3741), Rule: "agent-em-grpc", ICMP: adminProhib6},
		{Shape: TCPSession, Path: vlan20, At: s(2), Client: ap(em6, eph.port()), Server: ap(sql6, 1433), Rule: "em-sql-tds"},
		{Shape: UDPExchange, Path: qinq, At: s(3), Client: ap(em6, eph.port()), Server: ap(sql6, 1434), Rule: "em-sql-browser"},
		{Shape: UDPOneWay, Path: qinq, At: s(4), Client: ap(agent6A, eph.port()), Server: ap(tm6, 10001), Rule: "agent-tm-events-udp", Rounds: 4},
		{Shape: TCPRefused, Path: qinq, At: s(5), Client: ap(agent6B, eph.port()), Server: ap(tm6, 10000), Rule: "agent-tm-tcp"},
		{Shape: UDPICMP, Path: vlan20, At: s(6), Client: ap(agent6A, eph.port()), Server: ap(netapp7, 137), Rule: "agent-netapp7-nbns", ICMP: portUnreach6},
		{Shape: TCPSession, Path: span, At: s(7), Client: ap(other6A, eph.port()), Server: ap(em6, 3741), Rule: "agent-em-grpc", Policy: Unauthorized},
		{Shape: TCPRefused, Path: vlan20, At: s(8), Client: ap(agent6A, eph.port()), Server: ap(agent6B, 22), Policy: NotProduct},

		{Shape: TCPSession, Path: vlan30, At: s(9), Client: ap(agent4A, eph.port()), Server: ap(em4, 3741), Rule: "agent-em-grpc"},
		{Shape: TCPNoAnswer, Path: qinq4, At: s(10), Client: ap(em4, eph.port()), Server: ap(sql4, 1433), Rule: "em-sql-tds"},
		{Shape: TCPICMP, Path: vlan30, At: s(11), Client: ap(agent4A, eph.port()), Server: ap(tm4, 10000), Rule: "agent-tm-tcp", ICMP: adminProhib4},

		{Shape: TCPSession, Path: host, At: s(12), Client: ap(agent6C, eph.port()), Server: ap(em6, 3741), Rule: "agent-em-grpc"},
		{Shape: TCPSession, Path: host, At: s(13), Client: ap(netappC, eph.port()), Server: ap(agent6C, 9999), Rule: "netappc-agent-fpolicy"},
		{Shape: UDPOneWay, Path: host, At: s(14), Client: ap(agent6C, eph.port()), Server: ap(tm6, 10001), Rule: "agent-tm-events-udp", Rounds: 4},
		{Shape: TCPNoAnswer, Path: host, At: s(15), Client: ap(agent4C, eph.port()), Server: ap(tm4, 10000), Rule: "agent-tm-tcp"},

		// Unrelated DNS closes the capture after every attempt timed out.
		{Shape: UDPExchange, Path: span, At: 40 * time.Second, Client: ap(other6A, eph.port()), Server: ap(other6B, 53), Policy: Ignored},
	}
	return Scenario{
		Capture: "ipv6-vlan.pcapng",
		Format:  PcapNG,
		Links: []Link{
			{Type: ethernet, Name: "span0"},
			{Type: linuxSLL, Name: "any", Nanos: true, Host: agent6C},
		},
		Config: Config{
			Comment: "Site config for ipv6-vlan.pcapng: dual-stack hosts, agents by prefix.\n" +
				"Written by pcaps/cmd/gencaps; do not edit.",
			Roles: []RoleHosts{
				{"enterprise-manager", []string{em4.String(), em6.String()}},
				{"agent", []string{"198.51.100.16/28", "2001:db8:100::/64"}},
				{"sql-server", []string{sql4.String(), sql6.String()}},
				{"threat-manager", []string{tm4.String(), tm6.String()}},
				{"netapp-7mode", []string{netapp7.String()}},
				{"netapp-cdot", []string{netappC.String()}},
			},
		},
		Flows: flows,
	}
}
