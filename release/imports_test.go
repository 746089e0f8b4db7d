package release

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestLight: the format package stays pure, so the client library that
// imports it stays light: no network, no file system, no process state.
func TestLight(t *testing.T) {
	allowed := []string{"bytes", "encoding/json", "errors", "fmt", "io", "slices", "strings", "golang.org/x/mod/semver", "github.com/ferry-updates/ferry/internal/strictjson"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !slices.Contains(allowed, path) {
				t.Errorf("%s imports %s: package release must stay pure (allowed: %v)", name, path, allowed)
			}
		}
	}
}
