package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/metrics"
	"github.com/tpwatch/tpwatch/policy"
	"github.com/tpwatch/tpwatch/report"
)

// Paths of the status page's companions on the metrics listener.
const (
	// FlowsPath is the flow API: the last blocked and unexpected flows,
	// as JSON objects with the fields of replay's NDJSON lines.
	FlowsPath = "/api/v1/flows"
	// statusRefresh is how often the status page reloads itself: a meta
	// refresh, the page has no script.
	statusRefresh = 10
	// recentShown is how many of the ring's flows the page lists.
	recentShown = 50
	// defaultFlowLimit and the ring's size bound what one API call
	// returns.
	defaultFlowLimit = 100
)

// contentSecurityPolicy allows the page its inline style sheet and nothing
// else: no script, no fetch, whatever a string in it says.
const contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"

// status is what the status page and the flow API show: every flow
// counted into a Summary as it is decided (the report a replay would
// give, since the daemon started) and the last problem flows.
type status struct {
	started time.Time
	ring    *flowRing

	mu      sync.Mutex // guards summary
	summary *report.Summary
}

func newStatus(rules []policy.Rule, recent int) *status {
	return &status{started: time.Now(), ring: newFlowRing(recent), summary: report.NewSummary(rules)}
}

// decided counts a flow once its verdict is known, and keeps it in the
// ring when it needs a person.
func (s *status) decided(iface string, r *classifier.FlowRecord) {
	s.mu.Lock()
	s.summary.Final(r)
	s.mu.Unlock()
	if r.Verdict == classifier.Blocked || r.Verdict == classifier.Unexpected {
		s.ring.add(iface, r)
	}
}

// working moves an allowed flow's rule's last working time.
func (s *status) working(r *classifier.FlowRecord) {
	if r.Verdict != classifier.Allowed {
		return
	}
	s.mu.Lock()
	s.summary.Working(r)
	s.mu.Unlock()
}

// setRules follows a reload (stable rule numbers only grow).
func (s *status) setRules(rules []policy.Rule) {
	s.mu.Lock()
	s.summary.SetRules(rules)
	s.mu.Unlock()
}

// routes are the status page and the flow API, served beside the metrics.
func (d *Daemon) routes() []metrics.Route {
	routes := []metrics.Route{{Pattern: "GET " + FlowsPath, Handler: http.HandlerFunc(d.serveFlows)}}
	if d.cfg.TelemetryPath != "/" {
		routes = append(routes, metrics.Route{Pattern: "GET /{$}", Handler: http.HandlerFunc(d.serveStatus)})
	}
	return routes
}

// serveStatus writes the status page: the report of what the daemon has
// seen since it started, for this host, with the config in force, the
// captures' health and the last problem flows.
func (d *Daemon) serveStatus(w http.ResponseWriter, _ *http.Request) {
	snap := d.policy.snapshot()
	h := d.statusHeader(snap)
	d.status.mu.Lock()
	v := d.status.summary.ViewLimits(h, report.HTMLLimits)
	d.status.mu.Unlock()
	// The summary knows every rule the daemon has had in force (stable
	// numbers outlive a reload); a rule a reload removed and no flow used
	// is not worth a line.
	inForce := map[string]bool{}
	for _, r := range snap.policy.Rules() {
		inForce[r.ID] = true
	}
	v.Unseen = slices.DeleteFunc(v.Unseen, func(r report.RuleRow) bool { return !inForce[r.ID] })

	live := &report.Live{
		Started: d.status.started.UTC(), Now: time.Now().UTC(),
		Config: d.cfg.ConfigFile, Rules: len(snap.policy.Rules()),
		ReloadOK: d.reloads.OK(), LastReload: d.reloads.LastSuccess().UTC(), ReloadFailures: d.reloads.Failures(),
		RecentKept: d.status.ring.size(), Refresh: statusRefresh, MetricsPath: d.cfg.TelemetryPath,
	}
	live.Host, _ = os.Hostname()
	live.Addrs = d.localEndpoints()
	recent, _ := d.status.ring.latest(nil, recentShown)
	for i := len(recent) - 1; i >= 0; i-- {
		f := report.FlowOf(&recent[i].rec, snap.rules)
		f.Seq, f.Interface = recent[i].seq, recent[i].iface
		live.Recent = append(live.Recent, f)
	}

	var page bytes.Buffer
	if err := v.WriteHTML(&page, report.HTMLOptions{Live: live}); err != nil {
		d.log.Error().Err(err).Msg("status page")
		http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Content-Security-Policy", contentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", "no-store")
	w.Write(page.Bytes())
}

// statusHeader describes the live input: the captures, the inventory in
// force, this host's roles.
func (d *Daemon) statusHeader(snap *ruleSnapshot) report.Header {
	h := report.Header{Version: d.cfg.Version, Matrix: "Netwrix Threat Prevention 7.5 (embedded)", Roles: d.policy.Roles}
	if d.cfg.MatrixFile != "" {
		h.Matrix = d.cfg.MatrixFile
	}
	for _, s := range d.sources {
		st := s.snapshot()
		c := &st.Counts
		h.Packets += c.Records
		h.Captures = append(h.Captures, report.CaptureHealth{Name: s.name, Live: true, Up: st.Up,
			Packets: c.Records, Bytes: c.Bytes, NotIP: c.NotIP, Truncated: c.Truncated, Malformed: c.Malformed,
			Unsupported: c.Unsupported, KernelDrops: st.KernelDrops, InterfaceDrops: st.InterfaceDrops})
	}
	var cfg *policy.Config
	var evidence map[netip.Addr]map[policy.Role]string
	if inv := d.policy.inventory; inv != nil {
		h.Inferred = true
		cfg, evidence = inv.Config(), inv.Evidence()
		h.Undecided = inv.Undecided()
	} else {
		cfg = snap.policy.InventoryConfig()
	}
	h.Hosts, h.MoreHosts, h.InventoryRoles = report.InventoryHosts(cfg, evidence, report.MaxInventoryHosts)
	hosts := len(h.Hosts) + h.MoreHosts
	if h.Inferred {
		h.Inventory = fmt.Sprintf("learned from the traffic: %d hosts so far", hosts)
	} else {
		h.Inventory = fmt.Sprintf("from %s: %d addresses and prefixes", d.cfg.ConfigFile, hosts)
	}
	for _, e := range d.localEndpoints() {
		h.LocalRoles |= e.Roles
	}
	return h
}

// localEndpoints are this host's addresses with the roles the inventory
// gives them, those with a role first; loopback and link-local addresses
// are left out.
func (d *Daemon) localEndpoints() []report.Endpoint {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []report.Endpoint
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := p.Addr().Unmap()
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() {
			continue
		}
		out = append(out, report.Endpoint{Addr: ip, Roles: d.policy.Roles(netip.AddrFrom16(ip.As16()).As16())})
	}
	slices.SortStableFunc(out, func(a, b report.Endpoint) int {
		switch {
		case a.Roles != 0 && b.Roles == 0:
			return -1
		case a.Roles == 0 && b.Roles != 0:
			return 1
		}
		return 0
	})
	return out
}

// flowsResponse is the flow API's answer.
type flowsResponse struct {
	// Flows are JSON objects with the fields of replay's NDJSON lines,
	// plus interface and seq.
	Flows []json.RawMessage `json:"flows"`
	// LastSeq is the sequence number to pass as since= next time.
	LastSeq uint64 `json:"last_seq"`
	// Lost counts the flows after since= that had left the ring.
	Lost uint64 `json:"lost"`
	// Kept is how many flows the daemon keeps.
	Kept int `json:"kept"`
}

// serveFlows serves the last blocked and unexpected flows:
//
//	GET /api/v1/flows?verdict=blocked&host=10.0.0.0/8&rule=agent-em-grpc&port=3741&limit=100&since=SEQ
//
// Without since, the last limit flows the filters keep; with it, the
// first limit after flow number since (oldest first, both), and the
// number to ask after next (last_seq): what `tpwatch observe --follow`
// polls.
func (d *Daemon) serveFlows(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	fail := func(format string, args ...any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf(format, args...)})
	}
	var f report.Filter
	var err error
	if f.Verdicts, err = report.ParseVerdicts(q["verdict"]); err != nil {
		fail("verdict: %v", err)
		return
	}
	if f.Hosts, err = report.ParseHosts(q["host"]); err != nil {
		fail("host: %v", err)
		return
	}
	if f.Ports, err = report.ParsePorts(q["port"]); err != nil {
		fail("port: %v", err)
		return
	}
	for _, r := range q["rule"] {
		f.Rules = append(f.Rules, splitList(r)...)
	}
	limit := defaultFlowLimit
	if text := q.Get("limit"); text != "" {
		if limit, err = strconv.Atoi(text); err != nil || limit < 1 {
			fail("limit %q: want a positive number", text)
			return
		}
	}
	limit = min(limit, d.status.ring.size())
	snap := d.policy.snapshot()
	filter := f.Compile(snap.rules)
	keep := func(e *ringEntry) bool { return filter.Keeps(&e.rec) }

	resp := flowsResponse{Kept: d.status.ring.size(), Flows: []json.RawMessage{}}
	var entries []ringEntry
	if text := q.Get("since"); text != "" {
		since, err := strconv.ParseUint(text, 10, 64)
		if err != nil {
			fail("since %q: want a sequence number (last_seq of the previous answer)", text)
			return
		}
		entries, resp.LastSeq, resp.Lost = d.status.ring.after(since, keep, limit)
	} else {
		entries, resp.LastSeq = d.status.ring.latest(keep, limit)
	}
	var buf []byte
	for i := range entries {
		buf = appendFlowJSON(buf[:0], &entries[i], snap.rules)
		resp.Flows = append(resp.Flows, json.RawMessage(slices.Clone(buf)))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(&resp)
}

// appendFlowJSON writes a kept flow as the replay NDJSON object, with its
// sequence number and interface first.
func appendFlowJSON(b []byte, e *ringEntry, rules []policy.Rule) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, e.seq, 10)
	b = append(b, `,"interface":`...)
	name, _ := json.Marshal(e.iface)
	b = append(b, name...)
	b = append(b, ',')
	obj := report.AppendJSON(nil, &e.rec, rules)
	return append(b, obj[1:]...) // without its opening brace
}

func splitList(s string) []string {
	var out []string
	for _, part := range bytes.Split([]byte(s), []byte(",")) {
		if p := string(bytes.TrimSpace(part)); p != "" {
			out = append(out, p)
		}
	}
	return out
}
