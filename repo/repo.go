// Package repo is the publisher side of ferry: it creates a TUF repository,
// adds signed releases to it atomically, signs rollout decisions and the
// minimum safe version, and re-signs snapshot and timestamp.
//
// On-disk layout of a repository directory DIR:
//
//	DIR/ferry-repo.json           repository settings (format version, expiries, key custody)
//	DIR/root.json                 the current root, to ship to clients as their trust anchor
//	DIR/proposals/1.root.json     the unsigned first root, while its holders have not signed it
//	DIR/keys/                     the online keys: snapshot.age, timestamp.age, rollout.age (0700 dir, 0600 files)
//	DIR/public/                   everything served (ferry serve serves this directory)
//	DIR/public/metadata/          N.root.json, N.targets.json, N.snapshot.json, N.APP.json, N._rollout.json, timestamp.json
//	DIR/public/targets/           APP/VERSION/OS-ARCH/SHA256HEX.FILE (consistent snapshot names),
//	                              _rollout/SHA256HEX.APP (decisions), APP/_/_/SHA256HEX.policy (minimum safe version)
//
// # Key custody
//
// A server holds only the online keys (snapshot, timestamp, rollout). The offline
// keys live in an offline keys directory (InitOptions.OfflineKeys,
// Options.OfflineKeys) that is never inside DIR: root-1.age ... root-N.age
// (unless the root keys are held by their holders, InitOptions.RootPublic),
// targets.age and apps/APP.age; or they are handed to the Repo as signers
// (Options.AppKeys, Options.Signers). Every key file has FILE.pub next to
// it (keys.WritePublic). A repository of the old layout (settings without
// "custody") keeps every key under DIR/keys and keeps working; SplitKeys
// moves its offline keys out. A Repo opens a key only when it signs with
// it: a release opens its application's key, snapshot and timestamp; a
// rollout decision the rollout key, snapshot and timestamp.
//
// Who re-signs what: the server re-signs timestamp and snapshot with the
// online keys (RefreshWith, OnlineOnly) and reports the offline roles that
// are due; their holders re-sign them (RefreshWith, Roles); Status lists
// every role with its expiry and who must sign it.
//
// # Roles
//
// Top-level targets signs no files itself; it delegates each application to
// its own role named APP (terminating, path pattern "APP/*/*/*"), created
// on the application's first publish with the application keys given
// (Options.AppKeys, Options.AppThreshold of which must sign) or with one
// key generated into the offline keys directory; or delegated earlier by a
// targets ceremony (ProposeTargets), in which case it has no role until its
// first release signs one with the delegated keys.
//
// # Ceremonies
//
// Root and targets change only through a Proposal (ProposeRoot,
// ProposeTargets, Proposal.Sign, PublishProposal; format in docs/keys.md):
// holders sign the canonical bytes of the new role one by one, and publish
// counts each key once against the current root's threshold and, for root,
// the new root's, with the client's own checks (trust.CountSignatures,
// trust.VerifyNextRoot). A rotation's new key waits as a pending key file
// (KEYDIR/pending/ROLE-KEYID.age) until its proposal is published. A root
// publish interrupted before its last step (root.json) is finished by
// publishing the same proposal again.
//
// go-tuf matches delegation patterns one path segment at a time, so the
// pattern has one "*" per segment below APP.
//
// Targets also delegates the rollout role rollout.RoleName ("_rollout",
// rolloutrole.go) to its online key, for the paths "_rollout/*" only: it
// signs each application's rollout decisions (Rollout, Rollouts,
// Release.Rollout) and can add or change no release. The minimum safe
// version is signed by the application's own role (SetMinVersion,
// SignPolicy). Every file of a release carries the release's manifest in
// its custom metadata (release.Custom.Files).
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

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/internal/sentinel"
	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/rollout"
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
	RootKeys      int // number of root keys to generate; 0 means 1 (or len(RootPublic))
	RootThreshold int // root signatures needed; 0 means a majority of RootKeys
	Expiries      Expiries
	Passphrase    []byte // encrypts every private key Init generates (required)

	// OfflineKeys, if set, is the directory that receives the offline
	// private keys (root, targets, and application keys created later);
	// only the online keys (snapshot, timestamp, rollout) go under DIR/keys. It
	// must not be inside DIR. Empty keeps every key under DIR/keys (the
	// old layout: whoever has DIR has every key).
	OfflineKeys string
	// OfflinePassphrase, if set, encrypts the keys Init puts in
	// OfflineKeys (and the repository's later application keys there are
	// encrypted with whatever passphrase the publisher gives for that
	// directory); empty means Passphrase. With its own passphrase, the
	// passphrase a server holds for the online keys opens no offline key.
	OfflinePassphrase []byte

	// RootPublic, if set, are the root keys, generated and kept by their
	// holders elsewhere; Init generates no root key. Init then cannot sign
	// root: it writes an unsigned proposal (RootProposalFile) and the
	// repository serves nothing until RootThreshold holders have signed it
	// and it is published (PublishRoot).
	RootPublic []*metadata.Key

	// OnlineSigners, if set, hold the online keys elsewhere: "snapshot",
	// "timestamp" and/or "rollout" (RolloutKeyName) mapped to a signer (a
	// KMS key, a PKCS#11 token; see keys.Open). Init lists their public
	// keys in root (rollout's in the rollout role's delegation) and
	// generates no key file for those roles, so the repository's disk
	// holds no private key of them; whoever signs those roles later (ferry
	// serve --online-key) passes the same signers in Options.Signers.
	OnlineSigners map[string]keys.Signer

	// InsecureScryptWorkFactor overrides the scrypt work factor (log2 N)
	// of every key this repository creates, now and on later publishes.
	// 0 means keys.DefaultWorkFactor. Lower values make the passphrase
	// cheaper to guess: for tests only.
	InsecureScryptWorkFactor int
}

// WithDefaults returns o with every zero field replaced by its default.
func (o InitOptions) WithDefaults() InitOptions {
	if o.RootKeys == 0 && len(o.RootPublic) > 0 {
		o.RootKeys = len(o.RootPublic)
	}
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
	if len(o.RootPublic) > 0 && o.RootKeys != len(o.RootPublic) {
		return fmt.Errorf("root keys %d: %d root public keys were given", o.RootKeys, len(o.RootPublic))
	}
	seen := map[string]bool{}
	for _, k := range o.RootPublic {
		id, err := k.ID()
		if err != nil {
			return fmt.Errorf("root key: %w", err)
		}
		if seen[id] {
			return fmt.Errorf("root key %s is given twice", id)
		}
		seen[id] = true
	}
	for _, d := range []time.Duration{o.Expiries.Root, o.Expiries.Targets, o.Expiries.Snapshot, o.Expiries.Timestamp} {
		if d < time.Minute {
			return fmt.Errorf("expiry %v: want at least 1m", d)
		}
	}
	for role, s := range o.OnlineSigners {
		if (role != RolloutKeyName && !isOnline(role)) || role == rollout.RoleName || s == nil {
			return fmt.Errorf("online signer for %q: want a signer for snapshot, timestamp or rollout", role)
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
	dir      string
	settings settings
	opts     Options
	keys     *keyring
	now      func() time.Time

	// failpoint, when set by tests, is called after each publish step; a
	// non-nil result aborts the publish there.
	failpoint func(step string) error
}

// Options say where an open Repo finds the private keys it signs with. The
// zero value signs nothing: List, Keys and Status work, every signing call
// fails with ErrMissingKey or a missing-passphrase error.
type Options struct {
	// Passphrase returns the passphrase of an encrypted key file. It is
	// called only for a file whose key a command uses, once per file.
	Passphrase keys.Passphrase
	// OfflineKeys is the directory of the offline private keys (root,
	// targets, applications), or "" when they are not on this machine.
	// An online server never has it.
	OfflineKeys string
	// Signers are keys opened elsewhere (keys.Open: a key file, a PKCS#11
	// token, a KMS). Each signs whatever role lists its key ID.
	Signers []keys.Signer
	// AppKeys are application keys (--app-key). They sign the application
	// roles that list them; an application published for the first time
	// is delegated to all of them, AppThreshold of which must sign.
	AppKeys []keys.Signer
	// AppThreshold is the signature threshold of a new application's
	// role; 0 means 1. It must not exceed the number of its keys.
	AppThreshold int
	// Now is the clock that signatures' expiry is judged by; nil means
	// time.Now.
	Now func() time.Time
	// TrustedRoot is a root.json the holder trusts (the one its clients
	// ship, or a copy kept away from the server). A Repo that signs with
	// offline keys, application keys or an offline role's signer checks
	// the repository against it, or, without it, against PinnedRoot (see
	// anchor.go); it is never written.
	TrustedRoot []byte
	// PinnedRoot is the holder's pinned copy of the root, advanced after
	// every successful check; "" means PinnedRootFile(OfflineKeys) when
	// OfflineKeys is set.
	PinnedRoot string
}

// Passphrase returns a keys.Passphrase that gives p for every key file.
func Passphrase(p []byte) keys.Passphrase {
	if len(p) == 0 {
		return nil
	}
	return func(string) ([]byte, error) { return p, nil }
}

// Open opens the repository in dir; passphrase decrypts the key files under
// dir (and, for a repository of the old layout, every key). List and Keys
// need no passphrase. OpenWith says where offline keys are.
func Open(dir string, passphrase []byte) (*Repo, error) {
	return OpenWith(dir, Options{Passphrase: Passphrase(passphrase)})
}

// OpenWith opens the repository in dir with the keys that o names.
func OpenWith(dir string, o Options) (*Repo, error) {
	s, err := readSettings(dir)
	if err != nil {
		return nil, err
	}
	kr, err := newKeyring(dir, s, o)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", dir, err)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &Repo{dir: dir, settings: s, opts: o, keys: kr, now: now}, nil
}

// Dir returns the repository directory.
func (r *Repo) Dir() string { return r.dir }

// Release names what is being published.
type Release struct {
	App      string
	Version  string // semver without "v", e.g. 1.4.2
	Platform string // os/arch, e.g. linux/amd64
	Kind     string // "", "binary", "tar.gz", "tar.zst", "zip"; "" infers from the file name

	// Rollout, if set, is the rollout decision to record for this version
	// in the same commit as the release (one timestamp makes both visible
	// together): its channel, share, state, and cohort salt (generated when
	// empty). It is recorded only if the decisions name no entry for the
	// version yet (another platform of it published earlier keeps its
	// entry; Repo.Rollout changes it), and only when this publish adds the
	// release. Nil publishes the release with no decision: in
	// rollout.DefaultChannel, active, at full share.
	Rollout *rollout.Entry
}

// Entry is one published target.
type Entry struct {
	Release
	Path   string
	Length int64
	SHA256 string
}

// ErrBusy means another publisher holds the repository lock. It is
// install.ErrBusy and client.ErrBusy (one value, see internal/sentinel).
var ErrBusy = sentinel.ErrBusy

// ErrImmutable means a release would change an already published version.
var ErrImmutable = errors.New("published versions are immutable")
