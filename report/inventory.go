package report

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/tpwatch/tpwatch/policy"
)

// MaxInventoryHosts bounds the hosts a report lists: an inferred
// inventory may hold tens of thousands.
const MaxInventoryHosts = 500

// InventoryHosts lists the hosts of an inventory config, one entry per
// address or prefix with all its roles, sorted, with the evidence for each
// role when there is some; at most max of them (0: all), and how many more
// there are, and the roles some host holds.
func InventoryHosts(cfg *policy.Config, evidence map[netip.Addr]map[policy.Role]string, max int) (hosts []InventoryHost, more int, roles policy.RoleSet) {
	if cfg == nil {
		return nil, 0, 0
	}
	byPrefix := map[netip.Prefix]policy.RoleSet{}
	for role, prefixes := range cfg.Roles {
		for _, p := range prefixes {
			byPrefix[p] = byPrefix[p].With(role)
			roles = roles.With(role)
		}
	}
	prefixes := make([]netip.Prefix, 0, len(byPrefix))
	for p := range byPrefix {
		prefixes = append(prefixes, p)
	}
	slices.SortFunc(prefixes, func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	})
	if max > 0 && len(prefixes) > max {
		more = len(prefixes) - max
		prefixes = prefixes[:max]
	}
	for _, p := range prefixes {
		h := InventoryHost{Prefix: p, Roles: byPrefix[p]}
		if ev := evidence[p.Addr()]; ev != nil && p.IsSingleIP() {
			for _, role := range h.Roles.Roles() {
				if text, ok := ev[role]; ok {
					h.Evidence = append(h.Evidence, role.String()+": "+text)
				}
			}
		}
		hosts = append(hosts, h)
	}
	return hosts, more, roles
}
