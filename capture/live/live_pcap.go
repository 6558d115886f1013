//go:build cgo && !windows

package live

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"

	"github.com/tpwatch/tpwatch/capture"
)

// Handle reads packets from a network interface through libpcap, linked
// with cgo through gopacket (Windows has a binding of its own: see
// live_windows.go). It is a capture.Reader: a record's Data is a slice of
// libpcap's own ring buffer, valid until the next call to Next, so reading
// allocates nothing per packet.
type Handle struct {
	iface  string
	handle *pcap.Handle
	link   capture.LinkType
	snap   int
	// inVLANs: see Options.BPFInVLANs.
	inVLANs bool

	// filter is a filter SetFilter validated, for Next to apply: libpcap
	// must not change a handle's filter while another thread reads it.
	filter atomic.Pointer[string]

	closeOnce sync.Once
}

var _ capture.Reader = (*Handle)(nil)

// Open opens iface ("any" on Linux captures every interface) for capture
// with options o, and applies o.BPF in the kernel. iface is any name
// Resolve accepts; one that names no interface is an ErrNoDevice that
// lists those there are. Opening needs the right to capture: root, or
// CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode).
func Open(iface string, o Options) (*Handle, error) {
	o = o.withDefaults()
	device, err := deviceName(iface)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", iface, err)
	}
	inactive, err := pcap.NewInactiveHandle(device)
	if err != nil {
		return nil, openError(iface, err)
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
		return nil, openError(iface, err)
	}
	l := &Handle{iface: iface, handle: h, link: linkTypeOfDLT(int(h.LinkType())), snap: o.Snaplen, inVLANs: o.BPFInVLANs}
	if o.BPF != "" {
		expr := l.expr(o.BPF)
		if err := h.SetBPFFilter(expr); err != nil {
			h.Close()
			return nil, fmt.Errorf("open %s: %w %q: %v", iface, ErrBadFilter, expr, err)
		}
	}
	return l, nil
}

// openError says what kind of failure libpcap reported. gopacket keeps
// pcap_activate's status in an unexported type, whose messages are fixed
// strings; a generic failure carries libpcap's own text.
func openError(iface string, err error) error {
	msg := err.Error()
	kind := error(nil)
	switch {
	case msg == "Permission Denied", strings.Contains(msg, "Operation not permitted"),
		strings.Contains(msg, "ermission"):
		kind = ErrPermission
	case msg == "No Such Device", strings.Contains(msg, "No such device"),
		strings.Contains(msg, "doesn't exist"), strings.Contains(msg, "No such device exists"):
		kind = ErrNoDevice
	case msg == "Interface Not Up":
		kind = ErrNotUp
	}
	if kind == nil {
		return fmt.Errorf("open %s: %w", iface, err)
	}
	return fmt.Errorf("open %s: %w (%v)", iface, kind, err)
}

// expr is the filter expression for this handle's link type.
func (l *Handle) expr(bpf string) string {
	if l.inVLANs && l.link == capture.LinkEthernet {
		return InVLANs(bpf)
	}
	return bpf
}

// linkTypeOfDLT maps the DLT value libpcap reports for a live handle to the
// LINKTYPE value of capture files. They differ only for DLT_RAW, which is 12
// or 14 depending on the system. gopacket keeps DLTs in 8 bits, so link
// types above 255 (SLL2) never reach here: tpwatch never asks for one, and
// Linux's "any" device defaults to SLL.
func linkTypeOfDLT(dlt int) capture.LinkType {
	return capture.NormalLinkType(dlt)
}

// Link returns the link type of the interface's packets.
func (l *Handle) Link() capture.LinkType { return l.link }

// Next reads the next packet into r. When the read timeout passes with no
// packet it returns a *capture.Idle holding the wall-clock time; after
// Close it returns io.EOF.
func (l *Handle) Next(r *capture.Record) error {
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
			return &capture.Idle{Now: time.Now().UnixNano()}
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
func (l *Handle) SetFilter(expr string) error {
	expr = l.expr(expr)
	if err := compile(l.link, l.snap, expr); err != nil {
		return fmt.Errorf("%s: %w", l.iface, err)
	}
	l.filter.Store(&expr)
	return nil
}

// CheckFilter says whether SetFilter would accept expr, without changing
// anything: a reload checks every interface before it changes any.
func (l *Handle) CheckFilter(expr string) error {
	if err := compile(l.link, l.snap, l.expr(expr)); err != nil {
		return fmt.Errorf("%s: %w", l.iface, err)
	}
	return nil
}

// CheckFilter says whether libpcap accepts expr on a link of this type,
// without an interface: `tpwatch run` refuses a bad --bpf at once rather
// than retry an interface forever.
func CheckFilter(expr string, link capture.LinkType, o Options) error {
	o = o.withDefaults()
	if o.BPFInVLANs && link == capture.LinkEthernet {
		expr = InVLANs(expr)
	}
	return compile(link, o.Snaplen, expr)
}

func compile(link capture.LinkType, snap int, expr string) error {
	dlt := layers.LinkType(link)
	if link == capture.LinkRaw {
		// libpcap compiles for a DLT, and LINKTYPE_RAW (101) is none: a
		// raw-IP interface (tun, WireGuard) is DLT_RAW, 12 or 14 by system.
		dlt = layers.LinkType(pcap.DatalinkNameToVal("RAW"))
	}
	if _, err := pcap.CompileBPFFilter(dlt, snap, expr); err != nil {
		return fmt.Errorf("%w %q: %v", ErrBadFilter, expr, err)
	}
	return nil
}

func (l *Handle) applyFilter() error {
	expr := l.filter.Swap(nil)
	if expr == nil {
		return nil
	}
	if err := l.handle.SetBPFFilter(*expr); err != nil {
		return fmt.Errorf("set filter %q on %s: %w", *expr, l.iface, err)
	}
	return nil
}

// Stats returns libpcap's counters since the handle opened.
func (l *Handle) Stats() (Stats, error) {
	s, err := l.handle.Stats()
	if err != nil {
		return Stats{}, fmt.Errorf("stats of %s: %w", l.iface, err)
	}
	// libpcap's counters are unsigned ints that gopacket passes as int.
	return Stats{Received: uint32(s.PacketsReceived), KernelDrops: uint32(s.PacketsDropped), InterfaceDrops: uint32(s.PacketsIfDropped)}, nil
}

// Close releases the handle. It waits for a Next in progress, at most the
// read timeout, and may be called more than once and from another
// goroutine than Next's.
func (l *Handle) Close() error {
	l.closeOnce.Do(l.handle.Close)
	return nil
}

// Interfaces lists the interfaces libpcap can capture on, in its order
// (the "any" pseudo-device included on Linux), with the system's index.
func Interfaces() ([]Interface, error) {
	devs, err := pcap.FindAllDevs()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	out := make([]Interface, 0, len(devs))
	for _, d := range devs {
		it := Interface{
			Name:        d.Name,
			Description: d.Description,
			Up:          d.Flags&pcapIfUp != 0,
			Loopback:    d.Flags&pcapIfLoopback != 0,
		}
		if ni, err := net.InterfaceByName(d.Name); err == nil {
			it.Index = ni.Index
		}
		for _, a := range d.Addresses {
			if p, ok := prefixOf(a.IP, a.Netmask); ok {
				it.Addresses = append(it.Addresses, p)
			}
		}
		out = append(out, it)
	}
	return out, nil
}
