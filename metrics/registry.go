package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/policy"
)

// Exporter is what a registry exports: the daemon's, a replay's textfile
// and the tests all build theirs with NewRegistry, so they cannot drift
// apart. A nil field is left out.
type Exporter struct {
	// Version and Revision go into tpwatch_build_info.
	Version, Revision string
	// Flows are the flow counters (tpwatch_flows_total and its kin).
	Flows *FlowCounters
	// Captures returns the capture stats by interface name.
	Captures func() map[string]CaptureStats
	// Table returns the flow table's stats, summed over the tables.
	Table func() classifier.Stats
	// Inventory returns the inferred inventory's stats (nil with a site
	// config, which names the hosts).
	Inventory func() policy.InventoryStats
	// Host returns what the daemon says of the host it runs on.
	Host func() HostInfo
	// Reloads and SuppressedLogEvents are the daemon's.
	Reloads             *ReloadStatus
	SuppressedLogEvents *SuppressedLogEvents
	// Runtime adds the Go runtime's and the process's metrics (go_*,
	// process_*), as every long-running exporter does.
	Runtime bool
}

// NewRegistry returns a registry of e's collectors.
func NewRegistry(e Exporter) (*prometheus.Registry, error) {
	cs := []prometheus.Collector{NewBuildInfoCollector(e.Version, e.Revision)}
	if e.Flows != nil {
		cs = append(cs, e.Flows)
	}
	if e.Captures != nil {
		cs = append(cs, NewCaptureCollector(e.Captures))
	}
	if e.Table != nil {
		cs = append(cs, NewFlowTableCollector(e.Table))
	}
	if e.Inventory != nil {
		cs = append(cs, NewInventoryCollector(e.Inventory))
	}
	if e.Host != nil {
		cs = append(cs, NewHostCollector(e.Host))
	}
	if e.Reloads != nil {
		cs = append(cs, e.Reloads)
	}
	if e.SuppressedLogEvents != nil {
		cs = append(cs, e.SuppressedLogEvents)
	}
	if e.Runtime {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	reg := prometheus.NewPedanticRegistry()
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return reg, nil
}
