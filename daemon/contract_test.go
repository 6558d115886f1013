package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/metrics"
	"github.com/tpwatch/tpwatch/policy"
	"github.com/tpwatch/tpwatch/report"
)

// everyFinding is a flow record for each verdict with each of its reasons
// and, for an unexpected flow, each outcome: whatever the classifier can
// decide. A verdict, reason or outcome added to the classifier is in it
// without a change here.
func everyFinding() []classifier.FlowRecord {
	base := classifier.FlowRecord{
		First: 1_767_603_600_000_000_000, Last: 1_767_603_601_000_000_000, Transport: policy.TCP,
		Client: netip.MustParseAddr("::ffff:198.51.100.7").As16(), Server: netip.MustParseAddr("::ffff:192.0.2.10").As16(),
		ClientPort: 50000, ServerPort: 3741,
		ClientRoles: policy.RoleSet(0).With(policy.Agent), ServerRoles: policy.RoleSet(0).With(policy.EnterpriseManager),
		ConnState: classifier.S0, PacketsOut: 1, BytesOut: 60,
	}
	var out []classifier.FlowRecord
	for v := classifier.Allowed; int(v) < classifier.NumVerdicts; v++ {
		for reason := classifier.ReasonNone; int(reason) < classifier.NumReasons; reason++ {
			if reason.Verdict() != v && !(reason == classifier.ReasonNone && v != classifier.Blocked && v != classifier.Unexpected) {
				continue
			}
			r := base
			r.Verdict, r.Reason, r.Rule = v, reason, 0
			if v == classifier.Ignored {
				r.Rule = -1
			}
			if reason == classifier.ICMPUnreachable {
				r.ICMP, r.ICMPType, r.ICMPCode, r.ICMPSrc = true, 3, 13, netip.MustParseAddr("::ffff:192.0.2.1").As16()
			}
			if v != classifier.Unexpected {
				out = append(out, r)
				continue
			}
			for o := classifier.OutcomeWorked; int(o) < classifier.NumOutcomes; o++ {
				r.Outcome = o
				r.ServerPort++ // a group of its own in the report
				out = append(out, r)
			}
		}
	}
	return out
}

// TestEveryFindingReachesEveryOutput walks every verdict, reason and
// outcome through the metrics, the JSON line, the daemon's event and the
// report: none may be dropped or misnamed on the way.
func TestEveryFindingReachesEveryOutput(t *testing.T) {
	rules := []policy.Rule{{ID: "agent-em-grpc", Client: policy.Agent, Server: policy.EnterpriseManager, Transport: policy.TCP,
		Ports: []policy.PortRange{{Low: 3741, High: 3741}}, Section: "Agent Firewall Rules"}}
	findings := everyFinding()
	if len(findings) < classifier.NumReasons {
		t.Fatalf("only %d findings for %d reasons", len(findings), classifier.NumReasons)
	}
	counters := metrics.NewFlowCounters(nil)
	counters.SetRules(metrics.RulesOf(rules))
	summary := report.NewSummary(rules)
	for i := range findings {
		r := &findings[i]
		name := fmt.Sprintf("%s/%s/%s", r.Verdict, r.Reason, r.Outcome)
		counters.Decided(r)
		summary.Final(r)

		// The JSON line names them.
		line := string(report.AppendJSON(nil, r, rules))
		var fields map[string]any
		if err := json.Unmarshal([]byte(line), &fields); err != nil {
			t.Fatalf("%s: JSON %s: %v", name, line, err)
		}
		if fields["verdict"] != r.Verdict.String() || fields["reason"] != r.Reason.String() {
			t.Errorf("%s: JSON says %v/%v", name, fields["verdict"], fields["reason"])
		}
		if (r.Verdict == classifier.Unexpected) != (fields["outcome"] != nil) || r.Verdict == classifier.Unexpected && fields["outcome"] != r.Outcome.String() {
			t.Errorf("%s: JSON outcome %v", name, fields["outcome"])
		}

		// The daemon's event, for what a person must see, has the same
		// fields.
		if r.Verdict == classifier.Blocked || r.Verdict == classifier.Unexpected {
			var logs bytes.Buffer
			(&flowLog{log: zerolog.New(&logs)}).flow("eth0", r, rules)
			var event map[string]any
			if err := json.Unmarshal(logs.Bytes(), &event); err != nil {
				t.Fatalf("%s: event %s: %v", name, logs.String(), err)
			}
			for k, v := range fields {
				if fmt.Sprint(event[k]) != fmt.Sprint(v) {
					t.Errorf("%s: %s is %v in the event, %v in the JSON", name, k, event[k], v)
				}
			}
		}
	}

	// The metrics count each: a series for every verdict and reason, and
	// for every outcome of the unexpected flows.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(counters)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			switch mf.GetName() {
			case "tpwatch_flows_total":
				seen[labels["verdict"]+"/"+labels["reason"]] += m.GetCounter().GetValue()
			case "tpwatch_unexpected_flows_total":
				seen["outcome/"+labels["outcome"]] += m.GetCounter().GetValue()
			}
		}
	}
	text := writeReport(t, summary)
	for i := range findings {
		r := &findings[i]
		name := fmt.Sprintf("%s/%s/%s", r.Verdict, r.Reason, r.Outcome)
		if seen[r.Verdict.String()+"/"+r.Reason.String()] == 0 {
			t.Errorf("%s: no tpwatch_flows_total series counts it", name)
		}
		if r.Verdict == classifier.Unexpected && seen["outcome/"+r.Outcome.String()] == 0 {
			t.Errorf("%s: no tpwatch_unexpected_flows_total series counts its outcome", name)
		}
		// The report lists every blocked and unexpected flow by its
		// reason (and an unexpected one by its outcome), and counts the
		// others on its verdicts line.
		switch r.Verdict {
		case classifier.Blocked:
			words, ok := blockedWords[r.Reason]
			if !ok {
				t.Errorf("%s: a blocked reason the report's test does not know: say in blockedWords how the report shows it", name)
			} else if !strings.Contains(text, words) {
				t.Errorf("%s: the report does not show it (%q):\n%s", name, blockedWords[r.Reason], text)
			}
		case classifier.Unexpected:
			if !strings.Contains(text, r.Reason.String()) || !strings.Contains(text, fmt.Sprintf("tcp/%d", r.ServerPort)) {
				t.Errorf("%s: the report does not show it:\n%s", name, text)
			}
		}
	}
	for v := classifier.Allowed; int(v) < classifier.NumVerdicts; v++ {
		if !strings.Contains(text, v.String()) {
			t.Errorf("the report's verdicts line lacks %s:\n%s", v, text)
		}
	}
}

// blockedWords is how the report says each blocked reason.
var blockedWords = map[classifier.Reason]string{
	classifier.Refused:         "REFUSED: the server answered with a reset",
	classifier.NoResponse:      "no answer",
	classifier.ICMPUnreachable: "rejected by 192.0.2.1",
}

func writeReport(t *testing.T, s *report.Summary) string {
	t.Helper()
	var out bytes.Buffer
	if err := s.View(report.Header{Files: []string{"x.pcap"}}, 0).WriteText(&out, report.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	return out.String()
}
