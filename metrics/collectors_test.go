package metrics

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/pipeline"
	"github.com/tpwatch/tpwatch/policy"
)

func TestCaptureCollector(t *testing.T) {
	stats := map[string]CaptureStats{
		"eth0": {Counts: pipeline.Counts{Records: 10, Bytes: 1500, Truncated: 3, Malformed: 4, Unsupported: 5},
			KernelDrops: 2, InterfaceDrops: 1, Up: true},
		"eth1": {},
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCaptureCollector(func() map[string]CaptureStats { return stats }))
	const want = `
# HELP tpwatch_capture_packets_total Packets read from the interface.
# TYPE tpwatch_capture_packets_total counter
tpwatch_capture_packets_total{interface="eth0"} 10
tpwatch_capture_packets_total{interface="eth1"} 0
# HELP tpwatch_capture_bytes_total Bytes (on the wire) read from the interface.
# TYPE tpwatch_capture_bytes_total counter
tpwatch_capture_bytes_total{interface="eth0"} 1500
tpwatch_capture_bytes_total{interface="eth1"} 0
# HELP tpwatch_capture_kernel_drops_total Packets the kernel dropped before tpwatch could read them.
# TYPE tpwatch_capture_kernel_drops_total counter
tpwatch_capture_kernel_drops_total{interface="eth0"} 2
tpwatch_capture_kernel_drops_total{interface="eth1"} 0
# HELP tpwatch_capture_interface_drops_total Packets the network interface or its driver dropped.
# TYPE tpwatch_capture_interface_drops_total counter
tpwatch_capture_interface_drops_total{interface="eth0"} 1
tpwatch_capture_interface_drops_total{interface="eth1"} 0
# HELP tpwatch_capture_decode_errors_total Packets that could not be decoded, by reason (truncated, malformed, unsupported_link).
# TYPE tpwatch_capture_decode_errors_total counter
tpwatch_capture_decode_errors_total{interface="eth0",reason="truncated"} 3
tpwatch_capture_decode_errors_total{interface="eth0",reason="malformed"} 4
tpwatch_capture_decode_errors_total{interface="eth0",reason="unsupported_link"} 5
tpwatch_capture_decode_errors_total{interface="eth1",reason="truncated"} 0
tpwatch_capture_decode_errors_total{interface="eth1",reason="malformed"} 0
tpwatch_capture_decode_errors_total{interface="eth1",reason="unsupported_link"} 0
# HELP tpwatch_capture_up 1 while the interface is open and delivering packets, else 0.
# TYPE tpwatch_capture_up gauge
tpwatch_capture_up{interface="eth0"} 1
tpwatch_capture_up{interface="eth1"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestFlowTableCollector(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewFlowTableCollector(func() classifier.Stats {
		return classifier.Stats{Active: 3, Capacity: 1 << 20, FlowsEvicted: 4, FlowsExpired: 5, Fragments: 6, ClockJumps: 7,
			EPMAnswers: 8, DCOMAnswers: 9, SSRPAnswers: 10, AnswersUnreadable: 11, EPMErrors: 12,
			AnnouncedPorts: 13, AnnouncementsDropped: 14, RPCConnsDropped: 15, AppsIdentified: 16}
	}))
	const want = `
# HELP tpwatch_flow_table_entries Flows held in the flow table.
# TYPE tpwatch_flow_table_entries gauge
tpwatch_flow_table_entries 3
# HELP tpwatch_flow_table_capacity Flows the flow table can hold.
# TYPE tpwatch_flow_table_capacity gauge
tpwatch_flow_table_capacity 1.048576e+06
# HELP tpwatch_flow_table_evictions_total Flows dropped from a full flow table to make room.
# TYPE tpwatch_flow_table_evictions_total counter
tpwatch_flow_table_evictions_total 4
# HELP tpwatch_flow_table_expired_total Flows removed from the flow table by their idle timeout.
# TYPE tpwatch_flow_table_expired_total counter
tpwatch_flow_table_expired_total 5
# HELP tpwatch_fragments_total IP fragments seen.
# TYPE tpwatch_fragments_total counter
tpwatch_fragments_total 6
# HELP tpwatch_flow_table_clock_jumps_total Packets stamped more than a second away from the packet clock that nothing after them confirmed, followed at the clock's time.
# TYPE tpwatch_flow_table_clock_jumps_total counter
tpwatch_flow_table_clock_jumps_total 7
# HELP tpwatch_announcement_answers_total Answers read that announce ports: the RPC endpoint mapper's ept_map (epm), DCOM activations (dcom), SQL Server Browser (ssrp).
# TYPE tpwatch_announcement_answers_total counter
tpwatch_announcement_answers_total{source="epm"} 8
tpwatch_announcement_answers_total{source="dcom"} 9
tpwatch_announcement_answers_total{source="ssrp"} 10
# HELP tpwatch_announcement_answers_unreadable_total Endpoint mapper and DCOM answers that could not be read: sealed (auth level privacy), faults, malformed, or cut by the snap length.
# TYPE tpwatch_announcement_answers_unreadable_total counter
tpwatch_announcement_answers_unreadable_total 11
# HELP tpwatch_endpoint_mapper_errors_total Endpoint mapper answers with an error status, mostly an interface that is not registered.
# TYPE tpwatch_endpoint_mapper_errors_total counter
tpwatch_endpoint_mapper_errors_total 12
# HELP tpwatch_announced_ports Server ports announced and held: flows to them match the rules such announcements stand for.
# TYPE tpwatch_announced_ports gauge
tpwatch_announced_ports 13
# HELP tpwatch_announced_ports_dropped_total Announced ports not held because the table of them was full.
# TYPE tpwatch_announced_ports_dropped_total counter
tpwatch_announced_ports_dropped_total 14
# HELP tpwatch_rpc_connections_dropped_total Endpoint mapper connections not read because the most that are followed at once already were.
# TYPE tpwatch_rpc_connections_dropped_total counter
tpwatch_rpc_connections_dropped_total 15
# HELP tpwatch_apps_identified_total Flows whose first payload named their application protocol.
# TYPE tpwatch_apps_identified_total counter
tpwatch_apps_identified_total 16
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestBuildInfoCollector(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewBuildInfoCollector("1.2.3", "abc123"))
	want := `
# HELP tpwatch_build_info The version and revision tpwatch was built from and its Go version, with value 1.
# TYPE tpwatch_build_info gauge
tpwatch_build_info{goversion="` + runtime.Version() + `",revision="abc123",version="1.2.3"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestReloadStatus(t *testing.T) {
	var s ReloadStatus
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(&s)
	value := func(name string) float64 {
		v, ok := seriesValue(t, reg, name, map[string]string{})
		if !ok {
			t.Fatalf("%s missing", name)
		}
		return v
	}

	if got := value("tpwatch_config_last_reload_successful"); got != 0 {
		t.Errorf("before any load: successful = %v, want 0", got)
	}
	s.Success(time.Unix(1700000000, 250_000_000))
	if got := value("tpwatch_config_last_reload_successful"); got != 1 {
		t.Errorf("after success: successful = %v, want 1", got)
	}
	s.Failure()
	s.Failure()
	if got := value("tpwatch_config_last_reload_successful"); got != 0 {
		t.Errorf("after failure: successful = %v, want 0", got)
	}
	if got := value("tpwatch_config_reloads_failed_total"); got != 2 {
		t.Errorf("failed = %v, want 2", got)
	}
	// A failure keeps the time of the last config that did load.
	if got := value("tpwatch_config_last_reload_success_timestamp_seconds"); got != 1700000000.25 {
		t.Errorf("success timestamp = %v, want 1700000000.25", got)
	}
}

func TestSuppressedLogEvents(t *testing.T) {
	var s SuppressedLogEvents
	s.Inc()
	s.Add(41)
	if got := testutil.ToFloat64(&s); got != 42 {
		t.Errorf("suppressed = %v, want 42", got)
	}
}

func TestInventoryCollector(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewInventoryCollector(func() policy.InventoryStats { return policy.InventoryStats{Hosts: 12, Dropped: 3, Capacity: 65536} }))
	const want = `
# HELP tpwatch_inventory_learned_hosts Hosts the inferred inventory has learned a role for (without a site config).
# TYPE tpwatch_inventory_learned_hosts gauge
tpwatch_inventory_learned_hosts 12
# HELP tpwatch_inventory_capacity_hosts Hosts the inferred inventory can hold; past it, what more hosts show is not learned.
# TYPE tpwatch_inventory_capacity_hosts gauge
tpwatch_inventory_capacity_hosts 65536
# HELP tpwatch_inventory_learnings_dropped_total Hosts the inferred inventory did not learn because it was full.
# TYPE tpwatch_inventory_learnings_dropped_total counter
tpwatch_inventory_learnings_dropped_total 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
