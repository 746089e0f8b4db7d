package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/rollout"
)

// ErrMissingKey means a role must be signed but fewer of its keys than its
// threshold are available to this Repo (not in the key directories it
// reads, not among Options.Signers). Refresh skips such roles when they are
// merely due; commands that must sign them fail with a *KeyError.
var ErrMissingKey = errors.New("signing key not available")

// KeyError says which role could not be signed and which keys it lacks.
type KeyError struct {
	Role      string
	Have      int      // usable keys found
	Threshold int      // keys the role needs
	Missing   []string // key IDs of the role that were not found
	Looked    []string // key files looked at
	Err       error    // a key file that holds another key, if that is why
}

func (e *KeyError) Error() string {
	msg := fmt.Sprintf("sign %s: %d of %d keys available", e.Role, e.Have, e.Threshold)
	if len(e.Missing) > 0 {
		msg += " (missing key IDs " + strings.Join(shortIDs(e.Missing), ", ") + ")"
	}
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	if len(e.Looked) > 0 {
		msg += "; looked for " + strings.Join(e.Looked, ", ")
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrMissingKey) true.
func (e *KeyError) Unwrap() error { return ErrMissingKey }

// roleKey is a signing key ready for go-tuf.
type roleKey struct {
	signer signature.Signer
	tuf    *metadata.Key
	id     string
}

func newRoleKey(s keys.Signer) (*roleKey, error) {
	id, err := s.Key().ID()
	if err != nil {
		return nil, err
	}
	// The signer's context is per call in keys.Signer; go-tuf's Sign has
	// none, so signing is bounded by the signer itself.
	return &roleKey{signer: keys.TUFSigner(context.Background(), s), tuf: s.Key(), id: id}, nil
}

// keyring finds the private keys a Repo signs with. A key file is opened
// (decrypted) only when a role its key signs is being signed, and at most
// once per Repo: a publish opens its application's key, snapshot and
// timestamp, and nothing else.
//
// Where keys live (see the package doc): the online keys (snapshot,
// timestamp, rollout) in REPO/keys; the offline keys (root, targets, applications)
// in the offline keys directory, and in REPO/keys too in a repository of
// the old layout, which kept every key there.
type keyring struct {
	online  string // REPO/keys
	offline string // offline keys directory, or ""
	legacy  bool   // offline keys may also be under online
	pass    keys.Passphrase
	byID    map[string]*roleKey // opened keys and Options.Signers by key ID
	opened  map[string]*roleKey // key files already opened, by path
}

func newKeyring(dir string, s settings, o Options) (*keyring, error) {
	kr := &keyring{
		online:  filepath.Join(dir, "keys"),
		offline: o.OfflineKeys,
		legacy:  s.Custody == "",
		pass:    o.Passphrase,
		byID:    map[string]*roleKey{},
		opened:  map[string]*roleKey{},
	}
	for _, s := range append(slices.Clone(o.Signers), o.AppKeys...) {
		if err := kr.add(s); err != nil {
			return nil, err
		}
	}
	return kr, nil
}

func (kr *keyring) add(s keys.Signer) error {
	k, err := newRoleKey(s)
	if err != nil {
		return err
	}
	kr.byID[k.id] = k
	return nil
}

// isOnline reports whether role's keys are online keys: snapshot,
// timestamp and the rollout role.
func isOnline(role string) bool {
	return role == metadata.SNAPSHOT || role == metadata.TIMESTAMP || role == rollout.RoleName
}

// dirs returns the directories that may hold role's key files, in the
// order they are searched.
func (kr *keyring) dirs(role string) []string {
	if isOnline(role) {
		return []string{kr.online}
	}
	var out []string
	if kr.offline != "" {
		out = append(out, kr.offline)
	}
	if kr.legacy {
		out = append(out, kr.online)
	}
	return out
}

// keyName is a role's key file name relative to a key directory.
// Application keys live under apps/ so no application name can collide
// with a top-level role; root keys are root-1.age, root-2.age, ...; the
// rollout role's key is rollout.age.
func keyName(role string) string {
	switch role {
	case metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP:
		return role + ".age"
	case rollout.RoleName:
		return RolloutKeyName + ".age"
	}
	return filepath.Join("apps", role+".age")
}

func rootKeyName(i int) string { return fmt.Sprintf("root-%d.age", i) }

// files returns the key files that may hold role's keys.
func (kr *keyring) files(role string) []string {
	var out []string
	for _, d := range kr.dirs(role) {
		if role == metadata.ROOT {
			m, _ := filepath.Glob(filepath.Join(d, "root-*.age"))
			slices.Sort(m)
			out = append(out, m...)
			continue
		}
		out = append(out, filepath.Join(d, keyName(role)))
	}
	return out
}

// signers returns at least threshold keys of role, whose key IDs are ids:
// every matching signer given to the Repo, then key files, opened one at a
// time until the threshold is met. A file whose .pub names another key is
// skipped unopened. Fewer than threshold keys is a *KeyError.
func (kr *keyring) signers(ctx context.Context, role string, ids []string, threshold int) ([]*roleKey, error) {
	var got []*roleKey
	for _, id := range ids {
		if k := kr.byID[id]; k != nil {
			got = append(got, k)
		}
	}
	var looked []string
	var mismatch error
	for _, file := range kr.files(role) {
		if len(got) >= threshold {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		looked = append(looked, file)
		k, err := kr.openFile(ctx, file, ids)
		switch {
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, errOtherKey):
			continue
		case err != nil:
			return nil, err
		}
		if !slices.Contains(ids, k.id) {
			mismatch = fmt.Errorf("key file %s holds key %s, which is not a key of role %s", file, k.id, role)
			continue
		}
		if !slices.ContainsFunc(got, func(g *roleKey) bool { return g.id == k.id }) {
			got = append(got, k)
		}
	}
	if len(got) < threshold {
		e := &KeyError{Role: role, Have: len(got), Threshold: threshold, Looked: looked, Err: mismatch}
		for _, id := range ids {
			if !slices.ContainsFunc(got, func(g *roleKey) bool { return g.id == id }) {
				e.Missing = append(e.Missing, id)
			}
		}
		return nil, e
	}
	return got, nil
}

// errOtherKey means a key file's .pub names a key the caller does not want.
var errOtherKey = errors.New("key file holds another key")

// openFile opens the key file at path (once per keyring). If the file has
// a .pub next to it naming none of ids, it is not decrypted: errOtherKey.
// A missing file is an fs.ErrNotExist error.
func (kr *keyring) openFile(ctx context.Context, path string, ids []string) (*roleKey, error) {
	if k := kr.opened[path]; k != nil {
		return k, nil
	}
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	if pub, err := keys.ReadPublic(path + ".pub"); err == nil && ids != nil {
		if id, err := pub.ID(); err == nil && !slices.Contains(ids, id) {
			return nil, errOtherKey
		}
	}
	if kr.pass == nil {
		return nil, fmt.Errorf("a passphrase is needed to open key file %s", path)
	}
	s, err := keys.Open(ctx, path, kr.pass)
	if err != nil {
		return nil, err
	}
	k, err := newRoleKey(s)
	if err != nil {
		return nil, err
	}
	kr.opened[path] = k
	kr.byID[k.id] = k
	return k, nil
}

// moved records that the key file at from is now at to.
func (kr *keyring) moved(from, to string) {
	if k := kr.opened[from]; k != nil {
		kr.opened[to] = k
		delete(kr.opened, from)
	}
}

// generate creates a new key, saves it encrypted at path with a .pub next
// to it, and returns it.
func (kr *keyring) generate(ctx context.Context, path string, workFactor int) (*roleKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if kr.pass == nil {
		return nil, fmt.Errorf("a passphrase is needed to create key file %s", path)
	}
	pass, err := kr.pass(path)
	if err != nil {
		return nil, err
	}
	priv, err := keys.Generate()
	if err != nil {
		return nil, err
	}
	if err := keys.Save(path, priv, pass, workFactor); err != nil {
		return nil, err
	}
	s, err := keys.NewFileSigner(priv)
	if err != nil {
		return nil, err
	}
	if err := keys.WritePublic(path+".pub", s.Key()); err != nil {
		return nil, err
	}
	k, err := newRoleKey(s)
	if err != nil {
		return nil, err
	}
	kr.opened[path] = k
	kr.byID[k.id] = k
	return k, nil
}

// topKeys returns the keys that sign a top-level role, checked against root.
func (r *Repo) topKeys(ctx context.Context, st *state, role string) ([]*roleKey, error) {
	rr := st.root.Signed.Roles[role]
	return r.keys.signers(ctx, role, rr.KeyIDs, rr.Threshold)
}

// delegation returns app's delegated role in targets, or nil.
func delegation(st *state, app string) *metadata.DelegatedRole { return delegationOf(st.targets, app) }

// appKeys returns the keys of an existing application role, checked
// against its delegation in targets.
func (r *Repo) appKeys(ctx context.Context, st *state, app string) ([]*roleKey, error) {
	d := delegation(st, app)
	if d == nil {
		return nil, fmt.Errorf("application %s has no delegation", app)
	}
	return r.keys.signers(ctx, app, d.KeyIDs, d.Threshold)
}
