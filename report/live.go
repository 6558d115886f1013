package report

import (
	"net/netip"
	"time"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/policy"
)

// Live is what the daemon's status page shows beyond a replay's report:
// the host, the config in force and its reloads, and the last problem
// flows. A View with a Live is drawn as the status page.
type Live struct {
	// Host is the host's name, Addrs its addresses with the roles the
	// inventory gives them.
	Host  string
	Addrs []Endpoint
	// Started is when the daemon started, Now when the page was made.
	Started, Now time.Time
	// Config is the site config file ("" when the inventory is
	// learned), Rules the number of rules in force.
	Config string
	Rules  int
	// ReloadOK says the last config load succeeded; LastReload is the
	// last that did, ReloadFailures counts those that did not.
	ReloadOK       bool
	LastReload     time.Time
	ReloadFailures uint64
	// Recent are the last blocked and unexpected flows, the newest
	// first, and RecentKept how many the daemon keeps.
	Recent     []Flow
	RecentKept int
	// Refresh is how often the page reloads itself, in seconds (0:
	// never).
	Refresh int
	// MetricsPath is where the metrics are served, for a link.
	MetricsPath string
}

// Flow is one flow as a page lists it.
type Flow struct {
	Seq                    uint64
	Interface              string
	First, Last            time.Time
	Transport              policy.Transport
	Client, Server         Endpoint
	ClientPort, ServerPort uint16
	Rule                   string
	Verdict                classifier.Verdict
	Reason                 classifier.Reason
	Outcome                classifier.Outcome
	ConnState, History     string
	ICMP                   bool
	ICMPType, ICMPCode     uint8
	ICMPSrc                netip.Addr
}

// FlowOf makes the Flow of a record; rules resolve its rule number.
func FlowOf(r *classifier.FlowRecord, rules []policy.Rule) Flow {
	f := Flow{
		First: time.Unix(0, r.First).UTC(), Last: time.Unix(0, r.Last).UTC(),
		Transport:  r.Transport,
		Client:     Endpoint{Addr: netip.AddrFrom16(r.Client).Unmap(), Roles: r.ClientRoles},
		Server:     Endpoint{Addr: netip.AddrFrom16(r.Server).Unmap(), Roles: r.ServerRoles},
		ClientPort: r.ClientPort, ServerPort: r.ServerPort,
		Verdict: r.Verdict, Reason: r.Reason,
		ConnState: r.ConnState.String(), History: r.HistoryString(),
		ICMP: r.ICMP, ICMPType: r.ICMPType, ICMPCode: r.ICMPCode,
	}
	if r.Verdict == classifier.Unexpected {
		f.Outcome = r.Outcome
	}
	if r.ICMP {
		f.ICMPSrc = netip.AddrFrom16(r.ICMPSrc).Unmap()
	}
	if r.Rule >= 0 && int(r.Rule) < len(rules) {
		f.Rule = rules[r.Rule].ID
	}
	return f
}
