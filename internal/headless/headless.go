// Package headless looks at tpwatch's pages as a person would, for tests:
// it renders them in Debian's chromium, headless (no driver, no script in
// the pages themselves), takes screenshots for a reviewer, and measures
// the layout at a given width through a test-only wrapper page whose
// script reads the page in a frame: whether anything runs past the
// window's right edge, how tall the page is, and the visible text of
// chosen elements.
package headless

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/internal/testenv"
)

// Browser is a headless chromium with a profile of its own.
type Browser struct {
	path    string
	profile string
	timeout time.Duration
}

// New finds chromium, or skips t (fails it under CI) when it is missing.
func New(t testing.TB) *Browser {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		testenv.Missing(t, "chromium (Debian package chromium)", errors.New("not in PATH"))
	}
	return &Browser{path: path, profile: t.TempDir(), timeout: 90 * time.Second}
}

// run runs chromium headless on url with extra flags and returns what it
// wrote on stdout.
func (b *Browser) run(url string, width, height int, extra ...string) ([]byte, error) {
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--hide-scrollbars", "--mute-audio", "--user-data-dir=" + b.profile,
		fmt.Sprintf("--window-size=%d,%d", width, height)}
	args = append(args, extra...)
	args = append(args, url)
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("chromium %s: %w\n%s", url, err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// Screenshot writes a PNG of the top width x height pixels of url.
func (b *Browser) Screenshot(url string, width, height int, file string) error {
	if _, err := b.run(url, width, height, "--screenshot="+file); err != nil {
		return err
	}
	if st, err := os.Stat(file); err != nil || st.Size() == 0 {
		return fmt.Errorf("chromium wrote no screenshot of %s: %v", url, err)
	}
	return nil
}

// Layout is what a page looks like at one width.
type Layout struct {
	Width int `json:"width"`
	// ScrollWidth and ClientWidth are the document's: a page wider than
	// its window scrolls sideways.
	ScrollWidth int `json:"scrollWidth"`
	ClientWidth int `json:"clientWidth"`
	Height      int `json:"height"`
	// Overflowing are the elements whose right edge is past the window's,
	// as tag#id.class, the outermost first.
	Overflowing []string `json:"overflowing"`
	// Text maps each selector asked for to the visible text (innerText)
	// of each element it selects.
	Text map[string][]string `json:"text"`
}

// Overflows says whether something runs past the window's right edge.
func (l *Layout) Overflows() bool { return l.ScrollWidth > l.ClientWidth || len(l.Overflowing) > 0 }

// checkScript measures the page in each frame once it has loaded. It
// runs in the test's wrapper page only, never in a page of tpwatch.
const checkScript = `
function describe(el) {
  let s = el.tagName.toLowerCase();
  if (el.id) s += "#" + el.id;
  if (typeof el.className === "string" && el.className) s += "." + el.className.trim().split(/\s+/).join(".");
  return s;
}
function measure(frame, selectors) {
  const doc = frame.contentDocument, root = doc.documentElement;
  const out = {width: frame.clientWidth, scrollWidth: root.scrollWidth, clientWidth: root.clientWidth,
    height: root.scrollHeight, overflowing: [], text: {}};
  for (const el of doc.body.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > root.clientWidth + 0.5) {
      let p = el.parentElement, inside = false;
      while (p) { if (out.overflowing.includes(describe(p))) { inside = true; break; } p = p.parentElement; }
      if (!inside && out.overflowing.length < 20) out.overflowing.push(describe(el));
    }
  }
  for (const sel of selectors) out.text[sel] = Array.from(doc.querySelectorAll(sel), e => e.innerText);
  return out;
}
window.addEventListener("load", () => {
  const selectors = JSON.parse(document.getElementById("selectors").textContent);
  const result = Array.from(document.querySelectorAll("iframe"), f => measure(f, selectors));
  document.getElementById("result").textContent = JSON.stringify(result);
});
`

// Measure renders page at each width (in frames of a wrapper page that a
// local server serves with it) and returns its layout at each, with the
// visible text of the elements each selector selects.
func (b *Browser) Measure(page []byte, widths []int, selectors []string) ([]Layout, error) {
	sel, err := json.Marshal(selectors)
	if err != nil {
		return nil, err
	}
	var wrapper strings.Builder
	wrapper.WriteString("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>check</title></head><body>\n")
	// Script text is raw: the selectors (the test's own) go in as JSON.
	fmt.Fprintf(&wrapper, "<script type=\"application/json\" id=\"selectors\">%s</script>\n", sel)
	maxWidth := 0
	for _, w := range widths {
		fmt.Fprintf(&wrapper, "<iframe src=\"/page.html\" width=\"%d\" height=\"1200\" style=\"border:0;display:block\"></iframe>\n", w)
		maxWidth = max(maxWidth, w)
	}
	wrapper.WriteString("<pre id=\"result\"></pre>\n<script>" + checkScript + "</script></body></html>\n")

	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/page.html":
			w.Write(page)
		case "/check.html":
			w.Write([]byte(wrapper.String()))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	out, err := b.run(srv.URL+"/check.html", maxWidth+40, 1400, "--virtual-time-budget=15000", "--dump-dom")
	if err != nil {
		return nil, err
	}
	start := bytes.Index(out, []byte(`<pre id="result">`))
	end := bytes.Index(out, []byte(`</pre>`))
	if start < 0 || end < start {
		return nil, fmt.Errorf("the check page has no result:\n%.2000s", out)
	}
	text := html.UnescapeString(string(out[start+len(`<pre id="result">`) : end]))
	var layouts []Layout
	if err := json.Unmarshal([]byte(text), &layouts); err != nil {
		return nil, fmt.Errorf("the check page's result %.500q: %w", text, err)
	}
	if len(layouts) != len(widths) {
		return nil, fmt.Errorf("%d layouts for %d widths", len(layouts), len(widths))
	}
	return layouts, nil
}

// ScreenshotDir is where a test writes what a reviewer looks at:
// $TPWATCH_SCREENSHOTS when set (created), else the test's artifact
// directory (kept with go test -artifacts -outputdir DIR).
func ScreenshotDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("TPWATCH_SCREENSHOTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	return t.ArtifactDir()
}
