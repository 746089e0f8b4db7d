package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferry-updates/ferry/repo"
)

// TestBeneathInUse: on a kernel with openat2 the repository opens files
// with it (the other tests then exercise it).
func TestBeneathInUse(t *testing.T) {
	if _, err := unix.Openat2(unix.AT_FDCWD, ".", &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC}); err == unix.ENOSYS {
		t.Skip("this kernel has no openat2")
	}
	h, err := Repository(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if h.(*repository).beneath == nil {
		t.Fatal("openat2 works here but the repository opens through os.Root")
	}
}

// openerCase is a file planted in the public directory and what serving
// it must give.
type openerCase struct {
	path   string
	status int
	body   string
}

// plantLinks adds symbolic links, a FIFO and a directory link to a test
// repository.
func plantLinks(t *testing.T, dir string) []openerCase {
	t.Helper()
	pub := filepath.Join(dir, "public")
	links := map[string]string{
		"metadata/inside.json":   "1.root.json",                // stays inside: followed, as os.Root does
		"metadata/up.json":       "../metadata/1.root.json",    // out and back in: inside all along
		"targets/out.bin":        "../../keys/x",               // leaves the directory
		"targets/abs2.bin":       filepath.Join(dir, "keys/x"), // absolute
		"targets/linkdir":        "hello",                      // a directory inside
		"targets/outdir":         "../../keys",                 // a directory outside
		"targets/proc.bin":       "/proc/self/root/etc/hostname",
		"metadata/dangling.json": "nope.json",
	}
	for name, to := range links {
		if err := os.Symlink(to, filepath.Join(pub, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(pub, "targets/pipe.bin"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := `{"signed":{"_type":"root"}}`
	hello := strings.Repeat("ab", 32) + ".hello"
	return []openerCase{
		{"/metadata/inside.json", 200, root},
		{"/metadata/up.json", 200, root},
		{"/targets/out.bin", 404, ""},
		{"/targets/abs2.bin", 404, ""},
		{"/targets/abs.bin", 404, ""},
		{"/metadata/evil.json", 404, ""},
		{"/targets/linkdir/1.0.0/linux-amd64/" + hello, 200, "hello binary bytes 0123456789"},
		{"/targets/outdir/x", 404, ""},
		{"/targets/proc.bin", 404, ""},
		{"/metadata/dangling.json", 404, ""},
		{"/targets/pipe.bin", 404, ""}, // a FIFO: refused, and the open does not wait for a writer
		{"/targets/hello", 404, ""},
	}
}

// TestOpenersAgree_R24: openat2 and os.Root serve and refuse the same
// files: symbolic links that stay inside are followed, links that leave
// (relative, absolute, through /proc, to a directory outside) are not
// served, nor are FIFOs and directories. Neither blocks on a FIFO.
func TestOpenersAgree_R24(t *testing.T) {
	dir := testRepo(t)
	cases := plantLinks(t, dir)
	for _, useRoot := range []bool{false, true} {
		h, err := Repository(filepath.Join(dir, "public"))
		if err != nil {
			t.Fatal(err)
		}
		if useRoot {
			h.(*repository).beneath = nil
		}
		for _, c := range cases {
			done := make(chan *httptest.ResponseRecorder, 1)
			go func() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest("GET", c.path, nil))
				done <- w
			}()
			select {
			case w := <-done:
				body, _ := io.ReadAll(w.Result().Body)
				if w.Code != c.status || c.status == 200 && string(body) != c.body {
					t.Errorf("os.Root %v: GET %s: status %d body %q, want %d %q", useRoot, c.path, w.Code, body, c.status, c.body)
				}
				if strings.Contains(string(body), "SECRET") {
					t.Errorf("os.Root %v: GET %s: served the secret", useRoot, c.path)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("os.Root %v: GET %s: no answer in 5 s (blocked opening a FIFO?)", useRoot, c.path)
			}
		}
	}
}

// TestFdFileStat: a file opened with openat2 reports the size, type and
// modification time os.Stat does, so ETags of targets stay the same.
func TestFdFileStat(t *testing.T) {
	dir := testRepo(t)
	h, err := Repository(filepath.Join(dir, "public"))
	if err != nil {
		t.Fatal(err)
	}
	b := h.(*repository).beneath
	if b == nil {
		t.Skip("no openat2 here")
	}
	name := "targets/hello/1.0.0/linux-amd64/" + strings.Repeat("ab", 32) + ".hello"
	f, err := b.open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.Stat(filepath.Join(dir, "public", name))
	if err != nil {
		t.Fatal(err)
	}
	if got.Size() != want.Size() || !got.ModTime().Equal(want.ModTime()) || got.Mode() != want.Mode() || got.Name() != want.Name() {
		t.Errorf("fstat %v %v %v %s, os.Stat %v %v %v %s", got.Size(), got.ModTime(), got.Mode(), got.Name(), want.Size(), want.ModTime(), want.Mode(), want.Name())
	}
	buf := make([]byte, 10)
	if n, err := f.ReadAt(buf, 19); n != 10 || string(buf) != "0123456789" {
		t.Errorf("ReadAt: %d %q %v", n, buf, err)
	}
	if n, err := f.ReadAt(buf, 25); n != 4 || err != io.EOF {
		t.Errorf("ReadAt past the end: %d %v, want 4 io.EOF", n, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err == nil {
		t.Error("second Close succeeded")
	}
}

// memoRepository is a repository served by Run whose memo remembers
// files at once (no margin), so that the tests reach the memo.
func memoRepository(t *testing.T, public string, margin time.Duration) (*started, *beneath) {
	t.Helper()
	h, err := Repository(public)
	if err != nil {
		t.Fatal(err)
	}
	b := h.(*repository).beneath
	if b == nil {
		t.Skip("no openat2 here")
	}
	b.memos.margin = margin
	return startRun(t, h, Config{}), b
}

// TestMemoFollowsReplacement: once remembered, timestamp.json is served
// from memory, and every replacement (same size, within milliseconds) is
// served at once with its hash, as is its removal.
func TestMemoFollowsReplacement(t *testing.T) {
	dir := testRepo(t)
	s, b := memoRepository(t, filepath.Join(dir, "public"), 0)
	ts := filepath.Join(dir, "public/metadata/timestamp.json")
	get(t, s, "/metadata/timestamp.json")
	get(t, s, "/metadata/timestamp.json")
	if b.memos.hits.Load() == 0 {
		t.Fatal("the second request was not served from memory")
	}
	for _, v := range []string{"1", "2", "3", "4", "5"} {
		next := `{"signed":{"_type":"timestamp","version":` + v + `}}`
		if err := os.WriteFile(ts+".new", []byte(next), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(ts+".new", ts); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ { // the first reads the file, the second memory
			resp, body := get(t, s, "/metadata/timestamp.json")
			if string(body) != next || resp.Header.Get("ETag") != sha256ETag([]byte(next)) {
				t.Fatalf("version %s: served %q with ETag %s", v, body, resp.Header.Get("ETag"))
			}
		}
	}
	if err := os.Remove(ts); err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, s, "/metadata/timestamp.json"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("removed timestamp.json: status %d", resp.StatusCode)
	}
}

// TestMemoResigned: TestTimestampResignedSeenAtOnce with the memo
// remembering at once: a real repository re-signed five times in a row.
func TestMemoResigned(t *testing.T) {
	f := adminRepo(t, nil)
	s, b := memoRepository(t, filepath.Join(f.dir, "public"), 0)
	ts := filepath.Join(f.dir, "public", "metadata", "timestamp.json")
	for i := 0; i < 5; i++ {
		get(t, s, "/metadata/timestamp.json") // remembered
		if _, err := f.repo.RefreshWith(context.Background(), repo.RefreshOptions{Force: true, OnlineOnly: true}); err != nil {
			t.Fatal(err)
		}
		onDisk, err := os.ReadFile(ts)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := get(t, s, "/metadata/timestamp.json")
		if string(body) != string(onDisk) || resp.Header.Get("ETag") != sha256ETag(onDisk) {
			t.Fatalf("re-signing %d: served %d bytes, ETag %s, not the new timestamp", i, len(body), resp.Header.Get("ETag"))
		}
	}
	if b.memos.hits.Load() == 0 {
		t.Fatal("never served from memory")
	}
}

// TestMemoSkipsRecentChange: a file changed less than memoMargin ago is
// read at every request, never remembered, so an in-place write within
// the same tick of the file clock cannot go unseen.
func TestMemoSkipsRecentChange(t *testing.T) {
	dir := testRepo(t)
	s, b := memoRepository(t, filepath.Join(dir, "public"), memoMargin)
	for i := 0; i < 3; i++ {
		get(t, s, "/metadata/timestamp.json")
	}
	b.memos.mu.Lock()
	n := len(b.memos.m)
	b.memos.mu.Unlock()
	if n != 0 || b.memos.hits.Load() != 0 {
		t.Fatalf("a file changed just now was remembered (%d names, %d hits)", n, b.memos.hits.Load())
	}
}
