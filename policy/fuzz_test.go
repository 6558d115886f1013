package policy

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Configs and matrices come from users, support cases and other product
// versions: whatever their bytes, parsing must answer with a value or with
// ConfigErrors that point into the file, never with a panic.

// addYAMLSeeds adds every file matching the patterns as a seed.
func addYAMLSeeds(f *testing.F, patterns ...string) {
	f.Helper()
	n := 0
	for _, pattern := range patterns {
		paths, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
			n++
		}
	}
	if n == 0 {
		f.Fatalf("no seed files match %v", patterns)
	}
}

var fuzzSeedPatterns = []string{"testdata/*.yaml", "matrix.yaml", "../pcaps/*.yaml"}

// checkConfigErrors fails unless err is a ConfigErrors naming the file, in
// which every problem found at a YAML node has a line. The few problems
// about the file as a whole (empty, no rules, a syntax error yaml.v3 could
// not place) may have none.
func checkConfigErrors(t *testing.T, err error, name string) {
	t.Helper()
	var errs ConfigErrors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, not ConfigErrors: %v", err, err)
	}
	if len(errs) == 0 {
		t.Fatalf("empty ConfigErrors")
	}
	for _, e := range errs {
		if e.File != name {
			t.Errorf("error names file %q, want %q: %v", e.File, name, e)
		}
		if e.Msg == "" {
			t.Errorf("error without a message: %+v", e)
		}
		if e.Line < 0 || e.Column < 0 || (e.Line == 0 && e.Column != 0) {
			t.Errorf("bad position %d:%d: %v", e.Line, e.Column, e)
		}
		if e.Line == 0 && !wholeFileError(e.Msg) {
			t.Errorf("error about a node has no line: %v", e)
		}
	}
}

func wholeFileError(msg string) bool {
	return strings.HasPrefix(msg, "YAML syntax: ") ||
		strings.HasPrefix(msg, "empty matrix") ||
		strings.HasPrefix(msg, "no rules")
}

func FuzzParseConfig(f *testing.F) {
	addYAMLSeeds(f, fuzzSeedPatterns...)
	m, err := DefaultMatrix()
	if err != nil {
		f.Fatal(err)
	}
	const name = "fuzz.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data, name)
		if err != nil {
			if c != nil {
				t.Errorf("both a config and an error")
			}
			checkConfigErrors(t, err, name)
			return
		}
		// A config that parsed compiles or says why not (an allow id that
		// is a matrix id); either way it does not panic.
		if _, err := Compile(m, c); err != nil && !strings.Contains(err.Error(), "compile policy") {
			t.Errorf("compile error without context: %v", err)
		}
		// --print-inventory writes configs with WriteConfig: what it
		// writes must read back to the same config.
		var buf bytes.Buffer
		if err := WriteConfig(&buf, c); err != nil {
			t.Fatalf("WriteConfig: %v", err)
		}
		back, err := ParseConfig(buf.Bytes(), "written.yaml")
		if err != nil {
			t.Fatalf("written config does not parse: %v\n%s", err, buf.Bytes())
		}
		if !reflect.DeepEqual(normalConfig(c), normalConfig(back)) {
			t.Errorf("config changed through WriteConfig:\nparsed  %+v\nwritten %+v\n%s", c, back, buf.Bytes())
		}
	})
}

// normalConfig is c with the parts WriteConfig may legitimately reorder
// sorted, so configs compare by meaning.
func normalConfig(c *Config) *Config {
	n := *c
	n.Roles = map[Role][]netip.Prefix{}
	for r, prefixes := range c.Roles {
		if len(prefixes) > 0 {
			n.Roles[r] = sortedPrefixes(prefixes)
		}
	}
	return &n
}

func FuzzParseMatrix(f *testing.F) {
	addYAMLSeeds(f, fuzzSeedPatterns...)
	const name = "fuzz-matrix.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMatrix(data, name)
		if err != nil {
			if m != nil {
				t.Errorf("both a matrix and an error")
			}
			checkConfigErrors(t, err, name)
			return
		}
		if len(m.Rules) == 0 {
			t.Fatalf("a matrix without rules and without an error")
		}
		// Every parsed matrix must compile, with and without a site
		// config: the parser is what stands between a file and the index.
		if _, err := Compile(m, nil); err != nil {
			t.Errorf("parsed matrix does not compile: %v", err)
		}
		if _, err := Compile(m, &Config{Features: map[string]bool{FeatureWMIAutoDeploy: true}}); err != nil {
			t.Errorf("parsed matrix does not compile with a config: %v", err)
		}
	})
}
