package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/capture/live"
)

// Reloads while packets flow, under the race detector: configs that change
// the rules (an allow rule, SIEM ports and so the rule order), the
// inventory and the timeouts are put in force while the table reads. No
// reload fails, no flow is lost or counted twice, every flow is counted
// under a rule of one of the configs, and the capture ends on the filter
// of the last one.
func TestReloadUnderTraffic(t *testing.T) {
	demo, err := os.ReadFile("../pcaps/demo-site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	configs := []string{
		string(demo) + "timeouts: {tcp_attempt: 30s}\n",
		// A SIEM host and ports (their rules come before the allow
		// rules, so every allow rule moves), one more allow rule (the
		// demo's allow list is its last section), shorter timeouts.
		strings.Replace(string(demo), "roles:\n", "roles:\n  siem: [192.0.2.99]\n", 1) +
			"  - {id: rdp-admin-em, client: admin-console, server: enterprise-manager, transport: tcp, ports: [3389]}\n" +
			"siem:\n  ports: [udp/514, tcp/6514]\n" +
			"timeouts: {tcp_attempt: 2s, udp_reply: 1s, tcp_idle: 20s}\n",
	}
	siteFile := filepath.Join(dir, "site.yaml")
	ids := map[string]bool{}
	for i, c := range configs {
		p := filepath.Join(dir, fmt.Sprintf("config%d.yaml", i))
		replaceFile(t, p, c)
		for id := range ruleIDs(loadPolicy(t, p)) {
			ids[id] = true
		}
	}
	if !ids["em-siem-udp-514"] || !ids["rdp-admin-em"] {
		t.Fatalf("the second config does not add its rules: %v", ids)
	}
	replaceFile(t, siteFile, configs[0])

	recs := fileRecords(t, "../pcaps/demo-site.pcapng")
	const rounds = 12
	b := newBackend()
	r := start(t, Config{ConfigFile: siteFile, LogRate: -1}, b)
	c := b.capture(t, "eth0", 1)

	var wg sync.WaitGroup
	wg.Go(func() {
		// Each round comes ten minutes of packet time after the one
		// before, so its flows are new ones.
		for k := range rounds {
			for _, rec := range recs {
				rec.TS += int64(k) * int64(10*time.Minute)
				c.send(rec)
			}
		}
	})
	reloadErrs := make(chan error, 100)
	const reloads = 40
	wg.Go(func() {
		for i := range reloads {
			// Not replaceFile: t.Fatal belongs to the test's goroutine.
			tmp := siteFile + ".tmp"
			if err := os.WriteFile(tmp, []byte(configs[i%2]), 0o644); err != nil {
				reloadErrs <- err
				break
			}
			if err := os.Rename(tmp, siteFile); err != nil {
				reloadErrs <- err
				break
			}
			if err := r.d.Reload(); err != nil {
				reloadErrs <- err
			}
		}
		close(reloadErrs)
	})
	scrapeCtx, stopScraping := context.WithCancel(context.Background())
	wg.Go(func() {
		for scrapeCtx.Err() == nil {
			if _, err := r.d.Registry().Gather(); err != nil {
				t.Errorf("gather during reloads: %v", err)
				return
			}
		}
	})
	for err := range reloadErrs {
		t.Errorf("reload: %v", err)
	}
	waitMetric(t, r.d, float64(rounds*len(recs)), "tpwatch_capture_packets_total", "interface", "eth0")
	stopScraping()
	wg.Wait()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	if v := mustMetric(t, r.d, "tpwatch_config_reloads_failed_total"); v != 0 {
		t.Errorf("tpwatch_config_reloads_failed_total = %v, want 0", v)
	}
	if v := mustMetric(t, r.d, "tpwatch_config_last_reload_successful"); v != 1 {
		t.Errorf("tpwatch_config_last_reload_successful = %v, want 1", v)
	}
	if n := len(with(r.log.all(), "config reloaded")); n != reloads {
		t.Errorf("%d reloads logged, want %d", n, reloads)
	}
	var counted float64
	for k, v := range gatherFlows(t, r.d) {
		counted += v
		if rule := k[strings.LastIndex(k, "/")+1:]; !ids[rule] {
			t.Errorf("flows counted under rule %q, in neither config", rule)
		}
	}
	flushed := with(r.log.all(), "flushed the flow table")
	if len(flushed) != 1 {
		t.Fatalf("%d flush lines", len(flushed))
	}
	if created := flushed[0]["flows_created"].(float64); created != counted || flushed[0]["flows_decided"] != counted {
		t.Errorf("%v flows created, %v decided, %v counted in tpwatch_flows_total: want them equal", created, flushed[0]["flows_decided"], counted)
	}
	// The last reload read configs[1].
	want := BPFFilter(loadPolicy(t, filepath.Join(dir, "config1.yaml")))
	if inForce, set := c.filters(); inForce != want || len(set) == 0 {
		t.Errorf("capture filter %q after %d SetFilter calls, want %q", inForce, len(set), want)
	}
	if r.d.timeouts.TCPAttempt != 2*time.Second {
		t.Errorf("timeouts in force %+v, want the last config's", r.d.timeouts)
	}
}

// A bad config sent by the reload channel (SIGHUP) is refused and counted,
// and nothing changes; a good one then goes in force. A closed channel
// ends the reloads, not the housekeeping.
func TestReloadChannelRefusesABadConfig(t *testing.T) {
	dir := t.TempDir()
	siteFile := writeFile(t, dir, "site.yaml", liveSite)
	reload := make(chan struct{})
	b := newBackend()
	b.idle = -1
	r := start(t, Config{ConfigFile: siteFile, Reload: reload, LogRate: 1e-9, LogBurst: 1, SuppressedReport: 10 * time.Millisecond}, b)
	c := b.capture(t, "eth0", 1)
	c.waitReading(t)
	old := r.d.policy.load()
	oldFilter, _ := c.filters()
	if oldFilter != BPFFilter(old) {
		t.Fatalf("capture opened with filter %q, want the derived %q", oldFilter, BPFFilter(old))
	}

	replaceFile(t, siteFile, "roles:\n  agnet: [198.51.100.21]\n")
	reload <- struct{}{}
	failed := r.log.waitCount(t, "config reload failed: cannot load it; the previous config stays in force", 1)
	if !strings.Contains(failed[0]["error"].(string), "agnet") {
		t.Errorf("the failed reload does not say why: %v", failed[0])
	}
	if v := mustMetric(t, r.d, "tpwatch_config_reloads_failed_total"); v != 1 {
		t.Errorf("tpwatch_config_reloads_failed_total = %v, want 1", v)
	}
	if v := mustMetric(t, r.d, "tpwatch_config_last_reload_successful"); v != 0 {
		t.Errorf("tpwatch_config_last_reload_successful = %v, want 0", v)
	}
	if r.d.policy.load() != old {
		t.Error("a failed reload changed the policy")
	}
	if f, set := c.filters(); f != oldFilter || len(set) != 0 {
		t.Errorf("a failed reload changed the filter to %q (%d SetFilter calls)", f, len(set))
	}

	replaceFile(t, siteFile, liveSite+"  siem: [192.0.2.99]\nsiem:\n  ports: [udp/514]\n")
	reload <- struct{}{}
	r.log.waitCount(t, "config reloaded", 1)
	if v := mustMetric(t, r.d, "tpwatch_config_last_reload_successful"); v != 1 {
		t.Errorf("tpwatch_config_last_reload_successful = %v after a good reload, want 1", v)
	}
	if v := mustMetric(t, r.d, "tpwatch_config_reloads_failed_total"); v != 1 {
		t.Errorf("tpwatch_config_reloads_failed_total = %v, want still 1", v)
	}
	if f, _ := c.filters(); f == oldFilter || f != BPFFilter(r.d.policy.load()) || !strings.Contains(f, "514") {
		t.Errorf("capture filter after the SIEM ports were added: %q", f)
	}

	close(reload)
	// Two refused flows: the second is suppressed, and only a
	// housekeeping still at work summarises it.
	c.send(
		tcpRec(t, t0, agent, em, 50000, grpcPort, syn),
		tcpRec(t, t0+ms(1), em, agent, grpcPort, 50000, rst|ack),
		tcpRec(t, t0+ms(2), agent, em, 50001, grpcPort, syn),
		tcpRec(t, t0+ms(3), em, agent, grpcPort, 50001, rst|ack),
	)
	c.idleAt(t0 + ms(4))
	r.log.waitCount(t, "suppressed 1 flow log events over the log rate limit (--log.rate); tpwatch_flows_total counts every flow", 1)
	logs := r.log.all()
	if n, m := len(with(logs, "config reloaded")), len(with(logs, "config reload failed: cannot load it; the previous config stays in force")); n != 1 || m != 1 {
		t.Errorf("%d reloads and %d failed ones logged, want one each: the closed channel reloaded", n, m)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}

// A reload that shortens the attempt timeout applies to the flows already
// in the table: an unanswered SYN older than the new timeout is blocked as
// soon as the packet clock moves, where the old timeout kept it open.
func TestReloadedTimeoutsApplyToOpenFlows(t *testing.T) {
	dir := t.TempDir()
	siteFile := writeFile(t, dir, "site.yaml", liveSite+"timeouts: {tcp_attempt: 30s}\n")
	b := newBackend()
	b.idle = -1 // the test moves the clock
	r := start(t, Config{ConfigFile: siteFile, LogRate: -1}, b)
	c := b.capture(t, "eth0", 1)
	sec := int64(time.Second)
	c.send(tcpRec(t, t0, agent, em, 50000, grpcPort, syn))
	c.idleAt(t0 + 3*sec)
	// A flow decided at once, after the clock moved: once it is counted,
	// the table has seen the 3s go by.
	c.send(
		tcpRec(t, t0+3*sec+ms(1), agent2, em, 50001, grpcPort, syn),
		tcpRec(t, t0+3*sec+ms(2), em, agent2, grpcPort, 50001, rst|ack),
	)
	c.idleAt(t0 + 3*sec + ms(3))
	waitMetric(t, r.d, 1, "tpwatch_flows_total", "verdict", "blocked", "reason", "refused", "rule", "agent-em-grpc")
	noResponse := []string{"verdict", "blocked", "reason", "no_response", "rule", "agent-em-grpc"}
	if v, _ := metric(t, r.d, "tpwatch_flows_total", noResponse...); v != 0 {
		t.Fatalf("the SYN is blocked after 3s with a 30s attempt timeout (%v)", v)
	}

	replaceFile(t, siteFile, liveSite+"timeouts: {tcp_attempt: 2s}\n")
	if err := r.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if rl := with(r.log.all(), "config reloaded"); len(rl) != 1 || rl[0]["timeouts_changed"] != true {
		t.Errorf("reload log %v, want one line with timeouts_changed", rl)
	}
	c.idleAt(t0 + 4*sec)
	waitMetric(t, r.d, 1, "tpwatch_flows_total", noResponse...)
	blocked := r.log.waitCount(t, "blocked flow", 2)
	if e := blocked[1]; e["reason"] != "no_response" || e["src_port"] != 50000.0 {
		t.Errorf("second blocked flow logged %v, want the unanswered SYN from port 50000", e)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}

// A reload that changes the derived filter changes it on the open capture
// and for the next open. A filter the capture or libpcap refuses fails
// the reload and keeps the old config and filter.
func TestReloadChangesTheCaptureFilter(t *testing.T) {
	dir := t.TempDir()
	siteFile := writeFile(t, dir, "site.yaml", liveSite)
	b := newBackend()
	r := start(t, Config{ConfigFile: siteFile}, b)
	c := b.capture(t, "eth0", 1)
	c.waitReading(t)

	withSIEM := liveSite + "  siem: [192.0.2.99]\nsiem:\n  ports: [udp/514]\n"
	replaceFile(t, siteFile, withSIEM)
	if err := r.d.Reload(); err != nil {
		t.Fatal(err)
	}
	filter := BPFFilter(r.d.policy.load())
	if f, set := c.filters(); f != filter || len(set) != 1 || !strings.Contains(f, "192.0.2.99") {
		t.Fatalf("capture filter %q after %v, want %q", f, set, filter)
	}

	refuse := func(expr string) error { return fmt.Errorf("%w %q: refused by the test", live.ErrBadFilter, expr) }
	before := r.d.policy.load()
	for i, tc := range []struct {
		name             string
		capture, backend func(string) error
	}{
		{name: "the capture refuses it", capture: refuse},
		{name: "libpcap refuses it", backend: refuse},
	} {
		c.setRefuse(tc.capture, nil)
		b.setCheckFilter(func(expr string, _ live.Options) error {
			if tc.backend != nil {
				return tc.backend(expr)
			}
			return nil
		})
		replaceFile(t, siteFile, strings.Replace(withSIEM, "[udp/514]", "[udp/514, tcp/6514]", 1))
		err := r.d.Reload()
		if !errors.Is(err, live.ErrBadFilter) {
			t.Errorf("%s: Reload: %v, want ErrBadFilter", tc.name, err)
		}
		if v := mustMetric(t, r.d, "tpwatch_config_reloads_failed_total"); v != float64(i+1) {
			t.Errorf("%s: tpwatch_config_reloads_failed_total = %v, want %d", tc.name, v, i+1)
		}
		if r.d.policy.load() != before {
			t.Errorf("%s: the refused config went in force", tc.name)
		}
		if f, set := c.filters(); f != filter || len(set) != 1 {
			t.Errorf("%s: capture filter %q after %d SetFilter calls, want it unchanged", tc.name, f, len(set))
		}
		if len(with(r.log.all(), "config reload failed: capture filter; the previous config stays in force")) != i+1 {
			t.Errorf("%s: the failed reload is not logged", tc.name)
		}
	}
	b.setCheckFilter(nil)

	// A capture that passed the check and then refuses the filter (one
	// reopened meanwhile on another link) keeps its own; the others and
	// the config change.
	c.setRefuse(nil, refuse)
	replaceFile(t, siteFile, strings.Replace(withSIEM, "[udp/514]", "[udp/514, tcp/6514]", 1))
	if err := r.d.Reload(); err != nil {
		t.Errorf("Reload with a capture that keeps its filter: %v", err)
	}
	if len(with(r.log.all(), "capture filter not changed on this interface")) != 1 {
		t.Error("the capture that kept its filter is not logged")
	}
	if r.d.policy.load() == before {
		t.Error("the config did not go in force")
	}
	c.setRefuse(nil, nil)

	// The next open uses the filter in force.
	c.fail(errors.New("read eth0: gone"), 0)
	c2 := b.capture(t, "eth0", 2)
	if c2.opts.BPF != filter || !c2.opts.BPFInVLANs {
		t.Errorf("reopened with filter %q (in VLANs: %v), want %q", c2.opts.BPF, c2.opts.BPFInVLANs, filter)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}

// A filter given with --bpf is the user's: reloads leave it alone, and it
// is applied as given, not extended into VLANs.
func TestReloadKeepsAGivenFilter(t *testing.T) {
	dir := t.TempDir()
	siteFile := writeFile(t, dir, "site.yaml", liveSite)
	b := newBackend()
	var checked []string
	b.setCheckFilter(func(expr string, o live.Options) error {
		checked = append(checked, expr)
		return nil
	})
	r := start(t, Config{ConfigFile: siteFile, Live: live.Options{BPF: "tcp port 3741"}}, b)
	c := b.capture(t, "eth0", 1)
	c.waitReading(t)
	replaceFile(t, siteFile, liveSite+"  siem: [192.0.2.99]\nsiem:\n  ports: [udp/514]\n")
	if err := r.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if f, set := c.filters(); f != "tcp port 3741" || len(set) != 0 || c.opts.BPFInVLANs {
		t.Errorf("capture filter %q (in VLANs: %v) after %d SetFilter calls, want the --bpf one as given", f, c.opts.BPFInVLANs, len(set))
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if len(checked) != 1 || checked[0] != "tcp port 3741" {
		t.Errorf("filters checked: %q, want --bpf once at the start", checked)
	}
}

// Without a config the daemon learns the inventory from the traffic as
// replay does, and gives the same counts; a reload has nothing to read
// again and succeeds.
func TestRunWithoutAConfigLearnsTheInventory(t *testing.T) {
	const pcap = "../pcaps/demo-site.pcapng"
	recs := fileRecords(t, pcap)
	b := newBackend()
	r := start(t, Config{}, b)
	c := b.capture(t, "eth0", 1)
	if c.opts.BPF != inferredFilter {
		t.Errorf("filter without a config %q, want %q", c.opts.BPF, inferredFilter)
	}
	c.send(recs...)
	waitMetric(t, r.d, float64(len(recs)), "tpwatch_capture_packets_total", "interface", "eth0")
	if err := r.d.Reload(); err != nil {
		t.Errorf("Reload without a config: %v", err)
	}
	if len(with(r.log.all(), "reload: no --config or --matrix to read again")) != 1 {
		t.Error("the reload without a config is not logged")
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	sameCounts(t, "daemon vs replay, inferred", gatherFlows(t, r.d), replayFlows(t, "", pcap))
	// The nine hosts the demo's traffic shows in a role: the Isilon and
	// the CEE server behind it never get an answer through, so they show
	// nothing (evidence only).
	if v := mustMetric(t, r.d, "tpwatch_inventory_learned_hosts"); v != 9 {
		t.Errorf("tpwatch_inventory_learned_hosts = %v, want the 9 hosts the demo shows in a role", v)
	}
}

// A reload while an interface is being opened, with the filter before it,
// reaches the capture that open returns: at the start (before Run reads
// it) and on a reopen.
func TestReloadDuringAnOpenReachesItsCapture(t *testing.T) {
	dir := t.TempDir()
	siteFile := writeFile(t, dir, "site.yaml", liveSite)
	opening, proceed := make(chan struct{}), make(chan struct{})
	hold := openStep{setup: func(*fakeCapture) {
		opening <- struct{}{}
		<-proceed
	}}
	b := newBackend()
	b.script("eth0", hold, hold)
	r := start(t, Config{ConfigFile: siteFile}, b)

	reloadDuringOpen := func(config string) string {
		t.Helper()
		select {
		case <-opening:
		case <-time.After(waitLimit):
			t.Fatal("no open")
		}
		replaceFile(t, siteFile, config)
		if err := r.d.Reload(); err != nil {
			t.Fatal(err)
		}
		proceed <- struct{}{}
		return BPFFilter(r.d.policy.load())
	}
	want := reloadDuringOpen(liveSite + "  siem: [192.0.2.99]\nsiem:\n  ports: [udp/514]\n")
	c := b.capture(t, "eth0", 1)
	c.waitReading(t)
	if f, _ := c.filters(); f != want {
		t.Errorf("the first capture runs filter %q, want the reloaded %q", f, want)
	}

	c.fail(errors.New("read eth0: gone"), 0)
	want = reloadDuringOpen(liveSite + "  siem: [192.0.2.98]\nsiem:\n  ports: [udp/515]\n")
	c = b.capture(t, "eth0", 2)
	c.waitReading(t)
	if f, _ := c.filters(); f != want {
		t.Errorf("the reopened capture runs filter %q, want the reloaded %q", f, want)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}
