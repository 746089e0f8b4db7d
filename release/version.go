package release

import (
	"fmt"
	"strings"

	"golang.org/x/mod/semver"
)

// ValidVersion checks a version: semantic versioning MAJOR.MINOR.PATCH with
// an optional -PRERELEASE, no leading "v", no +BUILD metadata, at most
// MaxVersionLength bytes (see the package documentation for why).
func ValidVersion(v string) error {
	switch {
	case len(v) > MaxVersionLength:
		return fmt.Errorf("invalid version %q: longer than %d bytes", v[:MaxVersionLength]+"...", MaxVersionLength)
	case strings.HasPrefix(v, "v"):
		return fmt.Errorf("invalid version %q: no leading v; want MAJOR.MINOR.PATCH[-PRERELEASE], e.g. %s", v, v[1:])
	case strings.Contains(v, "+"):
		return fmt.Errorf("invalid version %q: +build metadata is not allowed (it does not order releases); want MAJOR.MINOR.PATCH[-PRERELEASE], e.g. 1.4.2", v)
	case !semver.IsValid("v"+v) || strings.Count(core(v), ".") != 2: // not the short forms 1 and 1.2
		return fmt.Errorf("invalid version %q: want semver MAJOR.MINOR.PATCH[-PRERELEASE], e.g. 1.4.2 or 2.0.0-rc.1", v)
	}
	return nil
}

// core is v without its -PRERELEASE part.
func core(v string) string {
	c, _, _ := strings.Cut(v, "-")
	return c
}

// CompareVersions returns -1, 0 or +1 as a is lower than, equal to or
// higher than b in semver order. Both must be valid; an invalid version is
// lower than every valid one, and two invalid ones are equal.
func CompareVersions(a, b string) int {
	va, vb := ValidVersion(a) == nil, ValidVersion(b) == nil
	switch {
	case va && vb:
		return semver.Compare("v"+a, "v"+b)
	case va:
		return 1
	case vb:
		return -1
	}
	return 0
}

// Prerelease reports whether v, a valid version, has a -PRERELEASE part.
func Prerelease(v string) bool { return semver.Prerelease("v"+v) != "" }
