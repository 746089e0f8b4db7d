package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/internal/sentinel"
	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/rollout"
	"github.com/ferry-updates/ferry/trust"
)

// policy decides which signed targets are releases this client may take.
// It is pure: no I/O, no clock.
type policy struct {
	app        string
	platform   string // os/arch
	installed  string // a valid release version, or ""
	prerelease bool
	bad        map[string]bool // versions marked bad on this machine: never offered
	// chosen is the version the rollout decision offers (see decide),
	// which may be below installed after a signed pull; "" before.
	chosen string
}

// release returns the Release that the signed target tf at path p
// describes, or an error saying why it is not a release of p.app for
// p.platform: the path must be a valid release.Path, and the signed custom
// metadata valid and in agreement with it. A target of p.app for another
// platform is an error wrapping errOtherPlatform.
func (p policy) release(path string, tf *metadata.TargetFiles) (*Release, error) {
	rp, err := release.ParsePath(path)
	if err != nil {
		return nil, err
	}
	if rp.App != p.app {
		return nil, fmt.Errorf("target %q: app %q, want %q", path, rp.App, p.app)
	}
	if rp.Platform != p.platform {
		return nil, fmt.Errorf("target %q: platform %q, want %q: %w", path, rp.Platform, p.platform, errOtherPlatform)
	}
	if tf == nil || tf.Custom == nil {
		return nil, fmt.Errorf("target %q: no signed ferry metadata", path)
	}
	cm, err := release.ParseCustom(*tf.Custom)
	if err != nil {
		return nil, fmt.Errorf("target %q: bad signed ferry metadata: %w", path, err)
	}
	if err := cm.Matches(rp); err != nil {
		return nil, fmt.Errorf("target %q: %w", path, err)
	}
	if tf.Length <= 0 {
		return nil, fmt.Errorf("target %q: signed length %d", path, tf.Length)
	}
	if len(tf.Hashes["sha256"]) != 32 {
		return nil, fmt.Errorf("target %q: no sha256 hash", path)
	}
	hashes := make(map[string][]byte, len(tf.Hashes))
	for alg, h := range tf.Hashes {
		hashes[alg] = bytes.Clone(h)
	}
	return &Release{App: rp.App, Version: rp.Version, Platform: rp.Platform, Kind: cm.Kind,
		Path: path, Length: tf.Length, Hashes: hashes, manifest: cm.Files}, nil
}

// errOtherPlatform marks a target of the application for another platform:
// not a release for this client, and not a refusal either.
var errOtherPlatform = errors.New("another platform")

// allows reports whether version ver may be offered: strictly above the
// installed version (never a downgrade or a reinstall), not a pre-release
// unless pre-releases are enabled, and not marked bad on this machine.
// The version a rollout decision chose (p.chosen: a signed pull may lead
// below the installed one) is allowed too.
func (p policy) allows(ver string) bool {
	if !p.candidate(ver) {
		return false
	}
	return p.installed == "" || release.CompareVersions(ver, p.installed) > 0 || ver == p.chosen
}

// candidate reports whether ver may be given to rollout.Choose: not a
// pre-release unless pre-releases are enabled, and not marked bad here.
// Choose itself offers a version below the installed one only after a
// signed pull (R49).
func (p policy) candidate(ver string) bool {
	return (p.prerelease || !release.Prerelease(ver)) && !p.bad[ver]
}

// choose runs rollout.Choose for p's installation over the candidates
// among rels, with in's decisions, minimum and installation identity.
func (p policy) choose(rels []*Release, in rollout.Input) rollout.Choice {
	in.Versions = p.versions(rels)
	in.Installed = p.installed
	return rollout.Choose(in)
}

// versions returns the distinct versions among rels that are candidates.
func (p policy) versions(rels []*Release) []string {
	var out []string
	for _, rel := range rels {
		if p.candidate(rel.Version) && !slices.Contains(out, rel.Version) {
			out = append(out, rel.Version)
		}
	}
	return out
}

// selection is what the signed targets under "APP/" hold for a policy.
type selection struct {
	rels      []*Release      // the releases for p.platform, sorted by path, allowed or not
	platforms map[string]bool // every platform with a target whose path parses
	refused   []refusal       // targets that are not releases, except other platforms'
}

// refusal is a signed target that is not a release, and why.
type refusal struct{ path, reason string }

// sel sorts targets into releases for p, other platforms and refusals.
func (p policy) sel(targets map[string]*metadata.TargetFiles) selection {
	s := selection{platforms: map[string]bool{}}
	for _, path := range slices.Sorted(maps.Keys(targets)) {
		if rp, err := release.ParsePath(path); err == nil && rp.App == p.app {
			s.platforms[rp.Platform] = true
		}
		rel, err := p.release(path, targets[path])
		switch {
		case err == nil:
			s.rels = append(s.rels, rel)
		case !errors.Is(err, errOtherPlatform):
			s.refused = append(s.refused, refusal{path, err.Error()})
		}
	}
	return s
}

// ErrRefused is wrapped by Download's error when the release it was given
// is not one this client may take: not signed, another application or
// platform, or not newer than the installed version. It is
// fetch.ErrRefused (one value, see internal/sentinel), which also covers
// a refused URL, redirect or encoding.
var ErrRefused = sentinel.ErrRefused

// resolve looks path up in trusted metadata and returns the signed release,
// refusing anything Check would not offer. The caller's Release is never
// trusted beyond its Path.
func (c *call) resolve(ctx context.Context, path string) (*Release, error) {
	p := c.p
	var tf *metadata.TargetFiles
	err := c.r.withTrust(ctx, false, func(tc *trust.Client, m *mirror) (err error) {
		tf, err = tc.Target(ctx, m, path)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", path, err)
	}
	rel, err := p.release(path, tf)
	switch {
	case err != nil:
	case !p.prerelease && release.Prerelease(rel.Version):
		err = fmt.Errorf("%s %s is a pre-release and pre-releases are not enabled", rel.App, rel.Version)
	case p.bad[rel.Version]:
		err = fmt.Errorf("%s %s is marked bad on this machine", rel.App, rel.Version)
	case !p.allows(rel.Version):
		err = fmt.Errorf("%s %s is not newer than installed %s", rel.App, rel.Version, p.installed)
	}
	if err != nil {
		c.ev.Emit(event.ReleaseRefused, "", err.Error(), "target", path)
		return nil, fmt.Errorf("release %w: %w", ErrRefused, err)
	}
	return rel, nil
}

// offers refuses path (ErrRefused, with a release.refused event) unless it
// is a file of the release the rollout decision offers this installation
// on the trusted state of the last Refresh: what Check would offer, with
// mixed releases (R48) left out. It records that version as chosen, so
// resolve allows it (a signed pull's downgrade too). Check's own events
// are not emitted: this is no check.
func (c *call) offers(ctx context.Context, path string) error {
	quiet := *c
	quiet.ev.Observer = event.Discard
	v, err := quiet.view(ctx, false)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", path, err)
	}
	ch := c.p.choose(v.sel.rels, rollout.Input{Doc: v.doc, MinVersion: v.min,
		Installation: rollout.Installation{ID: c.a.InstallID, Channel: c.a.Channel}})
	for _, f := range releaseFiles(v.sel.rels, ch.Version) {
		if f.Path == path {
			c.p.chosen = ch.Version
			return nil
		}
	}
	if _, err := c.resolve(ctx, path); err != nil {
		return err // not signed, another app or platform, ...: resolve says which
	}
	why := fmt.Errorf("%s is not a file of the release this installation is offered (%s: %s)", path, orNone(ch.Version), ch.Reason)
	c.ev.Emit(event.ReleaseRefused, "", why.Error(), "target", path)
	return fmt.Errorf("release %w: %w", ErrRefused, why)
}

// orNone is v, or "none" for "".
func orNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}
