package policy

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the site inventory: the --config file of DESIGN.md.
type Config struct {
	// Roles lists, per role, the hosts that hold it. A bare address is a
	// /32 or /128 prefix. IPv4 prefixes are in IPv4 form, never
	// IPv4-mapped. A host may appear under several roles.
	Roles map[Role][]netip.Prefix
	// Features turns optional features on: only wmi-auto-deploy and
	// fpolicy-management may be named. Absent means off.
	Features map[string]bool
	// SIEMPorts are the ports the Enterprise Manager sends SIEM alerts to;
	// listing any turns the siem feature on.
	SIEMPorts []PortSpec
	// Allow are the site's own rules, appended after the matrix. They
	// have no feature and infer nothing.
	Allow []Rule
	// Ignore lists what the site knows is not Threat Prevention's: a flow
	// that no enabled rule allows and that one of them matches is ignored
	// (reason site_ignore) rather than unexpected.
	Ignore []IgnoreRule
	// Timeouts overrides the flow timeouts; a zero field keeps its
	// default (see DefaultTimeouts).
	Timeouts Timeouts
}

// PortSpec is a transport and a port range, written udp/514 or
// tcp/6000-6010: an entry of siem.ports, or of an ignore entry's ports.
type PortSpec struct {
	Transport Transport
	Ports     PortRange
}

func (p PortSpec) String() string { return p.Transport.String() + "/" + p.Ports.String() }

// IgnoreRule is one entry of the config's ignore list. Every condition it
// gives must hold; it gives at least one.
type IgnoreRule struct {
	// ID names the entry in messages; optional.
	ID string
	// Networks: one end of the flow is in one of them.
	Networks []netip.Prefix
	// Ports: the flow's transport and server port are one of them.
	Ports []PortSpec
	// Client and Server: the roles the flow's ends hold (RoleInvalid:
	// any).
	Client, Server Role
	// Description says why, for whoever reads the config next.
	Description string
}

// Timeouts are the flow timeouts, in packet time.
type Timeouts struct {
	TCPAttempt time.Duration // a SYN with no answer is blocked/no_response after this
	UDPReply   time.Duration // a request to a reply rule with no answer is blocked/no_response after this
	TCPIdle    time.Duration // an established TCP flow with no packets ends after this
	UDPIdle    time.Duration // a UDP flow with no packets ends after this
	TCPClosed  time.Duration // a closed (FIN both ways, RST) flow is kept this long for stragglers
	// UDPICMPWait is how long datagrams of a one-way UDP rule (the event
	// stream, NetBIOS datagrams, syslog) wait for an ICMP error: then,
	// with none, the flow is allowed.
	UDPICMPWait time.Duration
}

// DefaultTimeouts returns the timeouts used where the config sets none.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		TCPAttempt:  30 * time.Second,
		UDPReply:    10 * time.Second,
		TCPIdle:     5 * time.Minute,
		UDPIdle:     time.Minute,
		TCPClosed:   5 * time.Second,
		UDPICMPWait: 2 * time.Second,
	}
}

// timeoutRanges bound each timeout (in fields() order): long enough for a
// real answer, short enough that packet time cannot overflow and that a
// flow is decided within a day.
var timeoutRanges = [...]struct{ min, max time.Duration }{
	{100 * time.Millisecond, time.Hour},      // tcp_attempt
	{100 * time.Millisecond, time.Hour},      // udp_reply
	{time.Second, 24 * time.Hour},            // tcp_idle
	{time.Second, 24 * time.Hour},            // udp_idle
	{10 * time.Millisecond, time.Hour},       // tcp_closed
	{10 * time.Millisecond, 5 * time.Minute}, // udp_icmp_wait
}

// MaxTimeouts returns the longest timeouts a config may set. Timeouts set
// in Go rather than read from a config (classifier.Options) are capped at
// them too: packet time plus a timeout must not overflow.
func MaxTimeouts() Timeouts {
	var t Timeouts
	for i, f := range t.fields() {
		*f = timeoutRanges[i].max
	}
	return t
}

// EffectiveTimeouts returns the configured timeouts with defaults in place
// of the zero ones. A nil config has all defaults.
func (c *Config) EffectiveTimeouts() Timeouts {
	t := DefaultTimeouts()
	if c == nil {
		return t
	}
	for i, f := range c.Timeouts.fields() {
		if *f != 0 {
			*t.fields()[i] = *f
		}
	}
	return t
}

// timeoutKeys are the config keys of the Timeouts fields, in fields() order.
var timeoutKeys = []string{"tcp_attempt", "udp_reply", "tcp_idle", "udp_idle", "tcp_closed", "udp_icmp_wait"}

func (t *Timeouts) fields() []*time.Duration {
	return []*time.Duration{&t.TCPAttempt, &t.UDPReply, &t.TCPIdle, &t.UDPIdle, &t.TCPClosed, &t.UDPICMPWait}
}

var (
	configKeys     = []string{"roles", "features", "siem", "allow", "ignore", "timeouts"}
	siemKeys       = []string{"ports"}
	allowRuleKeys  = []string{"id", "client", "server", "transport", "ports", "description", "reply", "announced"}
	ignoreRuleKeys = []string{"id", "networks", "ports", "client", "server", "description"}
)

// LoadConfig reads a site config file (the --config option).
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(data, path)
}

// ParseConfig parses a site config; name is used in error messages. The
// error, if any, is a ConfigErrors listing every problem with its line and
// column.
func ParseConfig(data []byte, name string) (*Config, error) {
	d := &nodeDecoder{file: name}
	c := &Config{Roles: map[Role][]netip.Prefix{}, Features: map[string]bool{}}
	if root := d.parseDocument(data); root != nil {
		d.mapping(root, "the config", configKeys, func(key string, _, v *yaml.Node) {
			switch key {
			case "roles":
				d.roles(c, v)
			case "features":
				d.features(c, v)
			case "siem":
				d.mapping(v, "siem", siemKeys, func(_ string, _, v *yaml.Node) {
					d.siemPorts(c, v)
				})
			case "allow":
				d.allow(c, v)
			case "ignore":
				d.ignore(c, v)
			case "timeouts":
				d.timeouts(c, v)
			}
		})
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	return c, nil
}

func (d *nodeDecoder) roles(c *Config, n *yaml.Node) {
	d.mapping(n, "roles", nil, func(name string, k, v *yaml.Node) {
		role, ok := ParseRole(name)
		if !ok {
			hint := suggest(name, RoleNames())
			if name == anyClient {
				hint = ` ("any" is for rules only)`
			}
			d.errorf(k, "unknown role %q%s", name, hint)
			return
		}
		for _, item := range d.sequence(v, "roles."+name, "[192.0.2.10, 198.51.100.0/24]") {
			text, ok := d.scalar(item, "roles."+name)
			if !ok {
				continue
			}
			p, err := parseHostPrefix(text)
			if err != nil {
				d.errorf(item, "%s", err)
				continue
			}
			c.Roles[role] = append(c.Roles[role], p)
		}
	})
}

// parseHostPrefix reads an address ("192.0.2.10", "2001:db8::10") or a CIDR
// prefix. IPv4-mapped IPv6 is turned into IPv4 so that one host has one
// spelling.
func parseHostPrefix(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return p, fmt.Errorf("bad address %q: want an address or a CIDR prefix such as 192.0.2.10, 2001:db8::10 or 198.51.100.0/24", s)
		}
		if p.Masked() != p {
			return p, fmt.Errorf("bad prefix %q: host bits set (did you mean %q?)", s, p.Masked().String())
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return p, fmt.Errorf("bad address %q: want an address or a CIDR prefix such as 192.0.2.10, 2001:db8::10 or 198.51.100.0/24", s)
		}
		if a.Zone() != "" {
			return p, fmt.Errorf("bad address %q: remove the zone %%%s", s, a.Zone())
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p, nil
}

func (d *nodeDecoder) features(c *Config, n *yaml.Node) {
	d.mapping(n, "features", nil, func(name string, k, v *yaml.Node) {
		if !contains(matrixFeatures, name) {
			hint := suggest(name, matrixFeatures)
			if name == FeatureSIEM {
				hint = " (list siem.ports to turn SIEM on)"
			}
			d.errorf(k, "unknown feature %q%s", name, hint)
			return
		}
		if on, ok := d.boolean(v, "features."+name); ok {
			c.Features[name] = on
		}
	})
}

const portSpecSyntax = "want transport/port such as udp/514, tcp/6514 or tcp/6000-6010"

func (d *nodeDecoder) siemPorts(c *Config, n *yaml.Node) {
	for _, item := range d.sequence(n, "siem.ports", "[udp/514, tcp/6514]") {
		text, ok := d.scalar(item, "siem port")
		if !ok {
			continue
		}
		p, err := parsePortSpec(text)
		if err != nil {
			d.errorf(item, "%s", err)
			continue
		}
		c.SIEMPorts = append(c.SIEMPorts, p)
	}
}

func parsePortSpec(s string) (PortSpec, error) {
	trText, portText, ok := strings.Cut(s, "/")
	if !ok {
		return PortSpec{}, fmt.Errorf("bad siem port %q: %s", s, portSpecSyntax)
	}
	tr, ok := parseTransport(trText)
	if !ok {
		return PortSpec{}, fmt.Errorf("bad siem port %q: %s", s, portSpecSyntax)
	}
	pr, problem := parsePortRange(portText)
	if problem != "" {
		return PortSpec{}, fmt.Errorf("bad siem port %q: %s", s, problem)
	}
	return PortSpec{Transport: tr, Ports: pr}, nil
}

func (d *nodeDecoder) allow(c *Config, n *yaml.Node) {
	for _, r := range d.rules(n, "allow", "- {id: rdp-admin, client: admin-console, server: agent, transport: tcp, ports: [3389]}", "allow rule", "allow", allowRuleKeys) {
		r.Section = "site config (allow)"
		c.Allow = append(c.Allow, r)
	}
}

func (d *nodeDecoder) timeouts(c *Config, n *yaml.Node) {
	fields := c.Timeouts.fields()
	d.mapping(n, "timeouts", timeoutKeys, func(key string, _, v *yaml.Node) {
		text, ok := d.scalar(v, "timeouts."+key)
		if !ok {
			return
		}
		dur, err := time.ParseDuration(text)
		if err != nil || dur <= 0 {
			d.errorf(v, "bad duration %q for %s: want a positive Go duration such as 30s or 5m", text, key)
			return
		}
		for i, k := range timeoutKeys {
			if k != key {
				continue
			}
			if r := timeoutRanges[i]; dur < r.min || dur > r.max {
				d.errorf(v, "%s %s is out of range: want %s to %s", key, text, shortDuration(r.min), shortDuration(r.max))
				return
			}
			*fields[i] = dur
		}
	})
}

// shortDuration writes a duration without its zero units: 1h, 5m, 100ms
// (time.Duration writes 1h0m0s).
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (d *nodeDecoder) ignore(c *Config, n *yaml.Node) {
	const example = "- {id: backup, networks: [10.9.0.0/16]}"
	ids := map[string]int{}
	for _, item := range d.sequence(n, "ignore", example) {
		var r IgnoreRule
		conditions, errsBefore := 0, len(d.errs)
		if isNull(item) {
			d.errorf(item, "ignore: empty entry, want a mapping such as {networks: [10.9.0.0/16]} or {ports: [tcp/8530]}")
			continue
		}
		d.mapping(item, "ignore entry", ignoreRuleKeys, func(key string, _, v *yaml.Node) {
			switch key {
			case "networks":
				conditions++
				for _, addr := range d.sequence(v, "networks", "[10.9.0.0/16, 192.0.2.50]") {
					text, ok := d.scalar(addr, "networks")
					if !ok {
						continue
					}
					p, err := parseHostPrefix(text)
					if err != nil {
						d.errorf(addr, "%s", err)
						continue
					}
					r.Networks = append(r.Networks, p)
				}
			case "ports":
				conditions++
				for _, port := range d.sequence(v, "ports", "[tcp/8530, udp/161]") {
					text, ok := d.scalar(port, "ports")
					if !ok {
						continue
					}
					p, err := parsePortSpec(text)
					if err != nil {
						d.errorf(port, "%s", strings.Replace(err.Error(), "bad siem port", "bad port", 1))
						continue
					}
					r.Ports = append(r.Ports, p)
				}
			case "client", "server":
				conditions++
				text, ok := d.scalar(v, key)
				if !ok {
					return
				}
				role, ok := ParseRole(text)
				if !ok {
					d.errorf(v, "unknown role %q%s", text, suggest(text, RoleNames()))
					return
				}
				if key == "client" {
					r.Client = role
				} else {
					r.Server = role
				}
			case "id":
				text, ok := d.scalar(v, key)
				if !ok {
					return
				}
				if !validID(text) {
					d.errorf(v, "bad id %q: use letters, digits, '-', '_' and '.' only", text)
				}
				if first, dup := ids[text]; dup {
					d.errorf(v, "duplicate ignore id %q (first at line %d): ids must be unique", text, first)
				}
				ids[text] = v.Line
				r.ID = text
			case "description":
				r.Description, _ = d.scalar(v, key)
			}
		})
		if item.Kind == yaml.MappingNode && conditions == 0 && len(d.errs) == errsBefore {
			d.errorf(item, "ignore entry: give at least one of networks, ports, client, server (an entry without one would ignore everything)")
			continue
		}
		c.Ignore = append(c.Ignore, r)
	}
}
