package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/rollout"
)

// The minimum safe version of an application is signed by the
// application's own role (its offline key), never by the rollout key: the
// target rollout.PolicyPath(APP), APP/_/_/policy, whose signed custom
// metadata is the rollout.Policy and whose file holds the same bytes. No
// rollout decision can offer or move an installation below it (R63).

// SetMinVersion signs version as app's minimum safe version: the next
// version of app's role, with the policy target, signed by the
// application's key (Options.AppKeys, or the offline keys directory), and
// snapshot and timestamp, atomically. version must be a release of app
// that its role signed, and not below the minimum the role signs now
// (ErrLowerMin; see SetMinVersionWith). Setting the minimum it already has
// changes nothing.
func (r *Repo) SetMinVersion(ctx context.Context, app, version string) error {
	_, err := r.SetMinVersionWith(ctx, app, version, MinVersionOptions{})
	return err
}

// MinVersionOptions are the choices of SetMinVersionWith.
type MinVersionOptions struct {
	// Lower allows a version below the current minimum, and only that:
	// the policy then signs the minimum it lowers
	// (rollout.Policy.LoweredFrom), which is how an upload that lowers
	// the minimum shows it was meant.
	Lower bool
}

// SetMinVersionWith is SetMinVersion with the choices o. It reports
// whether it signed anything: false when app's role signs that minimum
// already, and then it writes nothing and needs no key.
func (r *Repo) SetMinVersionWith(ctx context.Context, app, version string, o MinVersionOptions) (bool, error) {
	signed, err := r.setMinVersion(ctx, app, version, o)
	if err != nil {
		return false, fmt.Errorf("set the minimum safe version of %s to %s: %w", app, version, err)
	}
	return signed, nil
}

func (r *Repo) setMinVersion(ctx context.Context, app, version string, o MinVersionOptions) (bool, error) {
	if err := release.ValidApp(app); err != nil {
		return false, err
	}
	if err := release.ValidVersion(version); err != nil {
		return false, err
	}
	unlock, err := r.lock()
	if err != nil {
		return false, err
	}
	defer unlock()
	st, err := r.loadState()
	if err != nil {
		return false, err
	}
	if err := r.checkAppKeys(st, []string{app}); err != nil {
		return false, err
	}
	md := st.apps[app]
	if md == nil {
		return false, fmt.Errorf("%s has no release yet: the minimum safe version must be one of its signed releases", app)
	}
	f, changed, err := setPolicy(md, app, version, o.Lower)
	if err != nil || !changed {
		return false, err
	}
	ch := change{apps: []string{app}}
	if _, err := r.signerKeys(ctx, st, ch); err != nil {
		return false, err
	}
	if err := writeDataTargets(r.dir, []dataTarget{f}); err != nil {
		return false, err
	}
	if err := r.fail("target-files"); err != nil {
		return false, err
	}
	return true, r.commit(ctx, st, ch)
}

// setPolicy lists the policy "minimum version" in app's role md, after
// checking that md signs a release of that version and that it is not
// below the minimum md signs now, unless lower (and then it must be). It
// reports false when md lists that policy already.
func setPolicy(md *targetsMD, app, version string, lower bool) (dataTarget, bool, error) {
	versions := roleVersions(md, app)
	if !slices.Contains(versions, version) {
		return dataTarget{}, false, fmt.Errorf("%s is not a signed release of %s (its releases: %s)", version, app, strings.Join(orNone(versions), ", "))
	}
	cur, err := policyOf(md, app)
	if err != nil {
		return dataTarget{}, false, err
	}
	p := rollout.Policy{App: app, MinVersion: version}
	below := cur.MinVersion != "" && release.CompareVersions(version, cur.MinVersion) < 0
	switch {
	case below && !lower:
		return dataTarget{}, false, fmt.Errorf("%s is below the current minimum %s: %w; lowering it must be asked for explicitly", version, cur.MinVersion, ErrLowerMin)
	case below:
		p.LoweredFrom = cur.MinVersion
	case lower && cur.MinVersion == "":
		return dataTarget{}, false, fmt.Errorf("asked to lower the minimum, but %s has none yet: set it without lowering", app)
	case lower:
		return dataTarget{}, false, fmt.Errorf("asked to lower the minimum, but %s is not below the current minimum %s", version, cur.MinVersion)
	}
	data, err := p.Marshal()
	if err != nil {
		return dataTarget{}, false, err
	}
	if t := md.Signed.Targets[rollout.PolicyPath(app)]; t != nil && t.Custom != nil && bytes.Equal(*t.Custom, data) {
		return dataTarget{}, false, nil
	}
	return setDataTarget(md, rollout.PolicyPath(app), data), true, nil
}

// roleVersions lists the release versions app's role md signs, sorted.
func roleVersions(md *targetsMD, app string) []string {
	var versions []string
	for p := range md.Signed.Targets {
		rp, err := release.ParsePath(p)
		if err != nil || rp.App != app || slices.Contains(versions, rp.Version) {
			continue
		}
		versions = append(versions, rp.Version)
	}
	slices.SortFunc(versions, release.CompareVersions)
	return versions
}

// minVersionOf returns the minimum safe version app's role md signs, or "".
func minVersionOf(md *targetsMD, app string) (string, error) {
	p, err := policyOf(md, app)
	return p.MinVersion, err
}

// MinVersion returns app's signed minimum safe version as the repository
// serves it, or "" when it has none. It needs no passphrase.
func (r *Repo) MinVersion(app string) (string, error) {
	if err := release.ValidApp(app); err != nil {
		return "", err
	}
	st, err := loadState(r.dir)
	if err != nil {
		return "", err
	}
	if delegationOf(st.targets, app) == nil {
		return "", fmt.Errorf("minimum safe version of %s: %w", app, ErrNoDelegation)
	}
	md := st.apps[app]
	if md == nil {
		return "", nil
	}
	min, err := minVersionOf(md, app)
	if err != nil {
		return "", fmt.Errorf("minimum safe version of %s: %w", app, err)
	}
	return min, nil
}

// SignPolicy is SetMinVersion for a remote publisher, as SignRelease is
// Publish's: it returns the next version of app's role, current (the role
// as the server publishes it now, checked as SignRelease checks it) with
// the policy target whose minimum safe version is version, signed by each
// of signers. The server accepts it through PublishUpload with no file.
// version must be a release current signs, and not below the minimum
// current signs unless opts.LowerMin (ErrLowerMin); a policy current has
// already returns (nil, nil), nothing to upload. With opts.Last, current
// is checked against the publisher's record first.
func SignPolicy(ctx context.Context, signers []keys.Signer, app string, current []byte, version string, opts SignOptions) (*Signed, error) {
	out, err := signPolicy(ctx, signers, app, current, version, opts)
	if err != nil {
		return nil, fmt.Errorf("sign the minimum safe version of %s: %w", app, err)
	}
	return out, nil
}

func signPolicy(ctx context.Context, signers []keys.Signer, app string, current []byte, version string, opts SignOptions) (*Signed, error) {
	if len(signers) == 0 {
		return nil, errors.New("no application key")
	}
	if err := release.ValidApp(app); err != nil {
		return nil, err
	}
	if len(current) == 0 {
		return nil, fmt.Errorf("%s has no role yet: publish a release first", app)
	}
	var targets *targetsMD
	if len(opts.Targets) > 0 {
		var err error
		if targets, err = metadata.Targets().FromBytes(opts.Targets); err != nil {
			return nil, fmt.Errorf("targets: %w", err)
		}
	}
	md, err := currentRole(signers, app, current, targets)
	if err != nil {
		return nil, err
	}
	if err := checkCurrent(opts.Last, app, md, current); err != nil {
		return nil, err
	}
	if _, changed, err := setPolicy(md, app, version, opts.LowerMin); err != nil || !changed {
		return nil, err
	}
	raw, err := signNextVersion(ctx, signers, app, md, opts)
	if err != nil {
		return nil, err
	}
	return &Signed{Role: raw}, nil
}
