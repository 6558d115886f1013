package export

import (
	"bufio"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tpwatch/tpwatch/policy"
)

// psRule is one New-NetFirewallRule command, its parameters by name.
type psRule map[string]string

// parsePS reads the commands of an exported script: each New-NetFirewallRule
// with its continuation lines (a backtick as the very last character), its
// parameters split on spaces outside single quotes and @( ) arrays.
func parsePS(t *testing.T, script string) []psRule {
	t.Helper()
	var rules []psRule
	var cmd strings.Builder
	sc := bufio.NewScanner(strings.NewReader(script))
	for sc.Scan() {
		line := sc.Text()
		if cmd.Len() == 0 && !strings.HasPrefix(line, "New-NetFirewallRule ") {
			continue
		}
		if strings.HasSuffix(line, "`") {
			cmd.WriteString(strings.TrimSuffix(line, "`"))
			continue
		}
		cmd.WriteString(line)
		rules = append(rules, psParams(t, cmd.String()))
		cmd.Reset()
	}
	if cmd.Len() > 0 {
		t.Fatalf("a command continues past the end of the script: %s", cmd.String())
	}
	return rules
}

func psParams(t *testing.T, cmd string) psRule {
	t.Helper()
	var words []string
	var w strings.Builder
	quoted, depth := false, 0
	for i := 0; i < len(cmd); i++ {
		c := cmd[i]
		switch {
		case c == '\'' && quoted && i+1 < len(cmd) && cmd[i+1] == '\'':
			w.WriteString("''")
			i++
			continue
		case c == '\'':
			quoted = !quoted
		case !quoted && c == '(':
			depth++
		case !quoted && c == ')':
			depth--
		case !quoted && depth == 0 && c == ' ':
			if w.Len() > 0 {
				words = append(words, w.String())
				w.Reset()
			}
			continue
		}
		w.WriteByte(c)
	}
	if quoted || depth != 0 {
		t.Fatalf("unbalanced quotes or parentheses: %s", cmd)
	}
	if w.Len() > 0 {
		words = append(words, w.String())
	}
	r := psRule{}
	for i := 1; i < len(words); i++ {
		if !strings.HasPrefix(words[i], "-") {
			t.Fatalf("value %q without a parameter in %s", words[i], cmd)
		}
		if words[i] == "|" {
			break
		}
		if i+1 < len(words) && !strings.HasPrefix(words[i+1], "-") && words[i+1] != "|" {
			r[words[i]] = words[i+1]
			i++
		} else {
			r[words[i]] = ""
		}
		if i+1 < len(words) && words[i+1] == "|" {
			break
		}
	}
	return r
}

// psValues returns the strings of a parameter value: 'a' or @('a', 'b').
func psValues(v string) []string {
	v = strings.TrimSuffix(strings.TrimPrefix(v, "@("), ")")
	var out []string
	for _, s := range strings.Split(v, ", ") {
		out = append(out, strings.Trim(s, "'"))
	}
	return out
}

var (
	psName = regexp.MustCompile(`^'tpwatch-[A-Za-z0-9._-]+-(in|out)'$`)
	psPort = regexp.MustCompile(`^[0-9]+(-[0-9]+)?$`)
)

// Every PowerShell command is well formed: unique stable names, the group
// variable, Allow only, known values, ports and addresses that parse.
func TestPowerShellStructure(t *testing.T) {
	for _, g := range goldens {
		if g.format != PowerShell {
			continue
		}
		t.Run(g.name, func(t *testing.T) {
			script := export(t, g.config, g.format, g.opts)
			if !strings.HasPrefix(script, "#Requires -RunAsAdministrator\n") {
				t.Error("the script does not require an elevated PowerShell")
			}
			// Idempotence: the group goes before any rule is made.
			rm := strings.Index(script, "Get-NetFirewallRule -Group $group -ErrorAction SilentlyContinue | Remove-NetFirewallRule")
			if first := strings.Index(script, "New-NetFirewallRule"); rm < 0 || (first >= 0 && rm > first) {
				t.Error("the script does not remove its group before making rules")
			}
			rules := parsePS(t, script)
			if len(rules) == 0 {
				t.Fatal("no rule")
			}
			names := map[string]bool{}
			for _, r := range rules {
				name := r["-Name"]
				if !psName.MatchString(name) || names[name] {
					t.Errorf("name %s: not tpwatch-<id>-in|out, or twice", name)
				}
				names[name] = true
				if r["-Group"] != "$group" || r["-Action"] != "Allow" || r["-Enabled"] != "True" || r["-Profile"] != "$fwProfile" {
					t.Errorf("%s: group %q action %q enabled %q profile %q", name, r["-Group"], r["-Action"], r["-Enabled"], r["-Profile"])
				}
				if r["-Protocol"] != "TCP" && r["-Protocol"] != "UDP" {
					t.Errorf("%s: protocol %q", name, r["-Protocol"])
				}
				port, dir := r["-LocalPort"], "Inbound"
				if strings.HasSuffix(name, "-out'") {
					port, dir = r["-RemotePort"], "Outbound"
				}
				if r["-Direction"] != dir {
					t.Errorf("%s: direction %q", name, r["-Direction"])
				}
				for _, p := range psValues(port) {
					if !psPort.MatchString(p) {
						t.Errorf("%s: port %q", name, p)
					}
				}
				if ra := r["-RemoteAddress"]; ra != "Any" {
					for _, a := range psValues(ra) {
						if _, err := netip.ParsePrefix(a); err != nil {
							if _, err := netip.ParseAddr(a); err != nil {
								t.Errorf("%s: remote address %q", name, a)
							}
						}
					}
				}
			}
			if strings.Contains(script, "Block") || strings.Contains(script, "$true") {
				t.Error("the script blocks something, or writes $true where PowerShell wants True")
			}
		})
	}
}

// entries returns the plan of a host or role: rule id + direction →
// created (true) or written as a comment (false).
func entries(t *testing.T, config string, o Options) map[string]bool {
	t.Helper()
	pl, err := makePlan(load(t, config), o)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range pl.entries {
		key := e.rule.ID + "-" + e.dir.String()
		if _, dup := out[key]; dup {
			t.Errorf("%s twice", key)
		}
		out[key] = e.skip == ""
	}
	return out
}

func TestSelection(t *testing.T) {
	em := netip.MustParseAddr("192.0.2.10")
	got := entries(t, "site.yaml", Options{Host: em})
	for key, want := range map[string]bool{
		"agent-em-grpc-in": true, "console-em-grpc-in": true, "em-sql-tds-out": true, "em-sql-browser-out": true,
		"em-agent-wmi-rpc-out": true, "em-agent-wmi-dcom-out": true, "em-siem-udp-514-out": true, "em-siem-tcp-6514-out": true,
	} {
		if got[key] != want {
			t.Errorf("enterprise manager: %s created %v, want %v (plan %v)", key, got[key], want, got)
		}
	}
	if len(got) != 8 {
		t.Errorf("enterprise manager: %d rules considered, want the 8 of its roles: %v", len(got), got)
	}

	// An agent gets the inbound WMI rules only with wmi-auto-deploy on.
	agent := entries(t, "site.yaml", Options{Role: policy.Agent})
	off := entries(t, "colocated.yaml", Options{Host: netip.MustParseAddr("10.1.0.5")})
	for _, id := range []string{"em-agent-wmi-rpc-in", "em-agent-wmi-dcom-in"} {
		if !agent[id] || off[id] {
			t.Errorf("%s: created %v with wmi-auto-deploy on, %v with it off", id, agent[id], off[id])
		}
	}

	// The Enterprise Manager on its SQL Server's box needs no rule between
	// the two.
	co := entries(t, "colocated.yaml", Options{Host: netip.MustParseAddr("10.1.0.10")})
	for _, id := range []string{"em-sql-tds-in", "em-sql-tds-out", "em-sql-browser-in", "em-sql-browser-out"} {
		if created, ok := co[id]; !ok || created {
			t.Errorf("co-located EM and SQL: %s considered %v, created %v; want a comment only", id, ok, created)
		}
	}

	// The Threat Manager's console admits any client.
	tm := export(t, "site.yaml", PowerShell, Options{Host: netip.MustParseAddr("192.0.2.13")})
	for _, r := range parsePS(t, tm) {
		if r["-Name"] == "'tpwatch-tm-console-http-in'" && r["-RemoteAddress"] != "Any" {
			t.Errorf("tm-console-http: remote address %s, want Any", r["-RemoteAddress"])
		}
	}
	if !strings.Contains(tm, "# any remote address: the matrix admits any client") {
		t.Error("tm-console-http does not say why it admits any address")
	}
}

// Every rule of the policy that concerns the host is considered exactly
// once per direction (created or left as a comment), as the matrix's own
// coverage test checks the document.
func TestEveryApplicableRuleOnce(t *testing.T) {
	p := load(t, "site.yaml")
	for _, role := range []policy.Role{policy.EnterpriseManager, policy.Agent, policy.SQLServer, policy.ThreatManager, policy.DomainController, policy.SIEM, policy.AdminConsole} {
		got := entries(t, "site.yaml", Options{Role: role})
		var want []string
		for _, r := range p.Rules() {
			if r.Server == role {
				want = append(want, r.ID+"-in")
			}
			if !r.AnyClient && r.Client == role {
				want = append(want, r.ID+"-out")
			}
		}
		var keys []string
		for k := range got {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		slices.Sort(want)
		if !slices.Equal(keys, want) {
			t.Errorf("%s: considered %v, want %v", role, keys, want)
		}
	}
}

func TestErrors(t *testing.T) {
	p := load(t, "site.yaml")
	inferred, err := policy.Load("", "")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	cases := []struct {
		p    *policy.Policy
		o    Options
		want string
	}{
		{inferred, Options{Role: policy.Agent}, "needs --config"},
		{p, Options{Host: netip.MustParseAddr("203.0.113.99")}, "203.0.113.99 holds no role"},
		{p, Options{}, "--host ADDRESS or --role ROLE"},
	}
	for _, c := range cases {
		if err := Write(&b, c.p, NFTables, c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Write(%+v): %v, want %q", c.o, err, c.want)
		}
	}
	if _, err := ParseFormat("iptables"); err == nil || !strings.Contains(err.Error(), "powershell or nftables") {
		t.Errorf("ParseFormat(iptables): %v", err)
	}
}

func TestPSQuote(t *testing.T) {
	for in, want := range map[string]string{
		"plain":         "'plain'",
		"it's":          "'it''s'",
		"it\u2019s":     "'it\u2019\u2019s'",
		"$env:PATH `x`": "'$env:PATH `x`'",
	} {
		if got := psQuote(in); got != want {
			t.Errorf("psQuote(%q) = %q, want %q", in, got, want)
		}
	}
	if got := oneLine("a\nNew-NetFirewallRule -Action Block\r\nb"); strings.ContainsAny(got, "\r\n") {
		t.Errorf("oneLine kept a line break: %q", got)
	}
}

func TestCollapse(t *testing.T) {
	in := []netip.Prefix{
		netip.MustParsePrefix("198.51.100.7/32"), netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("192.0.2.1/32"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("2001:db8:1::5/128"),
	}
	got := collapse(in)
	want := []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("2001:db8::/32")}
	if !slices.Equal(got, want) {
		t.Errorf("collapse = %v, want %v", got, want)
	}
}
