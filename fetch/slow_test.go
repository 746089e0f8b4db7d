package fetch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// trickle writes one byte every interval, forever.
func trickle(interval time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if _, err := w.Write([]byte{'x'}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-t.C:
			}
		}
	}
}

// TestSlowRetrieval_R18: a server sending one byte per tick is cut off by
// the minimum rate, or (Bytes) by the overall deadline when the rate is met.
// File's deadline grows with the length at the minimum rate, so a server
// that keeps the rate finishes (TestSlowButSteadyFile_R18).
func TestSlowRetrieval_R18(t *testing.T) {
	tests := []struct {
		name  string
		opts  Options
		want  error
		files []bool
	}{
		{"min rate", Options{MinRate: 1000, RateWindow: 200 * time.Millisecond, Timeout: 20 * time.Second}, ErrTooSlow, []bool{false, true}},
		{"deadline", Options{MinRate: 1, RateWindow: 200 * time.Millisecond, Timeout: 500 * time.Millisecond}, ErrTimeout, []bool{false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, f := newServer(t, trickle(20*time.Millisecond), tt.opts)
			for _, file := range tt.files {
				start := time.Now()
				var err error
				if file {
					err = f.File(context.Background(), srv.URL+"/t", filepath.Join(t.TempDir(), "t"), wantOf(content(1<<20)), nil)
				} else {
					_, err = f.Bytes(context.Background(), srv.URL+"/timestamp.json", 1<<20)
				}
				if !errors.Is(err, tt.want) {
					t.Fatalf("file=%v: got %v, want %v", file, err, tt.want)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("file=%v: took %v", file, d)
				}
			}
		})
	}
}

// TestAcceptThenSilence_R18: a raw TCP listener that accepts connections and
// never writes a byte (not even the TLS handshake).
func TestAcceptThenSilence_R18(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // held open, never written
		}
	}()
	f, err := New(Options{MinRate: 100, RateWindow: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + ln.Addr().String() + "/timestamp.json"
	start := time.Now()
	_, err = f.Bytes(context.Background(), url, 1000)
	if !errors.Is(err, ErrTooSlow) {
		t.Fatalf("got %v, want ErrTooSlow", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
	err = f.File(context.Background(), url, filepath.Join(t.TempDir(), "t"), wantOf([]byte("x")), nil)
	if !errors.Is(err, ErrTooSlow) {
		t.Fatalf("File: got %v, want ErrTooSlow", err)
	}
}

// TestCallerContext: cancelling the caller's context ends a transfer with
// the context's error, not a rate or deadline error.
func TestCallerContext(t *testing.T) {
	srv, f := newServer(t, trickle(10*time.Millisecond), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := f.Bytes(ctx, srv.URL+"/x", 1<<20)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
}

// TestHeadersThenSilence_R18: the server answers with headers and then
// never sends the body.
func TestHeadersThenSilence_R18(t *testing.T) {
	srv, f := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}), Options{MinRate: 100, RateWindow: 200 * time.Millisecond})
	start := time.Now()
	_, err := f.Bytes(context.Background(), srv.URL+"/timestamp.json", 1000)
	if !errors.Is(err, ErrTooSlow) {
		t.Fatalf("got %v, want ErrTooSlow", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
}

// steady serves body in chunks of step bytes every interval, supporting
// Range; stallAt, if positive, makes the first request stall (send nothing
// more) once it has sent stallAt bytes.
func steady(body []byte, step int, interval time.Duration, stallAt int) http.HandlerFunc {
	var mu sync.Mutex
	stalled := false
	return func(w http.ResponseWriter, r *http.Request) {
		start := 0
		if rng := r.Header.Get("Range"); rng != "" {
			fmt.Sscanf(rng, "bytes=%d-", &start)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(body)-1, len(body)))
			w.Header().Set("Content-Length", strconv.Itoa(len(body)-start))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Accept-Ranges", "bytes")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		mu.Lock()
		stall := stallAt > 0 && !stalled
		stalled = true
		mu.Unlock()
		for off := start; off < len(body); off += step {
			if stall && off >= stallAt {
				<-r.Context().Done()
				return
			}
			if _, err := w.Write(body[off:min(off+step, len(body))]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(interval):
			}
		}
	}
}

// TestSlowButSteadyFile_R18: a download that takes longer than
// Options.Timeout but keeps well above the minimum rate finishes, and a
// download cut off by the minimum rate after making progress is resumed.
func TestSlowButSteadyFile_R18(t *testing.T) {
	body := content(4000)
	opts := Options{MinRate: 500, RateWindow: 200 * time.Millisecond, Timeout: 200 * time.Millisecond}
	for _, tc := range []struct {
		name    string
		stallAt int
	}{{"steady", 0}, {"stall once", 2000}} {
		t.Run(tc.name, func(t *testing.T) {
			// 200 bytes every 20 ms: 10 kB/s, 400 ms in all.
			srv, f := newServer(t, steady(body, 200, 20*time.Millisecond, tc.stallAt), opts)
			start := time.Now()
			if err := f.File(context.Background(), srv.URL+"/t", filepath.Join(t.TempDir(), "t"), wantOf(body), nil); err != nil {
				t.Fatalf("after %v: %v", time.Since(start), err)
			}
			if d := time.Since(start); d < opts.Timeout {
				t.Fatalf("took %v, less than the base deadline %v: the test proves nothing", d, opts.Timeout)
			}
		})
	}
}

func TestFileTimeout(t *testing.T) {
	f, err := New(Options{Timeout: time.Minute, MinRate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n    int64
		want time.Duration
	}{
		{0, time.Minute},
		{1, time.Minute + time.Second},
		{1000, time.Minute + time.Second},
		{1001, time.Minute + 2*time.Second},
		{1 << 30, time.Minute + 1073742*time.Second},
		{1 << 62, maxDeadline},
	} {
		if got := f.fileTimeout(tc.n); got != tc.want {
			t.Errorf("fileTimeout(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}
