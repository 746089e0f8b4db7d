package client

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"

	"github.com/ferry-updates/ferry/fetch"
	"github.com/ferry-updates/ferry/trust"
)

// MirrorError is one mirror's failure. When every mirror fails, the
// returned error joins one MirrorError per mirror, in order.
type MirrorError struct {
	URL string // the mirror's base URL, its password redacted (see redactURL)
	Err error
}

func (e *MirrorError) Error() string { return "mirror " + e.URL + ": " + e.Err.Error() }

func (e *MirrorError) Unwrap() error { return e.Err }

// mirror is one repository base URL; it is the trust.Source for that mirror.
type mirror struct {
	base     string // ends in "/"; may hold credentials: requests only
	shown    string // base for events and errors: redactURL(base)
	f        Fetcher
	insecure bool // InsecureAllowHTTPLoopback, for fetch.Join
}

var _ trust.Source = (*mirror)(nil)

// FetchMetadata fetches BASE/metadata/NAME (see MetadataSource).
func (m *mirror) FetchMetadata(ctx context.Context, name string, maxLen int64) ([]byte, error) {
	return fetchMetadata(ctx, m.f, m.base+"metadata/", name, maxLen, m.insecure)
}

// MetadataSource is a trust.Source over one metadata base URL, for callers
// that drive the trust package themselves (such as "ferry tuf").
type MetadataSource struct {
	URL                       string // the metadata base URL, e.g. https://host/metadata/
	Fetcher                   *fetch.Fetcher
	InsecureAllowHTTPLoopback bool
}

var _ trust.Source = (*MetadataSource)(nil)

// FetchMetadata fetches URL/NAME. A 404 wraps trust.ErrNotFound and a 403
// (how S3-style hosts answer for a missing object) wraps
// trust.ErrForbidden. trust hands over name as one already-escaped path
// segment (role names from signed metadata percent-encoded); it is appended
// as it is, only if it is one segment, so it stays under the base.
func (s *MetadataSource) FetchMetadata(ctx context.Context, name string, maxLen int64) ([]byte, error) {
	return fetchMetadata(ctx, s.Fetcher, s.URL, name, maxLen, s.InsecureAllowHTTPLoopback)
}

// fetchMetadata fetches base/name with f (see MetadataSource.FetchMetadata).
func fetchMetadata(ctx context.Context, f Fetcher, base, name string, maxLen int64, insecure bool) ([]byte, error) {
	u, err := fetch.JoinEscaped(base, name, insecure)
	if err != nil {
		return nil, err
	}
	b, err := f.Bytes(ctx, u, maxLen)
	var se *fetch.StatusError
	switch {
	case errors.Is(err, fetch.ErrNotFound):
		return nil, fmt.Errorf("%w: %w", trust.ErrNotFound, err)
	case errors.As(err, &se) && se.Code == http.StatusForbidden:
		return nil, fmt.Errorf("%w: %w", trust.ErrForbidden, err)
	}
	return b, err
}

// targetURL is the consistent-snapshot URL of target p (already validated
// as APP/VERSION/OS-ARCH/FILE): BASE/targets/APP/VERSION/OS-ARCH/SHA256HEX.FILE.
func (m *mirror) targetURL(p string, sha256 []byte) (string, error) {
	dir, file := path.Split(p)
	return fetch.Join(m.base+"targets/", dir+hex.EncodeToString(sha256)+"."+file, m.insecure)
}

// redactURL is how a URL appears in an event or an error: a password in
// its userinfo (https://user:token@host/) replaced by "xxxxx", like the
// fetch package's own errors. Every mirror, download and configuration
// URL the client reports goes through it; the real URL is used only for
// requests.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a URL that does not parse)"
	}
	return u.Redacted()
}
