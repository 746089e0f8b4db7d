//go:build pkcs11 && unix

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ferry-updates/ferry/internal/softhsm"
)

// TestDocsPKCS11 runs the SoftHSM2 walkthrough of docs/signers.md as
// written (see doc_test.go), in the pkcs11 build only: it builds ferry with
// -tags pkcs11 and needs softhsm2-util and pkcs11-tool.
func TestDocsPKCS11(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ferry and runs the documented commands")
	}
	if _, err := os.Stat(softhsm.Module); err != nil {
		t.Skipf("SoftHSM2 is not installed (%s missing): apt-get install -y softhsm2 opensc (.ci/run does)", softhsm.Module)
	}
	for _, tool := range []string{"softhsm2-util", "pkcs11-tool", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not on PATH", tool)
		}
	}
	if runtime.GOOS+"/"+runtime.GOARCH != "linux/amd64" {
		t.Skip("the commands of docs/signers.md publish for linux/amd64")
	}
	root := moduleRoot(t)
	md, err := os.ReadFile(filepath.Join(root, "docs", "signers.md"))
	if err != nil {
		t.Fatal(err)
	}
	script, err := docScript(string(md), []string{"PKCS#11 (HSMs, smart cards, SoftHSM2)"})
	if err != nil {
		t.Fatal(err)
	}
	runDocScript(t, root, script)
}
