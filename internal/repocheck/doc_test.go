package repocheck

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryPackageHasADocComment walks the module: every directory with
// Go files must have a package comment that starts "Package <name> " (a
// command's: "Command <name> "), which is what go doc and pkg.go.dev show
// first. A package added without one fails here.
func TestEveryPackageHasADocComment(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s: %v", root, err)
	}
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bench-data") {
			return filepath.SkipDir
		}
		// The package comments of the directory's files, by package name
		// (a directory may also hold a name_test package).
		docs := map[string][]string{}
		files, _ := filepath.Glob(filepath.Join(path, "*.go"))
		for _, file := range files {
			f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Errorf("%s: %v", file, err)
				continue
			}
			doc := ""
			if f.Doc != nil {
				doc = f.Doc.Text()
			}
			docs[f.Name.Name] = append(docs[f.Name.Name], doc)
		}
		for name, texts := range docs {
			if strings.HasSuffix(name, "_test") && len(docs) > 1 {
				continue // the external tests of a package that has its own comment
			}
			checked++
			want := "Package " + name + " "
			if name == "main" {
				want = "Command " + filepath.Base(path) + " "
			}
			found := false
			for _, doc := range texts {
				if strings.HasPrefix(doc, want) {
					found = true
				}
			}
			if !found {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s: package %s has no doc comment starting %q", rel, name, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Fatalf("only %d packages found under %s: the walk is broken", checked, root)
	}
}
