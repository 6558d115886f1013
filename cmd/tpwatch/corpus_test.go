package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/internal/testenv"
)

// TestReplayCorpus runs replay over every capture of the shared corpus
// (the tcpdump project's test captures, many malformed on purpose, and
// real protocol captures): none may crash or hang it, every exit status is
// 0, 1 or 2, and every error is one line naming the file.
func TestReplayCorpus(t *testing.T) {
	dir := testenv.Corpus(t)
	var files []string
	for _, row := range testenv.Manifest(t, dir) {
		files = append(files, filepath.Join(dir, row["path"]))
	}
	if len(files) < 1500 {
		t.Fatalf("MANIFEST lists %d files, want the whole corpus", len(files))
	}
	var ok, problems, errs int
	for _, f := range files {
		done := make(chan struct{})
		var stderr string
		var status int
		go func() {
			defer close(done)
			_, stderr, status = tpwatch(t, "replay", "--format", "json", "--all", f)
		}()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Fatalf("%s: replay still running after 60 s", f)
		}
		switch status {
		case exitOK:
			ok++
		case exitProblems:
			problems++
		case exitError:
			errs++
			base := filepath.Base(f)
			for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
				if strings.HasPrefix(line, "tpwatch: ") && !strings.Contains(line, base) {
					t.Errorf("%s: error line does not name the file: %q", f, line)
				}
			}
		default:
			t.Errorf("%s: exit status %d", f, status)
		}
		if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic:") {
			t.Errorf("%s: stack trace: %s", f, stderr)
		}
	}
	t.Logf("%d files: %d exit 0, %d exit 1 (blocked/unexpected), %d exit 2 (unreadable or partly unreadable)", len(files), ok, problems, errs)
}
