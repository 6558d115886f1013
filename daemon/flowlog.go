package daemon

import (
	"net/netip"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/metrics"
	"github.com/tpwatch/tpwatch/policy"
	"github.com/tpwatch/tpwatch/report"
)

// flowLog logs blocked and unexpected flows, once each, behind a token
// bucket shared by every interface, and counts what the bucket refused.
type flowLog struct {
	log        zerolog.Logger
	bucket     *tokenBucket
	suppressed *metrics.SuppressedLogEvents
	// pending counts suppressed events since the last summary line.
	pending atomic.Uint64
}

// flowSink is the classifier.Sink of one interface's table: it counts
// every decided flow in the metrics and logs the ones that need a person.
type flowSink struct {
	iface    string
	counters *metrics.FlowCounters
	log      *flowLog
	policy   *livePolicy
	status   *status
	// decided counts the flows given a verdict, for the totals logged
	// when the daemon stops.
	decided atomic.Uint64
}

var _ classifier.AliveSink = (*flowSink)(nil)

// Decided implements classifier.Sink. Allowed and ignored flows cost a
// counter increment; a blocked or unexpected one also asks the bucket, and
// only when it allows builds the log event.
func (s *flowSink) Decided(r *classifier.FlowRecord) {
	s.counters.Decided(r)
	s.status.decided(s.iface, r)
	s.decided.Add(1)
	if r.Verdict != classifier.Blocked && r.Verdict != classifier.Unexpected {
		return
	}
	if !s.log.bucket.Allow() {
		s.log.suppressed.Inc()
		s.log.pending.Add(1)
		return
	}
	s.log.flow(s.iface, r, s.policy.snapshot().rules)
}

// Final implements classifier.Sink: the daemon reports flows when they
// are decided; at their end it only moves their rule's last-working time.
func (s *flowSink) Final(r *classifier.FlowRecord) {
	s.counters.Final(r)
	s.status.working(r)
}

// Alive implements classifier.AliveSink: an allowed session still open
// keeps its rule's last-working time current.
func (s *flowSink) Alive(r *classifier.FlowRecord) {
	s.counters.Alive(r)
	s.status.working(r)
}

// flow writes one flow event with the fields of the replay JSON output.
// Rule numbers are the live policy's stable numbers (see livePolicy).
func (l *flowLog) flow(iface string, r *classifier.FlowRecord, rules []policy.Rule) {
	e := l.log.Warn()
	if !e.Enabled() {
		return
	}
	rule := ""
	if r.Rule >= 0 && int(r.Rule) < len(rules) {
		rule = rules[r.Rule].ID
	}
	e = e.Str("interface", iface).
		Bytes("ts_first", report.AppendTimestamp(nil, r.First)).
		Bytes("ts_last", report.AppendTimestamp(nil, r.Last)).
		Str("transport", r.Transport.String()).
		Str("src_ip", netip.AddrFrom16(r.Client).Unmap().String()).
		Uint16("src_port", r.ClientPort).
		Str("dst_ip", netip.AddrFrom16(r.Server).Unmap().String()).
		Uint16("dst_port", r.ServerPort).
		Strs("src_roles", roleNames(r.ClientRoles)).
		Strs("dst_roles", roleNames(r.ServerRoles)).
		Str("rule", rule).
		Str("verdict", r.Verdict.String()).
		Str("reason", r.Reason.String())
	if r.Verdict == classifier.Unexpected {
		e = e.Str("outcome", r.Outcome.String())
	}
	e = e.
		Str("conn_state", r.ConnState.String()).
		Str("history", r.HistoryString()).
		Uint64("packets_out", r.PacketsOut).
		Uint64("packets_in", r.PacketsIn).
		Uint64("bytes_out", r.BytesOut).
		Uint64("bytes_in", r.BytesIn)
	if r.ICMP {
		e = e.Uint8("icmp_type", r.ICMPType).Uint8("icmp_code", r.ICMPCode).
			Str("icmp_src", netip.AddrFrom16(r.ICMPSrc).Unmap().String())
	}
	if r.Evicted {
		e = e.Bool("evicted", true)
	}
	e = e.Str("vantage", r.Vantage.String())
	report.EachPayloadField(r, rules, func(key string, value []byte) { e = e.RawJSON(key, value) })
	e.Msg(r.Verdict.String() + " flow")
}

// summarise logs how many events were suppressed since the last call, if
// any.
func (l *flowLog) summarise() {
	if n := l.pending.Swap(0); n > 0 {
		l.log.Warn().Uint64("suppressed", n).
			Msgf("suppressed %d flow log events over the log rate limit (--log.rate); tpwatch_flows_total counts every flow", n)
	}
}

func roleNames(s policy.RoleSet) []string {
	roles := s.Roles()
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = r.String()
	}
	return names
}
