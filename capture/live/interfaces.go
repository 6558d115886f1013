package live

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Interface is a capture interface, with every name a person may know it
// by: `tpwatch interfaces` lists them, and Open accepts any of them.
type Interface struct {
	// Name is the device name libpcap opens: eth0 on Linux,
	// \Device\NPF_{GUID} with Npcap.
	Name string
	// FriendlyName is the name Windows shows in its network settings
	// (Ethernet0, "Ethernet 2"); empty elsewhere.
	FriendlyName string
	// GUID is the Windows adapter's GUID in braces, upper case
	// ({FABA1205-CD8C-4FC9-A6EF-FBC32CAFE2BA}); empty elsewhere.
	GUID string
	// Index is the system's interface index; 0 when unknown.
	Index int
	// Description is the driver's or libpcap's description, when there is
	// one ("Intel(R) Ethernet Connection I219-LM").
	Description string
	// Addresses are the interface's IP addresses with their prefix length.
	Addresses []netip.Prefix
	// Up says the interface is up (Windows: its operational status).
	Up bool
	// Loopback marks a loopback interface.
	Loopback bool
}

// Label is the name a person knows the interface by: the friendly name on
// Windows, the device name elsewhere.
func (i *Interface) Label() string {
	if i.FriendlyName != "" {
		return i.FriendlyName
	}
	return i.Name
}

// libpcap's interface flags (pcap.h), the same on every system.
const (
	pcapIfLoopback = 0x1
	pcapIfUp       = 0x2
)

// guidOfNPF returns the {GUID} of an Npcap device name
// (\Device\NPF_{GUID}), or "" when it has none (\Device\NPF_Loopback, a
// Linux name).
func guidOfNPF(name string) string {
	i := strings.LastIndex(name, "{")
	if i < 0 || !strings.HasSuffix(name, "}") || !strings.HasPrefix(strings.ToUpper(name[:i]), `\DEVICE\NPF_`) {
		return ""
	}
	return strings.ToUpper(name[i:])
}

// adapter is what Windows says of a network adapter
// (GetAdaptersAddresses), joined to libpcap's devices on the GUID.
type adapter struct {
	GUID         string // {GUID}, any case
	FriendlyName string
	Description  string
	Index        int
	Up           bool
	Addresses    []netip.Prefix
}

// joinAdapters completes libpcap's devices with what Windows knows of the
// same adapters: the friendly name, the index, the operational status, a
// description a person recognises. A device without an adapter (Npcap's
// loopback) keeps what libpcap said.
func joinAdapters(devs []Interface, adapters []adapter) []Interface {
	byGUID := make(map[string]*adapter, len(adapters))
	for i := range adapters {
		byGUID[strings.ToUpper(adapters[i].GUID)] = &adapters[i]
	}
	out := make([]Interface, len(devs))
	for i, d := range devs {
		d.GUID = guidOfNPF(d.Name)
		if a := byGUID[d.GUID]; a != nil && d.GUID != "" {
			d.FriendlyName = a.FriendlyName
			d.Index = a.Index
			d.Up = a.Up
			if a.Description != "" {
				d.Description = a.Description
			}
			if len(d.Addresses) == 0 {
				d.Addresses = a.Addresses
			}
		}
		out[i] = d
	}
	return out
}

// Resolve finds the interface name means among list: the device name as
// it is, else, ignoring case, a device name, a Windows friendly name, a
// GUID with or without its braces, and last a number as an interface
// index. A name that matches nothing, or several, is an error wrapping
// ErrNoDevice that lists the interfaces there are.
func Resolve(name string, list []Interface) (Interface, error) {
	for _, it := range list {
		if it.Name == name {
			return it, nil
		}
	}
	var found []Interface
	for _, it := range list {
		if matchesName(&it, name) {
			found = append(found, it)
		}
	}
	if len(found) == 0 {
		if n, err := strconv.Atoi(name); err == nil && n > 0 {
			for _, it := range list {
				if it.Index == n {
					found = append(found, it)
				}
			}
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return Interface{}, fmt.Errorf("%w %q: the interfaces are %s (see tpwatch interfaces)", ErrNoDevice, name, KnownNames(list))
	}
	names := make([]string, len(found))
	for i := range found {
		names[i] = found[i].Name
	}
	return Interface{}, fmt.Errorf("%w: %q names several interfaces (%s): give the device name", ErrNoDevice, name, strings.Join(names, ", "))
}

func matchesName(it *Interface, name string) bool {
	if strings.EqualFold(it.Name, name) || (it.FriendlyName != "" && strings.EqualFold(it.FriendlyName, name)) {
		return true
	}
	if it.GUID == "" {
		return false
	}
	bare := strings.Trim(it.GUID, "{}")
	return strings.EqualFold(it.GUID, name) || strings.EqualFold(bare, name)
}

// KnownNames lists the interfaces of list the way a person names them,
// for an error message: "Ethernet0, Ethernet 2 and \Device\NPF_Loopback",
// or "none" (no interface at all usually means no right to list them).
func KnownNames(list []Interface) string {
	if len(list) == 0 {
		return "none (listing them may need administrator rights, or Npcap's driver may not be running)"
	}
	names := make([]string, len(list))
	for i := range list {
		names[i] = strconv.Quote(list[i].Label())
	}
	sort.Strings(names)
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// deviceName is the libpcap device iface names (see Resolve). When the
// list cannot be read, iface goes to libpcap unchanged, which then says
// what is wrong.
func deviceName(iface string) (string, error) {
	list, err := Interfaces()
	if err != nil {
		return iface, nil
	}
	it, err := Resolve(iface, list)
	if err != nil {
		return "", err
	}
	return it.Name, nil
}

// prefixOf returns ip with the prefix length of mask (the full length
// when the mask is missing or not a prefix), IPv4 in IPv4 form.
func prefixOf(ip net.IP, mask net.IPMask) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	bits := a.BitLen()
	ones, size := mask.Size()
	if size == 128 && bits == 32 && ones >= 96 {
		// An IPv4 address with a 16-byte mask.
		ones, size = ones-96, 32
	}
	if size == bits {
		bits = ones
	}
	return netip.PrefixFrom(a, bits), true
}
