package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeFlowAPI answers as a daemon's /api/v1/flows does, over TLS with
// basic auth, from flows the test adds; it records the queries.
type fakeFlowAPI struct {
	mu      sync.Mutex
	flows   []map[string]any
	lost    uint64
	queries []string
}

func (f *fakeFlowAPI) add(verdict, reason string, port int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := map[string]any{
		"seq": len(f.flows) + 1, "interface": "eth0", "ts_first": "2026-01-05T09:01:10.000000000Z", "ts_last": "2026-01-05T09:01:40.000000000Z",
		"transport": "tcp", "src_ip": "198.51.100.22", "src_port": 50312, "dst_ip": "2001:db8::10", "dst_port": port,
		"src_roles": []string{"agent"}, "dst_roles": []string{"enterprise-manager"}, "rule": "agent-em-grpc",
		"verdict": verdict, "reason": reason, "conn_state": "S0", "history": "S",
	}
	if verdict == "unexpected" {
		fl["outcome"], fl["rule"] = "worked", ""
	}
	if reason == "icmp_unreachable" {
		fl["icmp_type"], fl["icmp_code"], fl["icmp_src"] = 3, 13, "198.51.100.1"
	}
	f.flows = append(f.flows, fl)
}

func (f *fakeFlowAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if user, pw, ok := r.BasicAuth(); !ok || user != "admin" || pw != "s3cret" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.URL.Path != "/api/v1/flows" {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, r.URL.RawQuery)
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	out := []map[string]any{}
	last := uint64(len(f.flows))
	if s := q.Get("since"); s != "" {
		since, _ := strconv.ParseUint(s, 10, 64)
		for _, fl := range f.flows[min(int(since), len(f.flows)):] {
			if len(out) < limit {
				out = append(out, fl)
			}
		}
	} else {
		out = append(out, f.flows[max(len(f.flows)-limit, 0):]...)
	}
	lost := f.lost
	f.lost = 0
	json.NewEncoder(w).Encode(map[string]any{"flows": out, "last_seq": last, "lost": lost, "kept": 1000})
}

// startFakeAPI serves api over TLS and returns its URL and the files of
// its CA and of the password.
func startFakeAPI(t *testing.T, api http.Handler) (server, caFile, passwordFile string) {
	t.Helper()
	srv := httptest.NewTLSServer(api)
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return srv.URL, writeFile(t, "ca.pem", string(ca)), writeFile(t, "password", "s3cret\n")
}

func TestObserve(t *testing.T) {
	api := &fakeFlowAPI{}
	api.add("blocked", "no_response", 3741)
	api.add("blocked", "icmp_unreachable", 12228)
	api.add("unexpected", "no_rule", 3389)
	server, ca, pw := startFakeAPI(t, api)
	auth := []string{"--server", server, "--tls-ca", ca, "--username", "admin", "--password-file", pw}

	out, stderr, status := tpwatch(t, append([]string{"observe", "--verdict", "blocked,unexpected", "--host", "198.51.100.0/24", "--port", "3741", "--rule", "agent-em-grpc"}, auth...)...)
	if status != 0 {
		t.Fatalf("status %d: %s", status, stderr)
	}
	want := []string{
		"2026-01-05 09:01:10.000 eth0: 198.51.100.22:50312 (agent) -> [2001:db8::10]:3741/tcp (enterprise-manager) BLOCKED no answer [agent-em-grpc] S0 S",
		"2026-01-05 09:01:10.000 eth0: 198.51.100.22:50312 (agent) -> [2001:db8::10]:12228/tcp (enterprise-manager) BLOCKED rejected by 198.51.100.1 (ICMP 3/13) [agent-em-grpc] S0 S",
		"2026-01-05 09:01:10.000 eth0: 198.51.100.22:50312 (agent) -> [2001:db8::10]:3389/tcp (enterprise-manager) UNEXPECTED no rule, worked [no rule] S0 S",
	}
	if got := strings.TrimSpace(out); got != strings.Join(want, "\n") {
		t.Errorf("observe printed:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if q := api.queries[0]; q != "host=198.51.100.0%2F24&limit=20&port=3741&rule=agent-em-grpc&verdict=blocked%2Cunexpected" {
		t.Errorf("query %q", q)
	}

	// JSON: the API's objects, one a line.
	out, _, _ = tpwatch(t, append([]string{"observe", "--output", "json", "--last", "1"}, auth...)...)
	var fl map[string]any
	if err := json.Unmarshal([]byte(out), &fl); err != nil || fl["seq"] != 3.0 || fl["dst_port"] != 3389.0 {
		t.Errorf("json output %q: %v", out, err)
	}

	// Follow: new flows as they come, what was missed on stderr, and an
	// interrupt ends it with status 0.
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runContext(ctx, append([]string{"observe", "--follow", "--interval", "100ms", "--last", "1"}, auth...), &stdout, &errOut)
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("waited 10s for %s; stdout:\n%s\nstderr:\n%s", what, stdout.String(), errOut.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("the last flow", func() bool { return strings.Count(stdout.String(), "\n") == 1 })
	api.add("blocked", "refused", 10001)
	api.mu.Lock()
	api.lost = 7
	api.mu.Unlock()
	waitFor("the new flow", func() bool { return strings.Contains(stdout.String(), ":10001/tcp (enterprise-manager) BLOCKED reset") })
	waitFor("the lost flows", func() bool { return strings.Contains(errOut.String(), "7 flows left the daemon's ring") })
	cancel()
	select {
	case st := <-done:
		if st != 0 {
			t.Errorf("observe --follow ended with status %d after an interrupt, want 0: %s", st, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("observe --follow did not stop")
	}
	if n := strings.Count(stdout.String(), "\n"); n != 2 {
		t.Errorf("follow printed %d lines, want 2 (each flow once):\n%s", n, stdout.String())
	}

	// Errors say what to do, with status 2.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"observe", "--server", server, "--tls-ca", ca}, "asks for credentials (--username, --password-file)"},
		{[]string{"observe", "--server", server}, "certificate"},
		{[]string{"observe", "--server", "ftp://x"}, `--server "ftp://x"`},
		{[]string{"observe", "--verdict", "nope"}, "--verdict"},
		{[]string{"observe", "--output", "xml"}, "--output"},
		{[]string{"observe", "--password-file", pw}, "--password-file needs --username"},
		{[]string{"observe", "--server", "http://127.0.0.1:1"}, "cannot reach tpwatch at http://127.0.0.1:1"},
	} {
		_, stderr, status := tpwatch(t, c.args...)
		if status != exitError || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: status %d, stderr %q; want 2 and %q", c.args, status, stderr, c.want)
		}
	}
}

// syncBuffer is a bytes.Buffer written by one goroutine and read by
// another.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
