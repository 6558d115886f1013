package daemon

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/policy"
)

const site = "roles:\n  enterprise-manager: [10.0.0.1]\n  agent: [10.1.0.0/24]\n"

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gauge(t *testing.T, d *Daemon, name string) float64 {
	t.Helper()
	mfs, err := d.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestReloadKeepsOldPolicyOnError(t *testing.T) {
	dir := t.TempDir()
	cfgFile := writeFile(t, dir, "site.yaml", site)
	var logs bytes.Buffer
	d, err := New(Config{Interfaces: []string{"lo"}, ConfigFile: cfgFile}, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	old := d.policy.load()
	if got := gauge(t, d, "tpwatch_config_last_reload_successful"); got != 1 {
		t.Fatalf("after start reload_successful = %v, want 1", got)
	}

	writeFile(t, dir, "site.yaml", "roles:\n  agnet: [10.1.0.0/24]\n")
	if err := d.Reload(); err == nil {
		t.Fatal("Reload of a bad config succeeded")
	}
	if d.policy.load() != old {
		t.Error("a failed reload replaced the policy")
	}
	if got := gauge(t, d, "tpwatch_config_last_reload_successful"); got != 0 {
		t.Errorf("after a failed reload reload_successful = %v, want 0", got)
	}
	if !strings.Contains(logs.String(), "agnet") {
		t.Errorf("the failed reload's log does not name the error: %s", logs.String())
	}

	writeFile(t, dir, "site.yaml", site+"allow:\n  - {id: rdp-admin, client: agent, server: enterprise-manager, transport: tcp, ports: [3389]}\n")
	if err := d.Reload(); err != nil {
		t.Fatalf("Reload of a good config: %v", err)
	}
	if d.policy.load() == old {
		t.Fatal("a successful reload kept the old policy")
	}
	if got := gauge(t, d, "tpwatch_config_last_reload_successful"); got != 1 {
		t.Errorf("after a good reload reload_successful = %v, want 1", got)
	}
	m := d.policy.Match(policy.Flow{Client: flowClient, Server: flowServer, Transport: policy.TCP, ClientRoles: d.policy.Roles(addr(10, 1, 0, 5)), ServerRoles: d.policy.Roles(addr(10, 0, 0, 1)), Port: 3389})
	if m.Kind != policy.MatchAllowed || d.policy.load().Rules()[m.Rule].ID != "rdp-admin" {
		t.Errorf("after reload agent → EM 3389 matches %v, want the new rule rdp-admin", m)
	}
	if n := testutil.CollectAndCount(d.counters, "tpwatch_rule_info"); n != len(d.policy.load().Rules()) {
		t.Errorf("tpwatch_rule_info has %d series after reload, want %d", n, len(d.policy.load().Rules()))
	}
	for _, s := range d.sources {
		if !strings.Contains(s.filter, "host 10.0.0.1") {
			t.Errorf("the capture filter of %s does not follow the config: %q", s.name, s.filter)
		}
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	if _, err := New(Config{}, zerolog.Nop()); err == nil {
		t.Error("New without an interface succeeded")
	}
	if _, err := New(Config{Interfaces: []string{"lo", "lo"}}, zerolog.Nop()); err == nil {
		t.Error("New with an interface twice succeeded")
	}
	bad := writeFile(t, t.TempDir(), "bad.yaml", "roles:\n  agnet: [10.1.0.0/24]\n")
	_, err := New(Config{Interfaces: []string{"lo"}, ConfigFile: bad}, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:2") {
		t.Errorf("New with a bad config: %v, want an error naming bad.yaml:2", err)
	}
}

func addr(a, b, c, d byte) [16]byte {
	return [16]byte{10: 0xff, 11: 0xff, 12: a, 13: b, 14: c, 15: d}
}

func TestFlowLogRateLimited(t *testing.T) {
	var logs bytes.Buffer
	d, err := New(Config{Interfaces: []string{"lo"}, LogRate: 1, LogBurst: 3}, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Unix(1000, 0)
	d.flowLog.bucket = newTokenBucket(1, 3, func() time.Time { return clock })
	sink := &flowSink{iface: "eth0", counters: d.counters, log: d.flowLog, policy: &d.policy, status: d.status}
	r := classifier.FlowRecord{
		First: 1e18, Last: 1e18 + 5e8, Transport: policy.TCP,
		Client: addr(10, 1, 0, 5), Server: addr(10, 0, 0, 1), ClientPort: 50000, ServerPort: 3741,
		ClientRoles: policy.RoleSet(0).With(policy.Agent), ServerRoles: policy.RoleSet(0).With(policy.EnterpriseManager),
		Rule: 0, Verdict: classifier.Blocked, Reason: classifier.NoResponse, ConnState: classifier.S0,
	}
	for range 10 {
		sink.Decided(&r)
	}
	allowed := r
	allowed.Verdict, allowed.Reason = classifier.Allowed, classifier.ReasonNone
	sink.Decided(&allowed)
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(l, `"verdict"`) {
			lines = append(lines, l)
		}
	}
	if len(lines) != 3 {
		t.Fatalf("%d flow events logged, want the burst of 3:\n%s", len(lines), logs.String())
	}
	var e map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &e); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"interface": "eth0", "verdict": "blocked", "reason": "no_response", "src_ip": "10.1.0.5", "dst_ip": "10.0.0.1",
		"dst_port": 3741.0, "transport": "tcp", "rule": d.policy.load().Rules()[0].ID, "conn_state": "S0",
		"ts_first": "2001-09-09T01:46:40.000000000Z", "ts_last": "2001-09-09T01:46:40.500000000Z",
	}
	for k, v := range want {
		if e[k] != v {
			t.Errorf("event field %s = %v, want %v", k, e[k], v)
		}
	}
	if got := testutil.ToFloat64(d.flowLog.suppressed); got != 7 {
		t.Errorf("suppressed = %v, want 7", got)
	}
	logs.Reset()
	d.flowLog.summarise()
	if !strings.Contains(logs.String(), "suppressed 7 flow log events") {
		t.Errorf("summary line: %q", logs.String())
	}
	logs.Reset()
	d.flowLog.summarise()
	if logs.Len() != 0 {
		t.Errorf("a summary with nothing suppressed: %q", logs.String())
	}
	clock = clock.Add(2 * time.Second)
	sink.Decided(&r)
	if !strings.Contains(logs.String(), "no_response") {
		t.Error("the bucket did not refill with time")
	}
}

func TestTokenBucket(t *testing.T) {
	now := time.Unix(0, 0)
	b := newTokenBucket(2, 2, func() time.Time { return now })
	got := 0
	for range 5 {
		if b.Allow() {
			got++
		}
	}
	if got != 2 {
		t.Fatalf("burst: %d allowed, want 2", got)
	}
	now = now.Add(500 * time.Millisecond)
	if !b.Allow() || b.Allow() {
		t.Error("after half a second at 2/s exactly one more is allowed")
	}
	now = now.Add(time.Hour)
	got = 0
	for range 5 {
		if b.Allow() {
			got++
		}
	}
	if got != 2 {
		t.Errorf("after an hour %d allowed, want the burst (2)", got)
	}
	unlimited := newTokenBucket(-1, 1, time.Now)
	for range 100 {
		if !unlimited.Allow() {
			t.Fatal("a negative rate limits")
		}
	}
}
