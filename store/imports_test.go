package store

import (
	"os/exec"
	"strings"
	"testing"
)

// The client library never pulls in the server's state or its databases.
func TestClientDoesNotImportStore(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/ferry-updates/ferry/client").Output()
	if err != nil {
		t.Fatalf("go list -deps client: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/ferry-updates/ferry/store" || strings.HasPrefix(dep, "modernc.org/") || strings.HasPrefix(dep, "github.com/jackc/") {
			t.Errorf("the client library imports %s", dep)
		}
	}
}
