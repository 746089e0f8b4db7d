package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/ferry-updates/ferry/internal/atomicfile"
)

// A rotation makes the new key before the change that lists it is signed:
// the key waits as a pending key file next to the role's key file,
// KEYDIR/pending/ROLE-KEYID.age, until the change is published; then it
// replaces the role's key file.

// pendingKeyFile is where the pending key id of role waits.
func pendingKeyFile(dir, role, id string) string {
	kf := keyFile(dir, role)
	return filepath.Join(filepath.Dir(kf), "pending", role+"-"+id+".age")
}

// generatePending makes and saves a pending key for role.
func (r *Repo) generatePending(ctx context.Context, role string) (*roleKey, error) {
	if len(r.passphrase) == 0 {
		return nil, fmt.Errorf("a passphrase is needed to make the new %s key", role)
	}
	tmp := pendingKeyFile(r.dir, role, "new")
	k, err := r.generate(ctx, tmp)
	if err != nil {
		return nil, err
	}
	delete(r.signers, tmp)
	file := pendingKeyFile(r.dir, role, k.id)
	if err := atomicfile.Rename(tmp, file); err != nil {
		return nil, fmt.Errorf("save pending %s key: %w", role, err)
	}
	r.signers[file] = k
	return k, nil
}

// pendingKey is a decrypted pending key and where it goes once published.
type pendingKey struct {
	from, to string
}

// openRoleKey finds the key of role among wantIDs: the role's key file,
// else a pending key file. It returns the pending move to make, if any.
func (r *Repo) openRoleKey(role string, wantIDs []string) (*roleKey, *pendingKey, error) {
	file := keyFile(r.dir, role)
	k, err := r.key(file, role, nil)
	if err == nil && slices.Contains(wantIDs, k.id) {
		return k, nil, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	for _, id := range wantIDs {
		pf := pendingKeyFile(r.dir, role, id)
		if _, serr := os.Stat(pf); serr != nil {
			continue
		}
		pk, err := r.key(pf, role, wantIDs)
		if err != nil {
			return nil, nil, err
		}
		return pk, &pendingKey{from: pf, to: file}, nil
	}
	return nil, nil, fmt.Errorf("no key of role %s (key ids %v) is in %s or its pending keys", role, shortIDs(wantIDs), filepath.Dir(file))
}

// openPendingRoles decrypts, before anything is written, the key of every
// top-level role whose keys differ between old and nr, and returns the
// pending key files to put in place.
func (r *Repo) openPendingRoles(old, nr *rootMD) ([]*pendingKey, error) {
	var out []*pendingKey
	for _, role := range []string{"targets", "snapshot", "timestamp"} {
		ids := nr.Signed.Roles[role].KeyIDs
		if slices.Equal(slices.Sorted(slices.Values(ids)), slices.Sorted(slices.Values(old.Signed.Roles[role].KeyIDs))) {
			continue
		}
		_, pk, err := r.openRoleKey(role, ids)
		if err != nil {
			return nil, err
		}
		if pk != nil {
			out = append(out, pk)
		}
	}
	return out, nil
}

// installPending moves pending keys over the role key files they replace.
func (r *Repo) installPending(ps []*pendingKey) error {
	for _, p := range ps {
		if err := atomicfile.Rename(p.from, p.to); err != nil {
			return fmt.Errorf("install new key: %w", err)
		}
		r.signers[p.to] = r.signers[p.from]
		delete(r.signers, p.from)
	}
	return nil
}
