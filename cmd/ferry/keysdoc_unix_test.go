//go:build unix

package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestKeysRunbook_R59 runs the lost-key runbook of docs/keys.md as it is
// written, right after the first ceremony and nothing else: a root holder
// loses their key and the remaining two replace it, then the timestamp and
// an application key are lost and replaced, and a client shipped with the
// first root follows every change and takes the next release. TestDocs
// runs the whole page.
func TestKeysRunbook_R59(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ferry and runs the documented commands")
	}
	if runtime.GOOS+"/"+runtime.GOARCH != "linux/amd64" {
		t.Skip("the commands of docs/keys.md are written for linux/amd64")
	}
	root := moduleRoot(t)
	md, err := os.ReadFile(filepath.Join(root, "docs", "keys.md"))
	if err != nil {
		t.Fatal(err)
	}
	script, err := docScript(string(md), []string{"A first ceremony for three root holders", "A lost key"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"rm ./bob/root.key", "--remove-key \"$LOST\"", "rm ./repo/keys/timestamp.age"} {
		if !strings.Contains(script, want) {
			t.Fatalf("the runbook no longer contains %q", want)
		}
	}
	// The lost key is no root key any more, Bob's new one is.
	check := "\n./ferry key list --repo ./repo | grep -q \"$BOB\"\n" +
		"if ./ferry key list --repo ./repo | grep -q \"$LOST\"; then echo the lost key is still listed; exit 1; fi\n"
	runDocScript(t, root, script+check)
}
