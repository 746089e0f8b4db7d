package trust

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Source fetches metadata files from one repository mirror.
//
// FetchMetadata returns the bytes of the metadata file called name,
// relative to the mirror's metadata base, reading at most maxLen bytes: a
// longer body is an error (never truncated data).
//
// name is always one URL path segment, already escaped: "timestamp.json",
// "N.root.json", "V.snapshot.json", "V.targets.json", and for a delegated
// role "V." + RoleFileName(role) (every byte outside [A-Za-z0-9._~-]
// percent-encoded, so role "a/b" is "V.a%2Fb.json"; "ROLE.json" without
// consistent snapshots). A Source appends it to its base as it is, never
// escaping it again, after checking that it is one segment (no "/", "?",
// "#", not "." or ".."): fetch.JoinEscaped does both. A missing file is an
// error wrapping ErrNotFound; a refused one (HTTP 403) an error wrapping
// ErrForbidden.
type Source interface {
	FetchMetadata(ctx context.Context, name string, maxLen int64) ([]byte, error)
}

// Store persists trusted metadata between runs.
//
// Load returns the bytes last saved for role, or an error wrapping
// fs.ErrNotExist. Save durably and atomically replaces the copy for role
// (a crash leaves the old or the new copy, never a torn one); after an
// error, the Store may hold either copy. Role names are
// arbitrary strings from signed metadata; the Store encodes them safely.
type Store interface {
	Load(role string) ([]byte, error)
	Save(role string, data []byte) error
}

// Size limits for metadata whose parent gives no length (bytes).
const (
	MaxRootLength      = 512_000
	MaxTimestampLength = 16 << 10
	MaxSnapshotLength  = 32 << 20
	MaxTargetsLength   = 32 << 20
)

// Defaults for Config's limits.
const (
	DefaultMaxRootRotations = 256
	DefaultMaxDelegations   = 32
)

// Config configures a Client. Root and Store are required.
type Config struct {
	Root []byte // trusted root.json shipped with the application (required)
	// Store is where trusted metadata is kept (required). It is trusted
	// storage: only this Client (for this repository) may write to it, and
	// callers should key it per repository (for example by a hash of Root),
	// never share one Store between repositories. A stored root is used
	// instead of Root only when its version is higher (it was reached from
	// Root by a verified rotation); one of the same version with other
	// content, or an older one, is ignored.
	Store Store
	// Now is the clock; nil means time.Now. Expiry is judged against the
	// time read once at the start of each refresh.
	Now func() time.Time
	// Log receives one structured event per rejection (and per ignored
	// cached file). Nil means no logging.
	Log *slog.Logger
	// MaxRootRotations bounds the root versions fetched per refresh;
	// 0 means DefaultMaxRootRotations.
	MaxRootRotations int
	// MaxDelegations bounds the roles visited per target lookup; 0 means
	// DefaultMaxDelegations.
	MaxDelegations int
}

// Client holds trusted metadata. It is not safe for concurrent use.
type Client struct {
	cfg Config
	log *slog.Logger
	st  *state
	// memo holds lookup results for st (see memo).
	memo *memo
	// RefTime is the reference time of the last successful refresh, against
	// which expiry of delegated roles is judged. Zero before a refresh.
	RefTime time.Time
}

// New loads trusted state from the Store (falling back to Config.Root when
// the stored copy is missing or fails verification) and returns a Client.
// Cached timestamp, snapshot and targets are trusted only where they verify
// against the loaded root (and targets against the snapshot); anything else
// is ignored and logged as a "tuf.cache_reject" event. A cached snapshot
// older than the cached timestamp names is kept as the rollback reference
// for the next one; Refresh replaces it before anything is served.
func New(cfg Config) (*Client, error) {
	if len(cfg.Root) == 0 {
		return nil, errors.New("trust: config: trusted root is required")
	}
	if cfg.Store == nil {
		return nil, errors.New("trust: config: store is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxRootRotations <= 0 {
		cfg.MaxRootRotations = DefaultMaxRootRotations
	}
	if cfg.MaxDelegations <= 0 {
		cfg.MaxDelegations = DefaultMaxDelegations
	}
	c := &Client{cfg: cfg, log: cfg.Log}
	root, d, err := loadRoot(cfg.Root)
	if err != nil {
		c.logReject(err)
		return nil, fmt.Errorf("trust: config root: %w", err)
	}
	c.st = newState(c.storedRoot(root, d))
	c.loadCached()
	return c, nil
}

// storedRoot returns the root saved in the Store if it may replace the
// configured root, else configured. The Store is trusted storage (see
// Config.Store): a stored root newer than the configured one is trusted if
// it is signed by its own threshold, since a refresh saved it only after
// verifying the chain to it. A stored root that cannot be the configured
// root's successor is ignored and logged: an older version, or the same
// version with other signed content (a state directory shared with another
// repository, or tampered with).
func (c *Client) storedRoot(configured *metadata.Metadata[metadata.RootType], cd *doc) *metadata.Metadata[metadata.RootType] {
	data, err := c.load(metadata.ROOT)
	if err != nil {
		return configured
	}
	stored, sd, err := loadRoot(data)
	if err != nil {
		c.logEvent("tuf.cache_reject", metadata.ROOT, err.Error())
		return configured
	}
	cv, sv := configured.Signed.Version, stored.Signed.Version
	switch {
	case sv > cv:
		return stored
	case sv < cv:
		c.logEvent("tuf.cache_reject", metadata.ROOT, fmt.Sprintf("stored root version %d is older than the configured root's %d", sv, cv))
	case !bytes.Equal(sd.canon, cd.canon):
		c.logEvent("tuf.cache_reject", metadata.ROOT, fmt.Sprintf("stored root version %d differs from the configured root of the same version", sv))
	}
	return configured
}

// load reads role from the Store; a missing file returns fs.ErrNotExist
// quietly, other failures are logged.
func (c *Client) load(role string) ([]byte, error) {
	data, err := c.cfg.Store.Load(role)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.logEvent("tuf.cache_reject", role, err.Error())
	}
	return data, err
}

// loadRoot parses a root that must be signed by its own threshold.
func loadRoot(data []byte) (*metadata.Metadata[metadata.RootType], *doc, error) {
	root, d, err := decode[metadata.RootType](metadata.ROOT, metadata.ROOT, data)
	if err != nil {
		return nil, nil, err
	}
	if err := verifyByRoot(root, metadata.ROOT, d); err != nil {
		return nil, nil, err
	}
	return root, d, nil
}

// loadCached trusts the cached timestamp, snapshot and targets that verify
// (spec 5.2; like trustedmetadata's isTrusted path, cached files are not
// re-hashed, but their signatures must verify). The cached snapshot is kept
// even when the cached timestamp names a newer one (a refresh that failed
// after persisting its timestamp): it is the reference for the rollback
// check of the next snapshot (5.5.5). Cached targets are kept when they are
// the version that snapshot names.
func (c *Client) loadCached() {
	st := c.st
	if data, err := c.load(metadata.TIMESTAMP); err == nil {
		ts, d, err := decode[metadata.TimestampType](metadata.TIMESTAMP, metadata.TIMESTAMP, data)
		if err == nil {
			err = verifyByRoot(st.root, metadata.TIMESTAMP, d)
		}
		if err != nil {
			c.logEvent("tuf.cache_reject", metadata.TIMESTAMP, err.Error())
			return
		}
		st.ts, st.tsDoc = ts, d
	} else {
		return
	}
	if data, err := c.load(metadata.SNAPSHOT); err == nil {
		snap, d, err := c.checkSnapshot(st, data, true)
		if err != nil {
			c.logEvent("tuf.cache_reject", metadata.SNAPSHOT, err.Error())
			return
		}
		st.snap, st.snapDoc = snap, d
	} else {
		return
	}
	if data, err := c.load(metadata.TARGETS); err == nil {
		t, err := c.checkTargets(st, data, true)
		if err != nil {
			c.logEvent("tuf.cache_reject", metadata.TARGETS, err.Error())
			return
		}
		st.targets = t
	}
}

// Refresh runs the TUF client workflow against src: root chain, timestamp,
// snapshot, top-level targets. When the timestamp is unchanged it fetches
// nothing else and re-parses nothing it already trusts. On error the
// previously trusted state is kept, in memory and in the Store.
func (c *Client) Refresh(ctx context.Context, src Source) (err error) {
	defer func() { c.logReject(err) }()
	ref := c.cfg.Now().UTC()
	r := &refresh{c: c, ctx: ctx, src: src, ref: ref, st: c.st.clone()}
	if err := r.run(); err != nil {
		return fmt.Errorf("trust: refresh: %w", err)
	}
	if sameTrust(c.st, r.st) {
		c.keepMemo(r.st)
	} else {
		c.memo = nil
	}
	c.st, c.RefTime = r.st, ref
	return nil
}

// Target searches the delegation graph (pre-order, terminating delegations,
// visited set, MaxDelegations) for the signed description of target path
// name, fetching delegated roles from src as needed. Each delegated role is
// verified against the delegator on the path being searched. It returns an
// error wrapping ErrNotFound if no role lists name.
func (c *Client) Target(ctx context.Context, src Source, name string) (tf *metadata.TargetFiles, err error) {
	defer func() { c.logReject(err) }()
	if err := c.ready(); err != nil {
		return nil, err
	}
	if tf, ok := c.memoTarget(name); ok {
		return tf, nil
	}
	b := c.newBudget()
	if tf, err = c.search(ctx, src, name, b, nil); err != nil {
		return nil, err
	}
	c.rememberTarget(name, tf, b)
	return tf, nil
}

// TargetsUnder returns every target whose path starts with prefix (for
// example "hello/"), each as resolved by Target, so that only the role the
// specification's search would choose can describe a path. Like Target, it
// visits at most MaxDelegations roles; targets beyond are not returned.
func (c *Client) TargetsUnder(ctx context.Context, src Source, prefix string) (m map[string]*metadata.TargetFiles, err error) {
	defer func() { c.logReject(err) }()
	if err := c.ready(); err != nil {
		return nil, err
	}
	if m, ok := c.memoUnder(prefix); ok {
		return m, nil
	}
	b := c.newBudget()
	if m, err = c.under(ctx, src, prefix, b); err != nil {
		return nil, err
	}
	if !b.limited { // a cut-short lookup runs (and logs) again
		c.rememberUnder(prefix, m, b)
	}
	return m, nil
}

func (c *Client) ready() error {
	if c.RefTime.IsZero() || c.st.targets == nil {
		return ErrNotRefreshed
	}
	return nil
}
