package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/rollout"
)

// The rollout role (rollout.RoleName, "_rollout") signs the rollout
// decisions. Top-level targets delegates it, terminating, threshold 1, to
// one online key, with the single path pattern rollout.PathPattern
// ("_rollout/*"): it matches no release path (APP/VERSION/OS-ARCH/FILE)
// and no policy path (APP/_/_/policy), so whoever holds the rollout key
// can choose among releases an application key signed and can add or
// change none (R61). Its metadata, N._rollout.json, is listed in snapshot
// like every role, so an older decision replayed is a TUF rollback (R62).
// Its key is online: DIR/keys/rollout.age, or a signer held elsewhere
// (InitOptions.OnlineSigners[RolloutKeyName], Options.Signers).

// RolloutKeyName names the rollout role's key: the key file
// DIR/keys/rollout.age, and the key of InitOptions.OnlineSigners that
// holds it elsewhere.
const RolloutKeyName = "rollout"

// ErrNoRolloutRole means the repository has no rollout role: it was made
// before rollouts, and AddRolloutRole adds it.
var ErrNoRolloutRole = errors.New("repository has no rollout role")

// addRolloutRole delegates the rollout role to k in st's targets and adds
// its empty role to st (version 0: commit signs version 1). Both must then
// be committed.
func addRolloutRole(st *state, k *metadata.Key) error {
	id, err := k.ID()
	if err != nil {
		return err
	}
	d := st.targets.Signed.Delegations
	if d == nil {
		d = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
		st.targets.Signed.Delegations = d
	}
	d.Keys[id] = k
	d.Roles = append(d.Roles, rolloutDelegation([]string{id}))
	sortDelegations(d)
	st.apps[rollout.RoleName] = emptyRole()
	return nil
}

// rolloutDelegation is the rollout role's delegation to the keys ids.
func rolloutDelegation(ids []string) metadata.DelegatedRole {
	return metadata.DelegatedRole{
		Name:        rollout.RoleName,
		KeyIDs:      ids,
		Threshold:   1,
		Terminating: true,
		Paths:       []string{rollout.PathPattern},
	}
}

// sortDelegations orders delegated roles by name. Their paths never
// overlap (APP/*/*/* per application, _rollout/*), so the order decides no
// search.
func sortDelegations(d *metadata.Delegations) {
	sort.Slice(d.Roles, func(i, j int) bool { return d.Roles[i].Name < d.Roles[j].Name })
}

// emptyRole is a delegated role with no targets yet, at version 0.
func emptyRole() *targetsMD {
	md := metadata.Targets()
	md.Signed.Version = 0
	return md
}

// AddRolloutRole adds the rollout role to a repository made before
// rollouts, with the key file DIR/keys/rollout.age (created, encrypted with
// the Repo's passphrase for DIR/keys, when it does not exist). It re-signs
// targets, so it needs the targets key (the offline keys directory, or its
// signer); without it, it fails with ErrMissingKey and says how the
// holders of targets delegate the role in a targets ceremony instead. A
// repository that has the role already is left as it is.
func (r *Repo) AddRolloutRole(ctx context.Context) error {
	return r.AddRolloutRoleWith(ctx, nil)
}

// AddRolloutRoleWith is AddRolloutRole with the rollout key held elsewhere
// (a KMS key, a PKCS#11 token): no key file is created, and whoever signs
// decisions later passes the same signer in Options.Signers. nil means the
// key file.
func (r *Repo) AddRolloutRoleWith(ctx context.Context, s keys.Signer) error {
	if err := r.addRolloutRole(ctx, s); err != nil {
		return fmt.Errorf("add the rollout role to %s: %w", r.dir, err)
	}
	return nil
}

func (r *Repo) addRolloutRole(ctx context.Context, s keys.Signer) error {
	unlock, err := r.lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := r.loadState()
	if err != nil {
		return err
	}
	if d := delegationOf(st.targets, rollout.RoleName); d != nil {
		if st.apps[rollout.RoleName] != nil {
			return nil // already there
		}
		// Delegated by a targets ceremony: sign its first, empty version.
		st.apps[rollout.RoleName] = emptyRole()
		return r.commit(ctx, st, change{apps: []string{rollout.RoleName}})
	}
	k, err := r.rolloutKey(ctx, s)
	if err != nil {
		return err
	}
	if _, err := r.topKeys(ctx, st, metadata.TARGETS); errors.Is(err, ErrMissingKey) {
		return fmt.Errorf("the rollout role is delegated by targets, and %w: run this where the targets key is (the offline keys directory), "+
			"or have the holders of targets delegate it in a targets ceremony: ferry targets propose --repo %s --app %s --add-key %s --out FILE, then sign and publish it",
			err, r.dir, rollout.RoleName, r.rolloutPubHint(s))
	} else if err != nil {
		return err
	}
	if err := addRolloutRole(st, k.tuf); err != nil {
		return err
	}
	return r.commit(ctx, st, change{targets: true, apps: []string{rollout.RoleName}})
}

// rolloutKey returns s, or the key in DIR/keys/rollout.age, created if it
// does not exist.
func (r *Repo) rolloutKey(ctx context.Context, s keys.Signer) (*roleKey, error) {
	if s != nil {
		if err := r.keys.add(s); err != nil {
			return nil, err
		}
		id, err := s.Key().ID()
		if err != nil {
			return nil, err
		}
		return r.keys.byID[id], nil
	}
	file := filepath.Join(r.keys.online, keyName(rollout.RoleName))
	if _, err := os.Stat(file); err == nil {
		return r.keys.openFile(ctx, file, nil)
	}
	return r.keys.generate(ctx, file, r.settings.KeyWorkFactor)
}

// rolloutPubHint names the public key to delegate the rollout role to.
func (r *Repo) rolloutPubHint(s keys.Signer) string {
	if s != nil {
		return "PUB (the public key of the rollout signer)"
	}
	return filepath.Join(r.keys.online, keyName(rollout.RoleName)) + ".pub"
}

// rolloutRole returns the rollout role of st, a new empty one when targets
// delegates it but it has no metadata yet, or ErrNoRolloutRole.
func rolloutRole(st *state) (*targetsMD, error) {
	if delegationOf(st.targets, rollout.RoleName) == nil {
		return nil, fmt.Errorf("%w (it was made before rollouts): add it with the targets key (AddRolloutRole)", ErrNoRolloutRole)
	}
	md := st.apps[rollout.RoleName]
	if md == nil {
		md = emptyRole()
		st.apps[rollout.RoleName] = md
	}
	return md, nil
}
