package repo

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/rollout"
)

// change says which roles of a state to re-sign. commit always re-signs
// timestamp, and snapshot whenever anything below it changes.
type change struct {
	apps     []string // application roles, already edited in the state
	targets  bool     // top-level targets, already edited in the state
	snapshot bool     // snapshot even if no role below it changed
}

func (c change) snapshotChanged() bool { return c.snapshot || c.targets || len(c.apps) > 0 }

// signerKeys opens every key commit needs, so that a missing key, a wrong
// passphrase or a damaged key file is reported before anything is written.
// It opens only those keys: the changed application roles', targets' if it
// changed, and the online keys.
func (r *Repo) signerKeys(ctx context.Context, st *state, ch change) (map[string][]*roleKey, error) {
	out := map[string][]*roleKey{}
	var err error
	for _, app := range ch.apps {
		if out[app], err = r.appKeys(ctx, st, app); err != nil {
			return nil, err
		}
	}
	roles := []string{metadata.TIMESTAMP}
	if ch.snapshotChanged() {
		roles = append(roles, metadata.SNAPSHOT)
	}
	if ch.targets {
		roles = append(roles, metadata.TARGETS)
	}
	for _, role := range roles {
		if out[role], err = r.topKeys(ctx, st, role); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// commit signs and writes the changed roles in the order that keeps the
// repository consistent at every step: application roles, targets,
// snapshot, and timestamp last. Only the timestamp write makes the change
// visible; every earlier file has a new name that nothing references yet.
func (r *Repo) commit(ctx context.Context, st *state, ch change) error {
	ks, err := r.signerKeys(ctx, st, ch)
	if err != nil {
		return err
	}
	now := r.now()
	exp := r.settings.exp
	apps := slices.Sorted(slices.Values(ch.apps))
	for _, app := range apps {
		if err := r.writeTargetsRole(st, app, st.apps[app], ks[app], expiry(now, r.lifetime(app))); err != nil {
			return err
		}
	}
	if len(apps) > 0 {
		if err := r.fail("app-roles"); err != nil {
			return err
		}
	}
	if ch.targets {
		if err := r.writeTargetsRole(st, metadata.TARGETS, st.targets, ks[metadata.TARGETS], expiry(now, exp.Targets)); err != nil {
			return err
		}
		if err := r.fail("targets"); err != nil {
			return err
		}
	}
	if ch.snapshotChanged() {
		snap := st.snapshot
		if snap.Signed.Version, err = nextVersion(metadata.SNAPSHOT, snap.Signed.Version); err != nil {
			return err
		}
		snap.Signed.Expires = expiry(now, exp.Snapshot)
		data, err := signBytes(snap, signersOf(ks[metadata.SNAPSHOT])...)
		if err != nil {
			return err
		}
		if err := writeMetadata(r.dir, fmt.Sprintf("%d.snapshot.json", snap.Signed.Version), data); err != nil {
			return err
		}
		if st.timestamp.Signed.Meta["snapshot.json"], err = metaFor(metadata.SNAPSHOT, snap.Signed.Version, data); err != nil {
			return err
		}
		if err := r.fail("snapshot"); err != nil {
			return err
		}
	}
	ts := st.timestamp
	if ts.Signed.Version, err = nextVersion(metadata.TIMESTAMP, ts.Signed.Version); err != nil {
		return err
	}
	ts.Signed.Expires = expiry(now, exp.Timestamp)
	data, err := signBytes(ts, signersOf(ks[metadata.TIMESTAMP])...)
	if err != nil {
		return err
	}
	if err := writeMetadata(r.dir, "timestamp.json", data); err != nil {
		return err
	}
	return r.fail("timestamp")
}

// writeTargetsRole bumps, signs and writes a targets-type role and records it
// in the snapshot.
func (r *Repo) writeTargetsRole(st *state, role string, md *targetsMD, ks []*roleKey, exp time.Time) error {
	v, err := nextVersion(role, md.Signed.Version)
	if err != nil {
		return err
	}
	md.Signed.Version = v
	md.Signed.Expires = exp
	data, err := signBytes(md, signersOf(ks)...)
	if err != nil {
		return fmt.Errorf("sign %s: %w", role, err)
	}
	if err := writeMetadata(r.dir, fmt.Sprintf("%d.%s.json", md.Signed.Version, role), data); err != nil {
		return err
	}
	m, err := metaFor(role, md.Signed.Version, data)
	if err != nil {
		return err
	}
	st.snapshot.Signed.Meta[role+".json"] = m
	return nil
}

// lifetime is how long a delegated role's signature lasts: the rollout
// role, online, is re-signed as often as snapshot; the applications' roles
// last as long as targets.
func (r *Repo) lifetime(role string) time.Duration {
	if role == rollout.RoleName {
		return r.settings.exp.Snapshot
	}
	return r.settings.exp.Targets
}

func signersOf(ks []*roleKey) []signature.Signer {
	out := make([]signature.Signer, len(ks))
	for i, k := range ks {
		out[i] = k.signer
	}
	return out
}

func (r *Repo) fail(step string) error {
	if r.failpoint == nil {
		return nil
	}
	if err := r.failpoint(step); err != nil {
		return fmt.Errorf("publish step %s: %w", step, err)
	}
	return nil
}
