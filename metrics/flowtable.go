package metrics

import "github.com/prometheus/client_golang/prometheus"

// TableStats are the flow table's numbers, summed over its shards.
type TableStats struct {
	Entries   uint64 // flows held now
	Capacity  uint64 // flows it can hold
	Evictions uint64 // flows dropped to make room, since start
	Expired   uint64 // flows ended by their idle timeout, since start
	Fragments uint64 // IP fragments seen, since start
}

type flowTableCollector struct {
	get func() TableStats

	entries, capacity, evictions, expired, fragments *prometheus.Desc
}

// NewFlowTableCollector exports the flow table's size and churn. get is
// called once per scrape and returns a snapshot.
func NewFlowTableCollector(get func() TableStats) prometheus.Collector {
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
	}
}

func (c *flowTableCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.entries, c.capacity, c.evictions, c.expired, c.fragments} {
		ch <- d
	}
}

func (c *flowTableCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.get()
	ch <- constMetric(c.entries, prometheus.GaugeValue, float64(s.Entries))
	ch <- constMetric(c.capacity, prometheus.GaugeValue, float64(s.Capacity))
	ch <- constMetric(c.evictions, prometheus.CounterValue, float64(s.Evictions))
	ch <- constMetric(c.expired, prometheus.CounterValue, float64(s.Expired))
	ch <- constMetric(c.fragments, prometheus.CounterValue, float64(s.Fragments))
}
