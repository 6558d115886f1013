package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tpwatch/tpwatch/policy"
)

type inventoryCollector struct {
	get                      func() policy.InventoryStats
	hosts, capacity, dropped *prometheus.Desc
}

// NewInventoryCollector exports an inferred inventory: the hosts it has
// learned, the most it holds, and those it could not learn because it was
// full (a scan or a spoofed flood filling it is then visible). get is
// called once per scrape.
func NewInventoryCollector(get func() policy.InventoryStats) prometheus.Collector {
	return &inventoryCollector{
		get: get,
		hosts: prometheus.NewDesc("tpwatch_inventory_learned_hosts",
			"Hosts the inferred inventory has learned a role for (without a site config).", nil, nil),
		capacity: prometheus.NewDesc("tpwatch_inventory_capacity_hosts",
			"Hosts the inferred inventory can hold; past it, what more hosts show is not learned.", nil, nil),
		dropped: prometheus.NewDesc("tpwatch_inventory_learnings_dropped_total",
			"Hosts the inferred inventory did not learn because it was full.", nil, nil),
	}
}

func (c *inventoryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.hosts
	ch <- c.capacity
	ch <- c.dropped
}

func (c *inventoryCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.get()
	ch <- constMetric(c.hosts, prometheus.GaugeValue, float64(s.Hosts))
	ch <- constMetric(c.capacity, prometheus.GaugeValue, float64(s.Capacity))
	ch <- constMetric(c.dropped, prometheus.CounterValue, float64(s.Dropped))
}
