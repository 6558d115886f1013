package classifier

import "sync/atomic"

// Stats are a table's counters.
type Stats struct {
	Packets     uint64 // packets given to Process
	NotFollowed uint64 // neither TCP nor UDP, nor an ICMP error quoting a packet
	Fragments   uint64 // TCP or UDP fragments without ports
	ICMPErrors  uint64 // ICMP/ICMPv6 errors quoting a packet
	ICMPMatched uint64 // of those, errors whose quoted flow was live

	FlowsCreated uint64
	FlowsEnded   uint64 // every Final, whatever the cause
	FlowsEvicted uint64 // of those, flows dropped to make room
	FlowsExpired uint64 // of those, flows ended by an idle timeout or the closed linger

	// ClockJumps counts packets stamped more than a second away from the
	// packet clock that nothing after them confirmed: followed at the
	// clock's time instead of their own (see the package's clock rule).
	ClockJumps uint64

	Active uint64 // live flows
	// Payload inspection (Options.Inspect): the endpoint mapper, DCOM
	// activation and SQL Browser answers read; those that could not be
	// (sealed stubs, faults, malformed or cut PDUs); the endpoint mapper's
	// error answers (an interface not registered); endpoint mapper
	// connections not followed because the pool was full; flows whose
	// application protocol was named; and the ports held, announced and
	// dropped by a full table.
	EPMAnswers, DCOMAnswers, SSRPAnswers uint64
	AnswersUnreadable, EPMErrors         uint64
	RPCConnsDropped, AppsIdentified      uint64
	AnnouncedPorts                       uint64
	PortsAnnounced, AnnouncementsDropped uint64

	// Capacity is the most flows the table holds (Options.MaxFlows): past
	// it, a new flow evicts an old one. The memory it takes follows the
	// flows it has held, not this bound.
	Capacity uint64
}

// publishEvery is how many packets go by between two publications of the
// counters: readers see them at most that many packets late, and the hot
// path pays no atomic operation per counter per packet.
const publishEvery = 256

// counters are the writer's own, plain counters.
type counters struct {
	packets, notFollowed, fragments, icmpErrors, icmpMatched uint64
	created, ended, evicted, expired                         uint64
	clockJumps                                               uint64
	// payload inspection (inspect_table.go)
	epmAnswers, dcomAnswers, ssrpAnswers, answersUnreadable uint64
	epmErrors, rpcConnsDropped, identified                  uint64
}

// published is the snapshot other goroutines read.
type published struct {
	packets, notFollowed, fragments, icmpErrors, icmpMatched atomic.Uint64
	created, ended, evicted, expired                         atomic.Uint64
	clockJumps, active, capacity                             atomic.Uint64
	epmAnswers, dcomAnswers, ssrpAnswers, answersUnreadable  atomic.Uint64
	epmErrors, rpcConnsDropped, identified                   atomic.Uint64
}

func (t *Table) publish() {
	c, p := &t.counts, &t.pub
	p.packets.Store(c.packets)
	p.notFollowed.Store(c.notFollowed)
	p.fragments.Store(c.fragments)
	p.icmpErrors.Store(c.icmpErrors)
	p.icmpMatched.Store(c.icmpMatched)
	p.created.Store(c.created)
	p.ended.Store(c.ended)
	p.evicted.Store(c.evicted)
	p.expired.Store(c.expired)
	p.clockJumps.Store(c.clockJumps)
	p.epmAnswers.Store(c.epmAnswers)
	p.dcomAnswers.Store(c.dcomAnswers)
	p.ssrpAnswers.Store(c.ssrpAnswers)
	p.answersUnreadable.Store(c.answersUnreadable)
	p.epmErrors.Store(c.epmErrors)
	p.rpcConnsDropped.Store(c.rpcConnsDropped)
	p.identified.Store(c.identified)
	p.active.Store(uint64(t.live))
	p.capacity.Store(uint64(t.opts.MaxFlows))
	t.unpubl = 0
}

// Stats returns the counters as last published (every 256 packets, and on
// Advance and Flush). It is safe to call from any goroutine.
func (t *Table) Stats() Stats {
	p := &t.pub
	s := Stats{
		Packets:      p.packets.Load(),
		NotFollowed:  p.notFollowed.Load(),
		Fragments:    p.fragments.Load(),
		ICMPErrors:   p.icmpErrors.Load(),
		ICMPMatched:  p.icmpMatched.Load(),
		FlowsCreated: p.created.Load(),
		FlowsEnded:   p.ended.Load(),
		FlowsEvicted: p.evicted.Load(),
		FlowsExpired: p.expired.Load(),
		ClockJumps:   p.clockJumps.Load(),
		Active:       p.active.Load(),
		Capacity:     p.capacity.Load(),

		EPMAnswers:        p.epmAnswers.Load(),
		DCOMAnswers:       p.dcomAnswers.Load(),
		SSRPAnswers:       p.ssrpAnswers.Load(),
		AnswersUnreadable: p.answersUnreadable.Load(),
		EPMErrors:         p.epmErrors.Load(),
		RPCConnsDropped:   p.rpcConnsDropped.Load(),
		AppsIdentified:    p.identified.Load(),
	}
	if a := t.insp.ann; a != nil {
		s.AnnouncedPorts, s.PortsAnnounced, s.AnnouncementsDropped = uint64(a.Len()), a.Learned(), a.Dropped()
	}
	return s
}

// Add adds o's counters to s: the stats of several tables (one per
// interface) summed.
func (s *Stats) Add(o Stats) {
	s.Packets += o.Packets
	s.NotFollowed += o.NotFollowed
	s.Fragments += o.Fragments
	s.ICMPErrors += o.ICMPErrors
	s.ICMPMatched += o.ICMPMatched
	s.FlowsCreated += o.FlowsCreated
	s.FlowsEnded += o.FlowsEnded
	s.FlowsEvicted += o.FlowsEvicted
	s.FlowsExpired += o.FlowsExpired
	s.ClockJumps += o.ClockJumps
	s.Active += o.Active
	s.Capacity += o.Capacity
	s.EPMAnswers += o.EPMAnswers
	s.DCOMAnswers += o.DCOMAnswers
	s.SSRPAnswers += o.SSRPAnswers
	s.AnswersUnreadable += o.AnswersUnreadable
	s.EPMErrors += o.EPMErrors
	s.RPCConnsDropped += o.RPCConnsDropped
	s.AppsIdentified += o.AppsIdentified
	// Tables that share one Announcements (a daemon's interfaces) report
	// the same ports: the largest is the shared table's.
	s.AnnouncedPorts = max(s.AnnouncedPorts, o.AnnouncedPorts)
	s.PortsAnnounced = max(s.PortsAnnounced, o.PortsAnnounced)
	s.AnnouncementsDropped = max(s.AnnouncementsDropped, o.AnnouncementsDropped)
}
