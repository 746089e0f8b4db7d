package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/ferry-updates/ferry/internal/atomicfile"
)

// A rotation makes the new key before the change that lists it is signed:
// the key waits as a pending key file next to the role's key file,
// KEYDIR/pending/ROLE-KEYID.age, until the change is published; then it
// replaces the role's key file.

// pendingKeyFile is where the pending key id of role waits in the key
// directory keyDir.
func pendingKeyFile(keyDir, role, id string) string {
	kf := filepath.Join(keyDir, keyName(role))
	return filepath.Join(filepath.Dir(kf), "pending", role+"-"+id+".age")
}

// generatePending makes and saves a pending key for role, in the directory
// where role's keys are kept (the offline keys directory for an offline
// role, which must then be given).
func (r *Repo) generatePending(ctx context.Context, role string) (*roleKey, error) {
	keyDir := r.keyDir(role)
	if keyDir == "" {
		return nil, fmt.Errorf("the new %s key goes in the offline keys directory, and none was given: %w", role, ErrMissingKey)
	}
	tmp := pendingKeyFile(keyDir, role, "new")
	if err := os.MkdirAll(filepath.Dir(tmp), 0o700); err != nil {
		return nil, err
	}
	k, err := r.keys.generate(ctx, tmp, r.settings.KeyWorkFactor)
	if err != nil {
		return nil, fmt.Errorf("make the new %s key: %w", role, err)
	}
	file := pendingKeyFile(keyDir, role, k.id)
	if err := atomicfile.Rename(tmp+".pub", file+".pub"); err != nil {
		return nil, fmt.Errorf("save pending %s key: %w", role, err)
	}
	if err := atomicfile.Rename(tmp, file); err != nil {
		return nil, fmt.Errorf("save pending %s key: %w", role, err)
	}
	r.keys.moved(tmp, file)
	return k, nil
}

// pendingKey is a decrypted pending key and where it goes once published.
type pendingKey struct {
	from, to string
}

// openRoleKey finds a key of role among wantIDs: a signer given to the
// Repo or the role's key file, else a pending key file. It returns the
// pending move to make, if any.
func (r *Repo) openRoleKey(ctx context.Context, role string, wantIDs []string) (*roleKey, *pendingKey, error) {
	ks, err := r.keys.signers(ctx, role, wantIDs, 1)
	if err == nil {
		return ks[0], nil, nil
	}
	if !errors.Is(err, ErrMissingKey) {
		return nil, nil, err
	}
	for _, keyDir := range r.keys.dirs(role) {
		for _, id := range wantIDs {
			pf := pendingKeyFile(keyDir, role, id)
			if _, serr := os.Stat(pf); serr != nil {
				continue
			}
			pk, err := r.keys.openFile(ctx, pf, wantIDs)
			if err != nil {
				return nil, nil, err
			}
			if !slices.Contains(wantIDs, pk.id) {
				return nil, nil, fmt.Errorf("pending key file %s holds key %s, which is not a new key of %s", pf, pk.id, role)
			}
			return pk, &pendingKey{from: pf, to: filepath.Join(keyDir, keyName(role))}, nil
		}
	}
	return nil, nil, fmt.Errorf("no key of role %s (key ids %v) is here, nor among its pending keys: %w", role, shortIDs(wantIDs), err)
}

// openPendingRoles decrypts, before anything is written, the key of every
// top-level role whose keys differ between old and nr, and returns the
// pending key files to put in place.
func (r *Repo) openPendingRoles(ctx context.Context, old, nr *rootMD) ([]*pendingKey, error) {
	var out []*pendingKey
	for _, role := range []string{"targets", "snapshot", "timestamp"} {
		ids := nr.Signed.Roles[role].KeyIDs
		if slices.Equal(slices.Sorted(slices.Values(ids)), slices.Sorted(slices.Values(old.Signed.Roles[role].KeyIDs))) {
			continue
		}
		_, pk, err := r.openRoleKey(ctx, role, ids)
		if err != nil {
			return nil, err
		}
		if pk != nil {
			out = append(out, pk)
		}
	}
	return out, nil
}

// installPending moves pending keys (and their .pub files) over the role
// key files they replace.
func (r *Repo) installPending(ps []*pendingKey) error {
	for _, p := range ps {
		if _, err := os.Stat(p.from + ".pub"); err == nil {
			if err := atomicfile.Rename(p.from+".pub", p.to+".pub"); err != nil {
				return fmt.Errorf("install new key: %w", err)
			}
		}
		if err := atomicfile.Rename(p.from, p.to); err != nil {
			return fmt.Errorf("install new key: %w", err)
		}
		r.keys.moved(p.from, p.to)
	}
	return nil
}
