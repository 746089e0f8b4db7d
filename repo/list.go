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
	"github.com/ferry-updates/ferry/rollout"
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
		if app == rollout.RoleName {
			continue // decisions, not releases (Rollouts)
		}
		for p, t := range st.apps[app].Signed.Targets {
			if p == rollout.PolicyPath(app) {
				continue // the minimum safe version (MinVersion), not a release
			}
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

// KeyInfo describes one signing key of a repository.
type KeyInfo struct {
	Role      string // root, targets, snapshot, timestamp, _rollout or an application name
	KeyID     string // TUF key ID (hex SHA-256 of the canonical key)
	PublicKey string // hex Ed25519 public key
	Threshold int    // signatures the role needs
	// File is where ferry looks for the encrypted private key: a path
	// under DIR/keys, or "<offline keys>/NAME" for a key kept in the
	// offline keys directory (or by an application's pipeline).
	File string
}

// Keys lists every role's keys from the repository's current metadata; it
// needs no passphrase. Roles come in the order root, targets, snapshot,
// timestamp, the rollout role (rollout.RoleName), then applications by name.
func Keys(dir string) ([]KeyInfo, error) {
	s, err := readSettings(dir)
	if err != nil {
		return nil, err
	}
	st, err := loadState(dir)
	if err != nil {
		return nil, err
	}
	file := func(role, name string) string {
		if isOnline(role) || s.Custody == "" {
			return filepath.Join(dir, "keys", name)
		}
		return filepath.Join("<offline keys>", name)
	}
	var out []KeyInfo
	root := st.root.Signed
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		rr := root.Roles[role]
		for i, id := range rr.KeyIDs {
			name := keyName(role)
			if role == metadata.ROOT {
				name = rootKeyName(i + 1)
			}
			out = append(out, KeyInfo{Role: role, KeyID: id, PublicKey: publicHex(root.Keys[id]), Threshold: rr.Threshold, File: file(role, name)})
		}
	}
	if d := st.targets.Signed.Delegations; d != nil {
		roles := append([]metadata.DelegatedRole(nil), d.Roles...)
		sort.Slice(roles, func(i, j int) bool { // the rollout role first, then applications by name
			if (roles[i].Name == rollout.RoleName) != (roles[j].Name == rollout.RoleName) {
				return roles[i].Name == rollout.RoleName
			}
			return roles[i].Name < roles[j].Name
		})
		for _, dr := range roles {
			for _, id := range dr.KeyIDs {
				out = append(out, KeyInfo{Role: dr.Name, KeyID: id, PublicKey: publicHex(d.Keys[id]), Threshold: dr.Threshold, File: file(dr.Name, keyName(dr.Name))})
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

// RootProposalFile returns where Init writes the unsigned version 1 root of
// a repository whose root keys are held elsewhere (InitOptions.RootPublic):
// its holders sign it, then PublishRoot makes it the repository's root.
func RootProposalFile(dir string) string { return filepath.Join(dir, "proposals", "1.root.json") }

// String is "PATH (LENGTH bytes, sha256 HEX)".
func (e Entry) String() string {
	return fmt.Sprintf("%s (%d bytes, sha256 %s)", e.Path, e.Length, e.SHA256)
}
