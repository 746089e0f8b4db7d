package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/guard"
	"github.com/ferry-updates/ferry/store"
)

// TestServeWithoutPassphraseSaysGuardCannotSign: ferry serve started
// without the online keys' passphrase, on a repository with a guarded
// rollout, says at start, in one line, that the rollout key cannot sign
// and what to do; it serves all the same, with ferry_guard_can_sign 0.
func TestServeWithoutPassphraseSaysGuardCannotSign(t *testing.T) {
	d := t.TempDir()
	repoDir, off := filepath.Join(d, "repo"), filepath.Join(d, "offline")
	c := &cli{t: t, env: map[string]string{envPassphrase: "pass", envInsecureWorkFactor: "8"}}
	c.ok("init", repoDir, "--offline-keys", off)
	app := filepath.Join(d, "hello")
	os.WriteFile(app, []byte("hello 1.0.0\n"), 0o644)
	c.ok("release", "publish", "--repo", repoDir, "--offline-keys", off, "--app", "hello", "--version", "1.0.0", "--platform", "linux/amd64", app)
	ctx := context.Background()
	st, err := openStore(ctx, repoDir, "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := st.PutPlan(ctx, store.RolloutPlan{App: "hello", Version: "1.0.0", Plan: guard.Plan{Budget: 500}, StageSince: now, Created: now}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	tokenFile := filepath.Join(d, "metrics.token")
	const token = "a-metrics-token-of-some-length"
	os.WriteFile(tokenFile, []byte(token+"\n"), 0o600)

	nopass := &cli{t: t, env: map[string]string{envInsecureWorkFactor: "8"}}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	urlFile, ca := filepath.Join(d, "url"), filepath.Join(d, "ca.pem")
	var errs string
	go func() {
		defer close(done)
		_, _, errs = nopass.run(sctx, "serve", "--repo", repoDir, "--addr", "127.0.0.1:0", "--self-signed", ca, "--addr-file", urlFile, "--metrics-token-file", tokenFile)
	}()
	defer func() { cancel(); <-done }()
	url := waitFile(t, urlFile, done)
	pem, _ := os.ReadFile(ca)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", url+"metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "\nferry_guard_can_sign 0\n") {
		t.Errorf("metrics lack ferry_guard_can_sign 0:\n%s", body)
	}
	cancel()
	<-done
	var line string
	for _, l := range strings.Split(errs, "\n") {
		if strings.Contains(l, "cannot sign rollout decisions") {
			line = l
		}
	}
	for _, want := range []string{"ferry: warning: ", "1 guarded rollout(s) will NOT be halted", "--passphrase-file", "FERRY_PASSPHRASE", "--online-key rollout=REF"} {
		if !strings.Contains(line, want) {
			t.Errorf("the startup line %q lacks %q; stderr:\n%s", line, want, errs)
		}
	}
	if n := strings.Count(errs, `"level":"ERROR"`); n > 1 {
		t.Errorf("%d error lines, want at most one (the halt, if any, once):\n%s", n, errs)
	}
}
