package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tpwatch/tpwatch/internal/testenv"
	"github.com/tpwatch/tpwatch/policy"
	"github.com/tpwatch/tpwatch/replay"
)

// TestCaptureDashboardOnAReplayedCapture replays the demo capture with
// --metrics-out, serves the textfile as node_exporter's textfile collector
// would, lets a real Prometheus scrape it, and runs every query of the
// capture dashboard: each returns data, and each panel but the decode
// errors (the demo capture is clean) shows a value that is not 0. The
// live dashboard's increase() on the same data reads 0, which is why the
// capture dashboard exists.
func TestCaptureDashboardOnAReplayedCapture(t *testing.T) {
	prometheus := testenv.Tool(t, "prometheus", "prometheus")
	const pcap, site = "../pcaps/demo-site.pcapng", "../pcaps/demo-site.yaml"
	pol, err := policy.Load("", site)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	textfile := filepath.Join(dir, "replay.prom")
	if _, err := replay.Run(context.Background(), replay.Config{Policy: pol, ConfigName: site, Files: []string{pcap},
		MetricsOut: textfile, Version: "test", Log: zerolog.Nop()}); err != nil {
		t.Fatal(err)
	}
	metrics, err := os.ReadFile(textfile)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	scrapes := 0
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		scrapes++
		mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Write(metrics)
	}))
	defer node.Close()

	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: [%q]
`, strings.TrimPrefix(node.URL, "http://"))), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(prometheus, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", log.String())
		}
	}()
	query := func(q string) ([]float64, error) { return promQuery("http://"+addr, q) }
	deadline := time.Now().Add(60 * time.Second)
	for {
		v, err := query(`count(tpwatch_flows_total)`)
		mu.Lock()
		n := scrapes
		mu.Unlock()
		if err == nil && len(v) == 1 && v[0] > 0 && n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus has not scraped the textfile after 60s (%d scrapes, %v)", n, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // the last scrape is in the head block

	d := loadDashboard(t, captureDashboard)
	vars := strings.NewReplacer("$__range", "1h", "$instance", ".*", "$rule", ".*")
	for _, p := range d.Panels {
		nonZero := false
		for _, tg := range p.Targets {
			q := vars.Replace(tg.Expr)
			v, err := query(q)
			switch {
			case err != nil:
				t.Errorf("panel %q %s: %q: %v", p.Title, tg.RefID, q, err)
			case len(v) == 0:
				t.Errorf("panel %q %s: %q returns nothing on a replayed capture", p.Title, tg.RefID, q)
			}
			for _, x := range v {
				nonZero = nonZero || x != 0
			}
		}
		if !nonZero && p.Title != "Decode errors" {
			t.Errorf("panel %q shows only zeros on the demo capture", p.Title)
		}
	}
	// The live dashboard counts over time; a textfile's counters never
	// move.
	if v, err := query(`sum(increase(tpwatch_flows_total[1h]))`); err != nil || len(v) != 1 || v[0] != 0 {
		t.Errorf("increase() of a textfile's counters: %v, %v; want 0 (the live dashboard's panels read 0 on a replay)", v, err)
	}
}

// promQuery runs an instant query and returns the values of its samples.
func promQuery(base, q string) ([]float64, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(base + "/api/v1/query?" + url.Values{"query": {q}}.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s", r.Error)
	}
	var out []float64
	for _, s := range r.Data.Result {
		text, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, fmt.Errorf("value %v: %w", s.Value[1], err)
		}
		out = append(out, v)
	}
	return out, nil
}
