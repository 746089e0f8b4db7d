package release

import (
	"fmt"
	"slices"
	"strings"
)

// Bounds of the names in a target path (bytes).
const (
	MaxAppLength     = 64
	MaxFileLength    = 128
	MaxVersionLength = 64
	maxOSArchLength  = 16 // each of OS and ARCH
)

// Artifact kinds.
const (
	KindBinary = "binary"  // an executable, installed as is
	KindTarGz  = "tar.gz"  // a gzip-compressed tar archive
	KindTarZst = "tar.zst" // a zstd-compressed tar archive
	KindZip    = "zip"     // a zip archive
)

// Kinds returns every artifact kind, in the order of the constants.
func Kinds() []string { return []string{KindBinary, KindTarGz, KindTarZst, KindZip} }

// ValidKind checks that kind is one of Kinds.
func ValidKind(kind string) error {
	if !slices.Contains(Kinds(), kind) {
		return fmt.Errorf("unknown kind %q: want one of %s", kind, strings.Join(Kinds(), ", "))
	}
	return nil
}

// InferKind guesses an artifact's kind from its file name: .tar.gz and .tgz,
// .tar.zst and .tzst, .zip, and anything else is a binary.
func InferKind(file string) string {
	switch {
	case strings.HasSuffix(file, ".tar.gz"), strings.HasSuffix(file, ".tgz"):
		return KindTarGz
	case strings.HasSuffix(file, ".tar.zst"), strings.HasSuffix(file, ".tzst"):
		return KindTarZst
	case strings.HasSuffix(file, ".zip"):
		return KindZip
	}
	return KindBinary
}

// topLevelRoles are TUF's top-level role names; an application's role may
// not take one of them.
var topLevelRoles = []string{"root", "targets", "snapshot", "timestamp"}

// ValidApp checks an application name. It becomes a TUF role name, a path
// segment, a key file name and a directory name, so it is lowercase
// [a-z0-9._-], 1 to 64 bytes, starts with a letter or digit, does not end
// with ".", and is neither a top-level role name nor a name Windows reserves.
func ValidApp(app string) error {
	if !validName(app, MaxAppLength, false) {
		return fmt.Errorf("invalid app name %q: want 1-%d of a-z 0-9 . _ - starting with a letter or digit, not ending with a dot", app, MaxAppLength)
	}
	if slices.Contains(topLevelRoles, app) {
		return fmt.Errorf("invalid app name %q: it is a top-level TUF role", app)
	}
	if reserved(app) {
		return fmt.Errorf("invalid app name %q: Windows reserves it as a device name", app)
	}
	return nil
}

// ValidFile checks the FILE segment of a target path: [A-Za-z0-9._+-], 1 to
// 128 bytes, starting with a letter or digit, not ending with ".", and not a
// name Windows reserves. Such a name is one safe file name on every file
// system ferry supports.
func ValidFile(name string) error {
	if !validName(name, MaxFileLength, true) {
		return fmt.Errorf("unsafe file name %q: want 1-%d of A-Z a-z 0-9 . _ + - starting with a letter or digit, not ending with a dot", name, MaxFileLength)
	}
	if reserved(name) {
		return fmt.Errorf("unsafe file name %q: Windows reserves it as a device name", name)
	}
	return nil
}

// validName reports whether s is 1 to max bytes of [a-z0-9._-] (with file,
// also [A-Z+]), starting with a letter or digit and not ending with '.'.
func validName(s string, max int, file bool) bool {
	if s == "" || len(s) > max || !alnum(s[0], file) || s[len(s)-1] == '.' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !alnum(c, file) && c != '.' && c != '_' && c != '-' && !(file && c == '+') {
			return false
		}
	}
	return true
}

func alnum(c byte, upper bool) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || upper && 'A' <= c && c <= 'Z'
}

// reserved reports whether Windows treats name as a device: CON, PRN, AUX,
// NUL, COM0-COM9 or LPT0-LPT9 in any case, alone or before a dot.
func reserved(name string) bool {
	base, _, _ := strings.Cut(strings.ToUpper(name), ".")
	switch base {
	case "CON", "PRN", "AUX", "NUL":
		return true
	}
	return len(base) == 4 && (strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT")) && '0' <= base[3] && base[3] <= '9'
}

// MaxChannelLength bounds a channel name (bytes).
const MaxChannelLength = 32

// ValidChannel checks a release channel name: 1 to 32 of [a-z0-9-],
// starting with a letter ("stable", "beta", "canary-eu").
func ValidChannel(c string) error {
	ok := c != "" && len(c) <= MaxChannelLength && 'a' <= c[0] && c[0] <= 'z'
	for i := 1; ok && i < len(c); i++ {
		ok = alnum(c[i], false) || c[i] == '-'
	}
	if !ok {
		return fmt.Errorf("invalid channel %.40q: want 1-%d of a-z 0-9 - starting with a letter, e.g. beta", c, MaxChannelLength)
	}
	return nil
}

// ValidPlatform checks the grammar of a platform, OS/ARCH with OS and ARCH
// each 1 to 16 of [a-z0-9], as Go spells GOOS and GOARCH.
func ValidPlatform(p string) error {
	if _, _, ok := splitPlatform(p, '/'); !ok {
		return fmt.Errorf("invalid platform %q: want OS/ARCH as Go spells GOOS and GOARCH, e.g. linux/amd64", p)
	}
	return nil
}

// splitPlatform splits OS<sep>ARCH and checks both halves.
func splitPlatform(s string, sep byte) (goos, goarch string, ok bool) {
	i := strings.IndexByte(s, sep)
	if i < 0 {
		return "", "", false
	}
	goos, goarch = s[:i], s[i+1:]
	return goos, goarch, osArchWord(goos) && osArchWord(goarch)
}

func osArchWord(s string) bool {
	if s == "" || len(s) > maxOSArchLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !alnum(s[i], false) {
			return false
		}
	}
	return true
}

// knownPlatforms are the GOOS/GOARCH pairs of `go tool dist list` (Go 1.26).
var knownPlatforms = strings.Fields(`aix/ppc64 android/386 android/amd64 android/arm android/arm64
darwin/amd64 darwin/arm64 dragonfly/amd64 freebsd/386 freebsd/amd64 freebsd/arm freebsd/arm64
illumos/amd64 ios/amd64 ios/arm64 js/wasm linux/386 linux/amd64 linux/arm linux/arm64 linux/loong64
linux/mips linux/mips64 linux/mips64le linux/mipsle linux/ppc64 linux/ppc64le linux/riscv64 linux/s390x
netbsd/386 netbsd/amd64 netbsd/arm netbsd/arm64 openbsd/386 openbsd/amd64 openbsd/arm openbsd/arm64
openbsd/ppc64 openbsd/riscv64 plan9/386 plan9/amd64 plan9/arm solaris/amd64 wasip1/wasm
windows/386 windows/amd64 windows/arm64`)

// KnownPlatform checks that p is a GOOS/GOARCH pair Go 1.26 can build for.
// Publishers check it to catch typos; readers check only ValidPlatform.
func KnownPlatform(p string) error {
	if !slices.Contains(knownPlatforms, p) {
		return fmt.Errorf("unknown platform %q: want GOOS/GOARCH as listed by 'go tool dist list', e.g. linux/amd64", p)
	}
	return nil
}
