package client

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/fetch"
	"github.com/ferry-updates/ferry/internal/metastore"
	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/trust"
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
	Installed       string // installed version (release.ValidVersion: 1.4.2, no "v", no +build); "" means none
	RootCAs         *x509.CertPool
	HTTPClient      *http.Client
	// InsecureAllowHTTPLoopback permits http:// to loopback addresses (tests only).
	InsecureAllowHTTPLoopback bool
	Progress                  func(done, total int64)
	Now                       func() time.Time
	// Log receives one structured event (attribute "event") per rejection:
	// metadata refused by trust ("metadata.rejected"), a failed mirror
	// ("client.mirror_error"), a download that failed verification
	// ("client.download_reject"), an unverified cache file
	// ("client.cache_reject") and a refused release ("client.release_refused":
	// one given to Download, or a signed target of App that is not a valid
	// release and so is skipped by Check and Update).
	// Nil means no logging.
	Log *slog.Logger
	// Prerelease lets Check offer pre-release versions (1.5.0-rc.1);
	// by default only releases without a pre-release suffix are offered.
	Prerelease bool
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

// String describes r in one line, for logs and messages.
func (r *Release) String() string {
	if r == nil {
		return "<no release>"
	}
	return fmt.Sprintf("%s %s %s (%s, %d bytes, sha256 %s)",
		r.App, r.Version, r.Platform, r.Path, r.Length, shortHex(r.Hashes["sha256"]))
}

func shortHex(b []byte) string {
	s := hex.EncodeToString(b)
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}

// Client checks for and downloads releases. Not safe for concurrent use.
type Client struct {
	cfg       Config
	root      []byte      // the trusted root shipped with the application
	store     trust.Store // StateDir/metadata
	downloads string      // StateDir/downloads
	fetcher   *fetch.Fetcher
	mirrors   []*mirror
	tc        *trust.Client // nil until loaded
	current   *mirror       // the mirror of the last successful refresh; nil before
}

// maxRootSize bounds a trusted root read from TrustedRootFile (go-tuf's
// default limit for root metadata).
const maxRootSize = 512000

// New validates cfg, creates the state directory and loads trusted state.
// A missing or empty trusted root is an error: verification cannot be
// skipped. The state directory and its subdirectories (metadata,
// downloads, staging) must be private to this user: a pre-created one that
// is a symlink, belongs to someone else or that group or others may use is
// refused before anything is read from it (R70).
func New(cfg Config) (*Client, error) {
	root, err := validate(&cfg)
	if err != nil {
		return nil, fmt.Errorf("client config: %w", err)
	}
	metaDir := filepath.Join(cfg.StateDir, "metadata")
	downloads := filepath.Join(cfg.StateDir, "downloads")
	if err := prepareState(cfg.StateDir); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	unlock, err := lockState(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	defer unlock()
	f, err := fetch.New(fetch.Options{
		RootCAs:                   cfg.RootCAs,
		HTTPClient:                cfg.HTTPClient,
		InsecureAllowHTTPLoopback: cfg.InsecureAllowHTTPLoopback,
		UserAgent:                 "ferry-client",
	})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := &Client{cfg: cfg, root: root, store: metastore.Dir(metaDir), downloads: downloads, fetcher: f}
	for _, u := range cfg.URLs {
		c.mirrors = append(c.mirrors, &mirror{base: u, f: f, insecure: cfg.InsecureAllowHTTPLoopback})
	}
	if _, err := c.trust(); err != nil {
		return nil, err
	}
	return c, nil
}

// validate checks cfg, fills in defaults and returns the trusted root bytes.
func validate(cfg *Config) ([]byte, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("no repository URL")
	}
	urls := make([]string, len(cfg.URLs))
	for i, u := range cfg.URLs {
		if err := fetch.CheckURL(u, cfg.InsecureAllowHTTPLoopback); err != nil {
			return nil, fmt.Errorf("repository URL %q: %w", u, err)
		}
		if strings.ContainsAny(u, "?#") {
			return nil, fmt.Errorf("repository URL %q: query or fragment not allowed", u)
		}
		urls[i] = strings.TrimSuffix(u, "/") + "/"
	}
	cfg.URLs = urls
	root, err := readRoot(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.StateDir == "" {
		return nil, errors.New("no state directory")
	}
	if err := release.ValidApp(cfg.App); err != nil {
		return nil, err
	}
	if cfg.Platform == "" {
		cfg.Platform = runtime.GOOS + "/" + runtime.GOARCH
	}
	if err := release.ValidPlatform(cfg.Platform); err != nil {
		return nil, err
	}
	if cfg.Installed != "" {
		if err := release.ValidVersion(cfg.Installed); err != nil {
			return nil, fmt.Errorf("installed %w", err)
		}
	}
	return root, nil
}

// readRoot returns the configured trusted root: exactly one of TrustedRoot
// and TrustedRootFile, non-empty.
func readRoot(cfg *Config) ([]byte, error) {
	switch {
	case len(cfg.TrustedRoot) > 0 && cfg.TrustedRootFile != "":
		return nil, errors.New("both TrustedRoot and TrustedRootFile set; choose one")
	case len(cfg.TrustedRoot) > 0:
		return append([]byte(nil), cfg.TrustedRoot...), nil
	case cfg.TrustedRootFile == "":
		return nil, errors.New("no trusted root: set TrustedRoot or TrustedRootFile (verification cannot be skipped)")
	}
	f, err := os.Open(cfg.TrustedRootFile)
	if err != nil {
		return nil, fmt.Errorf("trusted root: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRootSize+1))
	if err != nil {
		return nil, fmt.Errorf("trusted root %s: %w", cfg.TrustedRootFile, err)
	}
	if len(b) > maxRootSize {
		return nil, fmt.Errorf("trusted root %s: larger than %d bytes", cfg.TrustedRootFile, maxRootSize)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("trusted root %s: empty file", cfg.TrustedRootFile)
	}
	return b, nil
}

// trust returns the trust client, loading it from the store on first use or
// after a failed refresh (so that a mirror's failure leaves no half-updated
// state behind: only what was verified and saved is reloaded).
func (c *Client) trust() (*trust.Client, error) {
	if c.tc != nil {
		return c.tc, nil
	}
	tc, err := trust.New(trust.Config{Root: c.root, Store: c.store, Now: c.cfg.Now, Events: event.Slog(c.cfg.Log)})
	if err != nil {
		return nil, fmt.Errorf("client: trusted metadata: %w", err)
	}
	c.tc = tc
	return tc, nil
}

// Check refreshes metadata and returns the newest release above Installed,
// or nil when there is none: the application and platform exist in the
// repository and nothing is newer. A repository that has never published
// App, or no release of it for Platform, is an error wrapping a
// *NotPublishedError (ErrUnknownApp or ErrUnknownPlatform).
func (c *Client) Check(ctx context.Context) (*Release, error) {
	unlock, err := c.lock()
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", c.cfg.App, err)
	}
	defer unlock()
	p := c.policy()
	s, err := c.selection(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", c.cfg.App, err)
	}
	return pick(s.rels, p), nil
}

func (c *Client) policy() policy {
	return policy{
		app:        c.cfg.App,
		platform:   c.cfg.Platform,
		installed:  c.cfg.Installed,
		prerelease: c.cfg.Prerelease,
	}
}

// targetsUnder refreshes metadata and returns every target under "APP/".
func (c *Client) targetsUnder(ctx context.Context) (map[string]*metadata.TargetFiles, error) {
	var targets map[string]*metadata.TargetFiles
	err := c.withMirrors(ctx, true, func(tc *trust.Client, m *mirror) (err error) {
		targets, err = tc.TargetsUnder(ctx, m, c.cfg.App+"/")
		return err
	})
	return targets, err
}

// event logs one structured rejection event, if a logger is configured.
func (c *Client) event(name string, attrs ...slog.Attr) { c.log(slog.LevelWarn, name, attrs) }

// note logs one informational event, if a logger is configured.
func (c *Client) note(name string, attrs ...slog.Attr) { c.log(slog.LevelInfo, name, attrs) }

func (c *Client) log(level slog.Level, name string, attrs []slog.Attr) {
	if c.cfg.Log == nil {
		return
	}
	attrs = append([]slog.Attr{slog.String("event", name), slog.String("app", c.cfg.App)}, attrs...)
	c.cfg.Log.LogAttrs(context.Background(), level, name, attrs...)
}
