package repo

import "github.com/ferry-updates/ferry/release"

// validate checks a release with package release's rules; the platform
// must also be one Go can build for (a typo is caught before it is signed),
// and an empty Kind is inferred later from each file's name.
func (rel Release) validate() error {
	if err := release.ValidApp(rel.App); err != nil {
		return err
	}
	if err := release.ValidVersion(rel.Version); err != nil {
		return err
	}
	if err := release.KnownPlatform(rel.Platform); err != nil {
		return err
	}
	if rel.Kind != "" {
		return release.ValidKind(rel.Kind)
	}
	return nil
}

// String is "APP VERSION OS/ARCH".
func (rel Release) String() string {
	return rel.App + " " + rel.Version + " " + rel.Platform
}

// path is the target path of the file called file in rel.
func (rel Release) path(file string) release.Path {
	return release.Path{App: rel.App, Version: rel.Version, Platform: rel.Platform, File: file}
}

// dirPath is APP/VERSION/OS-ARCH, the target path prefix of a release.
func (rel Release) dirPath() string { return rel.path("").Dir() }

// custom is the signed custom metadata of rel's files.
func (rel Release) custom() release.Custom {
	return release.Custom{App: rel.App, Version: rel.Version, Platform: rel.Platform, Kind: rel.Kind}
}
