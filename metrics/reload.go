package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ReloadStatus records the outcome of config loads and exports it. The zero
// value is ready to use but reports the last reload as failed until
// Success is first called: the daemon calls it once its initial config has
// loaded, so a daemon that never got a config is not shown as healthy.
type ReloadStatus struct {
	ok          atomic.Bool
	lastSuccess atomic.Int64 // Unix nanoseconds
	failures    atomic.Uint64
}

var _ prometheus.Collector = (*ReloadStatus)(nil)

var (
	reloadOKDesc = prometheus.NewDesc("tpwatch_config_last_reload_successful",
		"1 when the last config load succeeded, 0 when it failed (the previous config stays in force).", nil, nil)
	reloadTimeDesc = prometheus.NewDesc("tpwatch_config_last_reload_success_timestamp_seconds",
		"Time of the last successful config load.", nil, nil)
	reloadFailedDesc = prometheus.NewDesc("tpwatch_config_reloads_failed_total",
		"Config loads that failed.", nil, nil)
)

// Success records a config loaded and put in force at t.
func (s *ReloadStatus) Success(t time.Time) {
	s.lastSuccess.Store(t.UnixNano())
	s.ok.Store(true)
}

// Failure records a config that failed to load and was not applied.
func (s *ReloadStatus) Failure() {
	s.failures.Add(1)
	s.ok.Store(false)
}

// OK reports whether the last config load succeeded.
func (s *ReloadStatus) OK() bool { return s.ok.Load() }

// LastSuccess is when a config was last loaded and put in force (zero
// before the first).
func (s *ReloadStatus) LastSuccess() time.Time {
	if ns := s.lastSuccess.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Failures counts the config loads that failed.
func (s *ReloadStatus) Failures() uint64 { return s.failures.Load() }

// Describe implements prometheus.Collector.
func (s *ReloadStatus) Describe(ch chan<- *prometheus.Desc) {
	ch <- reloadOKDesc
	ch <- reloadTimeDesc
	ch <- reloadFailedDesc
}

// Collect implements prometheus.Collector.
func (s *ReloadStatus) Collect(ch chan<- prometheus.Metric) {
	ch <- constMetric(reloadOKDesc, prometheus.GaugeValue, boolValue(s.ok.Load()))
	ch <- constMetric(reloadTimeDesc, prometheus.GaugeValue, unixSeconds(s.lastSuccess.Load()))
	ch <- constMetric(reloadFailedDesc, prometheus.CounterValue, float64(s.failures.Load()))
}
