package pcaps

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCommittedFilesMatchGenerator regenerates every scenario and fails
// when a committed file differs: the files must never drift from the code
// that describes them. Regenerate with
//
//	go run ./pcaps/cmd/gencaps -out pcaps/
func TestCommittedFilesMatchGenerator(t *testing.T) {
	dir := t.TempDir()
	if err := WriteAll(dir); err != nil {
		t.Fatal(err)
	}
	names, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 3*len(Scenarios()) {
		t.Fatalf("generator wrote %d files for %d scenarios", len(names), len(Scenarios()))
	}
	for _, path := range names {
		name := filepath.Base(path)
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Errorf("%s is not committed: %v (run go run ./pcaps/cmd/gencaps -out pcaps/)", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what the generator writes (run go run ./pcaps/cmd/gencaps -out pcaps/)", name)
		}
	}
}

// TestGeneratorIsDeterministic builds every scenario twice.
func TestGeneratorIsDeterministic(t *testing.T) {
	for _, s := range Scenarios() {
		a, err := s.Files()
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.Files()
		if err != nil {
			t.Fatal(err)
		}
		for name := range a {
			if !bytes.Equal(a[name], b[name]) {
				t.Errorf("%s: two builds differ", name)
			}
		}
	}
}

// TestScenarioChecksCatchMistakes breaks scenarios in ways the generator
// must refuse rather than write a wrong expectation.
func TestScenarioChecksCatchMistakes(t *testing.T) {
	breakers := map[string]func(*Scenario){
		"pending attempt whose timeout passes": func(s *Scenario) {
			s.Flows[2].At -= 40 * 1e9
		},
		"timed-out attempt the capture cuts short": func(s *Scenario) {
			s.Flows[1].At = s.Flows[0].At + 50*1e9
		},
		"same flow twice": func(s *Scenario) {
			s.Flows = append(s.Flows, s.Flows[0])
		},
		"rule on an ignored flow": func(s *Scenario) {
			s.Flows[0].Policy = Ignored
		},
		"path on a missing interface": func(s *Scenario) {
			s.Flows[0].Path.Link = 3
		},
	}
	for name, breakIt := range breakers {
		s := pending()
		breakIt(&s)
		if _, err := s.Files(); err == nil {
			t.Errorf("%s: generator accepted it", name)
		}
	}
}
