package client

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/rollout"
	"github.com/ferry-updates/ferry/trust"
)

// Offer is what Check found for one application. A successful Check
// always returns one; Release is nil when there is nothing to install.
type Offer struct {
	// Release is the file to install: for a release of several files, the
	// one whose path sorts first (see Files). nil when Choice.Version is "".
	Release *Release
	// Files are all the signed files of the release, sorted by path.
	Files []*Release
	// Choice is the rollout decision: the version (or ""), whether it is
	// a downgrade (only a signed pull leads there) and why, in words.
	Choice rollout.Choice
	// Held is the newest signed version above both the installed and the
	// offered one that the rollout decisions do not offer to this
	// installation (another cohort or channel, halted, pulled, below the
	// minimum), or "" when there is none.
	Held string
}

// Check returns what app should install now, according to the trusted
// state of the last Refresh (refreshing first only if there was none):
// the releases the application's key signed for app.Platform, their
// signed manifests (R48), the rollout decisions (rollout.DocPath, signed
// by the rollout role) and the minimum safe version (rollout.PolicyPath,
// signed by the application's key), decided by rollout.Choose for this
// installation (app.InstallID, app.Channel, app.Installed). It fetches
// nothing but delegated roles not loaded yet.
//
// An application the repository does not have, or a platform with no
// release of it, is an error wrapping a *NotPublishedError.
func (r *Repository) Check(ctx context.Context, app App) (*Offer, error) {
	a, err := r.app(app)
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", app.Name, err)
	}
	unlock, err := r.lock.acquire()
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", a.Name, err)
	}
	defer unlock()
	offer, _, err := r.newCall(a).check(ctx, false)
	return offer, err
}

// call is one operation for one application.
type call struct {
	r    *Repository
	a    App // validated, with defaults
	p    policy
	ev   event.Emitter // stamps a.Name
	live *live         // Update: the live sha256 when the installer's record names no version
}

func (r *Repository) newCall(a App) *call {
	return &call{r: r, a: a, ev: r.ev.For(a.Name), p: policy{
		app: a.Name, platform: a.Platform, installed: a.Installed, prerelease: a.Prerelease,
	}}
}

// view is what the trusted metadata says about one application.
type view struct {
	sel selection    // its signed targets for the platform
	doc *rollout.Doc // the rollout decisions; nil: none
	min string       // the minimum safe version; "": none
}

// check finds the signed view of the application and decides what to
// offer, emitting check.started and then check.offered, check.uptodate or
// check.failed.
func (c *call) check(ctx context.Context, refresh bool) (*Offer, *view, error) {
	c.ev.Emit(event.CheckStarted, c.p.installed, "", "channel", c.a.Channel, "platform", c.a.Platform)
	v, err := c.view(ctx, refresh)
	if err == nil && c.live != nil {
		c.recognise(v)
	}
	if err != nil {
		c.ev.Emit(event.CheckFailed, c.p.installed, err.Error())
		return nil, v, fmt.Errorf("check %s: %w", c.a.Name, err)
	}
	return c.decide(v), v, nil
}

// view reads the application's signed targets, rollout decisions and
// minimum safe version from the trusted metadata. Refused targets and
// mixed releases are reported and left out.
func (c *call) view(ctx context.Context, refresh bool) (*view, error) {
	v := &view{}
	var docTF *metadata.TargetFiles
	var apps []string
	var policyTF *metadata.TargetFiles
	err := c.r.withTrust(ctx, refresh, func(tc *trust.Client, m *mirror) error {
		targets, err := tc.TargetsUnder(ctx, m, c.a.Name+"/")
		if err != nil {
			return err
		}
		policyTF = targets[rollout.PolicyPath(c.a.Name)]
		delete(targets, rollout.PolicyPath(c.a.Name)) // not a release, and not a refusal
		v.sel = c.p.sel(targets)
		docTF, err = tc.Target(ctx, m, rollout.DocPath(c.a.Name))
		if errors.Is(err, trust.ErrNotListed) { // no role lists it: no decision
			docTF, err = nil, nil
		}
		if err != nil { // a hidden or bad role file is no "no decision" (R62)
			return fmt.Errorf("rollout decisions %s: %w", rollout.DocPath(c.a.Name), err)
		}
		if len(v.sel.platforms) == 0 {
			apps, err = knownApps(tc)
		}
		return err
	})
	if err != nil {
		return v, err
	}
	c.report(v)
	if v.doc, err = signedDoc(c.a.Name, docTF); err != nil {
		return v, err
	}
	if v.min, err = signedMin(c.a.Name, policyTF); err != nil {
		return v, err
	}
	if v.min, err = c.floorMin(v.min); err != nil {
		return v, err
	}
	return v, c.published(v.sel, apps)
}

// report emits the refusals of v's selection and drops the releases whose
// files disagree with their signed manifest (R48).
func (c *call) report(v *view) {
	for _, r := range v.sel.refused {
		c.ev.Emit(event.ReleaseRefused, "", r.reason, "target", r.path)
	}
	byVersion := map[string][]*Release{}
	for _, rel := range v.sel.rels {
		byVersion[rel.Version] = append(byVersion[rel.Version], rel)
	}
	var keep []*Release
	for _, ver := range slices.Sorted(maps.Keys(byVersion)) {
		files := byVersion[ver]
		if err := checkManifest(files); err != nil {
			c.ev.Emit(event.ReleaseMixed, ver, err.Error(), "platform", c.a.Platform, "files", strconv.Itoa(len(files)))
			continue
		}
		keep = append(keep, files...)
	}
	slices.SortFunc(keep, func(a, b *Release) int { return strings.Compare(a.Path, b.Path) })
	v.sel.rels = keep
}

// published returns a *NotPublishedError when the application has no
// release for the platform (apps: the applications the top-level targets
// names, known when no platform has any).
func (c *call) published(s selection, apps []string) error {
	p := c.p
	switch {
	case s.platforms[p.platform]:
		return nil
	case len(s.platforms) > 0:
		return &NotPublishedError{Kind: ErrUnknownPlatform, App: p.app, Platform: p.platform,
			Known: slices.Sorted(maps.Keys(s.platforms))}
	case slices.Contains(apps, p.app):
		return &NotPublishedError{Kind: ErrUnknownPlatform, App: p.app, Platform: p.platform}
	}
	return &NotPublishedError{Kind: ErrUnknownApp, App: p.app, Platform: p.platform, Known: apps}
}

// decide runs rollout.Choose over the versions the policy allows and
// reports the decision.
func (c *call) decide(v *view) *Offer {
	inst := c.p.installed
	ch := c.p.choose(v.sel.rels, rollout.Input{
		Doc: v.doc, MinVersion: v.min,
		Installation: rollout.Installation{ID: c.a.InstallID, Channel: c.a.Channel},
	})
	switch {
	case inst != "" && v.min != "" && release.CompareVersions(inst, v.min) < 0:
		c.ev.Emit(event.BelowMin, inst, ch.Reason, "min_version", v.min, "to", ch.Version)
	case inst != "" && v.doc != nil && v.doc.Releases[inst].State == rollout.Pulled:
		c.ev.Emit(event.Pulled, inst, ch.Reason, "to", ch.Version)
	}
	held := newestAbove(c.p.versions(v.sel.rels), inst, ch.Version)
	if ch.Version == "" {
		ev := []string{"channel", c.a.Channel}
		if held != "" {
			ev = append(ev, "held", held)
			if e, ok := docEntry(v.doc, held); ok {
				// The cohort this installation is held out of, for status pages.
				ev = append(ev, "release", held, "basis_points", strconv.Itoa(e.BasisPoints),
					"bucket", strconv.Itoa(rollout.Bucket(c.a.InstallID, e.Salt)))
			}
		}
		c.ev.Emit(event.CheckUpToDate, inst, ch.Reason, ev...)
		return &Offer{Choice: ch, Held: held}
	}
	files := releaseFiles(v.sel.rels, ch.Version)
	ev := []string{"channel", c.a.Channel, "from", inst, "downgrade", strconv.FormatBool(ch.Downgrade)}
	if e, ok := docEntry(v.doc, ch.Version); ok {
		ev = append(ev, "basis_points", strconv.Itoa(e.BasisPoints), "bucket", strconv.Itoa(rollout.Bucket(c.a.InstallID, e.Salt)))
	}
	c.ev.Emit(event.CheckOffered, ch.Version, ch.Reason, ev...)
	c.p.chosen = ch.Version
	return &Offer{Release: files[0], Files: files, Choice: ch, Held: held}
}

// newestAbove returns the newest of versions above every one of floors
// ("" floors are ignored), or "".
func newestAbove(versions []string, floors ...string) string {
	best := ""
	for _, v := range versions {
		above := true
		for _, f := range floors {
			above = above && (f == "" || release.CompareVersions(v, f) > 0)
		}
		if above && (best == "" || release.CompareVersions(v, best) > 0) {
			best = v
		}
	}
	return best
}

// docEntry returns the decision d records for version ver, if any.
func docEntry(d *rollout.Doc, ver string) (rollout.Entry, bool) {
	if d == nil {
		return rollout.Entry{}, false
	}
	e, ok := d.Releases[ver]
	return e, ok
}

// signedDoc parses the rollout decisions signed as tf's custom metadata
// (nil tf: none). A document that does not parse fails the check: a
// decision that cannot be read is not taken as "no decision", which
// would undo a halt.
func signedDoc(app string, tf *metadata.TargetFiles) (*rollout.Doc, error) {
	if tf == nil {
		return nil, nil
	}
	if tf.Custom == nil {
		return nil, fmt.Errorf("rollout decisions %s: no signed custom metadata", rollout.DocPath(app))
	}
	d, err := rollout.ParseDoc(app, *tf.Custom)
	if err != nil {
		return nil, fmt.Errorf("rollout decisions %s: %w", rollout.DocPath(app), err)
	}
	return d, nil
}

// signedMin parses the minimum safe version signed by the application's
// key as tf's custom metadata (nil tf: none). One that does not parse
// fails the check, like an unreadable decision.
func signedMin(app string, tf *metadata.TargetFiles) (string, error) {
	if tf == nil {
		return "", nil
	}
	if tf.Custom == nil {
		return "", fmt.Errorf("policy %s: no signed custom metadata", rollout.PolicyPath(app))
	}
	p, err := rollout.ParsePolicy(app, *tf.Custom)
	if err != nil {
		return "", fmt.Errorf("policy %s: %w", rollout.PolicyPath(app), err)
	}
	return p.MinVersion, nil
}

// checkManifest checks that the signed files of one release (same
// version and platform) were published together (release.CheckManifest).
func checkManifest(files []*Release) error {
	sigs := make(map[string]release.FileSig, len(files))
	for _, f := range files {
		sigs[path.Base(f.Path)] = release.FileSig{SHA256: hex.EncodeToString(f.Hashes["sha256"]), Files: f.manifest}
	}
	return release.CheckManifest(sigs)
}
