//go:build linux

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/internal/headless"
	"github.com/tpwatch/tpwatch/internal/htmlcheck"
)

// checkStatusPage looks at the daemon's status page as a person would,
// once the lab's flows are decided: the page is valid and self-contained,
// shows the lab's rules with their state and the problem flows, fits 1280
// and 800 pixels in chromium (a screenshot of each is written for a
// reviewer); the flow API lists the same flows, and tpwatch observe prints
// them and follows new ones.
func checkStatusPage(t *testing.T, bin string, d *daemonProc, l *lab) {
	resp, err := http.Get("http://" + d.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %v %d", err, resp.StatusCode)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if err := htmlcheck.Check(page); err != nil {
		t.Error(err)
	}

	b := headless.New(t)
	shots := headless.ScreenshotDir(t)
	t.Logf("screenshots in %s", shots)
	layouts, err := b.Measure(page, []int{1280, 800}, []string{"#recent tbody tr", "#rules table.rules tbody tr", "#capture tbody tr", ".exit"})
	if err != nil {
		t.Fatal(err)
	}
	for _, lay := range layouts {
		if lay.Overflows() {
			t.Errorf("at %d px the status page is %d px wide: past the edge: %v", lay.Width, lay.ScrollWidth, lay.Overflowing)
		}
		recent := strings.Join(lay.Text["#recent tbody tr"], "\n")
		rules := strings.Join(lay.Text["#rules table.rules tbody tr"], "\n")
		for _, c := range flowCases {
			if !c.logged {
				continue
			}
			port := c.spec[strings.LastIndexByte(c.spec, ':')+1:]
			if !strings.Contains(recent, l.hosts[c.from].addr) || !strings.Contains(recent, ":"+port+"/") {
				t.Errorf("at %d px, the recent problems do not show %s → %s:\n%s", lay.Width, c.from, c.spec, recent)
			}
			if c.rule != "" && !strings.Contains(rules, c.rule) {
				t.Errorf("at %d px, the rules do not show %s:\n%s", lay.Width, c.rule, rules)
			}
		}
		for _, want := range []string{"BLOCKED\tagent-tm-tcp", "ok\tagent-em-grpc"} {
			if !strings.Contains(rules, want) {
				t.Errorf("at %d px, the rules lack %q:\n%s", lay.Width, want, rules)
			}
		}
		if capture := strings.Join(lay.Text["#capture tbody tr"], "\n"); !strings.Contains(capture, l.span) || !strings.Contains(capture, "capturing") {
			t.Errorf("at %d px, the capture health does not show %s capturing: %q", lay.Width, l.span, capture)
		}
		png := filepath.Join(shots, fmt.Sprintf("status-page-%d.png", lay.Width))
		if err := b.Screenshot("http://"+d.addr+"/", lay.Width, min(lay.Height+20, 16000), png); err != nil {
			t.Error(err)
		}
	}

	// The flow API: the lab's problem flows, with replay's fields.
	resp, err = http.Get("http://" + d.addr + "/api/v1/flows?verdict=blocked")
	if err != nil {
		t.Fatal(err)
	}
	var api struct {
		Flows   []map[string]any `json:"flows"`
		LastSeq uint64           `json:"last_seq"`
	}
	err = json.NewDecoder(resp.Body).Decode(&api)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	blocked := 0
	for _, c := range flowCases {
		if c.verdict == "blocked" {
			blocked++
		}
	}
	if len(api.Flows) < blocked {
		t.Errorf("the flow API lists %d blocked flows, want the lab's %d", len(api.Flows), blocked)
	}
	for _, f := range api.Flows {
		if f["verdict"] != "blocked" || f["interface"] != l.span || f["rule"] == "" {
			t.Errorf("flow API: %v", f)
		}
	}

	// observe prints the same flows, one a line.
	out, err := exec.Command(bin, "observe", "--server", "http://"+d.addr, "--last", "100").Output()
	if err != nil {
		t.Fatalf("tpwatch observe: %v", err)
	}
	for _, c := range flowCases {
		if !c.logged {
			continue
		}
		want := fmt.Sprintf("%s:%s/", l.hosts[strings.Split(c.spec, ":")[1]].addr, strings.Split(c.spec, ":")[2])
		if !strings.Contains(string(out), want) || !strings.Contains(string(out), strings.ToUpper(c.verdict)) {
			t.Errorf("observe does not show %s → %s (%s):\n%s", c.from, c.spec, want, out)
		}
	}

	// observe --follow prints a new blocked flow as it comes, and stops
	// with status 0 on SIGINT.
	follow := exec.Command(bin, "observe", "--server", "http://"+d.addr, "--follow", "--last", "1", "--interval", "200ms", "--verdict", "blocked")
	stdout, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	<-lines // the last one so far
	l.dial("agent", "tcp:tm:10001")
	want := l.hosts["tm"].addr + ":10001/tcp"
	deadline := time.After(20 * time.Second)
	for found := false; !found; {
		select {
		case line := <-lines:
			found = strings.Contains(line, want) && strings.Contains(line, "BLOCKED reset")
		case <-deadline:
			t.Errorf("observe --follow did not print the new refused flow to %s", want)
			found = true
		}
	}
	follow.Process.Signal(syscall.SIGINT)
	if err := follow.Wait(); err != nil {
		t.Errorf("observe --follow after SIGINT: %v, want status 0", err)
	}
}
