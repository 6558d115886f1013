//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/internal/testenv"
)

func TestMain(m *testing.M) {
	if status := runHelper(); status >= 0 {
		os.Exit(status)
	}
	os.Exit(m.Run())
}

// need skips the test when something it needs is missing, except under CI,
// where that is a broken set-up and fails.
func need(t *testing.T, ok bool, what string) {
	t.Helper()
	testenv.Need(t, ok, what)
}

func have(cmd string) bool {
	_, err := exec.LookPath(cmd)
	return err == nil
}

// flowCase is one flow the lab makes, what the client sees, and what
// tpwatch must conclude.
type flowCase struct {
	from, spec     string // client host; "proto:server-host:port"
	client         string // the client's outcome
	verdict        string
	reason, rule   string
	logged         bool // blocked and unexpected flows are logged once
	unexpectedPort string
}

var flowCases = []flowCase{
	{from: "agent", spec: "tcp:tm:10000", client: "timeout", verdict: "blocked", reason: "no_response", rule: "agent-tm-tcp", logged: true},
	{from: "agent", spec: "tcp:tm:10001", client: "refused", verdict: "blocked", reason: "refused", rule: "agent-tm-tcp", logged: true},
	{from: "em", spec: "udp:sql:1434", client: "unreachable", verdict: "blocked", reason: "icmp_unreachable", rule: "em-sql-browser", logged: true},
	{from: "agent", spec: "tcp:em:3741", client: "ok", verdict: "allowed", rule: "agent-em-grpc"},
	{from: "em", spec: "tcp:sql:1433", client: "ok", verdict: "allowed", rule: "em-sql-tds"},
	{from: "console", spec: "tcp:em:3740", client: "ok", verdict: "allowed", rule: "console-em-grpc"},
	{from: "agent", spec: "tcp:em:3389", client: "ok", verdict: "unexpected", reason: "no_rule", logged: true, unexpectedPort: "3389"},
}

func TestLiveNetwork(t *testing.T) {
	need(t, runtime.GOOS == "linux", "Linux network namespaces")
	need(t, os.Geteuid() == 0, "root")
	need(t, have("ip"), "ip (Debian package iproute2)")
	need(t, have("nft"), "nft (Debian package nftables)")

	bin := buildTpwatch(t)
	l := newLab(t)
	l.firewall()
	l.serve("em", "tcp:3741", "tcp:3740", "tcp:3389")
	l.serve("sql", "tcp:1433", "udp:1434")

	site := filepath.Join(t.TempDir(), "site.yaml")
	writeSite(t, site, l, "")
	d := startDaemon(t, bin, l.span, site)
	// tcpdump records what the daemon sees, for replay to judge the same
	// traffic (the events_are_replay subtest).
	need(t, have("tcpdump"), "tcpdump (Debian package tcpdump)")
	recording := filepath.Join(t.TempDir(), "span.pcap")
	// Nanoseconds, as the daemon reads them: a microsecond file would
	// differ in every ts_first.
	tcpdump := exec.Command("tcpdump", "-i", l.span, "-U", "-n", "-s", "256", "--time-stamp-precision=nano", "-w", recording)
	if err := tcpdump.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tcpdump.Process.Kill(); tcpdump.Wait() })
	time.Sleep(time.Second) // tcpdump opens its capture

	t.Run("capture_up", func(t *testing.T) {
		d.waitFor(t, 10*time.Second, "tpwatch_capture_up 1", func(s []sample) bool {
			v, _ := value(s, "tpwatch_capture_up", map[string]string{"interface": l.span})
			return v == 1
		})
	})

	t.Run("verdicts", func(t *testing.T) {
		for _, from := range []string{"agent", "em", "console"} {
			var specs []string
			for _, c := range flowCases {
				if c.from == from {
					specs = append(specs, c.spec)
				}
			}
			got := l.dial(from, specs...)
			for _, c := range flowCases {
				if c.from == from && got[c.spec] != c.client {
					t.Errorf("lab: %s → %s: client saw %q, want %q (the lab is broken, not tpwatch)", c.from, c.spec, got[c.spec], c.client)
				}
			}
		}
		for _, c := range flowCases {
			labels := map[string]string{"verdict": c.verdict, "reason": c.reason, "rule": c.rule}
			d.waitFor(t, 15*time.Second, fmt.Sprintf("%s → %s: tpwatch_flows_total%v", c.from, c.spec, labels), func(s []sample) bool {
				v, _ := value(s, "tpwatch_flows_total", labels)
				return v >= 1
			})
		}
		s := d.scrape(t)
		// Nothing the lab does may come out with a wrong verdict for
		// these rules: each rule's flows all have the expected outcome.
		checked := map[string]bool{}
		for _, c := range flowCases {
			if c.rule == "" || checked[c.rule] {
				continue
			}
			checked[c.rule] = true
			for _, x := range s {
				if x.name != "tpwatch_flows_total" || x.labels["rule"] != c.rule || x.value == 0 {
					continue
				}
				if !expectedFor(c.rule, x.labels["verdict"], x.labels["reason"]) {
					t.Errorf("rule %s has %v flows with verdict %s/%s", c.rule, x.value, x.labels["verdict"], x.labels["reason"])
				}
			}
		}
		if v, _ := value(s, "tpwatch_unexpected_flows_total", map[string]string{"transport": "tcp", "port": "3389", "client_role": "agent", "server_role": "enterprise-manager"}); v < 1 {
			t.Errorf("tpwatch_unexpected_flows_total for agent → enterprise-manager tcp/3389 is %v, want 1", v)
		}
		if v, _ := value(s, "tpwatch_capture_packets_total", map[string]string{"interface": l.span}); v < 20 {
			t.Errorf("tpwatch_capture_packets_total is %v, want the lab's packets", v)
		}
	})

	t.Run("flow_log", func(t *testing.T) {
		events := d.logEvents()
		for _, c := range flowCases {
			parts := strings.Split(c.spec, ":")
			n := 0
			for _, e := range events {
				if e["verdict"] == c.verdict && e["reason"] == c.reason && fmt.Sprint(e["dst_port"]) == parts[2] &&
					e["src_ip"] == l.hosts[c.from].addr && e["dst_ip"] == l.hosts[parts[1]].addr {
					n++
					for _, k := range []string{"ts_first", "ts_last", "transport", "src_port", "src_roles", "dst_roles", "rule", "conn_state", "history", "packets_out", "packets_in", "bytes_out", "bytes_in"} {
						if _, ok := e[k]; !ok {
							t.Errorf("log event of %s → %s lacks %q: %v", c.from, c.spec, k, e)
						}
					}
					if c.reason == "icmp_unreachable" && (e["icmp_type"] != 3.0 || e["icmp_code"] != 13.0) {
						t.Errorf("icmp_unreachable event has icmp type/code %v/%v, want 3/13 (admin prohibited)", e["icmp_type"], e["icmp_code"])
					}
				}
			}
			want := 0
			if c.logged {
				want = 1
			}
			if n != want {
				t.Errorf("%s → %s (%s/%s) logged %d times, want %d", c.from, c.spec, c.verdict, c.reason, n, want)
			}
		}
	})

	// The daemon logs a blocked or unexpected flow once its outcome is
	// known; replay writes each flow when it ends. On the same traffic the
	// two must be the same flows with the same fields and findings; only
	// what a flow did after its outcome was known (its last time, counters,
	// history and state) may have grown, and the first packet's time may
	// differ by the microseconds between two capture handles' stamps.
	t.Run("events_are_replay", func(t *testing.T) {
		// Replay's clock is its packets' times: a flow made after the
		// daemon decided every attempt lets replay see their timeouts
		// pass too, or it would call them pending at the end of the file.
		l.dial("console", "tcp:em:3740")
		time.Sleep(2 * time.Second) // the last packets reach the recording
		tcpdump.Process.Signal(syscall.SIGTERM)
		tcpdump.Wait()
		out, err := exec.Command(bin, "replay", "--format", "json", "--config", site, recording).Output()
		if ee, ok := err.(*exec.ExitError); err != nil && !(ok && ee.ExitCode() == 1) {
			t.Fatalf("replay of the recording: %v", err)
		}
		key := func(e map[string]any) string {
			return fmt.Sprint(e["transport"], e["src_ip"], e["src_port"], e["dst_ip"], e["dst_port"])
		}
		replayed := map[string]map[string]any{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var e map[string]any
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("replay line %q: %v", line, err)
			}
			replayed[key(e)] = e
		}
		grown := map[string]bool{"ts_last": true, "packets_out": true, "packets_in": true, "bytes_out": true, "bytes_in": true, "history": true, "conn_state": true}
		compared := 0
		for _, e := range d.logEvents() {
			if e["verdict"] != "blocked" && e["verdict"] != "unexpected" {
				continue
			}
			r, ok := replayed[key(e)]
			if !ok {
				t.Errorf("the daemon logged %v, which replay of the same traffic does not report", e)
				continue
			}
			compared++
			for k, want := range r {
				got, ok := e[k]
				switch {
				case !ok:
					t.Errorf("%s: the event lacks %q (replay: %v)", key(e), k, want)
				case k == "ts_first":
					// Two capture handles stamp the same packet apart:
					// a packet without a kernel stamp gets each socket's
					// own delivery time, microseconds apart on an idle
					// machine, tens of milliseconds on a loaded one. A
					// missed first packet would show as a second or more
					// (the next SYN retransmission, the next datagram of
					// a retry).
					a, errA := time.Parse(time.RFC3339Nano, fmt.Sprint(got))
					b, errB := time.Parse(time.RFC3339Nano, fmt.Sprint(want))
					if errA != nil || errB != nil || a.Sub(b).Abs() > 250*time.Millisecond {
						t.Errorf("%s: ts_first is %v in the event, %v in replay", key(e), got, want)
					}
				case !grown[k] && fmt.Sprint(got) != fmt.Sprint(want):
					t.Errorf("%s: %s is %v in the event, %v in replay", key(e), k, got, want)
				}
			}
			for k := range e {
				if _, ok := r[k]; !ok && k != "interface" && k != "level" && k != "message" && k != "time" {
					t.Errorf("%s: the event has %q, which replay does not write", key(e), k)
				}
			}
		}
		if compared < 4 {
			t.Errorf("only %d logged flows compared with replay: the lab's blocked and unexpected flows are missing", compared)
		}
		t.Logf("%d logged flows compared with replay of the recording: same flows, fields and findings", compared)
	})

	t.Run("status_page", func(t *testing.T) { checkStatusPage(t, bin, d, l) })

	t.Run("promtool_check_metrics", func(t *testing.T) {
		promtool, err := exec.LookPath("promtool")
		need(t, err == nil, "promtool (Debian package prometheus)")
		resp, err := http.Get("http://" + d.addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("promtool check metrics on the daemon's /metrics: %v\n%s", err, out)
		}
	})

	t.Run("prometheus", func(t *testing.T) { checkPrometheus(t, d.addr) })

	t.Run("reload", func(t *testing.T) {
		before, _ := value(d.scrape(t), "tpwatch_config_last_reload_success_timestamp_seconds", nil)
		writeSite(t, site, l, "allow:\n  - {id: rdp-agent, client: agent, server: enterprise-manager, transport: tcp, ports: [3389]}\n")
		d.signal(t, syscall.SIGHUP)
		d.waitFor(t, 10*time.Second, "a newer successful reload", func(s []sample) bool {
			ts, _ := value(s, "tpwatch_config_last_reload_success_timestamp_seconds", nil)
			ok, _ := value(s, "tpwatch_config_last_reload_successful", nil)
			return ts > before && ok == 1
		})
		// The new rule applies to new flows at once.
		if got := l.dial("agent", "tcp:em:3389"); got["tcp:em:3389"] != "ok" {
			t.Fatalf("lab: agent → em 3389: %v", got)
		}
		allowedRDP := map[string]string{"verdict": "allowed", "reason": "", "rule": "rdp-agent"}
		d.waitFor(t, 10*time.Second, "agent → em 3389 allowed by the reloaded rule rdp-agent", func(s []sample) bool {
			v, _ := value(s, "tpwatch_flows_total", allowedRDP)
			return v == 1
		})

		if err := os.WriteFile(site, []byte("roles:\n  agnet: [10.200.1.2]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		d.signal(t, syscall.SIGHUP)
		d.waitFor(t, 10*time.Second, "tpwatch_config_last_reload_successful 0", func(s []sample) bool {
			ok, found := value(s, "tpwatch_config_last_reload_successful", nil)
			failed, _ := value(s, "tpwatch_config_reloads_failed_total", nil)
			return found && ok == 0 && failed >= 1
		})
		if err := d.alive(); err != nil {
			t.Fatalf("a bad config stopped the daemon: %v", err)
		}
		// The old config stays in force.
		l.dial("agent", "tcp:em:3389")
		d.waitFor(t, 10*time.Second, "rdp-agent still in force after a failed reload", func(s []sample) bool {
			v, _ := value(s, "tpwatch_flows_total", allowedRDP)
			return v == 2
		})
		if !strings.Contains(d.stderr.String(), "agnet") {
			t.Errorf("the failed reload's log does not name the bad role")
		}
	})

	t.Run("sigterm", func(t *testing.T) {
		// An attempt in flight when the daemon stops is flushed, not lost.
		attempt := l.helper(l.hosts["agent"].ns, "dial", "tcp:"+l.hosts["tm"].addr+":10000")
		if err := attempt.Start(); err != nil {
			t.Fatal(err)
		}
		defer attempt.Wait()
		time.Sleep(700 * time.Millisecond)
		start := time.Now()
		d.signal(t, syscall.SIGTERM)
		select {
		case err := <-d.done:
			if err != nil {
				t.Fatalf("tpwatch exited with %v after SIGTERM, want status 0\n%s", err, d.stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("tpwatch did not exit within 10s of SIGTERM")
		}
		t.Logf("tpwatch exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
		flushed := false
		for _, e := range d.logEvents() {
			if e["message"] == "flushed the flow table" && e["interface"] == l.span {
				if n, _ := e["flows"].(float64); n >= 1 {
					flushed = true
				}
			}
		}
		if !flushed {
			t.Errorf("no log of a flush with the attempt in flight:\n%s", d.stderr.String())
		}
	})
}

// expectedFor says whether a verdict/reason is one the lab produces for a
// rule.
func expectedFor(rule, verdict, reason string) bool {
	for _, c := range flowCases {
		if c.rule == rule && c.verdict == verdict && c.reason == reason {
			return true
		}
	}
	return false
}

func buildTpwatch(t *testing.T) string {
	t.Helper()
	// The go command that runs the test, or the one in /usr/local/go
	// where a root shell's PATH lacks it.
	goBin := "/usr/local/go/bin/go"
	if p, err := exec.LookPath("go"); err == nil {
		goBin = p
	}
	bin := filepath.Join(t.TempDir(), "tpwatch")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/tpwatch/tpwatch/cmd/tpwatch")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// writeSite writes the lab's inventory with short timeouts, so blocked
// flows are decided in seconds, plus extra YAML.
func writeSite(t *testing.T, path string, l *lab, extra string) {
	t.Helper()
	h := l.hosts
	site := fmt.Sprintf(`roles:
  agent: [%s]
  enterprise-manager: [%s]
  sql-server: [%s]
  threat-manager: [%s]
  admin-console: [%s]
timeouts: {tcp_attempt: 3s, udp_reply: 2s}
%s`, h["agent"].addr, h["em"].addr, h["sql"].addr, h["tm"].addr, h["console"].addr, extra)
	if err := os.WriteFile(path, []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
}

// daemonProc is a running `tpwatch run`.
type daemonProc struct {
	cmd    *exec.Cmd
	addr   string // host:port of the metrics
	stderr *lockedBuffer
	done   chan error
}

func startDaemon(t *testing.T, bin, iface, site string) *daemonProc {
	t.Helper()
	return startDaemonArgs(t, bin, site, "--interface", iface)
}

// startDaemonArgs starts `tpwatch run` with the site config, a free metrics
// address and extra arguments, and waits until it serves /metrics.
func startDaemonArgs(t *testing.T, bin, site string, extra ...string) *daemonProc {
	t.Helper()
	return startDaemonIn(t, "", freeAddr(t), bin, site, extra...)
}

// startDaemonIn starts `tpwatch run` in network namespace ns (the root
// one when empty), serving its metrics at addr.
func startDaemonIn(t *testing.T, ns, addr, bin, site string, extra ...string) *daemonProc {
	t.Helper()
	d := &daemonProc{addr: addr, stderr: new(lockedBuffer), done: make(chan error, 1)}
	args := append([]string{bin, "run", "--config", site,
		"--web.listen-address", addr, "--log.format", "json", "--log.level", "info"}, extra...)
	if ns != "" {
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	d.cmd = exec.Command(args[0], args[1:]...)
	d.cmd.Stderr = d.stderr
	d.cmd.Stdout = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("tpwatch log:\n%s", d.stderr.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := scrape("http://" + addr + "/metrics"); err == nil {
			return d
		}
		if err := d.alive(); err != nil {
			t.Fatalf("tpwatch exited: %v\n%s", err, d.stderr.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("tpwatch did not serve /metrics within 15s\n%s", d.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (d *daemonProc) alive() error {
	select {
	case err := <-d.done:
		d.done <- err
		if err == nil {
			return errors.New("exited with status 0")
		}
		return err
	default:
		return nil
	}
}

func (d *daemonProc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

func (d *daemonProc) scrape(t *testing.T) []sample {
	t.Helper()
	s, err := scrape("http://" + d.addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return s
}

// waitFor scrapes until ok holds, and fails the test after timeout.
func (d *daemonProc) waitFor(t *testing.T, timeout time.Duration, what string, ok func([]sample) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s, err := scrape("http://" + d.addr + "/metrics")
		if err == nil && ok(s) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("after %v: not %s (scrape error: %v)", timeout, what, err)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// logEvents parses the daemon's JSON log lines.
func (d *daemonProc) logEvents() []map[string]any {
	var events []map[string]any
	sc := bufio.NewScanner(strings.NewReader(d.stderr.String()))
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			events = append(events, e)
		}
	}
	return events
}

// freeAddr returns a 127.0.0.1 address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// lockedBuffer is a bytes.Buffer a child process writes while the test
// reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
