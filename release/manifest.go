package release

import (
	"fmt"
	"slices"
	"strings"
)

// FileSig is what the signed metadata says about one file of a release:
// its sha256 (lower-case hex) and its manifest (Custom.Files, nil if none).
type FileSig struct {
	SHA256 string
	Files  map[string]string
}

// CheckManifest checks that the signed files of one release (same
// application, version and platform), keyed by FILE name, were published
// together (R48). It returns nil when no file has a manifest (a release
// published before manifests: its files are the set) or when every file
// has the same manifest, whose names are exactly the keys of files and
// whose digests are their signed sha256. Otherwise the files were mixed
// from different releases, and the error says how; a client then refuses
// the whole release.
func CheckManifest(files map[string]FileSig) error {
	names := sortedNames(files)
	var with, without []string
	for _, n := range names {
		if files[n].Files == nil {
			without = append(without, n)
		} else {
			with = append(with, n)
		}
	}
	if len(with) == 0 {
		return nil
	}
	if len(without) > 0 {
		return fmt.Errorf("release manifest: %s has a manifest but %s has none", with[0], without[0])
	}
	first := files[with[0]].Files
	for _, n := range with[1:] {
		if !sameManifest(first, files[n].Files) {
			return fmt.Errorf("release manifest: %s and %s list different files", with[0], n)
		}
	}
	for _, n := range names {
		sum, listed := first[n]
		switch {
		case !listed:
			return fmt.Errorf("release manifest: %s is signed but not listed (the manifest lists %s)", n, strings.Join(sortedNames(first), ", "))
		case sum != files[n].SHA256:
			return fmt.Errorf("release manifest: %s: listed sha256 %s, signed sha256 %s", n, sum, files[n].SHA256)
		}
	}
	if len(first) != len(files) {
		for _, n := range sortedNames(first) {
			if _, ok := files[n]; !ok {
				return fmt.Errorf("release manifest: %s is listed but not signed for this release", n)
			}
		}
	}
	return nil
}

func sameManifest(a, b map[string]string) bool {
	return Custom{Files: a}.Equal(Custom{Files: b})
}

// sortedNames returns the keys of m in order.
func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
