package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tpwatch/tpwatch/classifier"
)

type flowTableCollector struct {
	get func() classifier.Stats

	entries, capacity, evictions, expired, fragments, clockJumps *prometheus.Desc

	answers, unreadable, epmErrors, announced, announcedDropped, rpcConnsDropped, identified *prometheus.Desc
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
		answers: prometheus.NewDesc("tpwatch_announcement_answers_total",
			"Answers read that announce ports: the RPC endpoint mapper's ept_map (epm), DCOM activations (dcom), SQL Server Browser (ssrp).", []string{"source"}, nil),
		unreadable: prometheus.NewDesc("tpwatch_announcement_answers_unreadable_total",
			"Endpoint mapper and DCOM answers that could not be read: sealed (auth level privacy), faults, malformed, or cut by the snap length.", nil, nil),
		epmErrors: prometheus.NewDesc("tpwatch_endpoint_mapper_errors_total",
			"Endpoint mapper answers with an error status, mostly an interface that is not registered.", nil, nil),
		announced: prometheus.NewDesc("tpwatch_announced_ports",
			"Server ports announced and held: flows to them match the rules such announcements stand for.", nil, nil),
		announcedDropped: prometheus.NewDesc("tpwatch_announced_ports_dropped_total",
			"Announced ports not held because the table of them was full.", nil, nil),
		rpcConnsDropped: prometheus.NewDesc("tpwatch_rpc_connections_dropped_total",
			"Endpoint mapper connections not read because the most that are followed at once already were.", nil, nil),
		identified: prometheus.NewDesc("tpwatch_apps_identified_total",
			"Flows whose first payload named their application protocol.", nil, nil),
	}
}

func (c *flowTableCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.entries, c.capacity, c.evictions, c.expired, c.fragments, c.clockJumps,
		c.answers, c.unreadable, c.epmErrors, c.announced, c.announcedDropped, c.rpcConnsDropped, c.identified} {
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
	ch <- constMetric(c.answers, prometheus.CounterValue, float64(s.EPMAnswers), "epm")
	ch <- constMetric(c.answers, prometheus.CounterValue, float64(s.DCOMAnswers), "dcom")
	ch <- constMetric(c.answers, prometheus.CounterValue, float64(s.SSRPAnswers), "ssrp")
	ch <- constMetric(c.unreadable, prometheus.CounterValue, float64(s.AnswersUnreadable))
	ch <- constMetric(c.epmErrors, prometheus.CounterValue, float64(s.EPMErrors))
	ch <- constMetric(c.announced, prometheus.GaugeValue, float64(s.AnnouncedPorts))
	ch <- constMetric(c.announcedDropped, prometheus.CounterValue, float64(s.AnnouncementsDropped))
	ch <- constMetric(c.rpcConnsDropped, prometheus.CounterValue, float64(s.RPCConnsDropped))
	ch <- constMetric(c.identified, prometheus.CounterValue, float64(s.AppsIdentified))
}
