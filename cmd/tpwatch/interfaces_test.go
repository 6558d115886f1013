package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/tpwatch/tpwatch/capture/live"
)

var windowsInterfaces = []live.Interface{
	{Name: `\Device\NPF_{FABA1205-CD8C-4FC9-A6EF-FBC32CAFE2BA}`, FriendlyName: "Ethernet0", GUID: "{FABA1205-CD8C-4FC9-A6EF-FBC32CAFE2BA}",
		Index: 7, Description: "Intel(R) 82574L Gigabit Network Connection", Up: true,
		Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.10/24"), netip.MustParsePrefix("fe80::1/64")}},
	{Name: `\Device\NPF_Loopback`, Description: "Adapter for loopback traffic capture", Up: true, Loopback: true},
}

func TestInterfacesTableOnWindows(t *testing.T) {
	var b bytes.Buffer
	if err := writeInterfacesTable(&b, windowsInterfaces); err != nil {
		t.Fatal(err)
	}
	want := `NAME       INDEX  STATE  ADDRESSES                 DEVICE                                              DESCRIPTION
Ethernet0  7      up     192.0.2.10/24,fe80::1/64  \Device\NPF_{FABA1205-CD8C-4FC9-A6EF-FBC32CAFE2BA}  Intel(R) 82574L Gigabit Network Connection
-          -      up     -                         \Device\NPF_Loopback                                Adapter for loopback traffic capture
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestInterfacesTableOnLinux(t *testing.T) {
	var b bytes.Buffer
	list := []live.Interface{{Name: "eth0", Index: 2, Up: true, Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.5/24")}}, {Name: "any", Description: "Pseudo-device that captures on all interfaces", Up: true}}
	if err := writeInterfacesTable(&b, list); err != nil {
		t.Fatal(err)
	}
	want := `NAME  INDEX  STATE  ADDRESSES    DESCRIPTION
eth0  2      up     10.0.0.5/24  -
any   -      up     -            Pseudo-device that captures on all interfaces
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestInterfacesJSON(t *testing.T) {
	var b bytes.Buffer
	if err := writeInterfacesJSON(&b, windowsInterfaces); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0]["friendly_name"] != "Ethernet0" || got[0]["index"] != 7.0 || got[0]["guid"] == nil || got[1]["loopback"] != true {
		t.Errorf("json: %s", b.String())
	}
}

// The real list, where this build can capture: every row names an
// interface, and a bad --format is a usage error.
func TestInterfacesCommand(t *testing.T) {
	_, stderr, status := tpwatch(t, "interfaces", "--format", "xml")
	if status != exitError || !strings.Contains(stderr, `--format "xml"`) {
		t.Errorf("bad format: %d %q", status, stderr)
	}
	out, stderr, status := tpwatch(t, "interfaces")
	if _, err := live.Interfaces(); err != nil {
		if status != exitError || !strings.Contains(stderr, "live capture is not available") {
			t.Errorf("without live capture: %d %q", status, stderr)
		}
		return
	}
	if status != 0 || !strings.HasPrefix(out, "NAME ") {
		t.Errorf("interfaces: %d %q %q", status, out, stderr)
	}
}
