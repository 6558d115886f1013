package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/pcaps"
	"github.com/tpwatch/tpwatch/policy"
	"github.com/tpwatch/tpwatch/replay"
)

// siteScaleConfig is the benchmark capture's site (pcaps.BenchConfig) with
// its agents listed one by one: 5,000 of them, every other address from
// 10.1.0.0, so that none merge into a prefix and about half the agents
// of the traffic are in the inventory.
func siteScaleConfig(t *testing.T) string {
	t.Helper()
	var agents []string
	for i := range 5000 {
		j := 2 * i
		agents = append(agents, fmt.Sprintf("10.1.%d.%d", j>>8, j&255))
	}
	cfg := strings.Replace(string(pcaps.BenchConfig()), "agent: [10.1.0.0/19]", "agent: ["+strings.Join(agents, ", ")+"]", 1)
	if !strings.Contains(cfg, "10.1.39.12, 10.1.39.14]") {
		t.Fatal("the bench config's agents line moved")
	}
	path := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// heapInUse is the heap in use after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// flowKeys returns, for every blocked or unexpected flow, a line of what
// is known of it when it is decided: the daemon logs a flow then, replay
// writes it at its end, with its later packets counted.
func flowKeys(t *testing.T, lines []map[string]any) []string {
	t.Helper()
	var out []string
	for _, l := range lines {
		v, _ := l["verdict"].(string)
		if v != "blocked" && v != "unexpected" {
			continue
		}
		out = append(out, fmt.Sprint(l["ts_first"], " ", l["transport"], " ", l["src_ip"], ":", l["src_port"], " ", l["dst_ip"], ":", l["dst_port"],
			" ", l["src_roles"], " ", l["dst_roles"], " ", l["rule"], " ", v, "/", l["reason"], " ", l["outcome"]))
	}
	slices.Sort(out)
	return out
}

// The site scale: an inventory of 5,000 agents listed one by one,
// 50,000 flows of a site's traffic (pcaps.WriteBench), and 20 reloads of
// the config in a row while the traffic flows. The daemon's heap is the
// same after the reloads as before them (each reload compiles a policy of
// 5,000 hosts; none may be kept), every reload succeeds, and the verdicts
// are those of replay.Run on the same traffic: the same counts per
// verdict, reason and rule, and the same blocked and unexpected flows,
// field for field.
func TestSiteScaleReloadsUnderTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("a site's traffic: 400,000 packets")
	}
	site := siteScaleConfig(t)
	capFile := filepath.Join(t.TempDir(), "site.pcap")
	f, err := os.Create(capFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := pcaps.WriteBench(f, pcaps.BenchSpec{Packets: 400_000, Flows: 50_000, Live: 2_000, Seed: 17}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Load("", site)
	if err != nil {
		t.Fatal(err)
	}
	// What one compiled policy of this site takes: the bound of what the
	// reloads may leave behind.
	before := heapInUse()
	kept, err := policy.Load("", site)
	if err != nil {
		t.Fatal(err)
	}
	onePolicy := int64(heapInUse()) - int64(before)
	runtime.KeepAlive(kept)

	// The replay.
	var replayOut bytes.Buffer
	res, err := replay.Run(context.Background(), replay.Config{Policy: pol, ConfigName: site, Files: []string{capFile}, JSON: &replayOut, All: true, Log: zerolog.Nop()})
	if err != nil || len(res.ReadErrors) > 0 {
		t.Fatalf("replay: %v %v", err, res.ReadErrors)
	}
	var replayLines []map[string]any
	wantCounts := map[string]float64{}
	dec := json.NewDecoder(&replayOut)
	for {
		var l map[string]any
		if err := dec.Decode(&l); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		replayLines = append(replayLines, l)
		wantCounts[fmt.Sprint(l["verdict"], "/", l["reason"], "/", l["rule"])]++
	}
	if res.Table.FlowsCreated < 45_000 {
		t.Fatalf("the capture makes %d flows, want about 50,000", res.Table.FlowsCreated)
	}

	// The daemon, fed the same records, reloading meanwhile. Its log goes
	// to a file, not to memory the heap would count.
	logFile, err := os.Create(filepath.Join(t.TempDir(), "daemon.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	b := newBackend()
	cfg := testConfig(t, Config{ConfigFile: site, LogRate: -1}, b)
	d, err := New(cfg, zerolog.New(logFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	c := b.capture(t, "eth0", 1)
	src, err := capture.OpenFile(capFile)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var fed atomic.Int64 // records handed to the capture so far
	send := func(n int) int {
		sent := 0
		for ; sent < n; sent, _ = sent+1, fed.Add(1) {
			var rec capture.Record
			if err := src.Next(&rec); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			rec.Data = bytes.Clone(rec.Data)
			c.send(rec)
		}
		return sent
	}
	// Warm up: a tenth of the traffic and a first reload, then the heap.
	sent := send(40_000)
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, d, float64(sent), "tpwatch_capture_packets_total", "interface", "eth0")
	heapBefore := heapInUse()

	const reloads = 20
	var wg sync.WaitGroup
	reloadErrs := make(chan error, reloads)
	var reloadTime time.Duration
	var fedDuring int64
	wg.Go(func() {
		start, from := time.Now(), fed.Load()
		for range reloads {
			if err := d.Reload(); err != nil {
				reloadErrs <- err
			}
		}
		reloadTime, fedDuring = time.Since(start), fed.Load()-from
		close(reloadErrs)
	})
	for n := send(10_000); n > 0; n = send(10_000) {
		sent += n
	}
	wg.Wait()
	for err := range reloadErrs {
		t.Errorf("reload: %v", err)
	}
	waitMetric(t, d, float64(sent), "tpwatch_capture_packets_total", "interface", "eth0")
	heapAfter := heapInUse()
	cancel()
	b.wakeAll()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitLimit):
		t.Fatal("the daemon did not stop")
	}

	growth := int64(heapAfter) - int64(heapBefore)
	if fedDuring < 10_000 {
		t.Errorf("only %d packets came during the reloads: they were not under traffic", fedDuring)
	}
	t.Logf("%d packets, %d flows; %d reloads in %v, while %d packets came; heap in use %.1f MiB before the reloads, %.1f MiB after (one policy of this site: %.1f MiB)",
		sent, res.Table.FlowsCreated, reloads, reloadTime.Round(time.Millisecond), fedDuring, float64(heapBefore)/(1<<20), float64(heapAfter)/(1<<20), float64(onePolicy)/(1<<20))
	if growth > 2*max(onePolicy, 1<<20) {
		t.Errorf("the heap grew %.1f MiB over %d reloads (one policy is %.1f MiB): reloads keep memory", float64(growth)/(1<<20), reloads, float64(onePolicy)/(1<<20))
	}
	if v := mustMetric(t, d, "tpwatch_config_reloads_failed_total"); v != 0 {
		t.Errorf("tpwatch_config_reloads_failed_total = %v", v)
	}
	sameCounts(t, "daemon vs replay", gatherFlows(t, d), wantCounts)

	if _, err := logFile.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var events []map[string]any
	reloaded := 0
	for dec := json.NewDecoder(logFile); ; {
		var e map[string]any
		if err := dec.Decode(&e); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		switch {
		case e["verdict"] != nil:
			events = append(events, e)
		case e["message"] == "config reloaded":
			reloaded++
		}
	}
	if reloaded != reloads+1 {
		t.Errorf("%d reloads logged, want %d", reloaded, reloads+1)
	}
	got, want := flowKeys(t, events), flowKeys(t, replayLines)
	if len(want) == 0 {
		t.Fatal("the traffic has no blocked or unexpected flow to compare")
	}
	if !slices.Equal(got, want) {
		t.Errorf("the daemon logged %d blocked and unexpected flows, the replay reported %d, and they differ", len(got), len(want))
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Errorf("first difference:\n  daemon %s\n  replay %s", got[i], want[i])
				break
			}
		}
	}
}
