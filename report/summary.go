package report

import (
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/policy"
)

// maxGroups bounds the memory of the table report: a port scan makes one
// group per port, and past this the rest are counted in one "other" line.
const maxGroups = 10000

// Summary aggregates flows for the table report. It keeps per-rule counts
// and groups of blocked and unexpected flows (same verdict, reason, rule,
// hosts and server port), never one entry per flow.
type Summary struct {
	rules    []policy.Rule
	perRule  []ruleCounts // by rule index; the last entry collects flows without a rule
	groups   map[groupKey]*group
	overflow uint64 // blocked/unexpected flows past maxGroups
	verdicts [6]uint64
	first    int64
	last     int64
	evicted  uint64
}

type ruleCounts struct {
	allowed, blocked, unexpected, pending uint64
	lastWorking                           int64
}

// groupKey groups problem flows the way an administrator fixes them: one
// server port of one host failing in one way, whichever clients tried.
type groupKey struct {
	verdict            classifier.Verdict
	reason             classifier.Reason
	rule               int32
	transport          policy.Transport
	server             [16]byte
	port               uint16
	icmp               bool
	icmpType, icmpCode uint8
}

// maxClientsListed bounds the distinct clients remembered per group.
const maxClientsListed = 100

type group struct {
	count       uint64
	serverRoles policy.RoleSet
	connState   classifier.ConnState
	history     string
	clients     []client // distinct, in order of appearance, at most maxClientsListed
	moreClients bool
}

type client struct {
	addr  [16]byte
	roles policy.RoleSet
}

// NewSummary aggregates flows classified against rules.
func NewSummary(rules []policy.Rule) *Summary {
	return &Summary{rules: rules, perRule: make([]ruleCounts, len(rules)+1), groups: make(map[groupKey]*group)}
}

// Decided implements classifier.Sink; the summary counts final verdicts.
func (s *Summary) Decided(*classifier.FlowRecord) {}

// Final implements classifier.Sink.
func (s *Summary) Final(r *classifier.FlowRecord) {
	if int(r.Verdict) < len(s.verdicts) {
		s.verdicts[r.Verdict]++
	}
	if r.Evicted {
		s.evicted++
	}
	if s.first == 0 || r.First < s.first {
		s.first = r.First
	}
	s.last = max(s.last, r.Last)
	if r.Verdict == classifier.Ignored {
		return
	}
	rc := &s.perRule[len(s.rules)]
	if r.Rule >= 0 && int(r.Rule) < len(s.rules) {
		rc = &s.perRule[r.Rule]
	}
	switch r.Verdict {
	case classifier.Allowed:
		rc.allowed++
		rc.lastWorking = max(rc.lastWorking, r.Last)
		return
	case classifier.Pending:
		rc.pending++
		return
	case classifier.Blocked:
		rc.blocked++
	case classifier.Unexpected:
		rc.unexpected++
	}
	k := groupKey{verdict: r.Verdict, reason: r.Reason, rule: r.Rule, transport: r.Transport,
		server: r.Server, port: r.ServerPort,
		icmp: r.ICMP, icmpType: r.ICMPType, icmpCode: r.ICMPCode}
	g := s.groups[k]
	if g == nil {
		if len(s.groups) >= maxGroups {
			s.overflow++
			return
		}
		g = &group{serverRoles: r.ServerRoles, connState: r.ConnState, history: r.HistoryString()}
		s.groups[k] = g
	}
	g.count++
	g.addClient(r.Client, r.ClientRoles)
}

func (g *group) addClient(a [16]byte, roles policy.RoleSet) {
	for _, c := range g.clients {
		if c.addr == a {
			return
		}
	}
	if len(g.clients) == maxClientsListed {
		g.moreClients = true
		return
	}
	g.clients = append(g.clients, client{a, roles})
}

// clientsText names up to three clients and counts the rest.
func (g *group) clientsText() string {
	var b strings.Builder
	for i, c := range g.clients {
		if i == 3 {
			more := fmt.Sprintf("%d", len(g.clients)-3)
			if g.moreClients {
				more += "+"
			}
			fmt.Fprintf(&b, " and %s more", more)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(hostWithRoles(c.addr, c.roles))
	}
	return b.String()
}

// Problems is the number of blocked and unexpected flows.
func (s *Summary) Problems() uint64 {
	return s.verdicts[classifier.Blocked] + s.verdicts[classifier.Unexpected]
}

// Header describes the input, for the first lines of the report.
type Header struct {
	Files     []string
	Packets   uint64
	Inventory string // where the roles came from, one line
}

// maxLines bounds each list of the table report; --format json has all.
const maxLines = 40

// WriteTable writes the report a person reads.
func (s *Summary) WriteTable(w io.Writer, h Header) error {
	ew := &errWriter{w: w}
	when := ""
	if s.first != 0 {
		when = fmt.Sprintf(" from %s to %s (%s)", time.Unix(0, s.first).UTC().Format(time.RFC3339),
			time.Unix(0, s.last).UTC().Format(time.RFC3339), time.Duration(s.last-s.first).Round(time.Millisecond))
	}
	fmt.Fprintf(ew, "tpwatch replay of %s: %s%s, %s\n",
		strings.Join(h.Files, ", "), plural(h.Packets, "packet"), when, plural(s.total(), "flow"))
	if h.Inventory != "" {
		fmt.Fprintf(ew, "Inventory: %s\n", h.Inventory)
	}
	fmt.Fprintf(ew, "Verdicts: %d allowed, %d blocked, %d unexpected, %d pending, %d ignored\n\n",
		s.verdicts[classifier.Allowed], s.verdicts[classifier.Blocked], s.verdicts[classifier.Unexpected],
		s.verdicts[classifier.Pending], s.verdicts[classifier.Ignored])

	s.writeRules(ew)
	s.writeGroups(ew, classifier.Blocked, "BLOCKED: required by the matrix, but the network did not let them through")
	s.writeGroups(ew, classifier.Unexpected, "UNEXPECTED: Threat Prevention hosts talking where no enabled rule allows it")
	if s.overflow > 0 {
		fmt.Fprintf(ew, "(%d more blocked or unexpected flows to other servers and ports were counted but not listed; use --format json)\n", s.overflow)
	}
	if s.evicted > 0 {
		fmt.Fprintf(ew, "Note: the flow table was full and dropped %d flows early (raise --max-flows).\n", s.evicted)
	}
	return ew.err
}

func (s *Summary) total() uint64 {
	var n uint64
	for _, v := range s.verdicts {
		n += v
	}
	return n
}

func (s *Summary) writeRules(w io.Writer) {
	idx := make([]int, 0, len(s.perRule))
	for i, rc := range s.perRule {
		if rc.allowed+rc.blocked+rc.unexpected+rc.pending > 0 {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		fmt.Fprintln(w, "No flow concerned Threat Prevention.")
		fmt.Fprintln(w)
		return
	}
	// Worst first: rules with blocked flows, then unexpected ones, then the
	// rest; the matrix order within each.
	slices.SortStableFunc(idx, func(a, b int) int {
		ra, rb := s.perRule[a], s.perRule[b]
		return cmp.Or(cmp.Compare(severity(rb), severity(ra)), cmp.Compare(a, b))
	})
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tRULE\tCLIENT → SERVER\tPORTS\tWORKING\tBLOCKED\tUNEXPECTED\tPENDING\tLAST WORKING")
	for _, i := range idx {
		rc := s.perRule[i]
		id, roles, ports := "(no rule)", "known roles, undocumented port", "-"
		if i < len(s.rules) {
			r := &s.rules[i]
			id = r.ID
			client := "any"
			if !r.AnyClient {
				client = r.Client.String()
			}
			roles = client + " → " + r.Server.String()
			ports = r.Transport.String() + "/" + r.PortsString()
		}
		last := "-"
		if rc.lastWorking != 0 {
			last = time.Unix(0, rc.lastWorking).UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", status(rc), id, roles, ports,
			rc.allowed, rc.blocked, rc.unexpected, rc.pending, last)
	}
	tw.Flush()
	listed := len(idx)
	if s.perRule[len(s.rules)] != (ruleCounts{}) {
		listed-- // the "(no rule)" row is no rule of the matrix
	}
	fmt.Fprintf(w, "(%d rules with no flow in this capture are not listed; `tpwatch policy` shows them all)\n\n", len(s.rules)-listed)
}

func severity(rc ruleCounts) int {
	switch {
	case rc.blocked > 0:
		return 3
	case rc.unexpected > 0:
		return 2
	case rc.pending > 0 && rc.allowed == 0:
		// Attempts cut off by the end of the capture say nothing bad
		// about a rule already seen working.
		return 1
	}
	return 0
}

func status(rc ruleCounts) string {
	switch severity(rc) {
	case 3:
		return "BLOCKED"
	case 2:
		return "UNEXPECTED"
	case 1:
		return "PENDING"
	}
	return "ok"
}

func (s *Summary) writeGroups(w io.Writer, v classifier.Verdict, title string) {
	type row struct {
		k groupKey
		g *group
	}
	var rows []row
	var flows uint64
	for k, g := range s.groups {
		if k.verdict == v {
			rows = append(rows, row{k, g})
			flows += g.count
		}
	}
	if len(rows) == 0 {
		return
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(b.g.count, a.g.count), cmp.Compare(a.k.rule, b.k.rule),
			cmp.Compare(a.k.reason, b.k.reason), cmp.Compare(a.k.port, b.k.port),
			netip.AddrFrom16(a.k.server).Compare(netip.AddrFrom16(b.k.server)))
	})
	fmt.Fprintf(w, "%s (%s)\n", title, plural(flows, "flow"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  REASON\tRULE\tPORT\tSERVER\tFLOWS\tSTATE\tDETAIL\tCLIENTS")
	for i, r := range rows {
		if i == maxLines {
			fmt.Fprintf(tw, "  ... %d more lines (use --format json for every flow)\n", len(rows)-maxLines)
			break
		}
		rule := "-"
		if r.k.rule >= 0 && int(r.k.rule) < len(s.rules) {
			rule = s.rules[r.k.rule].ID
		}
		detail := fmt.Sprintf("history %s", r.g.history)
		if r.k.icmp {
			detail = fmt.Sprintf("ICMP type %d code %d (%s)", r.k.icmpType, r.k.icmpCode, icmpMeaning(r.k.icmpType, r.k.icmpCode))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s/%d\t%s\t%d\t%s\t%s\t%s\n", r.k.reason, rule, r.k.transport, r.k.port,
			hostWithRoles(r.k.server, r.g.serverRoles), r.g.count, r.g.connState, detail, r.g.clientsText())
	}
	tw.Flush()
	fmt.Fprintln(w)
}

func hostWithRoles(a [16]byte, roles policy.RoleSet) string {
	ip := netip.AddrFrom16(a).Unmap().String()
	if roles == 0 {
		return ip + " (no role)"
	}
	return ip + " (" + roles.String() + ")"
}

// icmpMeaning names the common destination-unreachable codes (ICMPv4 type
// 3, ICMPv6 type 1), which is what an administrator needs to know to find
// the device that refused.
func icmpMeaning(typ, code uint8) string {
	if typ == 3 {
		switch code {
		case 0:
			return "net unreachable"
		case 1:
			return "host unreachable"
		case 2:
			return "protocol unreachable"
		case 3:
			return "port unreachable"
		case 9:
			return "network administratively prohibited"
		case 10:
			return "host administratively prohibited"
		case 13:
			return "communication administratively prohibited"
		}
		return "destination unreachable"
	}
	switch code {
	case 0:
		return "no route to destination"
	case 1:
		return "administratively prohibited"
	case 3:
		return "address unreachable"
	case 4:
		return "port unreachable"
	case 5:
		return "source address failed ingress/egress policy"
	case 6:
		return "reject route to destination"
	}
	return "destination unreachable"
}

// errWriter keeps the first write error so the report code can stay linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// plural writes a count and a noun, with an s when the count is not one.
func plural(n uint64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
