package trust

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/event"
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
// Load returns the bytes last saved under key, or an error wrapping
// fs.ErrNotExist. Save durably and atomically replaces the copy under key
// (a crash leaves the old or the new copy, never a torn one); after an
// error, the Store may hold either copy. Keys are role names ("root",
// "timestamp", "snapshot", "targets", and delegated role names, which are
// arbitrary strings from signed metadata) and "N.root" for the
// intermediate root of version N; the Store encodes them safely, and
// distinct keys never share a copy.
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
	// never share one Store between repositories. Even so, a root in the
	// Store is trusted only when it chains from Root: New starts at Root
	// and walks the intermediate roots a refresh stored ("N.root"), each
	// signed by its predecessor's threshold and its own.
	Store Store
	// Now is the clock; nil means time.Now. Expiry is judged against the
	// time read once at the start of each refresh.
	Now func() time.Time
	// Events receives one event.MetadataRejected per rejection (evidence:
	// role, reason kind, expected, got, versions and key ids where known),
	// one event.MetadataCacheIgnore per cached file set aside, and the
	// rarer metadata.* events (cache reload, fast-forward recovery,
	// delegation limit). Events carry no application. Nil means none.
	Events event.Observer
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
	ev  event.Emitter
	st  *state
	// memo holds lookup results for st (see memo).
	memo *memo
	// RefTime is the reference time of the last successful refresh, against
	// which expiry of delegated roles is judged. Zero before a refresh.
	RefTime time.Time
	// Changed reports whether the last successful Refresh trusted new
	// metadata (a root, timestamp, snapshot or targets other than the ones
	// held before it).
	Changed bool
}

// New loads trusted state from the Store and returns a Client. The
// trusted root is Config.Root walked forward through the intermediate
// roots in the Store as far as each verifies (see chainedRoot); a root
// that does not chain from Config.Root is ignored and reported.
// Cached timestamp, snapshot and targets are trusted only where they verify
// against the loaded root (and targets against the snapshot); anything else
// is ignored and reported as an event.MetadataCacheIgnore. A cached snapshot
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
	c := &Client{cfg: cfg, ev: event.Emitter{Observer: cfg.Events, Now: cfg.Now}}
	root, d, err := loadRoot(cfg.Root)
	if err != nil {
		c.emitReject(err)
		return nil, fmt.Errorf("trust: config root: %w", err)
	}
	c.st = newState(c.chainedRoot(root, d))
	c.loadCached(c.st, c.logCacheReject)
	return c, nil
}

// chainedRoot returns the newest root that chains from the configured
// (shipped) root through the intermediate roots in the Store: "N.root" for
// N = configured version + 1, + 2, ..., each verified as a refresh
// verified it when it saved it (spec 5.3.4-5.3.5: signed by the previous
// root's threshold and by its own, the next version). The walk stops at
// the first missing or failing one (logged). The Store's "root" (the
// newest root, spec 5.3.8) is never trusted on its own: a root planted
// there, signed only by its own keys, cannot re-root the client. One that
// differs from the chain's end is logged and ignored.
func (c *Client) chainedRoot(configured *metadata.Metadata[metadata.RootType], cd *doc) *metadata.Metadata[metadata.RootType] {
	root, d := configured, cd
	for {
		key := rootKey(root.Signed.Version + 1)
		data, err := c.load(key)
		if err != nil {
			break
		}
		next, nd, err := nextRoot(root, data)
		if err != nil {
			c.emit(event.MetadataCacheIgnore, key, err.Error())
			break
		}
		root, d = next, nd
	}
	c.checkStoredRoot(root, d)
	return root
}

// checkStoredRoot logs a stored "root" that is not the root the chain
// reached: one that does not chain from the configured root (planted, or a
// state directory shared with another repository), or an older one.
func (c *Client) checkStoredRoot(trusted *metadata.Metadata[metadata.RootType], td *doc) {
	data, err := c.load(metadata.ROOT)
	if err != nil {
		return
	}
	stored, sd, err := decode[metadata.RootType](metadata.ROOT, metadata.ROOT, data)
	if err != nil {
		c.emit(event.MetadataCacheIgnore, metadata.ROOT, err.Error())
		return
	}
	tv, sv := trusted.Signed.Version, stored.Signed.Version
	switch {
	case sv > tv:
		c.emit(event.MetadataCacheIgnore, metadata.ROOT, fmt.Sprintf("stored root version %d does not chain from the configured root (the chain of stored roots ends at version %d)", sv, tv))
	case sv < tv:
		c.emit(event.MetadataCacheIgnore, metadata.ROOT, fmt.Sprintf("stored root version %d is older than the trusted root's %d", sv, tv))
	case !bytes.Equal(sd.canon, td.canon):
		c.emit(event.MetadataCacheIgnore, metadata.ROOT, fmt.Sprintf("stored root version %d differs from the trusted root of the same version", sv))
	}
}

// rootKey is the Store key of the intermediate root of version v.
func rootKey(v int64) string { return fmt.Sprintf("%d.root", v) }

// isRootKey reports whether a role name has the form of a rootKey (digits,
// then ".root"), a Store key no delegated role may take.
func isRootKey(role string) bool {
	digits, ok := strings.CutSuffix(role, ".root")
	return ok && digits != "" && strings.Trim(digits, "0123456789") == ""
}

// load reads role from the Store; a missing file returns fs.ErrNotExist
// quietly, other failures are logged.
func (c *Client) load(role string) ([]byte, error) {
	data, err := c.cfg.Store.Load(role)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.emit(event.MetadataCacheIgnore, role, err.Error())
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
// the version that snapshot names. Each cached file that fails is
// reported to reject.
func (c *Client) loadCached(st *state, reject func(role, reason string)) {
	if data, err := c.load(metadata.TIMESTAMP); err == nil {
		ts, d, err := decode[metadata.TimestampType](metadata.TIMESTAMP, metadata.TIMESTAMP, data)
		if err == nil {
			err = verifyByRoot(st.root, metadata.TIMESTAMP, d)
		}
		if err != nil {
			reject(metadata.TIMESTAMP, err.Error())
			return
		}
		st.ts, st.tsDoc = ts, d
	} else {
		return
	}
	if data, err := c.load(metadata.SNAPSHOT); err == nil {
		snap, d, err := c.checkSnapshot(st, data, true)
		if err != nil {
			reject(metadata.SNAPSHOT, err.Error())
			return
		}
		st.snap, st.snapDoc = snap, d
	} else {
		return
	}
	if data, err := c.load(metadata.TARGETS); err == nil {
		t, err := c.checkTargets(st, data, true)
		if err != nil {
			reject(metadata.TARGETS, err.Error())
			return
		}
		st.targets = t
	}
}

func (c *Client) logCacheReject(role, reason string) { c.emit(event.MetadataCacheIgnore, role, reason) }

// Refresh runs the TUF client workflow against src: root chain, timestamp,
// snapshot, top-level targets. When the timestamp is unchanged it fetches
// nothing else and re-parses nothing it already trusts. On error the
// previously trusted state is kept, in memory and in the Store.
func (c *Client) Refresh(ctx context.Context, src Source) (err error) {
	defer func() { c.emitReject(err) }()
	ref := c.cfg.Now().UTC()
	r := &refresh{c: c, ctx: ctx, src: src, ref: ref, st: c.st.clone()}
	if err := r.run(); err != nil {
		return fmt.Errorf("trust: refresh: %w", err)
	}
	c.Changed = !sameTrust(c.st, r.st)
	if c.Changed {
		c.memo = nil
	} else {
		c.keepMemo(r.st)
	}
	c.st, c.RefTime = r.st, ref
	return nil
}

// Target searches the delegation graph (pre-order, terminating delegations,
// visited set, MaxDelegations) for the signed description of target path
// name, fetching delegated roles from src as needed. Each delegated role is
// verified against the delegator on the path being searched. It returns an
// error wrapping ErrNotListed (and ErrNotFound) if no role lists name; a
// role's fetch or verification failure is another error, even a 404
// (which wraps ErrNotFound but not ErrNotListed).
func (c *Client) Target(ctx context.Context, src Source, name string) (tf *metadata.TargetFiles, err error) {
	defer func() { c.emitReject(err) }()
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
	defer func() { c.emitReject(err) }()
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
