package live

import (
	"errors"
	"time"
)

// Defaults of Options, used where a field is zero.
const (
	// DefaultSnaplen keeps the headers and drops the payload: the flow
	// table needs link, IP and transport headers only (an IPv6 packet with
	// extension headers inside an 802.1ad frame still fits), and a short
	// snap length lets the kernel ring hold ten times the packets a
	// full-size one would.
	DefaultSnaplen = 256
	// DefaultReadTimeout bounds how long Next waits before it reports an
	// Idle: it is how often a quiet capture's clock advances, and how long
	// Close may wait for a Next in progress.
	DefaultReadTimeout = 200 * time.Millisecond
)

// Options configure Open. The zero value is usable: every zero field takes
// its default.
type Options struct {
	// Snaplen is the number of bytes captured of each packet; zero means
	// DefaultSnaplen.
	Snaplen int
	// Promiscuous puts the interface in promiscuous mode, for a sensor on
	// a SPAN or mirror port. A monitor on an Enterprise Manager or Agent
	// host needs only its own traffic and leaves it off.
	Promiscuous bool
	// BPF is a libpcap filter expression applied in the kernel; empty
	// means every packet.
	BPF string
	// BPFInVLANs also applies BPF inside one and two 802.1Q/802.1ad tags
	// on Ethernet links, where the kernel or the driver did not strip them
	// (Npcap, the inner tag of QinQ, a NIC without VLAN offload): a filter
	// written for untagged frames would otherwise pass only the untagged
	// ones. Other link types have no tags, and libpcap refuses "vlan" on
	// them, so there the expression is used as it is.
	BPFInVLANs bool
	// ReadTimeout is how long Next waits for a packet before it returns
	// an *capture.Idle; zero means DefaultReadTimeout. It is never
	// infinite: the packet clock of a quiet network must advance, and
	// Close would wait forever for a blocked read.
	ReadTimeout time.Duration
	// BufferSize is the kernel capture buffer in bytes; zero keeps
	// libpcap's default (2 MiB on Linux, 1 MB with Npcap).
	BufferSize int
}

func (o Options) withDefaults() Options {
	if o.Snaplen <= 0 {
		o.Snaplen = DefaultSnaplen
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	return o
}

// InVLANs returns expr extended to frames with one and two VLAN tags: the
// filter Open applies on Ethernet when BPFInVLANs is set. Each vlan
// keyword moves the offsets of what follows it by one tag, which is why the
// expression nests.
func InVLANs(expr string) string {
	return expr + " or (vlan and (" + expr + " or (vlan and (" + expr + "))))"
}

// Stats are libpcap's counters since a handle opened. libpcap keeps them
// in 32 bits: they wrap, and whoever sums them over time takes differences
// modulo 2^32.
type Stats struct {
	// Received counts the packets the filter accepted.
	Received uint32
	// KernelDrops counts packets the kernel dropped for want of buffer
	// space (ps_drop); InterfaceDrops those the interface or its driver
	// dropped (ps_ifdrop; not every system counts them).
	KernelDrops, InterfaceDrops uint32
}

// Kinds of failure, wrapped by the errors of Open, SetFilter and
// CheckFilter (see the package comment).
var (
	ErrUnavailable = errors.New("live capture is not available")
	ErrPermission  = errors.New("no permission to capture")
	ErrBadFilter   = errors.New("invalid capture filter")
	ErrNoDevice    = errors.New("no such interface")
	ErrNotUp       = errors.New("interface is not up")
)

// Permanent reports an error that trying again will not cure: a binary
// without live capture, no Npcap (or an incomplete wpcap.dll), a missing
// right to capture, a filter libpcap refuses.
func Permanent(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrPermission) || errors.Is(err, ErrBadFilter)
}
