//go:build linux

package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// measureEnv turns on TestMeasureLoad, which reports the daemon's CPU,
// memory and drops under load. It asserts nothing about speed (the machine
// is shared); it prints numbers for a person to read:
//
//	TPWATCH_E2E_MEASURE=1 go test -run TestMeasureLoad -v ./e2e/
const measureEnv = "TPWATCH_E2E_MEASURE"

func TestMeasureLoad(t *testing.T) {
	if os.Getenv(measureEnv) == "" {
		t.Skip("set " + measureEnv + "=1 to measure the daemon under load")
	}
	need(t, os.Geteuid() == 0 && have("ip") && have("nft"), "root, ip and nft")
	bin := buildTpwatch(t)
	l := newLab(t)
	l.firewall()
	l.serve("em", "tcp:3741")
	site := filepath.Join(t.TempDir(), "site.yaml")
	writeSite(t, site, l, "")
	d := startDaemon(t, bin, l.span, site)

	report := func(what string, seconds float64, before []sample) {
		after := d.scrape(t)
		delta := func(name string) float64 {
			a, _ := value(after, name, nil)
			b, _ := value(before, name, nil)
			return a - b
		}
		flows, _ := value(after, "tpwatch_flows_total", map[string]string{"verdict": "allowed"})
		rss, _ := value(after, "process_resident_memory_bytes", nil)
		t.Logf("%s: %.0f packets/s captured, %.0f flows/s decided, CPU %.1f%% of one core, RSS %.1f MiB, kernel drops %.0f, interface drops %.0f, allowed flows so far %.0f",
			what, delta("tpwatch_capture_packets_total")/seconds, delta("tpwatch_flows_total")/seconds,
			100*delta("process_cpu_seconds_total")/seconds, rss/(1<<20),
			delta("tpwatch_capture_kernel_drops_total"), delta("tpwatch_capture_interface_drops_total"), flows)
	}

	time.Sleep(2 * time.Second)
	before := d.scrape(t)
	time.Sleep(5 * time.Second)
	report("idle", 5, before)

	// A steady stream of short TCP connections agent → EM 3741.
	const seconds = 15
	before = d.scrape(t)
	out, err := l.helper(l.hosts["agent"].ns, "flood", "tcp:"+l.hosts["em"].addr+":3741", strconv.Itoa(seconds), "8").Output()
	if err != nil {
		t.Fatalf("flood: %v", err)
	}
	t.Logf("flood client: %s", out)
	report("short TCP connections (each packet mirrored twice)", seconds, before)

	if have("tcpreplay") {
		// The highest packet rate this machine can drive: a capture replayed
		// as fast as possible out of the span interface, which libpcap on
		// it sees as outgoing packets.
		capFile, _ := filepath.Abs("../pcaps/matrix-v4.pcap")
		before = d.scrape(t)
		start := time.Now()
		cmd := exec.Command("tcpreplay", "-q", "--topspeed", "--loop=3000", "-i", l.span, capFile)
		res, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tcpreplay: %v: %s", err, res)
		}
		el := time.Since(start).Seconds()
		time.Sleep(2 * time.Second) // let the counters publish
		t.Logf("tcpreplay: %s", res)
		report(fmt.Sprintf("tcpreplay --topspeed (%.1fs)", el), el, before)
	}
}

// floodHelper opens and closes TCP connections to addr for the given
// seconds from several goroutines and prints how many it made.
func floodHelper(args []string) int {
	if len(args) != 3 {
		fmt.Println("usage: proto:addr:port seconds workers")
		return 2
	}
	_, addr, _ := strings.Cut(args[0], ":")
	secs, _ := strconv.Atoi(args[1])
	workers, _ := strconv.Atoi(args[2])
	var n, failed atomic.Int64
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			buf := make([]byte, 8)
			for time.Now().Before(deadline) {
				c, err := net.DialTimeout("tcp4", addr, time.Second)
				if err != nil {
					failed.Add(1)
					continue
				}
				c.Write([]byte("hello"))
				c.Read(buf)
				c.Close()
				n.Add(1)
			}
		})
	}
	wg.Wait()
	fmt.Printf("%d connections in %ds (%.0f/s), %d failed", n.Load(), secs, float64(n.Load())/float64(secs), failed.Load())
	return 0
}
