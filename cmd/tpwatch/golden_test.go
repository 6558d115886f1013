package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// goldenFields are the fields the generator of pcaps/ states for each flow;
// the rest (timestamps, counters, history) are checked by the classifier's
// own tests.
var goldenFields = []string{"transport", "src_ip", "src_port", "dst_ip", "dst_port", "rule", "verdict", "reason", "conn_state", "icmp_type", "icmp_code"}

func flowKey(f map[string]any) string {
	return fmt.Sprintf("%v %v:%v > %v:%v", f["transport"], f["src_ip"], f["src_port"], f["dst_ip"], f["dst_port"])
}

func project(f map[string]any) string {
	var b strings.Builder
	for _, k := range goldenFields {
		v, ok := f[k]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "%s=%v ", k, v)
	}
	return strings.TrimSpace(b.String())
}

// TestGoldenCaptures replays every committed capture of pcaps/ and compares
// each flow's verdict with what the generator meant it to be. The expected
// files come from the scenario definitions, not from running tpwatch.
func TestGoldenCaptures(t *testing.T) {
	expected, err := filepath.Glob("../../pcaps/*.expected.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	if len(expected) == 0 {
		t.Fatal("no pcaps/*.expected.ndjson: the test captures are missing")
	}
	for _, exp := range expected {
		capFile := strings.TrimSuffix(exp, ".expected.ndjson")
		t.Run(filepath.Base(capFile), func(t *testing.T) {
			args := []string{"replay", "--format", "json", "--all"}
			cfg := strings.TrimSuffix(capFile, filepath.Ext(capFile)) + ".yaml"
			if _, err := os.Stat(cfg); err == nil {
				args = append(args, "--config", cfg)
			}
			out, stderr, status := tpwatch(t, append(args, capFile)...)
			if status == exitError {
				t.Fatalf("replay failed: %s", stderr)
			}
			want, err := os.ReadFile(exp)
			if err != nil {
				t.Fatal(err)
			}
			wantFlows := parseNDJSON(t, string(want))
			gotFlows := parseNDJSON(t, out)
			got := map[string][]string{}
			for _, f := range gotFlows {
				got[flowKey(f)] = append(got[flowKey(f)], project(f))
			}
			var problems []string
			for _, f := range wantFlows {
				k := flowKey(f)
				w := project(f)
				g := got[k]
				if len(g) == 0 {
					problems = append(problems, "missing   "+w)
					continue
				}
				if g[0] != w {
					problems = append(problems, "want      "+w+"\n  got       "+g[0])
				}
				got[k] = g[1:]
			}
			for _, rest := range got {
				for _, g := range rest {
					problems = append(problems, "unplanned "+g)
				}
			}
			sort.Strings(problems)
			for _, p := range problems {
				t.Error(p)
			}
			if len(problems) == 0 {
				t.Logf("%d flows as expected", len(wantFlows))
			}
		})
	}
}
