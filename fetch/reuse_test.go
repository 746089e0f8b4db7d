package fetch_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferry-updates/ferry/fetch"
)

// TestConnectionReusedAfterNotFound: every refresh starts with a 404 for
// the next root, so an error response must not cost a new TLS connection
// for the request after it.
func TestConnectionReusedAfterNotFound(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/missing") {
			http.Error(w, strings.Repeat("not found ", 100), http.StatusNotFound)
			return
		}
		w.Write([]byte("ok"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS() // HTTP/1.1: an undrained body would close the connection
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	f, err := fetch.New(fetch.Options{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := f.Bytes(ctx, srv.URL+"/missing", 100); !errors.Is(err, fetch.ErrNotFound) {
			t.Fatalf("missing: %v", err)
		}
		if b, err := f.Bytes(ctx, srv.URL+"/ok", 100); err != nil || string(b) != "ok" {
			t.Fatalf("ok: %q, %v", b, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 6 requests, want 1", n)
	}
}
