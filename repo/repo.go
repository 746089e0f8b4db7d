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
package repo

import (
	"context"
	"errors"
	"time"
)

// Expiries are how long each role's signature stays valid.
type Expiries struct {
	Root, Targets, Snapshot, Timestamp time.Duration
}

// InitOptions configure Init. Zero values mean the defaults (1 of 1 root
// keys; root 1 year, targets 3 months, snapshot 1 week, timestamp 1 day).
type InitOptions struct {
	RootKeys      int
	RootThreshold int
	Expiries      Expiries
	Passphrase    []byte // encrypts every private key (required)
}

// Init creates a new repository in dir, which must not exist or be empty.
func Init(ctx context.Context, dir string, opts InitOptions) error {
	return errors.New("repo: not implemented")
}

// Repo is an open repository. Not safe for concurrent use.
type Repo struct{ dir string }

// Open opens the repository in dir; passphrase decrypts its keys when needed.
func Open(dir string, passphrase []byte) (*Repo, error) { return nil, errors.New("repo: not implemented") }

// Release names what is being published.
type Release struct {
	App      string
	Version  string // semver without "v", e.g. 1.4.2
	Platform string // os/arch, e.g. linux/amd64
	Kind     string // "", "binary", "tar.gz", "tar.zst", "zip"; "" infers from the file name
}

// Publish adds files as targets APP/VERSION/OS-ARCH/FILE and re-signs the
// application's role, snapshot and timestamp, atomically.
func (r *Repo) Publish(ctx context.Context, rel Release, files []string) error {
	return errors.New("repo: not implemented")
}

// Entry is one published target.
type Entry struct {
	Release
	Path   string
	Length int64
	SHA256 string
}

// List returns every published target, sorted by app, version, platform.
func (r *Repo) List(ctx context.Context) ([]Entry, error) { return nil, errors.New("repo: not implemented") }

// Refresh re-signs snapshot and timestamp if they expire within half their
// lifetime (or always, if force).
func (r *Repo) Refresh(ctx context.Context, force bool) error {
	return errors.New("repo: not implemented")
}
