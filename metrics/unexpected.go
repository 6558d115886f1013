package metrics

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/policy"
)

// DefaultUnexpectedSeriesLimit is the default cap on distinct label sets of
// tpwatch_unexpected_flows_total. Users of flow exporters without such a cap
// have run Prometheus out of memory; 500 is plenty for a site's real
// misconfigurations and small for a port scan.
const DefaultUnexpectedSeriesLimit = 500

// otherPort is the port label of unexpected flows past the cap.
const otherPort = "other"

// unexpectedKey is a label set of tpwatch_unexpected_flows_total, kept as
// values so it is a map key without allocation. capped replaces the port.
type unexpectedKey struct {
	transport      policy.Transport
	port           uint16
	capped         bool
	client, server policy.RoleSet
	outcome        classifier.Outcome
	vantage        classifier.Vantage
}

type unexpectedCount struct {
	labels [6]string // transport, port, client_role, server_role, outcome, vantage
	n      uint64
}

// unexpectedSeries counts unexpected flows by transport, server port and
// role sets. Once limit label sets exist, new ones get port="other": the
// (transport, roles) part is bounded by the inventory, the port is not.
type unexpectedSeries struct {
	mu     sync.Mutex
	limit  int
	series map[unexpectedKey]*unexpectedCount
	capped atomic.Uint64

	flowsDesc, cappedDesc *prometheus.Desc
}

func newUnexpectedSeries(limit int) *unexpectedSeries {
	return &unexpectedSeries{
		limit:  limit,
		series: make(map[unexpectedKey]*unexpectedCount),
		flowsDesc: prometheus.NewDesc("tpwatch_unexpected_flows_total",
			"Unexpected flows by transport, server port, roles, outcome (worked: the client got in; refused, no_response, icmp_unreachable: it was turned away; unknown) and vantage; port is \"other\" once the series cap is reached.",
			[]string{"transport", "port", "client_role", "server_role", "outcome", "vantage"}, nil),
		cappedDesc: prometheus.NewDesc("tpwatch_unexpected_series_capped_total",
			"Unexpected flows counted under port=\"other\" because the series cap was reached.",
			nil, nil),
	}
}

func (u *unexpectedSeries) setLimit(n int) {
	u.mu.Lock()
	u.limit = n
	u.mu.Unlock()
}

func (u *unexpectedSeries) observe(r *classifier.FlowRecord) {
	key := unexpectedKey{transport: r.Transport, port: r.ServerPort, client: r.ClientRoles, server: r.ServerRoles, outcome: r.Outcome, vantage: r.Vantage}
	u.mu.Lock()
	defer u.mu.Unlock()
	s, ok := u.series[key]
	if !ok && len(u.series) >= u.limit {
		key.port, key.capped = 0, true
		s, ok = u.series[key]
		u.capped.Add(1)
	}
	if !ok {
		port := otherPort
		if !key.capped {
			port = strconv.Itoa(int(key.port))
		}
		s = &unexpectedCount{labels: [6]string{
			key.transport.String(), port, RoleSetLabel(key.client), RoleSetLabel(key.server), key.outcome.String(), key.vantage.String(),
		}}
		u.series[key] = s
	}
	s.n++
}

func (u *unexpectedSeries) describe(ch chan<- *prometheus.Desc) {
	ch <- u.flowsDesc
	ch <- u.cappedDesc
}

func (u *unexpectedSeries) collect(ch chan<- prometheus.Metric) {
	u.mu.Lock()
	samples := make([]unexpectedCount, 0, len(u.series))
	for _, s := range u.series {
		samples = append(samples, *s)
	}
	u.mu.Unlock()
	for _, s := range samples {
		ch <- constMetric(u.flowsDesc, prometheus.CounterValue, float64(s.n), s.labels[:]...)
	}
	ch <- constMetric(u.cappedDesc, prometheus.CounterValue, float64(u.capped.Load()))
}

// RoleSetLabel joins the role names of a set with "+" in role order, or says
// "none". Bits that name no role are left out.
func RoleSetLabel(s policy.RoleSet) string {
	var b strings.Builder
	for r := policy.Role(1); r < 32; r++ {
		if !s.Has(r) {
			continue
		}
		name := r.String()
		if name == "invalid" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('+')
		}
		b.WriteString(name)
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}
