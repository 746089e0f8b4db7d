package repo

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/keys"
)

// roleKey is a decrypted signing key.
type roleKey struct {
	signer signature.Signer
	tuf    *metadata.Key
	id     string
}

func newRoleKey(priv ed25519.PrivateKey) (*roleKey, error) {
	s, err := keys.NewFileSigner(priv)
	if err != nil {
		return nil, err
	}
	id, err := s.Key().ID()
	if err != nil {
		return nil, err
	}
	return &roleKey{signer: keys.TUFSigner(context.Background(), s), tuf: s.Key(), id: id}, nil
}

// keyFile returns the path of a role's key file. Application roles live
// under keys/apps/ so no application name can collide with a top-level role.
func keyFile(dir, role string) string {
	switch role {
	case metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP:
		return filepath.Join(dir, "keys", role+".age")
	}
	return filepath.Join(dir, "keys", "apps", role+".age")
}

func rootKeyFile(dir string, i int) string {
	return filepath.Join(dir, "keys", fmt.Sprintf("root-%d.age", i))
}

// key decrypts (once per Repo) the key in file and checks that it is one of
// wantIDs, the key IDs that role's delegator lists.
func (r *Repo) key(file, role string, wantIDs []string) (*roleKey, error) {
	k, ok := r.signers[file]
	if !ok {
		if len(r.passphrase) == 0 {
			return nil, fmt.Errorf("a passphrase is needed to sign %s", role)
		}
		priv, err := keys.Load(file, r.passphrase)
		if err != nil {
			return nil, err
		}
		if k, err = newRoleKey(priv); err != nil {
			return nil, err
		}
		r.signers[file] = k
	}
	if wantIDs != nil && !slices.Contains(wantIDs, k.id) {
		return nil, fmt.Errorf("key file %s holds key %s, which is not a key of role %s", file, k.id, role)
	}
	return k, nil
}

// topKey returns the key of a top-level role, checked against root.
func (r *Repo) topKey(st *state, role string) (*roleKey, error) {
	return r.key(keyFile(r.dir, role), role, st.root.Signed.Roles[role].KeyIDs)
}

// appKey returns the key of an existing application role, checked against
// its delegation in targets.
func (r *Repo) appKey(st *state, app string) (*roleKey, error) {
	if st.targets.Signed.Delegations == nil {
		return nil, fmt.Errorf("application %s has no delegation", app)
	}
	for _, d := range st.targets.Signed.Delegations.Roles {
		if d.Name == app {
			return r.key(keyFile(r.dir, app), app, d.KeyIDs)
		}
	}
	return nil, fmt.Errorf("application %s has no delegation", app)
}

// newAppKey returns the key for an application that has no delegation yet:
// the key file left by an earlier, failed publish if there is one, else
// nil (the caller creates it with createAppKey once target files are in
// place).
func (r *Repo) newAppKey(app string) (*roleKey, error) {
	file := keyFile(r.dir, app)
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return r.key(file, app, nil)
}

func (r *Repo) createAppKey(ctx context.Context, app string) (*roleKey, error) {
	return r.generate(ctx, keyFile(r.dir, app))
}
