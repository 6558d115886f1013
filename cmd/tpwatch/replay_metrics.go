package main

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/metrics"
	"github.com/tpwatch/tpwatch/pipeline"
	"github.com/tpwatch/tpwatch/policy"
)

// replayMetrics collects the daemon's metrics for a replay, so that
// --metrics-out gives a replayed capture to the same dashboard and alerts.
type replayMetrics struct {
	flows *metrics.FlowCounters
	reg   *prometheus.Registry
}

func newReplayMetrics(rules []policy.Rule, stats *pipeline.SourceStats, table func() *classifier.Table) (*replayMetrics, error) {
	ids, info := metrics.RulesOf(rules)
	fc := metrics.NewFlowCounters(ids)
	fc.SetRules(ids, info)
	reg := prometheus.NewRegistry()
	capture := metrics.NewCaptureCollector(func() map[string]metrics.CaptureStats {
		return map[string]metrics.CaptureStats{"replay": {
			Packets: stats.Records.Load(), Bytes: stats.Bytes.Load(),
			DecodeTruncated: stats.Truncated.Load(), DecodeMalformed: stats.Malformed.Load(),
			DecodeUnsupported: stats.Unsupported.Load(), Up: true,
		}}
	})
	tableStats := metrics.NewFlowTableCollector(func() metrics.TableStats {
		s := table().Stats()
		return metrics.TableStats{Entries: s.Active, Capacity: s.Capacity, Evictions: s.FlowsEvicted, Expired: s.FlowsExpired, Fragments: s.Fragments}
	})
	for _, c := range []prometheus.Collector{fc, capture, tableStats, metrics.NewBuildInfoCollector(version, revision)} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return &replayMetrics{flows: fc, reg: reg}, nil
}

// Decided implements classifier.Sink: metrics count a flow when its
// verdict is decided, as the daemon does.
func (m *replayMetrics) Decided(r *classifier.FlowRecord) { m.flows.Observe(r) }

// Final implements classifier.Sink: an allowed flow's end is the last
// time its rule was seen working.
func (m *replayMetrics) Final(r *classifier.FlowRecord) { m.flows.ObserveWorking(r) }

func (m *replayMetrics) write(path string) error {
	return metrics.WriteTextfile(path, m.reg)
}
