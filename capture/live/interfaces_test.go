package live

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// npcapDevices and windowsAdapters are what Npcap's pcap_findalldevs and
// Windows' GetAdaptersAddresses say on a server with two adapters and
// Npcap's loopback adapter (the GUID is the one of the corpus capture
// DCShadow_…pcapng, whose pcapng header names \Device\NPF_{FABA1205-…}).
var (
	npcapDevices = []Interface{
		{Name: `\Device\NPF_{FABA1205-CD8C-4FC9-A6EF-FBC32CAFE2BA}`, Description: "Intel(R) 82574L Gigabit Network Connection",
			Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.10/24")}},
		{Name: `\Device\NPF_{0A1B2C3D-0000-4000-8000-00000000BEEF}`, Description: "vmxnet3 Ethernet Adapter"},
		{Name: `\Device\NPF_Loopback`, Description: "Adapter for loopback traffic capture", Up: true, Loopback: true},
	}
	windowsAdaptersList = []adapter{
		{GUID: "{faba1205-cd8c-4fc9-a6ef-fbc32cafe2ba}", FriendlyName: "Ethernet0", Description: "Intel(R) 82574L Gigabit Network Connection", Index: 7, Up: true},
		{GUID: "{0A1B2C3D-0000-4000-8000-00000000BEEF}", FriendlyName: "Ethernet 2", Index: 12,
			Addresses: []netip.Prefix{netip.MustParsePrefix("198.51.100.5/24")}},
		{GUID: "{11111111-2222-3333-4444-555555555555}", FriendlyName: "Wi-Fi", Index: 3, Up: true},
	}
)

func TestJoinAdaptersGivesFriendlyNamesIndexesAndState(t *testing.T) {
	list := joinAdapters(npcapDevices, windowsAdaptersList)
	if len(list) != 3 {
		t.Fatalf("%d interfaces, want the 3 devices", len(list))
	}
	eth0, eth2, lo := list[0], list[1], list[2]
	if eth0.FriendlyName != "Ethernet0" || eth0.Index != 7 || !eth0.Up || eth0.GUID != "{FABA1205-CD8C-4FC9-A6EF-FBC32CAFE2BA}" {
		t.Errorf("Ethernet0 joined as %+v", eth0)
	}
	if len(eth0.Addresses) != 1 || eth0.Addresses[0].String() != "192.0.2.10/24" {
		t.Errorf("Ethernet0 lost libpcap's addresses: %v", eth0.Addresses)
	}
	if eth2.FriendlyName != "Ethernet 2" || eth2.Up || eth2.Description != "vmxnet3 Ethernet Adapter" {
		t.Errorf("Ethernet 2 joined as %+v (down, and libpcap's description kept where Windows gives none)", eth2)
	}
	if len(eth2.Addresses) != 1 || eth2.Addresses[0].String() != "198.51.100.5/24" {
		t.Errorf("Ethernet 2 should take Windows' addresses when libpcap has none: %v", eth2.Addresses)
	}
	if lo.FriendlyName != "" || lo.GUID != "" || !lo.Up || lo.Label() != `\Device\NPF_Loopback` {
		t.Errorf("Npcap's loopback device changed: %+v", lo)
	}
}

func TestResolveAcceptsEveryNameAPersonKnows(t *testing.T) {
	list := joinAdapters(npcapDevices, windowsAdaptersList)
	const eth0 = `\Device\NPF_{FABA1205-CD8C-4FC9-A6EF-FBC32CAFE2BA}`
	for _, name := range []string{
		eth0,
		`\device\npf_{faba1205-cd8c-4fc9-a6ef-fbc32cafe2ba}`,
		"Ethernet0", "ethernet0", "ETHERNET0",
		"{FABA1205-CD8C-4FC9-A6EF-FBC32CAFE2BA}", "{faba1205-cd8c-4fc9-a6ef-fbc32cafe2ba}",
		"FABA1205-CD8C-4FC9-A6EF-FBC32CAFE2BA",
		"7",
	} {
		it, err := Resolve(name, list)
		if err != nil || it.Name != eth0 {
			t.Errorf("Resolve(%q) = %q, %v; want %s", name, it.Name, err, eth0)
		}
	}
	if it, err := Resolve("ethernet 2", list); err != nil || it.Index != 12 {
		t.Errorf(`Resolve("ethernet 2") = %+v, %v`, it, err)
	}
	if it, err := Resolve(`\Device\NPF_Loopback`, list); err != nil || !it.Loopback {
		t.Errorf("Resolve of the loopback device = %+v, %v", it, err)
	}
}

func TestResolveUnknownNameListsTheKnownOnes(t *testing.T) {
	list := joinAdapters(npcapDevices, windowsAdaptersList)
	for _, name := range []string{"Ethernet9", "99", "eth0", ""} {
		_, err := Resolve(name, list)
		if !errors.Is(err, ErrNoDevice) {
			t.Fatalf("Resolve(%q): %v, want ErrNoDevice", name, err)
		}
		for _, want := range []string{`"Ethernet0"`, `"Ethernet 2"`, `"\\Device\\NPF_Loopback"`, "tpwatch interfaces"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Resolve(%q) error %q does not list %s", name, err, want)
			}
		}
	}
	if _, err := Resolve("x", nil); err == nil || !strings.Contains(err.Error(), "none") {
		t.Errorf("Resolve in an empty list: %v", err)
	}
}

func TestResolveOnLinuxNames(t *testing.T) {
	list := []Interface{{Name: "eth0", Index: 2}, {Name: "any"}, {Name: "lo", Index: 1, Loopback: true}}
	for name, want := range map[string]string{"eth0": "eth0", "ETH0": "eth0", "any": "any", "2": "eth0", "1": "lo"} {
		if it, err := Resolve(name, list); err != nil || it.Name != want {
			t.Errorf("Resolve(%q) = %q, %v; want %s", name, it.Name, err, want)
		}
	}
	// An exact name wins over a case-insensitive one, and two
	// case-insensitive matches are ambiguous.
	list = append(list, Interface{Name: "ETH0"})
	if it, err := Resolve("ETH0", list); err != nil || it.Name != "ETH0" {
		t.Errorf("exact ETH0: %+v, %v", it, err)
	}
	if _, err := Resolve("Eth0", list); err == nil || !strings.Contains(err.Error(), "several") {
		t.Errorf("ambiguous Eth0: %v", err)
	}
}

func TestGUIDOfNPF(t *testing.T) {
	for name, want := range map[string]string{
		`\Device\NPF_{faba1205-CD8C-4FC9-A6EF-FBC32CAFE2BA}`:   "{FABA1205-CD8C-4FC9-A6EF-FBC32CAFE2BA}",
		`\Device\NPF_Loopback`:                                 "",
		`eth0`:                                                 "",
		`{FABA1205-CD8C-4FC9-A6EF-FBC32CAFE2BA}`:               "",
		`\Device\Other_{FABA1205-CD8C-4FC9-A6EF-FBC32CAFE2BA}`: "",
	} {
		if got := guidOfNPF(name); got != want {
			t.Errorf("guidOfNPF(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestPrefixOf(t *testing.T) {
	cases := []struct {
		ip   net.IP
		mask net.IPMask
		want string
	}{
		{net.ParseIP("192.0.2.10"), net.CIDRMask(24, 32), "192.0.2.10/24"},
		{net.ParseIP("192.0.2.10"), net.CIDRMask(120, 128), "192.0.2.10/24"}, // a 16-byte mask of an IPv4 address
		{net.ParseIP("192.0.2.10").To4(), nil, "192.0.2.10/32"},
		{net.ParseIP("2001:db8::1"), net.CIDRMask(64, 128), "2001:db8::1/64"},
		{net.ParseIP("2001:db8::1"), net.IPMask{0xff, 0, 0xff, 0}, "2001:db8::1/128"}, // not a prefix
	}
	for _, c := range cases {
		p, ok := prefixOf(c.ip, c.mask)
		if !ok || p.String() != c.want {
			t.Errorf("prefixOf(%v, %v) = %v, %v; want %s", c.ip, c.mask, p, ok, c.want)
		}
	}
	if _, ok := prefixOf(nil, nil); ok {
		t.Error("prefixOf(nil) succeeded")
	}
}
