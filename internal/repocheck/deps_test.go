package repocheck

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestNoLibpcapWhereNotNeeded keeps libpcap where it belongs. The packages
// that read, decode and classify (and export the matrix) are pure Go on
// every system: they build and test without libpcap's headers or a C
// compiler. And the Windows binary never imports gopacket's pcap package,
// whose init loads wpcap.dll and panics on the first function it lacks:
// on Windows, capture/live has a binding of its own.
func TestNoLibpcapWhereNotNeeded(t *testing.T) {
	// The go command that runs the test, or the one in /usr/local/go
	// where a root shell's PATH lacks it (as e2e does).
	goBin := "/usr/local/go/bin/go"
	if p, err := exec.LookPath("go"); err == nil {
		goBin = p
	}
	list := func(goos, cgo string, pkgs ...string) []string {
		t.Helper()
		cmd := exec.Command(goBin, append([]string{"list", "-deps"}, pkgs...)...)
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED="+cgo)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %v (GOOS=%s): %v", pkgs, goos, err)
		}
		return strings.Fields(string(out))
	}
	pure := []string{"./capture", "./classifier", "./policy/...", "./report", "./pipeline"}
	for _, goos := range []string{"linux", "windows"} {
		for _, dep := range list(goos, "1", pure...) {
			if dep == "runtime/cgo" || dep == "github.com/google/gopacket/pcap" {
				t.Errorf("GOOS=%s: the pure-Go packages %v depend on %s", goos, pure, dep)
			}
		}
	}
	for _, dep := range list("windows", "0", "./cmd/tpwatch") {
		if dep == "github.com/google/gopacket/pcap" {
			t.Error("the Windows build of tpwatch imports github.com/google/gopacket/pcap, whose init panics without a complete wpcap.dll")
		}
	}
}
