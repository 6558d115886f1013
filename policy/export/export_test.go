package export

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/tpwatch/tpwatch/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldens are the exports compared byte for byte with testdata/NAME.
var goldens = []struct {
	name, config string
	format       Format
	opts         Options
}{
	{"em.ps1", "site.yaml", PowerShell, Options{Host: netip.MustParseAddr("192.0.2.10")}},
	{"em.nft", "site.yaml", NFTables, Options{Host: netip.MustParseAddr("192.0.2.10")}},
	{"em-v6.nft", "site.yaml", NFTables, Options{Host: netip.MustParseAddr("2001:db8::10")}},
	{"sql.ps1", "site.yaml", PowerShell, Options{Host: netip.MustParseAddr("192.0.2.11")}},
	{"agent.ps1", "site.yaml", PowerShell, Options{Role: policy.Agent, Profile: "Domain,Private"}},
	{"agent.nft", "site.yaml", NFTables, Options{Role: policy.Agent}},
	{"tm.nft", "site.yaml", NFTables, Options{Host: netip.MustParseAddr("192.0.2.13"), InboundAccept: true, OutboundDrop: true}},
	{"colocated-em.ps1", "colocated.yaml", PowerShell, Options{Host: netip.MustParseAddr("10.1.0.10")}},
	{"colocated-dc.nft", "colocated.yaml", NFTables, Options{Host: netip.MustParseAddr("10.1.0.5")}},
}

func load(t *testing.T, config string) *policy.Policy {
	t.Helper()
	p, err := policy.Load("", filepath.Join("testdata", config))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func export(t *testing.T, config string, f Format, o Options) string {
	t.Helper()
	o.Version, o.Source = "1.0.0-test", "testdata/"+config+" and the embedded matrix"
	var b bytes.Buffer
	if err := Write(&b, load(t, config), f, o); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			got := export(t, g.config, g.format, g.opts)
			path := filepath.Join("testdata", g.name)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./policy/export -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from the export (go test ./policy/export -update, then read the diff):\n%s", path, got)
			}
		})
	}
}
