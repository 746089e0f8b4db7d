package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/store"
)

// TestServeMetrics runs ferry serve with --metrics-token-file: /metrics
// over HTTPS answers 401 without the token and, with it, the rollout
// decision signed before the start and the requests served since.
func TestServeMetrics(t *testing.T) {
	d := t.TempDir()
	repoDir, off := filepath.Join(d, "repo"), filepath.Join(d, "offline")
	c := &cli{t: t, env: map[string]string{envPassphrase: "pass", envInsecureWorkFactor: "8"}}
	c.ok("init", repoDir, "--offline-keys", off)
	app := filepath.Join(d, "hello")
	os.WriteFile(app, []byte("hello 1.0.0\n"), 0o644)
	c.ok("release", "publish", "--repo", repoDir, "--offline-keys", off, "--app", "hello", "--version", "1.0.0", "--platform", "linux/amd64", app)
	c.ok("rollout", "start", "--repo", repoDir, "--app", "hello", "--version", "1.0.0", "--percent", "30")

	tokenFile := filepath.Join(d, "metrics.token")
	os.WriteFile(tokenFile, []byte("too-short\n"), 0o600)
	code, _, errs := c.run(context.Background(), "serve", "--repo", repoDir, "--addr", "127.0.0.1:0", "--self-signed", filepath.Join(d, "x.pem"), "--metrics-token-file", tokenFile)
	if code != 1 || !strings.Contains(errs, "the token must be one word of at least 16 bytes") || !strings.Contains(errs, "head -c 32 /dev/urandom") {
		t.Fatalf("serve with a short metrics token: exit %d, %s", code, errs)
	}
	const token = "a-metrics-token-of-some-length"
	os.WriteFile(tokenFile, []byte(token+"\n"), 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	urlFile, ca := filepath.Join(d, "url"), filepath.Join(d, "ca.pem")
	var out strings.Builder
	go func() {
		defer close(done)
		_, o, _ := c.run(ctx, "serve", "--repo", repoDir, "--addr", "127.0.0.1:0", "--self-signed", ca, "--addr-file", urlFile, "--metrics-token-file", tokenFile)
		out.WriteString(o)
	}()
	defer func() { cancel(); <-done }()
	url := waitFile(t, urlFile, done)
	pem, _ := os.ReadFile(ca)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest("GET", url+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("metrics", ""); code != http.StatusUnauthorized || strings.Contains(body, "ferry_") {
		t.Fatalf("metrics without the token: %d %s", code, body)
	}
	for range 2 {
		if code, _ := get("metadata/timestamp.json", ""); code != 200 {
			t.Fatalf("timestamp.json: %d", code)
		}
	}
	code, body := get("metrics", token)
	for _, want := range []string{
		"\nferry_rollout_share_ratio{app=\"hello\",channel=\"stable\",version=\"1.0.0\"} 0.3\n",
		"\nferry_rollout_state{app=\"hello\",state=\"active\",version=\"1.0.0\"} 1\n",
		"\nferry_http_requests_total{code=\"2xx\",face=\"repository\"} 2\n",
		"\nferry_http_requests_total{code=\"4xx\",face=\"metrics\"} 1\n",
		"\nferry_metadata_up 1\n",
		"\nferry_installations_stale 0\n",
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("metrics: %d, no line %q in:\n%s", code, strings.TrimSpace(want), body)
		}
	}
	cancel()
	<-done
	if !strings.Contains(out.String(), "metrics on "+url+"metrics (bearer token: "+tokenFile+")") {
		t.Errorf("serve did not say where the metrics are:\n%s", out.String())
	}
}

// TestStaleCounter counts, in a real SQLite store, the installations last
// seen longer ago than --stale-after.
func TestStaleCounter(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := st.CreateToken(ctx, store.Token{ID: "tok", Kind: store.Enroll, Scope: "*", Hash: strings.Repeat("ab", 32), Created: t0}); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"a", "b", "c"} {
		in := store.Installation{ID: id, CredentialHash: strings.Repeat(string(rune('0'+i)), 64), Enrolled: t0}
		if err := st.Enroll(ctx, in, strings.Repeat("ab", 32)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Seen(ctx, "c", t0.Add(47*time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	// The gauge counts in the database: a listing of the rows at every
	// scrape costs memory and time in the size of the fleet, and stopped
	// at store.MaxLimit.
	st = noListing{Store: st, t: t}
	count := staleCounter(st, 24*time.Hour, func() time.Time { return t0.Add(48 * time.Hour) })
	if n, err := count(ctx); n != 2 || err != nil {
		t.Fatalf("stale installations: %d, %v; want 2 (a and b, not c seen an hour ago)", n, err)
	}
	count = staleCounter(st, 24*time.Hour, func() time.Time { return t0.Add(12 * time.Hour) })
	if n, err := count(ctx); n != 0 || err != nil {
		t.Fatalf("stale installations 12 h after enrolling: %d, %v; want 0", n, err)
	}
}

// noListing is a store whose ListInstallations fails the test.
type noListing struct {
	store.Store
	t *testing.T
}

func (n noListing) ListInstallations(context.Context, store.InstallationQuery) ([]store.Installation, error) {
	n.t.Error("the stale gauge listed the installations instead of counting them")
	return nil, errors.New("listing refused by the test")
}
