package repo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/internal/atomicfile"
	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/rollout"
)

// Rollout decisions: the rollout role signs one target per application,
// rollout.DocPath(APP), whose signed custom metadata is the application's
// rollout.Doc and whose file holds the same bytes (stored under its
// consistent-snapshot name, so a plain TUF client can download it).
// Deciding opens the rollout, snapshot and timestamp keys and nothing
// else: a server decides with its online keys alone.

// Rollout makes decision a about one release of app (start at a share,
// halt, resume, pull, promote to a channel; see rollout.Doc.Apply) and
// publishes it atomically: the decision target, the rollout role, snapshot
// and timestamp, each signed with its online key; no offline key is
// opened. It refuses, changing nothing, a version that app's own key did
// not sign (R61) or one below app's minimum safe version (R63), and a
// repository without a rollout role (ErrNoRolloutRole). It returns the
// release's new entry; a decision that changes nothing (a halt of a
// halted release) signs nothing.
func (r *Repo) Rollout(ctx context.Context, app string, a rollout.Action) (rollout.Entry, error) {
	e, _, err := r.RolloutSigned(ctx, app, a)
	return e, err
}

// RolloutSigned is Rollout, and reports whether it signed anything: false
// for a decision that changes nothing, which writes nothing.
func (r *Repo) RolloutSigned(ctx context.Context, app string, a rollout.Action) (rollout.Entry, bool, error) {
	e, signed, err := r.decide(ctx, app, a)
	if err != nil {
		return rollout.Entry{}, false, fmt.Errorf("rollout %s %s %s: %w", a.Kind, app, a.Version, err)
	}
	return e, signed, nil
}

func (r *Repo) decide(ctx context.Context, app string, a rollout.Action) (rollout.Entry, bool, error) {
	if err := release.ValidApp(app); err != nil {
		return rollout.Entry{}, false, err
	}
	unlock, err := r.lock()
	if err != nil {
		return rollout.Entry{}, false, err
	}
	defer unlock()
	st, err := r.loadState()
	if err != nil {
		return rollout.Entry{}, false, err
	}
	md, err := rolloutRole(st)
	if err != nil {
		return rollout.Entry{}, false, err
	}
	signed, min, err := appReleases(st, app)
	if err != nil {
		return rollout.Entry{}, false, err
	}
	doc, err := docOf(md, app)
	if err != nil {
		return rollout.Entry{}, false, err
	}
	was, named := doc.Releases[a.Version]
	e, err := doc.Apply(a, signed, min)
	if err != nil {
		return rollout.Entry{}, false, unwrapApply(err)
	}
	if named && was == e {
		return e, false, nil // already so: nothing to sign
	}
	f, changed, err := setDoc(md, doc, signed)
	if err != nil {
		return rollout.Entry{}, false, err
	}
	if !changed {
		return e, false, nil // a default decision about an undecided release: nothing to sign
	}
	ch := change{apps: []string{rollout.RoleName}}
	if _, err := r.signerKeys(ctx, st, ch); err != nil {
		return rollout.Entry{}, false, err
	}
	if err := writeDataTargets(r.dir, []dataTarget{f}); err != nil {
		return rollout.Entry{}, false, err
	}
	if err := r.fail("target-files"); err != nil {
		return rollout.Entry{}, false, err
	}
	return e, true, r.commit(ctx, st, ch)
}

// unwrapApply drops the "rollout KIND APP VERSION: " that Apply's errors
// start with; Rollout says the same.
func unwrapApply(err error) error {
	if u, ok := err.(interface{ Unwrap() error }); ok && u.Unwrap() != nil {
		return u.Unwrap()
	}
	return err
}

// Rollouts returns app's rollout decisions as the repository serves them:
// an empty Doc when there are none (or the repository has no rollout
// role), in which case every release is in rollout.DefaultChannel, active,
// at full share. It needs no passphrase.
func (r *Repo) Rollouts(app string) (*rollout.Doc, error) {
	if err := release.ValidApp(app); err != nil {
		return nil, err
	}
	st, err := loadState(r.dir)
	if err != nil {
		return nil, err
	}
	if delegationOf(st.targets, app) == nil {
		return nil, fmt.Errorf("rollouts of %s: %w", app, ErrNoDelegation)
	}
	md := st.apps[rollout.RoleName]
	if md == nil {
		return &rollout.Doc{App: app, Releases: map[string]rollout.Entry{}}, nil
	}
	doc, err := docOf(md, app)
	if err != nil {
		return nil, fmt.Errorf("rollouts of %s: %w", app, err)
	}
	return doc, nil
}

// appReleases returns the versions app's own role signed (any platform,
// sorted) and its signed minimum safe version ("" for none).
func appReleases(st *state, app string) ([]string, string, error) {
	if delegationOf(st.targets, app) == nil {
		return nil, "", fmt.Errorf("%s: %w", app, ErrNoDelegation)
	}
	md := st.apps[app]
	if md == nil {
		return nil, "", nil // delegated, nothing released yet
	}
	min, err := minVersionOf(md, app)
	return roleVersions(md, app), min, err
}

// docOf returns app's decisions signed in the rollout role md, or an empty
// Doc.
func docOf(md *targetsMD, app string) (*rollout.Doc, error) {
	t := md.Signed.Targets[rollout.DocPath(app)]
	if t == nil {
		return &rollout.Doc{App: app, Releases: map[string]rollout.Entry{}}, nil
	}
	if t.Custom == nil {
		return nil, fmt.Errorf("target %s has no custom metadata", rollout.DocPath(app))
	}
	return rollout.ParseDoc(app, *t.Custom)
}

// dataTarget is a target whose file is its own custom metadata: a rollout
// decision document or a policy.
type dataTarget struct {
	path string
	data []byte
	sum  [sha256.Size]byte
}

// setDoc prunes doc of the entries that decide nothing (rollout.Doc.Prune;
// signed are the versions the application's role signs), signs it into
// the rollout role md as the target DocPath(doc.App) and returns the
// target file to write; false when md lists these bytes already.
func setDoc(md *targetsMD, doc *rollout.Doc, signed []string) (dataTarget, bool, error) {
	doc.Prune(signed)
	data, err := doc.Marshal()
	if err != nil {
		return dataTarget{}, false, err
	}
	if t := md.Signed.Targets[rollout.DocPath(doc.App)]; t != nil && t.Custom != nil && bytes.Equal(*t.Custom, data) {
		return dataTarget{}, false, nil
	}
	if t := md.Signed.Targets[rollout.DocPath(doc.App)]; t == nil && len(doc.Releases) == 0 {
		return dataTarget{}, false, nil // no document, and none needed
	}
	return setDataTarget(md, rollout.DocPath(doc.App), data), true, nil
}

// setDataTarget lists data at path in md, as the target's custom metadata
// and as its file.
func setDataTarget(md *targetsMD, path string, data []byte) dataTarget {
	f := dataTarget{path: path, data: data, sum: sha256.Sum256(data)}
	raw := json.RawMessage(slices.Clone(data))
	t := metadata.TargetFile()
	t.Length = int64(len(data))
	t.Hashes = metadata.Hashes{"sha256": f.sum[:]}
	t.Custom = &raw
	t.Path = path
	md.Signed.Targets[path] = t
	return f
}

// writeDataTargets writes each file under its consistent-snapshot name.
func writeDataTargets(dir string, fs []dataTarget) error {
	for _, f := range fs {
		name := storedName(Entry{Path: f.path, SHA256: hex.EncodeToString(f.sum[:])})
		dst := filepath.Join(targetsDir(dir), filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("create target directory: %w", err)
		}
		if err := atomicfile.WriteFile(dst, f.data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// CanSignRollouts reports whether this Repo can sign rollout decisions: nil
// when the rollout role's keys are here and open (a key file is decrypted
// once, and later decisions reuse it), else why not: ErrNoRolloutRole, a
// *KeyError, a missing or wrong passphrase, or ErrBusy when another
// publisher holds the repository (try again). A server checks it at start,
// so that a rollout it cannot enforce is said at once, not at the first halt.
func (r *Repo) CanSignRollouts(ctx context.Context) error {
	unlock, err := r.lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := r.loadState()
	if err != nil {
		return err
	}
	if _, err := rolloutRole(st); err != nil {
		return err
	}
	_, err = r.appKeys(ctx, st, rollout.RoleName)
	return err
}
