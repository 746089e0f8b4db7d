package harness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// CounterPath is the server path that reports the bytes and requests served
// so far; requests to it are not counted.
const CounterPath = "/__bench/count"

// Server is an HTTPS server on 127.0.0.1 that counts what it serves.
type Server struct {
	URL    string // https://127.0.0.1:PORT
	CAFile string // PEM certificate that clients must trust
	srv    *httptest.Server
	bytes  atomic.Int64
	reqs   atomic.Int64
	files  atomic.Int64 // responses with status 200 or 206
}

// Counts is what a Server has served: body bytes, requests, and files
// (responses with status 200 or 206; a 404 is a request but no file).
type Counts struct{ Bytes, Requests, Files int64 }

// Serve starts h over TLS on 127.0.0.1 with a fresh self-signed certificate
// (valid for 127.0.0.1) and writes that certificate to caFile.
func Serve(h http.Handler, caFile string) (*Server, error) {
	s := &Server{CAFile: caFile}
	mux := http.NewServeMux()
	mux.HandleFunc(CounterPath, s.serveCount)
	mux.Handle("/", s.count(h))
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.Config.ReadHeaderTimeout = 10 * time.Second
	s.srv.StartTLS()
	s.URL = s.srv.URL
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	if err := os.WriteFile(caFile, cert, 0o600); err != nil {
		s.srv.Close()
		return nil, fmt.Errorf("write CA certificate: %w", err)
	}
	return s, nil
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Counts returns what the server has served so far.
func (s *Server) Counts() Counts { return Counts{s.bytes.Load(), s.reqs.Load(), s.files.Load()} }

func (s *Server) serveCount(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.Counts())
}

func (s *Server) count(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.reqs.Add(1)
		cw := &countingWriter{ResponseWriter: w, n: &s.bytes}
		h.ServeHTTP(cw, r)
		if cw.status == 0 || cw.status == http.StatusOK || cw.status == http.StatusPartialContent {
			s.files.Add(1)
		}
	})
}

// countingWriter counts body bytes written. It keeps io.ReaderFrom out of
// the way on purpose: http.ServeContent then copies through Write, where
// the bytes are counted.
type countingWriter struct {
	http.ResponseWriter
	n      *atomic.Int64
	status int
}

func (c *countingWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// Flush passes through to the underlying writer when it can flush.
func (c *countingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// CAPool reads the PEM certificates in caFile into a pool.
func CAPool(caFile string) (*x509.CertPool, error) {
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate", caFile)
	}
	return pool, nil
}

// HTTPClient returns a client that trusts only the certificates in pool
// (TLS 1.2 minimum, certificate verification on).
func HTTPClient(pool *x509.CertPool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 10 * time.Minute}
}

// FetchCounts asks the server at baseURL what it has served so far. The
// request itself is not counted.
func FetchCounts(ctx context.Context, hc *http.Client, baseURL string) (Counts, error) {
	u := strings.TrimSuffix(baseURL, "/") + CounterPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Counts{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Counts{}, fmt.Errorf("fetch counts: %w", err)
	}
	defer resp.Body.Close()
	var c Counts
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		return Counts{}, fmt.Errorf("decode counts: %w", err)
	}
	return c, nil
}
