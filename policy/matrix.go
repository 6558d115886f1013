package policy

import (
	_ "embed"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed matrix.yaml
var defaultMatrixYAML []byte

// Features a matrix rule may name. SIEM rules come from the site config, so
// "siem" is not among them.
const (
	FeatureWMIAutoDeploy     = "wmi-auto-deploy"
	FeatureFPolicyManagement = "fpolicy-management"
	FeatureSIEM              = "siem"
)

var matrixFeatures = []string{FeatureWMIAutoDeploy, FeatureFPolicyManagement}

// Matrix is the firewall matrix: the documented rules, in file order, and
// which roles make a host the product's own.
type Matrix struct {
	Rules []Rule
	// ProductHosts are the roles of hosts that exist for the product (the
	// Enterprise Manager, the Threat Manager, the consoles), SharedHosts
	// those of servers that also do other jobs (agents run on domain
	// controllers and file servers, NAS devices serve every client). A
	// host is a product host when it holds a ProductHosts role and no
	// SharedHosts role: whatever it does concerns the product. A matrix
	// that lists no ProductHosts (an older file) counts every host that
	// holds a role as one.
	ProductHosts, SharedHosts RoleSet
}

// Rule is one allowed kind of flow: a client role opening a connection (or
// sending datagrams) to a server role on one of the server ports.
type Rule struct {
	ID        string
	Client    Role // RoleInvalid when AnyClient
	AnyClient bool
	Server    Role
	Transport Transport
	Ports     []PortRange
	// Feature, when set, gates the rule: it allows nothing while the
	// feature is off.
	Feature string
	// Reply is true for UDP request/response protocols: a request with
	// nothing back is a failure.
	Reply bool
	// Shared marks a common service port (RPC, SMB, LDAP, HTTPS, the
	// dynamic ranges): other clients using it are ordinary traffic, not a
	// client the rule fails to admit, so it never yields
	// unauthorized_client.
	Shared bool
	Infer  InferMode
	// Announced says which announcement may stand for the rule's ports:
	// a flow to a port its server announced (an endpoint mapper's answer,
	// SQL Browser's) matches the rule outside the ports it lists.
	Announced   Announce
	Description string
	Section     string
}

// HasPort reports whether p is one of the rule's server ports.
func (r *Rule) HasPort(p uint16) bool {
	for _, pr := range r.Ports {
		if pr.Has(p) {
			return true
		}
	}
	return false
}

// ListsPort reports whether the rule names p on its own (3741, 135), not
// only within a range (49152-65535): a port an announcement should
// explain is one a range merely covers.
func (r *Rule) ListsPort(p uint16) bool {
	for _, pr := range r.Ports {
		if pr.Low == p && pr.High == p {
			return true
		}
	}
	return false
}

// PortsString returns the ports as the matrix writes them: "10000,10001",
// "49152-65535".
func (r *Rule) PortsString() string {
	parts := make([]string, len(r.Ports))
	for i, pr := range r.Ports {
		parts[i] = pr.String()
	}
	return strings.Join(parts, ",")
}

// ClientName returns the client role name, or "any".
func (r *Rule) ClientName() string {
	if r.AnyClient {
		return anyClient
	}
	return r.Client.String()
}

// DefaultMatrix returns the matrix embedded in the binary: Threat
// Prevention 7.5.
func DefaultMatrix() (*Matrix, error) {
	return ParseMatrix(defaultMatrixYAML, "matrix.yaml (embedded)")
}

// LoadMatrix reads a matrix file (the --matrix option).
func LoadMatrix(path string) (*Matrix, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read matrix: %w", err)
	}
	return ParseMatrix(data, path)
}

var (
	matrixKeys     = []string{"rules", "product_hosts", "shared_hosts"}
	matrixRuleKeys = []string{"id", "client", "server", "transport", "ports", "feature", "reply", "shared", "infer", "announced", "description", "section"}
)

// ParseMatrix parses a matrix file; name is used in error messages. The
// error, if any, is a ConfigErrors listing every problem.
func ParseMatrix(data []byte, name string) (*Matrix, error) {
	d := &nodeDecoder{file: name}
	m := &Matrix{}
	root := d.parseDocument(data)
	if root == nil && len(d.errs) == 0 {
		d.errorf(nil, "empty matrix: want a rules: list")
	}
	if root != nil {
		d.mapping(root, "the matrix", matrixKeys, func(key string, _, v *yaml.Node) {
			switch key {
			case "rules":
				m.Rules = d.rules(v, "rules", "- {id: ..., client: ..., server: ...}", "rule", "rule", matrixRuleKeys)
			case "product_hosts":
				m.ProductHosts = d.roleList(v, key)
			case "shared_hosts":
				m.SharedHosts = d.roleList(v, key)
			}
		})
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	if len(m.Rules) == 0 {
		return nil, ConfigErrors{{File: name, Msg: "no rules: a matrix needs at least one"}}
	}
	if both := m.ProductHosts & m.SharedHosts; both != 0 {
		return nil, ConfigErrors{{File: name, Msg: fmt.Sprintf("roles %s are in both product_hosts and shared_hosts: a role is one or the other", both)}}
	}
	return m, nil
}

// roleList reads a list of role names as a set.
func (d *nodeDecoder) roleList(n *yaml.Node, what string) RoleSet {
	var set RoleSet
	for _, item := range d.sequence(n, what, "[enterprise-manager, threat-manager]") {
		text, ok := d.scalar(item, what)
		if !ok {
			continue
		}
		role, ok := ParseRole(text)
		if !ok {
			d.errorf(item, "unknown role %q%s", text, suggest(text, RoleNames()))
			continue
		}
		set = set.With(role)
	}
	return set
}

// rule decodes one rule-shaped mapping: a matrix rule or a config allow
// entry (whose valid keys are fewer). It reports false when the rule has
// errors, which are recorded in d.
func (d *nodeDecoder) rule(n *yaml.Node, what string, keys []string) (Rule, bool) {
	var r Rule
	errsBefore := len(d.errs)
	if isNull(n) {
		// A bare "-" is a rule with nothing in it, not an empty rule
		// that would match nothing (or crash the index).
		d.errorf(n, "%s: empty, want a mapping such as {id: ..., client: ..., server: ..., transport: ..., ports: [...]}", what)
		return r, false
	}
	seen := map[string]bool{}
	var replyNode *yaml.Node
	d.mapping(n, what, keys, func(key string, k, v *yaml.Node) {
		seen[key] = true
		switch key {
		case "ports":
			items := d.sequence(v, "ports", "[3741] or [135, 49152-65535]")
			if isNull(v) || (v.Kind == yaml.SequenceNode && len(items) == 0) {
				d.errorf(v, "ports: list at least one port, such as [3741]")
			}
			for _, item := range items {
				text, ok := d.scalar(item, "port")
				if !ok {
					continue
				}
				pr, problem := parsePortRange(text)
				if problem != "" {
					d.errorf(item, "bad port %q: %s", text, problem)
					continue
				}
				r.Ports = append(r.Ports, pr)
			}
		case "reply":
			r.Reply, _ = d.boolean(v, "reply")
			replyNode = k
		case "shared":
			r.Shared, _ = d.boolean(v, "shared")
		default:
			text, ok := d.scalar(v, key)
			if !ok {
				return
			}
			d.ruleField(&r, key, text, v)
		}
	})
	if n.Kind == yaml.MappingNode {
		for _, key := range []string{"id", "client", "server", "transport", "ports"} {
			if !seen[key] {
				d.errorf(n, "%s: missing %s", describe(what, r.ID), key)
			}
		}
	}
	if r.Reply && r.Transport == TCP {
		d.errorf(replyNode, "reply: applies to udp rules only; remove it from this tcp rule")
	}
	return r, len(d.errs) == errsBefore
}

// ruleField sets one single-valued field of a rule from its text.
func (d *nodeDecoder) ruleField(r *Rule, key, text string, v *yaml.Node) {
	switch key {
	case "id":
		if !validID(text) {
			d.errorf(v, "bad id %q: use letters, digits, '-', '_' and '.' only", text)
		}
		r.ID = text
	case "client":
		if text == anyClient {
			r.AnyClient = true
			return
		}
		role, ok := ParseRole(text)
		if !ok {
			d.errorf(v, "unknown role %q%s", text, suggest(text, append(RoleNames(), anyClient)))
		}
		r.Client = role
	case "server":
		if text == anyClient {
			d.errorf(v, `server cannot be "any": name the role that accepts the flow`)
			return
		}
		role, ok := ParseRole(text)
		if !ok {
			d.errorf(v, "unknown role %q%s", text, suggest(text, RoleNames()))
		}
		r.Server = role
	case "transport":
		tr, ok := parseTransport(text)
		if !ok {
			d.errorf(v, "bad transport %q: want tcp or udp (a TCP/UDP row is two rules)", text)
		}
		r.Transport = tr
	case "feature":
		if !contains(matrixFeatures, text) {
			hint := suggest(text, matrixFeatures)
			if text == FeatureSIEM {
				hint = " (SIEM rules come from siem.ports in the site config)"
			}
			d.errorf(v, "unknown feature %q%s", text, hint)
		}
		r.Feature = text
	case "infer":
		switch text {
		case "both":
			r.Infer = InferBoth
		case "server":
			r.Infer = InferServer
		case "known-client":
			r.Infer = InferKnownClient
		default:
			d.errorf(v, "bad infer %q: want both, server or known-client, or leave it out", text)
		}
	case "announced":
		switch text {
		case "rpc":
			r.Announced = AnnounceRPC
		case "sql-browser":
			r.Announced = AnnounceSQLBrowser
		default:
			d.errorf(v, "bad announced %q: want rpc (the endpoint mapper's port) or sql-browser (SQL Server Browser's), or leave it out", text)
		}
	case "description":
		r.Description = text
	case "section":
		r.Section = text
	}
}

// validID keeps rule ids usable as metric label values and in file names
// without quoting.
func validID(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// describe names a rule in a message: `rule "agent-em-grpc"`, or just
// `rule` while its id is unknown.
func describe(what, id string) string {
	if id == "" {
		return what
	}
	return fmt.Sprintf("%s %q", what, id)
}

// rules reads a list of rules (the matrix's rules, the config's allow), each
// with a unique id; what and idWord name them in errors ("rule"/"rule",
// "allow rule"/"allow").
func (d *nodeDecoder) rules(n *yaml.Node, key, example, what, idWord string, keys []string) []Rule {
	var out []Rule
	ids := map[string]int{}
	for _, item := range d.sequence(n, key, example) {
		r, ok := d.rule(item, what, keys)
		if !ok {
			continue
		}
		if first, dup := ids[r.ID]; dup {
			d.errorf(item, "duplicate %s id %q (first at line %d): ids must be unique", idWord, r.ID, first)
			continue
		}
		ids[r.ID] = item.Line
		out = append(out, r)
	}
	return out
}
