package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/internal/texttable"
)

// TextOptions tune the report a person reads on a terminal.
type TextOptions struct {
	// Width is the terminal's width in columns (0: no limit). Tables
	// shrink and wrap to it; 80 columns stay readable.
	Width int
	// Color marks statuses and verdicts with ANSI colour.
	Color bool
	// ByHost shows the problems host by host (what each host could not
	// reach, and who reached it unexpectedly) instead of rule by rule.
	ByHost bool
}

// Lines each problem list of the terminal report shows at most; the HTML
// page and --format json have more.
const TextLines = 40

// WriteText writes the report: what was read, the verdicts, then rule by
// rule (or host by host) what worked, what to open on which firewall,
// what a server refused, and what no rule allows.
func (v *View) WriteText(w io.Writer, o TextOptions) error {
	t := &textWriter{w: w, o: o, p: texttable.NewPainter(o.Color), v: v}
	t.header()
	if o.ByHost {
		t.hosts()
	} else {
		t.rules()
		t.toOpen()
		t.refused()
		t.unexpected()
	}
	t.notes()
	return t.err
}

type textWriter struct {
	w   io.Writer
	o   TextOptions
	p   texttable.Painter
	v   *View
	err error
}

func (t *textWriter) printf(format string, args ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.w, format, args...)
	}
}

// para writes a wrapped paragraph with a hanging indent.
func (t *textWriter) para(first, rest, text string, c texttable.Color) {
	if t.err == nil {
		t.err = texttable.Paragraph(t.w, t.o.Width, first, rest, text, c, t.p)
	}
}

func (t *textWriter) table(tab *texttable.Table) {
	if t.err == nil {
		t.err = tab.Render(t.w, t.o.Width, t.p)
	}
}

func (t *textWriter) title(text string, c texttable.Color) {
	t.printf("\n")
	t.para("", "", text, c)
}

func (t *textWriter) header() {
	v := t.view()
	h := &v.Header
	t.para("", "  ", "tpwatch replay of "+strings.Join(h.Files, ", "), texttable.Bold)
	span := ""
	if !v.First.IsZero() {
		span = fmt.Sprintf(", %s to %s (%s)", v.First.Format("2006-01-02 15:04:05"), timeOfDay(v.Last, v.First),
			spanDuration(v.Last.Sub(v.First)))
	}
	t.para("", "  ", fmt.Sprintf("%s, %s%s", plural(h.Packets, "packet"), plural(v.Flows, "flow"), span), texttable.Plain)
	if h.Inventory != "" {
		t.para("", "  ", "Inventory: "+h.Inventory, texttable.Plain)
	}
	for _, p := range h.Problems {
		t.para("! ", "  ", "Incomplete: "+p, texttable.Red)
	}
	vs := v.Verdicts
	parts := []texttable.Cell{
		{Text: fmt.Sprintf("%d allowed", vs[classifier.Allowed]), Color: texttable.Green},
		{Text: fmt.Sprintf("%d blocked", vs[classifier.Blocked]), Color: colorIf(vs[classifier.Blocked] > 0, texttable.Red)},
		{Text: fmt.Sprintf("%d unexpected", vs[classifier.Unexpected]), Color: colorIf(vs[classifier.Unexpected] > 0, texttable.Yellow)},
		{Text: fmt.Sprintf("%d pending", vs[classifier.Pending])},
		{Text: fmt.Sprintf("%d ignored", vs[classifier.Ignored])},
	}
	plain, painted := make([]string, len(parts)), make([]string, len(parts))
	for i, c := range parts {
		plain[i], painted[i] = c.Text, t.p.Paint(c.Color, c.Text)
	}
	line := "Verdicts: " + strings.Join(plain, ", ")
	if t.o.Width > 0 && texttable.Width(line) > t.o.Width {
		t.para("", "  ", line, texttable.Plain)
		return
	}
	t.printf("Verdicts: %s\n", strings.Join(painted, ", "))
}

func colorIf(cond bool, c texttable.Color) texttable.Color {
	if cond {
		return c
	}
	return texttable.Plain
}

// view is the view being written.
func (t *textWriter) view() *View { return t.v }

// rules writes the table of the rules that saw flows, the worst first.
func (t *textWriter) rules() {
	v := t.view()
	if len(v.Rules) == 0 {
		t.title("No flow concerned Threat Prevention.", texttable.Bold)
		return
	}
	t.title("RULES, the worst first", texttable.Bold)
	pending := false
	for _, r := range v.Rules {
		pending = pending || r.Pending > 0
	}
	cols := []texttable.Column{
		{Title: "STATUS", Fixed: true}, {Title: "RULE"}, {Title: "CLIENT → SERVER"}, {Title: "PORTS"},
		{Title: "OK", Right: true, Fixed: true}, {Title: "BLOCKED", Right: true, Fixed: true},
		{Title: "UNEXP.", Right: true, Fixed: true},
	}
	if pending {
		cols = append(cols, texttable.Column{Title: "PENDING", Right: true, Fixed: true})
	}
	cols = append(cols, texttable.Column{Title: "LAST OK", Fixed: true})
	tab := &texttable.Table{Columns: cols}
	for _, r := range v.Rules {
		id, roles, ports := r.ID, r.Client+" → "+r.Server, r.Ports
		if id == "" {
			id, roles, ports = "(no rule)", "hosts of the inventory", "-"
		}
		last := "-"
		if !r.LastWorking.IsZero() {
			last = timeOfDay(r.LastWorking, v.First)
		}
		cells := []texttable.Cell{
			{Text: r.Status.String(), Color: statusColor(r.Status)},
			{Text: id}, {Text: roles}, {Text: ports},
			{Text: count(r.Allowed)}, {Text: count(r.Blocked)}, {Text: count(r.Unexpected)},
		}
		if pending {
			cells = append(cells, texttable.Cell{Text: count(r.Pending)})
		}
		tab.AddCells(append(cells, texttable.Cell{Text: last})...)
	}
	if t.o.Width > 0 && tab.NaturalWidth() > t.o.Width {
		t.stackedRules(pending)
	} else {
		t.table(tab)
	}
	if v.Unlisted > 0 {
		t.para("", "", fmt.Sprintf("(%d rules of the matrix saw no flow in this capture; `tpwatch policy` lists them all)", v.Unlisted), texttable.Dim)
	}
}

// stackedRules writes the rules two lines each, for a terminal too narrow
// for the table: the rule and its roles, then its counts.
func (t *textWriter) stackedRules(pending bool) {
	v := t.view()
	for _, r := range v.Rules {
		id, roles, ports := r.ID, r.Client+" → "+r.Server, r.Ports
		if id == "" {
			id, roles, ports = "(no rule)", "hosts of the inventory, a port no rule names", ""
		}
		t.para(t.p.Paint(statusColor(r.Status), fmt.Sprintf("%-10s", r.Status))+" ", "           ",
			strings.TrimSpace(id+"  "+ports+"  "+roles), texttable.Plain)
		counts := fmt.Sprintf("ok %d · blocked %d · unexpected %d", r.Allowed, r.Blocked, r.Unexpected)
		if pending {
			counts += fmt.Sprintf(" · pending %d", r.Pending)
		}
		if !r.LastWorking.IsZero() {
			counts += " · last ok " + timeOfDay(r.LastWorking, v.First)
		}
		t.para("           ", "           ", counts, texttable.Dim)
	}
}

func count(n uint64) string { return fmt.Sprintf("%d", n) }

func statusColor(s Status) texttable.Color {
	switch s {
	case StatusBlocked:
		return texttable.Red
	case StatusUnexpected:
		return texttable.Yellow
	case StatusPending:
		return texttable.Cyan
	}
	return texttable.Green
}

// toOpen writes the required flows the network dropped: what to open on
// which firewall, a line a server port, its clients by role.
func (t *textWriter) toOpen() {
	v := t.view()
	t.problems("TO OPEN: required by the matrix, dropped by the network", texttable.Red, v.ToOpen, v.MoreToOpen,
		func(p *Problem) (string, texttable.Color) {
			return fmt.Sprintf("%s to %s from %s", portOf(p), hostText(p.Server), clientsText(p)), texttable.Plain
		})
}

// refused writes the blocked flows a server reset.
func (t *textWriter) refused() {
	v := t.view()
	t.problems("REFUSED: the server answered with a reset: the service is not listening, or a host firewall resets", texttable.Red, v.Refused, v.MoreRefused,
		func(p *Problem) (string, texttable.Color) {
			return fmt.Sprintf("%s on %s, from %s", portOf(p), hostText(p.Server), clientsText(p)), texttable.Plain
		})
}

// unexpected writes the unexpected flows, those that got in first.
func (t *textWriter) unexpected() {
	v := t.view()
	t.problems("UNEXPECTED: Threat Prevention traffic that no enabled rule allows", texttable.Yellow, v.Unexpected, v.MoreUnexpected,
		func(p *Problem) (string, texttable.Color) {
			return fmt.Sprintf("%s: %s on %s, from %s", outcomeText(p.Outcome), portOf(p), hostText(p.Server), clientsText(p)), outcomeColor(p.Outcome)
		})
}

// problems writes one section of problems, if there are any: its title
// with their flow count, then each problem in two lines (headline gives
// the first and its colour, detail the second), then the count of those
// left out.
func (t *textWriter) problems(title string, c texttable.Color, ps []Problem, more int, headline func(*Problem) (string, texttable.Color)) {
	if len(ps) == 0 {
		return
	}
	t.title(fmt.Sprintf("%s (%s)", title, plural(sumFlows(ps), "flow")), c)
	for i := range ps {
		p := &ps[i]
		line, lc := headline(p)
		t.para("  ", "      ", line, lc)
		t.para("      ", "      ", detail(p), texttable.Dim)
	}
	t.more(more)
}

// hosts writes the problems host by host.
func (t *textWriter) hosts() {
	v := t.view()
	if len(v.Hosts) == 0 {
		t.title("No blocked or unexpected flow.", texttable.Bold)
		return
	}
	t.title(fmt.Sprintf("HOSTS with blocked or unexpected flows, the most first (%d)", len(v.Hosts)+v.MoreHosts), texttable.Bold)
	for i := range v.Hosts {
		hv := &v.Hosts[i]
		t.printf("\n")
		t.para("  ", "    ", hostText(hv.Host), texttable.Bold)
		for j := range hv.AsClient {
			p := &hv.AsClient[j]
			t.para("    ", "        ", asClientText(p), problemColor(p))
		}
		t.more(hv.MoreAsClient)
		for j := range hv.AsServer {
			p := &hv.AsServer[j]
			t.para("    ", "        ", asServerText(p), problemColor(p))
		}
		t.more(hv.MoreAsServer)
	}
	t.more(v.MoreHosts)
}

func asClientText(p *Problem) string {
	what := "could not reach"
	switch {
	case p.Verdict == classifier.Unexpected && p.Outcome == classifier.OutcomeWorked:
		what = "reached, unexpectedly,"
	case p.Verdict == classifier.Unexpected:
		what = "tried, unexpectedly,"
	}
	return fmt.Sprintf("%s %s on %s: %s", what, portOf(p), hostText(p.Server), detail(p))
}

func asServerText(p *Problem) string {
	what := "not reached by"
	switch {
	case p.Verdict == classifier.Unexpected && p.Outcome == classifier.OutcomeWorked:
		what = "reached unexpectedly by"
	case p.Verdict == classifier.Unexpected:
		what = "tried unexpectedly by"
	}
	return fmt.Sprintf("%s %s on %s: %s", what, clientsText(p), portOf(p), detail(p))
}

func problemColor(p *Problem) texttable.Color {
	if p.Verdict == classifier.Blocked {
		return texttable.Red
	}
	return outcomeColor(p.Outcome)
}

func outcomeColor(o classifier.Outcome) texttable.Color {
	if o == classifier.OutcomeWorked {
		return texttable.Yellow
	}
	return texttable.Plain
}

// outcomeText says how an unexpected flow went, for a person.
func outcomeText(o classifier.Outcome) string {
	switch o {
	case classifier.OutcomeWorked:
		return "GOT IN"
	case classifier.OutcomeRefused:
		return "turned away (reset)"
	case classifier.OutcomeNoResponse:
		return "turned away (no answer)"
	case classifier.OutcomeICMPUnreachable:
		return "turned away (ICMP)"
	}
	return "outcome unknown"
}

// detail is a problem's second line: the rule, the flows, how they failed,
// who rejected them.
func detail(p *Problem) string {
	var parts []string
	if p.Rule != "" {
		parts = append(parts, p.Rule)
	} else {
		parts = append(parts, "no rule for this port between these roles")
	}
	if p.Verdict == classifier.Unexpected {
		parts = append(parts, p.Reason.String())
	}
	if p.Reason == classifier.ProtocolMismatch {
		what := "carried " + p.App.String()
		if p.Expected != "" {
			what += ", where the port carries " + p.Expected
		}
		parts = append(parts, what)
	}
	if a := p.Announcement(); a != "" {
		parts = append(parts, "port "+a)
	}
	how := plural(p.Flows, "flow")
	switch {
	case p.ICMP:
		how += fmt.Sprintf(", rejected by %s (ICMP %d/%d %s)", p.ICMPSrc, p.ICMPType, p.ICMPCode, p.ICMPMeaning())
	case p.Verdict == classifier.Blocked && p.Reason == classifier.NoResponse:
		how += ", no answer"
	case p.Verdict == classifier.Blocked && p.Reason == classifier.Refused:
		how += ", reset"
	}
	parts = append(parts, how, "state "+p.ConnState+" "+p.History)
	if p.Section != "" && p.Verdict == classifier.Blocked {
		parts = append(parts, p.Section)
	}
	return strings.Join(parts, " · ")
}

func portOf(p *Problem) string { return fmt.Sprintf("%s/%d", p.Transport, p.Port) }

// hostText writes a host and its roles: "192.0.2.10 (enterprise-manager)".
func hostText(e Endpoint) string {
	if e.Roles == 0 {
		return e.Addr.String() + " (no role)"
	}
	return e.Addr.String() + " (" + e.Roles.String() + ")"
}

// clientsText names a problem's clients: one by address and roles, a few
// by role then address, many by count, role and the first addresses, the
// count always exact (or a bound, said so).
func clientsText(p *Problem) string {
	roles := "no role"
	if p.ClientRoles != 0 {
		roles = p.ClientRoles.String()
	}
	if p.ClientCount == 1 && len(p.Clients) == 1 {
		return hostText(p.Clients[0])
	}
	shown := min(len(p.Clients), 3)
	addrs := make([]string, shown)
	for i := range shown {
		addrs[i] = p.Clients[i].Addr.String()
	}
	text := fmt.Sprintf("%d hosts (%s): %s", p.ClientCount, roles, strings.Join(addrs, ", "))
	if rest := p.ClientCount - shown; rest > 0 {
		more := fmt.Sprintf(" and %d more", rest)
		if p.ClientsAtLeast {
			more = fmt.Sprintf(" and at least %d more", rest)
		}
		text += more
	}
	return text
}

func (t *textWriter) more(n int) {
	if n > 0 {
		t.para("  ", "  ", fmt.Sprintf("... %d more (the HTML report and --format json have every one)", n), texttable.Dim)
	}
}

func (t *textWriter) notes() {
	v := t.view()
	if v.Overflow > 0 {
		t.printf("\n")
		t.para("", "", fmt.Sprintf("Note: %d more blocked or unexpected flows to other servers and ports were counted but not grouped; use --format json.", v.Overflow), texttable.Plain)
	}
	if v.Evicted > 0 {
		t.printf("\n")
		t.para("", "", fmt.Sprintf("Note: the flow table was full and ended %d flows early (raise --max-flows).", v.Evicted), texttable.Plain)
	}
	if u := v.Header.Undecided; len(u) > 0 {
		t.title("The inferred inventory could not decide:", texttable.Bold)
		for _, s := range u {
			t.para("  - ", "    ", s, texttable.Plain)
		}
	}
}

func sumFlows(ps []Problem) uint64 {
	var n uint64
	for i := range ps {
		n += ps[i].Flows
	}
	return n
}

// timeOfDay writes t as a time of day when it falls on the day of ref,
// else with its date.
func timeOfDay(t, ref time.Time) string {
	if t.Year() == ref.Year() && t.YearDay() == ref.YearDay() {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04:05")
}

// plural writes a count and a noun, with an s when the count is not one.
func plural(n uint64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// spanDuration says how long a capture lasted as a person reads it: to the
// millisecond under an hour, to the second under two days, in days past
// that (a capture of files a year apart is "430.4 days", not
// "10330h42m6.778s").
func spanDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	case d >= time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}
