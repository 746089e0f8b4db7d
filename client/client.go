// Package client is the library an application embeds to update itself:
// Check finds the newest signed release, Download fetches and verifies it.
package client

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"time"
)

// Config configures a Client. The zero value is safe but incomplete: URLs,
// a trusted root, StateDir and App are required.
type Config struct {
	URLs            []string // repository base URLs (https), tried in order
	TrustedRoot     []byte   // trusted root.json bytes; or
	TrustedRootFile string   // a path to it
	StateDir        string   // private directory for trusted metadata and partial downloads
	App             string
	Platform        string // "os/arch"; default runtime.GOOS + "/" + runtime.GOARCH
	Installed       string // installed version (semver); "" means none
	RootCAs         *x509.CertPool
	HTTPClient      *http.Client
	// InsecureAllowHTTPLoopback permits http:// to loopback addresses (tests only).
	InsecureAllowHTTPLoopback bool
	Progress                  func(done, total int64)
	Now                       func() time.Time
}

// Release is one signed artifact of an application.
type Release struct {
	App      string
	Version  string
	Platform string
	Kind     string // "binary", "tar.gz", "tar.zst" or "zip"
	Path     string // TUF target path APP/VERSION/OS-ARCH/FILE
	Length   int64
	Hashes   map[string][]byte
}

// Client checks for and downloads releases. Not safe for concurrent use.
type Client struct{ cfg Config }

// New validates cfg.
func New(cfg Config) (*Client, error) { return nil, errors.New("client: not implemented") }

// Check refreshes metadata and returns the newest release above Installed, or nil.
func (c *Client) Check(ctx context.Context) (*Release, error) {
	return nil, errors.New("client: not implemented")
}

// Download fetches rel into dir after verifying length and hashes; it returns the final path.
func (c *Client) Download(ctx context.Context, rel *Release, dir string) (string, error) {
	return "", errors.New("client: not implemented")
}
