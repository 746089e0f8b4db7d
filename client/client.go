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
	"runtime"
	"time"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/release"
)

// Config configures a Client: one Repository and one application. The
// zero value is safe but incomplete: URLs, a trusted root, StateDir and
// App are required.
type Config struct {
	URLs            []string // repository base URLs (https), tried in order
	TrustedRoot     []byte   // trusted root.json bytes; or
	TrustedRootFile string   // a path to it
	StateDir        string   // private directory for trusted metadata and partial downloads
	App             string
	Platform        string // "os/arch"; default runtime.GOOS + "/" + runtime.GOARCH
	Installed       string // installed version (release.ValidVersion: 1.4.2, no "v", no +build); "" means none
	// Channel is the rollout channel to follow (release.ValidChannel);
	// "" means rollout.DefaultChannel ("stable").
	Channel    string
	RootCAs    *x509.CertPool
	HTTPClient *http.Client
	// InsecureAllowHTTPLoopback permits http:// to loopback addresses (tests only).
	InsecureAllowHTTPLoopback bool
	Progress                  func(done, total int64)
	Now                       func() time.Time
	// Events receives every event of every step (package event):
	// metadata refused by trust (metadata.rejected), a failed mirror
	// (mirror.failed), a download that failed verification
	// (download.rejected), an unverified cache file
	// (download.cache_rejected), a refused release (release.refused: one
	// given to Download, or a signed target of App that is not a valid
	// release and so is skipped by Check and Update), check.*, download.*
	// and rollout.*. Nil means none.
	Events event.Observer
	// Log, if set, receives the same events as Events, written by
	// event.Slog (one record per event, attribute "event" the kind).
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
	manifest map[string]string // the signed release manifest (FILE -> sha256 hex), nil if none
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

// Client checks for, downloads and installs the releases of one
// application: a Repository and an App. Not safe for concurrent use; use a
// Repository for several applications or goroutines.
type Client struct {
	cfg  Config
	repo *Repository
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
	if cfg.Platform == "" {
		cfg.Platform = runtime.GOOS + "/" + runtime.GOARCH
	}
	if err := validateApp(cfg); err != nil {
		return nil, fmt.Errorf("client config: %w", err)
	}
	r, err := NewRepository(RepositoryConfig{
		URLs: cfg.URLs, TrustedRoot: cfg.TrustedRoot, TrustedRootFile: cfg.TrustedRootFile,
		StateDir: cfg.StateDir, RootCAs: cfg.RootCAs, HTTPClient: cfg.HTTPClient,
		InsecureAllowHTTPLoopback: cfg.InsecureAllowHTTPLoopback, Now: cfg.Now,
		Events: event.Tee(cfg.Events, event.Slog(cfg.Log)),
	})
	if err != nil {
		return nil, err
	}
	cfg.URLs = r.cfg.URLs
	return &Client{cfg: cfg, repo: r}, nil
}

// validateApp checks the application fields of cfg.
func validateApp(cfg Config) error {
	if err := release.ValidApp(cfg.App); err != nil {
		return err
	}
	if err := release.ValidPlatform(cfg.Platform); err != nil {
		return err
	}
	if cfg.Channel != "" {
		if err := release.ValidChannel(cfg.Channel); err != nil {
			return err
		}
	}
	if cfg.Installed != "" {
		if err := release.ValidVersion(cfg.Installed); err != nil {
			return fmt.Errorf("installed %w", err)
		}
	}
	return nil
}

// Repository returns the Repository the Client uses.
func (c *Client) Repository() *Repository { return c.repo }

// app is the Client's application as a Repository call sees it.
func (c *Client) app() App {
	return App{Name: c.cfg.App, Platform: c.cfg.Platform, Channel: c.cfg.Channel, Installed: c.cfg.Installed,
		Prerelease: c.cfg.Prerelease, Progress: c.cfg.Progress}
}

// begin validates the Client's application and takes the state lock for
// one operation.
func (c *Client) begin() (*call, func(), error) {
	a, err := c.repo.app(c.app())
	if err != nil {
		return nil, nil, err
	}
	unlock, err := c.repo.lock.acquire()
	if err != nil {
		return nil, nil, err
	}
	return c.repo.newCall(a), unlock, nil
}

// Check refreshes metadata and returns the release the rollout decisions
// offer this installation (Repository.Check): the newest release above
// Installed in its channel and cohort, one at or above the signed minimum
// safe version when Installed is below it, or, when the installed version
// was pulled, the newest good release even if older (the only downgrade).
// nil means nothing to install. A repository that has never published
// App, or no release of it for Platform, is an error wrapping a
// *NotPublishedError (ErrUnknownApp or ErrUnknownPlatform).
func (c *Client) Check(ctx context.Context) (*Release, error) {
	offer, err := c.CheckOffer(ctx)
	if err != nil {
		return nil, err
	}
	return offer.Release, nil
}

// CheckOffer is Check returning the whole Offer: the release (nil when
// there is nothing to install), all its files, the rollout decision and
// the version it holds back, if any.
func (c *Client) CheckOffer(ctx context.Context) (*Offer, error) {
	call, unlock, err := c.begin()
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", c.cfg.App, err)
	}
	defer unlock()
	offer, _, err := call.check(ctx, true)
	if err != nil {
		return nil, err
	}
	return offer, nil
}

// Download fetches rel into dir after verifying length and hashes; it returns the final path.
//
// Only rel.Path is read: the release is looked up again in trusted metadata,
// and refused (ErrRefused) unless it is a file of the release Check would
// offer now, on the same trusted state: the rollout decision (not a
// halted or pulled release, not another channel or cohort, not below the
// minimum safe version, a downgrade only after a signed pull) and the
// release's signed manifest (R48) bind Download as they bind Update. The
// file is named after the last element of the path; a "binary" gets mode
// 0755, an archive 0644. dir is created if missing.
func (c *Client) Download(ctx context.Context, rel *Release, dir string) (string, error) {
	call, unlock, err := c.begin()
	if err != nil {
		return "", fmt.Errorf("download: %w", err)
	}
	defer unlock()
	if rel != nil {
		if err := call.offers(ctx, rel.Path); err != nil {
			return "", fmt.Errorf("download: %w", err)
		}
	}
	dest, _, err := call.download(ctx, rel, dir)
	return dest, err
}

// Update refreshes metadata, checks and installs with inst
// (Repository.Update). After a successful update the Client treats the
// new version as installed.
func (c *Client) Update(ctx context.Context, inst Installer) (*Outcome, error) {
	if inst == nil {
		return nil, errors.New("update: no installer")
	}
	call, unlock, err := c.begin()
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", c.cfg.App, err)
	}
	defer unlock()
	out, err := call.update(ctx, inst, true)
	if err == nil && out.Release != nil && !out.Result.RolledBack {
		c.cfg.Installed = out.Release.Version
	}
	return out, err
}

// readRoot returns the configured trusted root: exactly one of root and
// file, non-empty.
func readRoot(root []byte, file string) ([]byte, error) {
	switch {
	case len(root) > 0 && file != "":
		return nil, errors.New("both TrustedRoot and TrustedRootFile set; choose one")
	case len(root) > 0:
		return append([]byte(nil), root...), nil
	case file == "":
		return nil, errors.New("no trusted root: set TrustedRoot or TrustedRootFile (verification cannot be skipped)")
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("trusted root: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRootSize+1))
	if err != nil {
		return nil, fmt.Errorf("trusted root %s: %w", file, err)
	}
	if len(b) > maxRootSize {
		return nil, fmt.Errorf("trusted root %s: larger than %d bytes", file, maxRootSize)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("trusted root %s: empty file", file)
	}
	return b, nil
}
