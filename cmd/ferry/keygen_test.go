package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/keys"
)

// TestKeyGenerateFiles checks what the script cannot: the private key file
// is 0600 and FILE.pub holds the public key of the key in FILE.
func TestKeyGenerateFiles(t *testing.T) {
	out := filepath.Join(t.TempDir(), "k.key")
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(k string) string {
		return map[string]string{envPassphrase: "pw", envInsecureWorkFactor: "10"}[k]
	}}
	if code := e.run(context.Background(), []string{"key", "generate", "--out", out}); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if fi, err := os.Stat(out); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Fatalf("private key file: %v, %v", fi, err)
	}
	priv, err := keys.Load(out, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := keys.NewFileSigner(priv)
	pub, err := keys.ReadPublic(out + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	wantID, _ := s.Key().ID()
	gotID, _ := pub.ID()
	if gotID != wantID || strings.TrimSpace(stdout.String()) != wantID {
		t.Fatalf("printed %q, .pub has %s, key file has %s", stdout.String(), gotID, wantID)
	}
}
