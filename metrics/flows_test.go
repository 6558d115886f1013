package metrics

import (
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/policy"
)

var (
	testRuleIDs  = []string{"agent-em-grpc", "em-agent-wmi-rpc"}
	testRuleInfo = []RuleInfo{
		{Client: "agent", Server: "enterprise-manager", Transport: "tcp", Ports: "3741"},
		{Client: "enterprise-manager", Server: "agent", Transport: "tcp", Ports: "135", Feature: "wmi-auto-deploy"},
	}
)

func roles(rs ...policy.Role) policy.RoleSet {
	var s policy.RoleSet
	for _, r := range rs {
		s = s.With(r)
	}
	return s
}

func record(rule int32, v classifier.Verdict, why classifier.Reason) classifier.FlowRecord {
	return classifier.FlowRecord{
		First: 1_700_000_000_000_000_000, Last: 1_700_000_000_500_000_000,
		Transport: policy.TCP, ClientPort: 50000, ServerPort: 3741,
		ClientRoles: roles(policy.Agent), ServerRoles: roles(policy.EnterpriseManager),
		Rule: rule, Verdict: v, Reason: why,
	}
}

func newTestCounters() *FlowCounters {
	c := NewFlowCounters(testRuleIDs)
	c.SetRules(testRuleIDs, testRuleInfo)
	return c
}

func TestFlowCountersGather(t *testing.T) {
	c := newTestCounters()

	allowed := record(0, classifier.Allowed, classifier.ReasonNone)
	earlier := allowed
	earlier.Last -= 60e9 // a shard reporting late must not move the time back
	refused := record(0, classifier.Blocked, classifier.Refused)
	unauthorized := record(0, classifier.Unexpected, classifier.UnauthorizedClient)
	unauthorized.ClientRoles, unauthorized.Outcome = 0, classifier.OutcomeWorked
	featureOff := record(1, classifier.Unexpected, classifier.FeatureDisabled)
	featureOff.ServerPort = 135
	featureOff.ClientRoles, featureOff.ServerRoles = roles(policy.EnterpriseManager), roles(policy.Agent)
	featureOff.Outcome = classifier.OutcomeRefused
	noRule := record(-1, classifier.Unexpected, classifier.NoRule)
	noRule.ServerPort, noRule.Outcome = 4444, classifier.OutcomeNoResponse
	noRule.ClientRoles = roles(policy.SQLServer, policy.Agent)
	ignored := record(1, classifier.Ignored, classifier.Refused) // rule and reason must not show
	undecided := record(0, classifier.VerdictUndecided, classifier.ReasonNone)
	bogus := record(0, classifier.Verdict(200), classifier.Reason(200))
	outOfRange := record(99, classifier.Blocked, classifier.NoResponse)

	for _, r := range []classifier.FlowRecord{allowed, earlier, refused, unauthorized, featureOff, noRule, ignored, undecided, bogus, outOfRange} {
		c.Observe(&r)
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	const want = `
# HELP tpwatch_flows_total Flows by verdict, reason, matrix rule and vantage (client, server or transit: where this exporter saw them), counted once when the verdict is decided.
# TYPE tpwatch_flows_total counter
tpwatch_flows_total{reason="",rule="",vantage="transit",verdict="ignored"} 1
tpwatch_flows_total{reason="not_product",rule="",vantage="transit",verdict="ignored"} 0
tpwatch_flows_total{reason="site_ignore",rule="",vantage="transit",verdict="ignored"} 0
tpwatch_flows_total{reason="own_traffic",rule="",vantage="transit",verdict="ignored"} 0
tpwatch_flows_total{reason="no_rule",rule="",vantage="transit",verdict="unexpected"} 1
tpwatch_flows_total{reason="no_response",rule="",vantage="transit",verdict="blocked"} 1
tpwatch_flows_total{reason="",rule="agent-em-grpc",vantage="transit",verdict="allowed"} 2
tpwatch_flows_total{reason="refused",rule="agent-em-grpc",vantage="transit",verdict="blocked"} 1
tpwatch_flows_total{reason="icmp_unreachable",rule="agent-em-grpc",vantage="transit",verdict="blocked"} 0
tpwatch_flows_total{reason="no_response",rule="agent-em-grpc",vantage="transit",verdict="blocked"} 0
tpwatch_flows_total{reason="unauthorized_client",rule="agent-em-grpc",vantage="transit",verdict="unexpected"} 1
tpwatch_flows_total{reason="",rule="em-agent-wmi-rpc",vantage="transit",verdict="allowed"} 0
tpwatch_flows_total{reason="refused",rule="em-agent-wmi-rpc",vantage="transit",verdict="blocked"} 0
tpwatch_flows_total{reason="icmp_unreachable",rule="em-agent-wmi-rpc",vantage="transit",verdict="blocked"} 0
tpwatch_flows_total{reason="no_response",rule="em-agent-wmi-rpc",vantage="transit",verdict="blocked"} 0
tpwatch_flows_total{reason="feature_disabled",rule="em-agent-wmi-rpc",vantage="transit",verdict="unexpected"} 1
tpwatch_flows_total{reason="unauthorized_client",rule="em-agent-wmi-rpc",vantage="transit",verdict="unexpected"} 0
# HELP tpwatch_rule_last_working_timestamp_seconds Packet time of the last allowed flow of the rule (only rules seen working).
# TYPE tpwatch_rule_last_working_timestamp_seconds gauge
tpwatch_rule_last_working_timestamp_seconds{rule="agent-em-grpc"} 1.7000000005e+09
# HELP tpwatch_rule_info Every rule of the matrix in force, with value 1.
# TYPE tpwatch_rule_info gauge
tpwatch_rule_info{client="agent",feature="",ports="3741",rule="agent-em-grpc",server="enterprise-manager",transport="tcp"} 1
tpwatch_rule_info{client="enterprise-manager",feature="wmi-auto-deploy",ports="135",rule="em-agent-wmi-rpc",server="agent",transport="tcp"} 1
# HELP tpwatch_unexpected_flows_total Unexpected flows by transport, server port, roles, outcome (worked: the client got in; refused, no_response, icmp_unreachable: it was turned away; unknown) and vantage; port is "other" once the series cap is reached.
# TYPE tpwatch_unexpected_flows_total counter
tpwatch_unexpected_flows_total{client_role="none",outcome="worked",port="3741",server_role="enterprise-manager",transport="tcp",vantage="transit"} 1
tpwatch_unexpected_flows_total{client_role="enterprise-manager",outcome="refused",port="135",server_role="agent",transport="tcp",vantage="transit"} 1
tpwatch_unexpected_flows_total{client_role="agent+sql-server",outcome="no_response",port="4444",server_role="enterprise-manager",transport="tcp",vantage="transit"} 1
# HELP tpwatch_unexpected_series_capped_total Unexpected flows counted under port="other" because the series cap was reached.
# TYPE tpwatch_unexpected_series_capped_total counter
tpwatch_unexpected_series_capped_total 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestFlowCountersSetRulesKeepsCountsByID(t *testing.T) {
	c := newTestCounters()
	for _, r := range []classifier.FlowRecord{
		record(0, classifier.Allowed, classifier.ReasonNone),
		record(1, classifier.Blocked, classifier.Refused),
		record(-1, classifier.Ignored, classifier.ReasonNone),
	} {
		c.Observe(&r)
	}

	// The reload drops em-agent-wmi-rpc, adds a rule and moves agent-em-grpc
	// to index 1.
	c.SetRules([]string{"am-agent", "agent-em-grpc"}, []RuleInfo{
		{Client: "activity-monitor", Server: "agent", Transport: "tcp", Ports: "4498"},
		testRuleInfo[0],
	})
	again := record(1, classifier.Allowed, classifier.ReasonNone)
	again.Last += 10e9
	c.Observe(&again)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	const want = `
# HELP tpwatch_flows_total Flows by verdict, reason, matrix rule and vantage (client, server or transit: where this exporter saw them), counted once when the verdict is decided.
# TYPE tpwatch_flows_total counter
tpwatch_flows_total{reason="",rule="",vantage="transit",verdict="ignored"} 1
tpwatch_flows_total{reason="not_product",rule="",vantage="transit",verdict="ignored"} 0
tpwatch_flows_total{reason="site_ignore",rule="",vantage="transit",verdict="ignored"} 0
tpwatch_flows_total{reason="own_traffic",rule="",vantage="transit",verdict="ignored"} 0
tpwatch_flows_total{reason="no_rule",rule="",vantage="transit",verdict="unexpected"} 0
tpwatch_flows_total{reason="",rule="agent-em-grpc",vantage="transit",verdict="allowed"} 2
tpwatch_flows_total{reason="refused",rule="agent-em-grpc",vantage="transit",verdict="blocked"} 0
tpwatch_flows_total{reason="icmp_unreachable",rule="agent-em-grpc",vantage="transit",verdict="blocked"} 0
tpwatch_flows_total{reason="no_response",rule="agent-em-grpc",vantage="transit",verdict="blocked"} 0
tpwatch_flows_total{reason="unauthorized_client",rule="agent-em-grpc",vantage="transit",verdict="unexpected"} 0
tpwatch_flows_total{reason="",rule="am-agent",vantage="transit",verdict="allowed"} 0
tpwatch_flows_total{reason="refused",rule="am-agent",vantage="transit",verdict="blocked"} 0
tpwatch_flows_total{reason="icmp_unreachable",rule="am-agent",vantage="transit",verdict="blocked"} 0
tpwatch_flows_total{reason="no_response",rule="am-agent",vantage="transit",verdict="blocked"} 0
tpwatch_flows_total{reason="unauthorized_client",rule="am-agent",vantage="transit",verdict="unexpected"} 0
# HELP tpwatch_rule_last_working_timestamp_seconds Packet time of the last allowed flow of the rule (only rules seen working).
# TYPE tpwatch_rule_last_working_timestamp_seconds gauge
tpwatch_rule_last_working_timestamp_seconds{rule="agent-em-grpc"} 1.7000000105e+09
# HELP tpwatch_rule_info Every rule of the matrix in force, with value 1.
# TYPE tpwatch_rule_info gauge
tpwatch_rule_info{client="activity-monitor",feature="",ports="4498",rule="am-agent",server="agent",transport="tcp"} 1
tpwatch_rule_info{client="agent",feature="",ports="3741",rule="agent-em-grpc",server="enterprise-manager",transport="tcp"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"tpwatch_flows_total", "tpwatch_rule_last_working_timestamp_seconds", "tpwatch_rule_info"); err != nil {
		t.Error(err)
	}
}

func TestFlowCountersDuplicateAndEmptyIDsStayGatherable(t *testing.T) {
	c := NewFlowCounters([]string{"a", "a", ""})
	for _, rule := range []int32{0, 1, 2} {
		r := record(rule, classifier.Blocked, classifier.Refused)
		c.Observe(&r)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("gather: %v", err)
	}
	got, ok := seriesValue(t, reg, "tpwatch_flows_total", map[string]string{"rule": "a", "verdict": "blocked", "reason": "refused", "vantage": "transit"})
	if !ok || got != 2 {
		t.Errorf("rule a blocked/refused = %v (found %v), want 2: both indexes of the duplicate id", got, ok)
	}
	got, _ = seriesValue(t, reg, "tpwatch_flows_total", map[string]string{"rule": "", "verdict": "blocked", "reason": "refused", "vantage": "transit"})
	if got != 1 {
		t.Errorf("empty rule id blocked/refused = %v, want 1 under rule=\"\"", got)
	}
}

// seriesValue gathers g and returns the value of the series of family name
// with exactly these labels.
func seriesValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; !ok || v != lp.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			}
		}
	}
	return 0, false
}

func TestFlowCountersConcurrentObserveAndReload(t *testing.T) {
	c := newTestCounters()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	const perWorker = 20000
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			r := record(0, classifier.Blocked, classifier.NoResponse)
			for range perWorker {
				c.Observe(&r)
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			// Alternate the order; agent-em-grpc stays at index 0 so the
			// workers' records keep meaning the same rule.
			ids := []string{"agent-em-grpc", "em-agent-wmi-rpc"}
			if i%2 == 1 {
				ids = ids[:1]
			}
			c.SetRules(ids, nil)
			if _, err := reg.Gather(); err != nil {
				t.Errorf("gather during reload: %v", err)
			}
		}
	})
	wg.Wait()
	got, _ := seriesValue(t, reg, "tpwatch_flows_total", map[string]string{"rule": "agent-em-grpc", "verdict": "blocked", "reason": "no_response", "vantage": "transit"})
	if got != 2*perWorker {
		t.Errorf("blocked/no_response = %v, want %d: reloads lost increments", got, 2*perWorker)
	}
}

func TestObserveDoesNotAllocate(t *testing.T) {
	c := newTestCounters()
	for name, r := range map[string]classifier.FlowRecord{
		"allowed": record(0, classifier.Allowed, classifier.ReasonNone),
		"blocked": record(1, classifier.Blocked, classifier.ICMPUnreachable),
		"ignored": record(-1, classifier.Ignored, classifier.ReasonNone),
		"pending": record(0, classifier.Pending, classifier.ReasonNone),
		"no-rule": record(-1, classifier.Blocked, classifier.Refused),
	} {
		if n := testing.AllocsPerRun(1000, func() { c.Observe(&r) }); n != 0 {
			t.Errorf("Observe(%s) allocates %v times per call, want 0", name, n)
		}
	}
}

func BenchmarkObserve(b *testing.B) {
	for _, bc := range []struct {
		name string
		r    classifier.FlowRecord
	}{
		{"allowed", record(0, classifier.Allowed, classifier.ReasonNone)},
		{"blocked", record(1, classifier.Blocked, classifier.Refused)},
		{"unexpected", record(0, classifier.Unexpected, classifier.UnauthorizedClient)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := newTestCounters()
			b.ReportAllocs()
			for b.Loop() {
				c.Observe(&bc.r)
			}
		})
	}
}

// TestFlowsByVantage: a flow is counted under the vantage it was seen
// from, and the zero series are those of the vantages this exporter sees
// from (a host daemon: client and server).
func TestFlowsByVantage(t *testing.T) {
	c := newTestCounters()
	c.SetZeroVantages(classifier.VantageClient, classifier.VantageServer)
	r := record(0, classifier.Blocked, classifier.NoResponse)
	r.Vantage = classifier.VantageClient
	c.Observe(&r)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	for _, tt := range []struct {
		vantage string
		want    float64
		found   bool
	}{{"client", 1, true}, {"server", 0, true}, {"transit", 0, false}} {
		v, ok := seriesValue(t, reg, "tpwatch_flows_total", map[string]string{"rule": "agent-em-grpc", "verdict": "blocked", "reason": "no_response", "vantage": tt.vantage})
		if v != tt.want || ok != tt.found {
			t.Errorf("vantage %s: %v (exported %v), want %v (exported %v)", tt.vantage, v, ok, tt.want, tt.found)
		}
	}
}

// TestZeroSeriesOfAHost: a host exports at zero the client series of the
// rules whose client role it holds and the server series of those whose
// server role it holds; rule "" for both; a flow outside that set still
// shows.
func TestZeroSeriesOfAHost(t *testing.T) {
	rules := []policy.Rule{
		{ID: "agent-em-grpc", Client: policy.Agent, Server: policy.EnterpriseManager, Transport: policy.TCP, Ports: []policy.PortRange{{Low: 3741, High: 3741}}},
		{ID: "em-agent-rpc", Client: policy.EnterpriseManager, Server: policy.Agent, Transport: policy.TCP, Ports: []policy.PortRange{{Low: 135, High: 135}}},
		{ID: "any-em-https", AnyClient: true, Server: policy.EnterpriseManager, Transport: policy.TCP, Ports: []policy.PortRange{{Low: 443, High: 443}}},
	}
	ids, info := RulesOf(rules)
	c := NewFlowCounters(ids)
	c.SetRules(ids, info)
	c.SetZeroVantages(classifier.VantageClient, classifier.VantageServer)
	c.SetHostRoles(func() policy.RoleSet { return roles(policy.Agent) })
	late := classifier.FlowRecord{Rule: 0, Verdict: classifier.Allowed, Vantage: classifier.VantageServer, Last: 1}
	c.Observe(&late) // an agent seen as the server of agent-em-grpc: odd, but it counts
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	for _, tt := range []struct {
		rule, vantage string
		found         bool
	}{
		{"agent-em-grpc", "client", true},
		{"agent-em-grpc", "server", true}, // its flow
		{"em-agent-rpc", "client", false},
		{"em-agent-rpc", "server", true},
		{"any-em-https", "client", true},
		{"any-em-https", "server", false},
		{"", "client", true},
		{"", "server", true},
	} {
		verdict := "allowed"
		if tt.rule == "" {
			verdict = "ignored"
		}
		_, ok := seriesValue(t, reg, "tpwatch_flows_total", map[string]string{"rule": tt.rule, "verdict": verdict, "reason": "", "vantage": tt.vantage})
		if ok != tt.found {
			t.Errorf("rule %q vantage %s: exported %v, want %v", tt.rule, tt.vantage, ok, tt.found)
		}
	}
}
