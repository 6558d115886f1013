package report

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/tpwatch/tpwatch/internal/htmlcheck"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/policy"
)

func checkHTML(t *testing.T, page []byte) {
	t.Helper()
	if err := htmlcheck.Check(page); err != nil {
		t.Error(err)
	}
}

func writeHTML(t *testing.T, v *View, o HTMLOptions) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := v.WriteHTML(&b, o); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// parse parses a page into a tree, to read it as a browser would.
func parse(t *testing.T, page []byte) *html.Node {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// find returns the elements of n that pred selects, in document order.
func find(n *html.Node, pred func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for c := range n.Descendants() {
		if c.Type == html.ElementNode && pred(c) {
			out = append(out, c)
		}
	}
	return out
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func byID(doc *html.Node, id string) *html.Node {
	if list := find(doc, func(n *html.Node) bool { return attr(n, "id") == id }); len(list) > 0 {
		return list[0]
	}
	return nil
}

// textOf is the text of n, a space between elements.
func textOf(n *html.Node) string {
	var b strings.Builder
	for c := range n.Descendants() {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
			b.WriteByte(' ')
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func hasClass(n *html.Node, class string) bool {
	return slices.Contains(strings.Fields(attr(n, "class")), class)
}

func TestHTMLReport(t *testing.T) {
	s := exampleSummary()
	h := Header{Files: []string{"x.pcap"}, Packets: 42, Inventory: "from site.yaml", Version: "1.2.3",
		Hosts:          []InventoryHost{{Prefix: netip.MustParsePrefix("2001:db8::10/128"), Roles: policy.RoleSet(0).With(policy.EnterpriseManager)}},
		InventoryRoles: policy.RoleSet(0).With(policy.EnterpriseManager).With(policy.Agent).With(policy.SQLServer),
		Captures:       []CaptureHealth{{Name: "x.pcap", Packets: 42, Truncated: 1}}}
	page := writeHTML(t, s.ViewLimits(h, HTMLLimits), HTMLOptions{})
	checkHTML(t, page)
	if !bytes.Equal(page, writeHTML(t, s.ViewLimits(h, HTMLLimits), HTMLOptions{})) {
		t.Error("the same view gave two different pages")
	}
	doc := parse(t, page)

	// The verdict bar says the numbers, as the text report does.
	bars := find(doc, func(n *html.Node) bool { return n.Data == "svg" && hasClass(n, "bar") })
	if len(bars) != 1 || attr(bars[0], "aria-label") != "1 allowed, 3 blocked, 2 unexpected, 0 pending, 1 ignored" {
		t.Errorf("verdict bar: %v", bars)
	}
	for _, class := range []string{"ok", "blocked", "unexpected"} {
		if len(find(bars[0], func(n *html.Node) bool { return n.Data == "rect" && hasClass(n, class) })) != 1 {
			t.Errorf("the verdict bar has no %s segment", class)
		}
	}
	// The exit status in words.
	if got := textOf(find(doc, func(n *html.Node) bool { return hasClass(n, "exit") })[0]); got != "exit status 1 3 required flows blocked and 2 unexpected flows." {
		t.Errorf("exit line %q", got)
	}

	// One row per rule seen, the worst first, with its counts and section.
	rows := find(byID(doc, "rules"), func(n *html.Node) bool { return n.Data == "tr" && n.Parent.Data == "tbody" && !hasClass(n, "notseen") })
	var got []string
	for _, r := range rows {
		got = append(got, textOf(r))
	}
	want := []string{
		"BLOCKED agent-em-grpc agent → enterprise-manager tcp/3741 1 1 0 09:00:30 Agent Firewall Rules",
		"BLOCKED em-sql-tds enterprise-manager → sql-server tcp/1433 0 2 0 -",
		"UNEXPECTED (no rule) a port no rule names, between hosts of the inventory hosts of the inventory - 0 0 2 -",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rule rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !hasClass(rows[0], "blocked") {
		t.Errorf("the first rule row is not coloured blocked: %q", attr(rows[0], "class"))
	}

	// What to open: the server, the port, the client, who rejected it.
	toOpen := textOf(byID(doc, "to-open"))
	for _, want := range []string{"2001:db8::10", "tcp/1433", "198.51.100.7", "rejected by 2001:db8::fe", "ICMP 1/1 administratively prohibited", "em-sql-tds"} {
		if !strings.Contains(toOpen, want) {
			t.Errorf("to open lacks %q: %s", want, toOpen)
		}
	}
	if refused := textOf(byID(doc, "refused")); !strings.Contains(refused, "reset (RST)") || !strings.Contains(refused, "tcp/3741") {
		t.Errorf("refused: %s", refused)
	}
	// Unexpected flows with their outcome, those that got in first.
	unexpected := find(byID(doc, "unexpected"), func(n *html.Node) bool { return n.Data == "tr" && n.Parent.Data == "tbody" })
	if len(unexpected) != 2 || !strings.Contains(textOf(unexpected[0]), "GOT IN") || !strings.Contains(textOf(unexpected[1]), "turned away (reset)") {
		t.Errorf("unexpected rows: %v", unexpected)
	}
	// The per-host view and the inventory, the capture's health.
	if hosts := textOf(byID(doc, "hosts")); !strings.Contains(hosts, "198.51.100.7 agent") || !strings.Contains(hosts, "could not reach tcp/1433 on 2001:db8::10") {
		t.Errorf("hosts: %s", hosts)
	}
	if inv := textOf(byID(doc, "inventory")); !strings.Contains(inv, "2001:db8::10 enterprise-manager configured named in the config") {
		t.Errorf("inventory: %s", inv)
	}
	if capture := textOf(byID(doc, "capture")); !strings.Contains(capture, "1 truncated") {
		t.Errorf("capture: %s", capture)
	}
	// The grid: agent → enterprise-manager blocked (its rule's flows, and
	// the unexpected ones with no rule, counted between the hosts' first
	// roles), enterprise-manager → sql-server blocked.
	grid := byID(doc, "grid")
	var titles []string
	for _, c := range find(grid, func(n *html.Node) bool { return n.Data == "td" && hasClass(n, "blocked") }) {
		titles = append(titles, attr(c, "title")+" = "+textOf(c))
	}
	want = []string{
		"enterprise-manager → sql-server: 1 rules (em-sql-tds); 0 working, 2 blocked, 0 unexpected, 0 pending = 2/2",
		"agent → enterprise-manager: 1 rules (agent-em-grpc); 1 working, 1 blocked, 2 unexpected, 0 pending = 1/4",
	}
	if strings.Join(titles, "\n") != strings.Join(want, "\n") {
		t.Errorf("grid's blocked cells:\n%s\nwant:\n%s", strings.Join(titles, "\n"), strings.Join(want, "\n"))
	}
	// The timeline is drawn.
	// The timeline is drawn: all flows, then the problems.
	if tl := find(doc, func(n *html.Node) bool { return n.Data == "svg" && hasClass(n, "timeline") }); len(tl) != 2 {
		t.Errorf("%d timeline bands, want 2", len(tl))
	}
}

// Markup in every string that reaches the page, from a matrix, a config
// and a file name, comes out as text: no element, no attribute of its own.
func TestHTMLEscapesEverything(t *testing.T) {
	const evil = `"><script>alert(1)</script><img src=x onerror=alert(2)>&amp;`
	rules := twoRules()
	for i := range rules {
		rules[i].Description, rules[i].Section = "d"+evil, "s"+evil
	}
	rules[1].Feature = "f" + evil
	s := NewSummary(rules)
	for _, v := range []classifier.Verdict{classifier.Allowed, classifier.Blocked, classifier.Unexpected} {
		r := testRecord()
		r.Verdict = v
		if v == classifier.Unexpected {
			r.Reason, r.Outcome, r.Rule = classifier.UnauthorizedClient, classifier.OutcomeWorked, 1
		}
		s.Final(&r)
	}
	h := Header{Files: []string{"f" + evil + ".pcap"}, Inventory: "i" + evil, Version: "v" + evil, Matrix: "m" + evil,
		Problems: []string{"p" + evil}, Undecided: []string{"u" + evil},
		Hosts:    []InventoryHost{{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Roles: 1 << policy.Agent, Evidence: []string{"e" + evil}}},
		Captures: []CaptureHealth{{Name: "c" + evil, Live: true}}}
	live := &Live{Host: "h" + evil, Config: "c" + evil, MetricsPath: "/metrics", Refresh: 10,
		Recent: []Flow{{Interface: "i" + evil, Rule: "r" + evil, Verdict: classifier.Blocked}}}
	for _, o := range []HTMLOptions{{}, {Live: live}} {
		page := writeHTML(t, s.ViewLimits(h, HTMLLimits), o)
		checkHTML(t, page)
		doc := parse(t, page)
		if n := find(doc, func(n *html.Node) bool { return n.Data == "script" || n.Data == "img" }); len(n) > 0 {
			t.Errorf("live %v: markup from the input became elements: %v", o.Live != nil, n)
		}
		text := textOf(doc)
		for _, where := range []string{"d", "s", "f", "i", "m", "p", "u", "e"} {
			if !strings.Contains(text, where+`"><script>alert(1)</script>`) {
				t.Errorf("live %v: the %s string is not shown as text", o.Live != nil, where)
			}
		}
		if bytes.Contains(page, []byte("<script")) || bytes.Contains(page, []byte("<img")) {
			t.Errorf("live %v: raw markup in the page", o.Live != nil)
		}
	}
}

// A capture with a million distinct problem flows, every one its own
// server and port, gives a page of bounded size, fast.
func TestHTMLBoundedOnAMillionFlows(t *testing.T) {
	if testing.Short() {
		t.Skip("a million flows")
	}
	s := NewSummary(twoRules())
	r := testRecord()
	for i := range 1_000_000 {
		r.Server = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).As16()
		r.Client = netip.AddrFrom4([4]byte{172, 16 + byte(i>>16), byte(i >> 8), byte(i)}).As16()
		r.ServerPort = uint16(i)
		r.First += int64(time.Millisecond)
		r.Last = r.First
		r.Verdict, r.Reason, r.Outcome = classifier.Unexpected, classifier.NoRule, classifier.OutcomeWorked
		if i%2 == 0 {
			r.Verdict, r.Reason = classifier.Blocked, classifier.NoResponse
		}
		s.Final(&r)
	}
	start := time.Now()
	v := s.ViewLimits(Header{Files: []string{"flood.pcap"}}, HTMLLimits)
	page := writeHTML(t, v, HTMLOptions{})
	took := time.Since(start)
	checkHTML(t, page)
	t.Logf("a million distinct problem flows: page of %d bytes in %v (%d problems, %d hosts listed; %d more, %d not grouped)",
		len(page), took.Round(time.Millisecond), len(v.ToOpen)+len(v.Unexpected), len(v.Hosts), v.MoreToOpen+v.MoreUnexpected, v.Overflow)
	if len(page) > 3<<20 {
		t.Errorf("page of %d bytes: want it bounded under 3 MiB", len(page))
	}
	if len(v.ToOpen) > HTMLLimits.Problems || len(v.Hosts) > HTMLLimits.Hosts {
		t.Errorf("lists not bounded: %d to open, %d hosts", len(v.ToOpen), len(v.Hosts))
	}
	if !bytes.Contains(page, []byte("more blocked or unexpected flows to other servers and ports were counted but not grouped")) {
		t.Error("the page does not say flows were not grouped")
	}
}

func TestTimelineBuckets(t *testing.T) {
	var tl timeline
	base := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC).UnixNano()
	// Flows over an hour, some reported out of order (a flow ends, and is
	// counted, after later ones), and one before the first.
	var total uint64
	for i := range 3600 {
		tl.add(base+int64(i)*int64(time.Second), classifier.Allowed)
		total++
	}
	tl.add(base-int64(10*time.Minute), classifier.Blocked)
	tl.add(base+int64(30*time.Minute), classifier.Unexpected)
	v := tl.view()
	var sum [classifier.NumVerdicts]uint64
	for _, c := range v.Counts {
		for i, n := range c {
			sum[i] += n
		}
	}
	if sum[classifier.Allowed] != total || sum[classifier.Blocked] != 1 || sum[classifier.Unexpected] != 1 {
		t.Errorf("counts lost in rebucketing: %v", sum)
	}
	if len(v.Counts) > timelineBuckets || v.Width <= 0 {
		t.Fatalf("%d buckets of %v", len(v.Counts), v.Width)
	}
	// Each flow is in the bucket of its time.
	bucket := func(ns int64) int { return int(time.Unix(0, ns).Sub(v.Start) / v.Width) }
	if b := bucket(base - int64(10*time.Minute)); v.Counts[b][classifier.Blocked] != 1 {
		t.Errorf("the early blocked flow is not in bucket %d", b)
	}
	if b := bucket(base + int64(30*time.Minute)); v.Counts[b][classifier.Unexpected] != 1 {
		t.Errorf("the unexpected flow is not in bucket %d", b)
	}
	if v.Start.After(time.Unix(0, base-int64(10*time.Minute))) || v.End().Before(time.Unix(0, base+int64(3599*time.Second))) {
		t.Errorf("timeline %v to %v does not cover the flows", v.Start, v.End())
	}
	// Width: the narrowest power-of-two multiple of 1 ms that covers 70
	// minutes in 120 buckets (and aligned starts may need one more).
	if v.Width > 2*time.Duration(timelineBase)<<16 {
		t.Errorf("buckets of %v are too wide for 70 minutes", v.Width)
	}
	// Times centuries apart do not overflow.
	tl.add(1, classifier.Allowed)
	tl.add(1<<62, classifier.Allowed)
	tl.add(1<<63-1, classifier.Allowed)
	if v := tl.view(); len(v.Counts) == 0 || len(v.Counts) > timelineBuckets {
		t.Errorf("extreme times: %d buckets", len(v.Counts))
	}
}

func TestTimelineAddsNothingPerFlow(t *testing.T) {
	s := NewSummary(twoRules())
	r := testRecord()
	r.Verdict, r.Reason, r.ICMP = classifier.Allowed, classifier.ReasonNone, false
	allocs := testing.AllocsPerRun(1000, func() {
		r.First += int64(time.Second)
		s.Final(&r)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per allowed flow", allocs)
	}
}
