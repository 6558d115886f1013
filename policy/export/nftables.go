package export

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/tpwatch/tpwatch/policy"
)

// Table is the nftables table the export owns and replaces, and nothing
// else: family inet, so one set of chains filters IPv4 and IPv6.
const Table = "tpwatch"

// nftComment is the most nftables keeps of a rule comment.
const nftComment = 128

// writeNFTables writes an nftables ruleset for `nft -f`.
func writeNFTables(w io.Writer, pl *plan, o Options) error {
	b := bufio.NewWriter(w)
	in, out := "drop", "accept"
	if o.InboundAccept {
		in = "accept"
	}
	if o.OutboundDrop {
		out = "drop"
	}
	fmt.Fprintln(b, "#!/usr/sbin/nft -f")
	for _, l := range header(pl, o, "nftables rules") {
		fmt.Fprintln(b, "# "+l)
	}
	fmt.Fprintf(b, `# Apply with nft -f FILE. Applying it again replaces the table inet %[1]s and
# nothing else; nft delete table inet %[1]s removes it.
# Inbound (policy %[2]s): the flows below, replies, loopback and ICMP are
# accepted; outbound (policy %[3]s): the flows below are counted.
# nftables passes a packet only when every table's chain on its hook accepts
# it: if another table of this host drops traffic, allow these flows there.
table inet %[1]s
delete table inet %[1]s
table inet %[1]s {
`, Table, in, out)

	// The sets of addresses, one per role and family, in the order the
	// rules first use them.
	var sets []string
	setElems := map[string][]netip.Prefix{}
	for i := range pl.entries {
		e := &pl.entries[i]
		if e.skip != "" || e.peers == nil {
			continue
		}
		for _, fam := range []string{"v4", "v6"} {
			ps := family(e.peers, fam)
			name := setName(e.peerRole, fam)
			if len(ps) == 0 {
				continue
			}
			if _, ok := setElems[name]; !ok {
				sets = append(sets, name)
			}
			setElems[name] = ps
		}
	}
	for _, name := range sets {
		typ := "ipv4_addr"
		if strings.HasSuffix(name, "_v6") {
			typ = "ipv6_addr"
		}
		elems := make([]string, len(setElems[name]))
		for i, p := range setElems[name] {
			elems[i] = addrString(p)
		}
		// interval and auto-merge take networks, and hosts inside them,
		// in one set.
		fmt.Fprintf(b, "\tset %s {\n\t\ttype %s\n\t\tflags interval\n\t\tauto-merge\n\t\telements = { %s }\n\t}\n",
			name, typ, strings.Join(elems, ", "))
	}

	for _, dir := range []direction{inbound, outbound} {
		if dir == inbound {
			fmt.Fprintf(b, "\tchain input {\n\t\ttype filter hook input priority filter; policy %s;\n", in)
			fmt.Fprintf(b, "\t\tct state established,related accept\n\t\tiif \"lo\" accept\n")
			// ICMP carries the errors of the flows (unreachable, packet too
			// big) and IPv6's neighbour discovery.
			fmt.Fprintf(b, "\t\tmeta l4proto { icmp, ipv6-icmp } accept\n")
		} else {
			fmt.Fprintf(b, "\tchain output {\n\t\ttype filter hook output priority filter; policy %s;\n", out)
			fmt.Fprintf(b, "\t\tct state established,related accept\n\t\toif \"lo\" accept\n\t\tmeta l4proto { icmp, ipv6-icmp } accept\n")
		}
		for i := range pl.entries {
			if e := &pl.entries[i]; e.dir == dir {
				writeNFTEntry(b, e)
			}
		}
		fmt.Fprintln(b, "\t}")
	}
	fmt.Fprintln(b, "}")
	return b.Flush()
}

func writeNFTEntry(b *bufio.Writer, e *entry) {
	r := e.rule
	if !writeEntryComments(b, "\t\t# ", e) {
		return
	}
	match := fmt.Sprintf("%s dport %s", r.Transport, nftPorts(r.Ports))
	tail := fmt.Sprintf("counter accept comment %q", nftCommentText(r.ID))
	if e.peers == nil {
		fmt.Fprintln(b, "\t\t# any remote address: "+oneLine(e.anyWhy))
		fmt.Fprintf(b, "\t\t%s %s\n", match, tail)
		return
	}
	addr := "saddr"
	if e.dir == outbound {
		addr = "daddr"
	}
	for _, fam := range []string{"v4", "v6"} {
		if len(family(e.peers, fam)) == 0 {
			continue
		}
		proto := "ip"
		if fam == "v6" {
			proto = "ip6"
		}
		fmt.Fprintf(b, "\t\t%s %s @%s %s %s\n", proto, addr, setName(e.peerRole, fam), match, tail)
	}
}

// family returns the prefixes of one address family.
func family(ps []netip.Prefix, fam string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.Addr().Is4() == (fam == "v4") {
			out = append(out, p)
		}
	}
	return out
}

// setName is the set of a role's addresses of one family: agent_v4.
func setName(role, fam string) string {
	return strings.ReplaceAll(role, "-", "_") + "_" + fam
}

// nftPorts writes ports as nftables takes them: 3741, 1024-65535, or an
// anonymous set { 10000, 10001 }.
func nftPorts(ports []policy.PortRange) string {
	if len(ports) == 1 {
		return ports[0].String()
	}
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = p.String()
	}
	return "{ " + strings.Join(s, ", ") + " }"
}

// nftCommentText is the rule id as a comment: ids are letters, digits and
// -_. (policy checks), so only the length needs care.
func nftCommentText(id string) string {
	s := "tpwatch:" + id
	if len(s) > nftComment {
		s = s[:nftComment]
	}
	return s
}
