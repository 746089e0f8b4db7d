package server

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestCAKeyFile(t *testing.T) {
	for in, want := range map[string]string{"ca.pem": "ca.key", "/etc/ferry/ca.pem": "/etc/ferry/ca.key", "ca.crt": "ca.crt.key"} {
		if got := CAKeyFile(in); got != want {
			t.Errorf("CAKeyFile(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCAReuse: a saved CA is loaded again (nothing rewritten), and a
// server certificate issued after the reload verifies under the CA file
// written the first time.
func TestCAReuse(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	ca, err := LoadOrCreateCA(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.New() {
		t.Fatal("first CA not new")
	}
	if _, err := os.Stat(certFile); err == nil {
		t.Fatal("LoadOrCreateCA wrote the certificate before Save")
	}
	if err := ca.Save(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(certFile)
	if fi, err := os.Stat(keyFile); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Fatalf("key file: %v %v", fi, err)
	}
	again, err := LoadOrCreateCA(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if again.New() || !bytes.Equal(again.CertPEM(), first) {
		t.Fatal("the saved CA was not reused")
	}
	cfg, err := again.ServerConfig([]string{"127.0.0.1:8443"})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(first)
	if _, err := cfg.Certificates[0].Leaf.Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: pool}); err != nil {
		t.Fatalf("certificate of the reused CA: %v", err)
	}
}

func TestCARefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	save := func(name string) (string, string) {
		ca, err := LoadOrCreateCA(filepath.Join(dir, "none.pem"), filepath.Join(dir, "none.key"))
		if err != nil {
			t.Fatal(err)
		}
		c, k := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
		if err := ca.Save(c, k); err != nil {
			t.Fatal(err)
		}
		return c, k
	}
	aCert, aKey := save("a")
	bCert, bKey := save("b")
	for name, tc := range map[string]struct{ cert, key, want string }{
		"key without certificate": {filepath.Join(dir, "missing.pem"), aKey, "restore it, or remove the key"},
		"key of another CA":       {aCert, bKey, "does not belong"},
		"not PEM":                 {bKey, bKey, "no PEM certificate"},
	} {
		if _, err := LoadOrCreateCA(tc.cert, tc.key); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", name, err, tc.want)
		}
	}
	if runtime.GOOS != "windows" {
		os.Chmod(bKey, 0o644)
		if _, err := LoadOrCreateCA(bCert, bKey); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("readable key: %v", err)
		}
	}
}
