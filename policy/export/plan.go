package export

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/tpwatch/tpwatch/policy"
)

// Options say whose rules to write, and how.
type Options struct {
	// Host is the host to write the rules of: the roles its address
	// holds in the inventory. When it is not valid, Role is used instead.
	Host netip.Addr
	// Role writes the rules of every host of a role.
	Role policy.Role
	// Profile is the Windows Firewall profile of the PowerShell rules:
	// Domain, Private, Public, Any, or a comma-separated list; empty
	// means DefaultProfile.
	Profile string
	// InboundAccept and OutboundDrop set the policy of the nftables
	// chains, for what no rule accepts: by default the input chain drops
	// it (as Windows Firewall blocks inbound connections no rule allows)
	// and the output chain accepts it (as Windows does outbound).
	InboundAccept, OutboundDrop bool
	// Source names the config and the matrix in the header (for example
	// "site.yaml and the embedded Netwrix Threat Prevention 7.5 matrix").
	Source string
	// Version is tpwatch's, for the header.
	Version string
}

// DefaultProfile is the profile of the PowerShell rules: the servers of
// Threat Prevention are members of a domain.
const DefaultProfile = "Domain"

// direction is a rule's direction on the host.
type direction uint8

const (
	inbound direction = iota
	outbound
)

func (d direction) String() string {
	if d == outbound {
		return "out"
	}
	return "in"
}

// entry is one matrix rule in one direction on the host.
type entry struct {
	rule *policy.Rule
	dir  direction
	// peerRole names the other end: a role, or "any".
	peerRole string
	// peers are the remote addresses; nil means any address, and anyWhy
	// then says why.
	peers  []netip.Prefix
	anyWhy string
	// skip, when set, says why the rule is not written (a comment is).
	skip string
	// note is a remark written with the rule.
	note string
}

// plan is what an export writes, in the order it writes it.
type plan struct {
	subject string // "192.0.2.10 (enterprise-manager, sql-server)", "every agent"
	roles   policy.RoleSet
	entries []entry
}

// errNoConfig: without an inventory nothing says which host holds which
// role.
var errNoConfig = errors.New("policy export needs --config: the inventory says which host holds which role")

// makePlan chooses the rules of the host or role o names, inbound ones
// first, each direction in rule order.
func makePlan(p *policy.Policy, o Options) (*plan, error) {
	cfg := p.Config()
	if cfg == nil {
		return nil, errNoConfig
	}
	pl := &plan{}
	var self netip.Addr
	switch {
	case o.Host.IsValid():
		self = o.Host.Unmap()
		for r, prefixes := range cfg.Roles {
			for _, pf := range prefixes {
				if pf.Contains(self) {
					pl.roles = pl.roles.With(r)
				}
			}
		}
		if pl.roles == 0 {
			return nil, fmt.Errorf("%s holds no role in the config: give an address listed under roles (or --role)", self)
		}
		pl.subject = fmt.Sprintf("%s (%s)", self, strings.ReplaceAll(pl.roles.String(), ",", ", "))
	case o.Role != policy.RoleInvalid:
		pl.roles = pl.roles.With(o.Role)
		pl.subject = "every " + o.Role.String()
		if hosts := cfg.Roles[o.Role]; len(hosts) > 0 {
			pl.subject += " (" + prefixList(hosts) + ")"
		}
	default:
		return nil, errors.New("policy export needs --host ADDRESS or --role ROLE")
	}
	for _, dir := range []direction{inbound, outbound} {
		for i := range p.Rules() {
			r := &p.Rules()[i]
			var peer policy.Role
			switch {
			case dir == inbound && pl.roles.Has(r.Server):
				peer = r.Client
			case dir == outbound && !r.AnyClient && pl.roles.Has(r.Client):
				peer = r.Server
			default:
				continue
			}
			e := entry{rule: r, dir: dir, peerRole: peer.String()}
			switch {
			case dir == inbound && r.AnyClient:
				e.peerRole, e.anyWhy = "any", "the matrix admits any client"
			case len(cfg.Roles[peer]) == 0:
				// The site has no such host (no NetApp filer, no SIEM): the
				// rule is not needed, and opening it to any address would
				// be the opposite of what the matrix asks.
				e.skip = "the config names no " + peer.String() + " (list its hosts under roles to get this rule)"
			default:
				e.peers = withoutHost(collapse(cfg.Roles[peer]), self)
				if len(e.peers) == 0 {
					e.skip = "every " + peer.String() + " of the config is this host itself"
				}
			}
			if r.Feature != "" && !p.FeatureEnabled(r.Feature) {
				e.skip = "feature " + r.Feature + " is off in the config"
			}
			if dir == inbound && r.Shared && pl.roles.Has(policy.DomainController) {
				e.note = "a domain controller's own Windows Firewall groups usually allow this port already"
			}
			pl.entries = append(pl.entries, e)
		}
	}
	return pl, nil
}

// withoutHost drops the host's own address (as a /32 or /128) from the
// peers: a flow from a host to itself crosses no firewall. A network that
// holds the host stays: it holds other hosts too.
func withoutHost(peers []netip.Prefix, self netip.Addr) []netip.Prefix {
	if !self.IsValid() {
		return peers
	}
	out := peers[:0:0]
	for _, p := range peers {
		if p.IsSingleIP() && p.Addr() == self {
			continue
		}
		out = append(out, p)
	}
	return out
}

// collapse drops the prefixes another one of the list already covers (a
// host inside a network listed too, a duplicate), keeping the list's
// order: one remote address per network is what a firewall needs.
func collapse(ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for i, p := range ps {
		covered := false
		for j, q := range ps {
			if i != j && q.Bits() <= p.Bits() && q.Contains(p.Addr()) && (q.Bits() < p.Bits() || j < i) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, p)
		}
	}
	return out
}

func prefixList(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = addrString(p)
	}
	return strings.Join(s, ", ")
}

// addrString writes a single address without its /32 or /128.
func addrString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// oneLine keeps text a comment can hold: a newline would end the comment
// and make the rest a command.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// describe is what a comment says of a rule: its id, its section and its
// description.
func describe(r *policy.Rule) string {
	return oneLine(fmt.Sprintf("%s (%s): %s", r.ID, r.Section, r.Description))
}
