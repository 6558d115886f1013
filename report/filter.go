package report

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/policy"
)

// Filter selects flows: those a replay reports (--host, --rule, --verdict,
// --since, --until), those the daemon's flow API lists. Each field that is
// set must match; within a field, any value may.
type Filter struct {
	// Hosts: the flow's client or server is in one of these.
	Hosts []netip.Prefix
	// Rules: the flow's rule id is one of these ("" for flows without
	// one).
	Rules []string
	// Verdicts: the flow's verdict is one of these.
	Verdicts []classifier.Verdict
	// Ports: the flow's server port is one of these.
	Ports []uint16
	// Since and Until bound the flow's time: it was seen at or after
	// Since, and at or before Until (zero: no bound).
	Since, Until time.Time
}

// Empty reports whether the filter keeps every flow.
func (f *Filter) Empty() bool {
	return len(f.Hosts) == 0 && len(f.Rules) == 0 && len(f.Verdicts) == 0 && len(f.Ports) == 0 && f.Since.IsZero() && f.Until.IsZero()
}

// ParseVerdicts reads verdict names, as --verdict gives them: "blocked",
// "unexpected,pending".
func ParseVerdicts(list []string) ([]classifier.Verdict, error) {
	var out []classifier.Verdict
	for _, item := range list {
		for _, name := range strings.Split(item, ",") {
			name = strings.TrimSpace(name)
			v, ok := classifier.ParseVerdict(name)
			if !ok {
				return nil, fmt.Errorf("unknown verdict %q: want allowed, blocked, unexpected, pending or ignored", name)
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// ParseHosts reads addresses and prefixes, as --host gives them.
func ParseHosts(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range list {
		for _, text := range strings.Split(item, ",") {
			text = strings.TrimSpace(text)
			var p netip.Prefix
			var err error
			if strings.Contains(text, "/") {
				p, err = netip.ParsePrefix(text)
				p = p.Masked()
			} else {
				var a netip.Addr
				if a, err = netip.ParseAddr(text); err == nil {
					p = netip.PrefixFrom(a, a.BitLen())
				}
			}
			if err != nil {
				return nil, fmt.Errorf("bad host %q: want an address or a prefix such as 192.0.2.10 or 198.51.100.0/24", text)
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// ParsePorts reads server ports, as the flow API's port= gives them.
func ParsePorts(list []string) ([]uint16, error) {
	var out []uint16
	for _, item := range list {
		for _, text := range strings.Split(item, ",") {
			text = strings.TrimSpace(text)
			n, err := strconv.ParseUint(text, 10, 16)
			if err != nil || n == 0 {
				return nil, fmt.Errorf("bad port %q: want a number from 1 to 65535", text)
			}
			out = append(out, uint16(n))
		}
	}
	return out, nil
}

// FlowFilter is a Filter ready to test flows.
type FlowFilter struct {
	f        Filter
	rules    map[int32]bool // rule indices the filter keeps; nil: any
	noRule   bool           // flows without a rule are kept
	verdicts [classifier.NumVerdicts]bool
	since    int64
	until    int64
}

// Compile readies the filter for flows classified against rules (which
// resolve rule ids to the numbers flows carry).
func (f Filter) Compile(rules []policy.Rule) *FlowFilter {
	c := &FlowFilter{f: f}
	if len(f.Rules) > 0 {
		c.rules = map[int32]bool{}
		for i, r := range rules {
			if slices.Contains(f.Rules, r.ID) {
				c.rules[int32(i)] = true
			}
		}
		c.noRule = slices.Contains(f.Rules, "")
	}
	for _, v := range f.Verdicts {
		c.verdicts[v] = true
	}
	if !f.Since.IsZero() {
		c.since = f.Since.UnixNano()
	}
	if !f.Until.IsZero() {
		c.until = f.Until.UnixNano()
	}
	return c
}

// Keeps reports whether the filter keeps r.
func (c *FlowFilter) Keeps(r *classifier.FlowRecord) bool {
	if len(c.f.Verdicts) > 0 && (int(r.Verdict) >= len(c.verdicts) || !c.verdicts[r.Verdict]) {
		return false
	}
	if len(c.f.Ports) > 0 && !slices.Contains(c.f.Ports, r.ServerPort) {
		return false
	}
	if c.rules != nil && !(c.rules[r.Rule] || r.Rule < 0 && c.noRule) {
		return false
	}
	if c.since != 0 && r.Last < c.since || c.until != 0 && r.First > c.until {
		return false
	}
	if len(c.f.Hosts) > 0 {
		client, server := netip.AddrFrom16(r.Client).Unmap(), netip.AddrFrom16(r.Server).Unmap()
		for _, p := range c.f.Hosts {
			if p.Contains(client) || p.Contains(server) {
				return true
			}
		}
		return false
	}
	return true
}
