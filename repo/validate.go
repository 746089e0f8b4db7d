package repo

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/mod/semver"
)

var (
	appRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	fileRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)
)

// platforms are the GOOS/GOARCH pairs of `go tool dist list` (Go 1.26).
var platforms = strings.Fields(`aix/ppc64 android/386 android/amd64 android/arm android/arm64
darwin/amd64 darwin/arm64 dragonfly/amd64 freebsd/386 freebsd/amd64 freebsd/arm freebsd/arm64
illumos/amd64 ios/amd64 ios/arm64 js/wasm linux/386 linux/amd64 linux/arm linux/arm64 linux/loong64
linux/mips linux/mips64 linux/mips64le linux/mipsle linux/ppc64 linux/ppc64le linux/riscv64 linux/s390x
netbsd/386 netbsd/amd64 netbsd/arm netbsd/arm64 openbsd/386 openbsd/amd64 openbsd/arm openbsd/arm64
openbsd/ppc64 openbsd/riscv64 plan9/386 plan9/amd64 plan9/arm solaris/amd64 wasip1/wasm
windows/386 windows/amd64 windows/arm64`)

// Kinds are the artifact kinds a release file can have.
var Kinds = []string{"binary", "tar.gz", "tar.zst", "zip"}

// ValidApp checks an application name: it becomes a role name, a path
// segment and a key file name, so it is restricted to lowercase letters,
// digits, '.', '_' and '-', and may not be a top-level role name.
func ValidApp(app string) error {
	if !appRE.MatchString(app) {
		return fmt.Errorf("invalid app name %q: want 1-64 of a-z 0-9 . _ - starting with a letter or digit", app)
	}
	switch app {
	case "root", "targets", "snapshot", "timestamp":
		return fmt.Errorf("invalid app name %q: it is a top-level TUF role", app)
	}
	return nil
}

// ValidVersion checks a version: semantic versioning MAJOR.MINOR.PATCH with
// an optional -prerelease, without a leading "v" and without +build
// metadata (which semver ignores when ordering, so it could not tell two
// releases apart).
func ValidVersion(v string) error {
	if strings.HasPrefix(v, "v") || !semver.IsValid("v"+v) || semver.Canonical("v"+v) != "v"+v {
		return fmt.Errorf("invalid version %q: want semver MAJOR.MINOR.PATCH[-PRERELEASE] without a leading v, e.g. 1.4.2", v)
	}
	return nil
}

// ValidPlatform checks an os/arch pair against Go's known GOOS/GOARCH list.
func ValidPlatform(p string) error {
	if !slices.Contains(platforms, p) {
		return fmt.Errorf("unknown platform %q: want GOOS/GOARCH as listed by 'go tool dist list', e.g. linux/amd64", p)
	}
	return nil
}

// inferKind guesses an artifact's kind from its file name.
func inferKind(name string) string {
	switch {
	case strings.HasSuffix(name, ".tar.gz"), strings.HasSuffix(name, ".tgz"):
		return "tar.gz"
	case strings.HasSuffix(name, ".tar.zst"), strings.HasSuffix(name, ".tzst"):
		return "tar.zst"
	case strings.HasSuffix(name, ".zip"):
		return "zip"
	}
	return "binary"
}

func validFileName(name string) error {
	if !fileRE.MatchString(name) {
		return fmt.Errorf("unsafe file name %q: want 1-128 of A-Z a-z 0-9 . _ + - starting with a letter or digit", name)
	}
	return nil
}

func (rel Release) validate() error {
	if err := ValidApp(rel.App); err != nil {
		return err
	}
	if err := ValidVersion(rel.Version); err != nil {
		return err
	}
	if err := ValidPlatform(rel.Platform); err != nil {
		return err
	}
	if rel.Kind != "" && !slices.Contains(Kinds, rel.Kind) {
		return fmt.Errorf("unknown kind %q: want one of %s", rel.Kind, strings.Join(Kinds, ", "))
	}
	return nil
}

// String is "APP VERSION OS/ARCH".
func (rel Release) String() string {
	return rel.App + " " + rel.Version + " " + rel.Platform
}

// dirPath is APP/VERSION/OS-ARCH, the target path prefix of a release.
func (rel Release) dirPath() string {
	return rel.App + "/" + rel.Version + "/" + strings.Replace(rel.Platform, "/", "-", 1)
}
