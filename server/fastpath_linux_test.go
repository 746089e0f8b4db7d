package server

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The fast path (fastpath.go) answers from the memo, which is Linux's
// (memo_linux.go): these tests are Linux's too.

// fastFixture is a repository served by Run with the fast path on, whose
// memo remembers files at once; handled counts the requests that reached
// net/http's handler (and whether each had Request.TLS).
type fastFixture struct {
	*started
	dir     string
	memo    *beneath
	handled atomic.Int64
	noTLS   atomic.Int64
}

const tsPath = "/metadata/timestamp.json"

// The fixture's other files served from memory: small immutable metadata
// and a small hash-prefixed target.
var smallPaths = []string{"/metadata/1.root.json", "/targets/hello/1.0.0/linux-amd64/" + strings.Repeat("ab", 32) + ".hello"}

func newFastFixture(t *testing.T, cfg Config) *fastFixture {
	t.Helper()
	f := &fastFixture{dir: testRepo(t)}
	h, err := Repository(filepath.Join(f.dir, "public"))
	if err != nil {
		t.Fatal(err)
	}
	b := h.(*repository).beneath
	if b == nil {
		t.Skip("no openat2 here")
	}
	b.memos.margin = 0
	f.memo = b
	cfg.Fast = h.(FastFiles)
	f.started = startRun(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.handled.Add(1)
		if r.TLS == nil {
			f.noTLS.Add(1)
		}
		h.ServeHTTP(w, r)
	}), cfg)
	// The first requests read the files and remember them.
	for _, p := range append([]string{tsPath}, smallPaths...) {
		if resp, _ := get(t, f.started, p); resp.StatusCode != 200 {
			t.Fatal(p, resp.Status)
		}
	}
	f.handled.Store(0)
	return f
}

func (f *fastFixture) dial(t *testing.T) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", f.addr, &tls.Config{RootCAs: f.pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// exchange writes reqs on a new connection (the last one should close it)
// and returns every byte the server sent until it closed.
func (f *fastFixture) exchange(t *testing.T, reqs ...string) string {
	t.Helper()
	c := f.dial(t)
	if _, err := io.WriteString(c, strings.Join(reqs, "")); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v (after %q)", err, b)
	}
	return string(b)
}

// keptAlive makes one fast-path request on c and reads its response: c
// is then a kept-alive connection, read through the reader returned.
func (f *fastFixture) keptAlive(t *testing.T, c *tls.Conn) *bufio.Reader {
	t.Helper()
	io.WriteString(c, tsRequest("GET", ""))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	return br
}

// handshaken dials and completes the TLS handshake (so that its time does
// not count), and returns the connection with a channel that receives how
// long after the handshake the server closed it (or first sent a byte).
func (f *fastFixture) handshaken(t *testing.T) (*tls.Conn, <-chan time.Duration) {
	t.Helper()
	c := f.dial(t)
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		var b [1]byte
		c.Read(b[:])
		closed <- time.Since(start)
	}()
	return c, closed
}

func tsRequest(method, hdr string) string {
	return request(method, tsPath, hdr)
}

func request(method, path, hdr string) string {
	return method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + hdr + "\r\n"
}

var dateLine = regexp.MustCompile(`(?m)^Date: [^\r]*\r$`)

// TestFastMatchesNetHTTP: the fast path sends, byte for byte but the Date,
// what net/http sends for the same GETs and HEADs (kept alive, then
// closed). net/http answers the same requests when they carry a
// Content-Length of 0, which changes nothing in its answer and makes them
// not the fast path's.
func TestFastMatchesNetHTTP(t *testing.T) {
	f := newFastFixture(t, Config{})
	for _, p := range append([]string{tsPath}, smallPaths...) {
		for _, method := range []string{"GET", "HEAD"} {
			fast := f.exchange(t, request(method, p, ""), request(method, p, "Connection: close\r\n"))
			if n := f.handled.Swap(0); n != 0 {
				t.Fatalf("%s %s: %d requests reached net/http", method, p, n)
			}
			slow := f.exchange(t, request(method, p, "Content-Length: 0\r\n"), request(method, p, "Content-Length: 0\r\nConnection: close\r\n"))
			if n := f.handled.Swap(0); n != 2 {
				t.Fatalf("%s %s: %d requests reached net/http, want 2", method, p, n)
			}
			if strings.Count(fast, "HTTP/1.1 200 OK\r\n") != 2 || !strings.Contains(fast, "Connection: close\r\n") ||
				(p != tsPath) != strings.Contains(fast, "Last-Modified: ") {
				t.Fatalf("%s %s: fast path sent %q", method, p, fast)
			}
			if got, want := dateLine.ReplaceAllString(fast, "Date: -\r"), dateLine.ReplaceAllString(slow, "Date: -\r"); got != want {
				t.Errorf("%s %s: fast path sent\n%q\nnet/http sent\n%q", method, p, got, want)
			}
		}
	}
}

// TestMemoForgetsRemoved: a remembered file that is removed is answered
// 404 (by net/http) and forgotten, its descriptor closed.
func TestMemoForgetsRemoved(t *testing.T) {
	f := newFastFixture(t, Config{})
	p := smallPaths[1]
	if err := os.Remove(filepath.Join(f.dir, "public", filepath.FromSlash(p))); err != nil {
		t.Fatal(err)
	}
	if got := f.exchange(t, request("GET", p, "Connection: close\r\n")); !strings.HasPrefix(got, "HTTP/1.1 404 ") {
		t.Fatalf("removed file: %.40q", got)
	}
	f.memo.memos.mu.Lock()
	_, kept := f.memo.memos.m[strings.TrimPrefix(p, "/")]
	f.memo.memos.mu.Unlock()
	if kept {
		t.Error("the removed file is still remembered")
	}
}

// TestFastHandsOver: a connection's first request that is not the fast
// path's goes to net/http with the bytes read, and so does every later
// one, which net/http answers with Request.TLS set.
func TestFastHandsOver(t *testing.T) {
	f := newFastFixture(t, Config{})
	got := f.exchange(t,
		tsRequest("GET", ""),
		"GET /metadata/1.root.json?v=1 HTTP/1.1\r\nHost: a\r\n\r\n", // a query: net/http's
		tsRequest("GET", ""),
		"GET /metadata/nope.json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if n, noTLS := f.handled.Load(), f.noTLS.Load(); n != 3 || noTLS != 0 {
		t.Errorf("net/http answered %d requests (%d without Request.TLS), want 3 with it", n, noTLS)
	}
	want := []string{"200 OK", `{"signed":{"_type":"timestamp","version":7}}`, "200 OK", `{"signed":{"_type":"root"}}`,
		"200 OK", `{"signed":{"_type":"timestamp","version":7}}`, "404 Not Found"}
	rest := got
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("responses lack %q in order:\n%s", w, got)
		}
		rest = rest[i+len(w):]
	}
}

// TestFastPipelined: requests sent together are answered in order, all
// by the fast path, and a request cut across writes is read whole.
func TestFastPipelined(t *testing.T) {
	f := newFastFixture(t, Config{})
	c := f.dial(t)
	all := tsRequest("GET", "") + tsRequest("HEAD", "") + tsRequest("GET", "")
	io.WriteString(c, all)
	last := tsRequest("GET", "Connection: close\r\n")
	for _, part := range []string{last[:3], last[3:20], last[20:]} {
		time.Sleep(20 * time.Millisecond)
		io.WriteString(c, part)
	}
	br := bufio.NewReader(c)
	for i, m := range []string{"GET", "HEAD", "GET", "GET"} {
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || (m == "GET") != (len(body) > 0) {
			t.Fatalf("response %d (%s): %s, %d bytes", i, m, resp.Status, len(body))
		}
	}
	if n := f.handled.Load(); n != 0 {
		t.Errorf("%d requests reached net/http", n)
	}
}

// TestFastSlowHeaders_R54: on the fast path, a request must arrive whole
// within ReadHeaderTimeout of its first byte, however steadily it
// trickles in, on a new connection as on a kept-alive one.
func TestFastSlowHeaders_R54(t *testing.T) {
	f := newFastFixture(t, Config{ReadHeaderTimeout: 300 * time.Millisecond})
	for _, keptAlive := range []bool{false, true} {
		c := f.dial(t)
		br := bufio.NewReader(c)
		if keptAlive {
			br = f.keptAlive(t, c)
		}
		start := time.Now()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // a byte every 20 ms: never finishes within 3 s
			defer wg.Done()
			req := tsRequest("GET", "X-Slow: "+strings.Repeat("a", 200)+"\r\n")
			for i := 0; i < len(req)-2; i++ {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if _, err := c.Write([]byte{req[i]}); err != nil {
					return
				}
			}
		}()
		_, err := br.ReadByte()
		d := time.Since(start)
		close(stop)
		wg.Wait()
		if err == nil || d > 2*time.Second {
			t.Errorf("kept alive %v: connection held %v (%v)", keptAlive, d, err)
		}
	}
	if n := f.handled.Load(); n != 0 {
		t.Errorf("%d requests reached net/http", n)
	}
}

// TestFastSilentConnection_R54: a connection that makes its handshake and
// then sends nothing is closed after ReadHeaderTimeout, not kept for
// IdleTimeout (which is for the wait between requests).
func TestFastSilentConnection_R54(t *testing.T) {
	f := newFastFixture(t, Config{ReadHeaderTimeout: 300 * time.Millisecond, IdleTimeout: time.Minute})
	c := f.dial(t)
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the server sent something")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("silent connection held %v", d)
	}
}

// TestFastIdleTimeout: a kept-alive connection of the fast path that sends
// nothing more is closed after about IdleTimeout.
func TestFastIdleTimeout(t *testing.T) {
	f := newFastFixture(t, Config{IdleTimeout: 400 * time.Millisecond})
	br := f.keptAlive(t, f.dial(t))
	start := time.Now()
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the server sent more")
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("idle connection closed after %v, want about 400ms", d)
	}
}

// TestFastShutdown: at shutdown the fast path's idle connections are
// closed at once (Run does not wait for them) and Run returns nil.
func TestFastShutdown(t *testing.T) {
	f := newFastFixture(t, Config{IdleTimeout: time.Minute, ShutdownTimeout: 5 * time.Second})
	br := f.keptAlive(t, f.dial(t))
	start := time.Now()
	f.cancel()
	select {
	case err := <-f.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		f.done <- nil // for the cleanup
	case <-time.After(3 * time.Second):
		t.Fatal("Run waited for an idle connection")
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("idle connection still open")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown took %v", d)
	}
}

// TestFastHTTP2: a client that negotiates HTTP/2 is net/http's.
func TestFastHTTP2(t *testing.T) {
	f := newFastFixture(t, Config{})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.pool}, ForceAttemptHTTP2: true}}
	resp, err := client.Get(f.url + tsPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || !strings.Contains(string(body), `"version":7`) {
		t.Fatalf("%s %s %q", resp.Proto, resp.Status, body)
	}
	if n := f.handled.Load(); n != 1 {
		t.Errorf("net/http answered %d requests, want 1", n)
	}
}

// TestFastLogsAndCounts: a request the fast path answers is in the access
// log (the same fields as net/http's) and in the request metrics.
func TestFastLogsAndCounts(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	m, err := NewMetrics(MetricsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	f := newFastFixture(t, Config{AccessLog: &lockedWriter{mu: &mu, w: &buf}, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Metrics: m})
	before := repositoryOK(t, m)
	f.exchange(t, tsRequest("GET", ""), tsRequest("HEAD", "Connection: close\r\n"))
	if n := f.handled.Load(); n != 0 {
		t.Fatalf("%d requests reached net/http", n)
	}
	if got := repositoryOK(t, m) - before; got != 2 {
		t.Errorf("requests counted: %v, want 2", got)
	}
	f.cancel()
	if err := <-f.done; err != nil {
		t.Fatal(err)
	}
	f.done <- nil
	mu.Lock()
	logged := buf.String()
	mu.Unlock()
	var lines []string
	for _, l := range strings.Split(logged, "\n") {
		if strings.Contains(l, `"msg":"request"`) {
			lines = append(lines, l)
		}
	}
	if len(lines) != 5 { // the fixture's first requests, then these two
		t.Fatalf("access log: %q", logged)
	}
	lines = lines[2:]
	for i, want := range [][]string{
		{`"method":"GET"`, `"path":"/metadata/timestamp.json"`, `"status":200`, `"bytes":44,`, `"remote":"127.0.0.1:`, `"proto":"HTTP/1.1"}`},
		{`"method":"HEAD"`, `"status":200`, `"bytes":0,`, `"duration_ms":`},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("line %q lacks %s", lines[i+1], w)
			}
		}
	}
}

// TestFastSeesReplacement: each replacement of timestamp.json (by rename,
// as ferry writes it) is served by the next request.
func TestFastSeesReplacement(t *testing.T) {
	f := newFastFixture(t, Config{})
	ts := filepath.Join(f.dir, "public/metadata/timestamp.json")
	for _, v := range []string{"8", "9", "10"} {
		next := `{"signed":{"_type":"timestamp","version":` + v + `}}`
		if err := os.WriteFile(ts+".new", []byte(next), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(ts+".new", ts); err != nil {
			t.Fatal(err)
		}
		for range 2 { // the first is net/http's (the memo changed), the second the fast path's
			got := f.exchange(t, tsRequest("GET", "Connection: close\r\n"))
			if !strings.HasSuffix(got, "\r\n\r\n"+next) || !strings.Contains(got, "Etag: "+contentETagOf([]byte(next))+"\r\n") {
				t.Fatalf("version %s: served %q", v, got)
			}
		}
	}
	if n := f.handled.Load(); n != 3 {
		t.Errorf("net/http answered %d requests, want 3 (one per replacement)", n)
	}
}

// TestFastPlainHTTPRefused: a plain-text HTTP request on the TLS port gets
// net/http's 400.
func TestFastPlainHTTPRefused(t *testing.T) {
	f := newFastFixture(t, Config{})
	c, err := net.DialTimeout("tcp", f.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, tsRequest("GET", ""))
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.0 400 Bad Request\r\n") || !strings.Contains(string(b), "HTTPS server") {
		t.Errorf("plain HTTP got %q", b)
	}
}

// TestFastLargeHeader: a request whose header does not fit the fast
// path's buffer is net/http's, and answered.
func TestFastLargeHeader(t *testing.T) {
	f := newFastFixture(t, Config{})
	got := f.exchange(t, tsRequest("GET", "X-Big: "+strings.Repeat("b", 6000)+"\r\nConnection: close\r\n"))
	if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || f.handled.Load() != 1 {
		t.Errorf("net/http answered %d; got %.60q", f.handled.Load(), got)
	}
}

// repositoryOK scrapes m for the repository's 2xx responses.
func repositoryOK(t *testing.T, m *Metrics) float64 {
	t.Helper()
	const token = "a-token-of-enough-bytes"
	h, err := m.Handler(token)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", MetricsPath, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	h.ServeHTTP(rec, req)
	const series = `ferry_http_requests_total{code="2xx",face="repository"} `
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(l, series); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in %q", series, rec.Body.String())
	return 0
}
