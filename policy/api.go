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
	InferServer           // the server takes the rule's server role
	InferBoth             // and its client the rule's client role
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
)

// Match is what Policy.Match returns: the kind, and the index of the rule
// concerned in Policy.Rules() (-1 for MatchIgnored and MatchNoRule).
type Match struct {
	Kind MatchKind
	Rule int32
}
