package replay

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/metrics"
	"github.com/tpwatch/tpwatch/pipeline"
	"github.com/tpwatch/tpwatch/policy"
)

// textfileMetrics are the daemon's metrics for a replay, so that
// --metrics-out gives a replayed capture to the same dashboard and alerts.
type textfileMetrics struct {
	flows    *metrics.FlowCounters
	registry *prometheus.Registry
}

// newTextfileMetrics exports the replay as one capture interface named
// "replay"; inv is the inferred inventory, or nil.
func newTextfileMetrics(cfg Config, stats *pipeline.SourceStats, table func() classifier.Stats, inv *policy.Inventory) (*textfileMetrics, error) {
	flows := metrics.NewFlowCounters(nil)
	flows.SetRules(metrics.RulesOf(cfg.Policy.Rules()))
	e := metrics.Exporter{
		Version: cfg.Version, Revision: cfg.Revision,
		Flows: flows,
		Captures: func() map[string]metrics.CaptureStats {
			return map[string]metrics.CaptureStats{"replay": {Counts: stats.Counts(), Up: true}}
		},
		Table: table,
	}
	if inv != nil {
		e.Inventory = inv.Stats
	}
	reg, err := metrics.NewRegistry(e)
	if err != nil {
		return nil, err
	}
	return &textfileMetrics{flows: flows, registry: reg}, nil
}
