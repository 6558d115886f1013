package classifier

import (
	"time"

	"github.com/tpwatch/tpwatch/policy"
)

// Options tune a Table. A zero or negative field takes its default (see
// DefaultOptions); a timeout longer than a config may set
// (policy.MaxTimeouts) takes that maximum.
type Options struct {
	// AttemptTimeout is how long a TCP attempt (the client's first SYN)
	// waits for an answer before it is blocked/no_response.
	AttemptTimeout time.Duration
	// UDPReplyTimeout is how long the first packet of a UDP flow whose
	// rule expects a reply waits for it: then the flow is
	// blocked/no_response.
	UDPReplyTimeout time.Duration
	// UDPICMPWait is how long the first packet of a one-way UDP flow (a
	// rule that expects no reply) waits for an ICMP error: then, with
	// none, the flow is allowed.
	UDPICMPWait time.Duration
	// TCPIdle and UDPIdle end a flow that long after its last packet.
	TCPIdle, UDPIdle time.Duration
	// TCPClosed ends a closed TCP flow (both FINs, or a RST) that long
	// after its last packet, so that late packets still count in it.
	TCPClosed time.Duration
	// MaxFlows bounds the live flows; beyond it new flows evict old ones.
	// It is capped at 1<<28.
	MaxFlows int
	// Vantage tells each flow's vantage (FlowRecord.Vantage): nil, every
	// flow is in transit.
	Vantage *VantagePoint
	// Inspect, when set, makes the table read a few payload bytes: every
	// payload of the RPC endpoint mapper (TCP 135) and SQL Server Browser
	// (UDP 1434), whose answers announce ports, and the first payloads of
	// each direction on these documented ports, which name the
	// application protocol (inspect.go). nil: headers only.
	Inspect *InspectPorts
	// Announcements holds the ports servers announced; tables that share
	// one (a daemon's interfaces) learn from each other's endpoint mapper
	// answers. nil: the table keeps its own when it inspects.
	Announcements *Announcements
	// RPCStrict makes a flow that a rule whose ports an endpoint mapper
	// announces admits only by its dynamic range, with no announcement
	// seen, unexpected/rpc_unannounced rather than allowed.
	RPCStrict bool
	// AppWait is how long a flow that worked on a port with an expected
	// protocol may stay quiet before it is allowed without its first
	// payload having named the protocol.
	AppWait time.Duration
	// InitialFlows is the number of flows the table holds before its
	// index first grows, and, where its entries are Go slices rather than
	// a mapping for MaxFlows (arena.go), before they first grow (capped
	// at MaxFlows).
	InitialFlows int
}

const maxMaxFlows = 1 << 28

// DefaultOptions returns the defaults: the timeouts of
// policy.DefaultTimeouts (the documented config defaults: attempts 30 s,
// UDP replies 10 s, one-way UDP's wait for an ICMP error 2 s, TCP idle
// 5 min, UDP idle 1 min, closed TCP linger 5 s),
// at most 1<<20 flows, 4096 to start with.
func DefaultOptions() Options {
	return OptionsFor(policy.DefaultTimeouts())
}

// OptionsFor returns the default options with a site config's timeouts.
func OptionsFor(t policy.Timeouts) Options {
	return Options{
		AttemptTimeout:  t.TCPAttempt,
		UDPReplyTimeout: t.UDPReply,
		UDPICMPWait:     t.UDPICMPWait,
		TCPIdle:         t.TCPIdle,
		UDPIdle:         t.UDPIdle,
		TCPClosed:       t.TCPClosed,
		MaxFlows:        1 << 20,
		InitialFlows:    4096,
		AppWait:         defaultAppWait,
	}
}

// defaultAppWait: a client speaks first on every documented port (TLS,
// gRPC, HTTP, TDS, SMB, RPC), right after the handshake; five quiet
// seconds are well past a slow client and short for a dashboard.
const defaultAppWait = 5 * time.Second

// withDefaults fills the zero fields and applies the bounds.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	orDefault := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	orDefault(&o.AttemptTimeout, d.AttemptTimeout)
	orDefault(&o.UDPReplyTimeout, d.UDPReplyTimeout)
	orDefault(&o.UDPICMPWait, d.UDPICMPWait)
	orDefault(&o.TCPIdle, d.TCPIdle)
	orDefault(&o.UDPIdle, d.UDPIdle)
	orDefault(&o.TCPClosed, d.TCPClosed)
	orDefault(&o.AppWait, d.AppWait)
	o.AppWait = min(o.AppWait, time.Hour)
	// The config's bounds apply to options set in Go too: 2,500,000 hours
	// added to a packet time overflowed it, and turned a working
	// connection into a blocked one.
	m := policy.MaxTimeouts()
	o.AttemptTimeout = min(o.AttemptTimeout, m.TCPAttempt)
	o.UDPReplyTimeout = min(o.UDPReplyTimeout, m.UDPReply)
	o.UDPICMPWait = min(o.UDPICMPWait, m.UDPICMPWait)
	o.TCPIdle = min(o.TCPIdle, m.TCPIdle)
	o.UDPIdle = min(o.UDPIdle, m.UDPIdle)
	o.TCPClosed = min(o.TCPClosed, m.TCPClosed)
	if o.MaxFlows <= 0 {
		o.MaxFlows = d.MaxFlows
	}
	o.MaxFlows = min(o.MaxFlows, maxMaxFlows)
	if o.InitialFlows <= 0 {
		o.InitialFlows = d.InitialFlows
	}
	o.InitialFlows = min(o.InitialFlows, o.MaxFlows)
	return o
}

// SetTimeouts puts new timeouts in force (a reloaded config): every live
// flow's deadlines follow them from now on, whether they moved later or
// earlier, and a flow whose new deadline has passed is settled at once.
func (t *Table) SetTimeouts(to policy.Timeouts) {
	// Only the timeouts change: the vantage, the inspection and the bounds
	// stay as the table was made.
	n, o := OptionsFor(to), t.opts
	o.AttemptTimeout, o.UDPReplyTimeout, o.UDPICMPWait = n.AttemptTimeout, n.UDPReplyTimeout, n.UDPICMPWait
	o.TCPIdle, o.UDPIdle, o.TCPClosed = n.TCPIdle, n.UDPIdle, n.TCPClosed
	t.opts = o.withDefaults()
	// A due time is a lower bound of the next deadline under the old
	// timeouts, and shorter ones break that: every flow is due now, and
	// the sweep stores its new bound.
	clear(t.due[:t.live])
	t.sweep(t.live)
	t.publish()
}
