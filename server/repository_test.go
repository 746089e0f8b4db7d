package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/repo"
)

// get fetches path with s's keep-alive client and returns the response
// and its body.
func get(t *testing.T, s *started, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", s.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func sha256ETag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// TestTimestampResignedSeenAtOnce: every re-signing of a real repository's
// timestamp is served at once, by the next request on the same keep-alive
// connection, with the hash of the new bytes as ETag, and the previous
// ETag no longer matches. Re-signings follow each other within
// milliseconds, so no cache keyed by size and modification time could
// tell them apart.
func TestTimestampResignedSeenAtOnce(t *testing.T) {
	f := adminRepo(t, nil)
	h, err := Repository(filepath.Join(f.dir, "public"))
	if err != nil {
		t.Fatal(err)
	}
	s := startRun(t, h, Config{})
	ts := filepath.Join(f.dir, "public", "metadata", "timestamp.json")
	_, prev := get(t, s, "/metadata/timestamp.json")
	prevTag := sha256ETag(prev)
	for i := 0; i < 5; i++ {
		if _, err := f.repo.RefreshWith(context.Background(), repo.RefreshOptions{Force: true, OnlineOnly: true}); err != nil {
			t.Fatal(err)
		}
		onDisk, err := os.ReadFile(ts)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := get(t, s, "/metadata/timestamp.json", "If-None-Match", prevTag)
		if resp.StatusCode != 200 || string(body) != string(onDisk) {
			t.Fatalf("re-signing %d: status %d, served %d bytes that are not the new timestamp", i, resp.StatusCode, len(body))
		}
		if got := resp.Header.Get("ETag"); got != sha256ETag(onDisk) || got == prevTag {
			t.Fatalf("re-signing %d: ETag %s, want %s (previous %s)", i, got, sha256ETag(onDisk), prevTag)
		}
		prevTag = resp.Header.Get("ETag")
		if resp, _ := get(t, s, "/metadata/timestamp.json", "If-None-Match", prevTag); resp.StatusCode != http.StatusNotModified {
			t.Fatalf("re-signing %d: current ETag: status %d, want 304", i, resp.StatusCode)
		}
	}
}

// TestTimestampRewrittenInPlace: a timestamp.json rewritten in place (same
// inode), with the same size and its old modification time put back, is
// still served with its new bytes and their hash.
func TestTimestampRewrittenInPlace(t *testing.T) {
	s, dir := newRepoServer(t)
	ts := filepath.Join(dir, "public/metadata/timestamp.json")
	st, err := os.Stat(ts)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"8", "9", "7"} {
		next := `{"signed":{"_type":"timestamp","version":` + v + `}}`
		if err := os.WriteFile(ts, []byte(next), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(ts, st.ModTime(), st.ModTime()); err != nil {
			t.Fatal(err)
		}
		resp, body := get(t, s, "/metadata/timestamp.json")
		if string(body) != next || resp.Header.Get("ETag") != sha256ETag([]byte(next)) {
			t.Fatalf("version %s: served %q with ETag %s", v, body, resp.Header.Get("ETag"))
		}
	}
}

// TestTimestampRangeAndHead: Range and HEAD work on metadata served from
// memory as on files.
func TestTimestampRangeAndHead(t *testing.T) {
	s, _ := newRepoServer(t)
	const whole = `{"signed":{"_type":"timestamp","version":7}}`
	resp, body := rawGet(t, s, "GET", "/metadata/timestamp.json", "Range: bytes=2-7")
	if resp.StatusCode != http.StatusPartialContent || string(body) != whole[2:8] {
		t.Fatalf("range: status %d body %q", resp.StatusCode, body)
	}
	if cr := resp.Header.Get("Content-Range"); cr != "bytes 2-7/44" {
		t.Errorf("Content-Range %q", cr)
	}
	etag := sha256ETag([]byte(whole))
	if resp, body := rawGet(t, s, "GET", "/metadata/timestamp.json", "Range: bytes=2-7", `If-Range: "stale"`); resp.StatusCode != 200 || string(body) != whole {
		t.Errorf("If-Range stale: status %d body %q", resp.StatusCode, body)
	}
	if resp, _ := rawGet(t, s, "GET", "/metadata/timestamp.json", "Range: bytes=2-7", "If-Range: "+etag); resp.StatusCode != http.StatusPartialContent {
		t.Errorf("If-Range current: status %d", resp.StatusCode)
	}
	resp, body = rawGet(t, s, "HEAD", "/metadata/timestamp.json")
	if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != int64(len(whole)) || resp.Header.Get("ETag") != etag {
		t.Errorf("HEAD: status %d, %d bytes, length %d, ETag %s", resp.StatusCode, len(body), resp.ContentLength, resp.Header.Get("ETag"))
	}
}

// plainWriter is a ResponseWriter with nothing but the three methods, as a
// wrapped writer looks to io.Copy.
type plainWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *plainWriter) Header() http.Header         { return w.h }
func (w *plainWriter) WriteHeader(code int)        { w.status = code }
func (w *plainWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// TestServeAllocations: serving timestamp.json or a target allocates a few
// kilobytes per request, not a 32 KiB copy buffer (or two) each time.
func TestServeAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations are not measurable under the race detector")
	}
	dir := testRepo(t)
	big := "/targets/big/" + strings.Repeat("cd", 32) + ".big" // larger than a copy buffer
	if err := os.MkdirAll(filepath.Join(dir, "public/targets/big"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "public", big), make([]byte, 100<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	repoH, err := Repository(filepath.Join(dir, "public"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMetrics(MetricsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	h := accessLog(slog.New(slog.NewJSONHandler(io.Discard, nil)), newLineLog(io.Discard, 0), deadlines{time.Minute, time.Minute, 1 << 10}, m, repoH)
	target := "/targets/hello/1.0.0/linux-amd64/" + strings.Repeat("ab", 32) + ".hello"
	for _, p := range []string{"/metadata/timestamp.json", "/metadata/1.root.json", target, big} {
		serve := func() {
			w := &plainWriter{h: http.Header{}}
			h.ServeHTTP(w, httptest.NewRequest("GET", p, nil))
			if w.status != 0 && w.status != 200 || w.n == 0 {
				t.Fatalf("%s: status %d, %d bytes", p, w.status, w.n)
			}
		}
		serve()
		const n = 200
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := 0; i < n; i++ {
			serve()
		}
		runtime.ReadMemStats(&after)
		// httptest.NewRequest alone is about 1 KiB.
		if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 12<<10 {
			t.Errorf("%s: %d bytes allocated per request", p, per)
		}
	}
}

// TestInMemoryMatchesServeContent: timestamp.json served from memory gets
// the status, headers and body that http.ServeContent gives the same
// bytes, for plain requests (answered without it) and for conditional and
// Range ones (answered by it).
func TestInMemoryMatchesServeContent(t *testing.T) {
	modtime := time.Date(2026, 11, 30, 12, 34, 56, 789, time.UTC)
	for _, file := range []struct {
		name, cc string
		body     []byte
		etag     string
		modtime  time.Time // zero: validated by ETag alone
	}{
		{"metadata/timestamp.json", cacheRevalidate, []byte(`{"signed":{"_type":"timestamp","version":7}}`), "", time.Time{}},
		// A small immutable file: its own ETag, and Last-Modified.
		{"targets/app/1.0.0/linux-amd64/" + strings.Repeat("ab", 32) + ".app", cacheImmutable, []byte("binary bytes"), `"c-1234"`, modtime},
		{"metadata/1.root.json", cacheImmutable, []byte(`{"signed":{"_type":"root"}}`), "", modtime},
	} {
		etag := file.etag
		if etag == "" {
			etag = sha256ETag(file.body)
		}
		m := newInMemory(file.name, file.cc, file.body, etag, file.modtime)
		last := file.modtime.Add(time.Hour).Format(http.TimeFormat)
		for _, c := range []struct {
			method string
			hdr    []string
		}{
			{"GET", nil},
			{"HEAD", nil},
			{"GET", []string{"User-Agent", "ferry", "Accept-Encoding", "identity"}},
			{"GET", []string{"If-None-Match", etag}},
			{"GET", []string{"If-None-Match", `"other"`}},
			{"HEAD", []string{"If-None-Match", etag}},
			{"GET", []string{"If-Match", `"other"`}},
			{"GET", []string{"Range", "bytes=2-5"}},
			{"GET", []string{"Range", "bytes=100-"}},
			{"GET", []string{"Range", "bytes=0-1", "If-Range", etag}},
			{"GET", []string{"If-Modified-Since", "Mon, 02 Jan 2006 15:04:05 GMT"}},
			{"GET", []string{"If-Modified-Since", last}},
			{"GET", []string{"If-Unmodified-Since", "Mon, 02 Jan 2006 15:04:05 GMT"}},
		} {
			req := func() *http.Request {
				r := httptest.NewRequest(c.method, "/"+file.name, nil)
				for i := 0; i < len(c.hdr); i += 2 {
					r.Header.Set(c.hdr[i], c.hdr[i+1])
				}
				return r
			}
			got, want := httptest.NewRecorder(), httptest.NewRecorder()
			m.serve(got, req())
			setHeaders(want.Header(), file.name, file.cc, etag, contentType(file.name))
			http.ServeContent(want, req(), path.Base(file.name), file.modtime, strings.NewReader(string(file.body)))
			if got.Code != want.Code || got.Body.String() != want.Body.String() {
				t.Errorf("%s %s %v: status %d, body %q; ServeContent: %d, %q", file.name, c.method, c.hdr, got.Code, got.Body, want.Code, want.Body)
			}
			if g, w := got.Result().Header, want.Result().Header; !reflect.DeepEqual(g, w) {
				t.Errorf("%s %s %v: headers\n %v\nServeContent:\n %v", file.name, c.method, c.hdr, g, w)
			}
		}
	}
}

// TestCacheControl: a name is immutable exactly when it matches the
// layout's patterns (written here as regular expressions, the spec the
// hand-written checks follow).
func TestCacheControl(t *testing.T) {
	versioned := regexp.MustCompile(`^[0-9]+\.[^/]+\.json$`)
	hashed := regexp.MustCompile(`^([0-9a-f]{64}|[0-9a-f]{128})\.`)
	h64, h128 := strings.Repeat("ab", 32), strings.Repeat("0f", 64)
	for _, base := range []string{
		"1.root.json", "12.targets.json", "1.a.json", "1..json", "1.json", ".root.json", "x1.root.json",
		"1.root.jsonx", "1.root.json.json", "timestamp.json", "1.hello.json", "007.x.json", "1.a/b.json",
		h64 + ".app", h64 + ".", h64, h128 + ".x", h64[:63] + ".x", h64 + "a.x", strings.ToUpper(h64) + ".x",
		h64 + h64[:2] + ".x", "g" + h64[1:] + ".x", "", "app",
	} {
		for _, dir := range []string{"metadata/", "targets/app/1.0.0/linux-amd64/"} {
			name := dir + base
			want := cacheRevalidate
			if dir == "metadata/" && versioned.MatchString(base) || dir != "metadata/" && hashed.MatchString(base) {
				want = cacheImmutable
			}
			if got := cacheControl(name); got != want {
				t.Errorf("cacheControl(%q) = %q, want %q", name, got, want)
			}
		}
	}
}
