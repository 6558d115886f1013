package policy

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"gopkg.in/yaml.v3"
)

const configHeader = `tpwatch site inventory, for tpwatch --config.
roles: the hosts of each role, as addresses or CIDR prefixes; a host may
hold several roles. features: optional features, off unless true.
siem.ports: where the Enterprise Manager sends SIEM alerts.
allow: the site's own rules. timeouts: Go durations, absent = default.`

// WriteConfig writes c as a config file that ParseConfig reads back to the
// same Config: the --print-inventory output. Roles, addresses and features
// are written in a fixed order so that two runs can be diffed.
func WriteConfig(w io.Writer, c *Config) error {
	root := mappingNode()
	root.HeadComment = configHeader

	roles := mappingNode()
	for r := RoleInvalid + 1; r < numRoles; r++ {
		prefixes := sortedPrefixes(c.Roles[r])
		if len(prefixes) == 0 {
			continue
		}
		list := flowSeq()
		for _, p := range prefixes {
			list.Content = append(list.Content, stringNode(prefixText(p)))
		}
		addPair(roles, r.String(), list)
	}
	addPair(root, "roles", roles)

	features := mappingNode()
	for _, name := range matrixFeatures {
		if on, ok := c.Features[name]; ok {
			addPair(features, name, boolNode(on))
		}
	}
	addPair(root, "features", features)

	if len(c.SIEMPorts) > 0 {
		ports := flowSeq()
		for _, p := range c.SIEMPorts {
			ports.Content = append(ports.Content, stringNode(p.String()))
		}
		siem := mappingNode()
		addPair(siem, "ports", ports)
		addPair(root, "siem", siem)
	}

	if len(c.Allow) > 0 {
		allow := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range c.Allow {
			allow.Content = append(allow.Content, allowNode(&c.Allow[i]))
		}
		addPair(root, "allow", allow)
	}

	timeouts := mappingNode()
	for i, f := range c.Timeouts.fields() {
		if *f != 0 {
			addPair(timeouts, timeoutKeys[i], stringNode(f.String()))
		}
	}
	if len(timeouts.Content) > 0 {
		addPair(root, "timeouts", timeouts)
	}

	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

func allowNode(r *Rule) *yaml.Node {
	n := mappingNode()
	n.Style = yaml.FlowStyle
	addPair(n, "id", stringNode(r.ID))
	addPair(n, "client", stringNode(r.ClientName()))
	addPair(n, "server", stringNode(r.Server.String()))
	addPair(n, "transport", stringNode(r.Transport.String()))
	ports := flowSeq()
	for _, p := range r.Ports {
		port := stringNode(p.String())
		if p.Low == p.High {
			port.Tag = "!!int"
		}
		ports.Content = append(ports.Content, port)
	}
	addPair(n, "ports", ports)
	if r.Reply {
		addPair(n, "reply", boolNode(true))
	}
	if r.Description != "" {
		addPair(n, "description", stringNode(r.Description))
	}
	return n
}

// prefixText writes a host prefix as a bare address, the way people write
// them in the config.
func prefixText(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func mappingNode() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode} }

func flowSeq() *yaml.Node { return &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle} }

func stringNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func boolNode(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
}

func addPair(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, stringNode(key), v)
}
