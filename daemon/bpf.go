package daemon

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/policy"
)

// inferredFilter is the capture filter without a site config: the
// inventory is learned from the traffic, so every TCP and UDP flow may
// matter, and the ICMP errors that decide blocked flows. IPv6 is admitted
// whole: libpcap's "tcp" and "udp" read only the fixed header's next
// header, so they miss a segment behind a hop-by-hop, routing, fragment or
// destination-options header, which tpwatch decodes; "ip6" is also the
// shorter program (25 instructions against 42 for "icmp6"). And the
// tunnels tpwatch follows (GRE, IP in IP, MPLS, ...: their packets are
// neither TCP nor UDP on the outside).
const inferredFilter = "tcp or udp or icmp or ip6 or " + capture.TunnelFilter

// icmpErrors matches ICMP destination unreachable (type 3) and ICMPv6
// destination unreachable (type 1): the answers that make a flow
// blocked/icmp_unreachable.
const icmpErrors = "icmp[0] == 3 or icmp6[0] == 1"

// ipv6Extensions matches IPv6 packets whose first header after the fixed
// one is an extension header (hop-by-hop 0, routing 43, fragment 44,
// authentication 51, destination options 60): the port and protocol
// primitives of libpcap do not look behind them, so such packets are
// admitted whole rather than lost.
const ipv6Extensions = "ip6[6] == 0 or ip6[6] == 43 or ip6[6] == 44 or ip6[6] == 51 or ip6[6] == 60"

// maxFilterRange is the widest port range of a rule that goes into a
// filter that names the inventory's hosts. Wider ranges (the RPC dynamic
// range 49152-65535, DCOM 1024-65535) would let nearly all traffic
// through; flows on them are still seen when one end is in the inventory,
// which the host part of the filter admits.
const maxFilterRange = 16

// maxFilterHosts is the most host and network terms a filter names.
// libpcap's optimiser is super-linear in them: on the reference machine
// (docs/performance.md), with the expression written three times over for
// VLAN tags, 16 terms compile in 55 ms, 32 in 120 ms, 64 in 350 ms, 100 in
// 1 s, 300 in 17 s and 2,000 not in 17 minutes, and past about 150 the
// program no longer fits the kernel's 4,096 instructions. Past this bound
// the filter selects by port instead (see BPFFilter), which compiles in
// 20 ms whatever the inventory.
const maxFilterHosts = 32

// BPFFilter returns the libpcap filter that admits every packet tpwatch
// can learn something from under policy p, so the kernel drops the rest
// before it is copied. Without a site config, it is all TCP, UDP, ICMP
// and IPv6 (the inventory is learned from the traffic). With one, a flow
// matters only when its server is in the inventory and its port is a
// rule's, or when both ends are in the inventory (no_rule), and the
// filter is the first of these that names at most maxFilterHosts hosts
// and networks (the inventory's addresses are first merged into the
// fewest prefixes that cover exactly the same addresses):
//
//  1. the inventory's hosts, whatever the port; the narrow server ports
//     of the rules (for hosts missing from the inventory);
//  2. the product hosts (those whose every flow concerns Threat
//     Prevention: Enterprise Manager, Threat Manager, consoles), whatever
//     the port; every server port of the rules, the wide ranges too. The
//     hosts of the other roles, agents above all, are told apart in user
//     space: a flow on a rule's port between two hosts neither of which
//     is in the inventory is ignored there;
//  3. all TCP and UDP.
//
// Every form also admits ICMP errors, IPv6 packets with extension headers
// and every tunnel tpwatch decapsulates (capture.TunnelFilter): a
// tunnel's outer headers name the switch and the sensor, the flows inside
// are chosen after decoding, so a sensor fed by ERSPAN or VXLAN should
// have the interface to itself. Ports are merged into portranges to keep
// the expression, and the program libpcap compiles from it, short.
func BPFFilter(p *policy.Policy) string {
	if p == nil || p.Inferred() {
		return inferredFilter
	}
	c := p.Config()
	var all, product []netip.Prefix
	for role, prefixes := range c.Roles {
		all = append(all, prefixes...)
		if p.ProductHost(policy.RoleSet(0).With(role)) {
			product = append(product, prefixes...)
		}
	}
	var parts []string
	widest := maxFilterRange
	if hosts := coverExactly(all); len(hosts) <= maxFilterHosts {
		parts = append(parts, hostsExpr(hosts))
	} else if hosts := coverExactly(product); len(hosts) <= maxFilterHosts {
		parts = append(parts, hostsExpr(hosts))
		widest = 1 << 16
	} else {
		return "tcp or udp or " + icmpErrors + " or " + ipv6Extensions + " or " + capture.TunnelFilter
	}
	var tcpPorts, udpPorts []policy.PortRange
	for _, r := range p.Rules() {
		for _, pr := range r.Ports {
			if int(pr.High)-int(pr.Low) >= widest {
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
	parts = append(parts, icmpErrors, ipv6Extensions, capture.TunnelFilter)
	// pcap-filter gives "and" and "or" the same precedence, so every part
	// that is not a single primitive is parenthesised.
	return strings.Join(slices.DeleteFunc(parts, func(s string) bool { return s == "" }), " or ")
}

// hostsExpr writes "(host A or net B/24)", or "" for no prefix.
func hostsExpr(prefixes []netip.Prefix) string {
	if len(prefixes) == 0 {
		return ""
	}
	terms := make([]string, len(prefixes))
	for i, p := range prefixes {
		if p.IsSingleIP() {
			terms[i] = "host " + p.Addr().String()
		} else {
			terms[i] = "net " + p.String()
		}
	}
	return "(" + strings.Join(terms, " or ") + ")"
}

// coverExactly returns the fewest prefixes that hold exactly the addresses
// of the given ones, sorted: duplicates and prefixes inside others go, and
// two halves of one prefix become that prefix (10.0.0.0/25 and
// 10.0.0.128/25 are 10.0.0.0/24), as often as they can. A site that lists
// its agents one by one from a few subnets gets a short filter; one whose
// agents are scattered keeps them all, and BPFFilter then selects by port.
func coverExactly(prefixes []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(prefixes))
	for _, p := range prefixes {
		out = append(out, p.Masked())
	}
	for {
		slices.SortFunc(out, func(a, b netip.Prefix) int {
			if c := a.Addr().Compare(b.Addr()); c != 0 {
				return c
			}
			return a.Bits() - b.Bits()
		})
		// In that order a prefix that holds others comes just before them.
		kept := out[:0]
		for _, p := range out {
			if n := len(kept); n > 0 && kept[n-1].Bits() <= p.Bits() && kept[n-1].Contains(p.Addr()) {
				continue
			}
			kept = append(kept, p)
		}
		out = kept
		merged := false
		joined := out[:0]
		for i := 0; i < len(out); i++ {
			if i+1 < len(out) {
				if parent, ok := halves(out[i], out[i+1]); ok {
					joined = append(joined, parent)
					merged = true
					i++
					continue
				}
			}
			joined = append(joined, out[i])
		}
		out = joined
		if !merged {
			return out
		}
	}
}

// halves reports whether a and b (a first) are the two halves of one
// prefix, and returns it.
func halves(a, b netip.Prefix) (netip.Prefix, bool) {
	if a.Bits() != b.Bits() || a.Bits() == 0 || a.Addr().Is4() != b.Addr().Is4() {
		return netip.Prefix{}, false
	}
	parent := netip.PrefixFrom(a.Addr(), a.Bits()-1).Masked()
	if parent.Addr() != a.Addr() || !parent.Contains(b.Addr()) {
		return netip.Prefix{}, false
	}
	return parent, true
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
