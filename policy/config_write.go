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
allow: the site's own rules. ignore: what is not Threat Prevention's.
timeouts: Go durations, absent = default.`

// WriteConfig writes c as a config file that ParseConfig reads back to the
// same Config: the --print-inventory output. Roles, addresses and features
// are written in a fixed order so that two runs can be diffed.
func WriteConfig(w io.Writer, c *Config) error {
	return writeConfig(w, c, nil, nil)
}

// WriteInventory writes what inv learned as a config file to start from:
// each host on a line of its own with the evidence for its role as a
// comment, and what the inventory could not decide at the end.
func WriteInventory(w io.Writer, inv *Inventory) error {
	return writeConfig(w, inv.Config(), inv.Evidence(), inv.Undecided())
}

func writeConfig(w io.Writer, c *Config, evidence map[netip.Addr]map[Role]string, undecided []string) error {
	root := mappingNode()
	root.HeadComment = configHeader
	if evidence != nil {
		root.HeadComment += "\n\nLearned from the traffic, from evidence only: a host takes a server role\n" +
			"for answering on its port, a client role for a flow that then worked.\n" +
			"Check it, complete it, and pass it with --config."
	}

	roles := mappingNode()
	for r := RoleInvalid + 1; r < numRoles; r++ {
		prefixes := sortedPrefixes(c.Roles[r])
		if len(prefixes) == 0 {
			continue
		}
		list := flowSeq()
		if evidence != nil {
			list.Style = 0 // a line each, for its comment
		}
		for _, p := range prefixes {
			n := stringNode(prefixText(p))
			if evidence != nil {
				n.LineComment = evidence[p.Addr()][r]
			}
			list.Content = append(list.Content, n)
		}
		addPair(roles, r.String(), list)
	}
	addPair(root, "roles", roles)
	if len(undecided) > 0 {
		text := "Could not decide:"
		for _, u := range undecided {
			text += "\n- " + u
		}
		root.FootComment = text
	}

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

	if len(c.Ignore) > 0 {
		ignore := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range c.Ignore {
			ignore.Content = append(ignore.Content, ignoreNode(&c.Ignore[i]))
		}
		addPair(root, "ignore", ignore)
	}

	timeouts := mappingNode()
	for i, f := range c.Timeouts.fields() {
		if *f != 0 {
			addPair(timeouts, timeoutKeys[i], stringNode(shortDuration(*f)))
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
	if r.Announced != AnnounceNone {
		addPair(n, "announced", stringNode(r.Announced.String()))
	}
	if r.Description != "" {
		addPair(n, "description", stringNode(r.Description))
	}
	return n
}

func ignoreNode(r *IgnoreRule) *yaml.Node {
	n := mappingNode()
	n.Style = yaml.FlowStyle
	if r.ID != "" {
		addPair(n, "id", stringNode(r.ID))
	}
	if len(r.Networks) > 0 {
		nets := flowSeq()
		for _, p := range r.Networks {
			nets.Content = append(nets.Content, stringNode(prefixText(p)))
		}
		addPair(n, "networks", nets)
	}
	if len(r.Ports) > 0 {
		ports := flowSeq()
		for _, p := range r.Ports {
			ports.Content = append(ports.Content, stringNode(p.String()))
		}
		addPair(n, "ports", ports)
	}
	if r.Client != RoleInvalid {
		addPair(n, "client", stringNode(r.Client.String()))
	}
	if r.Server != RoleInvalid {
		addPair(n, "server", stringNode(r.Server.String()))
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
