// Package softhsm sets up a SoftHSM2 token for tests of PKCS#11 signing:
// a private SOFTHSM2_CONF pointing at a temporary token directory, and one
// initialised token. SoftHSM2 reads SOFTHSM2_CONF once, when the module is
// first initialised, and crypto11 keeps the module initialised for the
// life of the process, so there is one token per test process; tests keep
// their keys apart by label.
package softhsm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Module is the SoftHSM2 PKCS#11 library as Debian installs it.
const Module = "/usr/lib/softhsm/libsofthsm2.so"

// Label and PIN are the test token's label and user PIN.
const (
	Label = "ferry-test"
	PIN   = "1234"
)

var (
	once    sync.Once
	dir     string
	initErr error
)

// Token makes sure the test token exists, or skips t when SoftHSM2 is not
// installed. It sets SOFTHSM2_CONF for the whole process.
func Token(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(Module); err != nil {
		t.Skipf("SoftHSM2 is not installed (%s missing): apt-get install -y softhsm2 opensc (.ci/run does)", Module)
	}
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		t.Skip("softhsm2-util is not on PATH: apt-get install -y softhsm2 (.ci/run does)")
	}
	once.Do(setup)
	if initErr != nil {
		t.Fatal(initErr)
	}
}

func setup() {
	d, err := os.MkdirTemp("", "ferry-softhsm-")
	if err != nil {
		initErr = err
		return
	}
	dir = d
	tokens := filepath.Join(d, "tokens")
	conf := filepath.Join(d, "softhsm2.conf")
	text := "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\n"
	if err := os.Mkdir(tokens, 0o700); err != nil {
		initErr = err
		return
	}
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		initErr = err
		return
	}
	os.Setenv("SOFTHSM2_CONF", conf)
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", Label, "--pin", PIN, "--so-pin", "5678").CombinedOutput()
	if err != nil {
		initErr = fmt.Errorf("softhsm2-util --init-token: %v: %s", err, out)
	}
}

// URI returns a pkcs11: URI for the key labelled object in the test token.
func URI(object string) string {
	return "pkcs11:token=" + Label + ";object=" + object + "?module-path=" + Module + "&pin-value=" + PIN
}

// Cleanup removes the token directory; call it from TestMain after m.Run.
func Cleanup() {
	if dir != "" {
		os.RemoveAll(dir)
	}
}
