package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// tpwatch runs the command line in-process and returns what it printed and
// its exit status.
func tpwatch(t *testing.T, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	var out, errOut bytes.Buffer
	status = run(args, &out, &errOut)
	return out.String(), errOut.String(), status
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsageErrorsExit2(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no file", []string{"replay"}, "requires at least 1 arg"},
		{"unknown flag", []string{"replay", "--nope", "x.pcap"}, "unknown flag: --nope"},
		{"unknown command", []string{"replya"}, "unknown command"},
		{"bad format", []string{"replay", "--format", "xml", "x.pcap"}, `--format "xml"`},
		{"missing file", []string{"replay", "--format", "json", "/nonexistent/x.pcap"}, "/nonexistent/x.pcap"},
		{"check without config", []string{"policy", "check"}, "needs --config"},
		{"bad log level", []string{"--log.level", "loud", "policy"}, "--log.level"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, status := tpwatch(t, c.args...)
			if status != exitError {
				t.Errorf("status %d, want 2; stderr: %s", status, stderr)
			}
			if !strings.Contains(stderr, c.want) {
				t.Errorf("stderr %q does not say %q", stderr, c.want)
			}
			if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
				t.Errorf("stack trace on stderr: %s", stderr)
			}
		})
	}
}

func TestPolicyTableAndJSON(t *testing.T) {
	out, stderr, status := tpwatch(t, "policy")
	if status != 0 {
		t.Fatalf("status %d: %s", status, stderr)
	}
	for _, want := range []string{"agent-em-grpc", "enterprise-manager", "3741", "isilon-cee", "12228", "netappc-agent-fpolicy", "9999", "panzura-agent-amqp", "4497", "nasuni-agent-amqp", "5671"} {
		if !strings.Contains(out, want) {
			t.Errorf("policy table lacks %q", want)
		}
	}
	out, _, status = tpwatch(t, "policy", "--format", "json")
	if status != 0 {
		t.Fatalf("json status %d", status)
	}
	var rules []map[string]any
	if err := json.Unmarshal([]byte(out), &rules); err != nil {
		t.Fatalf("policy --format json is not a JSON array: %v", err)
	}
	if len(rules) < 38 {
		t.Errorf("%d rules, want every row of the document (38)", len(rules))
	}
	for _, r := range rules {
		for _, k := range []string{"id", "client", "server", "transport", "ports", "description", "section"} {
			if _, ok := r[k]; !ok {
				t.Errorf("rule %v lacks %q", r["id"], k)
			}
		}
	}
}

func TestPolicyCheck(t *testing.T) {
	good := writeFile(t, "site.yaml", "roles:\n  enterprise-manager: [192.0.2.10]\n  agent: [198.51.100.0/24]\nfeatures:\n  wmi-auto-deploy: true\n")
	out, stderr, status := tpwatch(t, "policy", "check", "--config", good)
	if status != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("valid config: status %d, out %q, err %q", status, out, stderr)
	}
	bad := writeFile(t, "bad.yaml", "roles:\n  enterprise-manager: [192.0.2.10]\n  agnet: [198.51.100.0/24]\n")
	_, stderr, status = tpwatch(t, "policy", "check", "--config", bad)
	if status != exitError {
		t.Fatalf("bad config: status %d, want 2", status)
	}
	for _, want := range []string{"bad.yaml:3:", `"agnet"`, `"agent"`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("error %q does not contain %q", stderr, want)
		}
	}
	// The same config makes replay fail before reading anything.
	_, stderr, status = tpwatch(t, "replay", "--config", bad, "--format", "json", "nonexistent.pcap")
	if status != exitError || !strings.Contains(stderr, "bad.yaml:3:") {
		t.Errorf("replay with bad config: status %d, stderr %q", status, stderr)
	}
}

func TestVersion(t *testing.T) {
	defer func(v, r, b, d string) { version, revision, branch, buildDate = v, r, b, d }(version, revision, branch, buildDate)
	version, revision, branch, buildDate = "1.2.3", "abc1234", "windows", "20261202-14:00:00"
	out, _, status := tpwatch(t, "version")
	want := "tpwatch, version 1.2.3 (branch: windows, revision: abc1234)\n" +
		"  build date:       20261202-14:00:00\n" +
		"  go version:       " + runtime.Version() + "\n" +
		"  platform:         " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if status != 0 || out != want {
		t.Errorf("version: %d\n%s\nwant\n%s", status, out, want)
	}
	// --version stays the one line it always was.
	out, _, status = tpwatch(t, "--version")
	if status != 0 || out != "tpwatch 1.2.3\n" {
		t.Errorf("--version: %d %q", status, out)
	}
}

func TestHelpTeaches(t *testing.T) {
	out, _, status := tpwatch(t, "replay", "--help")
	if status != 0 {
		t.Fatalf("status %d", status)
	}
	for _, want := range []string{"Examples:", "--config", "--format", "--print-inventory", "no_response", "Exit status"} {
		if !strings.Contains(out, want) {
			t.Errorf("replay --help lacks %q", want)
		}
	}
}
