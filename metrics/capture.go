package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tpwatch/tpwatch/pipeline"
)

// CaptureStats are the counters of one capture (an interface, or a replay)
// since it started.
type CaptureStats struct {
	// Counts are what the pipeline read and decoded.
	pipeline.Counts
	// KernelDrops are packets the kernel dropped for lack of buffer space
	// (pcap_stats ps_drop); InterfaceDrops those the interface or driver
	// dropped (ps_ifdrop).
	KernelDrops, InterfaceDrops uint64
	// Up is true while the interface is open and delivering.
	Up bool
}

type captureCollector struct {
	get func() map[string]CaptureStats

	packets, bytes, kernelDrops, ifaceDrops, decodeErrors, up *prometheus.Desc
}

// NewCaptureCollector exports capture health per interface. get is called
// once per scrape and returns a snapshot keyed by interface name.
func NewCaptureCollector(get func() map[string]CaptureStats) prometheus.Collector {
	iface := []string{"interface"}
	return &captureCollector{
		get: get,
		packets: prometheus.NewDesc("tpwatch_capture_packets_total",
			"Packets read from the interface.", iface, nil),
		bytes: prometheus.NewDesc("tpwatch_capture_bytes_total",
			"Bytes (on the wire) read from the interface.", iface, nil),
		kernelDrops: prometheus.NewDesc("tpwatch_capture_kernel_drops_total",
			"Packets the kernel dropped before tpwatch could read them.", iface, nil),
		ifaceDrops: prometheus.NewDesc("tpwatch_capture_interface_drops_total",
			"Packets the network interface or its driver dropped.", iface, nil),
		decodeErrors: prometheus.NewDesc("tpwatch_capture_decode_errors_total",
			"Packets that could not be decoded, by reason (truncated, malformed, unsupported_link).",
			[]string{"interface", "reason"}, nil),
		up: prometheus.NewDesc("tpwatch_capture_up",
			"1 while the interface is open and delivering packets, else 0.", iface, nil),
	}
}

func (c *captureCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.packets, c.bytes, c.kernelDrops, c.ifaceDrops, c.decodeErrors, c.up} {
		ch <- d
	}
}

func (c *captureCollector) Collect(ch chan<- prometheus.Metric) {
	for name, s := range c.get() {
		counter := prometheus.CounterValue
		ch <- constMetric(c.packets, counter, float64(s.Records), name)
		ch <- constMetric(c.bytes, counter, float64(s.Bytes), name)
		ch <- constMetric(c.kernelDrops, counter, float64(s.KernelDrops), name)
		ch <- constMetric(c.ifaceDrops, counter, float64(s.InterfaceDrops), name)
		ch <- constMetric(c.decodeErrors, counter, float64(s.Truncated), name, "truncated")
		ch <- constMetric(c.decodeErrors, counter, float64(s.Malformed), name, "malformed")
		ch <- constMetric(c.decodeErrors, counter, float64(s.Unsupported), name, "unsupported_link")
		ch <- constMetric(c.up, prometheus.GaugeValue, boolValue(s.Up), name)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
