// Package release is ferry's release format: the one definition of a target
// path, of the signed custom metadata that describes it, of artifact kinds,
// of application and file names, and of versions. The publisher (package
// repo), the client, the installer and the command all use it, so what one
// of them accepts the others accept too.
//
// It is pure: no network, no file system, no clock. Every function is safe
// for concurrent use.
//
// # Target path
//
//	PATH     = APP "/" VERSION "/" OS "-" ARCH "/" FILE
//	APP      = 1*64 of [a-z0-9._-], first a letter or digit, last not ".";
//	           not a top-level TUF role (root, targets, snapshot, timestamp)
//	           and not a name Windows reserves (CON, NUL, COM1, ...)
//	VERSION  = MAJOR "." MINOR "." PATCH [ "-" PRERELEASE ]   (semver 2.0.0)
//	OS, ARCH = 1*16 of [a-z0-9]   (GOOS and GOARCH)
//	FILE     = 1*128 of [A-Za-z0-9._+-], first a letter or digit, last not ".";
//	           not a name Windows reserves
//
// for example hello/1.4.2/linux-amd64/hello. A platform is written OS/ARCH
// (linux/amd64) everywhere except in the path, where the slash would be a
// separator. ParsePath and Path.String convert between the two forms;
// ParsePath(p.String()) returns p for every valid Path.
//
// # Versions
//
// A version is a semantic version (semver.org 2.0.0) MAJOR.MINOR.PATCH with
// an optional -PRERELEASE, without a leading "v" and without +BUILD
// metadata, at most 64 bytes: 1.4.2, 2.0.0-rc.1. Numbers have no leading
// zeros. Build metadata is refused because semver ignores it when ordering:
// 1.1.0+rebuild would tie with 1.1.0, escape a mark against 1.1.0 and win
// ties by accident. Without it, two versions are equal exactly when their
// strings are, so a version string is a safe map key (bad marks, slots).
// CompareVersions orders versions as semver does: 1.0.0-rc.1 < 1.0.0 <
// 1.0.1 < 1.10.0.
//
// # Signed custom metadata
//
// Every target carries, in its signed TUF "custom" field, the JSON object
//
//	{"ferry": {"app": APP, "version": VERSION, "platform": "OS/ARCH", "kind": KIND,
//	           "files": {FILE: SHA256HEX, ...}}}
//
// The first four members are required strings obeying the rules above, and
// must agree with the target's path (Custom.Matches). "files", the release
// manifest, is optional: a non-empty object of at most MaxManifestFiles
// valid file names, each with the file's sha256 in lower-case hex, listing
// every file of the release (same application, version and platform),
// itself included. CheckManifest checks the signed files of one release
// against their manifests (R48). The whole field is at most
// MaxCustomLength bytes. Member names match exactly (not ignoring case as
// encoding/json does), and an object with a member twice is refused, so no
// two readers see different values in the same signed bytes. Members
// outside "ferry", and members of "ferry" other than these five, are
// ignored, so that a later format can add fields (deltas, for example) that
// older clients skip; a reader never ignores one of the five.
// Custom.Marshal writes the members in the order above (the manifest's
// names sorted, "files" only when there is a manifest);
// ParseCustom(c.Marshal()) is Equal to c for every valid Custom.
//
// # Channels
//
// A channel name (ValidChannel) is 1 to 32 of [a-z0-9-], starting with a
// letter. Channels are signed by the rollout role, not here (package
// rollout).
//
// # Kinds
//
// KIND is what the file is: "binary" (an executable, installed as is),
// "tar.gz", "tar.zst" or "zip" (an archive, unpacked into a slot).
// InferKind guesses it from a file name for a publisher that gives none.
//
// # Platforms
//
// A reader accepts any OS/ARCH of the grammar, so that a port newer than
// its code is not refused. A publisher also checks KnownPlatform (the
// GOOS/GOARCH pairs of Go 1.26), which catches typos before they are
// signed.
//
// # Delegations
//
// Each application has its own delegated TUF role, named APP, whose only
// path pattern is Pattern(APP) = "APP/*/*/*": one "*" per path segment, so
// the role can sign exactly its own application's paths.
package release
