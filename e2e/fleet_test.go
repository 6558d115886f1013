//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The deployment files the fleet test runs, relative to this package.
const (
	recordingFile        = "../deploy/prometheus/tpwatch-recording.yml"
	siteRemoteWriteFile  = "../deploy/prometheus/site-remote-write.yml"
	centralFederateFile  = "../deploy/prometheus/central-federation.yml"
	fleetMetricsPort     = "19740"
	fleetRecordingPeriod = "1s"
)

// fleetFlow is one flow of the fleet lab and what its client sees.
type fleetFlow struct{ from, spec, client string }

// The fleet lab's flows, each made once. The agent and the Enterprise
// Manager run tpwatch, a sensor watches the mirror port; the SQL Server
// and the Threat Manager do not.
var fleetFlows = []fleetFlow{
	{"agent", "tcp:em:3741", "ok"},        // allowed agent-em-grpc: seen by agent (client), em (server), sensor
	{"agent", "tcp:em:3389", "ok"},        // unexpected no_rule that worked: all three
	{"agent", "tcp:em:5985", "refused"},   // unexpected no_rule the EM refuses: all three
	{"agent", "tcp:tm:10001", "refused"},  // blocked refused agent-tm-tcp (the router's RST): agent, sensor
	{"em", "tcp:sql:1433", "ok"},          // allowed em-sql-tds: em, sensor
	{"em", "udp:sql:1434", "unreachable"}, // blocked icmp_unreachable em-sql-browser: em, sensor
	{"em", "tcp:agent:135", "timeout"},    // blocked no_response em-agent-wmi-rpc, dropped before the agent: em, sensor
}

// panelWant is what one dashboard query must return on the fleet lab.
// counts are the series with a count, keyed by their labels (instance
// written as the lab's host name, site left out); every other series must
// be 0. present asks only for some series (gauges, rates of packets).
type panelWant struct {
	counts  map[string]float64
	present bool
}

func counts(kv ...any) panelWant {
	w := panelWant{counts: map[string]float64{}}
	for i := 0; i+1 < len(kv); i += 2 {
		w.counts[kv[i].(string)] = float64(kv[i+1].(int))
	}
	return w
}

var presentOnly = panelWant{present: true}

// fleetPanels is, for every query of the shipped dashboard ("title/refId"),
// what the fleet lab's seven flows must give: each flow once.
var fleetPanels = map[string]panelWant{
	"Compliance per rule/A": presentOnly,
	"Compliance per rule/B": counts("rule=agent-em-grpc", 1, "rule=em-sql-tds", 1),
	"Compliance per rule/C": counts("rule=agent-tm-tcp", 1, "rule=em-sql-browser", 1, "rule=em-agent-wmi-rpc", 1),
	"Compliance per rule/D": counts(),
	"Compliance per rule/E": presentOnly,
	"Compliance per rule/F": counts("rule=agent-em-grpc", 3, "rule=em-sql-tds", 2, "rule=agent-tm-tcp", 2, "rule=em-sql-browser", 2, "rule=em-agent-wmi-rpc", 2),

	"Blocked flows by reason/A":     counts("reason=no_response", 1, "reason=refused", 1, "reason=icmp_unreachable", 1),
	"Blocked flows by rule/A":       counts("rule=agent-tm-tcp", 1, "rule=em-sql-browser", 1, "rule=em-agent-wmi-rpc", 1),
	"Flows by verdict/A":            counts("verdict=allowed", 2, "verdict=blocked", 3, "verdict=unexpected", 2),
	"Unexpected flows by reason/A":  counts("reason=no_rule", 2),
	"Unexpected flows by outcome/A": counts("outcome=worked", 1, "outcome=refused", 1),
	"Top unexpected ports/A":        counts("outcome=worked,port=3389,transport=tcp", 1, "outcome=refused,port=5985,transport=tcp", 1),
	"Top unexpected role pairs/A":   counts("client_role=agent,server_role=enterprise-manager", 2),

	"Hosts/A": counts("instance=agent,roles=agent,vantage=auto", 1, "instance=em,roles=enterprise-manager,vantage=auto", 1, "instance=sensor,roles=none,vantage=transit", 1),
	"Hosts/B": presentOnly,
	"Hosts/C": counts("instance=agent", 1, "instance=em", 1, "instance=sensor", 1),
	"Hosts/D": presentOnly,
	"Hosts/E": counts("instance=agent", 1, "instance=em", 2, "instance=sensor", 3),
	"Hosts/F": counts("instance=agent", 2, "instance=em", 2, "instance=sensor", 2),
	"Hosts/G": counts(),

	"Who saw what/A": counts(
		"instance=agent,reason=refused,rule=agent-tm-tcp,vantage=client,verdict=blocked", 1,
		"instance=sensor,reason=refused,rule=agent-tm-tcp,vantage=transit,verdict=blocked", 1,
		"instance=em,reason=icmp_unreachable,rule=em-sql-browser,vantage=client,verdict=blocked", 1,
		"instance=sensor,reason=icmp_unreachable,rule=em-sql-browser,vantage=transit,verdict=blocked", 1,
		"instance=em,reason=no_response,rule=em-agent-wmi-rpc,vantage=client,verdict=blocked", 1,
		"instance=sensor,reason=no_response,rule=em-agent-wmi-rpc,vantage=transit,verdict=blocked", 1,
		"instance=agent,reason=no_rule,vantage=client,verdict=unexpected", 2,
		"instance=em,reason=no_rule,vantage=server,verdict=unexpected", 2,
		"instance=sensor,reason=no_rule,vantage=transit,verdict=unexpected", 2,
	),

	"Capture up/A":                      counts("instance=agent,interface=eth0", 1, "instance=em,interface=eth0", 1, "instance=sensor,interface=SPAN", 1),
	"Packets captured/A":                presentOnly,
	"Capture drops/A":                   counts(),
	"Capture drops/B":                   counts(),
	"Decode errors/A":                   presentOnly,
	"Flow table entries/A":              presentOnly,
	"Flow table entries/B":              presentOnly,
	"Flow table evictions and expiry/A": presentOnly,
	"Flow table evictions and expiry/B": presentOnly,
}

// TestFleet runs tpwatch as a site would: a daemon on the agent and one on
// the Enterprise Manager (each in its namespace, scraped over a management
// link), a sensor on the mirror port, and the shipped Prometheus files: a
// site Prometheus (site-remote-write.yml, with the alert and recording
// rules) scraping the three and writing to a central Prometheus started
// with its remote-write receiver, and a third Prometheus federating the
// site's (central-federation.yml). For seven known flows, every dashboard
// query and every alert counts each flow once, the blocked flow dropped
// before a server that runs tpwatch is counted, and the central
// Prometheus answers every dashboard query as the site's does.
func TestFleet(t *testing.T) {
	need(t, runtime.GOOS == "linux", "Linux network namespaces")
	need(t, os.Geteuid() == 0, "root")
	need(t, have("ip"), "ip (Debian package iproute2)")
	need(t, have("nft"), "nft (Debian package nftables)")
	need(t, have("prometheus"), "prometheus (Debian package prometheus)")

	bin := buildTpwatch(t)
	l := newLab(t)
	h := func(name string) string { return l.hosts[name].addr }
	l.loadFirewall(
		fmt.Sprintf("ip saddr %s ip daddr %s tcp dport 135 drop", h("em"), h("agent")),
		fmt.Sprintf("ip saddr %s ip daddr %s tcp dport 10001 reject with tcp reset", h("agent"), h("tm")),
		fmt.Sprintf("ip saddr %s ip daddr %s udp dport 1434 reject with icmp type admin-prohibited", h("em"), h("sql")),
	)
	l.serve("em", "tcp:3741", "tcp:3389")
	l.serve("sql", "tcp:1433")
	site := filepath.Join(t.TempDir(), "site.yaml")
	writeSite(t, site, l, "features: {wmi-auto-deploy: true}\n")

	daemons := map[string]*daemonProc{
		"agent":  startDaemonIn(t, l.hosts["agent"].ns, l.mgmt("agent", 1)+":"+fleetMetricsPort, bin, site, "--interface", "eth0"),
		"em":     startDaemonIn(t, l.hosts["em"].ns, l.mgmt("em", 2)+":"+fleetMetricsPort, bin, site, "--interface", "eth0"),
		"sensor": startDaemonArgs(t, bin, site, "--interface", l.span, "--vantage", "transit"),
	}
	hostOf := map[string]string{}
	var targets []string
	for name, d := range daemons {
		hostOf[d.addr] = name
		targets = append(targets, d.addr)
		d.waitFor(t, 10*time.Second, name+": tpwatch_capture_up 1", func(s []sample) bool {
			v, _ := value(s, "tpwatch_capture_up", nil)
			return v == 1
		})
	}
	sort.Strings(targets)

	central := startPrometheus(t, "central", "global: {scrape_interval: 1s, evaluation_interval: 1s}\n", "--web.enable-remote-write-receiver")
	siteProm := startPrometheus(t, "site", sitePrometheusConfig(t, targets, "http://"+central.addr+"/api/v1/write"))
	federation := startPrometheus(t, "federation", federationConfig(t, siteProm.addr))
	if !eventually(30*time.Second, func() bool {
		r, err := siteProm.query(`up{job="tpwatch"} == 1`)
		return err == nil && len(r) == len(daemons)
	}) {
		t.Fatalf("the site Prometheus never scraped the %d daemons", len(daemons))
	}
	// The zero series have samples before the first flow, so the short
	// window below sees them grow (increase) rather than appear.
	time.Sleep(3 * time.Second)
	flowsStart := time.Now()

	for _, from := range []string{"agent", "em"} {
		var specs []string
		for _, f := range fleetFlows {
			if f.from == from {
				specs = append(specs, f.spec)
			}
		}
		got := l.dial(from, specs...)
		for _, f := range fleetFlows {
			if f.from == from && got[f.spec] != f.client {
				t.Fatalf("lab: %s → %s: client saw %q, want %q (the lab is broken, not tpwatch)", f.from, f.spec, got[f.spec], f.client)
			}
		}
	}
	// Every daemon has decided every flow it sees: the agent 4, the EM 6,
	// the sensor all 7.
	seen := map[string]float64{"agent": 4, "em": 6, "sensor": 7}
	for name, d := range daemons {
		d.waitFor(t, 20*time.Second, fmt.Sprintf("%s: %v flows decided", name, seen[name]), func(s []sample) bool {
			n := 0.0
			for _, x := range s {
				if x.name == "tpwatch_flows_total" && x.labels["verdict"] != "ignored" {
					n += x.value
				}
			}
			return n == seen[name]
		})
	}
	if t.Failed() {
		t.FailNow()
	}
	if !eventually(20*time.Second, func() bool {
		r, err := siteProm.vector(`sum(tpwatch_flows_total{verdict!="ignored"})`, time.Now())
		return err == nil && len(r) == 1 && r[0].Value == 4+6+7
	}) {
		t.Fatal("the site Prometheus does not hold the daemons' final counts")
	}
	// Two scrapes of every daemon after its last decision: the window
	// checks below need a sample on each side of every change.
	decided := time.Now()
	if !eventually(20*time.Second, func() bool {
		times, err := siteProm.scrapeTimes(time.Now())
		if err != nil || len(times) != len(daemons) {
			return false
		}
		for _, ts := range times {
			if n := len(ts); n < 2 || ts[n-2].Before(decided) {
				return false
			}
		}
		return true
	}) {
		t.Fatal("the site Prometheus did not scrape every daemon twice after the flows were decided")
	}
	at := time.Now()
	t.Logf("the flows were made and decided in %v", at.Sub(flowsStart).Round(time.Millisecond))

	dash := loadFleetDashboard(t)
	replaceSpan := func(k string) string { return strings.ReplaceAll(k, "interface="+l.span, "interface=SPAN") }

	t.Run("dashboard_counts_each_flow_once", func(t *testing.T) {
		// Over an hour, longer than the site Prometheus has lived, every
		// series is new: a query counts its value, exactly.
		checkPanels(t, siteProm, dash, "1h", at, hostOf, replaceSpan, false)
		// Over a window that starts just before the flows, the zero series
		// existed before it: a query counts their increase (Prometheus
		// extrapolates it a little; counts are rounded).
		times, err := siteProm.scrapeTimes(at)
		if err != nil {
			t.Fatal(err)
		}
		start, ok := windowStart(times, flowsStart)
		if !ok {
			t.Fatalf("the site Prometheus did not scrape every daemon twice before the flows (a loaded machine?): %v", times)
		}
		w := fmt.Sprintf("%dms", at.Sub(start).Milliseconds())
		checkPanels(t, siteProm, dash, w, at, hostOf, replaceSpan, true)
	})

	t.Run("alerts_count_each_flow_once", func(t *testing.T) {
		checkFleetAlerts(t, siteProm, daemons)
	})

	// remote_write sends every sample: the central store must answer
	// exactly as the site. Federation takes the latest sample at each of
	// its own scrapes and can miss one: the flow counts, which stopped
	// moving before the comparison, must match exactly; the capture and
	// table gauges and rates, still moving, must only be there.
	for _, store := range []struct {
		name  string
		api   promAPI
		loose bool
	}{{"remote_write", central, false}, {"federation", federation, true}} {
		t.Run(store.name+"_answers_as_the_site", func(t *testing.T) {
			var diff string
			ok := eventually(30*time.Second, func() bool {
				diff = compareStores(siteProm, store.api, dash, at, store.loose)
				return diff == ""
			})
			if !ok {
				t.Errorf("the %s store answers the dashboard differently:\n%s", store.name, diff)
			}
		})
	}

	t.Run("recording_rules", func(t *testing.T) {
		// On the central store, through remote_write: the each-flow-once
		// rate of agent-em-grpc is a third of the sum over the vantages
		// (agent, EM and sensor each saw it; each daemon is scraped at its
		// own moments, so the three rates differ by a few percent), and
		// the blocked rules show.
		ok := eventually(30*time.Second, func() bool {
			r, err := central.vector(`sum without (vantage) (site_vantage_rule_verdict_reason:tpwatch_flows:rate5m{rule="agent-em-grpc", verdict="allowed"}) / site_rule_verdict_reason:tpwatch_flows_once:rate5m{rule="agent-em-grpc", verdict="allowed"}`, time.Now())
			if err != nil || len(r) != 1 || math.Abs(r[0].Value-3) > 0.15 || r[0].Labels["site"] != "lab" {
				return false
			}
			b, err := central.vector(`site_rule_verdict_reason:tpwatch_flows_once:rate5m{verdict="blocked"} > 0`, time.Now())
			if err != nil {
				return false
			}
			var rules []string
			for _, s := range b {
				rules = append(rules, s.Labels["rule"])
			}
			sort.Strings(rules)
			return slices.Equal(rules, []string{"agent-tm-tcp", "em-agent-wmi-rpc", "em-sql-browser"})
		})
		if !ok {
			all, _ := central.vector(`{__name__=~"site.*:tpwatch_flows.*", rule=~"agent-em-grpc|agent-tm-tcp|em-agent-wmi-rpc|em-sql-browser"} != 0`, time.Now())
			t.Errorf("the recorded each-flow-once series on the central store are not a third of the per-vantage sums, or lack the blocked rules; the central store has %v", all)
		}
	})

	t.Run("sizing", func(t *testing.T) {
		for _, name := range []string{"agent", "em", "sensor"} {
			d := daemons[name]
			body, n := fetchMetrics(t, "http://"+d.addr+"/metrics")
			flows := 0
			for _, line := range strings.Split(body, "\n") {
				if strings.HasPrefix(line, "tpwatch_flows_total{") {
					flows++
				}
			}
			t.Logf("%s: %d series (%d of tpwatch_flows_total), scrape of %d bytes", name, n, flows, len(body))
		}
	})
}

// scrapeTimes returns, per daemon, the times of its scrapes up to at.
func (p promAPI) scrapeTimes(at time.Time) (map[string][]time.Time, error) {
	var data struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	}
	params := url.Values{"query": {`up{job="tpwatch"}[1h]`}, "time": {fmt.Sprintf("%.3f", float64(at.UnixMilli())/1000)}}
	if err := p.get("/api/v1/query", params, &data); err != nil {
		return nil, err
	}
	out := map[string][]time.Time{}
	for _, r := range data.Result {
		for _, v := range r.Values {
			if sec, ok := v[0].(float64); ok {
				out[r.Metric["instance"]] = append(out[r.Metric["instance"]], time.UnixMilli(int64(math.Round(sec*1000))))
			}
		}
	}
	return out, nil
}

// windowStart finds the start of a window that ends after the flows and in
// which every daemon's counters grow from a sample before the flows: just
// after every daemon's first scrape, with a later scrape of each still
// before the flows. It says false when the scrapes were too few.
func windowStart(times map[string][]time.Time, flows time.Time) (time.Time, bool) {
	var start time.Time
	for _, ts := range times {
		if len(ts) > 0 && ts[0].After(start) {
			start = ts[0]
		}
	}
	start = start.Add(time.Millisecond)
	for _, ts := range times {
		i := sort.Search(len(ts), func(i int) bool { return !ts[i].Before(start) })
		if i == len(ts) || !ts[i].Before(flows) {
			return start, false
		}
	}
	return start, true
}

// sitePrometheusConfig is the shipped site-remote-write.yml with the lab's
// targets and receiver, one-second intervals, site "lab", and rule files
// that are the shipped ones (the recording group evaluated every second).
func sitePrometheusConfig(t *testing.T, targets []string, receiver string) string {
	t.Helper()
	var cfg map[string]any
	readYAML(t, siteRemoteWriteFile, &cfg)
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	recording, err := os.ReadFile(recordingFile)
	if err != nil {
		t.Fatal(err)
	}
	fast := filepath.Join(t.TempDir(), "tpwatch-recording.yml")
	if err := os.WriteFile(fast, []byte(strings.ReplaceAll(string(recording), "interval: 1m", "interval: "+fleetRecordingPeriod)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg["global"] = map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s", "external_labels": map[string]any{"site": "lab"}}
	cfg["rule_files"] = []string{rules, fast}
	scrape := cfg["scrape_configs"].([]any)[0].(map[string]any)
	scrape["static_configs"] = []any{map[string]any{"targets": targets}}
	rw := cfg["remote_write"].([]any)[0].(map[string]any)
	rw["url"] = receiver
	rw["queue_config"] = map[string]any{"batch_send_deadline": "1s"}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// federationConfig is the shipped central-federation.yml pulling the site
// Prometheus every second.
func federationConfig(t *testing.T, site string) string {
	t.Helper()
	var cfg map[string]any
	readYAML(t, centralFederateFile, &cfg)
	cfg["global"] = map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"}
	scrape := cfg["scrape_configs"].([]any)[0].(map[string]any)
	scrape["static_configs"] = []any{map[string]any{"targets": []string{site}}}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// fleetQuery is one dashboard query: its panel, refId and PromQL.
type fleetQuery struct{ key, expr string }

func loadFleetDashboard(t *testing.T) []fleetQuery {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var qs []fleetQuery
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			key := p.Title + "/" + tg.RefID
			if _, ok := fleetPanels[key]; !ok {
				t.Errorf("dashboard query %s has no expectation in the fleet test: add one to fleetPanels", key)
			}
			qs = append(qs, fleetQuery{key, tg.Expr})
		}
	}
	return qs
}

// flowRate matches a rate of a flow counter in a dashboard query.
var flowRate = regexp.MustCompile(`rate\((tpwatch_(?:flows|unexpected_flows)_total\{[^}]*\})\[\$__rate_interval\]\)`)

// atWindow makes a dashboard query an instant query over window w: the
// rates of flow counters become the flows counted over w, as the tables
// count them, so that the rate panels' grouping is checked in flows.
func atWindow(expr, w string) string {
	expr = flowRate.ReplaceAllString(expr, "((increase(${1}[$$__range]) and ${1} offset $$__range) or (${1} unless ${1} offset $$__range))")
	return strings.NewReplacer("$__range", w, "$__rate_interval", w, "$site", ".*", "$instance", ".*", "$rule", ".*").Replace(expr)
}

// resultKey writes a series' labels as the expectations do: sorted k=v,
// instance as the lab's host name, without site.
func resultKey(labels map[string]string, hostOf map[string]string) string {
	var parts []string
	for k, v := range labels {
		if k == "site" || k == "__name__" {
			continue
		}
		if k == "instance" && hostOf[v] != "" {
			v = hostOf[v]
		}
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func checkPanels(t *testing.T, api promAPI, qs []fleetQuery, w string, at time.Time, hostOf map[string]string, fix func(string) string, round bool) {
	t.Helper()
	for _, q := range qs {
		want, ok := fleetPanels[q.key]
		if !ok {
			continue
		}
		expr := atWindow(q.expr, w)
		r, err := api.vector(expr, at)
		if err != nil {
			t.Errorf("%s over %s: %q: %v", q.key, w, expr, err)
			continue
		}
		if len(r) == 0 && (want.present || len(want.counts) > 0) {
			t.Errorf("%s over %s: %q returns nothing", q.key, w, expr)
			continue
		}
		if want.present {
			continue
		}
		got := map[string]float64{}
		for _, s := range r {
			v := s.Value
			if round {
				v = math.Round(v)
			}
			got[fix(resultKey(s.Labels, hostOf))] += v
		}
		for k, n := range want.counts {
			if got[k] != n {
				t.Errorf("%s over %s: %s = %v, want %v\nquery: %s", q.key, w, k, got[k], n, expr)
			}
		}
		for k, v := range got {
			if _, ok := want.counts[k]; !ok && v != 0 {
				t.Errorf("%s over %s: %s = %v, want 0\nquery: %s", q.key, w, k, v, expr)
			}
		}
	}
}

// compareStores runs every dashboard query over an hour on the site
// Prometheus and another store at the same time, and says how their
// answers differ (site labels aside). loose compares only the series, not
// the values, of the queries that do not count flows.
func compareStores(site, other promAPI, qs []fleetQuery, at time.Time, loose bool) string {
	var diff strings.Builder
	for _, q := range qs {
		tolerance := 1e-6
		if loose && fleetPanels[q.key].present {
			tolerance = math.Inf(1)
		}
		expr := atWindow(q.expr, "1h")
		a, errA := site.vector(expr, at)
		b, errB := other.vector(expr, at)
		if errA != nil || errB != nil {
			fmt.Fprintf(&diff, "%s: %v / %v\n", q.key, errA, errB)
			continue
		}
		index := func(r []promSample) map[string]float64 {
			m := map[string]float64{}
			for _, s := range r {
				m[resultKey(s.Labels, nil)] = s.Value
			}
			return m
		}
		ma, mb := index(a), index(b)
		for k, v := range ma {
			if w, ok := mb[k]; !ok || math.Abs(v-w) > tolerance*math.Max(1, math.Abs(v)) {
				fmt.Fprintf(&diff, "%s: %s is %v on the site, %v (present %v) there\n", q.key, k, v, w, ok)
			}
		}
		for k, w := range mb {
			if _, ok := ma[k]; !ok {
				fmt.Fprintf(&diff, "%s: %s is %v there, absent on the site\n", q.key, k, w)
			}
		}
	}
	return diff.String()
}

// checkFleetAlerts waits for the flow alerts of the lab and checks their
// labels, value (each flow once) and the hosts their description names.
func checkFleetAlerts(t *testing.T, api promAPI, daemons map[string]*daemonProc) {
	t.Helper()
	inst := func(name, vantage string) string { return daemons[name].addr + " (" + vantage + ")" }
	seenBy := func(s ...string) string {
		sort.Strings(s)
		return "Seen by: " + strings.Join(s, " ") + "."
	}
	type alertWant struct {
		labels map[string]string
		seenBy string
	}
	wants := []alertWant{
		{map[string]string{"alertname": "TpwatchRequiredFlowBlocked", "rule": "agent-tm-tcp", "reason": "refused"},
			seenBy(inst("agent", "client"), inst("sensor", "transit"))},
		{map[string]string{"alertname": "TpwatchRequiredFlowBlocked", "rule": "em-sql-browser", "reason": "icmp_unreachable"},
			seenBy(inst("em", "client"), inst("sensor", "transit"))},
		{map[string]string{"alertname": "TpwatchRequiredFlowBlocked", "rule": "em-agent-wmi-rpc", "reason": "no_response"},
			seenBy(inst("em", "client"), inst("sensor", "transit"))},
		{map[string]string{"alertname": "TpwatchUnexpectedFlows", "transport": "tcp", "port": "3389", "client_role": "agent", "server_role": "enterprise-manager"},
			seenBy(inst("agent", "client"), inst("em", "server"), inst("sensor", "transit"))},
		{map[string]string{"alertname": "TpwatchUnexpectedFlowsTurnedAway", "transport": "tcp", "port": "5985", "client_role": "agent", "server_role": "enterprise-manager"},
			seenBy(inst("agent", "client"), inst("em", "server"), inst("sensor", "transit"))},
	}
	type alert struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		State       string            `json:"state"`
		Value       string            `json:"value"`
	}
	// An alert's description is rendered again at each evaluation, from
	// the series there are then: wait for the one that follows the last
	// scrapes.
	var problems []string
	eventually(30*time.Second, func() bool {
		var data struct {
			Alerts []alert `json:"alerts"`
		}
		if err := api.get("/api/v1/alerts", nil, &data); err != nil {
			problems = []string{err.Error()}
			return false
		}
		problems = problems[:0]
		matched := make([]bool, len(data.Alerts))
		for _, w := range wants {
			found := false
			for i, a := range data.Alerts {
				ok := a.State == "firing"
				for k, v := range w.labels {
					ok = ok && a.Labels[k] == v
				}
				if !ok {
					continue
				}
				found, matched[i] = true, true
				var v float64
				fmt.Sscan(a.Value, &v)
				if math.Round(v) != 1 {
					problems = append(problems, fmt.Sprintf("%v: value %s, want 1 (one flow, seen by several hosts)", w.labels, a.Value))
				}
				if !strings.Contains(a.Annotations["description"], w.seenBy) {
					problems = append(problems, fmt.Sprintf("%v: description %q does not say %q", w.labels, a.Annotations["description"], w.seenBy))
				}
			}
			if !found {
				problems = append(problems, fmt.Sprintf("alert %v is not firing", w.labels))
			}
		}
		for i, a := range data.Alerts {
			if !matched[i] {
				problems = append(problems, fmt.Sprintf("alert %v is %s, and nothing in the lab should raise it (value %s): %v", a.Labels, a.State, a.Value, a.Annotations))
			}
		}
		return len(problems) == 0
	})
	for _, p := range problems {
		t.Error(p)
	}
}

// fetchMetrics returns an exposition and its number of series.
func fetchMetrics(t *testing.T, url string) (string, int) {
	t.Helper()
	s, err := scrape(url)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body), len(s)
}
