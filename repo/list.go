package repo

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/release"
)

// List returns every published target, sorted by app, version, platform.
// It needs no passphrase.
func (r *Repo) List(ctx context.Context) ([]Entry, error) {
	st, err := loadState(r.dir)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, app := range sortedKeys(st.apps) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for p, t := range st.apps[app].Signed.Targets {
			e, err := entryOf(p, t)
			if err != nil {
				return nil, fmt.Errorf("list: role %s: %w", app, err)
			}
			out = append(out, e)
		}
	}
	sortEntries(out)
	return out, nil
}

func entryOf(p string, t *metadata.TargetFiles) (Entry, error) {
	c, err := signedCustom(t)
	if err != nil {
		return Entry{}, fmt.Errorf("target %s: %w", p, err)
	}
	return Entry{
		Release: Release{App: c.App, Version: c.Version, Platform: c.Platform, Kind: c.Kind},
		Path:    p,
		Length:  t.Length,
		SHA256:  hex.EncodeToString(t.Hashes["sha256"]),
	}, nil
}

// signedCustom returns the ferry custom metadata of a signed target.
func signedCustom(t *metadata.TargetFiles) (release.Custom, error) {
	if t.Custom == nil {
		return release.Custom{}, errors.New("no ferry custom metadata")
	}
	return release.ParseCustom(*t.Custom)
}

// Refresh re-signs snapshot and timestamp if they expire within half their
// lifetime (or always, if force). Since the repository holds every key, it
// also re-signs the top-level targets role and application roles that are
// within half their lifetime; root is never re-signed here (a new root is a
// key ceremony). Each re-signed role gets the next version.
func (r *Repo) Refresh(ctx context.Context, force bool) error {
	if err := r.refresh(ctx, force); err != nil {
		return fmt.Errorf("refresh %s: %w", r.dir, err)
	}
	return nil
}

func (r *Repo) refresh(ctx context.Context, force bool) error {
	unlock, err := r.lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := loadState(r.dir)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	now, exp := r.now(), r.settings.exp
	var ch change
	for _, app := range sortedKeys(st.apps) {
		if stale(now, st.apps[app].Signed.Expires, exp.Targets) {
			ch.apps = append(ch.apps, app)
		}
	}
	ch.targets = stale(now, st.targets.Signed.Expires, exp.Targets)
	ch.snapshot = force || stale(now, st.snapshot.Signed.Expires, exp.Snapshot)
	if !force && !ch.snapshotChanged() && !stale(now, st.timestamp.Signed.Expires, exp.Timestamp) {
		return nil
	}
	return r.commit(st, ch)
}

// KeyInfo describes one signing key of a repository.
type KeyInfo struct {
	Role      string // root, targets, snapshot, timestamp or an application name
	KeyID     string // TUF key ID (hex SHA-256 of the canonical key)
	PublicKey string // hex Ed25519 public key
	Threshold int    // signatures the role needs
	File      string // the encrypted private key file
}

// Keys lists every role's keys from the repository's current metadata; it
// needs no passphrase. Roles come in the order root, targets, snapshot,
// timestamp, then applications by name.
func Keys(dir string) ([]KeyInfo, error) {
	st, err := loadState(dir)
	if err != nil {
		return nil, err
	}
	var out []KeyInfo
	root := st.root.Signed
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		rr := root.Roles[role]
		for i, id := range rr.KeyIDs {
			file := keyFile(dir, role)
			if role == metadata.ROOT {
				file = rootKeyFile(dir, i+1)
			}
			out = append(out, KeyInfo{Role: role, KeyID: id, PublicKey: publicHex(root.Keys[id]), Threshold: rr.Threshold, File: file})
		}
	}
	if d := st.targets.Signed.Delegations; d != nil {
		roles := append([]metadata.DelegatedRole(nil), d.Roles...)
		sort.Slice(roles, func(i, j int) bool { return roles[i].Name < roles[j].Name })
		for _, dr := range roles {
			for _, id := range dr.KeyIDs {
				out = append(out, KeyInfo{Role: dr.Name, KeyID: id, PublicKey: publicHex(d.Keys[id]), Threshold: dr.Threshold, File: keyFile(dir, dr.Name)})
			}
		}
	}
	return out, nil
}

func publicHex(k *metadata.Key) string {
	if k == nil {
		return ""
	}
	return k.Value.PublicKey
}

// RootFile returns the path of the repository's current root.json, the
// trust anchor to give clients.
func RootFile(dir string) string { return filepath.Join(dir, "root.json") }

// String is "PATH (LENGTH bytes, sha256 HEX)".
func (e Entry) String() string {
	return fmt.Sprintf("%s (%d bytes, sha256 %s)", e.Path, e.Length, e.SHA256)
}
