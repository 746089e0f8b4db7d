package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/server"
)

// fixture is a real repository published with package repo and served by
// package server over TLS on 127.0.0.1.
type fixture struct {
	t    *testing.T
	dir  string // repository directory
	rp   *repo.Repo
	srv  *httptest.Server
	root []byte // DIR/root.json
}

var passphrase = []byte("correct horse battery staple")

// newFixture initialises and serves a repository (low scrypt work factor).
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	opts := repo.InitOptions{Passphrase: passphrase, InsecureScryptWorkFactor: 10}
	if err := repo.Init(ctx, dir, opts); err != nil {
		t.Fatalf("repo.Init: %v", err)
	}
	rp, err := repo.Open(dir, passphrase)
	if err != nil {
		t.Fatalf("repo.Open: %v", err)
	}
	h, err := server.Repository(filepath.Join(dir, "public"))
	if err != nil {
		t.Fatalf("server.Repository: %v", err)
	}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	root, err := os.ReadFile(filepath.Join(dir, "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, dir: dir, rp: rp, srv: srv, root: root}
}

// publish publishes one file called name with content; it returns the
// target path.
func (f *fixture) publish(app, version, platform, name string, content []byte) string {
	f.t.Helper()
	src := filepath.Join(f.t.TempDir(), name)
	if err := os.WriteFile(src, content, 0o644); err != nil {
		f.t.Fatal(err)
	}
	rel := repo.Release{App: app, Version: version, Platform: platform, Kind: "binary"}
	if err := f.rp.Publish(context.Background(), rel, []string{src}); err != nil {
		f.t.Fatalf("publish %s %s %s: %v", app, version, platform, err)
	}
	return app + "/" + version + "/" + strings.Replace(platform, "/", "-", 1) + "/" + name
}

// targetFile is where the server's directory holds target path p.
func (f *fixture) targetFile(p string, content []byte) string {
	sum := sha256.Sum256(content)
	dir, name := filepath.Split(filepath.FromSlash(p))
	return filepath.Join(f.dir, "public", "targets", dir, hex.EncodeToString(sum[:])+"."+name)
}

// pool trusts the test server's certificate.
func (f *fixture) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(f.srv.Certificate())
	return p
}

// config is a valid client configuration for app hello on linux/amd64.
func (f *fixture) config(t *testing.T) client.Config {
	return client.Config{
		URLs:        []string{f.srv.URL},
		TrustedRoot: f.root,
		StateDir:    filepath.Join(t.TempDir(), "state"),
		App:         "hello",
		Platform:    "linux/amd64",
		RootCAs:     f.pool(),
	}
}

func (f *fixture) client(t *testing.T, edit func(*client.Config)) *client.Client {
	t.Helper()
	cfg := f.config(t)
	if edit != nil {
		edit(&cfg)
	}
	return newClient(t, cfg)
}

func newClient(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	c, err := client.New(cfg)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	return c
}

// serveTLS serves h over TLS with a certificate the fixture's pool trusts
// (httptest servers share one test certificate).
func serveTLS(t *testing.T, h http.Handler) *httptest.Server {
	s := httptest.NewTLSServer(h)
	t.Cleanup(s.Close)
	return s
}

// events collects the structured events a client logs.
type events struct{ buf bytes.Buffer }

func (e *events) logger() *slog.Logger { return slog.New(slog.NewJSONHandler(&e.buf, nil)) }

// count returns how many events called name were logged.
func (e *events) count(t *testing.T, name string) int {
	t.Helper()
	n := 0
	for _, line := range bytes.Split(bytes.TrimSpace(e.buf.Bytes()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if ev["event"] == name {
			n++
		}
	}
	return n
}

// mustFile asserts that the file at path holds want.
func mustFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %q, want %q", path, got, want)
	}
}

// mustEmpty asserts that dir does not exist or has no entries.
func mustEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("%s: want no files, have %v", dir, ents)
	}
}
