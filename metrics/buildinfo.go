package metrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

type buildInfoCollector struct {
	desc   *prometheus.Desc
	metric prometheus.Metric
}

// NewBuildInfoCollector exports tpwatch_build_info{version,revision,goversion} 1,
// the Go version being the one tpwatch runs with.
func NewBuildInfoCollector(version, revision string) prometheus.Collector {
	desc := prometheus.NewDesc("tpwatch_build_info",
		"The version and revision tpwatch was built from and its Go version, with value 1.",
		[]string{"version", "revision", "goversion"}, nil)
	return &buildInfoCollector{
		desc:   desc,
		metric: constMetric(desc, prometheus.GaugeValue, 1, version, revision, runtime.Version()),
	}
}

func (c *buildInfoCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c *buildInfoCollector) Collect(ch chan<- prometheus.Metric) { ch <- c.metric }
