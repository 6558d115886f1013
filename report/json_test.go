package report

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/policy"
)

func testRules() []policy.Rule {
	return []policy.Rule{{ID: "agent-em-grpc", Client: policy.Agent, Server: policy.EnterpriseManager, Transport: policy.TCP, Ports: []policy.PortRange{{Low: 3741, High: 3741}}}}
}

func testRecord() classifier.FlowRecord {
	r := classifier.FlowRecord{
		First:       time.Date(2026, 1, 5, 9, 0, 0, 1500, time.UTC).UnixNano(),
		Last:        time.Date(2026, 1, 5, 9, 0, 30, 0, time.UTC).UnixNano(),
		Transport:   policy.TCP,
		Client:      netip.MustParseAddr("::ffff:198.51.100.7").As16(),
		Server:      netip.MustParseAddr("2001:db8::10").As16(),
		ClientPort:  50000,
		ServerPort:  3741,
		ClientRoles: policy.RoleSet(0).With(policy.Agent),
		ServerRoles: policy.RoleSet(0).With(policy.EnterpriseManager).With(policy.SQLServer),
		Rule:        0,
		Verdict:     classifier.Blocked,
		Reason:      classifier.ICMPUnreachable,
		ConnState:   classifier.S0,
		PacketsOut:  3, BytesOut: 180,
		ICMP: true, ICMPType: 1, ICMPCode: 1,
	}
	r.HistoryLen = uint8(copy(r.History[:], "S"))
	return r
}

func TestAppendJSONFields(t *testing.T) {
	r := testRecord()
	line := AppendJSON(nil, &r, testRules())
	var got map[string]any
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, line)
	}
	want := map[string]any{
		"ts_first": "2026-01-05T09:00:00.000001500Z", "ts_last": "2026-01-05T09:00:30.000000000Z",
		"transport": "tcp", "src_ip": "198.51.100.7", "src_port": 50000.0, "dst_ip": "2001:db8::10", "dst_port": 3741.0,
		"rule": "agent-em-grpc", "verdict": "blocked", "reason": "icmp_unreachable", "conn_state": "S0", "history": "S",
		"packets_out": 3.0, "packets_in": 0.0, "bytes_out": 180.0, "bytes_in": 0.0, "icmp_type": 1.0, "icmp_code": 1.0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if roles, _ := got["dst_roles"].([]any); len(roles) != 2 || roles[0] != "enterprise-manager" || roles[1] != "sql-server" {
		t.Errorf("dst_roles %v", got["dst_roles"])
	}
	if roles, _ := got["src_roles"].([]any); len(roles) != 1 || roles[0] != "agent" {
		t.Errorf("src_roles %v", got["src_roles"])
	}
	r.ICMP, r.Rule, r.Verdict, r.Reason = false, -1, classifier.Ignored, classifier.ReasonNone
	got = nil
	if err := json.Unmarshal(AppendJSON(nil, &r, testRules()), &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["icmp_type"]; ok || got["rule"] != "" || got["reason"] != "" {
		t.Errorf("flow without ICMP/rule: %v", got)
	}
}

func TestJSONWriterSkipsIgnoredUnlessAll(t *testing.T) {
	r := testRecord()
	ign := testRecord()
	ign.Verdict, ign.Reason = classifier.Ignored, classifier.ReasonNone
	for _, all := range []bool{false, true} {
		var out bytes.Buffer
		w := NewJSONWriter(&out, testRules(), all)
		w.Final(&r)
		w.Final(&ign)
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		lines := bytes.Count(out.Bytes(), []byte("\n"))
		if want := map[bool]int{false: 1, true: 2}[all]; lines != want {
			t.Errorf("all=%v: %d lines, want %d", all, lines, want)
		}
	}
}

func TestAppendJSONAllocatesNothing(t *testing.T) {
	r := testRecord()
	rules := testRules()
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(1000, func() { buf = AppendJSON(buf[:0], &r, rules) }); n != 0 {
		t.Errorf("AppendJSON: %v allocations per flow, want 0", n)
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	r := testRecord()
	rules := testRules()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendJSON(buf[:0], &r, rules)
	}
	b.SetBytes(int64(len(buf)))
}
