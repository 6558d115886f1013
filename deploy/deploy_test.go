// Package deploy_test tests the deployment files: the Grafana dashboard, the Prometheus
// rules and config, and the systemd unit. They check the files against the
// metrics tpwatch really exports (gathered from the metrics package), and
// run promtool and systemd-analyze where those are installed.
package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/metrics"
	"github.com/tpwatch/tpwatch/pipeline"
	"github.com/tpwatch/tpwatch/policy"

	"github.com/tpwatch/tpwatch/internal/testenv"
)

func run(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// exporterFamilies gathers every metric tpwatch exports, each collector
// holding values, as a running daemon would.
func exporterFamilies(t *testing.T) []*dto.MetricFamily {
	t.Helper()
	ids := []string{"agent-em-grpc", "em-agent-wmi-rpc"}
	flows := metrics.NewFlowCounters(ids)
	flows.SetRules(ids, []metrics.RuleInfo{
		{Client: "agent", Server: "enterprise-manager", Transport: "tcp", Ports: "3741"},
		{Client: "enterprise-manager", Server: "agent", Transport: "tcp", Ports: "135", Feature: "wmi-auto-deploy"},
	})
	for _, r := range []classifier.FlowRecord{
		{Rule: 0, Verdict: classifier.Allowed, Last: time.Now().UnixNano()},
		{Rule: 0, Verdict: classifier.Blocked, Reason: classifier.Refused},
		{Rule: 1, Verdict: classifier.Unexpected, Reason: classifier.FeatureDisabled,
			Transport: policy.TCP, ServerPort: 135,
			ClientRoles: policy.RoleSet(0).With(policy.EnterpriseManager), ServerRoles: policy.RoleSet(0).With(policy.Agent)},
		{Rule: -1, Verdict: classifier.Ignored},
	} {
		flows.Observe(&r)
	}
	reload := &metrics.ReloadStatus{}
	reload.Success(time.Now())
	reg, err := metrics.NewRegistry(metrics.Exporter{
		Version: "test", Revision: "test",
		Host:  func() metrics.HostInfo { return metrics.HostInfo{Roles: "enterprise-manager", Vantage: "auto"} },
		Flows: flows,
		Captures: func() map[string]metrics.CaptureStats {
			return map[string]metrics.CaptureStats{"eth0": {Counts: pipeline.Counts{Records: 100, Bytes: 9000}, KernelDrops: 1, Up: true}}
		},
		Table:               func() classifier.Stats { return classifier.Stats{Active: 3, Capacity: 1024} },
		Inventory:           func() policy.InventoryStats { return policy.InventoryStats{Hosts: 2} },
		Reloads:             reload,
		SuppressedLogEvents: &metrics.SuppressedLogEvents{},
	})
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	return mfs
}

// exportedLabels maps each exported metric name to its label names, plus
// the target labels Prometheus adds.
func exportedLabels(t *testing.T) map[string][]string {
	labels := map[string][]string{}
	for _, mf := range exporterFamilies(t) {
		// site: an optional target or external label that keeps the
		// sites of a central Prometheus apart.
		names := []string{"instance", "job", "site"}
		for _, lp := range mf.GetMetric()[0].GetLabel() {
			names = append(names, lp.GetName())
		}
		labels[mf.GetName()] = names
	}
	return labels
}

// dashboard is the part of the Grafana model the tests read.
type dashboard struct {
	SchemaVersion int    `json:"schemaVersion"`
	UID           string `json:"uid"`
	Title         string `json:"title"`
	Templating    struct {
		List []struct {
			Name       string      `json:"name"`
			Type       string      `json:"type"`
			Query      any         `json:"query"`
			Datasource *datasource `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int                       `json:"id"`
	Type       string                    `json:"type"`
	Title      string                    `json:"title"`
	Datasource *datasource               `json:"datasource"`
	GridPos    *struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		RefID        string      `json:"refId"`
		Expr         string      `json:"expr"`
		LegendFormat string      `json:"legendFormat"`
		Datasource   *datasource `json:"datasource"`
	} `json:"targets"`
}

const dashboardDatasource = "${datasource}"

// The dashboards deploy/ ships: the live one, and the one for the
// textfile of a replayed capture.
const (
	liveDashboard    = "grafana/tpwatch.json"
	captureDashboard = "grafana/tpwatch-capture.json"
)

func loadDashboard(t *testing.T, path string) dashboard {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var d dashboard
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return d
}

var (
	identRE           = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	byRE              = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	legendRE          = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
	annotationLabelRE = regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)
	matchRE           = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"`)
)

// checkExpr checks that expr reads only exported metrics (or, when allowed,
// extra ones such as up) and groups, matches and labels legends only by
// labels those metrics have.
func checkExpr(t *testing.T, where, expr, legend string, exported map[string][]string, extra ...string) {
	t.Helper()
	labelOK := map[string]bool{}
	var used []string
	for _, id := range identRE.FindAllString(expr, -1) {
		if !strings.HasPrefix(id, "tpwatch_") && !slices.Contains(extra, id) {
			continue
		}
		if slices.Contains(extra, id) {
			labelOK["instance"], labelOK["job"] = true, true
			used = append(used, id)
			continue
		}
		names, ok := exported[id]
		if !ok {
			t.Errorf("%s: %s is not a metric tpwatch exports", where, id)
			continue
		}
		used = append(used, id)
		for _, n := range names {
			labelOK[n] = true
		}
	}
	if len(used) == 0 {
		t.Errorf("%s: %q reads no tpwatch metric", where, expr)
		return
	}
	var labels []string
	for _, m := range byRE.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(m[1], ",") {
			labels = append(labels, strings.TrimSpace(l))
		}
	}
	for _, m := range matchRE.FindAllStringSubmatch(expr, -1) {
		labels = append(labels, m[1])
	}
	for _, m := range legendRE.FindAllStringSubmatch(legend, -1) {
		labels = append(labels, m[1])
	}
	for _, l := range labels {
		if l != "" && !labelOK[l] {
			t.Errorf("%s: label %q is not a label of %v", where, l, used)
		}
	}
}

func TestDashboardStructure(t *testing.T) {
	uids := map[string]string{}
	for _, path := range []string{liveDashboard, captureDashboard} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			d := checkDashboard(t, path)
			if prev, dup := uids[d.UID]; dup {
				t.Errorf("uid %q is also %s's: Grafana would replace one by the other", d.UID, prev)
			}
			uids[d.UID] = path
		})
	}
}

// checkDashboard checks a dashboard's variables and panels against the
// metrics tpwatch exports.
func checkDashboard(t *testing.T, path string) dashboard {
	d := loadDashboard(t, path)
	exported := exportedLabels(t)

	if d.SchemaVersion < 36 || d.UID == "" || d.Title == "" {
		t.Errorf("schemaVersion %d, uid %q, title %q: want schemaVersion >= 36 and a uid and title", d.SchemaVersion, d.UID, d.Title)
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		switch v.Name {
		case "datasource":
			if v.Type != "datasource" || v.Query != "prometheus" {
				t.Errorf("variable datasource: type %q query %v, want a prometheus data source variable", v.Type, v.Query)
			}
		default:
			if v.Datasource == nil || v.Datasource.UID != dashboardDatasource {
				t.Errorf("variable %s does not query %s", v.Name, dashboardDatasource)
			}
			q, _ := v.Query.(string)
			if !strings.HasPrefix(q, "label_values(") {
				t.Errorf("variable %s: query %v, want label_values(...)", v.Name, v.Query)
				continue
			}
			checkExpr(t, "variable "+v.Name, strings.TrimSuffix(strings.TrimPrefix(q, "label_values("), ")"), "", exported)
		}
	}
	required := []string{"datasource", "instance", "rule"}
	if filepath.Base(path) == "tpwatch.json" {
		required = append(required, "site") // the fleet dashboard
	}
	for _, name := range required {
		if !vars[name] {
			t.Errorf("variable %s missing", name)
		}
	}

	if len(d.Panels) == 0 {
		t.Fatal("no panels")
	}
	ids := map[int]string{}
	for _, p := range d.Panels {
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if prev, dup := ids[p.ID]; dup || p.ID <= 0 {
			t.Errorf("%s: id not unique and positive (also %q)", where, prev)
		}
		ids[p.ID] = p.Title
		if p.Datasource == nil || p.Datasource.UID != dashboardDatasource || p.Datasource.Type != "prometheus" {
			t.Errorf("%s: datasource %+v, want prometheus %s", where, p.Datasource, dashboardDatasource)
		}
		if p.GridPos == nil || p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("%s: bad gridPos %+v", where, p.GridPos)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no queries", where)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if refs[tg.RefID] || tg.RefID == "" {
				t.Errorf("%s: refId %q empty or repeated", where, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource != nil && tg.Datasource.UID != dashboardDatasource {
				t.Errorf("%s %s: datasource %+v, want %s", where, tg.RefID, tg.Datasource, dashboardDatasource)
			}
			checkExpr(t, where+" "+tg.RefID, tg.Expr, tg.LegendFormat, exported)
		}
	}
	return d
}

// grafanaVars replaces the dashboard's variables by what Grafana would put
// there with "All" selected over a one-hour range.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "2m",
	"$__interval", "1m",
	"$__range", "1h",
	"$instance", ".*",
	"$rule", ".*",
	"$site", ".*",
)

// TestDashboardQueriesReturnData turns every dashboard query into an alert
// that fires when the query returns something, feeds promtool's rule unit
// test two hours of the series a running tpwatch exports, and expects every
// alert to fire: each query parses and returns data.
func TestDashboardQueriesReturnData(t *testing.T) {
	promtool := testenv.Tool(t, "promtool", "prometheus")
	d := loadDashboard(t, liveDashboard)
	dir := t.TempDir()

	var rules, tests strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	tests.WriteString("rule_files: [dashboard-rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n")
	for _, mf := range exporterFamilies(t) {
		for _, m := range mf.GetMetric() {
			labels := []string{`instance="h1"`, `job="tpwatch"`}
			for _, lp := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			// Counters grow by their value each minute, gauges hold it.
			values := fmt.Sprintf("%gx120", m.GetGauge().GetValue())
			if mf.GetType() == dto.MetricType_COUNTER {
				values = fmt.Sprintf("0+%gx120", m.GetCounter().GetValue())
			}
			fmt.Fprintf(&tests, "      - series: '%s{%s}'\n        values: '%s'\n", mf.GetName(), strings.Join(labels, ","), values)
		}
	}
	tests.WriteString("    alert_rule_test:\n")
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			name := fmt.Sprintf("Panel%d%s", p.ID, tg.RefID)
			expr, _ := json.Marshal("count(" + grafanaVars.Replace(tg.Expr) + ") > 0")
			fmt.Fprintf(&rules, "      - alert: %s\n        expr: %s\n", name, expr)
			fmt.Fprintf(&tests, "      - eval_time: 2h\n        alertname: %s\n        exp_alerts: [{exp_labels: {}}]\n", name)
		}
	}
	for name, text := range map[string]string{"dashboard-rules.yml": rules.String(), "dashboard.test.yml": tests.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, dir, promtool, "check", "rules", "dashboard-rules.yml")
	run(t, dir, promtool, "test", "rules", "dashboard.test.yml")
}

// ruleFile is the part of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type ruleTestFile struct {
	Tests []struct {
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func decodeYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

var requiredAlerts = []string{
	"TpwatchRequiredFlowBlocked", "TpwatchRequiredFlowNotSeenWorking", "TpwatchUnexpectedFlows", "TpwatchUnexpectedFlowsTurnedAway",
	"TpwatchCaptureDropping", "TpwatchCaptureDown", "TpwatchExporterDown",
}

// TestAlertRulesAreCovered checks, without promtool, that the rules read
// exported metrics and that the unit tests make every alert both fire and
// stay quiet.
func TestAlertRulesAreCovered(t *testing.T) {
	var rf ruleFile
	decodeYAML(t, "prometheus/tpwatch-rules.yml", &rf)
	var tf ruleTestFile
	decodeYAML(t, "prometheus/tpwatch-rules.test.yml", &tf)
	exported := exportedLabels(t)

	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tf.Tests {
		for _, at := range tc.AlertRuleTest {
			if len(at.ExpAlerts) > 0 {
				fires[at.Alertname] = true
			} else {
				quiet[at.Alertname] = true
			}
		}
	}
	var alerts []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			// The annotations' $labels.x must be labels of the result.
			var used strings.Builder
			for _, m := range annotationLabelRE.FindAllStringSubmatch(r.Annotations["summary"]+r.Annotations["description"], -1) {
				fmt.Fprintf(&used, "{{%s}} ", m[1])
			}
			checkExpr(t, "alert "+r.Alert, r.Expr, used.String(), exported, "up")
			if !fires[r.Alert] || !quiet[r.Alert] {
				t.Errorf("alert %s: tested firing %v, not firing %v; want both", r.Alert, fires[r.Alert], quiet[r.Alert])
			}
		}
	}
	sort.Strings(alerts)
	for _, want := range requiredAlerts {
		if !slices.Contains(alerts, want) {
			t.Errorf("alert %s missing", want)
		}
	}
}

func TestPromtoolRules(t *testing.T) {
	promtool := testenv.Tool(t, "promtool", "prometheus")
	run(t, "prometheus", promtool, "check", "rules", "tpwatch-rules.yml")
	run(t, "prometheus", promtool, "test", "rules", "tpwatch-rules.test.yml")
	run(t, "prometheus", promtool, "check", "config", "prometheus.yml")
}

// TestSystemdUnit runs systemd-analyze verify on the unit. It skips where
// systemd-analyze is missing, under CI too: CI containers may lack systemd.
// The unit's binary is not installed here, so a copy points at a stand-in.
func TestSystemdUnit(t *testing.T) {
	// Optional even under CI: containers and CI machines often run
	// without systemd.
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skipf("systemd-analyze not installed: %v", err)
	}
	unit, err := os.ReadFile("systemd/tpwatch.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ExecStart=/usr/local/bin/tpwatch run --config /etc/tpwatch/site.yaml",
		"DynamicUser=yes", "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN",
		"CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN", "NoNewPrivileges=yes",
		"ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
		"ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure",
	} {
		if !bytes.Contains(unit, []byte("\n"+want)) {
			t.Errorf("unit lacks %q", want)
		}
	}

	dir := t.TempDir()
	stub := filepath.Join(dir, "tpwatch")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(dir, "tpwatch.service")
	if err := os.WriteFile(copyPath, bytes.ReplaceAll(unit, []byte("/usr/local/bin/tpwatch"), []byte(stub)), 0o644); err != nil {
		t.Fatal(err)
	}
	// verify exits 0 on unknown keys and bad values, which it only prints:
	// any output is a failure.
	out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
