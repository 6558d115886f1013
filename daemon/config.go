package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/capture/live"
)

// Defaults of Config, used where a field is zero.
const (
	DefaultListenAddress = ":19740"
	DefaultTelemetryPath = "/metrics"
	// DefaultLogRate and DefaultLogBurst bound the flow log: a network
	// that blocks a required port for a thousand agents logs the first
	// DefaultLogBurst flows at once, then DefaultLogRate a second, and
	// counts the rest in tpwatch_log_events_suppressed_total.
	DefaultLogRate  = 10.0
	DefaultLogBurst = 50
	// DefaultSuppressedReport is how often the number of suppressed flow
	// events is logged, when there were any.
	DefaultSuppressedReport = time.Minute
	// DefaultRetryMin and DefaultRetryMax bound the backoff between
	// attempts to open an interface that is missing or failed.
	DefaultRetryMin = time.Second
	DefaultRetryMax = 30 * time.Second
	// DefaultStatsInterval is how often a capture's drop counters are
	// read: often enough for a scrape, rarely enough to cost nothing.
	DefaultStatsInterval = time.Second
	// DefaultAddrsInterval is how often the host's own addresses are read
	// again, for the vantage of its flows.
	DefaultAddrsInterval = 30 * time.Second
)

// Config is what `tpwatch run` was asked to do.
type Config struct {
	// Interfaces to capture on, each with its own flow table. "any" (Linux)
	// is one interface that sees them all. At least one is required.
	Interfaces []string
	// Live are the capture options of every interface. An empty Live.BPF
	// means the filter is derived from the policy (BPFFilter) and follows
	// config reloads; a given one is used as it is.
	Live live.Options

	// ConfigFile is the site config; empty means the inventory is
	// inferred from the traffic. MatrixFile replaces the embedded matrix
	// when set. Both are read again by Reload.
	ConfigFile, MatrixFile string

	// ListenAddresses are where the metrics are served (default
	// DefaultListenAddress). Listeners, when not empty, are used instead:
	// sockets the caller opened (systemd socket activation, tests).
	ListenAddresses []string
	Listeners       []net.Listener
	// TelemetryPath is the metrics path (default DefaultTelemetryPath).
	TelemetryPath string
	// WebConfigFile is an exporter-toolkit web config: TLS, basic auth.
	WebConfigFile string

	// MaxFlows bounds each interface's flow table (0: the classifier's
	// default).
	MaxFlows int
	// HeadersOnly turns payload inspection off (see replay.Config).
	HeadersOnly bool
	// RPCStrict: see replay.Config.
	RPCStrict bool

	// Vantage is where the daemon sees flows from: "auto" (or empty) tells
	// client and server by this host's addresses, refreshed every
	// AddrsInterval; "client", "server" or "transit" gives every flow
	// that vantage (a sensor on a mirror port: transit).
	Vantage string
	// AddrsInterval is how often the host's addresses are read again
	// (0: DefaultAddrsInterval).
	AddrsInterval time.Duration
	// LocalAddrs returns the host's addresses (nil: its interfaces').
	LocalAddrs func() ([]netip.Addr, error)

	// LogRate is the most blocked and unexpected flows logged per second
	// on average, LogBurst the most at once (0: the defaults; a negative
	// LogRate logs every flow).
	LogRate  float64
	LogBurst int
	// SuppressedReport is how often suppressed flow events are summarised
	// in the log (0: DefaultSuppressedReport).
	SuppressedReport time.Duration

	// User, when set, is the account to switch to once the captures and
	// the metrics listeners are open (Linux only). Interfaces that could
	// not be opened before the switch keep being retried, which then
	// needs CAP_NET_RAW kept by other means (see deploy/systemd).
	User string

	// RetryMin and RetryMax bound the backoff between attempts to open
	// an interface (0: DefaultRetryMin, DefaultRetryMax).
	RetryMin, RetryMax time.Duration
	// StatsInterval is how often the capture's drop counters are read
	// (0: DefaultStatsInterval).
	StatsInterval time.Duration

	// Version and Revision are exported in tpwatch_build_info.
	Version, Revision string

	// RecentFlows is how many blocked and unexpected flows the status
	// page and the flow API keep (0: DefaultRecentFlows).
	RecentFlows int

	// Reload, when not nil, asks for a config reload on each receive
	// (SIGHUP). Reloads also run through Daemon.Reload.
	Reload <-chan struct{}

	// Ready, when not nil, is called once, when the metrics listeners and
	// the captures are open and the daemon monitors: a Windows service
	// reports itself running then, not before.
	Ready func()

	// Backend opens the captures; nil means live capture (the live
	// package). Tests give captures read from files.
	Backend Backend
}

// Backend opens captures: live ones, or, in tests, ones that replay
// files.
type Backend interface {
	// Open opens iface for capture with o. An error for which
	// live.Permanent is true stops the daemon at start; any other is
	// retried.
	Open(iface string, o live.Options) (Capture, error)
	// CheckFilter says whether a capture filter can be applied with o
	// (on Ethernet, the commonest link), without an interface: a bad
	// filter is refused at start, not retried.
	CheckFilter(expr string, o live.Options) error
}

// Capture is an open capture, as the daemon reads it (a *live.Handle).
type Capture interface {
	capture.Reader
	// Link is the link type of the records.
	Link() capture.LinkType
	// Stats returns the capture's counters since it opened.
	Stats() (live.Stats, error)
	// SetFilter replaces the filter from the next Next on; CheckFilter
	// says whether it would accept one, changing nothing.
	SetFilter(expr string) error
	CheckFilter(expr string) error
}

// liveBackend is the Backend of a real daemon.
type liveBackend struct{}

func (liveBackend) Open(iface string, o live.Options) (Capture, error) {
	h, err := live.Open(iface, o)
	if err != nil {
		return nil, err
	}
	return h, nil
}

func (liveBackend) CheckFilter(expr string, o live.Options) error {
	return live.CheckFilter(expr, capture.LinkEthernet, o)
}

func (c Config) withDefaults() Config {
	if len(c.ListenAddresses) == 0 {
		c.ListenAddresses = []string{DefaultListenAddress}
	}
	if c.TelemetryPath == "" {
		c.TelemetryPath = DefaultTelemetryPath
	}
	if c.LogRate == 0 {
		c.LogRate = DefaultLogRate
	}
	if c.LogBurst <= 0 {
		c.LogBurst = DefaultLogBurst
	}
	if c.SuppressedReport <= 0 {
		c.SuppressedReport = DefaultSuppressedReport
	}
	if c.RetryMin <= 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	c.RetryMax = max(c.RetryMax, c.RetryMin)
	if c.StatsInterval <= 0 {
		c.StatsInterval = DefaultStatsInterval
	}
	if c.Live.ReadTimeout <= 0 {
		c.Live.ReadTimeout = live.DefaultReadTimeout
	}
	if c.Backend == nil {
		c.Backend = liveBackend{}
	}
	if c.Vantage == "" {
		c.Vantage = "auto"
	}
	if c.AddrsInterval <= 0 {
		c.AddrsInterval = DefaultAddrsInterval
	}
	if c.LocalAddrs == nil {
		c.LocalAddrs = interfaceAddrs
	}
	return c
}

// interfaceAddrs returns the addresses of the host's interfaces.
func interfaceAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("read the host's addresses: %w", err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out, nil
}
