package server

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientLibraryHasNoPrometheus: the Prometheus client stays in the
// server; no package an application embeds pulls it in.
func TestClientLibraryHasNoPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	pkgs := []string{"client", "trust", "fetch", "install", "release", "rollout", "event"}
	args := []string{"list", "-deps"}
	for _, p := range pkgs {
		args = append(args, "github.com/ferry-updates/ferry/"+p)
	}
	out, err := exec.Command(goTool, args...).Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/prometheus/") || dep == "github.com/ferry-updates/ferry/server" {
			t.Errorf("the client library (%s) imports %s", strings.Join(pkgs, ", "), dep)
		}
	}
}
