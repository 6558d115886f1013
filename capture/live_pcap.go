//go:build cgo || windows

package capture

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"
)

// Live reads packets from a network interface through libpcap (Npcap on
// Windows, where gopacket loads wpcap.dll when the program starts, so no
// cgo is needed there). It is a Reader: a record's Data is a slice of
// libpcap's own ring buffer, valid until the next call to Next, so reading
// allocates nothing per packet.
type Live struct {
	iface  string
	handle *pcap.Handle
	link   LinkType
	snap   int
	// inVLANs: see LiveOptions.BPFInVLANs.
	inVLANs bool

	// filter is a filter SetFilter validated, for Next to apply: libpcap
	// must not change a handle's filter while another thread reads it.
	filter atomic.Pointer[string]

	closeOnce sync.Once
}

var _ Reader = (*Live)(nil)

// OpenLive opens iface ("any" on Linux captures every interface) for
// capture with options o, and applies o.BPF in the kernel. Opening needs
// the right to capture: root, CAP_NET_RAW (and CAP_NET_ADMIN for
// promiscuous mode) on Linux, Npcap's driver on Windows.
func OpenLive(iface string, o LiveOptions) (*Live, error) {
	o = o.withDefaults()
	inactive, err := pcap.NewInactiveHandle(iface)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", iface, err)
	}
	defer inactive.CleanUp()
	set := []struct {
		what string
		err  error
	}{
		{"snap length", inactive.SetSnapLen(o.Snaplen)},
		{"promiscuous mode", inactive.SetPromisc(o.Promiscuous)},
		{"read timeout", inactive.SetTimeout(o.ReadTimeout)},
		// Immediate mode would wake the reader for every packet; with it off
		// the kernel hands over a block of packets per wake-up (or after the
		// read timeout), which is what keeps a busy link cheap.
		{"immediate mode", inactive.SetImmediateMode(false)},
	}
	if o.BufferSize > 0 {
		set = append(set, struct {
			what string
			err  error
		}{"buffer size", inactive.SetBufferSize(o.BufferSize)})
	}
	for _, s := range set {
		if s.err != nil {
			return nil, fmt.Errorf("open %s: set %s: %w", iface, s.what, s.err)
		}
	}
	h, err := inactive.Activate()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", iface, err)
	}
	l := &Live{iface: iface, handle: h, link: linkTypeOfDLT(int(h.LinkType())), snap: o.Snaplen, inVLANs: o.BPFInVLANs}
	if o.BPF != "" {
		expr := l.expr(o.BPF)
		if err := h.SetBPFFilter(expr); err != nil {
			h.Close()
			return nil, fmt.Errorf("open %s: filter %q: %w", iface, expr, err)
		}
	}
	return l, nil
}

// expr is the filter expression for this handle's link type.
func (l *Live) expr(bpf string) string {
	if l.inVLANs && l.link == LinkEthernet {
		return InVLANs(bpf)
	}
	return bpf
}

// linkTypeOfDLT maps the DLT value libpcap reports for a live handle to the
// LINKTYPE value of capture files. They differ only for DLT_RAW, which is 12
// or 14 depending on the system. gopacket keeps DLTs in 8 bits, so link
// types above 255 (SLL2) never reach here: tpwatch never asks for one, and
// Linux's "any" device defaults to SLL.
func linkTypeOfDLT(dlt int) LinkType {
	return LinkType(dlt).normalize()
}

// Link returns the link type of the interface's packets.
func (l *Live) Link() LinkType { return l.link }

// Next reads the next packet into r. When the read timeout passes with no
// packet it returns an *Idle holding the wall-clock time; after Close it
// returns io.EOF.
func (l *Live) Next(r *Record) error {
	if l.filter.Load() != nil {
		if err := l.applyFilter(); err != nil {
			return err
		}
	}
	data, ci, err := l.handle.ZeroCopyReadPacketData()
	if err != nil {
		var nextErr pcap.NextError
		switch {
		case errors.As(err, &nextErr) && nextErr == pcap.NextErrorTimeoutExpired:
			return &Idle{Now: time.Now().UnixNano()}
		case errors.Is(err, io.EOF):
			return io.EOF
		}
		return fmt.Errorf("read %s: %w", l.iface, err)
	}
	r.TS = ci.Timestamp.UnixNano()
	r.CapLen = uint32(ci.CaptureLength)
	r.WireLen = uint32(ci.Length)
	if r.WireLen < r.CapLen {
		r.WireLen = r.CapLen
	}
	r.Link = l.link
	r.Interface = 0
	r.Data = data
	return nil
}

// SetFilter replaces the capture filter. It checks expr at once, so an
// error leaves the old filter in force; the new one applies from the next
// call to Next, on the goroutine that reads. It is safe to call while
// another goroutine is in Next.
func (l *Live) SetFilter(expr string) error {
	expr = l.expr(expr)
	if err := l.compile(expr); err != nil {
		return err
	}
	l.filter.Store(&expr)
	return nil
}

// CheckFilter says whether SetFilter would accept expr, without changing
// anything: a reload checks every interface before it changes any.
func (l *Live) CheckFilter(expr string) error {
	return l.compile(l.expr(expr))
}

func (l *Live) compile(expr string) error {
	if _, err := pcap.CompileBPFFilter(layers.LinkType(l.link), l.snap, expr); err != nil {
		return fmt.Errorf("filter %q for %s: %w", expr, l.iface, err)
	}
	return nil
}

func (l *Live) applyFilter() error {
	expr := l.filter.Swap(nil)
	if expr == nil {
		return nil
	}
	if err := l.handle.SetBPFFilter(*expr); err != nil {
		return fmt.Errorf("set filter %q on %s: %w", *expr, l.iface, err)
	}
	return nil
}

// Stats returns libpcap's counters since the handle opened: packets the
// filter accepted, packets the kernel dropped for lack of buffer space, and
// packets the interface or driver dropped (not every system counts these).
func (l *Live) Stats() (received, kernelDrops, ifDrops uint64, err error) {
	s, err := l.handle.Stats()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("stats of %s: %w", l.iface, err)
	}
	// libpcap's counters are unsigned ints that gopacket passes as int.
	return uint64(uint32(s.PacketsReceived)), uint64(uint32(s.PacketsDropped)), uint64(uint32(s.PacketsIfDropped)), nil
}

// Close releases the handle. It waits for a Next in progress, at most the
// read timeout, and may be called more than once and from another
// goroutine than Next's.
func (l *Live) Close() error {
	l.closeOnce.Do(l.handle.Close)
	return nil
}
