package policy

import (
	"fmt"
	"net/netip"
	"strconv"
)

// maxRules keeps rule indices within the uint16 of the port index.
const maxRules = 1<<16 - 1

// Policy is a matrix compiled with a site config: what the classifier asks
// once per new flow (through Bind, which adds the inventory). It is never
// changed once compiled, so it may be shared by any number of goroutines.
type Policy struct {
	rules    []Rule
	enabled  []bool // per rule: no feature, or its feature is on
	features map[string]bool
	tcp, udp *portIndex
	timeouts Timeouts

	config   *Config // nil when the inventory is inferred
	static   hostTable
	inferred bool

	// productHosts, sharedHosts: see Matrix. productPorts holds, per
	// transport, the ports a matrix rule without "shared" names.
	productHosts, sharedHosts RoleSet
	productPorts              [2]portSet
	ignore                    []ignoreRule
}

// portSet is a set of ports, a bit each.
type portSet [1 << 16 / 64]uint64

func (s *portSet) add(r PortRange) {
	for p := int(r.Low); p <= int(r.High); p++ {
		s[p/64] |= 1 << (p % 64)
	}
}

func (s *portSet) has(p uint16) bool { return s[p/64]&(1<<(p%64)) != 0 }

// ignoreRule is an IgnoreRule compiled: its networks in a hostTable, its
// ports in a set per transport.
type ignoreRule struct {
	networks       hostTable
	anyNetwork     bool // no networks given: any address
	ports          [2]portSet
	anyPort        bool
	client, server Role
}

// transportIndex numbers the transports for arrays: TCP 0, UDP 1.
func transportIndex(tr Transport) int {
	if tr == UDP {
		return 1
	}
	return 0
}

// Compile builds the policy of matrix m and site config c. A nil c means
// no --config: every feature is off and the inventory is learned from the
// traffic (see Inventory). The SIEM ports and allow rules of c are
// appended to the matrix rules, in that order.
func Compile(m *Matrix, c *Config) (*Policy, error) {
	if m == nil {
		return nil, fmt.Errorf("compile policy: no matrix")
	}
	p := &Policy{
		features:     map[string]bool{},
		timeouts:     c.EffectiveTimeouts(),
		inferred:     c == nil,
		config:       c,
		productHosts: m.ProductHosts,
		sharedHosts:  m.SharedHosts,
	}
	p.rules = append(p.rules, m.Rules...)
	// Only the matrix's own rules make a product port: a site's allow rule
	// (RDP for the admins) or a SIEM port (syslog) is no product port.
	for i := range m.Rules {
		if r := &m.Rules[i]; !r.Shared {
			for _, pr := range r.Ports {
				p.productPorts[transportIndex(r.Transport)].add(pr)
			}
		}
	}
	if c != nil {
		for name, on := range c.Features {
			p.features[name] = on
		}
		p.features[FeatureSIEM] = len(c.SIEMPorts) > 0
		p.rules = appendSIEMRules(p.rules, c.SIEMPorts)
		p.rules = append(p.rules, c.Allow...)
		p.static = newHostTable(c.Roles)
		for _, ig := range c.Ignore {
			p.ignore = append(p.ignore, compileIgnore(ig))
		}
	}
	if err := validateRules(p.rules, len(m.Rules)); err != nil {
		return nil, fmt.Errorf("compile policy: %w", err)
	}
	p.enabled = make([]bool, len(p.rules))
	for i := range p.rules {
		f := p.rules[i].Feature
		p.enabled[i] = f == "" || p.features[f]
	}
	p.tcp = buildPortIndex(p.rules, TCP)
	p.udp = buildPortIndex(p.rules, UDP)
	return p, nil
}

func appendSIEMRules(rules []Rule, ports []PortSpec) []Rule {
	seen := map[PortSpec]bool{}
	for _, sp := range ports {
		if seen[sp] {
			continue
		}
		seen[sp] = true
		rules = append(rules, Rule{
			ID:          "em-siem-" + sp.Transport.String() + "-" + sp.Ports.String(),
			Client:      EnterpriseManager,
			Server:      SIEM,
			Transport:   sp.Transport,
			Ports:       []PortRange{sp.Ports},
			Feature:     FeatureSIEM,
			Description: "SIEM alerting from the Enterprise Manager",
			Section:     "site config (siem.ports)",
		})
	}
	return rules
}

// validateRules checks what the index and Match rely on, for matrices built
// in Go rather than parsed; the first nMatrix rules come from the matrix.
func validateRules(rules []Rule, nMatrix int) error {
	if len(rules) > maxRules {
		return fmt.Errorf("%d rules: at most %d", len(rules), maxRules)
	}
	ids := make(map[string]int, len(rules))
	for i := range rules {
		r := &rules[i]
		if first, dup := ids[r.ID]; dup {
			if first < nMatrix && i >= nMatrix {
				return fmt.Errorf("rule id %q of the site config is already a matrix rule id: choose another id", r.ID)
			}
			return fmt.Errorf("duplicate rule id %q", r.ID)
		}
		ids[r.ID] = i
		if r.Transport != TCP && r.Transport != UDP {
			return fmt.Errorf("rule %q: transport %d is neither tcp nor udp", r.ID, r.Transport)
		}
		if r.Server <= RoleInvalid || r.Server >= numRoles || (!r.AnyClient && (r.Client <= RoleInvalid || r.Client >= numRoles)) {
			return fmt.Errorf("rule %q: invalid client or server role", r.ID)
		}
		if len(r.Ports) == 0 {
			return fmt.Errorf("rule %q: no ports", r.ID)
		}
		for _, pr := range r.Ports {
			if pr.Low == 0 || pr.Low > pr.High {
				return fmt.Errorf("rule %q: bad port range %d-%d", r.ID, pr.Low, pr.High)
			}
		}
	}
	return nil
}

// Rules returns the rules, indexed as Match.Rule: the matrix, then the SIEM
// rules, then the allow rules. The slice must not be modified.
func (p *Policy) Rules() []Rule { return p.rules }

// Inferred reports whether the inventory is learned from traffic (no
// --config).
func (p *Policy) Inferred() bool { return p.inferred }

// Config returns the site config the policy was compiled with, nil when
// the inventory is inferred. It must not be modified.
func (p *Policy) Config() *Config { return p.config }

// Load reads the matrix (the embedded one when matrixFile is empty) and
// the site config (none when configFile is empty: the inventory is then
// inferred) and compiles them: the one way every command and the daemon
// load a policy. Errors name the file, and a ConfigErrors lists every
// problem of a file with its line.
func Load(matrixFile, configFile string) (*Policy, error) {
	var (
		m   *Matrix
		err error
	)
	if matrixFile != "" {
		m, err = LoadMatrix(matrixFile)
	} else {
		m, err = DefaultMatrix()
	}
	if err != nil {
		return nil, err
	}
	var c *Config
	if configFile != "" {
		if c, err = LoadConfig(configFile); err != nil {
			return nil, err
		}
	}
	return Compile(m, c)
}

// Timeouts returns the flow timeouts, defaults filled in.
func (p *Policy) Timeouts() Timeouts { return p.timeouts }

// FeatureEnabled reports whether the feature is on. "siem" is on when the
// config lists SIEM ports.
func (p *Policy) FeatureEnabled(name string) bool { return p.features[name] }

// Reply reports whether rule expects a UDP reply to each request. An
// out-of-range index (such as -1) has no rule and expects nothing.
func (p *Policy) Reply(rule int32) bool {
	return rule >= 0 && int(rule) < len(p.rules) && p.rules[rule].Reply
}

func (p *Policy) candidates(tr Transport, port uint16) []uint16 {
	switch tr {
	case TCP:
		return p.tcp.rules(port)
	case UDP:
		return p.udp.rules(port)
	}
	return nil
}

// Match decides which rule, if any, flow f follows, given the roles of its
// client and server. The first rule in rule order wins within each
// outcome; see MatchKind for the outcomes. A flow no enabled rule admits
// is ignored when the config's ignore list matches it, and when both its
// ends are known but it does not concern the product (see concerns).
func (p *Policy) Match(f Flow) Match {
	if sameHost(&f.Client, &f.Server) {
		return Match{Kind: MatchOwnTraffic, Rule: -1}
	}
	firstServer, firstAdmitted := int32(-1), int32(-1)
	for _, i := range p.candidates(f.Transport, f.Port) {
		r := &p.rules[i]
		if !f.ServerRoles.Has(r.Server) {
			continue
		}
		if firstServer < 0 && !r.Shared {
			firstServer = int32(i)
		}
		if !r.AnyClient && !f.ClientRoles.Has(r.Client) {
			continue
		}
		if p.enabled[i] {
			return Match{Kind: MatchAllowed, Rule: int32(i)}
		}
		if firstAdmitted < 0 {
			firstAdmitted = int32(i)
		}
	}
	var m Match
	switch {
	case firstAdmitted >= 0:
		m = Match{Kind: MatchFeatureDisabled, Rule: firstAdmitted}
	case firstServer >= 0:
		m = Match{Kind: MatchUnauthorizedClient, Rule: firstServer}
	case f.ClientRoles != 0 && f.ServerRoles != 0 && p.concerns(&f):
		m = Match{Kind: MatchNoRule, Rule: -1}
	case f.ClientRoles != 0 && f.ServerRoles != 0:
		m = Match{Kind: MatchNotProduct, Rule: -1}
	default:
		return Match{Kind: MatchIgnored, Rule: -1}
	}
	if p.siteIgnores(&f) {
		return Match{Kind: MatchSiteIgnored, Rule: -1}
	}
	return m
}

// Rule returns rule i, nil when there is none.
func (p *Policy) Rule(i int32) *Rule {
	if i < 0 || int(i) >= len(p.rules) {
		return nil
	}
	return &p.rules[i]
}

// MatchAnnounced matches a flow to a port its server announced (a) with
// the rules that announcement may stand for, whatever ports they list: the
// first enabled one that admits the flow's roles, else the first one whose
// feature is off. It reports false when no such rule admits them.
func (p *Policy) MatchAnnounced(f Flow, a Announce) (Match, bool) {
	if a == AnnounceNone || sameHost(&f.Client, &f.Server) {
		return Match{Kind: MatchIgnored, Rule: -1}, false
	}
	disabled := int32(-1)
	for i := range p.rules {
		r := &p.rules[i]
		if r.Announced != a || r.Transport != f.Transport || !f.ServerRoles.Has(r.Server) ||
			!r.AnyClient && !f.ClientRoles.Has(r.Client) {
			continue
		}
		if p.enabled[i] {
			return Match{Kind: MatchAllowed, Rule: int32(i)}, true
		}
		if disabled < 0 {
			disabled = int32(i)
		}
	}
	if disabled >= 0 {
		return Match{Kind: MatchFeatureDisabled, Rule: disabled}, true
	}
	return Match{Kind: MatchIgnored, Rule: -1}, false
}

// sameHost reports a flow a host has with itself: both ends the same
// address, or both on the loopback network (127.0.0.0/8, ::1).
func sameHost(a, b *[16]byte) bool {
	if *a == *b {
		return true
	}
	loop := func(x *[16]byte) bool {
		return isMapped(x) && x[12] == 127 || *x == [16]byte{15: 1}
	}
	return loop(a) && loop(b)
}

// concerns reports whether a flow between two hosts of the inventory that
// no rule admits concerns Threat Prevention: its server port is a product
// port, or one of its ends is a product host.
func (p *Policy) concerns(f *Flow) bool {
	return p.productPorts[transportIndex(f.Transport)].has(f.Port) ||
		p.ProductHost(f.ClientRoles) || p.ProductHost(f.ServerRoles)
}

// ProductHost reports whether a host holding roles exists for the product
// (see Matrix.ProductHosts).
func (p *Policy) ProductHost(roles RoleSet) bool {
	if p.productHosts == 0 {
		return roles != 0
	}
	return roles&p.productHosts != 0 && roles&p.sharedHosts == 0
}

// siteIgnores reports whether an entry of the config's ignore list
// matches f.
func (p *Policy) siteIgnores(f *Flow) bool {
	for i := range p.ignore {
		if p.ignore[i].matches(f) {
			return true
		}
	}
	return false
}

func compileIgnore(r IgnoreRule) ignoreRule {
	ig := ignoreRule{anyNetwork: len(r.Networks) == 0, anyPort: len(r.Ports) == 0, client: r.Client, server: r.Server}
	if !ig.anyNetwork {
		ig.networks = newHostTable(map[Role][]netip.Prefix{AdminConsole: r.Networks})
	}
	for _, ps := range r.Ports {
		ig.ports[transportIndex(ps.Transport)].add(ps.Ports)
	}
	return ig
}

func (ig *ignoreRule) matches(f *Flow) bool {
	return (ig.anyNetwork || ig.networks.lookup(f.Client) != 0 || ig.networks.lookup(f.Server) != 0) &&
		(ig.anyPort || ig.ports[transportIndex(f.Transport)].has(f.Port)) &&
		(ig.client == RoleInvalid || f.ClientRoles.Has(ig.client)) &&
		(ig.server == RoleInvalid || f.ServerRoles.Has(ig.server))
}

// Server-port scores (ServerPortScore): how strongly a port looks like the
// server end of a flow whose first packet does not say (no SYN seen, or
// UDP). A port a rule names itself beats a well-known port, which beats a
// port that only a wide range covers: the mid-stream SMB flow of an agent
// to the Enterprise Manager's 445 stays on 445 even where the DCOM range
// 1024-65535 of wmi-auto-deploy covers the agent's own port.
const (
	ScoreNone      = 0 // no rule of those roles covers the port
	ScoreRange     = 1 // a wide range (100 ports or more) covers it
	ScoreWellKnown = 2 // below 1024: a service's port, whatever the roles
	ScoreNamed     = 3 // a rule names it (a port or a range of fewer than 100)
)

// ServerPortScore says how strongly port looks like a server port of a host
// holding roles (see the Score constants). With an inferred inventory, the
// rules that teach a role count whatever roles the host holds, since that
// role is what it would learn.
func (p *Policy) ServerPortScore(tr Transport, port uint16, roles RoleSet) int {
	best := ScoreNone
	for _, i := range p.candidates(tr, port) {
		r := &p.rules[i]
		if !roles.Has(r.Server) && (!p.inferred || r.Infer == InferNone) {
			continue
		}
		for _, pr := range r.Ports {
			if !pr.Has(port) {
				continue
			}
			if int(pr.High)-int(pr.Low)+1 < 100 {
				return ScoreNamed
			}
			best = ScoreRange
		}
	}
	if port < 1024 {
		best = max(best, ScoreWellKnown)
	}
	return best
}

// String describes a match for logs and test failures.
func (m Match) String() string {
	return m.Kind.String() + "/" + strconv.Itoa(int(m.Rule))
}

var matchKindNames = [...]string{"ignored", "allowed", "feature_disabled", "unauthorized_client", "no_rule", "not_product", "site_ignored", "own_traffic"}

func (k MatchKind) String() string {
	if int(k) < len(matchKindNames) {
		return matchKindNames[k]
	}
	return "invalid"
}

// Warnings says what in the site config leaves tpwatch blind without
// making the config invalid, one sentence each: no host named at all (every
// flow would be ignored, and a replay would pass any capture), SIEM ports
// with no siem host, an allow rule whose roles no host holds. An inferred
// inventory has none.
func (p *Policy) Warnings() []string {
	c := p.config
	if c == nil {
		return nil
	}
	held := RoleSet(0)
	for r, prefixes := range c.Roles {
		if len(prefixes) > 0 {
			held = held.With(r)
		}
	}
	var out []string
	if held == 0 {
		out = append(out, "the config names no host (roles is empty): every flow will be ignored; list the Threat Prevention hosts under roles")
	}
	if len(c.SIEMPorts) > 0 && !held.Has(SIEM) {
		out = append(out, "siem.ports are listed but no host holds the siem role: no flow can match them; list the SIEM hosts under roles.siem")
	}
	for _, r := range c.Allow {
		for _, role := range []Role{r.Client, r.Server} {
			if role != RoleInvalid && !held.Has(role) {
				out = append(out, fmt.Sprintf("allow rule %q names the role %s, which no host holds: it can match no flow", r.ID, role))
			}
		}
	}
	return out
}
