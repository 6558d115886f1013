package policy

import (
	"slices"
	"strings"
)

// portIndex finds the rules of one transport that name a port, in rule
// order, with two array reads: port → set number → rule list. Ports that
// share the same rules share one list, so the dynamic ranges, which cover
// most of the port space, cost one list and not sixteen thousand.
type portIndex struct {
	setOf [1 << 16]uint16 // set number of each port; set 0 is empty
	sets  [][]uint16      // rule indices, ascending
}

// buildPortIndex indexes the rules of transport tr. Rule indices must fit
// in uint16 (Compile checks).
func buildPortIndex(rules []Rule, tr Transport) *portIndex {
	idx := &portIndex{sets: [][]uint16{nil}}

	// The rule list only changes at the edges of ranges: compute it once
	// per segment between two edges.
	edges := []int{0, 1 << 16}
	for i := range rules {
		if rules[i].Transport != tr {
			continue
		}
		for _, pr := range rules[i].Ports {
			edges = append(edges, int(pr.Low), int(pr.High)+1)
		}
	}
	slices.Sort(edges)
	edges = slices.Compact(edges)

	setNumber := map[string]uint16{"": 0}
	for e := 0; e+1 < len(edges); e++ {
		lo, hi := edges[e], edges[e+1] // [lo, hi)
		var list []uint16
		for i := range rules {
			if rules[i].Transport == tr && rules[i].HasPort(uint16(lo)) {
				list = append(list, uint16(i))
			}
		}
		key := listKey(list)
		n, ok := setNumber[key]
		if !ok {
			n = uint16(len(idx.sets))
			setNumber[key] = n
			idx.sets = append(idx.sets, list)
		}
		for p := lo; p < hi; p++ {
			idx.setOf[p] = n
		}
	}
	return idx
}

// listKey makes a rule list usable as a map key.
func listKey(list []uint16) string {
	var b strings.Builder
	for _, i := range list {
		b.WriteByte(byte(i >> 8))
		b.WriteByte(byte(i))
	}
	return b.String()
}

// rules returns the indices of the rules naming port, in rule order.
func (idx *portIndex) rules(port uint16) []uint16 {
	return idx.sets[idx.setOf[port]]
}
