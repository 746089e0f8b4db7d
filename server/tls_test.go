package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSelfSigned(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	cfg, err := SelfSigned([]string{"updates.example.test:8443", "10.1.2.3", "[fe80::1]:443", "0.0.0.0:8443"}, caFile)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("no CA in file")
	}
	leaf := cfg.Certificates[0].Leaf
	if cfg.MinVersion < 0x0303 {
		t.Errorf("MinVersion %x", cfg.MinVersion)
	}
	for _, host := range []string{"127.0.0.1", "::1", "localhost", "updates.example.test", "10.1.2.3", "fe80::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	for _, host := range []string{"other.example.test", "10.1.2.4", "0.0.0.0"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool}); err == nil {
			t.Errorf("%s verified", host)
		}
	}
	if leaf.IsCA || leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("leaf IsCA=%v alg=%v", leaf.IsCA, leaf.PublicKeyAlgorithm)
	}
	// Another call makes another CA: the first one's file does not verify it.
	cfg2, err := SelfSigned(nil, filepath.Join(t.TempDir(), "ca2.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg2.Certificates[0].Leaf.Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: pool}); err == nil {
		t.Error("second certificate verifies under the first CA")
	}
	if _, err := SelfSigned(nil, filepath.Join(t.TempDir(), "missing", "ca.pem")); err == nil {
		t.Error("unwritable CA file accepted")
	}
}

func TestLoadKeyPair(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, notAfter time.Time) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
			NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter,
			DNSNames: []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalPKCS8PrivateKey(key)
		c, k := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		os.WriteFile(c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
		os.WriteFile(k, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
		return c, k
	}
	c, k := write("good", time.Now().Add(24*time.Hour))
	cfg, err := LoadKeyPair(c, k)
	if err != nil || len(cfg.Certificates) != 1 || cfg.MinVersion < 0x0303 {
		t.Fatalf("good: %v", err)
	}
	c, k = write("expired", time.Now().Add(-time.Hour))
	if _, err := LoadKeyPair(c, k); err == nil {
		t.Error("expired certificate accepted")
	}
	if _, err := LoadKeyPair(c, filepath.Join(dir, "none.key")); err == nil {
		t.Error("missing key accepted")
	}
}
