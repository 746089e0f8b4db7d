// Package reposim is an in-memory TUF repository for tests. It builds and
// signs metadata with go-tuf's metadata types and Ed25519 keys, serves it as
// a trust.Source with consistent snapshots (N.root.json, V.snapshot.json,
// V.ROLE.json with ROLE encoded by trust.RoleFileName, timestamp.json) and
// over HTTP as a mirror (Handler), and lets a test tamper with anything:
// serve arbitrary bytes for a file, hide a file, sign with chosen keys,
// rotate keys, change thresholds and expiries, and build delegation graphs.
// It counts fetches per file name.
//
// Typical use:
//
//	r := reposim.New(time.Now())
//	r.AddTarget("targets", "hello/1.0/linux-amd64/hello", []byte("hi"), nil)
//	r.Publish()
//	c, _ := trust.New(trust.Config{Root: r.RootBytes(1), Store: store})
//	c.Refresh(ctx, r)
//
// Changes take effect at the next Publish, which re-signs (and bumps the
// version of) every changed role, then snapshot and timestamp. A Repo is
// safe for concurrent use.
package reposim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/ferry-updates/ferry/trust"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Key is an Ed25519 signing key with its TUF public key and key id.
type Key struct {
	ID     string
	Public *metadata.Key
	Signer signature.Signer
	Priv   ed25519.PrivateKey
}

// NewKey generates an Ed25519 key.
func NewKey() *Key { return newKeyFrom(rand.Reader) }

func newKeyFrom(rnd io.Reader) *Key {
	pub, priv, err := ed25519.GenerateKey(rnd)
	if err != nil {
		panic(err)
	}
	s, err := signature.LoadSigner(priv, crypto.Hash(0))
	if err != nil {
		panic(err)
	}
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		panic(err)
	}
	id, err := k.ID()
	if err != nil {
		panic(err)
	}
	return &Key{ID: id, Public: k, Signer: s, Priv: priv}
}

// Repo is the simulated repository.
type Repo struct {
	mu sync.Mutex

	root      *metadata.Metadata[metadata.RootType]
	roles     map[string]*metadata.Metadata[metadata.TargetsType] // "targets" and delegated roles
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]

	keys         map[string][]*Key // signing keys per role
	signWith     map[string][]*Key // overrides of keys
	prevRootKeys []*Key
	expires      map[string]time.Time
	now          time.Time

	rootDirty bool
	dirty     map[string]bool
	published map[string]bool

	files     map[string][]byte
	overrides map[string][]byte
	hidden    map[string]bool
	fetches   map[string]int

	rand io.Reader // key generation

	// MetaHashes: when true (the default) snapshot and timestamp meta carry
	// length and sha256 of the files they name.
	MetaHashes bool

	// MissingStatus is the HTTP status for a missing or hidden file: 0 or
	// 404 (FetchMetadata wraps trust.ErrNotFound), or 403 as S3-style hosts
	// answer (FetchMetadata wraps trust.ErrForbidden). Set it before serving.
	MissingStatus int
}

// New creates and publishes version 1 of a repository with one key per
// top-level role, threshold 1, consistent snapshots, and every role
// expiring a year after now.
func New(now time.Time) *Repo { return newRepo(now, rand.Reader) }

// NewDeterministic is New with keys derived from seed, so that two
// processes build byte-identical repositories (fuzz workers need this).
// Its keys are predictable: tests only.
func NewDeterministic(now time.Time, seed uint64) *Repo {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	return newRepo(now, mrand.NewChaCha8(s))
}

func newRepo(now time.Time, rnd io.Reader) *Repo {
	r := &Repo{rand: rnd,
		roles: map[string]*metadata.Metadata[metadata.TargetsType]{}, keys: map[string][]*Key{},
		signWith: map[string][]*Key{}, expires: map[string]time.Time{}, now: now,
		dirty: map[string]bool{}, published: map[string]bool{}, files: map[string][]byte{},
		overrides: map[string][]byte{}, hidden: map[string]bool{}, fetches: map[string]int{},
		MetaHashes: true,
	}
	exp := now.AddDate(1, 0, 0)
	r.root = metadata.Root(exp)
	r.root.Signed.ConsistentSnapshot = true
	for _, role := range metadata.TOP_LEVEL_ROLE_NAMES {
		k := newKeyFrom(r.rand)
		must(r.root.Signed.AddKey(k.Public, role))
		r.keys[role] = []*Key{k}
	}
	r.roles[metadata.TARGETS] = metadata.Targets(exp)
	r.snapshot = metadata.Snapshot(exp)
	r.timestamp = metadata.Timestamp(exp)
	r.rootDirty, r.dirty[metadata.TARGETS] = true, true
	r.Publish()
	return r
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// RootBytes returns the published root of the given version (nil if none).
func (r *Repo) RootBytes(version int64) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.files[fmt.Sprintf("%d.root.json", version)]
}

// Root, Targets, Snapshot and Timestamp give direct access to the
// metadata being built, for tests that change fields themselves; call
// MarkDirty (or BumpRoot) so that Publish re-signs them.
func (r *Repo) Root() *metadata.Metadata[metadata.RootType] { return r.root }

// Targets returns the metadata of a targets role (top-level or delegated).
func (r *Repo) Targets(role string) *metadata.Metadata[metadata.TargetsType] {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.roles[role]
}

// Snapshot returns the snapshot metadata being built.
func (r *Repo) Snapshot() *metadata.Metadata[metadata.SnapshotType] { return r.snapshot }

// Timestamp returns the timestamp metadata being built.
func (r *Repo) Timestamp() *metadata.Metadata[metadata.TimestampType] { return r.timestamp }

// MarkDirty makes the next Publish re-sign a targets role.
func (r *Repo) MarkDirty(role string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dirty[role] = true
}

// BumpRoot makes the next Publish publish a new root version.
func (r *Repo) BumpRoot() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rootDirty = true
}

// SetExpires sets the expiry used for role from the next Publish on (and
// marks it changed).
func (r *Repo) SetExpires(role string, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expires[role] = t
	r.markLocked(role)
}

func (r *Repo) markLocked(role string) {
	switch role {
	case metadata.ROOT:
		r.rootDirty = true
	case metadata.SNAPSHOT, metadata.TIMESTAMP:
	default:
		r.dirty[role] = true
	}
}

func (r *Repo) expiry(role string) time.Time {
	if t, ok := r.expires[role]; ok {
		return t
	}
	return r.now.AddDate(1, 0, 0)
}

// AddTarget adds (or replaces) a target file in role, with optional custom
// metadata.
func (r *Repo) AddTarget(role, path string, data []byte, custom map[string]any) *metadata.TargetFiles {
	r.mu.Lock()
	defer r.mu.Unlock()
	tf, err := metadata.TargetFile().FromBytes(path, data, "sha256")
	must(err)
	if custom != nil {
		raw := mustJSON(custom)
		tf.Custom = &raw
	}
	r.roles[role].Signed.Targets[path] = tf
	r.dirty[role] = true
	return tf
}

// RemoveTarget removes a target from role.
func (r *Repo) RemoveTarget(role, path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.roles[role].Signed.Targets, path)
	r.dirty[role] = true
}

// Keys returns the keys that sign role.
func (r *Repo) Keys(role string) []*Key {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Key(nil), r.keys[role]...)
}

// SignWith makes Publish sign role with exactly keys (which need not be
// trusted for it); no keys restores signing with the role's keys.
func (r *Repo) SignWith(role string, keys ...*Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(keys) == 0 {
		delete(r.signWith, role)
	} else {
		r.signWith[role] = keys
	}
	r.markLocked(role)
}

// Publish signs every changed role (bumping its version if it was
// published before), then snapshot and timestamp, and serves them.
func (r *Repo) Publish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rootDirty {
		r.publishRootLocked()
	}
	names := make([]string, 0, len(r.dirty))
	for role := range r.dirty {
		names = append(names, role)
	}
	sort.Strings(names)
	for _, role := range names {
		md := r.roles[role]
		r.bump(role, &md.Signed.Version)
		md.Signed.Expires = r.expiry(role)
		data := signBytes(md, r.signers(role))
		file, err := trust.RoleFileName(role) // as trust names it
		must(err)
		name := fmt.Sprintf("%d.%s", md.Signed.Version, file)
		r.files[name] = data
		r.snapshot.Signed.Meta[role+".json"] = r.metaFile(md.Signed.Version, data)
	}
	r.dirty = map[string]bool{}
	r.publishSnapshotLocked()
	r.publishTimestampLocked()
}

// PublishTimestamp re-signs only the timestamp (new version, same snapshot).
func (r *Repo) PublishTimestamp() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.publishTimestampLocked()
}

func (r *Repo) publishRootLocked() {
	r.bump(metadata.ROOT, &r.root.Signed.Version)
	r.root.Signed.Expires = r.expiry(metadata.ROOT)
	signers := r.signWith[metadata.ROOT]
	if signers == nil {
		signers = union(r.prevRootKeys, r.keys[metadata.ROOT])
	}
	data := signBytes(r.root, signers)
	r.files[fmt.Sprintf("%d.root.json", r.root.Signed.Version)] = data
	r.prevRootKeys = r.keys[metadata.ROOT]
	r.rootDirty = false
}

func (r *Repo) publishSnapshotLocked() {
	r.bump(metadata.SNAPSHOT, &r.snapshot.Signed.Version)
	r.snapshot.Signed.Expires = r.expiry(metadata.SNAPSHOT)
	data := signBytes(r.snapshot, r.signers(metadata.SNAPSHOT))
	r.files[fmt.Sprintf("%d.snapshot.json", r.snapshot.Signed.Version)] = data
	r.timestamp.Signed.Meta["snapshot.json"] = r.metaFile(r.snapshot.Signed.Version, data)
}

func (r *Repo) publishTimestampLocked() {
	r.bump(metadata.TIMESTAMP, &r.timestamp.Signed.Version)
	r.timestamp.Signed.Expires = r.expiry(metadata.TIMESTAMP)
	r.files["timestamp.json"] = signBytes(r.timestamp, r.signers(metadata.TIMESTAMP))
}

func (r *Repo) bump(role string, v *int64) {
	if r.published[role] {
		*v++
	}
	r.published[role] = true
}

func (r *Repo) signers(role string) []*Key {
	if s := r.signWith[role]; s != nil {
		return s
	}
	return r.keys[role]
}

func (r *Repo) metaFile(version int64, data []byte) *metadata.MetaFiles {
	m := metadata.MetaFile(version)
	if r.MetaHashes {
		sum := sha256.Sum256(data)
		m.Length = int64(len(data))
		m.Hashes = metadata.Hashes{"sha256": sum[:]}
	}
	return m
}

func union(a, b []*Key) []*Key {
	out := append([]*Key(nil), a...)
	for _, k := range b {
		dup := false
		for _, o := range out {
			dup = dup || o.ID == k.ID
		}
		if !dup {
			out = append(out, k)
		}
	}
	return out
}

// signBytes signs md with keys (replacing its signatures) and encodes it.
func signBytes[T metadata.Roles](md *metadata.Metadata[T], keys []*Key) []byte {
	md.ClearSignatures()
	for _, k := range keys {
		_, err := md.Sign(k.Signer)
		must(err)
	}
	data, err := md.ToBytes(false)
	must(err)
	return data
}
