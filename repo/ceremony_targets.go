package repo

import (
	"context"
	"fmt"
	"slices"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/rollout"
	"github.com/ferry-updates/ferry/trust"
)

// TargetsChange is an edit of one application's delegation in targets.
type TargetsChange struct {
	App        string          // the application whose delegation changes (required)
	AddKeys    []*metadata.Key // keys added to the application's role
	RemoveKeys []string        // key IDs removed from it
	Threshold  int             // the application's new threshold; 0 keeps it
	// Rotate replaces every key of the application by a new one, generated
	// now as a pending key: the revocation of a compromised key. Publish
	// re-signs the application's role with the new key.
	Rotate bool
}

// ProposeTargets returns a proposal for the next targets version: the
// current targets with ch applied and a fresh expiry.
func (r *Repo) ProposeTargets(ctx context.Context, ch TargetsChange) (*Proposal, error) {
	p, err := r.proposeTargets(ctx, ch)
	if err != nil {
		return nil, fmt.Errorf("propose targets: %w", err)
	}
	return p, nil
}

func (r *Repo) proposeTargets(ctx context.Context, ch TargetsChange) (*Proposal, error) {
	st, err := r.loadState()
	if err != nil {
		return nil, err
	}
	cur, err := currentTargetsBytes(r.dir, st)
	if err != nil {
		return nil, err
	}
	next, err := metadata.Targets().FromBytes(cur)
	if err != nil {
		return nil, err
	}
	d, err := delegationFor(next, ch)
	if err != nil {
		return nil, err
	}
	if err := r.editDelegation(ctx, next.Signed.Delegations, d, ch); err != nil {
		return nil, err
	}
	if next.Signed.Version, err = nextVersion(metadata.TARGETS, next.Signed.Version); err != nil {
		return nil, err
	}
	next.Signed.Expires = expiry(r.now(), r.settings.exp.Targets)
	root := st.root.Signed
	return newProposal(metadata.TARGETS, cur, st.targets.Signed.Version, &next.Signed, []Requirement{
		requirement(fmt.Sprintf("targets (root version %d)", root.Version), root.Keys, root.Roles[metadata.TARGETS]),
	})
}

// delegationFor returns app's delegation in t, to be edited in place. An
// application without one gets a new delegation (APP/*/*/*, terminating,
// no keys yet) when the change adds keys: a new application, delegated
// before its first release to keys its pipeline holds.
//
// App may also be the rollout role (rollout.RoleName): delegated the same
// way to the key added (rollout.PathPattern, threshold 1), it is how the
// holders of targets add the rollout role to an older repository.
func delegationFor(t *targetsMD, ch TargetsChange) (*metadata.DelegatedRole, error) {
	if ch.App != rollout.RoleName {
		if err := release.ValidApp(ch.App); err != nil {
			return nil, err
		}
	}
	if d := delegationOf(t, ch.App); d != nil {
		return d, nil
	}
	if len(ch.AddKeys) == 0 || ch.Rotate || len(ch.RemoveKeys) > 0 {
		return nil, fmt.Errorf("application %s has no delegation: delegate it to its keys with --add-key (and --threshold)", ch.App)
	}
	if ch.App == rollout.RoleName {
		if len(ch.AddKeys) != 1 || ch.Threshold > 1 {
			return nil, fmt.Errorf("the rollout role has one key and threshold 1: add exactly one key")
		}
		if t.Signed.Delegations == nil {
			t.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
		}
		t.Signed.Delegations.Roles = append(t.Signed.Delegations.Roles, rolloutDelegation(nil))
		sortDelegations(t.Signed.Delegations)
		return delegationOf(t, ch.App), nil
	}
	addDelegation(t, ch.App, nil, max(ch.Threshold, 1))
	return delegationOf(t, ch.App), nil
}

func (r *Repo) editDelegation(ctx context.Context, ds *metadata.Delegations, d *metadata.DelegatedRole, ch TargetsChange) error {
	if ch.Rotate {
		k, err := r.generatePending(ctx, d.Name)
		if err != nil {
			return err
		}
		ch.RemoveKeys = append(ch.RemoveKeys, d.KeyIDs...)
		ch.AddKeys = append(ch.AddKeys, k.tuf)
	}
	for _, k := range ch.AddKeys {
		id, err := k.ID()
		if err != nil {
			return err
		}
		if slices.Contains(d.KeyIDs, id) {
			return fmt.Errorf("key %s is already a key of %s", id, d.Name)
		}
		ds.Keys[id] = k
		d.KeyIDs = append(d.KeyIDs, id)
	}
	for _, id := range ch.RemoveKeys {
		if !slices.Contains(d.KeyIDs, id) {
			return fmt.Errorf("key %s is not a key of %s", id, d.Name)
		}
		d.KeyIDs = slices.DeleteFunc(d.KeyIDs, func(x string) bool { return x == id })
	}
	if ch.Threshold != 0 {
		d.Threshold = ch.Threshold
	}
	if d.Threshold < 1 || d.Threshold > len(d.KeyIDs) {
		return fmt.Errorf("%s threshold %d with %d keys: want 1 to %d", d.Name, d.Threshold, len(d.KeyIDs), len(d.KeyIDs))
	}
	dropUnusedKeys(ds)
	return nil
}

// dropUnusedKeys removes keys no delegated role lists any more.
func dropUnusedKeys(ds *metadata.Delegations) {
	for id := range ds.Keys {
		used := slices.ContainsFunc(ds.Roles, func(d metadata.DelegatedRole) bool { return slices.Contains(d.KeyIDs, id) })
		if !used {
			delete(ds.Keys, id)
		}
	}
}

// currentTargetsBytes returns the published file of the current targets.
func currentTargetsBytes(dir string, st *state) ([]byte, error) {
	return readReferenced(metadataDir(dir), metadata.TARGETS, st.snapshot.Signed.Meta["targets.json"])
}

func (r *Repo) publishTargets(ctx context.Context, p *Proposal, opts PublishOptions) error {
	st, err := r.loadState()
	if err != nil {
		return err
	}
	if st.targets.Signed.Version == p.Base.Version+1 && sameSigned(st.targets, p.Signed) {
		return nil // already published
	}
	cur, err := currentTargetsBytes(r.dir, st)
	if err != nil {
		return err
	}
	if err := checkBase(p, st.targets.Signed.Version, cur); err != nil {
		return err
	}
	root := st.root.Signed
	final, err := counted(p, []Requirement{
		requirement(fmt.Sprintf("targets (root version %d)", root.Version), root.Keys, root.Roles[metadata.TARGETS]),
	})
	if err != nil {
		return err
	}
	rootBytes, err := currentRootBytes(r.dir, st.root)
	if err != nil {
		return err
	}
	if err := trust.VerifyRole(rootBytes, metadata.TARGETS, final); err != nil { // the client's own check
		return err
	}
	nt, err := metadata.Targets().FromBytes(final)
	if err != nil {
		return err
	}
	if err := checkDelegations(nt.Signed.Delegations); err != nil {
		return err
	}
	if !nt.Signed.Expires.After(r.now()) {
		return fmt.Errorf("the new targets expired at %s: propose again", nt.Signed.Expires.Format("2006-01-02 15:04:05Z"))
	}
	resign, pending, err := r.appsToResign(ctx, st, nt)
	if err != nil {
		return err
	}
	if err := dropReleases(st, resign, opts); err != nil {
		return err
	}
	resign = newRolloutRole(st, nt, resign)
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := writeMetadata(r.dir, fmt.Sprintf("%d.targets.json", nt.Signed.Version), final); err != nil {
		return err
	}
	m, err := metaFor(metadata.TARGETS, nt.Signed.Version, final)
	if err != nil {
		return err
	}
	st.snapshot.Signed.Meta["targets.json"] = m
	if err := r.installPending(pending); err != nil {
		return err
	}
	st.targets = nt
	return r.commit(ctx, st, change{apps: resign, snapshot: true})
}

// newRolloutRole adds to st the first, empty version of the rollout role
// when nt delegates it and st has none (a ceremony that adds it), and to
// resign its name: it is signed in the same commit, with the online
// rollout key.
func newRolloutRole(st *state, nt *targetsMD, resign []string) []string {
	if delegationOf(nt, rollout.RoleName) == nil || st.apps[rollout.RoleName] != nil {
		return resign
	}
	st.apps[rollout.RoleName] = emptyRole()
	return append(resign, rollout.RoleName)
}

// appsToResign returns the applications whose current role no longer
// verifies under nt's delegations, after checking that their new keys are
// at hand, and the pending keys to put in place.
func (r *Repo) appsToResign(ctx context.Context, st *state, nt *targetsMD) ([]string, []*pendingKey, error) {
	var apps []string
	var pending []*pendingKey
	if nt.Signed.Delegations == nil {
		return nil, nil, nil
	}
	for _, d := range nt.Signed.Delegations.Roles {
		md := st.apps[d.Name]
		if md == nil {
			continue // delegated, not released yet: its first release signs its role
		}
		if verify(nt, d.Name, md) == nil {
			continue
		}
		_, pk, err := r.openRoleKey(ctx, d.Name, d.KeyIDs)
		if err != nil {
			return nil, nil, fmt.Errorf("application %s must be re-signed with its new key: %w", d.Name, err)
		}
		if pk != nil {
			pending = append(pending, pk)
		}
		apps = append(apps, d.Name)
	}
	return apps, pending, nil
}
