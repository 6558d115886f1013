package daemon

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/rs/zerolog"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/policy"
	"github.com/tpwatch/tpwatch/report"
)

// The daemon's flow log event and replay's NDJSON line are written by two
// encoders (zerolog fields here, an allocation-free appender in report);
// DESIGN gives both the same fields. This keeps them from drifting apart.
func TestFlowLogHasTheReplayJSONFields(t *testing.T) {
	rules := []policy.Rule{{ID: "agent-em-grpc"}}
	r := classifier.FlowRecord{
		First: 1_767_603_600_123_456_789, Last: 1_767_603_630_000_000_001, Transport: policy.TCP,
		Client: netip.MustParseAddr("::ffff:198.51.100.7").As16(), Server: netip.MustParseAddr("2001:db8::10").As16(),
		ClientPort: 50000, ServerPort: 3741,
		ClientRoles: policy.RoleSet(0).With(policy.Agent), ServerRoles: policy.RoleSet(0).With(policy.EnterpriseManager).With(policy.SQLServer),
		Rule: 0, Verdict: classifier.Blocked, Reason: classifier.ICMPUnreachable, ConnState: classifier.S0,
		PacketsOut: 3, BytesOut: 180, ICMP: true, ICMPType: 3, ICMPCode: 13,
	}
	r.HistoryLen = uint8(copy(r.History[:], "S"))

	var want map[string]any
	if err := json.Unmarshal(report.AppendJSON(nil, &r, rules), &want); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	(&flowLog{log: zerolog.New(&logs)}).flow("eth0", &r, rules)
	var got map[string]any
	if err := json.Unmarshal(logs.Bytes(), &got); err != nil {
		t.Fatalf("flow event is not JSON: %v\n%s", err, logs.String())
	}
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("flow log lacks %q", k)
			continue
		}
		gj, _ := json.Marshal(g)
		wj, _ := json.Marshal(v)
		if !bytes.Equal(gj, wj) {
			t.Errorf("%s: flow log %s, replay JSON %s", k, gj, wj)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok && k != "interface" && k != "level" && k != "message" {
			t.Errorf("flow log has %q, which replay JSON does not", k)
		}
	}
}
