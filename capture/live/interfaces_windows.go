//go:build windows

package live

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// pcapIf and pcapAddr are libpcap's device list (pcap/pcap.h).
type pcapIf struct {
	Next        *pcapIf
	Name        *byte
	Description *byte
	Addresses   *pcapAddr
	Flags       uint32
}

type pcapAddr struct {
	Next                              *pcapAddr
	Addr, Netmask, Broadaddr, Dstaddr *windows.RawSockaddrAny
}

// Interfaces lists the interfaces Npcap can capture on, each with the
// friendly name, GUID, index and status Windows gives its adapter.
func Interfaces() ([]Interface, error) {
	p, err := wpcap.all("pcap_findalldevs", "pcap_freealldevs")
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var (
		devs   *pcapIf
		errbuf [pcapErrbufSize]byte
	)
	if r, _, _ := syscall.SyscallN(p[0], uintptr(unsafe.Pointer(&devs)), uintptr(unsafe.Pointer(&errbuf[0]))); int32(r) < 0 {
		return nil, fmt.Errorf("list interfaces: %s", errbufString(errbuf[:]))
	}
	var list []Interface
	for d := devs; d != nil; d = d.Next {
		it := Interface{
			Name:        windows.BytePtrToString(d.Name),
			Description: windows.BytePtrToString(d.Description),
			Up:          d.Flags&pcapIfUp != 0,
			Loopback:    d.Flags&pcapIfLoopback != 0,
		}
		for a := d.Addresses; a != nil; a = a.Next {
			if pf, ok := sockaddrPrefix(a.Addr, a.Netmask); ok {
				it.Addresses = append(it.Addresses, pf)
			}
		}
		list = append(list, it)
	}
	if devs != nil {
		syscall.SyscallN(p[1], uintptr(unsafe.Pointer(devs)))
	}
	adapters, err := windowsAdapters()
	if err != nil {
		// The devices still open by their Npcap name and GUID.
		adapters = nil
	}
	return joinAdapters(list, adapters), nil
}

// sockaddrPrefix reads an address and its netmask from libpcap's list.
func sockaddrPrefix(addr, mask *windows.RawSockaddrAny) (netip.Prefix, bool) {
	ip := sockaddrIP(addr)
	if ip == nil {
		return netip.Prefix{}, false
	}
	var m net.IPMask
	if mip := sockaddrIP(mask); len(mip) == len(ip) {
		m = net.IPMask(mip)
	}
	return prefixOf(ip, m)
}

func sockaddrIP(sa *windows.RawSockaddrAny) net.IP {
	if sa == nil {
		return nil
	}
	switch sa.Addr.Family {
	case windows.AF_INET:
		in := (*windows.RawSockaddrInet4)(unsafe.Pointer(sa))
		return net.IP(append([]byte(nil), in.Addr[:]...))
	case windows.AF_INET6:
		in := (*windows.RawSockaddrInet6)(unsafe.Pointer(sa))
		return net.IP(append([]byte(nil), in.Addr[:]...))
	}
	return nil
}

// windowsAdapters is what Windows says of its network adapters.
func windowsAdapters() ([]adapter, error) {
	const flags = windows.GAA_FLAG_SKIP_ANYCAST | windows.GAA_FLAG_SKIP_MULTICAST | windows.GAA_FLAG_SKIP_DNS_SERVER
	size := uint32(16 << 10)
	var buf []byte
	for range 4 {
		buf = make([]byte, size)
		err := windows.GetAdaptersAddresses(windows.AF_UNSPEC, flags, 0, (*windows.IpAdapterAddresses)(unsafe.Pointer(&buf[0])), &size)
		if err == nil {
			break
		}
		if err != windows.ERROR_BUFFER_OVERFLOW {
			return nil, fmt.Errorf("GetAdaptersAddresses: %w", err)
		}
		buf = nil
	}
	if buf == nil {
		return nil, fmt.Errorf("GetAdaptersAddresses: the adapter list keeps growing")
	}
	var out []adapter
	for a := (*windows.IpAdapterAddresses)(unsafe.Pointer(&buf[0])); a != nil; a = a.Next {
		ad := adapter{
			GUID:         windows.BytePtrToString(a.AdapterName),
			FriendlyName: windows.UTF16PtrToString(a.FriendlyName),
			Description:  windows.UTF16PtrToString(a.Description),
			Index:        int(a.IfIndex),
			Up:           a.OperStatus == windows.IfOperStatusUp,
		}
		for u := a.FirstUnicastAddress; u != nil; u = u.Next {
			if ip := u.Address.IP(); ip != nil {
				if pf, ok := prefixOf(ip, net.CIDRMask(int(u.OnLinkPrefixLength), len(ip)*8)); ok {
					ad.Addresses = append(ad.Addresses, pf)
				}
			}
		}
		out = append(out, ad)
	}
	return out, nil
}
