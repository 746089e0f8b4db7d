package server

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/repo"
)

// BenchmarkRemotePublish is the remote publishing path of a small file
// without the decryption of the application key (a KMS or HSM signer has
// none): fetch the role, sign the next one with one application key,
// upload it over HTTPS on 127.0.0.1, and the server's checks, target and
// metadata writes (fsynced) and snapshot and timestamp signatures.
func BenchmarkRemotePublish(b *testing.B) {
	f := adminRepo(b, func(c *AdminConfig) {
		c.TokenRate = Rate{Burst: 1 << 20, Every: time.Millisecond}
		c.IPRate = c.TokenRate
	})
	ts := httptest.NewUnstartedServer(f.handler(b))
	ts.EnableHTTP2 = true
	ts.StartTLS()
	b.Cleanup(ts.Close)
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	f.srv = &started{url: ts.URL, pool: pool, client: ts.Client()}
	c := f.client(b, f.hello)
	ctx := context.Background()
	src := writeBenchFile(b)
	for i := 0; b.Loop(); i++ {
		cur, err := c.AppRole(ctx, "hello")
		if err != nil {
			b.Fatal(err)
		}
		s, err := repo.SignRelease(ctx, []keys.Signer{f.key}, cur, repo.Batch{
			Release: repo.Release{App: "hello", Version: fmt.Sprintf("1.1.%d", i), Platform: "linux/amd64"},
			Files:   []string{src}}, repo.SignOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Publish(ctx, "hello", s); err != nil {
			b.Fatal(err)
		}
	}
}

func writeBenchFile(b *testing.B) string {
	b.Helper()
	p := b.TempDir() + "/hello"
	if err := writeFileBytes(p, []byte("#!/bin/sh\necho hello\n")); err != nil {
		b.Fatal(err)
	}
	return p
}

func writeFileBytes(p string, data []byte) error { return os.WriteFile(p, data, 0o644) }

// BenchmarkOpenAppKey is the other cost of a remote publish with a key
// file: decrypting it at the default scrypt work factor.
func BenchmarkOpenAppKey(b *testing.B) {
	priv, _ := keys.Generate()
	p := b.TempDir() + "/app.age"
	if err := keys.Save(p, priv, []byte("pass"), 0); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := keys.Load(p, []byte("pass")); err != nil {
			b.Fatal(err)
		}
	}
}
