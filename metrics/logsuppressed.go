package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// SuppressedLogEvents counts log events a rate limiter dropped, so that a
// quiet log is not mistaken for a quiet network. The zero value is ready.
type SuppressedLogEvents struct {
	n atomic.Uint64
}

var _ prometheus.Collector = (*SuppressedLogEvents)(nil)

var suppressedDesc = prometheus.NewDesc("tpwatch_log_events_suppressed_total",
	"Log events dropped by the log rate limiter.", nil, nil)

// Inc counts one suppressed event.
func (s *SuppressedLogEvents) Inc() { s.n.Add(1) }

// Add counts n suppressed events.
func (s *SuppressedLogEvents) Add(n uint64) { s.n.Add(n) }

// Describe implements prometheus.Collector.
func (s *SuppressedLogEvents) Describe(ch chan<- *prometheus.Desc) { ch <- suppressedDesc }

// Collect implements prometheus.Collector.
func (s *SuppressedLogEvents) Collect(ch chan<- prometheus.Metric) {
	ch <- constMetric(suppressedDesc, prometheus.CounterValue, float64(s.n.Load()))
}
