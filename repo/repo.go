// Package repo is the publisher side of ferry: it creates a TUF repository,
// adds signed releases to it atomically, and re-signs snapshot and timestamp.
//
// On-disk layout of a repository directory DIR:
//
//	DIR/ferry-repo.json           repository settings (format version, expiries)
//	DIR/root.json                 the current root, to ship to clients as their trust anchor
//	DIR/keys/                     age-encrypted private keys, 0700 dir, 0600 files
//	DIR/public/                   everything served (ferry serve serves this directory)
//	DIR/public/metadata/          N.root.json, N.targets.json, N.snapshot.json, N.APP.json, timestamp.json
//	DIR/public/targets/           APP/VERSION/OS-ARCH/SHA256HEX.FILE (consistent snapshot names)
//
// Key files: keys/root-1.age ... keys/root-N.age, keys/targets.age,
// keys/snapshot.age, keys/timestamp.age and keys/apps/APP.age (see package
// keys for their format).
//
// # Roles
//
// Top-level targets signs no files itself; it delegates each application to
// its own role named APP (threshold 1, terminating, path pattern
// "APP/*/*/*"), created with its own key on the application's first publish.
// go-tuf matches delegation patterns one path segment at a time, so the
// pattern has one "*" per segment below APP.
//
// # Atomic publishing
//
// The current state of a repository is whatever public/metadata/timestamp.json
// references: timestamp names a snapshot version, the snapshot names the
// version of targets and of every application role. Publish writes new files
// under new names in this order: target files, N.APP.json, N.targets.json
// (only when the delegations change), N.snapshot.json, and finally
// timestamp.json, the only file replaced in place (through
// internal/atomicfile). A failure before the last step leaves files that
// nothing references; the next publish overwrites them.
//
// Publish, PublishBatch and Refresh take an exclusive lock (flock on
// DIR/.lock), so a second publisher gets ErrBusy rather than interleaving.
// A *Repo is not safe for concurrent use by several goroutines.
package repo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferry-updates/ferry/keys"
)

// Expiries are how long each role's signature stays valid.
type Expiries struct {
	Root, Targets, Snapshot, Timestamp time.Duration
}

// DefaultExpiries are used for every zero field of Expiries.
var DefaultExpiries = Expiries{
	Root:      365 * 24 * time.Hour,
	Targets:   90 * 24 * time.Hour,
	Snapshot:  7 * 24 * time.Hour,
	Timestamp: 24 * time.Hour,
}

// InitOptions configure Init. Zero values mean the defaults (1 of 1 root
// keys; root 1 year, targets 3 months, snapshot 1 week, timestamp 1 day).
type InitOptions struct {
	RootKeys      int // number of root keys; 0 means 1
	RootThreshold int // root signatures needed; 0 means a majority of RootKeys
	Expiries      Expiries
	Passphrase    []byte // encrypts every private key (required)

	// InsecureScryptWorkFactor overrides the scrypt work factor (log2 N)
	// of every key this repository creates, now and on later publishes.
	// 0 means keys.DefaultWorkFactor. Lower values make the passphrase
	// cheaper to guess: for tests only.
	InsecureScryptWorkFactor int
}

// WithDefaults returns o with every zero field replaced by its default.
func (o InitOptions) WithDefaults() InitOptions {
	if o.RootKeys == 0 {
		o.RootKeys = 1
	}
	if o.RootThreshold == 0 {
		o.RootThreshold = o.RootKeys/2 + 1
	}
	o.Expiries = o.Expiries.withDefaults()
	if o.InsecureScryptWorkFactor == 0 {
		o.InsecureScryptWorkFactor = keys.DefaultWorkFactor
	}
	return o
}

// SingleKeyRoot reports whether these options make a root that one key can
// sign alone (threshold 1), which is fine for trying ferry but not for
// production.
func (o InitOptions) SingleKeyRoot() bool { return o.WithDefaults().RootThreshold == 1 }

func (e Expiries) withDefaults() Expiries {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&e.Root, DefaultExpiries.Root)
	def(&e.Targets, DefaultExpiries.Targets)
	def(&e.Snapshot, DefaultExpiries.Snapshot)
	def(&e.Timestamp, DefaultExpiries.Timestamp)
	return e
}

func (o InitOptions) validate() error {
	if len(o.Passphrase) == 0 {
		return errors.New("a passphrase is required to encrypt the keys")
	}
	if o.RootKeys < 1 || o.RootKeys > 16 {
		return fmt.Errorf("root keys %d: want 1 to 16", o.RootKeys)
	}
	if o.RootThreshold < 1 || o.RootThreshold > o.RootKeys {
		return fmt.Errorf("root threshold %d: want 1 to %d (the number of root keys)", o.RootThreshold, o.RootKeys)
	}
	for _, d := range []time.Duration{o.Expiries.Root, o.Expiries.Targets, o.Expiries.Snapshot, o.Expiries.Timestamp} {
		if d < time.Minute {
			return fmt.Errorf("expiry %v: want at least 1m", d)
		}
	}
	if w := o.InsecureScryptWorkFactor; w < 1 || w > 30 {
		return fmt.Errorf("scrypt work factor %d: want 1 to 30", w)
	}
	return nil
}

// Init creates a new repository in dir, which must not exist or be empty.
func Init(ctx context.Context, dir string, opts InitOptions) error {
	return initRepo(ctx, dir, opts, time.Now)
}

// Repo is an open repository. Not safe for concurrent use.
type Repo struct {
	dir        string
	passphrase []byte
	settings   settings
	now        func() time.Time
	signers    map[string]*roleKey // by key file path, decrypted once

	// failpoint, when set by tests, is called after each publish step; a
	// non-nil result aborts the publish there.
	failpoint func(step string) error
}

// Open opens the repository in dir; passphrase decrypts its keys when needed.
// List and Keys need no passphrase.
func Open(dir string, passphrase []byte) (*Repo, error) {
	s, err := readSettings(dir)
	if err != nil {
		return nil, err
	}
	return &Repo{
		dir:        dir,
		passphrase: passphrase,
		settings:   s,
		now:        time.Now,
		signers:    map[string]*roleKey{},
	}, nil
}

// Dir returns the repository directory.
func (r *Repo) Dir() string { return r.dir }

// Release names what is being published.
type Release struct {
	App      string
	Version  string // semver without "v", e.g. 1.4.2
	Platform string // os/arch, e.g. linux/amd64
	Kind     string // "", "binary", "tar.gz", "tar.zst", "zip"; "" infers from the file name
}

// Entry is one published target.
type Entry struct {
	Release
	Path   string
	Length int64
	SHA256 string
}

// ErrBusy means another publisher holds the repository lock.
var ErrBusy = errors.New("repository is busy")

// ErrImmutable means a release would change an already published version.
var ErrImmutable = errors.New("published versions are immutable")
