//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/pcaps"
)

// nobodyID is the uid and gid of nobody/nogroup on Debian.
const nobodyID = "65534"

// TestRunAsNobody starts the daemon as root with --user nobody: once
// running it holds nobody's uid and gid and no supplementary group of
// root's, and the capture it opened as root still counts packets.
func TestRunAsNobody(t *testing.T) {
	need(t, runtime.GOOS == "linux", "Linux")
	need(t, os.Geteuid() == 0, "root")
	need(t, have("ip"), "ip (Debian package iproute2)")
	need(t, have("tcpreplay"), "tcpreplay (Debian package tcpreplay)")

	bin := buildTpwatch(t)
	// The binary is in the test's temporary directory, which nobody may
	// not be able to read; it is already running when that matters.
	dir := t.TempDir()
	config := filepath.Join(dir, "flood.yaml")
	if err := os.WriteFile(config, pcaps.FloodConfig(), 0o644); err != nil {
		t.Fatal(err)
	}
	name, peer := newVeth(t)
	d := startDaemonArgs(t, bin, config, "--interface", name, "--user", "nobody")
	d.waitFor(t, 10*time.Second, "tpwatch_capture_up 1", func(s []sample) bool {
		v, _ := value(s, "tpwatch_capture_up", map[string]string{"interface": name})
		return v == 1
	})

	pid := d.cmd.Process.Pid
	for _, field := range []string{"Uid", "Gid"} {
		v, err := procStatus(pid, field)
		if err != nil {
			t.Fatal(err)
		}
		// Real, effective, saved and filesystem ids: all of them, or
		// root could be taken back.
		ids := strings.Fields(v)
		if len(ids) != 4 {
			t.Fatalf("%s of the daemon: %q", field, v)
		}
		for _, id := range ids {
			if id != nobodyID {
				t.Errorf("%s of the daemon is %q, want %s everywhere (nobody)", field, v, nobodyID)
				break
			}
		}
	}
	if groups, err := procStatus(pid, "Groups"); err != nil {
		t.Fatal(err)
	} else {
		for _, g := range strings.Fields(groups) {
			if g != nobodyID {
				t.Errorf("the daemon kept supplementary group %s (Groups: %q)", g, groups)
			}
		}
	}

	before, _ := value(d.scrape(t), "tpwatch_capture_packets_total", map[string]string{"interface": name})
	file := writeFlood(t, dir, flood{name: "sessions", kind: pcaps.FloodSYN, packets: 2000, sessions: 20})
	sent, _ := tcpreplay(t, peer, file)
	d.waitFor(t, 10*time.Second, "tpwatch_capture_packets_total to count the packets sent as nobody", func(s []sample) bool {
		v, _ := value(s, "tpwatch_capture_packets_total", map[string]string{"interface": name})
		return v-before >= float64(sent)
	})
	d.waitFor(t, 10*time.Second, "the sessions seen allowed as nobody", func(s []sample) bool {
		v, _ := value(s, "tpwatch_flows_total", map[string]string{"verdict": "allowed", "rule": "agent-em-grpc"})
		return v >= 20
	})
	if err := d.alive(); err != nil {
		t.Fatalf("tpwatch stopped: %v", err)
	}
	if !strings.Contains(d.stderr.String(), "dropped privileges") {
		t.Errorf("no \"dropped privileges\" log line")
	}
}
