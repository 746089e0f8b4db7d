package client_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/install"
	"github.com/ferry-updates/ferry/internal/reposim"
)

var simT0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// sim is a simulated repository that signs whatever it is given (even what
// package repo would refuse), served over HTTPS on 127.0.0.1 with its
// target files.
type sim struct {
	*reposim.Repo
	mu    sync.Mutex
	files map[string][]byte // served path under /targets/ → bytes
	srv   string
	pool  *x509.CertPool
}

func newSim(t *testing.T) *sim {
	s := &sim{Repo: reposim.New(simT0), files: map[string][]byte{}}
	s.Delegate("targets", "hello", []string{"hello/*/*/*"}, true)
	mux := http.NewServeMux()
	mux.Handle("/metadata/", s.Handler())
	mux.HandleFunc("/targets/", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		b, ok := s.files[strings.TrimPrefix(r.URL.Path, "/targets/")]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	})
	srv := serveTLS(t, mux)
	s.srv, s.pool = srv.URL, x509.NewCertPool()
	s.pool.AddCert(srv.Certificate())
	return s
}

// add signs body as hello VERSION for linux/amd64 in the hello role, with
// the custom metadata package repo would write, and serves it.
func (s *sim) add(version string, body []byte) {
	p := "hello/" + version + "/linux-amd64/hello"
	s.AddTarget("hello", p, body, map[string]any{"ferry": map[string]any{
		"app": "hello", "version": version, "platform": "linux/amd64", "kind": "binary"}})
	sum := sha256.Sum256(body)
	dir, file := path.Split(p)
	s.mu.Lock()
	s.files[dir+hex.EncodeToString(sum[:])+"."+file] = body
	s.mu.Unlock()
	s.Publish()
}

func (s *sim) config(t *testing.T, ev *events) client.Config {
	return client.Config{
		URLs: []string{s.srv}, TrustedRoot: s.RootBytes(1), StateDir: filepath.Join(t.TempDir(), "state"),
		App: "hello", Platform: "linux/amd64", RootCAs: s.pool,
		Now: func() time.Time { return simT0.Add(time.Hour) }, Log: ev.logger(),
	}
}

// TestBadVersionRebuild_R44: 1.1.0 fails its health check and is marked
// bad; the same release signed again as 1.1.0+rebuild (build metadata,
// which semver ignores when ordering) is not a version: it is refused with
// a logged reason, never offered, downloaded or installed.
func TestBadVersionRebuild_R44(t *testing.T) {
	needShell(t)
	ctx := context.Background()
	s := newSim(t)
	v1, broken := script("1.0.0", healthy), script("1.1.0", unhealthy)
	s.add("1.0.0", v1)
	s.add("1.1.0", broken)
	target := filepath.Join(t.TempDir(), "hello")
	inst := binary(t, target)
	os.WriteFile(target, v1, 0o755)
	if _, err := inst.Apply(ctx, artifactFor(t, "1.0.0", v1)); err != nil {
		t.Fatal(err)
	}
	var ev events
	out, err := newClient(t, s.config(t, &ev)).Update(ctx, inst)
	if !errors.Is(err, install.ErrRolledBack) || out.Release == nil || out.Release.Version != "1.1.0" {
		t.Fatalf("first update: %+v, %v; want 1.1.0 rolled back", out, err)
	}

	s.add("1.1.0+rebuild", broken)
	rec := &recorder{next: inst}
	ev = events{}
	out, err = newClient(t, s.config(t, &ev)).Update(ctx, rec)
	if err != nil || out.Release != nil || len(rec.applied) != 0 {
		t.Fatalf("after 1.1.0+rebuild was signed: %+v, %v, %d applied; want nothing offered", out, err, len(rec.applied))
	}
	mustFile(t, target, v1)
	if n := ev.count(t, "release.refused"); n != 1 || !strings.Contains(ev.buf.String(), "+build") {
		t.Errorf("%d release.refused events, want 1 naming +build:\n%s", n, ev.buf.String())
	}
	cfg := s.config(t, &ev)
	cfg.Installed = "1.0.0"
	if rel, err := newClient(t, cfg).Check(ctx); err != nil || rel == nil || rel.Version != "1.1.0" {
		t.Fatalf("Check = %v, %v; want 1.1.0 (the installer knows it is bad; 1.1.0+rebuild is no version)", rel, err)
	}
}

// TestCurrentVersionGrammar_R49: the installed version is a version of
// the one grammar, or the configuration is refused: no "v", no short
// forms, no build metadata.
func TestCurrentVersionGrammar_R49(t *testing.T) {
	f := newFixture(t)
	for _, v := range []string{"v1", "1.0", "1.0.0+x", "v1.0.0", "1", "latest", " 1.0.0"} {
		cfg := f.config(t)
		cfg.Installed = v
		_, err := client.New(cfg)
		if err == nil || !strings.Contains(err.Error(), "installed invalid version") || !strings.Contains(err.Error(), v) {
			t.Errorf("Installed %q: New = %v, want an invalid version error naming it", v, err)
		}
		if _, err := client.SelfUpdate(context.Background(), cfg, client.SelfUpdateOptions{}); err == nil {
			t.Errorf("Installed %q: SelfUpdate accepted it", v)
		}
	}
	cfg := f.config(t)
	cfg.Installed = "1.0.0-rc.1"
	if _, err := client.New(cfg); err != nil {
		t.Errorf("Installed 1.0.0-rc.1: %v", err)
	}
}
