//go:build linux

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestInterfaceComesAndGoes starts the daemon on an interface that does
// not exist yet, then makes it appear, disappear and come back: the metrics
// endpoint stays up throughout and tpwatch_capture_up follows the
// interface.
func TestInterfaceComesAndGoes(t *testing.T) {
	need(t, runtime.GOOS == "linux", "Linux")
	need(t, os.Geteuid() == 0, "root")
	need(t, have("ip"), "ip (Debian package iproute2)")

	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	// A veth pair of our own with no address or route: nothing of the
	// host's network is touched.
	name := "tpw" + hex.EncodeToString(b[:]) + "a"
	peer := name[:len(name)-1] + "b"
	add := func() {
		t.Helper()
		for _, args := range [][]string{{"link", "add", name, "type", "veth", "peer", "name", peer}, {"link", "set", name, "up"}, {"link", "set", peer, "up"}} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				t.Fatalf("ip %v: %v\n%s", args, err, out)
			}
		}
	}
	del := func() { exec.Command("ip", "link", "del", name).Run() }
	t.Cleanup(del)

	bin := buildTpwatch(t)
	site := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(site, []byte("roles:\n  enterprise-manager: [10.200.9.1]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemonArgs(t, bin, site, "--interface", name, "--interface.retry-max", "2s")
	up := func(want float64) func([]sample) bool {
		return func(s []sample) bool {
			v, ok := value(s, "tpwatch_capture_up", map[string]string{"interface": name})
			return ok && v == want
		}
	}
	d.waitFor(t, 10*time.Second, "tpwatch_capture_up 0 for a missing interface", up(0))
	add()
	d.waitFor(t, 15*time.Second, "tpwatch_capture_up 1 once the interface exists", up(1))
	del()
	d.waitFor(t, 15*time.Second, "tpwatch_capture_up 0 once the interface is gone", up(0))
	add()
	d.waitFor(t, 15*time.Second, "tpwatch_capture_up 1 once the interface is back", up(1))
	if err := d.alive(); err != nil {
		t.Fatalf("tpwatch stopped: %v", err)
	}
}
