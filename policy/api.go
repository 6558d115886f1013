package policy

// This file fixes the API the classifier and the command line use. The
// policy helper implements it (files of its own in this package); the
// signatures below are the contract.

// Role is one of the Threat Prevention roles of DESIGN.md. The zero value is
// invalid.
type Role uint8

const (
	RoleInvalid Role = iota
	EnterpriseManager
	Agent
	AdminConsole
	SQLServer
	ThreatManager
	DomainController
	ActivityMonitor
	CEEServer
	DellCelerraVNX
	DellIsilon
	DellUnity
	Nasuni
	NetApp7Mode
	NetAppCDOT
	Panzura
	SIEM
	numRoles
)

// roleNames are the exact, lower-case names of DESIGN.md, indexed by Role.
var roleNames = [numRoles]string{
	"", "enterprise-manager", "agent", "admin-console", "sql-server",
	"threat-manager", "domain-controller", "activity-monitor", "cee-server",
	"dell-celerra-vnx", "dell-isilon", "dell-unity", "nasuni", "netapp-7mode",
	"netapp-cdot", "panzura", "siem",
}

func (r Role) String() string {
	if r > RoleInvalid && r < numRoles {
		return roleNames[r]
	}
	return "invalid"
}

// RoleSet is a set of roles as a bit mask (bit r for Role r): hosts often
// hold several roles, and a mask keeps the flow table free of pointers.
type RoleSet uint32

// Has reports whether r is in the set.
func (s RoleSet) Has(r Role) bool { return s&(1<<r) != 0 }

// With returns the set with r added.
func (s RoleSet) With(r Role) RoleSet { return s | 1<<r }

// Transport is a transport protocol, valued as its IP protocol number.
type Transport uint8

const (
	TCP Transport = 6
	UDP Transport = 17
)

func (t Transport) String() string {
	switch t {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return "invalid"
}

// PortRange is an inclusive range of ports; a single port has Low == High.
type PortRange struct{ Low, High uint16 }

// InferMode says what a flow on a rule teaches the inferred inventory.
type InferMode uint8

const (
	InferNone   InferMode = iota
	InferServer           // a server that answers takes the rule's server role
	InferBoth             // and a client whose flow worked the rule's client role
	// InferKnownClient: a server that answers a client already holding
	// the rule's client role takes the server role. A SQL Server is the
	// product's only when the Enterprise Manager uses it: every SQL
	// Server answers 1433, and its other clients are no Enterprise
	// Managers.
	InferKnownClient
)

// Announce says which announcement may stand for a rule's ports: a
// server that tells its clients where to connect, rather than a port the
// documents fix.
type Announce uint8

const (
	AnnounceNone Announce = iota
	// AnnounceRPC: the port an RPC endpoint mapper (ept_map on TCP 135)
	// or a DCOM activation hands out ("the port that 135 reports", "RPC
	// Dynamic Range").
	AnnounceRPC
	// AnnounceSQLBrowser: the TCP port SQL Server Browser (UDP 1434)
	// gives for a named instance.
	AnnounceSQLBrowser
)

var announceNames = [...]string{"", "rpc", "sql-browser"}

func (a Announce) String() string {
	if int(a) < len(announceNames) {
		return announceNames[a]
	}
	return "invalid"
}

// Evidence is what a flow showed of its hosts, for an inventory learned
// from the traffic (see Inventory.Learn).
type Evidence uint8

const (
	// ServerAnswered: the server answered on its port (a SYN-ACK, a
	// reply, a segment that acknowledges the client's).
	ServerAnswered Evidence = 1 << iota
	// ClientCompleted: the client went on after the answer (the ACK of
	// the handshake, data): the flow worked for both ends, which a scan
	// never does.
	ClientCompleted
)

// MatchKind is the outcome of matching a flow's roles and port against the
// rules, before the flow's own behaviour is known.
type MatchKind uint8

const (
	MatchIgnored            MatchKind = iota // unrelated to Threat Prevention
	MatchAllowed                             // an enabled rule admits it
	MatchFeatureDisabled                     // a rule admits it, its feature is off
	MatchUnauthorizedClient                  // documented server port of the server, client not admitted
	MatchNoRule                              // both ends known, no rule for this port and roles
	// MatchNotProduct: both ends known, no rule admits the flow, and it
	// does not concern the product: no product port, no product host (two
	// domain controllers that both run an agent, replicating).
	MatchNotProduct
	// MatchSiteIgnored: no rule admits the flow, and an entry of the
	// config's ignore list matches it.
	MatchSiteIgnored
	// MatchOwnTraffic: a host talking to itself (its loopback, or one
	// address to itself), or the daemon's own metrics being scraped:
	// nothing a firewall between hosts sees.
	MatchOwnTraffic
	// MatchUnannounced: a rule whose port an RPC endpoint mapper
	// announces admits the flow only by its dynamic range, and no
	// announcement was seen (the classifier's --rpc-strict; never
	// Policy.Match).
	MatchUnannounced
)

// Match is what Policy.Match returns: the kind, and the index of the rule
// concerned in Policy.Rules() (-1 for MatchIgnored, MatchNoRule,
// MatchNotProduct and MatchSiteIgnored).
type Match struct {
	Kind MatchKind
	Rule int32
}

// Flow is what Match needs to know of a flow: its transport, its client
// and its server with the roles they hold, and the server's port.
// Addresses are 16 bytes, IPv4 IPv4-mapped.
type Flow struct {
	Transport                Transport
	Client, Server           [16]byte
	ClientRoles, ServerRoles RoleSet
	Port                     uint16
}
