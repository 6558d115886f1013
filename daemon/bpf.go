package daemon

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/tpwatch/tpwatch/policy"
)

// inferredFilter is the capture filter without a site config: the
// inventory is learned from the traffic, so every TCP and UDP flow may
// matter, and the ICMP errors that decide blocked flows.
const inferredFilter = "tcp or udp or icmp or icmp6"

// icmpErrors matches ICMP destination unreachable (type 3) and ICMPv6
// destination unreachable (type 1): the answers that make a flow
// blocked/icmp_unreachable.
const icmpErrors = "icmp[0] == 3 or icmp6[0] == 1"

// maxFilterRange is the widest port range of a rule that goes into the
// filter. Wider ranges (the RPC dynamic range 49152-65535, DCOM 1024-65535)
// would let nearly all traffic through; flows on them are still seen when
// one end is in the inventory, which the host part of the filter admits.
const maxFilterRange = 16

// BPFFilter returns the libpcap filter that admits every packet tpwatch
// can learn something from under policy p, so the kernel drops the rest
// before it is copied: with a site config, the traffic of the inventory's
// hosts, the documented server ports (for hosts missing from the
// inventory) and ICMP errors; with an inferred inventory, all TCP, UDP and
// ICMP. Ports are merged into portranges to keep the expression, and the
// BPF program libpcap compiles from it, short.
func BPFFilter(p *policy.Policy) string {
	if p == nil || p.Inferred() {
		return inferredFilter
	}
	var parts []string
	if hosts := hostsExpr(p.InventoryConfig()); hosts != "" {
		parts = append(parts, "("+hosts+")")
	}
	var tcpPorts, udpPorts []policy.PortRange
	for _, r := range p.Rules() {
		for _, pr := range r.Ports {
			if int(pr.High)-int(pr.Low) >= maxFilterRange {
				continue
			}
			if r.Transport == policy.TCP {
				tcpPorts = append(tcpPorts, pr)
			} else {
				udpPorts = append(udpPorts, pr)
			}
		}
	}
	if e := portsExpr("tcp", tcpPorts); e != "" {
		parts = append(parts, e)
	}
	if e := portsExpr("udp", udpPorts); e != "" {
		parts = append(parts, e)
	}
	parts = append(parts, icmpErrors)
	// pcap-filter gives "and" and "or" the same precedence, so every part
	// that is not a single primitive is parenthesised.
	return strings.Join(parts, " or ")
}

// hostsExpr lists the inventory's prefixes once each: "host A or net B/24".
func hostsExpr(c *policy.Config) string {
	var all []netip.Prefix
	for _, prefixes := range c.Roles {
		all = append(all, prefixes...)
	}
	slices.SortFunc(all, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	all = slices.Compact(all)
	terms := make([]string, 0, len(all))
	for _, p := range all {
		p = p.Masked()
		if p.IsSingleIP() {
			terms = append(terms, "host "+p.Addr().String())
		} else {
			terms = append(terms, "net "+p.String())
		}
	}
	return strings.Join(terms, " or ")
}

// portsExpr writes "(tcp and (port 88 or portrange 3740-3741))" for the
// union of the ranges, or "" when there are none.
func portsExpr(proto string, ranges []policy.PortRange) string {
	merged := mergeRanges(ranges)
	if len(merged) == 0 {
		return ""
	}
	terms := make([]string, len(merged))
	for i, r := range merged {
		if r.Low == r.High {
			terms[i] = "port " + strconv.Itoa(int(r.Low))
		} else {
			terms[i] = "portrange " + strconv.Itoa(int(r.Low)) + "-" + strconv.Itoa(int(r.High))
		}
	}
	return "(" + proto + " and (" + strings.Join(terms, " or ") + "))"
}

// mergeRanges returns the union of ranges as sorted, disjoint ranges, with
// adjacent ranges (3740 and 3741) joined.
func mergeRanges(ranges []policy.PortRange) []policy.PortRange {
	sorted := slices.Clone(ranges)
	slices.SortFunc(sorted, func(a, b policy.PortRange) int { return int(a.Low) - int(b.Low) })
	var out []policy.PortRange
	for _, r := range sorted {
		if n := len(out); n > 0 && int(r.Low) <= int(out[n-1].High)+1 {
			out[n-1].High = max(out[n-1].High, r.High)
			continue
		}
		out = append(out, r)
	}
	return out
}
