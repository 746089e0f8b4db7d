package fetch

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// A server that compresses whatever the request asked for: no byte of it
// reaches a decompressor before verification, whether the transport is
// ferry's own or a caller's http.Client that would ask for gzip and
// inflate transparently (R39). Every request asks for identity, and an
// encoded response is refused with a clear error, for metadata (Bytes) and
// for targets (File).
func TestEncodedResponseRefused_R39(t *testing.T) {
	payload := bytes.Repeat([]byte("ferry "), 4096)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(payload)
	zw.Close()
	var mu sync.Mutex
	var asked []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.Header.Get("Accept-Encoding"))
		mu.Unlock()
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(gz.Bytes())
	})
	srv, own := newServer(t, h, Options{})
	theirs, err := New(Options{HTTPClient: srv.Client()}) // Go's defaults: asks for gzip, inflates
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		f    *Fetcher
	}{{"ferry's transport", own}, {"caller's http.Client", theirs}} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			asked = nil
			b, err := c.f.Bytes(ctx, srv.URL+"/timestamp.json", 1<<20)
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "Content-Encoding gzip") {
				t.Errorf("Bytes of a gzipped response: %d bytes, %v; want a refusal naming the encoding", len(b), err)
			}
			path := filepath.Join(t.TempDir(), "target")
			err = c.f.File(ctx, srv.URL+"/target", path, wantOf(payload), nil)
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "Content-Encoding gzip") {
				t.Errorf("File of a gzipped response: %v; want a refusal naming the encoding", err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, a := range asked {
				if a != "identity" {
					t.Errorf("request asked for Accept-Encoding %q, want identity", a)
				}
			}
			if len(asked) == 0 {
				t.Error("no request reached the server")
			}
		})
	}
}
