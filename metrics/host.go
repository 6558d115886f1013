package metrics

import "github.com/prometheus/client_golang/prometheus"

// HostInfo is what an exporter says of the host it runs on, for a fleet's
// table of hosts: the roles the host's own addresses hold, and where it
// sees flows from.
type HostInfo struct {
	// Roles are the role names, joined with "+" ("agent+domain-controller"),
	// or "none".
	Roles string
	// Vantage is "auto" (client or server by the host's addresses), or the
	// one every flow gets ("transit" for a sensor).
	Vantage string
}

type hostCollector struct {
	get  func() HostInfo
	desc *prometheus.Desc
}

// NewHostCollector exports tpwatch_host_info{roles, vantage} 1. get is
// called once per scrape.
func NewHostCollector(get func() HostInfo) prometheus.Collector {
	return &hostCollector{get: get, desc: prometheus.NewDesc("tpwatch_host_info",
		"The roles of the host tpwatch runs on (its own addresses in the inventory) and its vantage mode, with value 1.",
		[]string{"roles", "vantage"}, nil)}
}

func (c *hostCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *hostCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.get()
	ch <- constMetric(c.desc, prometheus.GaugeValue, 1, h.Roles, h.Vantage)
}
