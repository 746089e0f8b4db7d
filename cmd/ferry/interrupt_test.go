package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/server"
)

// stallWriter passes the first n bytes of a response through, then tells
// stalled and blocks until the request is gone.
type stallWriter struct {
	http.ResponseWriter
	n       int
	ctx     context.Context
	stalled chan<- struct{}
}

func (w *stallWriter) Write(b []byte) (int, error) {
	if len(b) <= w.n {
		w.n -= len(b)
		return w.ResponseWriter.Write(b)
	}
	k, err := w.ResponseWriter.Write(b[:w.n])
	w.n = 0
	if err != nil {
		return k, err
	}
	w.ResponseWriter.(http.Flusher).Flush()
	w.stalled <- struct{}{}
	<-w.ctx.Done()
	return k, w.ctx.Err()
}

// partialSize is the size of the largest file under dir/downloads.
func partialSize(dir string) int64 {
	var n int64
	files, _ := filepath.Glob(filepath.Join(dir, "downloads", "*"))
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.Size() > n {
			n = fi.Size()
		}
	}
	return n
}

// TestInterruptedDownload: Ctrl-C (the signal context cancelled) in the
// middle of a download exits 130 with "interrupted; run again to resume",
// not an error, and the next run resumes from the bytes already fetched.
func TestInterruptedDownload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	vars := map[string]string{envPassphrase: "s3cret", envInsecureWorkFactor: "10"}
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(k string) string { return vars[k] }}
	run := func(ctx context.Context, args ...string) int {
		stdout.Reset()
		stderr.Reset()
		return e.run(ctx, args)
	}
	bg := context.Background()
	art := filepath.Join(dir, "hello")
	if err := os.WriteFile(art, bytes.Repeat([]byte("hello 1.1.0\n"), 50_000), 0o755); err != nil {
		t.Fatal(err)
	}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	repoDir := filepath.Join(dir, "repo")
	if code := run(bg, "init", repoDir); code != 0 {
		t.Fatalf("init: %d %s", code, stderr.String())
	}
	if code := run(bg, "release", "publish", "--repo", repoDir, "--app", "hello", "--version", "1.1.0", "--platform", platform, art); code != 0 {
		t.Fatalf("publish: %d %s", code, stderr.String())
	}

	h, err := server.Repository(filepath.Join(repoDir, "public"))
	if err != nil {
		t.Fatal(err)
	}
	stalled := make(chan struct{}, 1)
	var mu sync.Mutex
	stall, ranges := true, []string{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		target, s := strings.HasPrefix(r.URL.Path, "/targets/"), stall
		if target {
			ranges = append(ranges, r.Header.Get("Range"))
		}
		mu.Unlock()
		if target && s {
			w = &stallWriter{ResponseWriter: w, n: 300_000, ctx: r.Context(), stalled: stalled}
		}
		h.ServeHTTP(w, r)
	}))
	caFile := filepath.Join(dir, "ca.pem")
	if srv.TLS, err = server.SelfSigned([]string{"127.0.0.1"}, caFile); err != nil {
		t.Fatal(err)
	}
	srv.StartTLS()
	defer srv.Close()

	args := []string{"update", "--repo", srv.URL + "/", "--root", filepath.Join(repoDir, "root.json"), "--ca", caFile,
		"--app", "hello", "--current", "1.0.0", "--out", filepath.Join(dir, "bin"), "--state-dir", filepath.Join(dir, "state")}
	// Ctrl-C once the client has written part of the file: the server
	// stalls after 300,000 of its 600,000 bytes, and the client writes in
	// chunks of 256 KiB (fetch's buffer), so the first chunk shows on disk.
	ctx, cancel := context.WithCancel(bg)
	go func() {
		<-stalled
		deadline := time.Now().Add(time.Minute)
		for partialSize(filepath.Join(dir, "state")) == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	if code := run(ctx, args...); code != 130 {
		t.Fatalf("interrupted update exited %d, want 130\n%s", code, stderr.String())
	}
	if got := stderr.String(); got != "ferry: interrupted; run again to resume\n" {
		t.Errorf("stderr after interrupt:\n%s", got)
	}
	if partialSize(filepath.Join(dir, "state")) == 0 {
		t.Fatal("no partial download left to resume")
	}
	mu.Lock()
	stall = false
	mu.Unlock()
	if code := run(bg, args...); code != 0 || !strings.Contains(stdout.String(), "updated hello 1.0.0 → 1.1.0") {
		t.Fatalf("second run: %d\n%s%s", code, stdout.String(), stderr.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if last := ranges[len(ranges)-1]; !strings.HasPrefix(last, "bytes=") || strings.HasPrefix(last, "bytes=0-") {
		t.Errorf("the second run did not resume: Range headers %q", ranges)
	}
}
