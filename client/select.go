package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/mod/semver"

	"github.com/ferry-updates/ferry/trust"
)

// policy decides which signed targets are releases this client may take.
// It is pure: no I/O, no clock.
type policy struct {
	app        string
	platform   string // os/arch
	installed  string // semver without "v", or ""
	prerelease bool
	bad        map[string]bool // versions marked bad on this machine: never offered
}

// kinds are the artifact kinds package repo signs.
var kinds = map[string]bool{"binary": true, "tar.gz": true, "tar.zst": true, "zip": true}

// custom is the signed custom metadata of a ferry target.
type custom struct {
	Ferry *struct {
		App      string `json:"app"`
		Version  string `json:"version"`
		Platform string `json:"platform"`
		Kind     string `json:"kind"`
	} `json:"ferry"`
}

// release returns the Release that the signed target tf at path p
// describes, or an error saying why it is not a release of p.app for
// p.platform: the path must be APP/VERSION/OS-ARCH/FILE, and the signed
// custom metadata must agree with it.
func (p policy) release(path string, tf *metadata.TargetFiles) (*Release, error) {
	parts := strings.Split(path, "/")
	if len(parts) != 4 {
		return nil, fmt.Errorf("target %q: not APP/VERSION/OS-ARCH/FILE", path)
	}
	app, ver, osarch, file := parts[0], parts[1], parts[2], parts[3]
	if app != p.app {
		return nil, fmt.Errorf("target %q: app %q, want %q", path, app, p.app)
	}
	if want := strings.Replace(p.platform, "/", "-", 1); osarch != want {
		return nil, fmt.Errorf("target %q: platform %q, want %q", path, osarch, want)
	}
	if v := "v" + ver; strings.HasPrefix(ver, "v") || !semver.IsValid(v) || semver.Canonical(v)+semver.Build(v) != v {
		return nil, fmt.Errorf("target %q: version %q is not semver", path, ver)
	}
	if !safeFileName(file) {
		return nil, fmt.Errorf("target %q: unsafe file name %q", path, file)
	}
	if tf == nil || tf.Custom == nil {
		return nil, fmt.Errorf("target %q: no signed ferry metadata", path)
	}
	var cm custom
	dec := json.NewDecoder(bytes.NewReader(*tf.Custom))
	if err := dec.Decode(&cm); err != nil || cm.Ferry == nil {
		return nil, fmt.Errorf("target %q: bad signed ferry metadata: %s", path, *tf.Custom)
	}
	f := cm.Ferry
	if f.App != app || f.Version != ver || f.Platform != p.platform || !kinds[f.Kind] {
		return nil, fmt.Errorf("target %q: signed ferry metadata %s disagrees with the path", path, *tf.Custom)
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
	return &Release{App: app, Version: ver, Platform: p.platform, Kind: f.Kind,
		Path: path, Length: tf.Length, Hashes: hashes}, nil
}

// safeFileName reports whether name can be used as one file name in any
// directory on any platform ferry supports.
func safeFileName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > 200 {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(`/\:*?"<>|`, r) {
			return false
		}
	}
	return filepath.IsLocal(name)
}

// allows reports whether version ver may be offered: strictly above the
// installed version (never a downgrade or a reinstall), not a pre-release
// unless pre-releases are enabled, and not marked bad on this machine.
func (p policy) allows(ver string) bool {
	v := "v" + ver
	if !p.prerelease && semver.Prerelease(v) != "" || p.bad[ver] {
		return false
	}
	return p.installed == "" || semver.Compare(v, "v"+p.installed) > 0
}

// pick returns the newest allowed release among targets, or nil. Among
// files of the same version, the path that sorts first wins.
func pick(targets map[string]*metadata.TargetFiles, p policy) *Release {
	paths := make([]string, 0, len(targets))
	for path := range targets {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	var best *Release
	for _, path := range paths {
		rel, err := p.release(path, targets[path])
		if err != nil || !p.allows(rel.Version) {
			continue
		}
		if best == nil || semver.Compare("v"+rel.Version, "v"+best.Version) > 0 {
			best = rel
		}
	}
	return best
}

// ErrRefused is wrapped by Download's error when the release it was given
// is not one this client may take: not signed, another application or
// platform, or not newer than the installed version.
var ErrRefused = errors.New("release refused")

// resolve looks path up in trusted metadata and returns the signed release,
// refusing anything Check would not offer. The caller's Release is never
// trusted beyond its Path.
func (c *Client) resolve(ctx context.Context, path string, p policy) (*Release, error) {
	var tf *metadata.TargetFiles
	err := c.withMirrors(ctx, c.current == nil, func(tc *trust.Client, m *mirror) (err error) {
		tf, err = tc.Target(ctx, m, path)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", path, err)
	}
	rel, err := p.release(path, tf)
	switch {
	case err != nil:
	case !p.prerelease && semver.Prerelease("v"+rel.Version) != "":
		err = fmt.Errorf("%s %s is a pre-release and pre-releases are not enabled", rel.App, rel.Version)
	case p.bad[rel.Version]:
		err = fmt.Errorf("%s %s is marked bad on this machine", rel.App, rel.Version)
	case !p.allows(rel.Version):
		err = fmt.Errorf("%s %s is not newer than installed %s", rel.App, rel.Version, p.installed)
	}
	if err != nil {
		c.event("client.release_refused", slog.String("target", path), slog.String("reason", err.Error()))
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return rel, nil
}
