package release

import (
	"fmt"
	"strings"
)

// Path is a parsed target path APP/VERSION/OS-ARCH/FILE. Platform is in the
// OS/ARCH form.
type Path struct {
	App      string
	Version  string
	Platform string
	File     string
}

// ParsePath parses and checks a target path. The error says which part is
// wrong and why.
func ParsePath(s string) (Path, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 4 {
		return Path{}, fmt.Errorf("target %q: not APP/VERSION/OS-ARCH/FILE", s)
	}
	goos, goarch, ok := splitPlatform(parts[2], '-')
	if !ok {
		return Path{}, fmt.Errorf("target %q: platform %q: want OS-ARCH as Go spells GOOS and GOARCH, e.g. linux-amd64", s, parts[2])
	}
	p := Path{App: parts[0], Version: parts[1], Platform: goos + "/" + goarch, File: parts[3]}
	if err := p.check(); err != nil {
		return Path{}, fmt.Errorf("target %q: %w", s, err)
	}
	return p, nil
}

// check checks every part of p.
func (p Path) check() error {
	if err := ValidApp(p.App); err != nil {
		return err
	}
	if err := ValidVersion(p.Version); err != nil {
		return err
	}
	if err := ValidPlatform(p.Platform); err != nil {
		return err
	}
	return ValidFile(p.File)
}

// Check reports whether p is a valid target path.
func (p Path) Check() error {
	if err := p.check(); err != nil {
		return fmt.Errorf("target %s/%s/%s/%s: %w", p.App, p.Version, p.Platform, p.File, err)
	}
	return nil
}

// String is the target path APP/VERSION/OS-ARCH/FILE.
func (p Path) String() string { return p.Dir() + "/" + p.File }

// Dir is APP/VERSION/OS-ARCH, the part of the path all files of one release
// for one platform share.
func (p Path) Dir() string {
	return p.App + "/" + p.Version + "/" + strings.Replace(p.Platform, "/", "-", 1)
}

// Pattern is the path pattern of app's delegated role: "APP/*/*/*", one "*"
// per segment, so that it matches exactly app's target paths.
func Pattern(app string) string { return app + "/*/*/*" }

// AppOfPattern returns the application a delegation path pattern is for:
// the first of at least two segments, if it is a valid application name
// (and so has no wildcard). It reports false for any other pattern.
func AppOfPattern(pattern string) (string, bool) {
	app, _, ok := strings.Cut(pattern, "/")
	return app, ok && ValidApp(app) == nil
}
