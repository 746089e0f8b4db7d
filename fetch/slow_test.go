package fetch

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
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
// the minimum rate, or by the overall deadline when the rate is met.
func TestSlowRetrieval_R18(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want error
	}{
		{"min rate", Options{MinRate: 1000, RateWindow: 200 * time.Millisecond, Timeout: 20 * time.Second}, ErrTooSlow},
		{"deadline", Options{MinRate: 1, RateWindow: 200 * time.Millisecond, Timeout: 500 * time.Millisecond}, ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, f := newServer(t, trickle(20*time.Millisecond), tt.opts)
			for _, file := range []bool{false, true} {
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
