package pcaps

import (
	"bytes"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// These tests check the expected files against policy/matrix.yaml and the
// scenario configs as files, with a reading of DESIGN.md's rules written
// here: they share nothing with the generator's tables, so a wrong rule
// id, role, port or feature in a scenario fails them.

type yamlRule struct {
	ID          string   `yaml:"id"`
	Client      string   `yaml:"client"`
	Server      string   `yaml:"server"`
	Transport   string   `yaml:"transport"`
	Ports       []string `yaml:"ports"`
	Feature     string   `yaml:"feature"`
	Reply       *bool    `yaml:"reply"`
	Shared      bool     `yaml:"shared"`
	Infer       string   `yaml:"infer"`
	Description string   `yaml:"description"`
	Section     string   `yaml:"section"`
}

func loadMatrix(t *testing.T) []yamlRule {
	t.Helper()
	data, err := os.ReadFile("../policy/matrix.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Rules []yamlRule `yaml:"rules"`
	}
	// Not strict: policy owns the format and may add fields.
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("policy/matrix.yaml: %v", err)
	}
	return m.Rules
}

type yamlConfig struct {
	Roles    map[string][]string `yaml:"roles"`
	Features map[string]bool     `yaml:"features"`
	SIEM     struct {
		Ports []string `yaml:"ports"`
	} `yaml:"siem"`
	Allow []yamlRule `yaml:"allow"`
}

func loadConfig(t *testing.T, name string) yamlConfig {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var c yamlConfig
	if err := yamlStrict(data, &c); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

// yamlStrict decodes YAML, failing on unknown keys as tpwatch does.
func yamlStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// portsHave reports whether a rule's port list ("135", "49152-65535")
// holds port.
func portsHave(ports []string, port uint16) bool {
	for _, p := range ports {
		lo, hi, isRange := strings.Cut(p, "-")
		if !isRange {
			hi = lo
		}
		l, err1 := strconv.Atoi(lo)
		h, err2 := strconv.Atoi(hi)
		if err1 == nil && err2 == nil && l <= int(port) && int(port) <= h {
			return true
		}
	}
	return false
}

// rolesOf returns the roles whose addresses or prefixes hold a.
func (c yamlConfig) rolesOf(t *testing.T, a string) []string {
	addr := netip.MustParseAddr(a)
	var roles []string
	for role, hosts := range c.Roles {
		for _, h := range hosts {
			p, err := netip.ParsePrefix(h)
			if err != nil {
				ha, err := netip.ParseAddr(h)
				if err != nil {
					t.Fatalf("config role %s: bad host %q", role, h)
				}
				p = netip.PrefixFrom(ha, ha.BitLen())
			}
			if p.Contains(addr) {
				roles = append(roles, role)
			}
		}
	}
	return roles
}

// rules returns the matrix rules plus the config's SIEM and allow rules.
func (c yamlConfig) rules(matrix []yamlRule) []yamlRule {
	rules := slices.Clone(matrix)
	for _, sp := range c.SIEM.Ports {
		tr, port, _ := strings.Cut(sp, "/")
		rules = append(rules, yamlRule{ID: siemRuleID(tr, port), Client: "enterprise-manager", Server: "siem", Transport: tr, Ports: []string{port}, Feature: "siem"})
	}
	return append(rules, c.Allow...)
}

func (c yamlConfig) featureOn(f string) bool {
	if f == "" {
		return true
	}
	if f == "siem" {
		return len(c.SIEM.Ports) > 0
	}
	return c.Features[f]
}

var designRoles = []string{
	"enterprise-manager", "agent", "admin-console", "sql-server", "threat-manager",
	"domain-controller", "activity-monitor", "cee-server", "dell-celerra-vnx",
	"dell-isilon", "dell-unity", "nasuni", "netapp-7mode", "netapp-cdot", "panzura", "siem",
}

func TestExpectedFitsMatrixAndConfig(t *testing.T) {
	matrix := loadMatrix(t)
	for _, s := range Scenarios() {
		t.Run(s.Capture, func(t *testing.T) {
			cfg := loadConfig(t, s.ConfigFile())
			for role := range cfg.Roles {
				if !slices.Contains(designRoles, role) {
					t.Errorf("config role %q is not a DESIGN.md role", role)
				}
			}
			rules := cfg.rules(matrix)
			data, err := os.ReadFile(s.ExpectedFile())
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range readExpected(t, data) {
				checkAgainstPolicy(t, e, cfg, rules)
			}
		})
	}
}

func checkAgainstPolicy(t *testing.T, e Expected, cfg yamlConfig, rules []yamlRule) {
	name := e.Transport + " " + e.SrcIP + ":" + strconv.Itoa(int(e.SrcPort)) + " -> " + e.DstIP + ":" + strconv.Itoa(int(e.DstPort))
	cliRoles, srvRoles := cfg.rolesOf(t, e.SrcIP), cfg.rolesOf(t, e.DstIP)
	admits := func(r yamlRule) bool {
		return r.Transport == e.Transport && portsHave(r.Ports, e.DstPort) && slices.Contains(srvRoles, r.Server) &&
			(r.Client == "any" || slices.Contains(cliRoles, r.Client))
	}
	if e.Reason == "no_rule" {
		if len(cliRoles) == 0 || len(srvRoles) == 0 {
			t.Errorf("%s: no_rule, but an end is outside the inventory", name)
		}
		for _, r := range rules {
			if admits(r) {
				t.Errorf("%s: no_rule, but rule %s admits it", name, r.ID)
			}
		}
		return
	}
	if e.Reason == "not_product" {
		// Both ends known, neither the product's own host, and no rule
		// admits it (whether the port is a product port, the policy
		// package's tests check).
		if len(cliRoles) == 0 || len(srvRoles) == 0 {
			t.Errorf("%s: not_product, but an end is outside the inventory", name)
		}
		for _, roles := range [][]string{cliRoles, srvRoles} {
			if productHost(roles) {
				t.Errorf("%s: not_product, but %v is a product host", name, roles)
			}
		}
		for _, r := range rules {
			if admits(r) {
				t.Errorf("%s: not_product, but rule %s admits it", name, r.ID)
			}
		}
		return
	}
	if e.Verdict == "ignored" {
		if len(cliRoles) > 0 || len(srvRoles) > 0 {
			t.Errorf("%s: ignored, but an end holds a role", name)
		}
		return
	}
	i := slices.IndexFunc(rules, func(r yamlRule) bool { return r.ID == e.Rule })
	if i < 0 {
		t.Errorf("%s: rule %q is neither in the matrix nor in the config", name, e.Rule)
		return
	}
	r := rules[i]
	if e.Reason == "unauthorized_client" {
		if r.Transport != e.Transport || !portsHave(r.Ports, e.DstPort) || !slices.Contains(srvRoles, r.Server) {
			t.Errorf("%s: unauthorized_client, but %s does not name the port for the server", name, r.ID)
		}
		if r.Client == "any" || slices.Contains(cliRoles, r.Client) {
			t.Errorf("%s: unauthorized_client, but %s admits the client", name, r.ID)
		}
		if r.Shared {
			// A common service port: a stranger there is ordinary traffic.
			t.Errorf("%s: unauthorized_client on shared rule %s", name, r.ID)
		}
		return
	}
	if !admits(r) {
		t.Errorf("%s: rule %s does not admit the flow (client roles %v, server roles %v)", name, r.ID, cliRoles, srvRoles)
	}
	if on := cfg.featureOn(r.Feature); on != (e.Reason != "feature_disabled") {
		t.Errorf("%s: feature %q is on=%t, reason %q", name, r.Feature, on, e.Reason)
	}
	if e.Reason == "no_response" && e.Transport == "udp" && (r.Reply == nil || !*r.Reply) {
		t.Errorf("%s: no_response on one-way UDP rule %s", name, r.ID)
	}
	if e.Verdict == "allowed" && e.Transport == "udp" && e.ConnState == "S0" && r.Reply != nil && *r.Reply {
		t.Errorf("%s: one-way traffic allowed on request/response rule %s", name, r.ID)
	}
}

// TestMatrixRulesTable checks the generator's table against matrix.yaml.
func TestMatrixRulesTable(t *testing.T) {
	matrix := loadMatrix(t)
	var table []MatrixRule
	for _, r := range MatrixRules() {
		if r.Feature != "siem" {
			table = append(table, r)
		}
	}
	if len(table) != len(matrix) {
		t.Fatalf("table has %d matrix rules, matrix.yaml %d", len(table), len(matrix))
	}
	for i, y := range matrix {
		g := table[i]
		reply := y.Reply != nil && *y.Reply
		if g.ID != y.ID || g.Client != y.Client || g.Server != y.Server || g.Transport != y.Transport ||
			g.Feature != y.Feature || g.Reply != reply || !portsHave(y.Ports, g.Port) {
			t.Errorf("rule %d: table %+v, matrix.yaml %+v", i, g, y)
		}
	}
}

// TestMatrixScenarioCoversEveryRule checks that matrix-v4 has each rule
// of matrix.yaml and of its config allowed once and failing once.
func TestMatrixScenarioCoversEveryRule(t *testing.T) {
	cfg := loadConfig(t, "matrix-v4.yaml")
	data, err := os.ReadFile("matrix-v4.pcap.expected.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	allowed, blocked := map[string]int{}, map[string]int{}
	reasons := map[string]int{}
	for _, e := range readExpected(t, data) {
		switch e.Verdict {
		case "allowed":
			allowed[e.Rule]++
		case "blocked":
			blocked[e.Rule]++
			reasons[e.Reason]++
		}
	}
	for _, r := range cfg.rules(loadMatrix(t)) {
		if allowed[r.ID] != 1 || blocked[r.ID] != 1 {
			t.Errorf("rule %s: %d allowed and %d blocked flows, want 1 and 1", r.ID, allowed[r.ID], blocked[r.ID])
		}
	}
	for _, reason := range []string{"refused", "icmp_unreachable", "no_response"} {
		if reasons[reason] < 5 {
			t.Errorf("only %d flows blocked with %s", reasons[reason], reason)
		}
	}
}

// productHost reports roles that make a host the product's own: one of
// the matrix's product_hosts and none of its shared_hosts.
func productHost(roles []string) bool {
	product, shared := false, false
	for _, r := range roles {
		switch r {
		case "enterprise-manager", "threat-manager", "admin-console", "activity-monitor":
			product = true
		case "sql-server":
		default:
			shared = true
		}
	}
	return product && !shared
}
