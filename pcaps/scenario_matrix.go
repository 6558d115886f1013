package pcaps

import (
	"net/netip"
	"time"
)

// MatrixRule is what the matrix scenario needs to know of a rule of
// policy/matrix.yaml (or a SIEM rule the site config adds): its roles,
// transport, one server port it names, its feature and whether a UDP
// reply is expected. A test checks this table against matrix.yaml.
type MatrixRule struct {
	ID, Client, Server, Transport string
	Port                          uint16
	Feature                       string
	Reply                         bool
}

// siemRuleID is the id policy gives the rule of one siem.ports entry.
func siemRuleID(transport string, port string) string { return "em-siem-" + transport + "-" + port }

// MatrixRules lists every rule of policy/matrix.yaml, in its order, then
// the SIEM rules of the matrix scenario's config.
func MatrixRules() []MatrixRule {
	return []MatrixRule{
		{ID: "agent-em-grpc", Client: "agent", Server: "enterprise-manager", Transport: "tcp", Port: 3741},
		{ID: "console-em-grpc", Client: "admin-console", Server: "enterprise-manager", Transport: "tcp", Port: 3740},
		{ID: "em-sql-tds", Client: "enterprise-manager", Server: "sql-server", Transport: "tcp", Port: 1433},
		{ID: "em-sql-browser", Client: "enterprise-manager", Server: "sql-server", Transport: "udp", Port: 1434, Reply: true},
		{ID: "em-agent-wmi-rpc", Client: "enterprise-manager", Server: "agent", Transport: "tcp", Port: 135, Feature: "wmi-auto-deploy"},
		{ID: "em-agent-wmi-dcom", Client: "enterprise-manager", Server: "agent", Transport: "tcp", Port: 49715, Feature: "wmi-auto-deploy"},
		{ID: "agent-tm-tcp", Client: "agent", Server: "threat-manager", Transport: "tcp", Port: 10000},
		{ID: "tm-console-http", Client: "any", Server: "threat-manager", Transport: "tcp", Port: 8080},
		{ID: "tm-dc-kerberos", Client: "threat-manager", Server: "domain-controller", Transport: "tcp", Port: 88},
		{ID: "tm-dc-rpc-epm", Client: "threat-manager", Server: "domain-controller", Transport: "tcp", Port: 135},
		{ID: "tm-dc-ldap", Client: "threat-manager", Server: "domain-controller", Transport: "tcp", Port: 389},
		{ID: "tm-dc-ldaps", Client: "threat-manager", Server: "domain-controller", Transport: "tcp", Port: 636},
		{ID: "tm-dc-rpc-dynamic", Client: "threat-manager", Server: "domain-controller", Transport: "tcp", Port: 49668},
		{ID: "tm-sql-tds", Client: "threat-manager", Server: "sql-server", Transport: "tcp", Port: 1433},
		{ID: "tm-sql-browser", Client: "threat-manager", Server: "sql-server", Transport: "udp", Port: 1434, Reply: true},
		{ID: "am-agent", Client: "activity-monitor", Server: "agent", Transport: "tcp", Port: 4498},
		{ID: "celerra-cee-rpc", Client: "dell-celerra-vnx", Server: "cee-server", Transport: "tcp", Port: 49670},
		{ID: "cee-agent-rpc", Client: "cee-server", Server: "agent", Transport: "tcp", Port: 49680},
		{ID: "isilon-cee", Client: "dell-isilon", Server: "cee-server", Transport: "tcp", Port: 12228},
		{ID: "unity-cee-rpc", Client: "dell-unity", Server: "cee-server", Transport: "tcp", Port: 49671},
		{ID: "agent-nasuni-api", Client: "agent", Server: "nasuni", Transport: "tcp", Port: 8443},
		{ID: "nasuni-agent-amqp", Client: "nasuni", Server: "agent", Transport: "tcp", Port: 5671},
		{ID: "agent-netapp7-ontapi-http", Client: "agent", Server: "netapp-7mode", Transport: "tcp", Port: 80, Feature: "fpolicy-management"},
		{ID: "agent-netapp7-ontapi-https", Client: "agent", Server: "netapp-7mode", Transport: "tcp", Port: 443, Feature: "fpolicy-management"},
		{ID: "agent-netapp7-rpc", Client: "agent", Server: "netapp-7mode", Transport: "tcp", Port: 139},
		{ID: "agent-netapp7-smb", Client: "agent", Server: "netapp-7mode", Transport: "tcp", Port: 445},
		{ID: "agent-netapp7-nbns", Client: "agent", Server: "netapp-7mode", Transport: "udp", Port: 137, Reply: true},
		{ID: "agent-netapp7-nbdgm", Client: "agent", Server: "netapp-7mode", Transport: "udp", Port: 138},
		{ID: "netapp7-agent-rpc", Client: "netapp-7mode", Server: "agent", Transport: "tcp", Port: 135},
		{ID: "netapp7-agent-smb", Client: "netapp-7mode", Server: "agent", Transport: "tcp", Port: 445},
		{ID: "netapp7-agent-nbns", Client: "netapp-7mode", Server: "agent", Transport: "udp", Port: 137, Reply: true},
		{ID: "netapp7-agent-nbdgm", Client: "netapp-7mode", Server: "agent", Transport: "udp", Port: 138},
		{ID: "agent-netappc-ontapi-http", Client: "agent", Server: "netapp-cdot", Transport: "tcp", Port: 80, Feature: "fpolicy-management"},
		{ID: "agent-netappc-ontapi-https", Client: "agent", Server: "netapp-cdot", Transport: "tcp", Port: 443, Feature: "fpolicy-management"},
		{ID: "netappc-agent-fpolicy", Client: "netapp-cdot", Server: "agent", Transport: "tcp", Port: 9999},
		{ID: "agent-panzura-api", Client: "agent", Server: "panzura", Transport: "tcp", Port: 443},
		{ID: "panzura-agent-amqp", Client: "panzura", Server: "agent", Transport: "tcp", Port: 4497},
		{ID: "agent-tm-events-udp", Client: "agent", Server: "threat-manager", Transport: "udp", Port: 10001},
		{ID: siemRuleID("udp", "514"), Client: "enterprise-manager", Server: "siem", Transport: "udp", Port: 514, Feature: "siem"},
		{ID: siemRuleID("tcp", "6514"), Client: "enterprise-manager", Server: "siem", Transport: "tcp", Port: 6514, Feature: "siem"},
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func ap(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

// ephemeral hands out client ports from the Windows dynamic range, one
// per flow, so that no two flows of a scenario share a 5-tuple.
type ephemeral struct{ next uint16 }

func (e *ephemeral) port() uint16 {
	if e.next == 0 {
		e.next = 50100
	}
	e.next += 7
	return e.next
}

// matrixHosts gives each role of the matrix scenario its own address in
// the documentation ranges.
var matrixHosts = map[string]string{
	"enterprise-manager": "192.0.2.10",
	"sql-server":         "192.0.2.11",
	"admin-console":      "192.0.2.12",
	"threat-manager":     "192.0.2.13",
	"domain-controller":  "192.0.2.14",
	"siem":               "192.0.2.15",
	"agent":              "198.51.100.20",
	"activity-monitor":   "198.51.100.40",
	"cee-server":         "198.51.100.41",
	"dell-celerra-vnx":   "203.0.113.20",
	"dell-isilon":        "203.0.113.21",
	"dell-unity":         "203.0.113.22",
	"nasuni":             "203.0.113.23",
	"netapp-7mode":       "203.0.113.24",
	"netapp-cdot":        "203.0.113.25",
	"panzura":            "203.0.113.26",
}

// Hosts of the documentation ranges that hold no role: a workstation, the
// routers that send ICMP errors, and two machines of unrelated traffic.
var (
	workstation = addr("192.0.2.99")
	routerFor   = map[byte]netip.Addr{
		2:   addr("192.0.2.1"),
		100: addr("198.51.100.1"),
		113: addr("203.0.113.1"),
	}
	otherHostA = addr("203.0.113.200")
	otherHostB = addr("203.0.113.201")
)

// routerOf returns the router of a host's /24.
func routerOf(a netip.Addr) netip.Addr { return routerFor[a.As4()[2]] }

func matrixV4() Scenario {
	var eph ephemeral
	var flows []Flow
	secondAgent := addr("198.51.100.21")
	for i, r := range MatrixRules() {
		client := workstation // "any": a host in no role
		if r.Client != "any" {
			client = addr(matrixHosts[r.Client])
		}
		server := addr(matrixHosts[r.Server])
		at := time.Duration(i) * 250 * time.Millisecond

		ok := Flow{At: at, Client: ap(client, eph.port()), Server: ap(server, r.Port), Rule: r.ID}
		if r.Transport == "tcp" {
			ok.Shape = TCPSession
		} else if r.Reply {
			ok.Shape = UDPExchange
		} else {
			ok.Shape, ok.Rounds = UDPOneWay, 3
		}

		// The failing form comes from another host of the client role
		// where there is one, and cycles through the ways to fail.
		failClient := client
		switch r.Client {
		case "agent":
			failClient = secondAgent
		case "any":
			failClient = addr(matrixHosts["admin-console"])
		}
		bad := Flow{At: at + 125*time.Millisecond, Client: ap(failClient, eph.port()), Server: ap(server, r.Port), Rule: r.ID}
		// An ICMP error comes from the router in front of the server on
		// even rules, from the server's own firewall on odd ones.
		from := routerOf(server)
		if i%2 == 1 {
			from = server
		}
		switch i % 3 {
		case 0:
			bad.Shape = TCPRefused
		case 1:
			bad.Shape = TCPICMP
		case 2:
			bad.Shape = TCPNoAnswer
		}
		if r.Transport == "udp" {
			if bad.Shape == TCPNoAnswer && r.Reply {
				bad.Shape = UDPNoAnswer
			} else {
				bad.Shape = UDPICMP
			}
		}
		switch bad.Shape {
		case TCPICMP:
			bad.ICMP = ICMPError{From: from, Type: ICMPv4Unreachable, Code: ICMPv4CodeAdminProhib}
			if i%2 == 0 {
				bad.ICMP.QuoteLen = icmpv4MinimumQuoteBytes
			}
		case UDPICMP:
			// A closed port answers port unreachable; a firewall, admin
			// prohibited.
			bad.ICMP = ICMPError{From: server, Type: ICMPv4Unreachable, Code: ICMPv4CodePort}
			if i%2 == 0 {
				bad.ICMP = ICMPError{From: routerOf(server), Type: ICMPv4Unreachable, Code: ICMPv4CodeAdminProhib}
			}
		}
		flows = append(flows, ok, bad)
	}
	// Unrelated NTP traffic closes the capture after every attempt timed
	// out, so that no flow is left pending.
	flows = append(flows, Flow{Shape: UDPExchange, Policy: Ignored, At: 45 * time.Second,
		Client: ap(otherHostA, 123), Server: ap(otherHostB, 123)})

	cfg := Config{
		Comment: "Site config for matrix-v4.pcap: every role on its own address, every feature on.\n" +
			"Written by pcaps/cmd/gencaps; do not edit.",
		Features: []Feature{{"wmi-auto-deploy", true}, {"fpolicy-management", true}},
		SIEM:     []string{"udp/514", "tcp/6514"},
	}
	for _, role := range roleOrder {
		host := matrixHosts[role]
		if role == "agent" {
			host = "198.51.100.16/28"
		}
		cfg.Roles = append(cfg.Roles, RoleHosts{Role: role, Hosts: []string{host}})
	}
	return Scenario{
		Capture: "matrix-v4.pcap",
		Format:  PcapMicro,
		Links:   []Link{{Type: ethernet, Name: "eth0"}},
		Config:  cfg,
		Flows:   flows,
	}
}

// roleOrder is DESIGN.md's order of the role names.
var roleOrder = []string{
	"enterprise-manager", "agent", "admin-console", "sql-server", "threat-manager",
	"domain-controller", "activity-monitor", "cee-server", "dell-celerra-vnx",
	"dell-isilon", "dell-unity", "nasuni", "netapp-7mode", "netapp-cdot", "panzura", "siem",
}
