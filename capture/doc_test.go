package capture

import (
	"go/parser"
	"go/token"
	"strings"
	"testing"
)

func TestPackageHasDocComment(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "doc.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	if f.Doc == nil || !strings.HasPrefix(f.Doc.Text(), "Package capture ") {
		t.Error("doc.go has no package comment starting with \"Package capture \"")
	}
}
