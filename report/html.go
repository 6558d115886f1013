package report

import (
	"bufio"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/policy"
)

// HTMLLimits bound the lists of the HTML page: enough to act on, and a
// page that stays small and fast whatever the capture (a port scan makes a
// problem per port).
var HTMLLimits = Limits{Problems: 200, Hosts: 100, PerHost: 20}

// The page is one file: its template, and the style sheet it inlines, are
// embedded so that the page needs nothing from anywhere (no script, font
// or image fetched: the Content-Security-Policy it carries forbids it).
var (
	//go:embed html/page.tmpl
	pageTemplate string
	//go:embed html/style.css
	pageStyle string

	pageTmpl = template.Must(template.New("page").Funcs(funcs).Parse(pageTemplate))
)

// funcs are the template's helpers.
var funcs = template.FuncMap{
	"num":          func(n uint64) string { return groupDigits(n) },
	"int":          func(n int) string { return groupDigits(uint64(max(n, 0))) },
	"roles":        rolesText,
	"status":       statusClass,
	"outcome":      outcomeText,
	"port":         func(p *Problem) string { return portOf(p) },
	"asClient":     func(p Problem) string { return asClientText(&p) },
	"asServer":     func(p Problem) string { return asServerText(&p) },
	"reason":       reasonText,
	"problemClass": func(p Problem) string { return problemClass(&p) },
	"isUnexpected": func(p *Problem) bool { return p.Verdict == classifier.Unexpected },
	"span":         spanText,
	"sumFlows":     sumFlows,
	"problems":     newProblemTable,
	"cellText":     cellText,
	"words":        func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	"flowHow":      flowHow,
	"duration":     func(a, b time.Time) string { return spanDuration(b.Sub(a)) },
	"verdict":      func(v classifier.Verdict) string { return v.String() },
	"flowTime":     func(t time.Time) string { return t.Format("2006-01-02 15:04:05") },
	"plural":       plural,
	"join":         strings.Join,
	"sub":          func(a, b int) int { return a - b },
	"prefix":       func(h InventoryHost) string { return prefixText(h) },
}

// HTMLOptions tune the page.
type HTMLOptions struct {
	// Live, when set, makes the page the daemon's status page.
	Live *Live
}

// WriteHTML writes the view as one self-contained HTML page: the verdicts,
// a timeline, the rules, the matrix as a grid, what to open, what was
// refused, what no rule allows, host by host, the inventory and what was
// read. Everything is escaped by html/template; the same view always
// gives the same bytes.
func (v *View) WriteHTML(w io.Writer, o HTMLOptions) error {
	p := v.page(o)
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := pageTmpl.Execute(bw, p); err != nil {
		return fmt.Errorf("write html report: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write html report: %w", err)
	}
	return nil
}

// page is what the template draws: the view, and what is computed for
// drawing it.
type page struct {
	*View
	Live     *Live
	Title    string
	Style    template.CSS
	Exit     string
	ExitCode int
	Bar      verdictBar
	Legend   []legendItem
	Timeline *timelineSVG
	Ignored  uint64
	Concern  uint64 // flows that concern Threat Prevention
	Pending  bool   // some rule has pending flows: the rules show the column
}

func (v *View) page(o HTMLOptions) *page {
	p := &page{View: v, Live: o.Live, Style: template.CSS(pageStyle)}
	p.Ignored = v.Verdicts[classifier.Ignored]
	for _, r := range v.Rules {
		p.Pending = p.Pending || r.Pending > 0
	}
	p.Concern = v.Flows - p.Ignored
	switch {
	case o.Live != nil && o.Live.Host != "":
		p.Title = "tpwatch on " + o.Live.Host
	case o.Live != nil:
		p.Title = "tpwatch status"
	default:
		p.Title = "tpwatch report: " + strings.Join(v.Header.Files, ", ")
	}
	p.ExitCode, p.Exit = v.exitText(o.Live != nil)
	p.Bar = newVerdictBar(v.Verdicts)
	p.Legend = v.legend()
	p.Timeline = newTimelineSVG(&v.Timeline)
	return p
}

// Clock writes a time as a time of day when it falls on the day the
// capture started, else with its date.
func (p *page) Clock(t time.Time) string { return timeOfDay(t, p.First) }

// legendItem is a verdict's count under the bar, with its reasons.
type legendItem struct {
	Class, Label, Detail string
	Count                uint64
}

func (v *View) legend() []legendItem {
	vs, rs := &v.Verdicts, &v.Reasons
	reasons := func(list ...any) string {
		var parts []string
		for i := 0; i+1 < len(list); i += 2 {
			if n := rs[list[i].(classifier.Reason)]; n > 0 {
				parts = append(parts, groupDigits(n)+" "+list[i+1].(string))
			}
		}
		return strings.Join(parts, ", ")
	}
	return []legendItem{
		{Class: "ok", Label: "allowed", Count: vs[classifier.Allowed]},
		{Class: "blocked", Label: "blocked", Count: vs[classifier.Blocked],
			Detail: reasons(classifier.NoResponse, "no answer", classifier.ICMPUnreachable, "ICMP unreachable", classifier.Refused, "refused")},
		{Class: "unexpected", Label: "unexpected", Count: vs[classifier.Unexpected],
			Detail: reasons(classifier.NoRule, "no rule", classifier.UnauthorizedClient, "unauthorized client", classifier.FeatureDisabled, "feature disabled")},
		{Class: "pending", Label: "pending", Count: vs[classifier.Pending]},
		{Class: "notseen", Label: "ignored (not Threat Prevention's)", Count: vs[classifier.Ignored]},
	}
}

// problemTable is one list of problems, for the template's "problems".
type problemTable struct {
	List []*Problem
	More int
	Kind string
}

func newProblemTable(list []Problem, more int, kind string) problemTable {
	t := problemTable{More: more, Kind: kind, List: make([]*Problem, len(list))}
	for i := range list {
		t.List[i] = &list[i]
	}
	return t
}

// problemClass is the colour of a problem: blocked, an unexpected client
// that got in, or one that was turned away.
func problemClass(p *Problem) string {
	switch {
	case p.Verdict == classifier.Blocked:
		return "blocked"
	case p.Outcome == classifier.OutcomeWorked:
		return "unexpected"
	}
	return "away"
}

// flowHow says how a listed flow failed, or for an unexpected one why
// and how it went.
func flowHow(f *Flow) string {
	if f.Verdict == classifier.Unexpected {
		return strings.ReplaceAll(f.Reason.String(), "_", " ") + ", " + outcomeText(f.Outcome)
	}
	switch {
	case f.ICMP:
		return fmt.Sprintf("rejected by %s (ICMP %d/%d %s)", f.ICMPSrc, f.ICMPType, f.ICMPCode, icmpMeaning(f.ICMPType, f.ICMPCode))
	case f.Reason == classifier.NoResponse:
		return "no answer"
	case f.Reason == classifier.Refused:
		return "reset (RST)"
	}
	return f.Reason.String()
}

// cellText is what a grid cell says: the problem flows of the pair out
// of all its flows, or its working flows, or a dot for rules not seen.
func cellText(c GridCell) string {
	switch {
	case c.Blocked > 0:
		return groupDigits(c.Blocked) + "/" + groupDigits(c.Flows())
	case c.Unexpected > 0:
		return groupDigits(c.Unexpected) + "/" + groupDigits(c.Flows())
	case c.Flows() > 0:
		return groupDigits(c.Flows())
	}
	return "·"
}

// spanText writes when a problem's flows were seen.
func spanText(p *Problem) string {
	first := p.First.Format("2006-01-02 15:04:05")
	if p.Last.Truncate(time.Second).Equal(p.First.Truncate(time.Second)) {
		return first
	}
	return first + " to " + timeOfDay(p.Last, p.First)
}

// exitText says in words what the exit status of a replay says.
func (v *View) exitText(live bool) (int, string) {
	blocked, unexpected := v.Verdicts[classifier.Blocked], v.Verdicts[classifier.Unexpected]
	var parts []string
	if blocked > 0 {
		parts = append(parts, plural(blocked, "required flow")+" blocked")
	}
	if unexpected > 0 {
		parts = append(parts, plural(unexpected, "unexpected flow"))
	}
	code, text := 0, "Nothing blocked or unexpected"
	if len(parts) > 0 {
		code, text = 1, upperFirst(strings.Join(parts, " and "))
	}
	if live {
		text += " since the daemon started"
	}
	text += "."
	if len(v.Header.Problems) > 0 && !live {
		code, text = 2, "The input could not all be read (see above). "+text
	}
	return code, text
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// groupDigits writes n with thousands separated by commas.
func groupDigits(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	lead := len(s) % 3
	if lead > 0 {
		b.WriteString(s[:lead])
	}
	for i := lead; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

func rolesText(s policy.RoleSet) string {
	if s == 0 {
		return "no role"
	}
	return strings.ReplaceAll(s.String(), ",", ", ")
}

// statusClass is the CSS class of a status: its colour.
func statusClass(s Status) string {
	switch s {
	case StatusBlocked:
		return "blocked"
	case StatusUnexpected:
		return "unexpected"
	case StatusPending:
		return "pending"
	case StatusNotSeen:
		return "notseen"
	}
	return "ok"
}

// reasonText says how a problem failed, for the "how" column.
func reasonText(p *Problem) string {
	switch {
	case p.ICMP:
		return fmt.Sprintf("ICMP %d/%d %s", p.ICMPType, p.ICMPCode, p.ICMPMeaning())
	case p.Reason == classifier.NoResponse:
		return "no answer"
	case p.Reason == classifier.Refused:
		return "reset (RST)"
	}
	return p.Reason.String()
}

func prefixText(h InventoryHost) string {
	if h.Prefix.IsSingleIP() {
		return h.Prefix.Addr().String()
	}
	return h.Prefix.String()
}

// verdictBar is the stacked bar of the verdicts of the flows that concern
// Threat Prevention.
type verdictBar struct {
	Label    string // the numbers, for screen readers and tests
	Segments []barSegment
}

type barSegment struct {
	Class, Title string
	X, W         string
}

// barWidth is the bar's width in SVG units; it scales to the page.
const barWidth = 1000

func newVerdictBar(vs [classifier.NumVerdicts]uint64) verdictBar {
	order := []classifier.Verdict{classifier.Allowed, classifier.Blocked, classifier.Unexpected, classifier.Pending}
	var parts []string
	var total uint64
	for _, v := range order {
		total += vs[v]
	}
	for _, v := range append(order, classifier.Ignored) {
		parts = append(parts, fmt.Sprintf("%d %s", vs[v], v))
	}
	b := verdictBar{Label: strings.Join(parts, ", ")}
	if total == 0 {
		return b
	}
	// A verdict with few flows still gets a visible sliver: a single
	// blocked flow among a million allowed ones is the news.
	const minWidth = 6.0
	widths := make([]float64, len(order))
	var shown float64
	for i, v := range order {
		if vs[v] == 0 {
			continue
		}
		widths[i] = barWidth * float64(vs[v]) / float64(total)
		widths[i] = math.Max(widths[i], minWidth)
		shown += widths[i]
	}
	scale := barWidth / shown
	x := 0.0
	for i, v := range order {
		if widths[i] == 0 {
			continue
		}
		w := widths[i] * scale
		b.Segments = append(b.Segments, barSegment{Class: verdictClass(v), Title: fmt.Sprintf("%d %s", vs[v], v),
			X: svgNum(x), W: svgNum(w)})
		x += w
	}
	return b
}

func verdictClass(v classifier.Verdict) string {
	switch v {
	case classifier.Allowed:
		return "ok"
	case classifier.Blocked:
		return "blocked"
	case classifier.Unexpected:
		return "unexpected"
	case classifier.Pending:
		return "pending"
	}
	return "notseen"
}

// svgNum writes a coordinate with one decimal, without a trailing ".0".
func svgNum(f float64) string {
	s := strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64)
	return s
}

// timelineSVG is the timeline drawn as two bands of stacked bars: every
// flow that concerns Threat Prevention, then the problems alone on their
// own scale (a few blocked flows among thousands that work would not show
// on one scale).
type timelineSVG struct {
	Label           string
	Bars            []timelineBar
	AllMax, ProbMax string
	Start, Mid, End string
	Width           string
}

type timelineBar struct {
	X, W, Title string
	All, Prob   []barRect
}

type barRect struct {
	Class, Y, H string
}

// Geometry of the timeline's two bands, in SVG units.
const (
	tlWidth = 1000
	tlBandH = 90
)

func newTimelineSVG(t *Timeline) *timelineSVG {
	if len(t.Counts) == 0 {
		return nil
	}
	s := &timelineSVG{}
	var allMax, probMax uint64
	for _, c := range t.Counts {
		all := c[classifier.Allowed] + c[classifier.Blocked] + c[classifier.Unexpected] + c[classifier.Pending]
		prob := c[classifier.Blocked] + c[classifier.Unexpected]
		allMax, probMax = max(allMax, all), max(probMax, prob)
	}
	s.AllMax, s.ProbMax = groupDigits(allMax), groupDigits(probMax)
	n := len(t.Counts)
	bw := float64(tlWidth) / float64(n)
	gap := 0.0
	if bw > 4 {
		gap = 1
	}
	stack := func(c [classifier.NumVerdicts]uint64, vs []classifier.Verdict, max uint64) []barRect {
		if max == 0 {
			return nil
		}
		var out []barRect
		y := float64(tlBandH)
		for _, v := range vs {
			if c[v] == 0 {
				continue
			}
			h := float64(tlBandH) * float64(c[v]) / float64(max)
			h = math.Max(h, 1.5)
			y -= h
			out = append(out, barRect{Class: verdictClass(v), Y: svgNum(y), H: svgNum(h)})
		}
		return out
	}
	problems := []classifier.Verdict{classifier.Blocked, classifier.Unexpected}
	everything := []classifier.Verdict{classifier.Blocked, classifier.Unexpected, classifier.Pending, classifier.Allowed}
	for i, c := range t.Counts {
		from := t.Start.Add(time.Duration(i) * t.Width)
		title := fmt.Sprintf("%s: %d allowed, %d blocked, %d unexpected, %d pending", from.Format("2006-01-02 15:04:05.000"),
			c[classifier.Allowed], c[classifier.Blocked], c[classifier.Unexpected], c[classifier.Pending])
		s.Bars = append(s.Bars, timelineBar{
			X: svgNum(float64(i) * bw), W: svgNum(math.Max(bw-gap, 0.5)), Title: title,
			All:  stack(c, everything, allMax),
			Prob: stack(c, problems, probMax),
		})
	}
	layout := "15:04:05"
	if t.End().Sub(t.Start) >= 24*time.Hour || t.Start.YearDay() != t.End().YearDay() {
		layout = "2006-01-02 15:04"
	}
	s.Start, s.End = t.Start.Format(layout), t.End().Format(layout)
	s.Mid = t.Start.Add(t.End().Sub(t.Start) / 2).Format(layout)
	s.Width = t.Width.String()
	s.Label = fmt.Sprintf("Flows by verdict from %s to %s in %d bars of %s", s.Start, s.End, n, t.Width)
	return s
}
