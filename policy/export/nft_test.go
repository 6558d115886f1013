package export

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tpwatch/tpwatch/internal/testenv"
)

// nftCheck runs `nft -c -f` (check only) on a ruleset, in a network
// namespace of its own: as root with unshare -n, otherwise in a user
// namespace (unshare -rn), which gives nft the right to check without
// root. It returns nft's output and whether it accepted the ruleset.
func nftCheck(t *testing.T, ruleset string) (string, bool) {
	t.Helper()
	nft := testenv.Tool(t, "nft", "nftables")
	file := filepath.Join(t.TempDir(), "rules.nft")
	if err := os.WriteFile(file, []byte(ruleset), 0o644); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	unshare, err := exec.LookPath("unshare")
	switch {
	case err == nil && os.Geteuid() == 0:
		cmd = exec.Command(unshare, "-n", nft, "-c", "-f", file)
	case err == nil:
		cmd = exec.Command(unshare, "-rn", nft, "-c", "-f", file)
	case os.Geteuid() == 0:
		cmd = exec.Command(nft, "-c", "-f", file)
	default:
		testenv.Missing(t, "root or unshare (util-linux) for nft -c", err)
	}
	out, err := cmd.CombinedOutput()
	if err != nil && os.Geteuid() != 0 && strings.Contains(string(out), "unshare") {
		testenv.Missing(t, "a user namespace for nft -c (or root)", err)
	}
	return string(out), err == nil
}

// Every nftables golden file is a ruleset nft accepts.
func TestNFTablesCheck(t *testing.T) {
	for _, g := range goldens {
		if g.format != NFTables {
			continue
		}
		t.Run(g.name, func(t *testing.T) {
			if out, ok := nftCheck(t, export(t, g.config, g.format, g.opts)); !ok {
				t.Errorf("nft -c -f refuses the export:\n%s", out)
			}
		})
	}
}

// The check is not a formality: nft refuses a ruleset with a port out of
// range.
func TestNFTablesCheckRefusesABadPort(t *testing.T) {
	bad := strings.Replace(export(t, "site.yaml", NFTables, goldens[1].opts), "tcp dport 3741", "tcp dport 99999", 1)
	if !strings.Contains(bad, "99999") {
		t.Fatal("the export has no tcp dport 3741 to spoil")
	}
	out, ok := nftCheck(t, bad)
	if ok || !strings.Contains(out, "out of range") {
		t.Errorf("nft -c -f accepted port 99999 (or failed otherwise):\n%s", out)
	}
}
