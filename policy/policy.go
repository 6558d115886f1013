package policy

import (
	"fmt"
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
		features: map[string]bool{},
		timeouts: c.EffectiveTimeouts(),
		inferred: c == nil,
		config:   c,
	}
	p.rules = append(p.rules, m.Rules...)
	if c != nil {
		for name, on := range c.Features {
			p.features[name] = on
		}
		p.features[FeatureSIEM] = len(c.SIEMPorts) > 0
		p.rules = appendSIEMRules(p.rules, c.SIEMPorts)
		p.rules = append(p.rules, c.Allow...)
		p.static = newHostTable(c.Roles)
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

func appendSIEMRules(rules []Rule, ports []SIEMPort) []Rule {
	seen := map[SIEMPort]bool{}
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

// Match decides which rule, if any, a flow of transport tr to server port
// port follows, given the roles of its client and server. The first rule in
// rule order wins within each outcome; see MatchKind for the outcomes.
func (p *Policy) Match(tr Transport, client, server RoleSet, port uint16) Match {
	firstServer, firstAdmitted := int32(-1), int32(-1)
	for _, i := range p.candidates(tr, port) {
		r := &p.rules[i]
		if !server.Has(r.Server) {
			continue
		}
		if firstServer < 0 && !r.Shared {
			firstServer = int32(i)
		}
		if !r.AnyClient && !client.Has(r.Client) {
			continue
		}
		if p.enabled[i] {
			return Match{Kind: MatchAllowed, Rule: int32(i)}
		}
		if firstAdmitted < 0 {
			firstAdmitted = int32(i)
		}
	}
	switch {
	case firstAdmitted >= 0:
		return Match{Kind: MatchFeatureDisabled, Rule: firstAdmitted}
	case firstServer >= 0:
		return Match{Kind: MatchUnauthorizedClient, Rule: firstServer}
	case client != 0 && server != 0:
		return Match{Kind: MatchNoRule, Rule: -1}
	}
	return Match{Kind: MatchIgnored, Rule: -1}
}

// ServerPortScore says how strongly port looks like a server port of a host
// holding roles, to orient a flow whose SYN was not seen: 2 when a rule
// names the port itself (a single port or a range of fewer than 100 ports), 1
// when only a wide range such as 49152-65535 covers it, 0 when no rule of
// those roles does. With an inferred inventory, the rules that teach a role
// count whatever roles the host holds, since that role is what it would
// learn.
func (p *Policy) ServerPortScore(tr Transport, port uint16, roles RoleSet) int {
	best := 0
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
				return 2
			}
			best = 1
		}
	}
	return best
}

// String describes a match for logs and test failures.
func (m Match) String() string {
	return m.Kind.String() + "/" + strconv.Itoa(int(m.Rule))
}

var matchKindNames = [...]string{"ignored", "allowed", "feature_disabled", "unauthorized_client", "no_rule"}

func (k MatchKind) String() string {
	if int(k) < len(matchKindNames) {
		return matchKindNames[k]
	}
	return "invalid"
}
