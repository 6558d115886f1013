// Package testenv finds what tpwatch's tests need from outside the
// repository — the shared corpus and product document beside it, Debian
// tools such as promtool, root — and applies the project's one rule for
// them: a developer's machine without it skips the test, CI (the CI
// environment variable set) fails it, since CI must provide it.
package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// CI reports whether the tests run under CI, where nothing may be missing.
func CI() bool { return os.Getenv("CI") != "" }

// Missing skips t because of what is missing, or fails it under CI.
func Missing(t testing.TB, what string, err error) {
	t.Helper()
	if CI() {
		t.Fatalf("%s is missing, and CI must provide it: %v", what, err)
	}
	t.Skipf("%s is missing (CI unset, so skipping): %v", what, err)
}

// Need skips or fails t as Missing does unless ok.
func Need(t testing.TB, ok bool, what string) {
	t.Helper()
	if !ok {
		Missing(t, what, errors.New("not available"))
	}
}

// Root needs the test to run as root.
func Root(t testing.TB, why string) {
	t.Helper()
	Need(t, os.Geteuid() == 0, "root ("+why+")")
}

// Tool returns the path of a command, as Missing says when it is absent;
// pkg names the Debian package that provides it.
func Tool(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(t, fmt.Sprintf("%s (Debian package %s)", name, pkg), err)
	}
	return path
}

// SharedDir returns ../shared beside the repository (the directory holding
// go.mod), whether or not it exists.
func SharedDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(dir), "shared"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Shared returns the path of elem under ../shared, as Missing says when it
// is not there.
func Shared(t testing.TB, elem ...string) string {
	t.Helper()
	dir, err := SharedDir()
	if err == nil {
		dir = filepath.Join(append([]string{dir}, elem...)...)
		_, err = os.Stat(dir)
	}
	if err != nil {
		Missing(t, "../shared/"+filepath.Join(elem...), err)
	}
	return dir
}

// Corpus returns ../shared/corpus, as Missing says when its MANIFEST.tsv
// is not there.
func Corpus(t testing.TB) string {
	t.Helper()
	return filepath.Dir(Shared(t, "corpus", "MANIFEST.tsv"))
}

// Manifest reads the corpus's MANIFEST.tsv: one map from column name to
// value per capture, in file order.
func Manifest(t testing.TB, corpus string) []map[string]string {
	t.Helper()
	rows, err := ReadManifest(corpus)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// ReadManifest is Manifest for callers without a testing.TB to fail.
func ReadManifest(corpus string) ([]map[string]string, error) {
	path := filepath.Join(corpus, "MANIFEST.tsv")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var header []string
	var rows []map[string]string
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if header == nil {
			header = fields
			continue
		}
		row := make(map[string]string, len(header))
		for i, name := range header {
			if i < len(fields) {
				row[name] = fields[i]
			}
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s lists no capture", path)
	}
	return rows, nil
}
