package fetch

import (
	"context"
	"errors"
	"math"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestBytes(t *testing.T) {
	body := content(1000)
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusServiceUnavailable) })
	mux.HandleFunc("/ua", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.UserAgent())) })
	srv, f := newServer(t, mux, Options{UserAgent: "ferry-test/1"})
	ctx := context.Background()

	b, err := f.Bytes(ctx, srv.URL+"/ok", 1000)
	if err != nil || string(b) != string(body) {
		t.Fatalf("ok: %d bytes, %v", len(b), err)
	}
	if b, _ := f.Bytes(ctx, srv.URL+"/ua", 100); string(b) != "ferry-test/1" {
		t.Errorf("user agent %q", b)
	}
	_, err = f.Bytes(ctx, srv.URL+"/missing", 1000)
	var se *StatusError
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &se) || se.Code != 404 {
		t.Errorf("missing: %v, want ErrNotFound", err)
	}
	_, err = f.Bytes(ctx, srv.URL+"/broken", 1000)
	if !errors.As(err, &se) || se.Code != 503 || errors.Is(err, ErrNotFound) {
		t.Errorf("broken: %v, want status 503", err)
	}
	if want := "fetch " + srv.URL + "/broken: unexpected status 503 Service Unavailable"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if _, err := f.Bytes(ctx, srv.URL+"/ok", 999); !errors.Is(err, ErrTooLarge) {
		t.Errorf("one byte over the limit: %v, want ErrTooLarge", err)
	}
	if _, err := f.Bytes(ctx, srv.URL+"/ok", 0); err == nil {
		t.Error("zero limit accepted")
	}
}

// TestEndlessMetadata_R16 serves an endless body without Content-Length;
// Bytes must read at most limit+1 bytes.
func TestEndlessMetadata_R16(t *testing.T) {
	const limit = 10000
	chunk := []byte(strings.Repeat("{", 4096))
	endless := func(w http.ResponseWriter, r *http.Request) {
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
	for name, h := range map[string]http.HandlerFunc{"chunked": endless} {
		t.Run(name, func(t *testing.T) {
			srv, _ := newServer(t, h, Options{})
			ct := &countingTransport{rt: srv.Client().Transport}
			f, err := New(Options{HTTPClient: &http.Client{Transport: ct}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			b, err := f.Bytes(ctx, srv.URL+"/timestamp.json", limit)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("got %d bytes, %v; want ErrTooLarge", len(b), err)
			}
			if n := ct.n.Load(); n > limit+1 {
				t.Errorf("read %d bytes, limit %d", n, limit)
			}
		})
	}
}

func TestContentLengthOverLimit_R16(t *testing.T) {
	srv, _ := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000000")
		w.Write(content(1000))
	}), Options{})
	ct := &countingTransport{rt: srv.Client().Transport}
	f, _ := New(Options{HTTPClient: &http.Client{Transport: ct}})
	_, err := f.Bytes(context.Background(), srv.URL+"/x", 5000)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if n := ct.n.Load(); n != 0 {
		t.Errorf("read %d body bytes before refusing", n)
	}
}

// TestHugeContentLengthWithinLimit_R16: a Content-Length under a large
// limit is only a claim; Bytes must not reserve memory for it before the
// bytes arrive.
func TestHugeContentLengthWithinLimit_R16(t *testing.T) {
	const claimed = 256 << 20
	srv, f := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(claimed))
		w.Write(content(1000)) // then the handler returns: the connection ends early
	}), Options{})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := f.Bytes(context.Background(), srv.URL+"/snapshot.json", claimed)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("a body shorter than its Content-Length was accepted")
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Errorf("allocated %d bytes for a %d-byte body claiming %d", got, 1000, claimed)
	}
}

// TestBytesLimitMaxInt64 checks that the largest limit does not wrap the
// limit+1 read bound: the whole body arrives, never an empty one.
func TestBytesLimitMaxInt64(t *testing.T) {
	body := content(1000)
	srv, f := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }), Options{})
	b, err := f.Bytes(context.Background(), srv.URL+"/", math.MaxInt64)
	if err != nil || string(b) != string(body) {
		t.Fatalf("got %d bytes, %v; want %d bytes", len(b), err, len(body))
	}
}
