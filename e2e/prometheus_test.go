//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The alert rules and the dashboard that deploy/ ships; paths relative to
// this package's directory, where go test runs.
const (
	rulesFile     = "../deploy/prometheus/tpwatch-rules.yml"
	dashboardFile = "../deploy/grafana/tpwatch.json"
)

// checkPrometheus runs a real Prometheus that scrapes tpwatch every second
// and evaluates the shipped alert rules, then checks that every rule
// evaluates and that every query of the dashboard returns data.
func checkPrometheus(t *testing.T, tpwatchAddr string) {
	need(t, have("prometheus"), "prometheus (Debian package prometheus)")
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	_, statErr := os.Stat(rules)
	need(t, statErr == nil, rulesFile)

	api := startPrometheus(t, "prometheus", fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: tpwatch
    static_configs:
      - targets: [%q]
`, rules, tpwatchAddr))
	log := api.log

	// Ready, scraping tpwatch, and holding a few samples (rate() needs two).
	if !eventually(30*time.Second, func() bool {
		r, err := api.query(`up{job="tpwatch"} == 1`)
		return err == nil && len(r) == 1
	}) {
		t.Fatalf("prometheus never scraped tpwatch\n%s", log.String())
	}
	time.Sleep(4 * time.Second)

	t.Run("alert_rules", func(t *testing.T) {
		var groups []struct {
			Name  string
			Rules []struct {
				Name, Query, Health, LastError, Type string
			}
		}
		ok := eventually(20*time.Second, func() bool {
			var data struct {
				Groups json.RawMessage `json:"groups"`
			}
			if err := api.get("/api/v1/rules", nil, &data); err != nil || json.Unmarshal(data.Groups, &groups) != nil {
				return false
			}
			for _, g := range groups {
				for _, r := range g.Rules {
					if r.Health != "ok" {
						return false
					}
				}
			}
			return len(groups) > 0
		})
		n := 0
		for _, g := range groups {
			for _, r := range g.Rules {
				n++
				if r.Health != "ok" {
					t.Errorf("rule %s/%s: health %q, error %q", g.Name, r.Name, r.Health, r.LastError)
				}
				if _, err := api.query(r.Query); err != nil {
					t.Errorf("rule %s/%s: %q does not evaluate: %v", g.Name, r.Name, r.Query, err)
				}
			}
		}
		if !ok || n == 0 {
			t.Errorf("%s: %d rules loaded, not all evaluated", rulesFile, n)
		}
	})

	t.Run("dashboard", func(t *testing.T) {
		path, _ := filepath.Abs(dashboardFile)
		data, err := os.ReadFile(path)
		need(t, err == nil, dashboardFile)
		var dash any
		if err := json.Unmarshal(data, &dash); err != nil {
			t.Fatalf("%s: %v", dashboardFile, err)
		}
		exprs := dashboardExprs(dash)
		if len(exprs) == 0 {
			t.Fatalf("%s has no PromQL targets", dashboardFile)
		}
		for _, e := range exprs {
			q := grafanaToPromQL(e)
			r, err := api.query(q)
			switch {
			case err != nil:
				t.Errorf("dashboard query %q: %v", q, err)
			case len(r) == 0:
				t.Errorf("dashboard query %q returns nothing", q)
			}
		}
		t.Logf("%d dashboard queries checked", len(exprs))
	})
}

// startPrometheus runs a Prometheus with this configuration (relative
// paths in it are relative to a temporary directory) until the test ends.
func startPrometheus(t *testing.T, name, config string, args ...string) promAPI {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command("prometheus", append([]string{"--config.file=" + path, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr, "--log.level=warn"}, args...)...)
	log := new(lockedBuffer)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s log:\n%s", name, log.String())
		}
	})
	api := promAPI{base: "http://" + addr, addr: addr, log: log}
	if !eventually(30*time.Second, func() bool {
		_, err := api.query("1")
		return err == nil
	}) {
		t.Fatalf("%s did not start\n%s", name, log.String())
	}
	return api
}

// dashboardExprs collects the expr of every target of every panel, rows
// and nested panels included.
func dashboardExprs(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		if targets, ok := x["targets"].([]any); ok {
			for _, tg := range targets {
				if m, ok := tg.(map[string]any); ok {
					if e, ok := m["expr"].(string); ok && strings.TrimSpace(e) != "" {
						out = append(out, e)
					}
				}
			}
		}
		for k, c := range x {
			if k != "targets" {
				out = append(out, dashboardExprs(c)...)
			}
		}
	case []any:
		for _, c := range x {
			out = append(out, dashboardExprs(c)...)
		}
	}
	return out
}

var grafanaVar = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::[A-Za-z]+)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+)\]\]`)

// grafanaToPromQL replaces Grafana's variables: the interval ones with 1m
// (60 for the ones in seconds), dashboard variables with .* (every value).
func grafanaToPromQL(expr string) string {
	return grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		sub := grafanaVar.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		switch name {
		case "__rate_interval", "__interval", "__range", "__auto_interval":
			return "1m"
		case "__range_s", "__interval_s":
			return "60"
		case "__range_ms", "__interval_ms":
			return "60000"
		}
		return ".*"
	})
}

// promAPI is a client of Prometheus's HTTP API.
type promAPI struct {
	base, addr string
	log        *lockedBuffer // the server's log, when the test started it
}

func (p promAPI) get(path string, params url.Values, into any) error {
	c := http.Client{Timeout: 10 * time.Second}
	u := p.base + path
	if params != nil {
		u += "?" + params.Encode()
	}
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		Error     string          `json:"error"`
		ErrorType string          `json:"errorType"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("GET %s: %s: %w", path, resp.Status, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("%s: %s", body.ErrorType, body.Error)
	}
	return json.Unmarshal(body.Data, into)
}

// query runs an instant query and returns its result series (a scalar
// counts as one).
func (p promAPI) query(q string) ([]json.RawMessage, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get("/api/v1/query", url.Values{"query": {q}}, &data); err != nil {
		return nil, err
	}
	if data.ResultType == "scalar" || data.ResultType == "string" {
		return []json.RawMessage{data.Result}, nil
	}
	var series []json.RawMessage
	if err := json.Unmarshal(data.Result, &series); err != nil {
		return nil, err
	}
	return series, nil
}

// promSample is one series of an instant vector.
type promSample struct {
	Labels map[string]string
	Value  float64
}

// vector runs an instant query at a time and returns its series.
func (p promAPI) vector(q string, at time.Time) ([]promSample, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	params := url.Values{"query": {q}, "time": {fmt.Sprintf("%.3f", float64(at.UnixMilli())/1000)}}
	if err := p.get("/api/v1/query", params, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("%s: a %s, not a vector", q, data.ResultType)
	}
	out := make([]promSample, len(data.Result))
	for i, r := range data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: value %q: %w", q, s, err)
		}
		out[i] = promSample{Labels: r.Metric, Value: v}
	}
	return out, nil
}

func eventually(timeout time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if ok() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
}
