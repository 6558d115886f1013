package pcaps

import "time"

// midstream holds flows whose start the capture missed: no SYN, so the
// server must be found from the ports and the roles.
func midstream() Scenario {
	var (
		em      = addr("192.0.2.10")
		sql     = addr("192.0.2.11")
		tm      = addr("192.0.2.13")
		agentA  = addr("198.51.100.20")
		agentB  = addr("198.51.100.21")
		netappC = addr("203.0.113.25")
	)
	flows := []Flow{
		// The client port 50123 is inside 49152-65535, which the matrix
		// names as server ports of agent (cee-agent-rpc, netapp7-agent-rpc,
		// and em-agent-wmi-dcom's 1024-65535): both ends hold a role naming
		// their port. The single documented port 3741 must win over a range.
		{Shape: TCPMidBoth, At: 0, Client: ap(agentA, 50123), Server: ap(em, 3741), Rule: "agent-em-grpc", Rounds: 3},
		// Asymmetric routing: the SPAN port sees one half only.
		{Shape: TCPMidClient, At: 100 * time.Millisecond, Client: ap(em, 50210), Server: ap(sql, 1433), Rule: "em-sql-tds", Rounds: 3},
		{Shape: TCPMidServer, At: 200 * time.Millisecond, Client: ap(em, 50311), Server: ap(sql, 1433), Rule: "em-sql-tds", Rounds: 3},
		{Shape: TCPMidBoth, At: 300 * time.Millisecond, Client: ap(netappC, 40001), Server: ap(agentB, 9999), Rule: "netappc-agent-fpolicy", Rounds: 2},
		// The first UDP packet seen is the server's reply.
		{Shape: UDPReplyFirst, At: 400 * time.Millisecond, Client: ap(em, 50412), Server: ap(sql, 1434), Rule: "em-sql-browser"},
		{Shape: UDPOneWay, At: 500 * time.Millisecond, Client: ap(agentB, 50513), Server: ap(tm, 10001), Rule: "agent-tm-events-udp", Rounds: 4},
		// Unrelated traffic closes the capture past the UDP timeout.
		{Shape: UDPExchange, At: 15 * time.Second, Client: ap(otherHostA, 123), Server: ap(otherHostB, 123), Policy: Ignored},
	}
	return Scenario{
		Capture: "midstream.pcap",
		Format:  PcapMicro,
		Links:   []Link{{Type: ethernet, Name: "eth0"}},
		Config: Config{
			Comment: "Site config for midstream.pcap.\nWritten by pcaps/cmd/gencaps; do not edit.",
			Roles: []RoleHosts{
				{"enterprise-manager", []string{em.String()}},
				{"agent", []string{agentA.String(), agentB.String()}},
				{"sql-server", []string{sql.String()}},
				{"threat-manager", []string{tm.String()}},
				{"netapp-cdot", []string{netappC.String()}},
			},
		},
		Flows: flows,
	}
}

// pending ends while attempts are still inside their timeouts.
func pending() Scenario {
	var (
		em     = addr("192.0.2.10")
		sql    = addr("192.0.2.11")
		tm     = addr("192.0.2.13")
		agentA = addr("198.51.100.20")
		agentB = addr("198.51.100.21")
		agentC = addr("198.51.100.22")
		eph    ephemeral
	)
	// The open session's last packet, a little after 60 s, ends the
	// capture; the attempts are placed against it.
	const end = 60 * time.Second
	flows := []Flow{
		{Shape: TCPSessionOpen, At: 0, Client: ap(agentA, eph.port()), Server: ap(em, 3741), Rule: "agent-em-grpc", Rounds: 6},
		{Shape: TCPNoAnswer, At: end - 40*time.Second, Client: ap(agentB, eph.port()), Server: ap(em, 3741), Rule: "agent-em-grpc"},
		{Shape: TCPNoAnswer, Pending: true, At: end - 5*time.Second, Client: ap(agentC, eph.port()), Server: ap(tm, 10000), Rule: "agent-tm-tcp"},
		{Shape: UDPNoAnswer, Pending: true, At: end - 3*time.Second, Client: ap(em, eph.port()), Server: ap(sql, 1434), Rule: "em-sql-browser"},
	}
	return Scenario{
		Capture: "pending.pcap",
		Format:  PcapNano,
		Links:   []Link{{Type: ethernet, Name: "eth0", Nanos: true}},
		Config: Config{
			Comment: "Site config for pending.pcap.\nWritten by pcaps/cmd/gencaps; do not edit.",
			Roles: []RoleHosts{
				{"enterprise-manager", []string{em.String()}},
				{"agent", []string{"198.51.100.16/28"}},
				{"sql-server", []string{sql.String()}},
				{"threat-manager", []string{tm.String()}},
			},
		},
		Flows: flows,
	}
}
