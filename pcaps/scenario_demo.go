package pcaps

import (
	"net/netip"
	"time"
)

// demoSite is the example of the README and `make demo`: two minutes of a
// small Threat Prevention site, mostly working, with a few blocked and
// unexpected flows and some unrelated DNS.
func demoSite() Scenario {
	var (
		em       = addr("192.0.2.10")
		sql      = addr("192.0.2.11")
		tm       = addr("192.0.2.13")
		dc       = addr("192.0.2.5")
		console  = addr("192.0.2.50")
		outsider = addr("192.0.2.77") // a workstation in no role
		agent1   = addr("198.51.100.21")
		agent2   = addr("198.51.100.22")
		agent3   = addr("198.51.100.23")
		cee      = addr("198.51.100.41")
		router   = addr("198.51.100.1")
		netapp   = addr("203.0.113.30")
		isilon   = addr("203.0.113.40")
		resolver = addr("203.0.113.53")
		laptop   = addr("203.0.113.250")
		eph      ephemeral
	)
	sec := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	flow := func(shape Shape, at float64, cli, srv netip.Addr, port uint16, rule string) Flow {
		return Flow{Shape: shape, At: sec(at), Client: ap(cli, eph.port()), Server: ap(srv, port), Rule: rule}
	}
	adminProhib := ICMPError{From: router, Type: ICMPv4Unreachable, Code: ICMPv4CodeAdminProhib}

	flows := []Flow{
		// The Enterprise Manager and its database.
		flow(UDPExchange, 0, em, sql, 1434, "em-sql-browser"),
		flow(TCPSession, 1, em, sql, 1433, "em-sql-tds"),
		flow(TCPSession, 31, em, sql, 1433, "em-sql-tds"),
		flow(TCPSession, 61, em, sql, 1433, "em-sql-tds"),
		flow(TCPSession, 91, em, sql, 1433, "em-sql-tds"),
		// Agents check in with the Enterprise Manager; agent2's are dropped.
		flow(TCPSession, 2, agent1, em, 3741, "agent-em-grpc"),
		flow(TCPSession, 3, agent3, em, 3741, "agent-em-grpc"),
		flow(TCPNoAnswer, 20, agent2, em, 3741, "agent-em-grpc"),
		flow(TCPSession, 62, agent1, em, 3741, "agent-em-grpc"),
		flow(TCPSession, 63, agent3, em, 3741, "agent-em-grpc"),
		flow(TCPNoAnswer, 70, agent2, em, 3741, "agent-em-grpc"),
		// Agents feed the Threat Manager; agent3 is refused on 10001.
		flow(TCPSession, 5, agent1, tm, 10000, "agent-tm-tcp"),
		flow(TCPSession, 6, agent2, tm, 10000, "agent-tm-tcp"),
		flow(TCPRefused, 7, agent3, tm, 10001, "agent-tm-tcp"),
		{Shape: UDPOneWay, At: sec(8), Client: ap(agent1, eph.port()), Server: ap(tm, 10001), Rule: "agent-tm-events-udp", Rounds: 20},
		{Shape: UDPOneWay, At: sec(9), Client: ap(agent2, eph.port()), Server: ap(tm, 10001), Rule: "agent-tm-events-udp", Rounds: 20},
		// NAS devices: NetApp FPolicy events to agent1; the Isilon's CEE
		// events are stopped by a firewall in front of the CEE server,
		// which forwards what it has to agent2 over dynamic RPC.
		flow(TCPSession, 12, netapp, agent1, 9999, "netappc-agent-fpolicy"),
		flow(TCPSession, 72, netapp, agent1, 9999, "netappc-agent-fpolicy"),
		{Shape: TCPICMP, At: sec(14), Client: ap(isilon, eph.port()), Server: ap(cee, 12228), Rule: "isilon-cee", ICMP: adminProhib},
		{Shape: TCPICMP, At: sec(74), Client: ap(isilon, eph.port()), Server: ap(cee, 12228), Rule: "isilon-cee", ICMP: adminProhib},
		flow(TCPSession, 16, cee, agent2, 49733, "cee-agent-rpc"),
		// The administrator at work: the console, a site rule for RDP to
		// the agents, and RDP to the Enterprise Manager, which no rule has.
		flow(TCPSession, 25, console, em, 3740, "console-em-grpc"),
		flow(TCPSessionReset, 85, console, em, 3740, "console-em-grpc"),
		flow(TCPSession, 40, console, agent1, 3389, "rdp-admin"),
		{Shape: TCPSession, Policy: NoRule, At: sec(45), Client: ap(console, eph.port()), Server: ap(em, 3389)},
		// The Threat Manager asks Active Directory.
		flow(TCPSession, 30, tm, dc, 88, "tm-dc-kerberos"),
		flow(TCPSession, 30.2, tm, dc, 389, "tm-dc-ldap"),
		flow(TCPSession, 90, tm, dc, 389, "tm-dc-ldap"),
		// Unexpected: a workstation outside the inventory on the SQL
		// Server, and WMI auto-deploy, which this site has not turned on.
		{Shape: TCPSession, Policy: Unauthorized, At: sec(50), Client: ap(outsider, eph.port()), Server: ap(sql, 1433), Rule: "em-sql-tds"},
		{Shape: TCPSession, Policy: FeatureDisabled, At: sec(55), Client: ap(em, eph.port()), Server: ap(agent1, 135), Rule: "em-agent-wmi-rpc"},
	}
	// Unrelated DNS, the last of it closing the capture at two minutes.
	for _, at := range []float64{4, 33, 66, 99, 120} {
		flows = append(flows, Flow{Shape: UDPExchange, Policy: Ignored, At: sec(at), Client: ap(laptop, eph.port()), Server: ap(resolver, 53)})
	}
	return Scenario{
		Capture: "demo-site.pcapng",
		Format:  PcapNG,
		Links:   []Link{{Type: ethernet, Name: "span0", Nanos: true}},
		Config: Config{
			Comment: "A small Threat Prevention site: the example of the README and `make demo`.\n" +
				"Replay it with: tpwatch replay --config pcaps/demo-site.yaml pcaps/demo-site.pcapng\n" +
				"Written by pcaps/cmd/gencaps; do not edit.",
			Roles: []RoleHosts{
				{"enterprise-manager", []string{em.String()}},
				{"agent", []string{agent1.String(), agent2.String(), agent3.String()}},
				{"admin-console", []string{console.String()}},
				{"sql-server", []string{sql.String()}},
				{"threat-manager", []string{tm.String()}},
				{"domain-controller", []string{dc.String()}},
				{"cee-server", []string{cee.String()}},
				{"dell-isilon", []string{isilon.String()}},
				{"netapp-cdot", []string{netapp.String()}},
			},
			Features: []Feature{{"wmi-auto-deploy", false}, {"fpolicy-management", false}},
			Allow:    []AllowRule{{ID: "rdp-admin", Client: "admin-console", Server: "agent", Transport: "tcp", Ports: []string{"3389"}}},
		},
		Flows: flows,
	}
}
