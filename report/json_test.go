package report

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/dissect"
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
	r = payloadRecord()
	if n := testing.AllocsPerRun(1000, func() { buf = AppendJSON(buf[:0], &r, rules) }); n != 0 {
		t.Errorf("AppendJSON with the payload fields: %v allocations per flow, want 0", n)
	}
}

// payloadRecord is a flow with every field payload inspection sets.
func payloadRecord() classifier.FlowRecord {
	r := testRecord()
	r.App, r.ALPN = dissect.AppHTTP, dissect.ALPNH2|dissect.ALPNHTTP11
	r.Verdict, r.Reason, r.Rule = classifier.Unexpected, classifier.ProtocolMismatch, 0
	r.Via, r.Interface, r.AnnouncedAt = classifier.ViaEPM, dissect.InterfaceOther, 1_700_000_000_000_000_000
	return r
}

// TestJSONPayloadFields: the fields payload inspection adds, as JSON the
// daemon's events carry too (EachPayloadField), and a SQL Browser
// instance name off the wire escaped whatever its bytes.
func TestJSONPayloadFields(t *testing.T) {
	r := payloadRecord()
	line := string(AppendJSON(nil, &r, testRules()))
	for _, want := range []string{`"app":"http"`, `"alpn":["h2","http/1.1"]`, `"expected_apps":[`,
		`"rpc":{"via":"epm","interface":"other","announced":"2023-11-14T22:13:20.000000000Z"}`} {
		if !strings.Contains(line, want) {
			t.Errorf("%s lacks %s", line, want)
		}
	}
	var fields []string
	EachPayloadField(&r, testRules(), func(key string, value []byte) {
		fields = append(fields, key)
		if !strings.Contains(line, `"`+key+`":`+string(value)) {
			t.Errorf("EachPayloadField gives %s %s, which the JSON line does not hold", key, value)
		}
	})
	if want := []string{"app", "alpn", "expected_apps", "rpc"}; !slices.Equal(fields, want) {
		t.Errorf("payload fields %v, want %v", fields, want)
	}

	r = testRecord()
	r.Via, r.AnnouncedAt = classifier.ViaSSRP, 0
	r.InstanceLen = uint8(copy(r.Instance[:], "T\"P\x00\xff"))
	var got map[string]any
	if err := json.Unmarshal(AppendJSON(nil, &r, testRules()), &got); err != nil {
		t.Fatalf("an odd instance name breaks the JSON: %v", err)
	}
	if sb, _ := got["sql_browser"].(map[string]any); sb["instance"] != "T\"P\u0000\u00ff" {
		t.Errorf("sql_browser %v", got["sql_browser"])
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

func TestAppendTimestampIsTimeFormat(t *testing.T) {
	const layout = "2006-01-02T15:04:05.000000000Z07:00"
	var stamps []int64
	for _, d := range []time.Time{
		time.Unix(0, 0), time.Unix(-1, 0), time.Unix(0, -1),
		time.Date(1970, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1971, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1900, 2, 28, 23, 59, 59, 0, time.UTC), // not a leap year
		time.Date(1900, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2000, 2, 29, 12, 0, 0, 1, time.UTC), // a leap year though divisible by 100
		time.Date(2000, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC),
		time.Date(2025, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2038, 1, 19, 3, 14, 7, 999999999, time.UTC), // int32 seconds end
		time.Date(2038, 1, 19, 3, 14, 8, 0, time.UTC),
		time.Date(2100, 2, 28, 23, 59, 59, 0, time.UTC), // not a leap year
		time.Date(2100, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2106, 2, 7, 6, 28, 16, 0, time.UTC), // uint32 seconds end
	} {
		ns := d.UnixNano()
		stamps = append(stamps, ns-1, ns, ns+1)
	}
	stamps = append(stamps, math.MaxInt64, math.MinInt64, math.MinInt64+1)
	rng := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		stamps = append(stamps, int64(rng.Uint64()))                         // 1677 to 2262
		stamps = append(stamps, 1_600_000_000e9+rng.Int64N(2_000_000_000e9)) // capture times to 2083
	}
	// Every day from 1969 to 2401, at a random time of day.
	for day := int64(-365); day < 157000; day++ {
		stamps = append(stamps, day*86400e9+rng.Int64N(86400e9))
	}
	var b []byte
	for _, ns := range stamps {
		b = AppendTimestamp(b[:0], ns)
		if want := time.Unix(0, ns).UTC().Format(layout); string(b) != want {
			t.Fatalf("AppendTimestamp(%d) = %s, want %s", ns, b, want)
		}
	}
}

func TestAppendTimestampAllocatesNothing(t *testing.T) {
	buf := make([]byte, 0, 64)
	ns := time.Date(2026, 1, 5, 9, 0, 0, 1500, time.UTC).UnixNano()
	if n := testing.AllocsPerRun(1000, func() { buf = AppendTimestamp(buf[:0], ns) }); n != 0 {
		t.Errorf("AppendTimestamp: %v allocations, want 0", n)
	}
}

func BenchmarkAppendTimestamp(b *testing.B) {
	buf := make([]byte, 0, 64)
	ns := time.Date(2026, 1, 5, 9, 0, 0, 1500, time.UTC).UnixNano()
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendTimestamp(buf[:0], ns)
		ns += 1e6
	}
}

func BenchmarkTimeAppendFormat(b *testing.B) {
	buf := make([]byte, 0, 64)
	ns := time.Date(2026, 1, 5, 9, 0, 0, 1500, time.UTC).UnixNano()
	b.ReportAllocs()
	for b.Loop() {
		buf = time.Unix(0, ns).UTC().AppendFormat(buf[:0], "2006-01-02T15:04:05.000000000Z07:00")
		ns += 1e6
	}
}
