package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/policy"
)

func TestUnexpectedSeriesAreCapped(t *testing.T) {
	const flows = 10000
	for _, limit := range []int{DefaultUnexpectedSeriesLimit, 7} {
		c := NewFlowCounters(testRuleIDs)
		if limit != DefaultUnexpectedSeriesLimit {
			c.SetUnexpectedSeriesLimit(limit)
		}
		for port := range flows {
			r := record(-1, classifier.Unexpected, classifier.NoRule)
			r.ServerPort, r.Outcome = uint16(1024+port), classifier.OutcomeWorked
			c.Observe(&r)
		}
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c)

		series, err := testutil.GatherAndCount(reg, "tpwatch_unexpected_flows_total")
		if err != nil {
			t.Fatal(err)
		}
		if series > limit+1 {
			t.Errorf("limit %d: %d unexpected series, want at most %d", limit, series, limit+1)
		}
		other, ok := seriesValue(t, reg, "tpwatch_unexpected_flows_total", map[string]string{
			"transport": "tcp", "port": "other", "client_role": "agent", "server_role": "enterprise-manager", "outcome": "worked", "vantage": "transit",
		})
		if !ok || other != flows-float64(limit) {
			t.Errorf("limit %d: port=\"other\" = %v (found %v), want %d", limit, other, ok, flows-limit)
		}
		capped, _ := seriesValue(t, reg, "tpwatch_unexpected_series_capped_total", map[string]string{})
		if capped != flows-float64(limit) {
			t.Errorf("limit %d: capped = %v, want %d", limit, capped, flows-limit)
		}
		// A port that got its own series before the cap keeps counting there.
		first := record(-1, classifier.Unexpected, classifier.NoRule)
		first.ServerPort, first.Outcome = 1024, classifier.OutcomeWorked
		c.Observe(&first)
		if v, _ := seriesValue(t, reg, "tpwatch_unexpected_flows_total", map[string]string{
			"transport": "tcp", "port": "1024", "client_role": "agent", "server_role": "enterprise-manager", "outcome": "worked", "vantage": "transit",
		}); v != 2 {
			t.Errorf("limit %d: port 1024 = %v after a second flow, want 2", limit, v)
		}
	}
}

// TestUnexpectedOutcomesAreSeries: a client that got in and one that was
// turned away are two series, for two alerts.
func TestUnexpectedOutcomesAreSeries(t *testing.T) {
	c := NewFlowCounters(testRuleIDs)
	for _, o := range []classifier.Outcome{classifier.OutcomeWorked, classifier.OutcomeRefused, classifier.OutcomeRefused} {
		r := record(0, classifier.Unexpected, classifier.UnauthorizedClient)
		r.Outcome = o
		c.Observe(&r)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	for outcome, want := range map[string]float64{"worked": 1, "refused": 2} {
		if v, ok := seriesValue(t, reg, "tpwatch_unexpected_flows_total", map[string]string{
			"transport": "tcp", "port": "3741", "client_role": "agent", "server_role": "enterprise-manager", "outcome": outcome, "vantage": "transit",
		}); !ok || v != want {
			t.Errorf("outcome %s: %v (found %v), want %v", outcome, v, ok, want)
		}
	}
}

func TestRoleSetName(t *testing.T) {
	for _, tc := range []struct {
		set  policy.RoleSet
		want string
	}{
		{0, "none"},
		{roles(policy.Agent), "agent"},
		// Role order, not insertion order.
		{roles(policy.SQLServer, policy.EnterpriseManager), "enterprise-manager+sql-server"},
		{roles(policy.SIEM, policy.Agent, policy.Panzura), "agent+panzura+siem"},
		// Bit 0 and bits past the last role name no role.
		{1 | 1<<30, "none"},
	} {
		if got := RoleSetLabel(tc.set); got != tc.want {
			t.Errorf("RoleSetLabel(%#x) = %q, want %q", uint32(tc.set), got, tc.want)
		}
	}
}
