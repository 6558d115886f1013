//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestExportedNFTablesRules closes the loop of `tpwatch policy export`:
// every host of the lab applies the nftables rules tpwatch exports for it
// (inbound drops what the matrix does not allow), and the documented
// flows still get through and come out allowed, while flows the matrix
// does not allow are dropped by the host they were meant for and come out
// unexpected, with no answer.
func TestExportedNFTablesRules(t *testing.T) {
	need(t, runtime.GOOS == "linux", "Linux network namespaces")
	need(t, os.Geteuid() == 0, "root")
	need(t, have("ip"), "ip (Debian package iproute2)")
	need(t, have("nft"), "nft (Debian package nftables)")

	bin := buildTpwatch(t)
	l := newLab(t)
	l.mirror() // no firewall on the router: the hosts' own rules decide
	site := filepath.Join(t.TempDir(), "site.yaml")
	writeSite(t, site, l, "features: {wmi-auto-deploy: true}\n")

	dir := t.TempDir()
	for _, name := range hostNames {
		h := l.hosts[name]
		file := filepath.Join(dir, name+".nft")
		if out, err := exec.Command(bin, "policy", "export", "--format", "nftables", "--config", site, "--host", h.addr, "--output", file).CombinedOutput(); err != nil {
			t.Fatalf("export for %s: %v\n%s", name, err, out)
		}
		// Twice: applying again replaces the table rather than adding to it.
		l.nftFile(h.ns, file)
		first := l.nftList(h.ns)
		l.nftFile(h.ns, file)
		if again := l.nftList(h.ns); again != first {
			t.Errorf("%s: applying the export twice changed the ruleset:\n%s\nthen\n%s", name, first, again)
		}
	}

	l.serve("em", "tcp:3741", "tcp:3740", "tcp:3389")
	l.serve("sql", "tcp:1433", "udp:1434")
	l.serve("tm", "tcp:10000", "tcp:10001")
	l.serve("agent", "tcp:135")
	d := startDaemon(t, bin, l.span, site)
	d.waitFor(t, 10*time.Second, "tpwatch_capture_up 1", func(s []sample) bool {
		v, _ := value(s, "tpwatch_capture_up", map[string]string{"interface": l.span})
		return v == 1
	})

	cases := []struct {
		from, spec, client    string
		verdict, reason, rule string
	}{
		{"agent", "tcp:em:3741", "ok", "allowed", "", "agent-em-grpc"},
		{"agent", "tcp:tm:10000", "ok", "allowed", "", "agent-tm-tcp"},
		{"agent", "tcp:tm:10001", "ok", "allowed", "", "agent-tm-tcp"},
		{"console", "tcp:em:3740", "ok", "allowed", "", "console-em-grpc"},
		{"em", "tcp:sql:1433", "ok", "allowed", "", "em-sql-tds"},
		{"em", "udp:sql:1434", "ok", "allowed", "", "em-sql-browser"},
		{"em", "tcp:agent:135", "ok", "allowed", "", "em-agent-wmi-rpc"},
		// Not in the matrix: the server's own rules drop them.
		{"agent", "tcp:em:3389", "timeout", "unexpected", "no_rule", ""},
		{"console", "tcp:sql:1433", "timeout", "unexpected", "unauthorized_client", "em-sql-tds"},
	}
	for _, from := range []string{"agent", "console", "em"} {
		var specs []string
		for _, c := range cases {
			if c.from == from {
				specs = append(specs, c.spec)
			}
		}
		got := l.dial(from, specs...)
		for _, c := range cases {
			if c.from == from && got[c.spec] != c.client {
				t.Errorf("%s → %s: client saw %q, want %q", c.from, c.spec, got[c.spec], c.client)
			}
		}
	}
	for _, c := range cases {
		labels := map[string]string{"verdict": c.verdict, "reason": c.reason, "rule": c.rule}
		d.waitFor(t, 15*time.Second, fmt.Sprintf("%s → %s: tpwatch_flows_total%v", c.from, c.spec, labels), func(s []sample) bool {
			v, _ := value(s, "tpwatch_flows_total", labels)
			return v >= 1
		})
	}
	for _, x := range d.scrape(t) {
		if x.name != "tpwatch_flows_total" || x.value == 0 {
			continue
		}
		t.Logf("tpwatch_flows_total{verdict=%q,reason=%q,rule=%q} %v", x.labels["verdict"], x.labels["reason"], x.labels["rule"], x.value)
		if x.labels["verdict"] == "blocked" {
			t.Errorf("a documented flow was blocked with the exported rules in place: %v %v", x.labels, x.value)
		}
	}
	for _, e := range d.logEvents() {
		if e["verdict"] == "unexpected" && e["outcome"] != "no_response" {
			t.Errorf("an unexpected flow got through the exported rules: %v", e)
		}
	}
	// The Enterprise Manager's rules counted the agent's connection.
	if list := l.nftList(l.hosts["em"].ns); !regexp.MustCompile(`counter packets [1-9][0-9]* bytes [0-9]+ accept comment "tpwatch:agent-em-grpc"`).MatchString(list) {
		t.Errorf("the Enterprise Manager's agent-em-grpc rule counted nothing:\n%s", list)
	}
}

func (l *lab) nftFile(ns, file string) {
	l.t.Helper()
	if out, err := exec.Command("ip", "netns", "exec", ns, "nft", "-f", file).CombinedOutput(); err != nil {
		l.t.Fatalf("nft -f %s in %s: %v\n%s", file, ns, err, out)
	}
}

func (l *lab) nftList(ns string) string {
	l.t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "table", "inet", "tpwatch").CombinedOutput()
	if err != nil {
		l.t.Fatalf("nft list in %s: %v\n%s", ns, err, out)
	}
	return strings.TrimSpace(string(out))
}
