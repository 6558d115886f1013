package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tpwatch/tpwatch/classifier"
)

type flowTableCollector struct {
	get func() classifier.Stats

	entries, capacity, evictions, expired, fragments, clockJumps *prometheus.Desc
}

// NewFlowTableCollector exports the flow table's size and churn. get is
// called once per scrape and returns a snapshot (the sum of every table's
// stats, where there are several).
func NewFlowTableCollector(get func() classifier.Stats) prometheus.Collector {
	return &flowTableCollector{
		get: get,
		entries: prometheus.NewDesc("tpwatch_flow_table_entries",
			"Flows held in the flow table.", nil, nil),
		capacity: prometheus.NewDesc("tpwatch_flow_table_capacity",
			"Flows the flow table can hold.", nil, nil),
		evictions: prometheus.NewDesc("tpwatch_flow_table_evictions_total",
			"Flows dropped from a full flow table to make room.", nil, nil),
		expired: prometheus.NewDesc("tpwatch_flow_table_expired_total",
			"Flows removed from the flow table by their idle timeout.", nil, nil),
		fragments: prometheus.NewDesc("tpwatch_fragments_total",
			"IP fragments seen.", nil, nil),
		clockJumps: prometheus.NewDesc("tpwatch_flow_table_clock_jumps_total",
			"Packets stamped more than a second away from the packet clock that nothing after them confirmed, followed at the clock's time.", nil, nil),
	}
}

func (c *flowTableCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.entries, c.capacity, c.evictions, c.expired, c.fragments, c.clockJumps} {
		ch <- d
	}
}

func (c *flowTableCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.get()
	ch <- constMetric(c.entries, prometheus.GaugeValue, float64(s.Active))
	ch <- constMetric(c.capacity, prometheus.GaugeValue, float64(s.Capacity))
	ch <- constMetric(c.evictions, prometheus.CounterValue, float64(s.FlowsEvicted))
	ch <- constMetric(c.expired, prometheus.CounterValue, float64(s.FlowsExpired))
	ch <- constMetric(c.fragments, prometheus.CounterValue, float64(s.Fragments))
	ch <- constMetric(c.clockJumps, prometheus.CounterValue, float64(s.ClockJumps))
}
