// Package fetch is ferry's HTTPS transport: it downloads metadata and
// artifacts with size limits, an overall deadline, a minimum transfer rate,
// Range resume and a redirect policy that never leaves https or the
// configured host.
package fetch

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"time"
)

// Options configure a Fetcher. The zero value is safe: system roots,
// https only.
type Options struct {
	RootCAs    *x509.CertPool // nil: system roots
	HTTPClient *http.Client   // nil: a client built here; if set, its Transport is used but the redirect policy is ferry's
	// InsecureAllowHTTPLoopback permits plain http:// to a loopback address
	// (127.0.0.0/8, ::1, localhost). For tests and local development only.
	InsecureAllowHTTPLoopback bool
	Timeout                   time.Duration // overall deadline per request; 0: a default
	MinRate                   int64         // bytes per second averaged over RateWindow; 0: a default
	RateWindow                time.Duration // 0: a default
	UserAgent                 string
}

// Fetcher downloads over HTTPS. It is safe for concurrent use.
type Fetcher struct{ opts Options }

// New validates opts and returns a Fetcher.
func New(opts Options) (*Fetcher, error) { return nil, errors.New("fetch: not implemented") }

// CheckURL reports whether rawURL may be fetched: https, or http to a
// loopback host when insecure loopback is allowed.
func CheckURL(rawURL string, insecureAllowHTTPLoopback bool) error {
	return errors.New("fetch: not implemented")
}

// Bytes fetches url into memory, failing if the body exceeds maxLen bytes.
// A 404 wraps trust.ErrNotFound-compatible ErrNotFound.
func (f *Fetcher) Bytes(ctx context.Context, url string, maxLen int64) ([]byte, error) {
	return nil, errors.New("fetch: not implemented")
}

// Want is what a downloaded file must be: its exact length and hashes
// (algorithm name as in TUF, e.g. "sha256", to raw digest).
type Want struct {
	Length int64
	Hashes map[string][]byte
}

// Progress reports bytes done of total.
type Progress func(done, total int64)

// File downloads url into the file at path (created 0600 if missing),
// resuming from the bytes already there with a Range request, never writing
// beyond want.Length. It hashes the whole file (including bytes from an
// earlier attempt) and returns nil only if length and every known hash match.
// On a mismatch the partial file is removed.
func (f *Fetcher) File(ctx context.Context, url, path string, want Want, progress Progress) error {
	return errors.New("fetch: not implemented")
}

// ErrNotFound is wrapped by errors for a 404 response.
var ErrNotFound = errors.New("not found")
