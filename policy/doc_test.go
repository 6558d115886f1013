package policy

import (
	"go/parser"
	"go/token"
	"strings"
	"testing"
)

// TestPackageDoc fails when the package loses its doc comment.
func TestPackageDoc(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "doc.go", nil, parser.PackageClauseOnly|parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	if f.Doc == nil || !strings.HasPrefix(f.Doc.Text(), "Package policy holds the Threat Prevention port matrix as data") {
		t.Errorf("doc.go has no package comment starting %q", "Package policy holds ...")
	}
}
