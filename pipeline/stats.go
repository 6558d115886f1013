package pipeline

import (
	"sync/atomic"

	"github.com/tpwatch/tpwatch/capture"
)

// SourceStats counts what one source delivered. The reading goroutine
// publishes its counts once per batch, so a metrics scrape or a progress
// line may read them at any time without costing the hot path an atomic
// operation per packet.
type SourceStats struct {
	Records     atomic.Uint64 // records read
	Bytes       atomic.Uint64 // wire bytes of those records
	NotIP       atomic.Uint64 // frames without IP (ARP, LLDP, ...)
	Truncated   atomic.Uint64 // decode stopped: headers cut short
	Malformed   atomic.Uint64 // decode stopped: impossible header values
	Unsupported atomic.Uint64 // link type tpwatch does not decode
	// Decapsulated counts the packets decoded inside a tunnel (VXLAN,
	// Geneve, GRE, ERSPAN, MPLS, IP in IP, ...): classified by their inner
	// flow. They are among the records, not in addition to them.
	Decapsulated atomic.Uint64
	LastTS       atomic.Int64 // packet time of the last record, Unix ns
	// UnsupportedLink is the last link type seen that Decode does not
	// know, so an error can name it.
	UnsupportedLink atomic.Uint32
}

// DecodeErrors is the number of records whose headers could not be decoded.
func (s *SourceStats) DecodeErrors() uint64 {
	return s.Truncated.Load() + s.Malformed.Load() + s.Unsupported.Load()
}

// Counts are a SourceStats' values at one moment.
type Counts struct {
	Records, Bytes, NotIP, Truncated, Malformed, Unsupported uint64
	// Decapsulated is how many of the records were decoded inside a
	// tunnel.
	Decapsulated uint64
	// LastTS is the packet time of the last record, Unix ns.
	LastTS int64
	// UnsupportedLink is the last link type seen that Decode does not
	// know.
	UnsupportedLink capture.LinkType
}

// Counts returns the counters' values now.
func (s *SourceStats) Counts() Counts {
	return Counts{
		Records: s.Records.Load(), Bytes: s.Bytes.Load(), NotIP: s.NotIP.Load(),
		Truncated: s.Truncated.Load(), Malformed: s.Malformed.Load(), Unsupported: s.Unsupported.Load(),
		Decapsulated: s.Decapsulated.Load(), LastTS: s.LastTS.Load(),
		UnsupportedLink: capture.LinkType(s.UnsupportedLink.Load()),
	}
}

// DecodeErrors is the number of records whose headers could not be decoded.
func (c *Counts) DecodeErrors() uint64 { return c.Truncated + c.Malformed + c.Unsupported }

// localCounts is the reading goroutine's private copy of SourceStats.
type localCounts struct {
	records, bytes, notIP, truncated, malformed, unsupported uint64
	decapsulated                                             uint64
	lastTS                                                   int64
	unsupportedLink                                          capture.LinkType
}

func (c *localCounts) count(status capture.Status, link capture.LinkType, wireLen uint32) {
	c.records++
	c.bytes += uint64(wireLen)
	switch status {
	case capture.StatusOK:
	case capture.StatusNotIP:
		c.notIP++
	case capture.StatusTruncated:
		c.truncated++
	case capture.StatusMalformed:
		c.malformed++
	default:
		c.unsupported++
		c.unsupportedLink = link
	}
}

// publish adds the local counts to s and clears them.
func (c *localCounts) publish(s *SourceStats) {
	if s == nil {
		*c = localCounts{lastTS: c.lastTS}
		return
	}
	s.Records.Add(c.records)
	s.Bytes.Add(c.bytes)
	if c.notIP != 0 {
		s.NotIP.Add(c.notIP)
	}
	if c.truncated != 0 {
		s.Truncated.Add(c.truncated)
	}
	if c.malformed != 0 {
		s.Malformed.Add(c.malformed)
	}
	if c.unsupported != 0 {
		s.Unsupported.Add(c.unsupported)
	}
	if c.decapsulated != 0 {
		s.Decapsulated.Add(c.decapsulated)
	}
	if c.lastTS != 0 {
		s.LastTS.Store(c.lastTS)
	}
	if c.unsupported != 0 {
		s.UnsupportedLink.Store(uint32(c.unsupportedLink))
	}
	*c = localCounts{lastTS: c.lastTS}
}
