package daemon

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/net/html"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/internal/htmlcheck"
)

// flowsAnswer is the flow API's answer as a client reads it.
type flowsAnswer struct {
	Flows   []map[string]any `json:"flows"`
	LastSeq uint64           `json:"last_seq"`
	Lost    uint64           `json:"lost"`
	Kept    int              `json:"kept"`
}

func (r *running) flows(t *testing.T, query string) flowsAnswer {
	t.Helper()
	status, body := r.get(FlowsPath + query)
	if status != http.StatusOK {
		t.Fatalf("GET %s%s: status %d: %s", FlowsPath, query, status, body)
	}
	var a flowsAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("GET %s%s: %v\n%s", FlowsPath, query, err, body)
	}
	return a
}

// The demo site fed live: the status page shows the rules, what to open
// and the last problem flows, with markup from the config as text, and
// the flow API lists the same flows with the fields of replay's JSON,
// filtered and followed by sequence number.
func TestStatusPageAndFlowAPI(t *testing.T) {
	const pcap = "../pcaps/demo-site.pcapng"
	site, err := os.ReadFile("../pcaps/demo-site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// A description with markup, in the config the page shows.
	evil := `<script>alert(1)</script>`
	text := strings.Replace(string(site), "ports: [3389]}", `ports: [3389], description: "RDP `+evil+`"}`, 1)
	config := writeFile(t, t.TempDir(), "site.yaml", text)
	recs := fileRecords(t, pcap)
	b := newBackend()
	r := start(t, Config{ConfigFile: config, Version: "9.9.9"}, b)
	c := b.capture(t, "eth0", 1)
	c.send(recs...)
	// An hour later, every attempt is decided.
	c.idleAt(recs[len(recs)-1].TS + int64(time.Hour))
	waitMetric(t, r.d, 2, "tpwatch_flows_total", "verdict", "blocked", "reason", "no_response", "rule", "agent-em-grpc")
	deadline := time.Now().Add(waitLimit)
	for len(r.flows(t, "?limit=1000").Flows) < 8 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}

	t.Run("page", func(t *testing.T) {
		resp, err := http.Get("http://" + r.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /: %d", resp.StatusCode)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("Content-Security-Policy %q", csp)
		}
		if out := os.Getenv("TPWATCH_STATUS_PAGE"); out != "" {
			// For a person to look at (the e2e test takes screenshots).
			if err := os.WriteFile(out, body, 0o644); err != nil {
				t.Error(err)
			}
		}
		if err := htmlcheck.Check(body); err != nil {
			t.Error(err)
		}
		page := string(body)
		for _, want := range []string{
			`<meta http-equiv="refresh" content="10">`, `href="/metrics"`, `href="api/v1/flows?limit=100"`,
			"Recent problems", "agent-em-grpc", "isilon-cee", "To open", "rejected by", "198.51.100.1",
			"site.yaml", "<span class=\"pill ok\">loaded</span>", "capturing", "tpwatch 9.9.9",
			"RDP &lt;script&gt;alert(1)&lt;/script&gt;",
		} {
			if !strings.Contains(page, want) {
				t.Errorf("the status page lacks %q", want)
			}
		}
		doc, err := html.Parse(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for n := range doc.Descendants() {
			if n.Type == html.ElementNode && n.Data == "script" {
				t.Error("markup from the config became a script element")
			}
		}
		// The recent flows, the newest first: 5 blocked, 3 unexpected.
		recent := page[strings.Index(page, `id="recent"`):strings.Index(page, `id="rules"`)]
		if n := strings.Count(recent, `<tr class="blocked">`); n != 5 {
			t.Errorf("%d blocked flows listed as recent, want 5", n)
		}
		if n := strings.Count(recent, `<tr class="unexpected">`); n != 3 {
			t.Errorf("%d unexpected flows listed as recent, want 3", n)
		}
	})

	t.Run("api", func(t *testing.T) {
		all := r.flows(t, "")
		if len(all.Flows) != 8 || all.Kept != DefaultRecentFlows || all.LastSeq != 8 {
			t.Fatalf("flows: %d, kept %d, last_seq %d; want the demo's 8 problems, %d kept, last 8", len(all.Flows), all.Kept, all.LastSeq, DefaultRecentFlows)
		}
		for i, f := range all.Flows {
			for _, k := range []string{"seq", "interface", "ts_first", "ts_last", "transport", "src_ip", "src_port", "dst_ip", "dst_port",
				"src_roles", "dst_roles", "rule", "verdict", "reason", "conn_state", "history", "packets_out", "packets_in", "bytes_out", "bytes_in"} {
				if _, ok := f[k]; !ok {
					t.Errorf("flow %d lacks %q: %v", i, k, f)
				}
			}
			if f["seq"] != float64(i+1) || f["interface"] != "eth0" {
				t.Errorf("flow %d: seq %v interface %v", i, f["seq"], f["interface"])
			}
			if v := f["verdict"]; v != "blocked" && v != "unexpected" {
				t.Errorf("flow %d has verdict %v", i, v)
			}
		}
		for query, want := range map[string]int{
			"?verdict=unexpected":              3,
			"?verdict=blocked&port=12228":      2,
			"?rule=isilon-cee":                 2,
			"?host=203.0.113.0/24":             2,
			"?host=198.51.100.22,203.0.113.40": 4,
			"?verdict=blocked&limit=2":         2,
			"?since=6":                         2,
			"?since=8":                         0,
			"?since=0&limit=3":                 3,
		} {
			if got := r.flows(t, query); len(got.Flows) != want {
				t.Errorf("%s: %d flows, want %d", query, len(got.Flows), want)
			}
		}
		// limit without since: the newest.
		if got := r.flows(t, "?limit=1"); got.Flows[0]["seq"] != 8.0 {
			t.Errorf("limit=1 gave %v, want the newest", got.Flows[0])
		}
		// Following: the first flows after a sequence number, and the
		// number to ask after next.
		first := r.flows(t, "?since=0&limit=3")
		if first.LastSeq != 3 || first.Flows[0]["seq"] != 1.0 {
			t.Errorf("since=0&limit=3: last_seq %d, first %v", first.LastSeq, first.Flows[0]["seq"])
		}
		if next := r.flows(t, "?since=8&verdict=blocked"); next.LastSeq != 8 || len(next.Flows) != 0 {
			t.Errorf("since=8: %+v", next)
		}
		for _, bad := range []string{"?verdict=nope", "?host=300.1.1.1", "?port=0", "?port=x", "?limit=0", "?since=-1"} {
			status, body := r.get(FlowsPath + bad)
			if status != http.StatusBadRequest || !strings.Contains(body, `"error"`) {
				t.Errorf("GET %s: status %d %s, want 400 with an error", bad, status, body)
			}
		}
	})
}

// The status page and the flow API are behind the web config's basic
// auth, like /metrics.
func TestStatusPageNeedsTheMetricsAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	web := writeFile(t, dir, "web.yml", "basic_auth_users:\n  admin: "+string(hash)+"\n")
	r := start(t, Config{ConfigFile: "../pcaps/demo-site.yaml", WebConfigFile: web}, newBackend())
	client := &http.Client{Timeout: waitLimit}
	deadline := time.Now().Add(waitLimit)
	for _, path := range []string{"/", FlowsPath, "/metrics"} {
		for {
			req, _ := http.NewRequest(http.MethodGet, "http://"+r.addr+path, nil)
			resp, err := client.Do(req)
			if err != nil && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond) // not serving yet
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET %s without credentials: %d, want 401", path, resp.StatusCode)
			}
			req.SetBasicAuth("admin", "s3cret")
			resp, err = client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s with credentials: %d, want 200", path, resp.StatusCode)
			}
			break
		}
	}
}

func TestFlowRing(t *testing.T) {
	ring := newFlowRing(4)
	rec := func(port uint16) *classifier.FlowRecord {
		return &classifier.FlowRecord{ServerPort: port, Verdict: classifier.Blocked}
	}
	if got, newest := ring.latest(nil, 0); len(got) != 0 || newest != 0 {
		t.Errorf("empty ring: %v, newest %d", got, newest)
	}
	for p := uint16(1); p <= 6; p++ {
		ring.add("eth0", rec(p))
	}
	ports := func(es []ringEntry) []uint16 {
		var out []uint16
		for _, e := range es {
			out = append(out, e.rec.ServerPort)
		}
		return out
	}
	same := func(what string, got []ringEntry, want ...uint16) {
		t.Helper()
		if g := ports(got); !slices.Equal(g, want) {
			t.Errorf("%s: ports %v, want %v", what, g, want)
		}
	}
	got, newest := ring.latest(nil, 0)
	same("latest", got, 3, 4, 5, 6)
	if newest != 6 {
		t.Errorf("newest %d, want 6", newest)
	}
	got, _ = ring.latest(nil, 2)
	same("latest 2", got, 5, 6)
	even := func(e *ringEntry) bool { return e.rec.ServerPort%2 == 0 }
	got, _ = ring.latest(even, 0)
	same("latest even", got, 4, 6)

	got, last, lost := ring.after(0, nil, 0)
	same("after 0", got, 3, 4, 5, 6)
	if last != 6 || lost != 2 {
		t.Errorf("after 0: last %d lost %d, want 6 and 2 (flows 1 and 2 left the ring)", last, lost)
	}
	got, last, lost = ring.after(3, nil, 2)
	same("after 3, 2 of them", got, 4, 5)
	if last != 5 || lost != 0 {
		t.Errorf("after 3: last %d lost %d, want 5, 0", last, lost)
	}
	got, last, _ = ring.after(4, even, 0)
	same("after 4, even", got, 6)
	if last != 6 {
		t.Errorf("after 4 even: last %d", last)
	}
	got, last, _ = ring.after(6, nil, 0)
	same("after 6", got)
	if last != 6 {
		t.Errorf("after 6: last %d", last)
	}
	// Nothing after a number the ring has not reached yet, and no
	// number going back.
	if got, last, _ = ring.after(10, nil, 0); len(got) != 0 || last != 10 {
		t.Errorf("after 10: %v last %d", ports(got), last)
	}
	if allocs := testing.AllocsPerRun(100, func() { ring.add("eth0", rec(7)) }); allocs != 0 {
		t.Errorf("add allocates %v times", allocs)
	}
}
