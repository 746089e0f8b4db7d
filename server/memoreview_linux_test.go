package server

// Probes from the review of adecf58, 8bbd9ac, 6d5203f and 07fbf18 (all but
// the Base and bare-LF ones failed on 07fbf18); each asserts how a correct server behaves.

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func review11Repo(t *testing.T, margin time.Duration) (string, *repository) {
	t.Helper()
	dir := testRepo(t)
	h, err := Repository(filepath.Join(dir, "public"))
	if err != nil {
		t.Fatal(err)
	}
	r := h.(*repository)
	if r.beneath == nil {
		t.Skip("no openat2 here")
	}
	r.beneath.memos.margin = margin
	return dir, r
}

func review11Get(h http.Handler, p string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", p, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// TestUnhashedTargetValidatedByETagOnly: a small target that is not
// hash-prefixed (Cache-Control no-cache, it may change in place) is
// served from memory without Last-Modified, as serveFile serves a large
// one, so that If-Modified-Since alone cannot get a 304 for content
// rewritten within the same second (it did, when small files first went
// to memory).
func TestUnhashedTargetValidatedByETagOnly(t *testing.T) {
	dir, h := review11Repo(t, 0)
	const p = "/targets/notes.txt"
	file := filepath.Join(dir, "public", "targets", "notes.txt")
	sec := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(file, sec, sec.Add(100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	first := review11Get(h, p)
	if first.Code != 200 {
		t.Fatal(first.Code)
	}
	if lm := first.Header().Get("Last-Modified"); lm != "" {
		t.Errorf("no-cache target sent Last-Modified %q (the streamed path sends none)", lm)
	}
	// Rewritten in place, same size, within the same second.
	if err := os.WriteFile(file, []byte("NOT HASH-PREFIXED"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(file, sec, sec.Add(900*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	again := review11Get(h, p, "If-Modified-Since", sec.UTC().Format(http.TimeFormat))
	if again.Code != 200 || again.Body.String() != "NOT HASH-PREFIXED" {
		t.Errorf("after an in-place rewrite, If-Modified-Since got %d %q, want 200 with the new bytes", again.Code, again.Body)
	}
}

// TestMemoFullKeepsTimestamp_R55: with the small files' slots full,
// timestamp.json, replaced (and so forgotten, and too new to remember
// for memoMargin) while another small file is requested, is remembered
// again afterwards: small files cannot take its slot (they did, when all
// names shared 256 slots that were never freed, and timestamp.json was
// then read and hashed on every request, never on the fast path).
func TestMemoFullKeepsTimestamp_R55(t *testing.T) {
	const margin = 200 * time.Millisecond
	dir, h := review11Repo(t, margin)
	pub := filepath.Join(dir, "public", "metadata")
	for i := 10; i < 10+maxSmallMemos; i++ {
		if err := os.WriteFile(filepath.Join(pub, fmt.Sprintf("%d.snapshot.json", i)), []byte(`{"signed":{}}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(margin + 50*time.Millisecond)
	if w := review11Get(h, tsPath); w.Code != 200 {
		t.Fatal(w.Code)
	}
	for i := 10; i < 10+maxSmallMemos-1; i++ { // memo now full: ts + 255
		review11Get(h, fmt.Sprintf("/metadata/%d.snapshot.json", i))
	}
	// A new timestamp.json, written as ferry writes it (rename).
	tmp := filepath.Join(pub, ".ts.tmp")
	os.WriteFile(tmp, []byte(`{"signed":{"_type":"timestamp","version":8}}`), 0o644)
	if err := os.Rename(tmp, filepath.Join(pub, "timestamp.json")); err != nil {
		t.Fatal(err)
	}
	review11Get(h, tsPath) // forgotten; too new to be remembered
	review11Get(h, fmt.Sprintf("/metadata/%d.snapshot.json", 10+maxSmallMemos-1))
	time.Sleep(margin + 50*time.Millisecond)
	for range 3 {
		review11Get(h, tsPath)
	}
	h.beneath.memos.mu.Lock()
	_, ok := h.beneath.memos.m["metadata/timestamp.json"]
	n := len(h.beneath.memos.m)
	h.beneath.memos.mu.Unlock()
	if !ok {
		t.Errorf("timestamp.json is no longer remembered (memo holds %d other names): every request reads and hashes it, and the fast path never answers it", n)
	}
}

// TestMemoEscapingDirectory_R24: a remembered target whose directory is
// moved out of public/ and replaced by a symlink to its new place is no
// longer served, as openat2(RESOLVE_BENEATH), the path every unremembered
// request takes, refuses it (the check was an fstatat that followed
// symbolic links in the directories on the way).
func TestMemoEscapingDirectory_R24(t *testing.T) {
	dir, h := review11Repo(t, 0)
	p := smallPaths[1] // /targets/hello/1.0.0/linux-amd64/HASH.hello
	if w := review11Get(h, p); w.Code != 200 {
		t.Fatal(w.Code)
	}
	out := filepath.Join(dir, "outside")
	os.MkdirAll(out, 0o755)
	if err := os.Rename(filepath.Join(dir, "public", "targets", "hello"), filepath.Join(out, "hello")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(out, "hello"), filepath.Join(dir, "public", "targets", "hello")); err != nil {
		t.Fatal(err)
	}
	// A repository that has not remembered the file: the old behaviour.
	fresh, err := Repository(filepath.Join(dir, "public"))
	if err != nil {
		t.Fatal(err)
	}
	base := review11Get(fresh, p).Code
	if got := review11Get(h, p).Code; got != base {
		t.Errorf("through a symlink out of public/: remembered %d, not remembered %d", got, base)
	}
}

// TestFastPipelinedHeaderDeadline_R54: a pipelined request whose first
// bytes came in the same read as the end of the one before gets its own
// ReadHeaderTimeout, as under net/http (TestPipelinedHeaderDeadlineNetHTTP);
// it inherited the previous request's start.
func TestFastPipelinedHeaderDeadline_R54(t *testing.T) {
	f := newFastFixture(t, Config{ReadHeaderTimeout: time.Second})
	review11Pipelined(t, f.dial(t))
}

func TestPipelinedHeaderDeadlineNetHTTP(t *testing.T) {
	dir := testRepo(t)
	h, err := Repository(filepath.Join(dir, "public"))
	if err != nil {
		t.Fatal(err)
	}
	s := startRun(t, h, Config{ReadHeaderTimeout: time.Second}) // no Fast: net/http only
	c, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	review11Pipelined(t, c)
}

func review11Pipelined(t *testing.T, c *tls.Conn) {
	t.Helper()
	br := bufio.NewReader(c)
	read := func(what string) {
		t.Helper()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s", what, resp.Status)
		}
	}
	io.WriteString(c, tsRequest("GET", ""))
	read("warm-up")
	req := tsRequest("GET", "")
	half := len(req) / 2
	io.WriteString(c, req+req[:half]) // request 1 whole, request 2 begun (t=0)
	read("request 1")
	time.Sleep(700 * time.Millisecond)
	io.WriteString(c, req[half:]+req[:half]) // request 2 ends (0.7 s after its start), request 3 begins
	read("request 2")
	time.Sleep(700 * time.Millisecond)
	io.WriteString(c, req[half:]) // request 3 ends 0.7 s after its first byte
	read("request 3")
}

// TestFastBareLFHandoverKeepsDeadline_R54: a request with
// bare LF line ends (net/http's) trickled to the fast path and then to
// net/http keeps its header deadline; lone CRs between LFs do not count
// as an empty line before net/http would see one.
func TestFastBareLFHandoverKeepsDeadline_R54(t *testing.T) {
	const rht = time.Second
	f := newFastFixture(t, Config{ReadHeaderTimeout: rht})
	c, closed := f.handshaken(t)
	first := "GET " + tsPath + " HTTP/1.1\nHost: a\nX-A: \r\r\n"
	step := (rht * 8 / 10) / time.Duration(len(first))
	for i := 0; i < len(first); i++ {
		c.Write([]byte{first[i]})
		time.Sleep(step)
	}
	for i := 0; i < 200; i++ {
		if _, err := c.Write([]byte("a")); err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case held := <-closed:
		if held > rht*13/10 {
			t.Errorf("held %v", held)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not closed")
	}
}
