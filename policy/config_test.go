package policy

import (
	"bytes"
	"errors"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Every invalid-*.yaml file must be listed here with its exact error text,
// and every one listed must exist: a new file without an expectation fails.
var invalidConfigs = map[string]string{
	"invalid-unknown-role.yaml": `testdata/invalid-unknown-role.yaml:3:3: unknown role "agnet" (did you mean "agent"?)
testdata/invalid-unknown-role.yaml:4:3: unknown role "sqlserver" (did you mean "sql-server"?)
testdata/invalid-unknown-role.yaml:5:3: unknown role "any" ("any" is for rules only)
testdata/invalid-unknown-role.yaml:6:3: unknown role "frobnicator" (valid: activity-monitor, admin-console, agent, cee-server, dell-celerra-vnx, dell-isilon, dell-unity, domain-controller, enterprise-manager, nasuni, netapp-7mode, netapp-cdot, panzura, siem, sql-server, threat-manager)`,

	"invalid-unknown-key.yaml": `testdata/invalid-unknown-key.yaml:1:1: unknown key "rolse" in the config (did you mean "roles"?)
testdata/invalid-unknown-key.yaml:4:3: unknown key "port" in siem (did you mean "ports"?)
testdata/invalid-unknown-key.yaml:6:3: unknown key "tcp_attempts" in timeouts (did you mean "tcp_attempt"?)`,

	"invalid-address.yaml": `testdata/invalid-address.yaml:3:7: bad address "198.51.100.300": want an address or a CIDR prefix such as 192.0.2.10, 2001:db8::10 or 198.51.100.0/24
testdata/invalid-address.yaml:4:7: bad prefix "198.51.100.5/24": host bits set (did you mean "198.51.100.0/24"?)
testdata/invalid-address.yaml:5:7: bad address "2001:db8::zz": want an address or a CIDR prefix such as 192.0.2.10, 2001:db8::10 or 198.51.100.0/24
testdata/invalid-address.yaml:6:7: bad address "192.0.2.0/33": want an address or a CIDR prefix such as 192.0.2.10, 2001:db8::10 or 198.51.100.0/24
testdata/invalid-address.yaml:7:7: roles.agent: want a single value, not a list or mapping
testdata/invalid-address.yaml:8:15: roles.sql-server: want a list such as [192.0.2.10, 198.51.100.0/24]`,

	"invalid-port.yaml": `testdata/invalid-port.yaml:2:20: bad siem port "514": want transport/port such as udp/514, tcp/6514 or tcp/6000-6010
testdata/invalid-port.yaml:2:25: bad siem port "sctp/514": want transport/port such as udp/514, tcp/6514 or tcp/6000-6010
testdata/invalid-port.yaml:2:35: bad siem port "tcp/70000": want a port 1-65535 or a range such as 49152-65535
testdata/invalid-port.yaml:2:46: bad siem port "tcp/6010-6000": low is above high; write 6000-6010
testdata/invalid-port.yaml:4:70: bad port "0": want a port 1-65535 or a range such as 49152-65535
testdata/invalid-port.yaml:4:73: bad port "65536": want a port 1-65535 or a range such as 49152-65535
testdata/invalid-port.yaml:4:80: bad port "10-5": low is above high; write 5-10
testdata/invalid-port.yaml:4:86: bad port "x": want a port 1-65535 or a range such as 49152-65535
testdata/invalid-port.yaml:5:69: ports: list at least one port, such as [3741]`,

	"invalid-duration.yaml": `testdata/invalid-duration.yaml:2:16: bad duration "30" for tcp_attempt: want a positive Go duration such as 30s or 5m
testdata/invalid-duration.yaml:3:14: bad duration "-5s" for udp_reply: want a positive Go duration such as 30s or 5m
testdata/invalid-duration.yaml:4:13: bad duration "5 minutes" for tcp_idle: want a positive Go duration such as 30s or 5m
testdata/invalid-duration.yaml:5:13: udp_idle 2500000h is out of range: want 1s to 24h
testdata/invalid-duration.yaml:6:15: tcp_closed 1ns is out of range: want 10ms to 1h
testdata/invalid-duration.yaml:7:18: udp_icmp_wait 10m is out of range: want 10ms to 5m`,

	"invalid-ignore.yaml": `testdata/invalid-ignore.yaml:2:5: ignore entry: give at least one of networks, ports, client, server (an entry without one would ignore everything)
testdata/invalid-ignore.yaml:3:17: bad address "10.9.0.300/16": want an address or a CIDR prefix such as 192.0.2.10, 2001:db8::10 or 198.51.100.0/24
testdata/invalid-ignore.yaml:4:14: bad port "8530": want transport/port such as udp/514, tcp/6514 or tcp/6000-6010
testdata/invalid-ignore.yaml:5:14: unknown role "agnet" (did you mean "agent"?)
testdata/invalid-ignore.yaml:6:18: unknown key "port" in ignore entry (did you mean "ports"?)
testdata/invalid-ignore.yaml:7:9: duplicate ignore id "backup" (first at line 6): ids must be unique
testdata/invalid-ignore.yaml:8:4: ignore: empty entry, want a mapping such as {networks: [10.9.0.0/16]} or {ports: [tcp/8530]}`,

	"invalid-feature.yaml": `testdata/invalid-feature.yaml:2:3: unknown feature "wmi" (did you mean "wmi-auto-deploy"?)
testdata/invalid-feature.yaml:3:23: features.fpolicy-management: want true or false, got "yes"
testdata/invalid-feature.yaml:4:3: unknown feature "siem" (list siem.ports to turn SIEM on)`,

	"invalid-allow.yaml": `testdata/invalid-allow.yaml:3:5: duplicate allow id "rdp-admin" (first at line 2): ids must be unique
testdata/invalid-allow.yaml:4:5: allow rule "no-server": missing server
testdata/invalid-allow.yaml:5:45: server cannot be "any": name the role that accepts the flow
testdata/invalid-allow.yaml:5:61: bad transport "sctp": want tcp or udp (a TCP/UDP row is two rules)
testdata/invalid-allow.yaml:6:5: allow rule "typo": missing ports
testdata/invalid-allow.yaml:6:62: unknown key "port" in allow rule (did you mean "ports"?)
testdata/invalid-allow.yaml:7:80: reply: applies to udp rules only; remove it from this tcp rule
testdata/invalid-allow.yaml:8:76: unknown key "feature" in allow rule (valid: announced, client, description, id, ports, reply, server, transport)
testdata/invalid-allow.yaml:9:10: bad id "bad id!": use letters, digits, '-', '_' and '.' only`,

	"invalid-duplicate-key.yaml": `testdata/invalid-duplicate-key.yaml:3:3: duplicate key "agent" in roles (first at line 2): merge the two
testdata/invalid-duplicate-key.yaml:6:1: duplicate key "features" in the config (first at line 4): merge the two`,

	"invalid-syntax.yaml": `testdata/invalid-syntax.yaml:1: YAML syntax: did not find expected ',' or ']'`,

	"invalid-shape.yaml": `testdata/invalid-shape.yaml:1:1: the config: want a mapping (key: value lines)`,
}

func TestInvalidConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, path := range files {
		name := filepath.Base(path)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			want, ok := invalidConfigs[name]
			if !ok {
				t.Fatalf("%s has no expected error in invalidConfigs", path)
			}
			c, err := LoadConfig(path)
			if err == nil {
				t.Fatalf("LoadConfig(%s) = %+v, want an error", path, c)
			}
			if got := err.Error(); got != want {
				t.Errorf("LoadConfig(%s) error:\n%s\nwant:\n%s", path, got, want)
			}
			var errs ConfigErrors
			if !errors.As(err, &errs) || len(errs) != strings.Count(want, "\n")+1 {
				t.Errorf("error is not a ConfigErrors of one entry a line: %#v", err)
			}
		})
	}
	for name := range invalidConfigs {
		if !seen[name] {
			t.Errorf("invalidConfigs names %s, which is not in testdata", name)
		}
	}
}

func TestValidConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/valid-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/valid-*.yaml: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			c, err := LoadConfig(path)
			if err != nil {
				t.Fatal(err)
			}
			// The config must survive --print-inventory and back.
			var buf bytes.Buffer
			if err := WriteConfig(&buf, c); err != nil {
				t.Fatal(err)
			}
			back, err := ParseConfig(buf.Bytes(), "written")
			if err != nil {
				t.Fatalf("written config does not parse: %v\n%s", err, buf.String())
			}
			assertSameConfig(t, back, c)
		})
	}
}

func assertSameConfig(t *testing.T, got, want *Config) {
	t.Helper()
	for r := RoleInvalid + 1; r < numRoles; r++ {
		if g, w := sortedPrefixes(got.Roles[r]), sortedPrefixes(want.Roles[r]); !reflect.DeepEqual(g, w) {
			t.Errorf("roles %s: got %v, want %v", r, g, w)
		}
	}
	if !reflect.DeepEqual(got.Features, want.Features) {
		t.Errorf("features: got %v, want %v", got.Features, want.Features)
	}
	if !reflect.DeepEqual(got.SIEMPorts, want.SIEMPorts) {
		t.Errorf("siem ports: got %v, want %v", got.SIEMPorts, want.SIEMPorts)
	}
	if !reflect.DeepEqual(got.Allow, want.Allow) {
		t.Errorf("allow:\ngot  %+v\nwant %+v", got.Allow, want.Allow)
	}
	if got.Timeouts != want.Timeouts {
		t.Errorf("timeouts: got %+v, want %+v", got.Timeouts, want.Timeouts)
	}
}

func TestParseConfigFull(t *testing.T) {
	c, err := LoadConfig("testdata/valid-full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	wantRoles := map[Role][]netip.Prefix{
		EnterpriseManager: {netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("2001:db8::10/128")},
		SQLServer:         {netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("192.0.2.11/32")},
		Agent:             {netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:1::/64")},
		ThreatManager:     {netip.MustParsePrefix("192.0.2.20/32")},
	}
	if !reflect.DeepEqual(c.Roles, wantRoles) {
		t.Errorf("roles: got %v, want %v", c.Roles, wantRoles)
	}
	if want := map[string]bool{FeatureWMIAutoDeploy: true, FeatureFPolicyManagement: false}; !reflect.DeepEqual(c.Features, want) {
		t.Errorf("features: got %v, want %v", c.Features, want)
	}
	wantSIEM := []PortSpec{{UDP, PortRange{514, 514}}, {TCP, PortRange{6514, 6514}}, {TCP, PortRange{6000, 6010}}}
	if !reflect.DeepEqual(c.SIEMPorts, wantSIEM) {
		t.Errorf("siem ports: got %v, want %v", c.SIEMPorts, wantSIEM)
	}
	wantAllow := []Rule{
		{ID: "rdp-admin", Client: AdminConsole, Server: Agent, Transport: TCP, Ports: []PortRange{{3389, 3389}}, Section: "site config (allow)"},
		{ID: "dns", AnyClient: true, Server: DomainController, Transport: UDP, Ports: []PortRange{{53, 53}}, Reply: true,
			Description: "Name resolution: site DNS on the domain controllers", Section: "site config (allow)"},
	}
	if !reflect.DeepEqual(c.Allow, wantAllow) {
		t.Errorf("allow:\ngot  %+v\nwant %+v", c.Allow, wantAllow)
	}
	wantIgnore := []IgnoreRule{
		{ID: "backup", Networks: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16"), netip.MustParsePrefix("2001:db8:9::/48")}},
		{Ports: []PortSpec{{TCP, PortRange{8530, 8531}}, {UDP, PortRange{161, 161}}}, Description: "WSUS and SNMP"},
		{ID: "dc-replication", Client: DomainController, Server: DomainController},
	}
	if !reflect.DeepEqual(c.Ignore, wantIgnore) {
		t.Errorf("ignore:\ngot  %+v\nwant %+v", c.Ignore, wantIgnore)
	}
	wantTimeouts := Timeouts{20 * time.Second, 5 * time.Second, 10 * time.Minute, 2 * time.Minute, time.Second, 500 * time.Millisecond}
	if c.Timeouts != wantTimeouts || c.EffectiveTimeouts() != wantTimeouts {
		t.Errorf("timeouts: got %+v (effective %+v), want %+v", c.Timeouts, c.EffectiveTimeouts(), wantTimeouts)
	}
}

func TestParseConfigPartial(t *testing.T) {
	c, err := LoadConfig("testdata/valid-partial.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// An IPv4-mapped address is the IPv4 host.
	if got, want := c.Roles[EnterpriseManager], []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}; !reflect.DeepEqual(got, want) {
		t.Errorf("enterprise-manager: got %v, want %v", got, want)
	}
	want := DefaultTimeouts()
	want.TCPAttempt = 45 * time.Second
	if got := c.EffectiveTimeouts(); got != want {
		t.Errorf("EffectiveTimeouts() = %+v, want %+v", got, want)
	}
	if len(c.Features) != 0 || len(c.SIEMPorts) != 0 {
		t.Errorf("empty sections gave features %v, siem %v", c.Features, c.SIEMPorts)
	}
}

func TestDefaultTimeouts(t *testing.T) {
	want := Timeouts{30 * time.Second, 10 * time.Second, 5 * time.Minute, time.Minute, 5 * time.Second, 2 * time.Second}
	if got := DefaultTimeouts(); got != want {
		t.Errorf("DefaultTimeouts() = %+v, want %+v", got, want)
	}
	var nilConfig *Config
	if got := nilConfig.EffectiveTimeouts(); got != want {
		t.Errorf("nil config EffectiveTimeouts() = %+v, want %+v", got, want)
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := LoadConfig("testdata/does-not-exist.yaml")
	if err == nil || !strings.Contains(err.Error(), "testdata/does-not-exist.yaml") {
		t.Errorf("LoadConfig of a missing file: %v, want an error naming the file", err)
	}
}

func TestWriteConfigHeader(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteConfig(&buf, &Config{}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "# tpwatch site inventory") {
		t.Errorf("no comment header:\n%s", buf.String())
	}
	if _, err := ParseConfig(buf.Bytes(), "written"); err != nil {
		t.Errorf("empty written config does not parse: %v\n%s", err, buf.String())
	}
}
