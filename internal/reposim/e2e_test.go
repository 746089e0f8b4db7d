package reposim_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/internal/reposim"
	"github.com/ferry-updates/ferry/trust"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// release adds hello 1.0.0 for linux/amd64 to role, as package repo signs
// it.
func release(r *reposim.Repo, role string) {
	custom := map[string]any{"ferry": map[string]any{
		"app": "hello", "version": "1.0.0", "platform": "linux/amd64", "kind": "binary"}}
	r.AddTarget(role, "hello/1.0.0/linux-amd64/hello", []byte("hello, world"), custom)
}

// check serves r over HTTPS on 127.0.0.1 and runs the real client's Check
// against it.
func check(t *testing.T, r *reposim.Repo) (*client.Release, error) {
	t.Helper()
	srv := httptest.NewTLSServer(r.Handler())
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	var logs strings.Builder
	c, err := client.New(client.Config{
		URLs: []string{srv.URL}, TrustedRoot: r.RootBytes(1), StateDir: t.TempDir(),
		App: "hello", Platform: "linux/amd64", RootCAs: pool,
		Now: func() time.Time { return t0.Add(time.Hour) },
		Log: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("client log:\n%s", logs.String())
		}
	})
	return c.Check(context.Background())
}

// R28: a mirror that answers 403 for missing objects (S3-style), including
// the probe for the next root, serves the client like one answering 404.
func TestClientMirrorForbidden_R28(t *testing.T) {
	r := reposim.New(t0)
	r.MissingStatus = 403
	release(r, "targets")
	r.Publish()
	rel, err := check(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if rel == nil || rel.Version != "1.0.0" {
		t.Fatalf("got %v, want hello 1.0.0", rel)
	}
	if r.Fetches("2.root.json") == 0 {
		t.Fatal("the next root was never probed")
	}
}

// R24: a delegated role name with "/" and "%" is escaped once, by trust,
// and reaches the mirror as one path segment through the real client's
// Source (never escaped twice, never split into directories).
func TestClientOddRoleName_R24(t *testing.T) {
	for _, role := range []string{"odd/ro%le", "a b?c#d", "..", "ümlaut@x:y"} {
		t.Run(role, func(t *testing.T) {
			r := reposim.New(t0)
			r.Delegate("targets", role, []string{"hello/*/*/*"}, true)
			release(r, role)
			r.Publish()
			rel, err := check(t, r)
			if err != nil {
				t.Fatal(err)
			}
			if rel == nil || rel.Version != "1.0.0" {
				t.Fatalf("got %v, want hello 1.0.0 from role %q", rel, role)
			}
			file, err := trust.RoleFileName(role)
			if err != nil {
				t.Fatal(err)
			}
			if n := r.Fetches("1." + file); n != 1 {
				t.Fatalf("fetches of 1.%s: %d; all: %v", file, n, r.FetchLog())
			}
		})
	}
}

// R11 within one Check: the first mirror serves a new timestamp and a
// broken snapshot (the timestamp is persisted, the client reloads its trust
// state from the store), the second the signed snapshot that rolls targets
// back. The reloaded state must still reject the rollback.
func TestClientTwoStepRollback_R11(t *testing.T) {
	r := reposim.New(t0)
	release(r, "targets")
	oldTargets := *r.Snapshot().Signed.Meta["targets.json"]
	r.MarkDirty("targets")
	r.Publish() // targets v2

	var broken atomic.Value // the snapshot file name mirror 1 breaks
	broken.Store("")
	h := r.Handler()
	srv1 := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if name := broken.Load().(string); name != "" && req.URL.Path == "/metadata/"+name {
			w.Write([]byte(`{"signed": {}, "signatures": []}`))
			return
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv1.Close)
	srv2 := httptest.NewTLSServer(h)
	t.Cleanup(srv2.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv1.Certificate())
	pool.AddCert(srv2.Certificate())
	c, err := client.New(client.Config{
		URLs: []string{srv1.URL, srv2.URL}, TrustedRoot: r.RootBytes(1), StateDir: t.TempDir(),
		App: "hello", Platform: "linux/amd64", RootCAs: pool,
		Now: func() time.Time { return t0.Add(time.Hour) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(context.Background()); err != nil {
		t.Fatal(err)
	}

	r.Snapshot().Signed.Meta["targets.json"] = &oldTargets
	r.Publish()
	broken.Store(fmt.Sprintf("%d.snapshot.json", r.Snapshot().Signed.Version))
	_, err = c.Check(context.Background())
	if !errors.Is(err, trust.ErrRollback) {
		t.Fatalf("got %v, want a rollback rejected by the second mirror", err)
	}
}
