package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testRepo lays out DIR/public as package repo does, plus a secret outside
// it and traps inside it. It returns DIR.
func testRepo(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"keys/x":                                  "SECRET KEY",
		"public/metadata/1.root.json":             `{"signed":{"_type":"root"}}`,
		"public/metadata/2.snapshot.json":         `{"signed":{"_type":"snapshot"}}`,
		"public/metadata/timestamp.json":          `{"signed":{"_type":"timestamp","version":7}}`,
		"public/metadata/.timestamp.json.tmp-123": "half written",
		"public/targets/hello/1.0.0/linux-amd64/" + strings.Repeat("ab", 32) + ".hello": "hello binary bytes 0123456789",
		"public/targets/notes.txt": "not hash-prefixed",
		"public/.git/config":       "dot dir",
	}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../../keys/x", filepath.Join(dir, "public/metadata/evil.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "keys/x"), filepath.Join(dir, "public/targets/abs.bin")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// started is a Run in progress.
type started struct {
	url    string
	addr   string
	client *http.Client
	pool   *x509.CertPool
	cancel context.CancelFunc
	done   chan error
	closed chan struct{} // closed when Run has closed the listener
}

// signalListener closes closed when it is closed.
type signalListener struct {
	net.Listener
	once   sync.Once
	closed chan struct{}
}

func (l *signalListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { close(l.closed) })
	return err
}

// startRun runs h with Run and a self-signed certificate on 127.0.0.1:0.
func startRun(t *testing.T, h http.Handler, cfg Config) *started {
	t.Helper()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	tlsCfg, err := SelfSigned([]string{"127.0.0.1:0"}, caFile)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("CA file holds no certificate")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl := &signalListener{Listener: ln, closed: make(chan struct{})}
	cfg.Handler, cfg.TLS, cfg.Listener = h, tlsCfg, sl
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	listening := make(chan net.Addr, 1)
	cfg.OnListen = func(a net.Addr) { listening <- a }
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{pool: pool, cancel: cancel, done: make(chan error, 1), closed: sl.closed}
	go func() { s.done <- Run(ctx, cfg) }()
	s.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	s.addr = ln.Addr().String()
	s.url = "https://" + s.addr
	// The listener is open before Run: once OnListen has been called,
	// connections are served.
	select {
	case got := <-listening:
		if got.String() != s.addr {
			t.Fatalf("OnListen got %v, want %s", got, s.addr)
		}
	case err := <-s.done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start")
	}
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	return s
}

// rawGet sends path exactly as given on a fresh TLS connection, so that no
// client library cleans it first.
func rawGet(t *testing.T, s *started, method, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	c, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := method + " " + path + " HTTP/1.1\r\nHost: " + s.addr + "\r\nConnection: close\r\n"
	for _, h := range hdr {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func newRepoServer(t *testing.T) (*started, string) {
	t.Helper()
	dir := testRepo(t)
	h, err := Repository(filepath.Join(dir, "public"))
	if err != nil {
		t.Fatal(err)
	}
	return startRun(t, h, Config{}), dir
}

func TestRepositoryServes(t *testing.T) {
	s, _ := newRepoServer(t)
	target := "/targets/hello/1.0.0/linux-amd64/" + strings.Repeat("ab", 32) + ".hello"
	tests := []struct {
		path, ctype, cache, body string
	}{
		{"/metadata/1.root.json", "application/json", cacheImmutable, `{"signed":{"_type":"root"}}`},
		{"/metadata/2.snapshot.json", "application/json", cacheImmutable, `{"signed":{"_type":"snapshot"}}`},
		{"/metadata/timestamp.json", "application/json", "no-cache", `{"signed":{"_type":"timestamp","version":7}}`},
		{target, "application/octet-stream", cacheImmutable, "hello binary bytes 0123456789"},
		{"/targets/notes.txt", "application/octet-stream", "no-cache", "not hash-prefixed"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := s.client.Get(s.url + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(body) != tt.body {
				t.Fatalf("status %d body %q", resp.StatusCode, body)
			}
			h := resp.Header
			if h.Get("Content-Type") != tt.ctype || h.Get("Cache-Control") != tt.cache {
				t.Errorf("Content-Type %q Cache-Control %q, want %q %q", h.Get("Content-Type"), h.Get("Cache-Control"), tt.ctype, tt.cache)
			}
			if et := h.Get("ETag"); !strings.HasPrefix(et, `"`) || strings.HasPrefix(et, "W/") {
				t.Errorf("ETag %q is not strong", et)
			}
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Accept-Ranges") != "bytes" {
				t.Errorf("headers %v", h)
			}
			if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
				t.Errorf("TLS %v", resp.TLS)
			}
		})
	}
}

func TestETagConditional(t *testing.T) {
	s, dir := newRepoServer(t)
	ts := filepath.Join(dir, "public/metadata/timestamp.json")
	get := func(hdr ...string) (*http.Response, []byte) {
		return rawGet(t, s, "GET", "/metadata/timestamp.json", hdr...)
	}
	resp, body := get()
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	if resp.Header.Get("ETag") != etag {
		t.Fatalf("ETag %q, want the content hash %q", resp.Header.Get("ETag"), etag)
	}
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		t.Errorf("timestamp.json has Last-Modified %q; only its ETag may validate it", lm)
	}
	if resp, _ := get("If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT"); resp.StatusCode != 200 {
		t.Errorf("If-Modified-Since on timestamp.json: status %d", resp.StatusCode)
	}
	if resp, body := get("If-None-Match: " + etag); resp.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Fatalf("If-None-Match: status %d, %d bytes", resp.StatusCode, len(body))
	}
	if resp, _ := get(`If-None-Match: "other"`); resp.StatusCode != 200 {
		t.Fatalf("other ETag: status %d", resp.StatusCode)
	}
	// A new timestamp gets a new ETag at once.
	next := `{"signed":{"_type":"timestamp","version":8}}`
	if err := os.WriteFile(ts+".new", []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Rename(ts+".new", ts)
	resp, body = get("If-None-Match: " + etag)
	if resp.StatusCode != 200 || string(body) != next || resp.Header.Get("ETag") == etag {
		t.Fatalf("after update: status %d body %q ETag %q", resp.StatusCode, body, resp.Header.Get("ETag"))
	}
	// Targets too.
	target := "/targets/hello/1.0.0/linux-amd64/" + strings.Repeat("ab", 32) + ".hello"
	resp, _ = rawGet(t, s, "GET", target)
	if resp, _ := rawGet(t, s, "GET", target, "If-None-Match: "+resp.Header.Get("ETag")); resp.StatusCode != http.StatusNotModified {
		t.Fatalf("target If-None-Match: status %d", resp.StatusCode)
	}
}

func TestRange(t *testing.T) {
	s, _ := newRepoServer(t)
	target := "/targets/hello/1.0.0/linux-amd64/" + strings.Repeat("ab", 32) + ".hello"
	resp, body := rawGet(t, s, "GET", target, "Range: bytes=19-")
	if resp.StatusCode != http.StatusPartialContent || string(body) != "0123456789" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if cr := resp.Header.Get("Content-Range"); cr != "bytes 19-28/29" {
		t.Errorf("Content-Range %q", cr)
	}
	resp, _ = rawGet(t, s, "GET", target, "Range: bytes=100-")
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("range past the end: status %d", resp.StatusCode)
	}
	// If-Range with the current ETag honours the range; with another, the
	// whole file comes back.
	full, _ := rawGet(t, s, "GET", target)
	if resp, _ := rawGet(t, s, "GET", target, "Range: bytes=19-", "If-Range: "+full.Header.Get("ETag")); resp.StatusCode != 206 {
		t.Errorf("If-Range current: status %d", resp.StatusCode)
	}
	if resp, _ := rawGet(t, s, "GET", target, "Range: bytes=19-", `If-Range: "stale"`); resp.StatusCode != 200 {
		t.Errorf("If-Range stale: status %d", resp.StatusCode)
	}
}

func TestHead(t *testing.T) {
	s, _ := newRepoServer(t)
	resp, body := rawGet(t, s, "HEAD", "/metadata/1.root.json")
	if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != int64(len(`{"signed":{"_type":"root"}}`)) {
		t.Fatalf("HEAD: status %d, %d bytes, length %d", resp.StatusCode, len(body), resp.ContentLength)
	}
	for _, m := range []string{"POST", "PUT", "DELETE", "OPTIONS"} {
		if resp, _ := rawGet(t, s, m, "/metadata/1.root.json"); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: status %d", m, resp.StatusCode)
		}
	}
}

// TestTraversal_R24: nothing outside the public directory, no dot file, no
// directory listing, however the path is spelled.
func TestTraversal_R24(t *testing.T) {
	s, _ := newRepoServer(t)
	checkTraversal(t, s)
}

// TestTraversalOSRoot_R24 is TestTraversal_R24 through os.Root, which
// serves where openat2 is not available.
func TestTraversalOSRoot_R24(t *testing.T) {
	dir := testRepo(t)
	h, err := Repository(filepath.Join(dir, "public"))
	if err != nil {
		t.Fatal(err)
	}
	h.(*repository).beneath = nil
	checkTraversal(t, startRun(t, h, Config{}))
}

func checkTraversal(t *testing.T, s *started) {
	t.Helper()
	paths := []string{
		"/metadata/../../keys/x",
		"/metadata/../metadata/1.root.json",
		"/metadata/%2e%2e/%2e%2e/keys/x",
		"/metadata/%2E%2E/%2E%2E/keys/x",
		"/metadata/..%2f..%2fkeys%2fx",
		"/targets/%2e%2e%2f%2e%2e%2fkeys%2fx",
		"/metadata/..\\..\\keys\\x",
		"/metadata/%5c..%5c..%5ckeys%5cx",
		"/metadata//1.root.json",
		"/metadata/./1.root.json",
		"/metadata/evil.json",
		"/targets/abs.bin",
		"/metadata/.timestamp.json.tmp-123",
		"/.git/config",
		"/metadata/%2egit",
		"/metadata/",
		"/metadata",
		"/targets/hello",
		"/targets/hello/",
		"/keys/x",
		"/../keys/x",
		"/metadata/1.root.json%00",
		"/metadata/1.root.json%00.png",
		"/" + strings.Repeat("metadata/", 200) + "x",
		"/",
		"*",
	}
	for _, p := range paths {
		resp, body := rawGet(t, s, "GET", p)
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: status %d", p, resp.StatusCode)
		}
		if bytes.Contains(body, []byte("SECRET")) || bytes.Contains(body, []byte("dot dir")) ||
			bytes.Contains(body, []byte("half written")) || bytes.Contains(body, []byte("_type")) {
			t.Errorf("GET %s: body %q", p, body)
		}
	}
}

func TestServable(t *testing.T) {
	tests := map[string]bool{
		"/metadata/1.root.json": true,
		"/targets/a/b/c":        true,
		"/metadata/../x":        false,
		"/targets/a/../../x":    false,
		"/metadata/.hidden":     false,
		"/metadata/a\\b":        false,
		"/metadata/a\x00":       false,
		"/other/x":              false,
		"metadata/x":            false,
		"/metadata/":            false,
		"/metadataX/y":          false,
	}
	for p, want := range tests {
		if _, got := servable(p); got != want {
			t.Errorf("servable(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestRepositoryMissingDir(t *testing.T) {
	if _, err := Repository(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Fatal("missing directory accepted")
	}
}

func TestServerLimits(t *testing.T) {
	srv, ln, _, err := newServer(Config{Handler: http.NotFoundHandler(), TLS: selfSignedForTest(t), Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	// ReadTimeout is applied to bodies by accessLog (TestSlowBodyCut_R54).
	if srv.ReadHeaderTimeout != DefaultReadHeaderTimeout || srv.ReadTimeout != 0 ||
		srv.WriteTimeout != DefaultWriteTimeout || srv.IdleTimeout != DefaultIdleTimeout ||
		srv.MaxHeaderBytes != DefaultMaxHeaderBytes || srv.TLSConfig.MinVersion != tls.VersionTLS12 ||
		cap(ln.(*limitListener).sem) != DefaultMaxConns {
		t.Errorf("server limits: %+v", srv)
	}
	if _, _, _, err := newServer(Config{Handler: http.NotFoundHandler(), Addr: "127.0.0.1:0"}); err == nil {
		t.Error("no TLS accepted")
	}
	if _, _, _, err := newServer(Config{Handler: http.NotFoundHandler(), TLS: &tls.Config{}, Addr: "127.0.0.1:0"}); err == nil {
		t.Error("TLS without certificate accepted")
	}
	if _, _, _, err := newServer(Config{TLS: selfSignedForTest(t), Addr: "127.0.0.1:0"}); err == nil {
		t.Error("no handler accepted")
	}
}

func selfSignedForTest(t *testing.T) *tls.Config {
	t.Helper()
	c, err := SelfSigned(nil, filepath.Join(t.TempDir(), "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSlowHeaders_R54: a client that never finishes its request headers is
// disconnected after ReadHeaderTimeout.
func TestSlowHeaders_R54(t *testing.T) {
	s := startRun(t, http.NotFoundHandler(), Config{ReadHeaderTimeout: 200 * time.Millisecond})
	c, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /metadata/timestamp.json HTTP/1.1\r\nHost: x\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = io.ReadAll(c)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("connection held %v (%v)", d, err)
	}
}

func TestOldTLSRefused(t *testing.T) {
	s := startRun(t, http.NotFoundHandler(), Config{})
	_, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.pool, ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS11})
	if err == nil {
		t.Fatal("TLS 1.1 handshake succeeded")
	}
}

// TestAccessLog: a request is logged with its fields, through the
// logger (Config.Logger) or the access log's own writer (Config.AccessLog,
// what ferry serve uses).
func TestAccessLog(t *testing.T) {
	for _, viaSlog := range []bool{true, false} {
		name := map[bool]string{true: "slog", false: "lines"}[viaSlog]
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			var buf bytes.Buffer
			wrote := make(chan struct{}, 1)
			w := &lockedWriter{mu: &mu, w: &buf, wrote: wrote}
			cfg := Config{Logger: slog.New(slog.NewJSONHandler(w, nil))}
			if !viaSlog {
				cfg = Config{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), AccessLog: w}
			}
			dir := testRepo(t)
			h, _ := Repository(filepath.Join(dir, "public"))
			s := startRun(t, h, cfg)
			resp, _ := rawGet(t, s, "GET", "/metadata/1.root.json")
			if resp.StatusCode != 200 {
				t.Fatal(resp.Status)
			}
			if !viaSlog {
				// Lines wait to be written together; all are written
				// by the time Run returns.
				s.cancel()
				if err := <-s.done; err != nil {
					t.Fatal(err)
				}
				s.done <- nil // for the cleanup
				mu.Lock()
				logged := buf.String()
				mu.Unlock()
				if !strings.Contains(logged, `"path":"/metadata/1.root.json"`) {
					t.Fatalf("Run returned before writing the access log: %q", logged)
				}
			}
			// The line is logged after the response is sent: wait for it.
			var line string
			for deadline := time.After(10 * time.Second); line == ""; {
				mu.Lock()
				for _, l := range strings.Split(buf.String(), "\n") {
					if strings.Contains(l, `"path":"/metadata/1.root.json"`) {
						line = l
					}
				}
				mu.Unlock()
				if line != "" {
					break
				}
				select {
				case <-wrote:
				case <-deadline:
					t.Fatal("no access log line for the request")
				}
			}
			for _, want := range []string{`{"time":"`, `"level":"INFO"`, `"msg":"request"`, `"method":"GET"`, `"status":200`, `"bytes":27`, `"duration_ms":`, `"remote":"127.0.0.1:`, `"proto":"HTTP/1.1"}`} {
				if !strings.Contains(line, want) {
					t.Errorf("access log line %q lacks %s", line, want)
				}
			}
		})
	}
}

type lockedWriter struct {
	mu    *sync.Mutex
	w     io.Writer
	wrote chan struct{} // if set, signalled after each write
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.w.Write(p)
	if l.wrote != nil {
		select {
		case l.wrote <- struct{}{}:
		default:
		}
	}
	return n, err
}

// TestGracefulShutdown: cancelling Run's context lets a request in flight
// finish, refuses new connections, and Run returns nil.
func TestGracefulShutdown(t *testing.T) {
	inFlight, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(inFlight)
			<-release
		}
		fmt.Fprint(w, "done")
	})
	s := startRun(t, h, Config{})
	got := make(chan string, 1)
	go func() {
		resp, err := s.client.Get(s.url + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-inFlight
	s.cancel()
	<-s.closed // Shutdown closes the listener first
	if c, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
		c.Close()
		t.Error("new connection accepted during shutdown")
	}
	select {
	case err := <-s.done:
		t.Fatalf("Run returned %v before the request finished", err)
	default:
	}
	close(release)
	if b := <-got; b != "done" {
		t.Errorf("in-flight request got %q", b)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		s.done <- nil // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestShutdownTimeout(t *testing.T) {
	block, stuck := make(chan struct{}), make(chan struct{})
	defer close(block)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stuck" {
			close(stuck)
			<-block
		}
	})
	s := startRun(t, h, Config{ShutdownTimeout: 200 * time.Millisecond})
	go s.client.Get(s.url + "/stuck")
	<-stuck // the request is in flight
	s.cancel()
	select {
	case err := <-s.done:
		if err == nil {
			t.Error("Run returned nil after forcing connections closed")
		}
		s.done <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

// TestWriteTimeoutIsPerWrite: a response that keeps making progress runs
// longer than WriteTimeout; a client that stops reading is cut off.
func TestWriteTimeoutIsPerWrite(t *testing.T) {
	bigErr := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			chunk := make([]byte, 32<<10)
			for i := 0; i < 8192; i++ { // 256 MiB, far more than socket buffers
				if _, err := w.Write(chunk); err != nil {
					bigErr <- err
					return
				}
			}
			bigErr <- nil
			return
		}
		for i := 0; i < 6; i++ {
			if _, err := fmt.Fprintf(w, "chunk %d\n", i); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond) // the scenario: a slow but steady writer, 600 ms in all

		}
	})
	// MinWriteRate of 1 byte/s: this test is about stalls, not the
	// whole-response bound (TestSlowReaderCut).
	s := startRun(t, h, Config{WriteTimeout: 300 * time.Millisecond, MinWriteRate: 1})
	resp, err := s.client.Get(s.url + "/steady")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if n := strings.Count(string(b), "chunk"); n != 6 || err != nil {
		t.Errorf("steady response: %d chunks, %v", n, err)
	}

	c, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	select {
	case err := <-bigErr:
		if err == nil {
			t.Error("256 MiB written to a client that reads nothing")
		}
	case <-time.After(10 * time.Second):
		t.Error("write to a client that reads nothing did not time out")
	}
}
