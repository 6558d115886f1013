package report

import (
	"github.com/tpwatch/tpwatch/policy"
)

// Grid is the matrix as a picture: a row per client role, a column per
// server role, and in each cell the rules between them and what their
// flows did. Only the roles of the site are shown (those its inventory
// holds, or that flows were seen with), so that the grid of a small site
// stays small.
type Grid struct {
	Clients, Servers []string // role names; "no role" and "any" included
	Cells            [][]GridCell
}

// GridCell is one (client role, server role) pair.
type GridCell struct {
	// Rules are the ids of the matrix's rules for the pair (at most
	// gridRuleIDs of them; RuleCount counts them all).
	Rules     []string
	RuleCount int
	// The flows of the pair, by verdict; flows with no rule are counted
	// in the pair of their ends' first roles.
	Allowed, Blocked, Unexpected, Pending uint64
	// Status is the worst of the flows, StatusNotSeen when the pair has
	// rules and no flow; Empty is set when it has neither.
	Status Status
	Empty  bool
}

// Flows is the number of flows counted in the cell.
func (c *GridCell) Flows() uint64 { return c.Allowed + c.Blocked + c.Unexpected + c.Pending }

// gridRuleIDs bounds the rule ids a cell names (a --matrix may have
// many rules for one pair).
const gridRuleIDs = 8

// slotName names a grid row or column.
func slotName(slot int) string {
	switch slot {
	case 0:
		return "no role"
	case anyClient:
		return "any"
	}
	return policy.Role(slot).String()
}

// gridView builds the grid of the site's roles.
func (s *Summary) gridView(h Header) Grid {
	var ruleCount [gridClients][gridServers]int
	var ruleIDs [gridClients][gridServers][]string
	for i := range s.rules {
		r := &s.rules[i]
		c := int(r.Client)
		if r.AnyClient {
			c = anyClient
		}
		sv := int(r.Server)
		if c >= gridClients || sv >= gridServers {
			continue
		}
		ruleCount[c][sv]++
		if len(ruleIDs[c][sv]) < gridRuleIDs {
			ruleIDs[c][sv] = append(ruleIDs[c][sv], r.ID)
		}
	}
	// The roles of the site: those of the inventory, and those flows
	// were counted with.
	var present [gridClients]bool
	flows := func(c, sv int) bool {
		for _, n := range s.grid[c][sv] {
			if n > 0 {
				return true
			}
		}
		return false
	}
	for slot := 1; slot < gridServers; slot++ {
		present[slot] = h.InventoryRoles.Has(policy.Role(slot))
	}
	for c := range s.grid {
		for sv := range s.grid[c] {
			if flows(c, sv) {
				present[c], present[sv] = true, true
			}
		}
	}
	// A row or column when the pair has flows, or rules between roles of
	// the site: a role that is only ever a server has no row.
	var rows [gridClients]bool
	var cols [gridServers]bool
	for c := range rows {
		for sv := range cols {
			if flows(c, sv) || ruleCount[c][sv] > 0 && (present[c] || c == anyClient) && present[sv] {
				rows[c], cols[sv] = true, true
			}
		}
	}
	var g Grid
	var rowSlots, colSlots []int
	for c, ok := range rows {
		if ok {
			rowSlots = append(rowSlots, c)
			g.Clients = append(g.Clients, slotName(c))
		}
	}
	for sv, ok := range cols {
		if ok {
			colSlots = append(colSlots, sv)
			g.Servers = append(g.Servers, slotName(sv))
		}
	}
	for _, c := range rowSlots {
		line := make([]GridCell, len(colSlots))
		for j, sv := range colSlots {
			n := s.grid[c][sv]
			cell := GridCell{Rules: ruleIDs[c][sv], RuleCount: ruleCount[c][sv],
				Allowed: n[0], Blocked: n[1], Unexpected: n[2], Pending: n[3]}
			switch {
			case cell.Blocked > 0:
				cell.Status = StatusBlocked
			case cell.Unexpected > 0:
				cell.Status = StatusUnexpected
			case cell.Pending > 0 && cell.Allowed == 0:
				cell.Status = StatusPending
			case cell.Allowed > 0:
				cell.Status = StatusOK
			case cell.RuleCount > 0:
				cell.Status = StatusNotSeen
			default:
				cell.Empty = true
			}
			line[j] = cell
		}
		g.Cells = append(g.Cells, line)
	}
	return g
}
