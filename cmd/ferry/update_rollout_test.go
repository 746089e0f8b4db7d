package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/internal/reposim"
	"github.com/ferry-updates/ferry/rollout"
)

// rolloutRepo serves, over TLS on 127.0.0.1, a repository the test signs:
// hello 1.0.0 and 1.1.0 for this platform, and a rollout decision that
// promotes 1.1.0 to channel beta only. It returns the URL, and the
// trusted root and CA files in dir.
func rolloutRepo(t *testing.T, dir string) string {
	t.Helper()
	r := reposim.New(time.Now())
	r.Delegate("targets", "hello", []string{"hello/*/*/*"}, true)
	r.Delegate("targets", rollout.RoleName, []string{rollout.PathPattern}, true)
	platform := runtime.GOOS + "/" + runtime.GOARCH
	var mu sync.Mutex
	files := map[string][]byte{}
	for _, v := range []string{"1.0.0", "1.1.0"} {
		b := []byte("#!/bin/sh\necho hello " + v + "\n")
		sum := sha256.Sum256(b)
		p := "hello/" + v + "/" + strings.Replace(platform, "/", "-", 1) + "/hello"
		r.AddTarget("hello", p, b, map[string]any{"ferry": map[string]any{"app": "hello", "version": v, "platform": platform,
			"kind": "binary", "files": map[string]any{"hello": hex.EncodeToString(sum[:])}}})
		d, f := path.Split(p)
		files["/targets/"+d+hex.EncodeToString(sum[:])+"."+f] = b
	}
	d := &rollout.Doc{App: "hello", Releases: map[string]rollout.Entry{
		"1.1.0": {Channel: "beta", BasisPoints: rollout.Full, State: rollout.Active, Salt: rollout.NewSalt()}}}
	custom, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tf := r.AddTarget(rollout.RoleName, rollout.DocPath("hello"), custom, nil)
	raw := json.RawMessage(custom)
	tf.Custom = &raw
	r.Publish()
	meta := r.Handler()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		b, ok := files[req.URL.Path]
		mu.Unlock()
		switch {
		case strings.HasPrefix(req.URL.Path, "/metadata/"):
			meta.ServeHTTP(w, req)
		case ok:
			w.Write(b)
		default:
			http.NotFound(w, req)
		}
	}))
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "root.json"), r.RootBytes(1), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL
}

// ferryIn runs the command in-process; it returns the exit code, stdout
// and stderr.
func ferryIn(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := e.run(ctx, args)
	return code, out.String(), errb.String()
}

// ferry update --channel: a release promoted to beta is held back from
// the default channel (the JSON says which version, why, and the
// channel) and installed on channel beta; -v prints the events.
func TestUpdateChannel(t *testing.T) {
	dir := t.TempDir()
	url := rolloutRepo(t, dir)
	base := []string{"update", "--repo", url, "--root", filepath.Join(dir, "root.json"), "--ca", filepath.Join(dir, "ca.pem"),
		"--app", "hello", "--current", "1.0.0", "--state-dir", filepath.Join(dir, "state")}

	code, out, errs := ferryIn(t, append(base, "--out", filepath.Join(dir, "bin"), "--json")...)
	var res updateResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("stable: exit %d\n%s%s", code, out, errs)
	}
	if res.Status != "up-to-date" || res.Channel != "stable" || res.Held != "1.1.0" || !strings.Contains(res.Reason, "channel beta") {
		t.Fatalf("stable: %+v", res)
	}
	code, out, errs = ferryIn(t, append(base, "--out", filepath.Join(dir, "bin"))...)
	if code != 0 || out != "hello 1.0.0 is up to date (1.1.0 is in channel beta)\n" {
		t.Fatalf("stable text: exit %d\n%q%s", code, out, errs)
	}

	code, out, errs = ferryIn(t, append(base, "--out", filepath.Join(dir, "bin"), "--channel", "beta", "--json", "-v")...)
	res = updateResult{}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("beta: exit %d\n%s%s", code, out, errs)
	}
	if res.Status != "updated" || res.Version != "1.1.0" || res.Channel != "beta" || res.Reason != "newer release" || res.Downgrade {
		t.Fatalf("beta: %+v", res)
	}
	for _, kind := range []string{"check.started", "refresh.done", "check.offered", "download.started", "download.done"} {
		if !strings.Contains(errs, "msg="+kind+" ") {
			t.Errorf("-v shows no %s event:\n%s", kind, errs)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "bin", "hello")); err != nil || !strings.Contains(string(b), "hello 1.1.0") {
		t.Errorf("bin/hello: %q %v", b, err)
	}

	code, _, errs = ferryIn(t, append(base, "--out", filepath.Join(dir, "bin"), "--channel", "Beta")...)
	if code != 1 || !strings.Contains(errs, "--channel") || !strings.Contains(errs, "ferry: hint:") {
		t.Fatalf("bad channel: exit %d, %s", code, errs)
	}
}
