package metrics

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/dissect"
	"github.com/tpwatch/tpwatch/policy"
)

// Sizes of the per-rule counter block: one cell per (vantage, verdict,
// reason), each indexed by its numeric value, so counting is an array
// index.
const (
	numVerdicts    = classifier.NumVerdicts
	numReasons     = classifier.NumReasons
	numVantages    = classifier.NumVantages
	cellsPerVant   = numVerdicts * numReasons
	cellsPerSlot   = numVantages * cellsPerVant
	noRuleSlot     = 0 // slot of rule "" (rule index -1, or ignored flows)
	nanosPerSecond = 1e9
)

// RuleInfo describes one rule for tpwatch_rule_info, so that dashboards can
// list every rule, even one never seen. Every field is a label value.
type RuleInfo struct {
	Client    string // client role, or "any"
	Server    string // server role
	Transport string // "tcp" or "udp"
	Ports     string // server ports as policy.Rule.PortsString writes them
	Feature   string // gating feature, empty when none

	// The rule's ends, for the series a host exports at zero
	// (SetHostRoles); RulesOf sets them.
	client, server policy.Role
	anyClient      bool
	// expectsApp: a port of the rule carries a known protocol, so its
	// flows can be protocol_mismatch; rpcRange: the rule admits a dynamic
	// RPC range an endpoint mapper announces ports in (rpc_unannounced).
	expectsApp, rpcRange bool
}

// FlowCounters counts decided flows per (rule, verdict, reason), remembers
// when each rule last worked and keeps the capped unexpected-flow series.
// Observe may be called from several goroutines (one per flow-table shard);
// scrapes and SetRules may run at the same time.
type FlowCounters struct {
	// mu guards the table pointer only: Observe takes the read side (one
	// atomic add, no allocation) so that SetRules can move counts to a new
	// table without losing an increment made during the move.
	mu    sync.RWMutex
	table *ruleTable

	unexpected *unexpectedSeries

	// zeroVantages are the vantages whose series are exported from the
	// start at zero (see alwaysExported): those this exporter sees flows
	// from.
	zeroVantages atomic.Uint32
	// hostRoles, when set, narrows the zero series of vantages client and
	// server to the rules the host can be that end of (SetHostRoles).
	hostRoles atomic.Pointer[func() policy.RoleSet]

	flowsDesc, lastWorkingDesc, infoDesc *prometheus.Desc
}

// ruleTable holds the counters of one rule list. Slot 0 is rule ""; rule
// index i is slot slotOf[i] (duplicate ids share the first one's slot, so a
// faulty rule list cannot produce duplicate series).
type ruleTable struct {
	ids    []string // by slot; ids[0] == ""
	info   []RuleInfo
	slotOf []int32 // by rule index

	counts      []atomic.Uint64 // cellsPerSlot per slot
	lastWorking []atomic.Int64  // Unix nanoseconds by slot; 0 = never
}

var _ prometheus.Collector = (*FlowCounters)(nil)

// NewFlowCounters returns counters for the rules with these ids, in the
// order of the policy's rule list (FlowRecord.Rule indexes it).
func NewFlowCounters(ruleIDs []string) *FlowCounters {
	c := &FlowCounters{
		table:      newRuleTable(ruleIDs, nil),
		unexpected: newUnexpectedSeries(DefaultUnexpectedSeriesLimit),
		flowsDesc: prometheus.NewDesc("tpwatch_flows_total",
			"Flows by verdict, reason, matrix rule and vantage (client, server or transit: where this exporter saw them), counted once when the verdict is decided.",
			[]string{"verdict", "reason", "rule", "vantage"}, nil),
		lastWorkingDesc: prometheus.NewDesc("tpwatch_rule_last_working_timestamp_seconds",
			"Packet time of the last allowed flow of the rule (only rules seen working).",
			[]string{"rule"}, nil),
		infoDesc: prometheus.NewDesc("tpwatch_rule_info",
			"Every rule of the matrix in force, with value 1.",
			[]string{"rule", "client", "server", "transport", "ports", "feature"}, nil),
	}
	c.SetZeroVantages(classifier.VantageTransit)
	return c
}

// SetZeroVantages says the vantages whose series are exported at zero from
// the start, so that increase() sees their first flow: the daemon's, on a
// host, client and server; a sensor's, transit; a replay's, transit (the
// default).
func (c *FlowCounters) SetZeroVantages(vs ...classifier.Vantage) {
	var mask uint32
	for _, v := range vs {
		mask |= 1 << v
	}
	c.zeroVantages.Store(mask)
}

// SetHostRoles is for an exporter on a host that tells client from server
// flows by its addresses: roles returns the roles the host holds now. A
// rule's client series are then exported at zero only when the host holds
// its client role (or the rule admits any client), and its server series
// only when the host holds its server role: an agent does not carry, for
// every rule of the matrix and both vantages, series that stay at zero
// forever. A series outside that set still appears with its first flow.
func (c *FlowCounters) SetHostRoles(roles func() policy.RoleSet) {
	c.hostRoles.Store(&roles)
}

func newRuleTable(ids []string, info []RuleInfo) *ruleTable {
	t := &ruleTable{
		ids:    []string{""},
		info:   []RuleInfo{{}},
		slotOf: make([]int32, len(ids)),
	}
	seen := make(map[string]int32, len(ids))
	for i, id := range ids {
		if slot, dup := seen[id]; dup || id == "" {
			t.slotOf[i] = slot // an empty id counts as rule ""
			continue
		}
		slot := int32(len(t.ids))
		seen[id] = slot
		t.slotOf[i] = slot
		t.ids = append(t.ids, id)
		var ri RuleInfo
		if i < len(info) {
			ri = info[i]
		}
		t.info = append(t.info, ri)
	}
	t.counts = make([]atomic.Uint64, len(t.ids)*cellsPerSlot)
	t.lastWorking = make([]atomic.Int64, len(t.ids))
	return t
}

// SetRules switches to a new rule list after a config reload. Counts and
// last-working times of rules that keep their id carry over; those of rules
// that are gone are dropped. info[i] describes ruleIDs[i]; missing entries
// leave the rule's info labels empty.
func (c *FlowCounters) SetRules(ruleIDs []string, info []RuleInfo) {
	next := newRuleTable(ruleIDs, info)
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.table
	nextSlot := make(map[string]int, len(next.ids))
	for slot, id := range next.ids {
		nextSlot[id] = slot // "" maps to noRuleSlot
	}
	for slot, id := range prev.ids {
		nslot, kept := nextSlot[id]
		if !kept {
			continue
		}
		for cell := range cellsPerSlot {
			next.counts[nslot*cellsPerSlot+cell].Store(prev.counts[slot*cellsPerSlot+cell].Load())
		}
		next.lastWorking[nslot].Store(prev.lastWorking[slot].Load())
	}
	c.table = next
}

// SetUnexpectedSeriesLimit changes the cap on distinct
// tpwatch_unexpected_flows_total label sets (DefaultUnexpectedSeriesLimit
// until then). Series that exist stay; the cap applies to new ones.
func (c *FlowCounters) SetUnexpectedSeriesLimit(n int) { c.unexpected.setLimit(n) }

// Observe counts one flow whose verdict has just been decided. For allowed
// and blocked flows it neither allocates nor looks up a label; unexpected
// flows also update their capped series, which may allocate.
func (c *FlowCounters) Observe(r *classifier.FlowRecord) {
	v, reason := int(r.Verdict), int(r.Reason)
	if r.Verdict == classifier.VerdictUndecided || v >= numVerdicts || reason >= numReasons {
		return // not a decision; nothing sensible to count
	}
	if r.Reason.Verdict() != r.Verdict {
		reason = int(classifier.ReasonNone) // a reason of another verdict means nothing here
	}
	c.mu.RLock()
	t := c.table
	slot := int32(noRuleSlot)
	if r.Verdict != classifier.Ignored && r.Rule >= 0 && int(r.Rule) < len(t.slotOf) {
		slot = t.slotOf[r.Rule]
	}
	vantage := int(r.Vantage)
	if vantage >= numVantages {
		vantage = int(classifier.VantageTransit)
	}
	t.counts[int(slot)*cellsPerSlot+vantage*cellsPerVant+v*numReasons+reason].Add(1)
	if r.Verdict == classifier.Allowed && slot != noRuleSlot {
		storeMax(&t.lastWorking[slot], r.Last)
	}
	c.mu.RUnlock()

	if r.Verdict == classifier.Unexpected {
		c.unexpected.observe(r)
	}
}

// Decided implements classifier.Sink: it counts the flow (Observe).
func (c *FlowCounters) Decided(r *classifier.FlowRecord) { c.Observe(r) }

// Final implements classifier.Sink: an allowed flow's end is the last
// time its rule was seen working (ObserveWorking).
func (c *FlowCounters) Final(r *classifier.FlowRecord) { c.ObserveWorking(r) }

// Alive implements classifier.AliveSink: an allowed session still open
// keeps its rule's last-working time current.
func (c *FlowCounters) Alive(r *classifier.FlowRecord) { c.ObserveWorking(r) }

var _ classifier.AliveSink = (*FlowCounters)(nil)

// ObserveWorking moves the rule's last-working time to r.Last for an
// allowed flow that is still open or has just ended, without counting it
// again: Observe saw the flow when it was decided, at its start, and a
// session that stays open for days keeps proving that its rule works.
func (c *FlowCounters) ObserveWorking(r *classifier.FlowRecord) {
	if r.Verdict != classifier.Allowed || r.Rule < 0 {
		return
	}
	c.mu.RLock()
	t := c.table
	if int(r.Rule) < len(t.slotOf) {
		if slot := t.slotOf[r.Rule]; slot != noRuleSlot {
			storeMax(&t.lastWorking[slot], r.Last)
		}
	}
	c.mu.RUnlock()
}

// unixSeconds converts Unix nanoseconds to seconds, whole and fractional
// parts apart so that the fraction survives the float64 rounding.
func unixSeconds(ns int64) float64 {
	return float64(ns/nanosPerSecond) + float64(ns%nanosPerSecond)/nanosPerSecond
}

// storeMax keeps the latest time: shards may report out of order.
func storeMax(a *atomic.Int64, t int64) {
	for {
		old := a.Load()
		if t <= old || a.CompareAndSwap(old, t) {
			return
		}
	}
}

// Describe implements prometheus.Collector.
func (c *FlowCounters) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.flowsDesc
	ch <- c.lastWorkingDesc
	ch <- c.infoDesc
	c.unexpected.describe(ch)
}

// flowSample is one tpwatch_flows_total value copied out under the lock, so
// that sending to a slow scrape never holds up Observe or SetRules.
type flowSample struct {
	rule                     string
	vantage, verdict, reason int
	value                    uint64
}

// Collect implements prometheus.Collector.
func (c *FlowCounters) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	t := c.table
	samples := make([]flowSample, 0, len(t.ids)*16)
	lastWorking := make([]int64, len(t.ids))
	zero := c.zeroVantages.Load()
	get := c.hostRoles.Load()
	var roles policy.RoleSet
	if get != nil {
		roles = (*get)()
	}
	for slot, id := range t.ids {
		for vantage := range numVantages {
			zeroHere := zero&(1<<vantage) != 0 &&
				(get == nil || slot == noRuleSlot || t.info[slot].hostCanBe(classifier.Vantage(vantage), roles))
			for v := 1; v < numVerdicts; v++ {
				for reason := range numReasons {
					n := t.counts[slot*cellsPerSlot+vantage*cellsPerVant+v*numReasons+reason].Load()
					if n == 0 && (!zeroHere || !alwaysExported(slot, t.info[slot], v, reason)) {
						continue
					}
					samples = append(samples, flowSample{id, vantage, v, reason, n})
				}
			}
		}
		lastWorking[slot] = t.lastWorking[slot].Load()
	}
	c.mu.RUnlock()

	for _, s := range samples {
		ch <- constMetric(c.flowsDesc, prometheus.CounterValue, float64(s.value),
			classifier.Verdict(s.verdict).String(), classifier.Reason(s.reason).String(), s.rule, classifier.Vantage(s.vantage).String())
	}
	for slot, id := range t.ids {
		if slot == noRuleSlot {
			continue
		}
		if ns := lastWorking[slot]; ns != 0 {
			ch <- constMetric(c.lastWorkingDesc, prometheus.GaugeValue, unixSeconds(ns), id)
		}
		ri := t.info[slot]
		ch <- constMetric(c.infoDesc, prometheus.GaugeValue, 1,
			id, ri.Client, ri.Server, ri.Transport, ri.Ports, ri.Feature)
	}
	c.unexpected.collect(ch)
}

// hostCanBe says whether a host with these roles can be the end of the
// rule that vantage names: its client or its server (in transit, any).
func (ri RuleInfo) hostCanBe(v classifier.Vantage, roles policy.RoleSet) bool {
	switch v {
	case classifier.VantageClient:
		return ri.anyClient || roles.Has(ri.client)
	case classifier.VantageServer:
		return roles.Has(ri.server)
	}
	return true
}

// alwaysExported says whether a series is exported at zero: the outcomes a
// rule can have, so that increase() and absent() work from the first flow
// on and a dashboard shows a rule that never failed with a 0. A rule can
// be allowed, and blocked or unexpected for every reason of those verdicts
// (feature_disabled only when it has a feature; no_rule never: that is a
// flow no rule matched); flows without a rule are ignored (for each of its
// reasons) or no_rule.
func alwaysExported(slot int, ri RuleInfo, v, reason int) bool {
	verdict, why := classifier.Verdict(v), classifier.Reason(reason)
	if slot == noRuleSlot {
		return (verdict == classifier.Ignored && (why == classifier.ReasonNone || why.Verdict() == classifier.Ignored)) ||
			(verdict == classifier.Unexpected && why == classifier.NoRule)
	}
	switch {
	case verdict == classifier.Allowed:
		return why == classifier.ReasonNone
	case why == classifier.NoRule:
		return false
	case why == classifier.FeatureDisabled:
		return verdict == classifier.Unexpected && ri.Feature != ""
	case why == classifier.ProtocolMismatch:
		return verdict == classifier.Unexpected && ri.expectsApp
	case why == classifier.RPCUnannounced:
		return verdict == classifier.Unexpected && ri.rpcRange
	case verdict == classifier.Blocked || verdict == classifier.Unexpected:
		return why.Verdict() == verdict
	}
	return false
}

// constMetric builds a const metric; a label mismatch (a bug here, never
// input) becomes an invalid metric that the scrape reports, not a panic.
func constMetric(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) prometheus.Metric {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		return prometheus.NewInvalidMetric(d, err)
	}
	return m
}

// RulesOf returns the ids and the tpwatch_rule_info labels of rules, in
// rule-index order, for NewFlowCounters and SetRules.
func RulesOf(rules []policy.Rule) (ids []string, info []RuleInfo) {
	ids = make([]string, len(rules))
	info = make([]RuleInfo, len(rules))
	for i := range rules {
		r := &rules[i]
		ids[i] = r.ID
		info[i] = RuleInfo{Client: r.ClientName(), Server: r.Server.String(), Transport: r.Transport.String(), Ports: r.PortsString(), Feature: r.Feature,
			client: r.Client, server: r.Server, anyClient: r.AnyClient}
		for _, pr := range r.Ports {
			if pr.Low == pr.High {
				if e, ok := dissect.ExpectedApps(r.ID, pr.Low); ok && e.Apps != 0 {
					info[i].expectsApp = true
				}
			} else if r.Announced == policy.AnnounceRPC {
				info[i].rpcRange = true
			}
		}
	}
	return ids, info
}
