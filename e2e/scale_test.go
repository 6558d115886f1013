//go:build linux

package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// scaleSite writes a site config with an Enterprise Manager and n agents
// listed one by one, no two of them in one prefix (every other address of
// 10.0.0.0/8): the inventory a large site keeps, and the worst case for a
// filter that names hosts.
func scaleSite(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("roles:\n  enterprise-manager: [192.0.2.10]\n  agent:\n")
	for i := range n {
		j := 2 * i
		fmt.Fprintf(&b, "    - 10.%d.%d.%d\n", j>>16&255, j>>8&255, j&255)
	}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("site-%d.yaml", n))
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startup is what one start and stop of the daemon measured.
type startup struct {
	capturing time.Duration // from exec to the "capturing" log line; 0: never
	peakRSS   int64         // VmHWM when capturing (or when given up)
	stopped   time.Duration // from SIGTERM to exit
	gaveUp    string        // why the start was not waited for to its end
}

// measureStartup starts `tpwatch run` on iface with config, waits for its
// "capturing" log line (at most limit, and at most maxRSS of memory),
// sends SIGTERM and waits for it to exit.
func measureStartup(t *testing.T, bin, config, iface string, limit time.Duration, maxRSS int64) startup {
	t.Helper()
	stderr := new(lockedBuffer)
	cmd := exec.Command(bin, "run", "--config", config, "--interface", iface,
		"--web.listen-address", freeAddr(t), "--log.format", "json", "--log.level", "info")
	cmd.Stderr, cmd.Stdout = stderr, stderr
	began := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("tpwatch log:\n%s", stderr.String())
		}
	}()
	var m startup
	for {
		if strings.Contains(stderr.String(), `"message":"capturing"`) {
			m.capturing = time.Since(began)
			break
		}
		select {
		case err := <-done:
			m.gaveUp = fmt.Sprintf("exited before capturing (%v): %s", err, shorten(lastLine(stderr.String())))
			return m
		default:
		}
		if rss, err := procStatus(cmd.Process.Pid, "VmRSS"); err == nil {
			if kb, _ := strconv.ParseInt(strings.Fields(rss)[0], 10, 64); kb<<10 > maxRSS {
				m.gaveUp = fmt.Sprintf("%d MiB resident after %v", kb>>10, time.Since(began).Round(time.Second))
				break
			}
		}
		if time.Since(began) > limit {
			m.gaveUp = fmt.Sprintf("not capturing after %v", limit)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	m.peakRSS = vmHWM(t, cmd.Process.Pid)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	select {
	case <-done:
		m.stopped = time.Since(signalled)
	case <-time.After(limit):
		m.stopped = -1
	}
	return m
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// shorten keeps the start and the end of a long line (a filter of 10,000
// hosts in an error message).
func shorten(s string) string {
	if len(s) <= 160 {
		return s
	}
	return s[:80] + " … " + s[len(s)-60:]
}

// sendFrame writes one Ethernet frame out of iface through a packet
// socket.
func sendFrame(t *testing.T, iface string, frame []byte) {
	t.Helper()
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	addr := &syscall.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
	if err := syscall.Sendto(fd, frame, 0, addr); err != nil {
		t.Fatal(err)
	}
}

// synFrame is an Ethernet/IPv4 TCP SYN from 10.0.0.2 (an agent of
// scaleSite) to the Enterprise Manager's 3741.
func synFrame() []byte {
	f := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00,
		0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, 2, 192, 0, 2, 10,
		0xc3, 0x50, 0x0e, 0x9d, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x04, 0x00, 0, 0, 0, 0}
	var sum uint32
	for i := 14; i < 34; i += 2 {
		sum += uint32(f[i])<<8 | uint32(f[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	f[24], f[25] = byte(^sum>>8), byte(^sum)
	return f
}

// Issue 17, #1: with 10,000 agents listed one by one in the config, the
// real daemon (libpcap compiling its derived filter) captures within 2 s
// of its start, and exits within 1 s of SIGTERM. The filter named every
// host before: 300 took 26 s to compile and 2,000 did not finish in 17
// minutes.
func TestTenThousandHostsStartAndStop(t *testing.T) {
	need(t, runtime.GOOS == "linux", "Linux")
	need(t, os.Geteuid() == 0, "root")
	need(t, have("ip"), "ip (Debian package iproute2)")
	bin := buildTpwatch(t)
	config := scaleSite(t, 10000)
	name, peer := newVeth(t)

	m := measureStartup(t, bin, config, name, 30*time.Second, 1<<30)
	t.Logf("10,000 hosts: capturing %v after start (peak RSS %d MiB), exited %v after SIGTERM %s",
		m.capturing.Round(time.Millisecond), m.peakRSS>>20, m.stopped.Round(time.Millisecond), m.gaveUp)
	if m.gaveUp != "" || m.capturing > 2*time.Second {
		t.Errorf("capturing %v after start (%s), want within 2s", m.capturing, m.gaveUp)
	}
	if m.stopped < 0 || m.stopped > time.Second {
		t.Errorf("exited %v after SIGTERM, want within 1s", m.stopped)
	}

	// And it captures what its filter is for: an agent's SYN to the
	// Enterprise Manager sent into the veth is counted.
	d := startDaemonArgs(t, bin, config, "--interface", name)
	d.waitFor(t, 5*time.Second, "tpwatch_capture_up 1", func(s []sample) bool {
		v, _ := value(s, "tpwatch_capture_up", map[string]string{"interface": name})
		return v == 1
	})
	sendFrame(t, peer, synFrame())
	d.waitFor(t, 5*time.Second, "the agent's SYN captured", func(s []sample) bool {
		v, _ := value(s, "tpwatch_capture_packets_total", map[string]string{"interface": name})
		return v >= 1
	})
}

// startupEnv names a tpwatch binary to measure beside the one built from
// this tree, for TestMeasureStartup.
const startupEnv = "TPWATCH_E2E_BASE_BIN"

// TestMeasureStartup reports the daemon's start-up time, peak memory and
// stop time against the size of the inventory, for this tree's binary and,
// when TPWATCH_E2E_BASE_BIN names one, another (an older build): starts
// that are not capturing after 60 s or pass 1 GiB are given up. It asserts
// nothing (the machine may be shared); it prints a table:
//
//	TPWATCH_E2E_MEASURE=1 TPWATCH_E2E_BASE_BIN=/tmp/old/tpwatch go test -run TestMeasureStartup -v ./e2e/
func TestMeasureStartup(t *testing.T) {
	if os.Getenv(measureEnv) == "" {
		t.Skip("set " + measureEnv + "=1 to measure the daemon's start against the inventory's size")
	}
	need(t, os.Geteuid() == 0 && have("ip"), "root and ip")
	bins := [][2]string{{"this tree", buildTpwatch(t)}}
	if base := os.Getenv(startupEnv); base != "" {
		bins = append(bins, [2]string{"base", base})
	}
	name, _ := newVeth(t)
	var rows []string
	for _, n := range []int{10, 100, 300, 1000, 10000} {
		config := scaleSite(t, n)
		for _, b := range bins {
			m := measureStartup(t, b[1], config, name, 60*time.Second, 1<<30)
			capturing := m.capturing.Round(time.Millisecond).String()
			if m.gaveUp != "" {
				capturing = m.gaveUp
			}
			stopped := m.stopped.Round(time.Millisecond).String()
			if m.stopped < 0 {
				stopped = "not within 60s"
			}
			rows = append(rows, fmt.Sprintf("%6d hosts  %-10s capturing %-34s peak RSS %5d MiB  stopped %s", n, b[0], capturing, m.peakRSS>>20, stopped))
			t.Log(rows[len(rows)-1])
		}
	}
	t.Logf("start-up against the inventory:\n%s", strings.Join(rows, "\n"))
}
