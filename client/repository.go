package client

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/fetch"
	"github.com/ferry-updates/ferry/internal/metastore"
	"github.com/ferry-updates/ferry/trust"
)

// RepositoryConfig configures a Repository. URLs, a trusted root and
// StateDir are required; everything else has a default.
type RepositoryConfig struct {
	// URLs are the repository base URLs (https), tried in order. One may
	// carry credentials (https://user:token@host/): every event and
	// error shows it with the password redacted.
	URLs            []string
	TrustedRoot     []byte // trusted root.json bytes; or
	TrustedRootFile string // a path to it
	// StateDir is the private directory of this repository's client:
	// trusted metadata (unless Store is set), the download cache, the
	// staging directories and the lock, and the install ID of the
	// installation (see InstallID). Use one per repository; a program
	// that follows several repositories as one installation passes its
	// own install ID in App.InstallID.
	StateDir   string
	RootCAs    *x509.CertPool
	HTTPClient *http.Client
	// InsecureAllowHTTPLoopback permits http:// to loopback addresses (tests only).
	InsecureAllowHTTPLoopback bool
	// Now is the clock of metadata expiry and of events; nil means time.Now.
	Now func() time.Time
	// Events receives every event of every step (package event), from
	// the trust core's metadata.* to download.* and check.*; nil means
	// none. It is called synchronously and must be safe for concurrent use.
	Events event.Observer
	// Store keeps trusted metadata; nil means a directory store in
	// StateDir/metadata. It is trusted storage, private to this
	// repository (see trust.Config.Store).
	Store trust.Store
	// Fetcher fetches metadata and target files; nil means fetch.New with
	// RootCAs, HTTPClient and InsecureAllowHTTPLoopback. Whatever it is,
	// every byte it returns is verified against signed metadata.
	Fetcher Fetcher
}

// Fetcher is how a Repository reads a mirror: *fetch.Fetcher satisfies it.
//
// Bytes returns the body at url, at most maxLen bytes (a longer body is an
// error wrapping fetch.ErrTooLarge); a 404 wraps fetch.ErrNotFound, other
// statuses are a *fetch.StatusError. File downloads url into path,
// resuming a partial file, and leaves a complete file only if its length
// and hashes match want (otherwise an error wrapping fetch.ErrMismatch or
// fetch.ErrTooLarge, and the file is removed).
type Fetcher interface {
	Bytes(ctx context.Context, url string, maxLen int64) ([]byte, error)
	File(ctx context.Context, url, path string, want fetch.Want, progress fetch.Progress) error
}

var _ Fetcher = (*fetch.Fetcher)(nil)

// Repository is the client of one repository, shared by every application
// it serves. It is safe for concurrent use: several goroutines may Check
// and Update different applications at once. Refresh brings the trusted
// metadata up to date once for all of them; Check and Update then use that
// trusted state, fetching nothing but delegated roles not loaded yet (and
// the files they install). One trust operation runs at a time: a Refresh
// waits for a lookup in progress and the other way round, while downloads
// and installs run in parallel.
//
// While any operation runs, the Repository holds the lock
// StateDir/client.lock, so another Repository or Client (in this process
// or another one) with the same StateDir gets an error wrapping ErrBusy.
type Repository struct {
	cfg       RepositoryConfig
	root      []byte
	store     trust.Store
	downloads string // StateDir/downloads
	fetcher   Fetcher
	mirrors   []*mirror
	ev        event.Emitter
	lock      *stateLock
	files     keyedMutex // one download per cache file at a time

	// mu guards the trust client and current, and is held across every
	// trust operation (the trust client is not safe for concurrent use).
	mu      sync.Mutex
	tc      *trust.Client // nil until loaded, and after a failed mirror
	current *mirror       // the mirror of the last successful refresh; nil before
}

// NewRepository validates cfg, creates the state directory and loads the
// trusted state it holds. A missing or empty trusted root is an error:
// verification cannot be skipped. The state directory and its
// subdirectories must be private to this user (see Client's doc, R70).
func NewRepository(cfg RepositoryConfig) (*Repository, error) {
	root, err := validateRepository(&cfg)
	if err != nil {
		return nil, fmt.Errorf("client config: %w", err)
	}
	if err := prepareState(cfg.StateDir); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	r := &Repository{
		cfg: cfg, root: root, store: cfg.Store, fetcher: cfg.Fetcher,
		downloads: filepath.Join(cfg.StateDir, "downloads"),
		ev:        event.Emitter{Observer: event.Or(cfg.Events), Now: cfg.Now},
		lock:      &stateLock{dir: cfg.StateDir},
	}
	if r.store == nil {
		r.store = metastore.Dir(filepath.Join(cfg.StateDir, "metadata"))
	}
	if r.fetcher == nil {
		f, err := fetch.New(fetch.Options{
			RootCAs:                   cfg.RootCAs,
			HTTPClient:                cfg.HTTPClient,
			InsecureAllowHTTPLoopback: cfg.InsecureAllowHTTPLoopback,
			UserAgent:                 "ferry-client",
		})
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		r.fetcher = f
	}
	for _, u := range cfg.URLs {
		r.mirrors = append(r.mirrors, &mirror{base: u, shown: redactURL(u), f: r.fetcher, insecure: cfg.InsecureAllowHTTPLoopback})
	}
	unlock, err := r.lock.acquire()
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	defer unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.trustLocked(); err != nil {
		return nil, err
	}
	return r, nil
}

// validateRepository checks cfg's URLs, root and state directory, and
// returns the trusted root bytes.
func validateRepository(cfg *RepositoryConfig) ([]byte, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("no repository URL")
	}
	urls := make([]string, len(cfg.URLs))
	for i, u := range cfg.URLs {
		if err := fetch.CheckURL(u, cfg.InsecureAllowHTTPLoopback); err != nil {
			return nil, fmt.Errorf("repository URL %q: %w", redactURL(u), err)
		}
		if strings.ContainsAny(u, "?#") {
			return nil, fmt.Errorf("repository URL %q: query or fragment not allowed", redactURL(u))
		}
		urls[i] = strings.TrimSuffix(u, "/") + "/"
	}
	cfg.URLs = urls
	root, err := readRoot(cfg.TrustedRoot, cfg.TrustedRootFile)
	if err != nil {
		return nil, err
	}
	if cfg.StateDir == "" {
		return nil, errors.New("no state directory")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return root, nil
}

// Refresh brings the trusted metadata up to date from the first mirror
// that works (root chain, timestamp, snapshot, top-level targets): once for
// every application of the repository. changed reports whether anything
// new was trusted; when the timestamp is unchanged only timestamp.json is
// fetched (and the next root probed, as TUF requires). On error the
// previously trusted state is kept, and the error joins one *MirrorError
// per mirror; the next Check or Update then refreshes again rather than
// decide on metadata whose refresh failed (a freeze must not go unseen).
func (r *Repository) Refresh(ctx context.Context) (changed bool, err error) {
	unlock, err := r.lock.acquire()
	if err != nil {
		return false, fmt.Errorf("refresh: %w", err)
	}
	defer unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.withMirrorsLocked(ctx, true, nil); err != nil {
		return false, fmt.Errorf("refresh: %w", err)
	}
	return r.tc.Changed, nil
}

// trustLocked returns the trust client, loading it from the store on first
// use or after a failed mirror (so that a mirror's failure leaves no
// half-updated state behind: only what was verified and saved is
// reloaded). r.mu must be held.
func (r *Repository) trustLocked() (*trust.Client, error) {
	if r.tc != nil {
		return r.tc, nil
	}
	tc, err := trust.New(trust.Config{Root: r.root, Store: r.store, Now: r.cfg.Now, Events: r.ev.Observer})
	if err != nil {
		return nil, fmt.Errorf("client: trusted metadata: %w", err)
	}
	r.tc = tc
	return tc, nil
}

// withTrust runs op with the trusted state under r.mu, refreshing first if
// refresh is set or no refresh has succeeded yet (see withMirrorsLocked).
func (r *Repository) withTrust(ctx context.Context, refresh bool, op func(*trust.Client, *mirror) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.withMirrorsLocked(ctx, refresh, op)
}

// withMirrorsLocked runs op (if not nil) against the mirrors in order until
// one succeeds. With refresh set, or before the first successful refresh,
// each attempt refreshes first. A failed attempt drops the in-memory trust
// state (it is reloaded from what was verified and saved) so the next
// mirror starts clean; it is recorded as a *MirrorError and reported as a
// mirror.failed event (metadata the trust core refused is its own
// metadata.rejected event). r.mu must be held.
func (r *Repository) withMirrorsLocked(ctx context.Context, refresh bool, op func(*trust.Client, *mirror) error) error {
	if refresh {
		r.current = nil
	}
	var errs []error
	for _, m := range r.mirrors {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		tc, err := r.trustLocked()
		if err != nil {
			return err
		}
		if r.current == nil {
			if err = tc.Refresh(ctx, m); err == nil {
				r.ev.Emit(event.Refreshed, "", "", "changed", fmt.Sprint(tc.Changed), "mirror", m.shown)
			}
		}
		if err == nil {
			r.current = m
			if op == nil {
				return nil
			}
			if err = op(tc, m); err == nil {
				return nil
			}
		}
		r.tc, r.current = nil, nil
		errs = append(errs, &MirrorError{URL: m.shown, Err: err})
		if se := (*trust.SecurityError)(nil); !errors.As(err, &se) {
			r.ev.Emit(event.MirrorFailed, "", err.Error(), "mirror", m.shown)
		}
	}
	return errors.Join(errs...)
}

// keyedMutex is a set of mutexes by name, created on first use.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*sync.Mutex
}

// lock locks name's mutex and returns its unlock.
func (k *keyedMutex) lock(name string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*sync.Mutex{}
	}
	l, ok := k.m[name]
	if !ok {
		l = &sync.Mutex{}
		k.m[name] = l
	}
	k.mu.Unlock()
	l.Lock()
	return l.Unlock
}
