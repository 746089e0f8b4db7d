package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/rollout"
)

// addOnline registers --online-key ROLE=REF: an online key (snapshot or
// timestamp) held by a signer outside the repository, such as a KMS key or
// a PKCS#11 token, so that the server's disk holds no private key.
func (kf *keyFlags) addOnline(f *pflag.FlagSet) {
	f.StringArrayVar(&kf.online, "online-key", nil, "snapshot=REF, timestamp=REF or rollout=REF: an online key in a KMS, an HSM or a key file (repeatable)")
}

// onlineRoles are the roles --online-key names, with the TUF role each
// signs: the rollout key signs the delegated role rollout.RoleName.
var onlineRoles = map[string]string{"snapshot": "snapshot", "timestamp": "timestamp", repo.RolloutKeyName: rollout.RoleName}

// openOnlineKeys opens every --online-key ROLE=REF, one per role.
func openOnlineKeys(ctx context.Context, refs []string, pass keys.Passphrase) (map[string]keys.Signer, error) {
	out := map[string]keys.Signer{}
	for _, v := range refs {
		role, ref, ok := strings.Cut(v, "=")
		if !ok || onlineRoles[role] == "" || ref == "" {
			return nil, withHint(fmt.Errorf("--online-key %q: want snapshot=REF, timestamp=REF or rollout=REF", keys.Redact(v)),
				"REF is an awskms:// or pkcs11: URI or a key file; see docs/signers.md")
		}
		if out[role] != nil {
			return nil, fmt.Errorf("--online-key %s given twice", role)
		}
		s, err := keys.Open(ctx, ref, pass)
		if err != nil {
			return nil, fmt.Errorf("open online key %s: %w", role, err)
		}
		out[role] = s
	}
	return out, nil
}

// checkOnlineKeys makes sure each online signer is a key that the current
// root lists for its role, so that a wrong reference fails now, by name,
// rather than as a missing key at the first refresh.
func checkOnlineKeys(dir string, m map[string]keys.Signer) error {
	if len(m) == 0 {
		return nil
	}
	ks, err := repo.Keys(dir)
	if err != nil {
		return err
	}
	for role, s := range m {
		id, err := s.Key().ID()
		if err != nil {
			return err
		}
		var ids []string
		for _, k := range ks {
			if k.Role == onlineRoles[role] {
				ids = append(ids, k.KeyID)
			}
		}
		switch {
		case slices.Contains(ids, id):
		case role == repo.RolloutKeyName:
			return withHint(fmt.Errorf("--online-key rollout: key %s is not the key targets delegates the rollout role (%s) to", id, rollout.RoleName),
				"ferry key list --repo "+dir+" shows each role's key IDs; a new rollout key is delegated by a targets ceremony (ferry targets propose --app "+rollout.RoleName+")")
		default:
			return withHint(fmt.Errorf("--online-key %s: key %s is not a %s key of this repository's root", role, id, role),
				"ferry key list --repo "+dir+" shows each role's key IDs; a new online key is put in root by a root ceremony")
		}
	}
	return nil
}

// onlineSigners opens and checks kf's online keys for the repository dir.
func (e *env) onlineSigners(ctx context.Context, dir string, kf keyFlags, pass keys.Passphrase) ([]keys.Signer, error) {
	m, err := openOnlineKeys(ctx, kf.online, pass)
	if err != nil {
		return nil, err
	}
	if err := checkOnlineKeys(dir, m); err != nil {
		return nil, err
	}
	var out []keys.Signer
	for _, role := range []string{"snapshot", "timestamp", repo.RolloutKeyName} {
		if m[role] != nil {
			out = append(out, m[role])
		}
	}
	return out, nil
}
