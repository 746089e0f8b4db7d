package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// rangeServer serves body with http.ServeContent (Range, Accept-Ranges)
// and records the Range header of every request.
type rangeServer struct {
	mu     sync.Mutex
	body   []byte
	ranges []string
	// cutAt, if > 0, aborts the first full response after that many bytes.
	cutAt int
	cuts  int
}

func (s *rangeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	cut := s.cutAt > 0 && s.cuts == 0 && r.Header.Get("Range") == ""
	if cut {
		s.cuts++
	}
	s.mu.Unlock()
	if cut {
		w.Header().Set("Accept-Ranges", "bytes")
		w.Header().Set("Content-Length", fmt.Sprint(len(s.body)))
		w.Write(s.body[:s.cutAt])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection is reset mid-body
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(s.body))
}

func (s *rangeServer) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

func TestFile(t *testing.T) {
	body := content(1<<20 + 123)
	rs := &rangeServer{body: body}
	srv, f := newServer(t, rs, Options{})
	path := filepath.Join(t.TempDir(), "artifact")
	var last, calls int64
	err := f.File(context.Background(), srv.URL+"/a", path, wantOf(body), func(done, total int64) {
		if done < last || done > total || total != int64(len(body)) {
			t.Errorf("progress %d/%d after %d", done, total, last)
		}
		last = done
		calls++
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, body) {
		t.Fatal("file content differs")
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	if last != int64(len(body)) || calls < 2 {
		t.Errorf("progress ended at %d after %d calls", last, calls)
	}
	// A complete file is verified from disk without a request.
	n := len(rs.seen())
	if err := f.File(context.Background(), srv.URL+"/a", path, wantOf(body), nil); err != nil {
		t.Fatal(err)
	}
	if len(rs.seen()) != n {
		t.Errorf("complete file fetched again")
	}
}

func TestFileEmpty(t *testing.T) {
	srv, f := newServer(t, &rangeServer{}, Options{})
	path := filepath.Join(t.TempDir(), "empty")
	if err := f.File(context.Background(), srv.URL+"/e", path, wantOf(nil), nil); err != nil {
		t.Fatal(err)
	}
}

func TestFileNotFound(t *testing.T) {
	srv, f := newServer(t, http.NotFoundHandler(), Options{})
	path := filepath.Join(t.TempDir(), "x")
	err := f.File(context.Background(), srv.URL+"/x", path, wantOf([]byte("x")), nil)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
}

// TestTargetLongerThanLength_R17: the server sends more than the signed
// length, endlessly or with a Content-Length; the file never holds more than
// the length and is removed.
func TestTargetLongerThanLength_R17(t *testing.T) {
	body := content(300000)
	long := append(append([]byte(nil), body...), "and then some"...)
	handlers := map[string]http.HandlerFunc{
		"endless": func(w http.ResponseWriter, r *http.Request) {
			w.Write(body)
			for r.Context().Err() == nil {
				if _, err := w.Write(make([]byte, 4096)); err != nil {
					return
				}
			}
		},
		"chunked": func(w http.ResponseWriter, r *http.Request) { w.Write(long) },
		"content-length": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(len(long)))
			w.Write(long)
		},
		"content-range": func(w http.ResponseWriter, r *http.Request) {
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(long))
		},
	}
	for name, h := range handlers {
		t.Run(name, func(t *testing.T) {
			srv, f := newServer(t, h, Options{})
			path := filepath.Join(t.TempDir(), "t")
			if name == "content-range" {
				os.WriteFile(path, body[:1000], 0o600)
			}
			var max int64
			err := f.File(context.Background(), srv.URL+"/t", path, wantOf(body), func(done, _ int64) { max = done })
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("got %v, want ErrTooLarge", err)
			}
			if max > int64(len(body)) {
				t.Errorf("wrote %d bytes, length %d", max, len(body))
			}
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("file left behind: %v", err)
			}
		})
	}
}

// TestTargetSubstituted_R19: same length, other bytes.
func TestTargetSubstituted_R19(t *testing.T) {
	body := content(5000)
	evil := bytes.Clone(body)
	evil[4321] ^= 1
	srv, f := newServer(t, &rangeServer{body: evil}, Options{})
	path := filepath.Join(t.TempDir(), "t")
	err := f.File(context.Background(), srv.URL+"/t", path, wantOf(body), nil)
	var me *MismatchError
	if !errors.As(err, &me) || !errors.Is(err, ErrMismatch) || me.What != "sha256" {
		t.Fatalf("got %v, want a sha256 mismatch", err)
	}
	if !strings.Contains(err.Error(), "want "+me.Want+", got "+me.Got) || me.Want == me.Got {
		t.Errorf("error lacks evidence: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file left behind: %v", err)
	}
}

func TestFileHashAlgorithms_R26(t *testing.T) {
	body := content(100)
	srv, f := newServer(t, &rangeServer{body: body}, Options{})
	good := wantOf(body)
	tests := []struct {
		name   string
		hashes map[string][]byte
		ok     bool
	}{
		{"sha256 only", map[string][]byte{"sha256": good.Hashes["sha256"]}, true},
		{"sha512 only", map[string][]byte{"sha512": good.Hashes["sha512"]}, true},
		{"unknown ignored", map[string][]byte{"sha256": good.Hashes["sha256"], "md5": []byte("whatever")}, true},
		{"only unknown", map[string][]byte{"md5": []byte("0123456789abcdef"), "blake9": nil}, false},
		{"none", nil, false},
		{"bad sha512 among good", map[string][]byte{"sha256": good.Hashes["sha256"], "sha512": make([]byte, 64)}, false},
		{"short digest", map[string][]byte{"sha256": good.Hashes["sha256"][:16]}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t")
			err := f.File(context.Background(), srv.URL+"/t", path, Want{Length: 100, Hashes: tt.hashes}, nil)
			if (err == nil) != tt.ok {
				t.Fatalf("got %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestResumeAfterReset_R34: the connection is reset after N bytes; File
// resumes with Range from N and the result verifies.
func TestResumeAfterReset_R34(t *testing.T) {
	body := content(600000)
	rs := &rangeServer{body: body, cutAt: 250000}
	srv, f := newServer(t, rs, Options{})
	path := filepath.Join(t.TempDir(), "t")
	if err := f.File(context.Background(), srv.URL+"/t", path, wantOf(body), nil); err != nil {
		t.Fatal(err)
	}
	seen := rs.seen()
	if len(seen) != 2 || seen[0] != "" || !strings.HasPrefix(seen[1], "bytes=") {
		t.Fatalf("requests %q, want a full then a Range request", seen)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, body) {
		t.Fatal("content differs")
	}
}

// TestResumeRehashesDisk_R34: bytes left on disk by an earlier attempt are
// hashed again; tampering with them is detected even though only the tail is
// downloaded, and the file is never kept.
func TestResumeRehashesDisk_R34(t *testing.T) {
	body := content(400000)
	rs := &rangeServer{body: body}
	srv, f := newServer(t, rs, Options{})
	for _, tamper := range []bool{false, true} {
		t.Run(fmt.Sprint("tamper=", tamper), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t")
			part := bytes.Clone(body[:150000])
			if tamper {
				part[100] ^= 0x80
			}
			os.WriteFile(path, part, 0o600)
			err := f.File(context.Background(), srv.URL+"/t", path, wantOf(body), nil)
			if seen := rs.seen(); seen[len(seen)-1] != "bytes=150000-" {
				t.Errorf("last request Range %q", seen[len(seen)-1])
			}
			if !tamper {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrMismatch) {
				t.Fatalf("got %v, want ErrMismatch", err)
			}
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("file kept: %v", err)
			}
		})
	}
}

// TestRangeOtherContent_R34: a Range response with other bytes, or another
// range than asked, is never accepted.
func TestRangeOtherContent_R34(t *testing.T) {
	body := content(200000)
	other := content(200001)[1:]
	handlers := map[string]http.HandlerFunc{
		"other bytes": func(w http.ResponseWriter, r *http.Request) {
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(other))
		},
		"other range": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(body)-1, len(body)))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(body)
		},
		"other total": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 1000-%d/%d", len(body)-11, len(body)-10))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(body[1000 : len(body)-10])
		},
		"garbage header": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", "bytes=1000-")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(body[1000:])
		},
	}
	for name, h := range handlers {
		t.Run(name, func(t *testing.T) {
			srv, f := newServer(t, h, Options{})
			path := filepath.Join(t.TempDir(), "t")
			os.WriteFile(path, body[:1000], 0o600)
			err := f.File(context.Background(), srv.URL+"/t", path, wantOf(body), nil)
			if !errors.Is(err, ErrMismatch) {
				t.Fatalf("got %v, want ErrMismatch", err)
			}
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("file kept: %v", err)
			}
		})
	}
}

// TestRangeIgnored: a server without Range support answers 200; File starts
// over and succeeds.
func TestRangeIgnored(t *testing.T) {
	body := content(100000)
	srv, f := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }), Options{})
	path := filepath.Join(t.TempDir(), "t")
	os.WriteFile(path, []byte("garbage from some other download"), 0o600)
	if err := f.File(context.Background(), srv.URL+"/t", path, wantOf(body), nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, body) {
		t.Fatal("content differs")
	}
}

// TestPartialLongerThanLength: a leftover file longer than the length is
// discarded, not trusted.
func TestPartialLongerThanLength(t *testing.T) {
	body := content(1000)
	srv, f := newServer(t, &rangeServer{body: body}, Options{})
	path := filepath.Join(t.TempDir(), "t")
	os.WriteFile(path, content(5000), 0o600)
	if err := f.File(context.Background(), srv.URL+"/t", path, wantOf(body), nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, body) {
		t.Fatal("content differs")
	}
}

// TestRangeNotSatisfiable: a server that refuses every Range request is
// asked again for the whole file.
func TestRangeNotSatisfiable(t *testing.T) {
	body := content(50000)
	srv, f := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			http.Error(w, "no", http.StatusRequestedRangeNotSatisfiable)
			return
		}
		w.Write(body)
	}), Options{})
	path := filepath.Join(t.TempDir(), "t")
	os.WriteFile(path, body[:100], 0o600)
	if err := f.File(context.Background(), srv.URL+"/t", path, wantOf(body), nil); err != nil {
		t.Fatal(err)
	}
}

// TestTargetShorterThanLength: a Content-Length below the signed length is
// a length mismatch; the file is removed.
func TestTargetShorterThanLength(t *testing.T) {
	body := content(50000)
	srv, f := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "40000")
		w.Write(body[:40000])
	}), Options{})
	path := filepath.Join(t.TempDir(), "t")
	err := f.File(context.Background(), srv.URL+"/t", path, wantOf(body), nil)
	var me *MismatchError
	if !errors.As(err, &me) || me.What != "length" || me.Want != "50000" || me.Got != "40000" {
		t.Fatalf("got %v, want a length mismatch", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file kept: %v", err)
	}
}
