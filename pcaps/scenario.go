package pcaps

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Scenario is one committed capture: its traffic, the config to replay it
// with, and what tpwatch must report.
type Scenario struct {
	Capture string // file name of the capture, e.g. "matrix-v4.pcap"
	Format  Format
	Links   []Link
	Config  Config
	Flows   []Flow
}

// Config is a site config in the form of DESIGN.md "The config file".
type Config struct {
	Comment  string // first lines of the file, without "# "
	Roles    []RoleHosts
	Features []Feature
	SIEM     []string // siem.ports, e.g. "udp/514"
	Allow    []AllowRule
}

// RoleHosts lists the addresses and CIDRs holding a role.
type RoleHosts struct {
	Role  string
	Hosts []string
}

// Feature is one optional feature and whether the site turns it on.
type Feature struct {
	Name string
	On   bool
}

// AllowRule is a site-specific rule of the config's allow list.
type AllowRule struct {
	ID, Client, Server, Transport string
	Ports                         []string
}

// ConfigFile returns the name of the scenario's config: the capture's name
// with a .yaml extension.
func (s Scenario) ConfigFile() string {
	return strings.TrimSuffix(s.Capture, filepath.Ext(s.Capture)) + ".yaml"
}

// ExpectedFile returns the name of the scenario's expected verdicts.
func (s Scenario) ExpectedFile() string { return s.Capture + ".expected.ndjson" }

// Expected returns the scenario's expected flows, sorted.
func (s Scenario) Expected() []Expected {
	es := make([]Expected, 0, len(s.Flows))
	for _, f := range s.Flows {
		es = append(es, f.expect())
	}
	sortExpected(es)
	return es
}

// Files builds the scenario and returns its three files by name.
func (s Scenario) Files() (map[string][]byte, error) {
	c := NewCapture(s.Links...)
	last := make([]time.Duration, len(s.Flows))
	seen := map[string]bool{}
	for i, f := range s.Flows {
		key := f.Shape.transport() + " " + f.Client.String() + " " + f.Server.String()
		if seen[key] {
			return nil, fmt.Errorf("%s: flow %s defined twice", s.Capture, key)
		}
		seen[key] = true
		last[i] = f.write(c)
	}
	if err := c.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", s.Capture, err)
	}
	end := c.End()
	for i, f := range s.Flows {
		if err := f.check(last[i], end); err != nil {
			return nil, fmt.Errorf("%s: %w", s.Capture, err)
		}
	}
	var capture bytes.Buffer
	if err := writeCapture(&capture, s.Format, c); err != nil {
		return nil, fmt.Errorf("%s: %w", s.Capture, err)
	}
	expected, err := encodeExpected(s.Expected())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Capture, err)
	}
	return map[string][]byte{
		s.Capture:        capture.Bytes(),
		s.ConfigFile():   s.Config.YAML(),
		s.ExpectedFile(): expected,
	}, nil
}

// Scenarios returns every committed scenario.
func Scenarios() []Scenario {
	return []Scenario{
		matrixV4(),
		unexpectedScenario(),
		ipv6VLAN(),
		midstream(),
		pending(),
		demoSite(),
	}
}

// WriteAll builds every scenario and writes its files into dir.
func WriteAll(dir string) error {
	for _, s := range Scenarios() {
		files, err := s.Files()
		if err != nil {
			return err
		}
		for name, data := range files {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, data, 0o644); err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
		}
	}
	return nil
}

// YAML writes the config in the DESIGN.md layout. It is written by hand,
// not marshalled, to keep the order, flow-style lists and comments a
// person would write.
func (c Config) YAML() []byte {
	var b bytes.Buffer
	for _, line := range strings.Split(c.Comment, "\n") {
		if line == "" {
			b.WriteString("#\n")
			continue
		}
		b.WriteString("# " + line + "\n")
	}
	b.WriteString("roles:\n")
	for _, r := range c.Roles {
		fmt.Fprintf(&b, "  %s: [%s]\n", r.Role, yamlList(r.Hosts))
	}
	if len(c.Features) > 0 {
		b.WriteString("features:\n")
		for _, f := range c.Features {
			fmt.Fprintf(&b, "  %s: %t\n", f.Name, f.On)
		}
	}
	if len(c.SIEM) > 0 {
		fmt.Fprintf(&b, "siem:\n  ports: [%s]\n", yamlList(c.SIEM))
	}
	if len(c.Allow) > 0 {
		b.WriteString("allow:\n")
		for _, a := range c.Allow {
			fmt.Fprintf(&b, "  - {id: %s, client: %s, server: %s, transport: %s, ports: [%s]}\n",
				a.ID, a.Client, a.Server, a.Transport, yamlList(a.Ports))
		}
	}
	return b.Bytes()
}

// yamlList joins items for a flow sequence, quoting those with a colon
// (IPv6 addresses), which YAML would otherwise read as mappings.
func yamlList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		if strings.Contains(s, ":") {
			s = `"` + s + `"`
		}
		quoted[i] = s
	}
	return strings.Join(quoted, ", ")
}
