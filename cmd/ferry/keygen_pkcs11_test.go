//go:build pkcs11

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/internal/softhsm"
	"github.com/ferry-updates/ferry/keys"
)

// TestKeyGeneratePKCS11 creates a key in SoftHSM2 with ferry key generate
// --pkcs11, then reads it back with ferry key public: both print the key
// ID of the .pub, and a second generate on the same object is refused.
func TestKeyGeneratePKCS11(t *testing.T) {
	softhsm.Token(t)
	defer softhsm.Cleanup()
	dir := t.TempDir()
	uri := softhsm.URI("cli-root")
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
		code := e.run(context.Background(), args)
		return code, stdout.String(), stderr.String()
	}
	code, out, errs := run("key", "generate", "--out", filepath.Join(dir, "hsm"), "--pkcs11", uri)
	if code != 0 {
		t.Fatalf("generate: exit %d: %s", code, errs)
	}
	pub, err := keys.ReadPublic(filepath.Join(dir, "hsm.pub"))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := pub.ID()
	if strings.TrimSpace(out) != id || pub.Type != "ecdsa" {
		t.Fatalf("printed %q, .pub holds %s key %s", out, pub.Type, id)
	}
	if _, err := os.Stat(filepath.Join(dir, "hsm")); err == nil {
		t.Fatal("a private key file was written for an HSM key")
	}
	code, out, errs = run("key", "public", "--out", filepath.Join(dir, "again.pub"), uri)
	if code != 0 || strings.TrimSpace(out) != id {
		t.Fatalf("key public: exit %d, %q, %s", code, out, errs)
	}
	code, _, errs = run("key", "generate", "--out", filepath.Join(dir, "hsm2"), "--pkcs11", uri)
	if code != 1 || !strings.Contains(errs, "already holds a key pair") {
		t.Fatalf("second generate: exit %d: %s", code, errs)
	}
}
