package pcaps

import "time"

// unexpectedScenario has one flow for each reason a flow is unexpected,
// an ignored flow and an allowed one, with every feature off.
func unexpectedScenario() Scenario {
	var (
		em      = addr("192.0.2.10")
		sql     = addr("192.0.2.11")
		dc      = addr("192.0.2.14")
		agentA  = addr("198.51.100.20")
		agentB  = addr("198.51.100.21")
		netappC = addr("203.0.113.25")
		eph     ephemeral
	)
	s := func(i int) time.Duration { return time.Duration(i) * 500 * time.Millisecond }
	flows := []Flow{
		// The one flow that is fine.
		{Shape: TCPSession, At: s(0), Client: ap(agentA, eph.port()), Server: ap(em, 3741), Rule: "agent-em-grpc"},
		// feature_disabled: the rules exist, the site has not turned them on.
		{Shape: TCPSession, Policy: FeatureDisabled, At: s(1), Client: ap(em, eph.port()), Server: ap(agentA, 135), Rule: "em-agent-wmi-rpc"},
		{Shape: TCPSession, Policy: FeatureDisabled, At: s(2), Client: ap(agentB, eph.port()), Server: ap(netappC, 443), Rule: "agent-netappc-ontapi-https"},
		// unauthorized_client: documented server ports, clients the rules do
		// not admit. 1433 has two rules (em-sql-tds, tm-sql-tds); the closest
		// rule is taken to be the first in matrix order.
		{Shape: TCPSession, Policy: Unauthorized, At: s(3), Client: ap(workstation, eph.port()), Server: ap(em, 3741), Rule: "agent-em-grpc"},
		{Shape: TCPSession, Policy: Unauthorized, At: s(4), Client: ap(dc, eph.port()), Server: ap(sql, 1433), Rule: "em-sql-tds"},
		{Shape: UDPExchange, Policy: Unauthorized, At: s(5), Client: ap(workstation, eph.port()), Server: ap(sql, 1434), Rule: "em-sql-browser"},
		// no_rule: both ends known, nothing mentions the port for them,
		// and one end is the product's own host. A refused flow is still
		// unexpected, not blocked: no rule wants it; its outcome says the
		// client was turned away.
		{Shape: TCPSession, Policy: NoRule, At: s(6), Client: ap(em, eph.port()), Server: ap(agentB, 22)},
		{Shape: TCPRefused, Policy: NoRule, At: s(7), Client: ap(em, eph.port()), Server: ap(sql, 22)},
		// ignored: neither end is in the inventory.
		{Shape: TCPSession, Policy: Ignored, At: s(8), Client: ap(otherHostA, eph.port()), Server: ap(otherHostB, 80)},
		// not_product: two agents (on a file server and a domain
		// controller) talking RDP and SMB, no product port, no product
		// host: their own business.
		{Shape: TCPSession, Policy: NotProduct, At: s(9), Client: ap(agentA, eph.port()), Server: ap(agentB, 3389)},
		{Shape: TCPSession, Policy: NotProduct, At: s(10), Client: ap(dc, eph.port()), Server: ap(agentA, 445)},
	}
	return Scenario{
		Capture: "unexpected.pcapng",
		Format:  PcapNG,
		Links:   []Link{{Type: ethernet, Name: "eth0", Nanos: true}},
		Config: Config{
			Comment: "Site config for unexpected.pcapng: every optional feature off.\n" +
				"Written by pcaps/cmd/gencaps; do not edit.",
			Roles: []RoleHosts{
				{"enterprise-manager", []string{em.String()}},
				{"agent", []string{agentA.String(), agentB.String()}},
				{"sql-server", []string{sql.String()}},
				{"domain-controller", []string{dc.String()}},
				{"netapp-cdot", []string{netappC.String()}},
			},
			Features: []Feature{{"wmi-auto-deploy", false}, {"fpolicy-management", false}},
		},
		Flows: flows,
	}
}
