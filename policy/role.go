package policy

import (
	"sort"
	"strings"
)

// anyClient is the matrix word for "every host" in the client position.
const anyClient = "any"

// ParseRole returns the role with the exact, lower-case name of DESIGN.md.
// "any" is not a role: rules handle it themselves.
func ParseRole(name string) (Role, bool) {
	for r := RoleInvalid + 1; r < numRoles; r++ {
		if roleNames[r] == name {
			return r, true
		}
	}
	return RoleInvalid, false
}

// RoleNames returns every valid role name in Role order.
func RoleNames() []string {
	names := make([]string, 0, numRoles-1)
	for r := RoleInvalid + 1; r < numRoles; r++ {
		names = append(names, roleNames[r])
	}
	return names
}

// Roles returns the roles of the set in Role order.
func (s RoleSet) Roles() []Role {
	var roles []Role
	for r := RoleInvalid + 1; r < numRoles; r++ {
		if s.Has(r) {
			roles = append(roles, r)
		}
	}
	return roles
}

// String returns the role names of the set, comma-separated in Role order;
// the empty set is "".
func (s RoleSet) String() string {
	var b strings.Builder
	for r := RoleInvalid + 1; r < numRoles; r++ {
		if !s.Has(r) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(roleNames[r])
	}
	return b.String()
}

// suggest returns a hint for a misspelt name: the nearest of valid by edit
// distance when it is near enough to be a typo, else the list of valid names.
func suggest(name string, valid []string) string {
	best, bestDist := "", len(name)+1
	for _, v := range valid {
		// An abbreviation ("wmi", "fpolicy") is as good as a typo.
		if len(name) >= 3 && strings.HasPrefix(v, name) {
			return ` (did you mean "` + v + `"?)`
		}
		if d := editDistance(name, v); d < bestDist {
			best, bestDist = v, d
		}
	}
	// A third of the name's length keeps "agnet" → "agent" and "sqlserver"
	// → "sql-server" but does not offer "nasuni" for "foo".
	if best != "" && bestDist <= max(1, len(name)/3) {
		return ` (did you mean "` + best + `"?)`
	}
	sorted := append([]string(nil), valid...)
	sort.Strings(sorted)
	return " (valid: " + strings.Join(sorted, ", ") + ")"
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of neighbours each cost one,
// so the commonest typo, two swapped letters, is one edit.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
