package classifier

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/tpwatch/tpwatch/dissect"
)

// Via says what explains the server port of a flow on a rule whose ports a
// server announces (policy.Rule.Announced).
type Via uint8

const (
	ViaNone  Via = iota
	ViaRange     // only the rule's listed range: no announcement was seen
	ViaEPM       // an RPC endpoint mapper's ept_map answer named the port
	ViaDCOM      // a DCOM activation's string binding named it
	ViaSSRP      // SQL Server Browser named it for an instance
	numVias
)

var viaNames = [...]string{"", "range", "epm", "dcom", "ssrp"}

const _ = uint(len(viaNames)-int(numVias)) + uint(int(numVias)-len(viaNames))

func (v Via) String() string {
	if int(v) < len(viaNames) {
		return viaNames[v]
	}
	return "invalid"
}

// Announcement is a port a server said it listens on, and who said so.
type Announcement struct {
	Via Via
	// Interface is the RPC interface an endpoint mapper answer named
	// (ViaEPM; dissect.InterfaceOther when not in dissect's table).
	Interface dissect.Interface
	// Instance is the SQL Server instance SQL Browser named (ViaSSRP),
	// cut to its first 16 bytes.
	Instance    [16]byte
	InstanceLen uint8
	// At is the packet time of the answer.
	At int64
}

// InstanceName returns the SQL Server instance name (it allocates).
func (a *Announcement) InstanceName() string { return string(a.Instance[:a.InstanceLen]) }

type announceKey struct {
	server [16]byte
	port   uint16
	proto  uint8
}

// Default bounds of the announced ports.
const (
	// DefaultAnnouncementTTL is how long an announced port explains flows
	// after the last answer that named it. Windows services keep their
	// dynamic port while they run; clients ask the endpoint mapper again
	// well within an hour (the Threat Manager at each name translation).
	DefaultAnnouncementTTL = time.Hour
	// DefaultAnnouncements bounds the ports held: enough for every
	// service of a few thousand servers.
	DefaultAnnouncements = 1 << 16
)

// Announcements holds the ports servers announced: by the RPC endpoint
// mapper and DCOM activation on TCP 135, by SQL Server Browser on UDP
// 1434. It is bounded (a full table sweeps out expired ports, then drops
// new ones and counts them) and safe for the tables of several interfaces
// to share: the endpoint mapper's answer may cross one, the flow it
// announces another. Lookups are many (a new TCP flow while any port is
// held) and learning rare, so it is a map under a read-write lock.
type Announcements struct {
	mu    sync.RWMutex
	m     map[announceKey]Announcement
	held  atomic.Int64
	limit int
	ttl   int64

	learned, dropped atomic.Uint64
}

// NewAnnouncements returns an empty table of at most limit ports, each
// valid for ttl after its last announcement (defaults when zero).
func NewAnnouncements(limit int, ttl time.Duration) *Announcements {
	if limit <= 0 {
		limit = DefaultAnnouncements
	}
	if ttl <= 0 {
		ttl = DefaultAnnouncementTTL
	}
	return &Announcements{m: make(map[announceKey]Announcement), limit: limit, ttl: int64(ttl)}
}

// Len is the number of ports held (expired ones included until swept).
func (a *Announcements) Len() int { return int(a.held.Load()) }

// Learned counts the announcements taken in, Dropped those a full table
// could not hold.
func (a *Announcements) Learned() uint64 { return a.learned.Load() }
func (a *Announcements) Dropped() uint64 { return a.dropped.Load() }

// learn records that server announced port (proto), as ann says.
func (a *Announcements) learn(server [16]byte, proto uint8, port uint16, ann Announcement) {
	k := announceKey{server, port, proto}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.m[k]; !ok && len(a.m) >= a.limit {
		for key, old := range a.m {
			if ann.At-old.At > a.ttl {
				delete(a.m, key)
			}
		}
		if len(a.m) >= a.limit {
			a.dropped.Add(1)
			return
		}
	}
	a.m[k] = ann
	a.held.Store(int64(len(a.m)))
	a.learned.Add(1)
}

// lookup returns the announcement of (server, proto, port), if one was
// made within the TTL before now.
func (a *Announcements) lookup(server [16]byte, proto uint8, port uint16, now int64) (Announcement, bool) {
	if a == nil || a.held.Load() == 0 {
		return Announcement{}, false
	}
	a.mu.RLock()
	ann, ok := a.m[announceKey{server, port, proto}]
	a.mu.RUnlock()
	if !ok || now-ann.At > a.ttl {
		return Announcement{}, false
	}
	return ann, true
}
