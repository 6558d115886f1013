//go:build windows

package live

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/tpwatch/tpwatch/capture"
)

// libpcap's constants and structures as wpcap.dll has them on 64-bit
// Windows (pcap/pcap.h, pcap/bpf.h). long is 32 bits there, so a packet
// header's time is two 32-bit fields.
const (
	pcapErrbufSize     = 256
	pcapNetmaskUnknown = 0xffffffff

	pcapErrorNoSuchDevice      = -5
	pcapErrorPermDenied        = -8
	pcapErrorIfaceNotUp        = -9
	pcapErrorPromiscPermDenied = -11
)

type pcapPkthdr struct {
	Sec, Usec      int32
	CapLen, Length uint32
}

type bpfProgram struct {
	Len   uint32
	_     [4]byte
	Insns uintptr
}

// pcapStat has room for the Windows-only fields after the three every
// libpcap has (ps_capt; ps_sent and ps_netdrop of remote capture).
type pcapStat struct {
	Recv, Drop, IfDrop uint32
	_                  [5]uint32
}

// captureFuncs are the functions a capture needs, resolved when it opens:
// a wpcap.dll without one of them cannot capture, and Open says which.
var captureFuncs = []string{
	"pcap_create", "pcap_set_snaplen", "pcap_set_promisc", "pcap_set_timeout",
	"pcap_activate", "pcap_datalink", "pcap_next_ex", "pcap_stats", "pcap_geterr",
	"pcap_compile", "pcap_setfilter", "pcap_freecode", "pcap_close",
}

// funcs are the addresses of captureFuncs, by name.
type funcs struct {
	create, setSnaplen, setPromisc, setTimeout, activate, datalink,
	nextEx, stats, geterr, compile, setfilter, freecode, close uintptr
}

func captureFuncsOf() (*funcs, error) {
	p, err := wpcap.all(captureFuncs...)
	if err != nil {
		return nil, err
	}
	return &funcs{p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12]}, nil
}

// compileMu serialises pcap_compile: libpcap before 1.8 (WinPcap, Wine's
// wrapper over an older system libpcap) compiles with global state.
var compileMu sync.Mutex

// Handle reads packets from a network interface through Npcap's
// wpcap.dll, loaded at run time (see wpcap). It is a capture.Reader: a
// record's Data is a slice of libpcap's own buffer, valid until the next
// call to Next.
type Handle struct {
	iface string
	fn    *funcs

	// mu is held by Next while libpcap reads, and by Stats, SetFilter's
	// application and Close: libpcap's handle is not for two threads at
	// once, and Close must not free it under a read.
	mu sync.Mutex
	// p is the pcap_t*, 0 once closed. It changes only with both mu and
	// brk held, so either lock is enough to read it: Break, which must
	// not wait for a read, takes brk alone.
	p   uintptr
	brk sync.Mutex

	link    capture.LinkType
	snap    int
	inVLANs bool
	// filter is a filter SetFilter validated, for Next to apply.
	filter atomic.Pointer[string]

	// hdr and data receive pcap_next_ex's results. They are fields, not
	// locals, so that passing their address allocates nothing per packet.
	hdr  *pcapPkthdr
	data *byte
}

var _ capture.Reader = (*Handle)(nil)

// Open opens iface for capture with options o, and applies o.BPF in the
// driver. iface is any name Resolve accepts: the friendly name (Ethernet0),
// the GUID, the Npcap device name or the index. Npcap has no "any" device.
// Opening needs Npcap, and administrator rights (or LocalSystem) when
// Npcap was installed with access restricted to administrators.
func Open(iface string, o Options) (*Handle, error) {
	o = o.withDefaults()
	if strings.EqualFold(iface, "any") {
		return nil, fmt.Errorf("open any: %w: Npcap has no \"any\" device; give each interface with its own --interface (tpwatch interfaces lists them)", ErrNoDevice)
	}
	fn, err := captureFuncsOf()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", iface, err)
	}
	device, err := deviceName(iface)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", iface, err)
	}
	cdev, err := windows.BytePtrFromString(device)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", iface, err)
	}
	var errbuf [pcapErrbufSize]byte
	p, _, _ := syscall.SyscallN(fn.create, uintptr(unsafe.Pointer(cdev)), uintptr(unsafe.Pointer(&errbuf[0])))
	if p == 0 {
		return nil, fmt.Errorf("open %s: %w (%s)", iface, ErrNoDevice, errbufString(errbuf[:]))
	}
	l := &Handle{iface: iface, fn: fn, p: p, snap: o.Snaplen, inVLANs: o.BPFInVLANs}
	// fail closes a handle that is not activated (no read to break).
	fail := func(err error) (*Handle, error) {
		syscall.SyscallN(fn.close, p)
		return nil, err
	}
	promisc := uintptr(0)
	if o.Promiscuous {
		promisc = 1
	}
	set := []struct {
		what string
		proc uintptr
		arg  uintptr
	}{
		{"snap length", fn.setSnaplen, uintptr(o.Snaplen)},
		{"promiscuous mode", fn.setPromisc, promisc},
		{"read timeout", fn.setTimeout, uintptr(o.ReadTimeout.Milliseconds())},
		// Immediate mode is not asked for: libpcap's default is off, which
		// is what keeps a busy link cheap (a block of packets per wake-up),
		// and Wine's wpcap.dll lacks pcap_set_immediate_mode.
	}
	if o.BufferSize > 0 {
		bs, err := wpcap.proc("pcap_set_buffer_size")
		if err != nil {
			return fail(fmt.Errorf("open %s: %w", iface, err))
		}
		set = append(set, struct {
			what string
			proc uintptr
			arg  uintptr
		}{"buffer size", bs, uintptr(o.BufferSize)})
	}
	for _, s := range set {
		if r, _, _ := syscall.SyscallN(s.proc, p, s.arg); int32(r) != 0 {
			return fail(fmt.Errorf("open %s: set %s: libpcap status %d", iface, s.what, int32(r)))
		}
	}
	if r, _, _ := syscall.SyscallN(fn.activate, p); int32(r) < 0 {
		return fail(activateError(iface, int32(r), l.lastError()))
	}
	dlt, _, _ := syscall.SyscallN(fn.datalink, p)
	l.link = capture.NormalLinkType(int(int32(dlt)))
	if o.BPF != "" {
		expr := l.expr(o.BPF)
		l.mu.Lock()
		err := l.setFilterLocked(expr)
		l.mu.Unlock()
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("open %s: %w", iface, err)
		}
	}
	return l, nil
}

// activateError says what kind of failure pcap_activate's status is.
func activateError(iface string, status int32, msg string) error {
	var kind error
	switch status {
	case pcapErrorNoSuchDevice:
		kind = ErrNoDevice
	case pcapErrorPermDenied, pcapErrorPromiscPermDenied:
		kind = ErrPermission
	case pcapErrorIfaceNotUp:
		kind = ErrNotUp
	default:
		// Npcap reports a driver refusing a non-administrator (admin-only
		// mode) as a generic error with Windows' own text.
		if strings.Contains(msg, "ccess is denied") || strings.Contains(msg, "ermission") {
			kind = ErrPermission
		}
	}
	if msg == "" {
		msg = fmt.Sprintf("libpcap status %d", status)
	}
	if kind == nil {
		return fmt.Errorf("open %s: %s", iface, msg)
	}
	if kind == ErrPermission {
		return fmt.Errorf("open %s: %w (%s): run tpwatch as an administrator or as the service (LocalSystem)", iface, kind, msg)
	}
	return fmt.Errorf("open %s: %w (%s)", iface, kind, msg)
}

// lastError is libpcap's text for the handle's last error.
func (l *Handle) lastError() string {
	r, _, _ := syscall.SyscallN(l.fn.geterr, l.p)
	return cString(r)
}

// expr is the filter expression for this handle's link type.
func (l *Handle) expr(bpf string) string {
	if l.inVLANs && l.link == capture.LinkEthernet {
		return InVLANs(bpf)
	}
	return bpf
}

// Link returns the link type of the interface's packets.
func (l *Handle) Link() capture.LinkType { return l.link }

// Next reads the next packet into r. When the read timeout passes with no
// packet it returns a *capture.Idle holding the wall-clock time; after
// Close it returns io.EOF.
func (l *Handle) Next(r *capture.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.p == 0 {
		return io.EOF
	}
	if expr := l.filter.Swap(nil); expr != nil {
		if err := l.setFilterLocked(*expr); err != nil {
			return fmt.Errorf("set filter on %s: %w", l.iface, err)
		}
	}
	st, _, _ := syscall.SyscallN(l.fn.nextEx, l.p, uintptr(unsafe.Pointer(&l.hdr)), uintptr(unsafe.Pointer(&l.data)))
	switch int32(st) {
	case 1:
	case 0:
		return &capture.Idle{Now: time.Now().UnixNano()}
	case -2:
		return io.EOF
	default:
		return fmt.Errorf("read %s: %s", l.iface, l.lastError())
	}
	h := l.hdr
	// Seconds are a signed 32-bit long on Windows; read as unsigned they
	// last until 2106 rather than 2038.
	r.TS = int64(uint32(h.Sec))*int64(time.Second) + int64(h.Usec)*int64(time.Microsecond)
	r.CapLen = h.CapLen
	r.WireLen = max(h.Length, h.CapLen)
	r.Link = l.link
	r.Interface = 0
	r.Data = unsafe.Slice(l.data, h.CapLen)
	return nil
}

// SetFilter replaces the capture filter. It checks expr at once, so an
// error leaves the old filter in force; the new one applies from the next
// call to Next, on the goroutine that reads. It is safe to call while
// another goroutine is in Next.
func (l *Handle) SetFilter(expr string) error {
	expr = l.expr(expr)
	if err := l.check(expr); err != nil {
		return err
	}
	l.filter.Store(&expr)
	return nil
}

// CheckFilter says whether SetFilter would accept expr, without changing
// anything. It compiles on a handle of its own, so it never waits for a
// read in progress; only where wpcap.dll cannot make one (Wine's) does it
// compile on the open handle, after the read.
func (l *Handle) CheckFilter(expr string) error { return l.check(l.expr(expr)) }

// check is CheckFilter of an expression already made for the link type.
func (l *Handle) check(expr string) error {
	err := compileDead(l.link, l.snap, expr)
	if errors.Is(err, errNoDeadHandle) {
		err = l.compileLive(expr)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", l.iface, err)
	}
	return nil
}

// compileLive compiles expr on the open handle, waiting for a read in
// progress.
func (l *Handle) compileLive(expr string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.p == 0 {
		return errors.New("closed")
	}
	prog, err := l.compileLocked(expr)
	if err != nil {
		return err
	}
	syscall.SyscallN(l.fn.freecode, uintptr(unsafe.Pointer(prog)))
	return nil
}

// compileLocked compiles expr for the open handle; l.mu is held. The
// caller frees the program with pcap_freecode.
func (l *Handle) compileLocked(expr string) (*bpfProgram, error) {
	cexpr, err := windows.BytePtrFromString(expr)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrBadFilter, expr, err)
	}
	prog := new(bpfProgram)
	compileMu.Lock()
	r, _, _ := syscall.SyscallN(l.fn.compile, l.p, uintptr(unsafe.Pointer(prog)), uintptr(unsafe.Pointer(cexpr)), 1, pcapNetmaskUnknown)
	compileMu.Unlock()
	if int32(r) < 0 {
		return nil, fmt.Errorf("%w %q: %s", ErrBadFilter, expr, l.lastError())
	}
	return prog, nil
}

// setFilterLocked compiles expr for the open handle and applies it; l.mu
// is held.
func (l *Handle) setFilterLocked(expr string) error {
	prog, err := l.compileLocked(expr)
	if err != nil {
		return err
	}
	defer syscall.SyscallN(l.fn.freecode, uintptr(unsafe.Pointer(prog)))
	if r, _, _ := syscall.SyscallN(l.fn.setfilter, l.p, uintptr(unsafe.Pointer(prog))); int32(r) < 0 {
		return fmt.Errorf("set filter %q: %s", expr, l.lastError())
	}
	return nil
}

// CheckFilter says whether libpcap accepts expr on a link of this type,
// without an interface: `tpwatch run` refuses a bad --bpf at once rather
// than retry an interface forever. A wpcap.dll that cannot compile without
// an interface (Wine's: see wineStubs) leaves the check to Open, which
// refuses a bad filter as permanently.
func CheckFilter(expr string, link capture.LinkType, o Options) error {
	o = o.withDefaults()
	if o.BPFInVLANs && link == capture.LinkEthernet {
		expr = InVLANs(expr)
	}
	if err := compileDead(link, o.Snaplen, expr); !errors.Is(err, errNoDeadHandle) {
		return err
	}
	return nil
}

// errNoDeadHandle: wpcap.dll has no working pcap_open_dead.
var errNoDeadHandle = errors.New("wpcap.dll cannot compile a filter without an interface")

// compileDead compiles expr on a dead handle of the link type, as libpcap
// does for a filter without an interface.
func compileDead(link capture.LinkType, snap int, expr string) error {
	p, err := wpcap.all("pcap_compile", "pcap_freecode", "pcap_geterr", "pcap_close")
	if err != nil {
		return err
	}
	comp, freecode, geterr, closeDead := p[0], p[1], p[2], p[3]
	openDead, err := wpcap.proc("pcap_open_dead")
	if err != nil {
		return errNoDeadHandle
	}
	cexpr, err := windows.BytePtrFromString(expr)
	if err != nil {
		return fmt.Errorf("%w %q: %v", ErrBadFilter, expr, err)
	}
	h, _, _ := syscall.SyscallN(openDead, uintptr(link), uintptr(snap))
	if h == 0 {
		return fmt.Errorf("compile filter %q: pcap_open_dead failed for link type %d", expr, link)
	}
	defer syscall.SyscallN(closeDead, h)
	var prog bpfProgram
	compileMu.Lock()
	r, _, _ := syscall.SyscallN(comp, h, uintptr(unsafe.Pointer(&prog)), uintptr(unsafe.Pointer(cexpr)), 1, pcapNetmaskUnknown)
	compileMu.Unlock()
	if int32(r) < 0 {
		msg, _, _ := syscall.SyscallN(geterr, h)
		return fmt.Errorf("%w %q: %s", ErrBadFilter, expr, cString(msg))
	}
	syscall.SyscallN(freecode, uintptr(unsafe.Pointer(&prog)))
	return nil
}

// Stats returns libpcap's counters since the handle opened.
func (l *Handle) Stats() (Stats, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.p == 0 {
		return Stats{}, fmt.Errorf("stats of %s: closed", l.iface)
	}
	var s pcapStat
	if r, _, _ := syscall.SyscallN(l.fn.stats, l.p, uintptr(unsafe.Pointer(&s))); int32(r) < 0 {
		return Stats{}, fmt.Errorf("stats of %s: %s", l.iface, l.lastError())
	}
	return Stats{Received: s.Recv, KernelDrops: s.Drop, InterfaceDrops: s.IfDrop}, nil
}

// Break makes a Next in progress, or else the next call to Next, return
// io.EOF at once, without waiting for a packet or the read timeout; it is
// for a daemon that stops. It may be called from any goroutine. Npcap
// signals the read's event (pcap_breakloop is libpcap's one call meant for
// another thread); under Wine, whose wpcap.dll ignores the read timeout on
// a quiet interface, it is what ends the read at all.
func (l *Handle) Break() {
	l.brk.Lock()
	defer l.brk.Unlock()
	if l.p == 0 {
		return
	}
	if brk := wpcap.optional("pcap_breakloop"); brk != 0 {
		syscall.SyscallN(brk, l.p)
	}
}

// Close releases the handle. It breaks a Next in progress (which then
// returns io.EOF) and waits for it, and may be called more than once and
// from another goroutine than Next's.
func (l *Handle) Close() error {
	l.Break()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.brk.Lock()
	p := l.p
	l.p = 0
	l.brk.Unlock()
	if p != 0 {
		syscall.SyscallN(l.fn.close, p)
	}
	return nil
}
