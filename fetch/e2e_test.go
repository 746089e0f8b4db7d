package fetch_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/fetch"
	"github.com/ferry-updates/ferry/server"
)

// serveRepo runs server.Run with a self-signed CA over a public directory
// holding the given files, and returns its base URL and a CA pool.
func serveRepo(t testing.TB, files map[string][]byte) (string, *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	for name, b := range files {
		p := filepath.Join(dir, "public", filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h, err := server.Repository(filepath.Join(dir, "public"))
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	tlsCfg, err := server.SelfSigned([]string{"127.0.0.1"}, caFile)
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(caFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{Handler: h, TLS: tlsCfg, Listener: ln, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return "https://" + ln.Addr().String(), pool
}

// TestWithFerryServer_R34: fetch against ferry's own server (HTTP/2, TLS
// from SelfSigned): metadata, a full target, a resumed target, and a
// tampered partial file.
func TestWithFerryServer_R34(t *testing.T) {
	body := bytes.Repeat([]byte("ferry artifact "), 100000)
	sum := sha256.Sum256(body)
	target := fmt.Sprintf("targets/hello/1.0.0/linux-amd64/%x.hello", sum)
	base, pool := serveRepo(t, map[string][]byte{
		"metadata/timestamp.json": []byte(`{"signed":{}}`),
		target:                    body,
	})
	f, err := fetch.New(fetch.Options{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if b, err := f.Bytes(ctx, base+"/metadata/timestamp.json", 1000); err != nil || string(b) != `{"signed":{}}` {
		t.Fatalf("Bytes: %q, %v", b, err)
	}
	if _, err := f.Bytes(ctx, base+"/metadata/1.root.json", 1000); !errors.Is(err, fetch.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	want := fetch.Want{Length: int64(len(body)), Hashes: map[string][]byte{"sha256": sum[:]}}
	for _, partial := range []int{0, 12345, len(body) - 1} {
		for _, tamper := range []bool{false, true} {
			if tamper && partial == 0 {
				continue
			}
			path := filepath.Join(t.TempDir(), "hello")
			if partial > 0 {
				p := bytes.Clone(body[:partial])
				if tamper {
					p[0] ^= 1
				}
				os.WriteFile(path, p, 0o600)
			}
			err := f.File(ctx, base+"/"+target, path, want, nil)
			if tamper {
				if !errors.Is(err, fetch.ErrMismatch) {
					t.Errorf("partial %d tampered: %v", partial, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("partial %d: %v", partial, err)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, body) {
				t.Fatalf("partial %d: content differs", partial)
			}
		}
	}
}

// BenchmarkFileLoopback measures File over HTTPS on loopback against
// ferry's server (download, hash, write).
func BenchmarkFileLoopback(b *testing.B) {
	body := make([]byte, 64<<20)
	for i := range body {
		body[i] = byte(i * 31)
	}
	sum := sha256.Sum256(body)
	base, pool := serveRepo(b, map[string][]byte{"targets/big": body})
	f, _ := fetch.New(fetch.Options{RootCAs: pool, Timeout: time.Minute})
	want := fetch.Want{Length: int64(len(body)), Hashes: map[string][]byte{"sha256": sum[:]}}
	dir := b.TempDir()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		path := filepath.Join(dir, "big")
		os.Remove(path)
		if err := f.File(context.Background(), base+"/targets/big", path, want, nil); err != nil {
			b.Fatal(err)
		}
	}
}
