package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicyExport(t *testing.T) {
	site := filepath.Join("..", "..", "policy", "export", "testdata", "site.yaml")
	out, stderr, status := tpwatch(t, "policy", "export", "--format", "powershell", "--config", site, "--host", "192.0.2.10")
	if status != 0 || !strings.Contains(out, "New-NetFirewallRule -Name 'tpwatch-agent-em-grpc-in'") || !strings.Contains(out, site) {
		t.Errorf("powershell export: %d %q\n%s", status, stderr, out)
	}
	file := filepath.Join(t.TempDir(), "agent.nft")
	_, stderr, status = tpwatch(t, "policy", "export", "--format", "nftables", "--config", site, "--role", "agent", "--inbound-policy", "accept", "-o", file)
	got, err := os.ReadFile(file)
	if status != 0 || err != nil || !strings.Contains(string(got), "policy accept;") || !strings.Contains(string(got), `comment "tpwatch:agent-em-grpc"`) {
		t.Errorf("nftables export to a file: %d %q %v\n%s", status, stderr, err, got)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "iptables", "--config", site, "--role", "agent"}, "want powershell or nftables"},
		{[]string{"--format", "nftables", "--role", "agent"}, "needs --config"},
		{[]string{"--format", "nftables", "--config", site}, "one of --host ADDRESS and --role ROLE"},
		{[]string{"--format", "nftables", "--config", site, "--host", "192.0.2.10", "--role", "agent"}, "one of --host"},
		{[]string{"--format", "nftables", "--config", site, "--host", "em1"}, `--host "em1": want an IP address`},
		{[]string{"--format", "nftables", "--config", site, "--host", "203.0.113.9"}, "203.0.113.9 holds no role"},
		{[]string{"--format", "nftables", "--config", site, "--role", "agnet"}, `--role "agnet"`},
		{[]string{"--format", "nftables", "--config", site, "--role", "agent", "--inbound-policy", "reject"}, "want drop or accept"},
		{[]string{"--format", "powershell", "--config", site, "--role", "agent", "--profile", "Domain, Private"}, "without spaces"},
	} {
		_, stderr, status := tpwatch(t, append([]string{"policy", "export"}, c.args...)...)
		if status != exitError || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: status %d, stderr %q; want 2 and %q", c.args, status, stderr, c.want)
		}
	}
}
