//go:build !pkcs11

package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeyGeneratePKCS11NeedsTag: the default (cgo-free) build says how to
// get PKCS#11 support instead of failing obscurely.
func TestKeyGeneratePKCS11NeedsTag(t *testing.T) {
	out := filepath.Join(t.TempDir(), "hsm")
	var stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: new(bytes.Buffer), stderr: &stderr, getenv: func(string) string { return "" }}
	code := e.run(context.Background(), []string{"key", "generate", "--out", out, "--pkcs11", "pkcs11:token=t;object=k"})
	if code != 1 || !strings.Contains(stderr.String(), "ferry: error: this ferry was built without PKCS#11 support\nferry: hint: build it with: go build -tags pkcs11") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
}
