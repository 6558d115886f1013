package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tpwatch/tpwatch/internal/headless"
	"github.com/tpwatch/tpwatch/internal/htmlcheck"
	"github.com/tpwatch/tpwatch/internal/testenv"
)

// committedCaptures are the captures of pcaps/ with their site config.
var committedCaptures = []string{"demo-site.pcapng", "ipv6-vlan.pcapng", "matrix-v4.pcap", "midstream.pcap", "pending.pcap", "unexpected.pcapng"}

// expectedRule is what a capture's expected NDJSON says of one rule.
type expectedRule struct{ allowed, blocked, unexpected, pending int }

// expectedCounts reads a capture's expected verdicts: the flows of each
// rule ("" for none) by verdict, the verdict totals, and the devices
// that rejected flows with an ICMP error.
func expectedCounts(t *testing.T, path string) (rules map[string]*expectedRule, totals map[string]int, rejecters []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rules, totals = map[string]*expectedRule{}, map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var fl struct{ Rule, Verdict, ICMPSrc string }
		var raw map[string]any
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatal(err)
		}
		fl.Rule, _ = raw["rule"].(string)
		fl.Verdict, _ = raw["verdict"].(string)
		fl.ICMPSrc, _ = raw["icmp_src"].(string)
		totals[fl.Verdict]++
		if fl.ICMPSrc != "" {
			rejecters = append(rejecters, fl.ICMPSrc)
		}
		if fl.Verdict == "ignored" {
			continue
		}
		r := rules[fl.Rule]
		if r == nil {
			r = &expectedRule{}
			rules[fl.Rule] = r
		}
		switch fl.Verdict {
		case "allowed":
			r.allowed++
		case "blocked":
			r.blocked++
		case "unexpected":
			r.unexpected++
		case "pending":
			r.pending++
		}
	}
	return rules, totals, rejecters
}

// TestHTMLReportOfEachCapture renders the HTML report of every committed
// capture and looks at it in chromium as a person would: the page is
// valid HTML (tidy, and a strict tokenizer walk), self-contained, and at
// 1280 and 800 pixels nothing runs past the window's edge, and the rules
// with their counts, the verdicts and the reasons are on the screen.
// A screenshot of each is written for a reviewer (the log says where).
func TestHTMLReportOfEachCapture(t *testing.T) {
	tidy := testenv.Tool(t, "tidy", "tidy")
	browser := headless.New(t)
	shots := headless.ScreenshotDir(t)
	t.Logf("screenshots in %s", shots)
	for _, name := range committedCaptures {
		t.Run(name, func(t *testing.T) {
			capture := filepath.Join("..", "..", "pcaps", name)
			site := strings.TrimSuffix(strings.TrimSuffix(capture, ".pcapng"), ".pcap") + ".yaml"
			page, stderr, status := tpwatch(t, "replay", "--format", "html", "--config", site, capture)
			if status > 1 {
				t.Fatalf("replay --format html: status %d: %s", status, stderr)
			}
			file := filepath.Join(t.TempDir(), "report.html")
			if err := os.WriteFile(file, []byte(page), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := htmlcheck.Check([]byte(page)); err != nil {
				t.Error(err)
			}
			if out, err := exec.Command(tidy, "-errors", "-quiet", file).CombinedOutput(); err != nil || len(out) > 0 {
				t.Errorf("tidy -errors: %v\n%s", err, out)
			}

			rules, totals, rejecters := expectedCounts(t, capture+".expected.ndjson")
			selectors := []string{"#rules table.rules tbody tr", "#verdicts ul.legend li", "#to-open tbody tr", "#refused tbody tr", "#unexpected tbody tr", ".exit"}
			layouts, err := browser.Measure([]byte(page), []int{1280, 800}, selectors)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range layouts {
				if l.Overflows() {
					t.Errorf("at %d px the page is %d px wide (window %d): past the edge: %v", l.Width, l.ScrollWidth, l.ClientWidth, l.Overflowing)
				}
				// Every rule that saw flows is on the screen with its
				// counts: working, blocked, unexpected.
				seen := map[string]bool{}
				for _, row := range l.Text["#rules table.rules tbody tr"] {
					cells := strings.Split(row, "\t")
					if len(cells) < 7 {
						t.Errorf("at %d px, rule row %q has %d cells", l.Width, row, len(cells))
						continue
					}
					id := strings.Fields(cells[1])[0]
					if id == "(no" {
						id = ""
					}
					want := rules[id]
					if want == nil {
						t.Errorf("at %d px, rule %q is shown but saw no flow", l.Width, id)
						continue
					}
					seen[id] = true
					got := strings.Join(cells[4:7], " ")
					if exp := strconv.Itoa(want.allowed) + " " + strconv.Itoa(want.blocked) + " " + strconv.Itoa(want.unexpected); got != exp {
						t.Errorf("at %d px, rule %q shows working/blocked/unexpected %q, want %q", l.Width, id, got, exp)
					}
				}
				for id := range rules {
					if !seen[id] {
						t.Errorf("at %d px, rule %q is not on the screen", l.Width, id)
					}
				}
				legend := strings.Join(l.Text["#verdicts ul.legend li"], " | ")
				for _, v := range []string{"allowed", "blocked", "unexpected", "pending"} {
					if !strings.Contains(legend, strconv.Itoa(totals[v])+" "+v) {
						t.Errorf("at %d px, the verdicts say %q, want %d %s", l.Width, legend, totals[v], v)
					}
				}
				blocked := strings.Join(append(l.Text["#to-open tbody tr"], l.Text["#refused tbody tr"]...), "\n")
				for _, r := range rejecters {
					if !strings.Contains(blocked, "rejected by\n"+r) && !strings.Contains(blocked, "rejected by "+r) {
						t.Errorf("at %d px, the blocked flows do not say they were rejected by %s:\n%s", l.Width, r, blocked)
					}
				}
				if totals["unexpected"] > 0 {
					unexpected := strings.Join(l.Text["#unexpected tbody tr"], "\n")
					if !strings.Contains(unexpected, "GOT IN") && !strings.Contains(unexpected, "turned away") {
						t.Errorf("at %d px, the unexpected flows show no outcome:\n%s", l.Width, unexpected)
					}
				}
			}
			// What a reviewer looks at: the whole page at 1280 px (and at
			// 800 for the demo).
			stem := strings.SplitN(name, ".", 2)[0]
			widths := []int{1280}
			if stem == "demo-site" {
				widths = append(widths, 800)
			}
			for i, w := range widths {
				png := filepath.Join(shots, stem+"-"+strconv.Itoa(w)+".png")
				if err := browser.Screenshot("file://"+file, w, min(layouts[i].Height+20, 16000), png); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// The report of a capture with markup in every string that reaches the
// page (a matrix's descriptions and sections, a config's allow rule, the
// file name) shows it as text, and stays valid.
func TestHTMLReportEscapesTheInput(t *testing.T) {
	const evil = `<script>alert(1)</script>`
	matrix, err := os.ReadFile("../../policy/matrix.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := bytes.ReplaceAll(matrix, []byte("description: "), []byte("description: "+`"`+evil+`" # `))
	m = bytes.ReplaceAll(m, []byte("section: "), []byte("section: "+`"`+evil+`" # `))
	matrixFile := writeFile(t, "matrix.yaml", string(m))
	site, err := os.ReadFile("../../pcaps/demo-site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	siteFile := writeFile(t, "site.yaml", strings.Replace(string(site), "ports: [3389]}", `ports: [3389], description: "`+evil+`"}`, 1))
	capture, err := os.ReadFile("../../pcaps/demo-site.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	// A file name cannot hold a slash: an element that needs no end tag.
	captureFile := writeFile(t, `"><img src=x onerror=alert(1)>.pcapng`, string(capture))
	page, stderr, status := tpwatch(t, "replay", "--format", "html", "--matrix", matrixFile, "--config", siteFile, captureFile)
	if status > 1 {
		t.Fatalf("status %d: %s", status, stderr)
	}
	if err := htmlcheck.Check([]byte(page)); err != nil {
		t.Error(err)
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "<img") {
		t.Error("markup from the input reached the page as markup")
	}
	if !strings.Contains(page, "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;.pcapng") {
		t.Error("the file name is not shown as text")
	}
	if n := strings.Count(page, "&lt;script&gt;alert(1)&lt;/script&gt;"); n < 20 {
		t.Errorf("the markup is shown as text %d times, want it in every description, section and the file name", n)
	}
}
