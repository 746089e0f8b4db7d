// Package rollout is ferry's rollout model, pure: the signed decision
// document of one application (channel, share, halt, pull of each release),
// the cohort of an installation, and the choice of the version an
// installation gets. It does no I/O and reads no clock; every function is
// safe for concurrent use. The format is in docs/rollouts.md.
//
// Who signs what: a Doc is signed by the rollout role (an online key) as the
// custom metadata of the target DocPath(APP); the minimum safe version is
// signed by the application's own role (an offline key) as the custom
// metadata of PolicyPath(APP). Choose takes both and can only pick
// among the versions it is given, which the caller takes from targets the
// application key signed: a Doc can never add a version (R61), and no
// decision can offer or move an installation below the minimum (R63).
//
// ParseDoc and (*Doc).Marshal read and write the decision document,
// ParsePolicy and Policy.Marshal the policy: strict, size-bounded,
// canonical JSON, fuzzed. (*Doc).Apply makes the publisher's transitions
// (start, halt, resume, pull, promote) and refuses a version the
// application key did not sign or one below the minimum.
package rollout

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

	"golang.org/x/mod/semver"

	"github.com/ferry-updates/ferry/release"
)

// RoleName is the delegated TUF role that signs rollout decisions. It
// starts with "_", which no application name can, so it is never an
// application's role.
const RoleName = "_rollout"

// PathPattern is the rollout role's only delegated path pattern. It has
// two segments, so it matches no release path (APP/VERSION/OS-ARCH/FILE,
// four segments) and no policy path: the role can sign decisions and
// nothing else.
const PathPattern = "_rollout/*"

// DocPath is the target path whose signed custom metadata is app's Doc.
func DocPath(app string) string { return "_rollout/" + app }

// DefaultChannel is the channel of a release no decision names, and of an
// installation that names none.
const DefaultChannel = "stable"

// Full is the share of every installation, in basis points (1/100 of a percent).
const Full = 10000

// State is what a decision says about a release.
type State string

const (
	Active State = "active" // offered to the installations in its share
	Halted State = "halted" // offered to no new installation; those that have it keep it
	Pulled State = "pulled" // offered to nobody; installations that run it move to the newest good release
)

// Entry is the decision about one release (one version of one application).
type Entry struct {
	Channel     string `json:"channel"`      // release.ValidChannel
	BasisPoints int    `json:"basis_points"` // share offered, 0..Full
	State       State  `json:"state"`
	Salt        string `json:"salt"` // 32 lower-case hex digits, new for each release
}

// Doc is the signed decision document of one application. A version that
// has no Entry is in DefaultChannel, Active, at Full share: a repository
// without rollouts behaves as before.
type Doc struct {
	App      string           `json:"app"`
	Releases map[string]Entry `json:"releases"` // version -> decision
}

// entry returns the decision for version v (the default one if d is nil
// or does not name v).
func (d *Doc) entry(v string) Entry {
	if d != nil {
		if e, ok := d.Releases[v]; ok {
			return e
		}
	}
	return Entry{Channel: DefaultChannel, BasisPoints: Full, State: Active}
}

// Bucket is the cohort of an installation for one release: a number in
// [0, Full) derived from a SHA-256 of the release's salt and the install
// ID. An installation is in a release's share when Bucket < BasisPoints,
// so widening the share keeps everyone who was in, and releases with
// different salts start on independent sets of installations.
//
// The formula: the first 8 bytes of SHA-256("ferry-cohort/v1" 0x00 SALT
// 0x00 INSTALLID), read as a big-endian unsigned integer, modulo Full.
func Bucket(installID, salt string) int {
	var buf [128]byte // no allocation for the usual 32-digit salt and ID
	b := append(buf[:0], "ferry-cohort/v1\x00"...)
	b = append(append(append(b, salt...), 0), installID...)
	sum := sha256.Sum256(b)
	return int(binary.BigEndian.Uint64(sum[:8]) % Full)
}

// Installation is what Choose needs to know about the asking installation.
type Installation struct {
	ID        string // the install ID (stable, random, per state directory)
	Channel   string // "" means DefaultChannel
	Installed string // the installed version, "" if none
}

// Input is everything Choose decides on.
type Input struct {
	// Versions are the versions the caller may install: releases the
	// application key signed for this platform, valid, not marked bad
	// here, pre-releases only if enabled. Choose never returns another.
	Versions   []string
	Doc        *Doc   // the signed decisions; nil means none
	MinVersion string // the signed minimum safe version; "" means none
	Installation
}

// Choice is what Choose decided.
type Choice struct {
	// Version to install, or "" for nothing to do.
	Version string
	// Downgrade is set when Version is below Installed: only a signed pull
	// of the installed version leads there (R49).
	Downgrade bool
	// Reason says why, in a few words: "newer release", "not in cohort",
	// "halted", "installed version pulled", "below minimum safe version 1.4.0".
	Reason string
}

// Choose returns the version inst should install:
//
//   - below the minimum safe version: the newest release at or above it
//     that is not pulled, in the installation's channels, whatever its
//     share or halt;
//   - the installed version pulled: the newest offerable release other
//     than it, older ones included (a Downgrade);
//   - otherwise: the newest offerable release above the installed one.
//
// A release is offerable when it is at or above the minimum, Active, in
// the installation's channels (its own and DefaultChannel), and the
// installation's Bucket for it is below its share.
func Choose(in Input) Choice {
	channel := in.Channel
	if channel == "" {
		channel = DefaultChannel
	}
	inChannel := func(e Entry) bool { return e.Channel == channel || e.Channel == DefaultChannel }
	inst, min := semverOf(in.Installed), semverOf(in.MinVersion)
	atLeastMin := func(v string) bool { return in.MinVersion == "" || semverAtLeast(v, min) }
	offerable := func(v candidate) bool {
		e := in.Doc.entry(v.version)
		return atLeastMin(v.semver) && e.State == Active && inChannel(e) && Bucket(in.ID, e.Salt) < e.BasisPoints
	}
	cands := candidates(in.Versions)
	newest := func(ok func(candidate) bool) string {
		for _, v := range cands {
			if ok(v) {
				return v.version
			}
		}
		return ""
	}
	switch {
	case in.Installed != "" && !atLeastMin(inst):
		v := newest(func(v candidate) bool {
			e := in.Doc.entry(v.version)
			return atLeastMin(v.semver) && e.State != Pulled && inChannel(e)
		})
		return Choice{Version: v, Reason: fmt.Sprintf("below minimum safe version %s", in.MinVersion)}
	case in.Installed != "" && in.Doc.entry(in.Installed).State == Pulled:
		v := newest(func(v candidate) bool { return v.version != in.Installed && offerable(v) })
		return Choice{Version: v, Downgrade: v != "" && release.CompareVersions(v, in.Installed) < 0, Reason: "installed version pulled"}
	}
	newer := func(v candidate) bool { return in.Installed == "" || !semverAtLeast(inst, v.semver) }
	if v := newest(func(v candidate) bool { return newer(v) && offerable(v) }); v != "" {
		return Choice{Version: v, Reason: "newer release"}
	}
	return Choice{Reason: whyNot(in, channel, newest(newer))}
}

// candidate is a valid version and its "v"-prefixed form for package semver.
type candidate struct{ version, semver string }

// candidates returns the valid versions among vs, newest first. Choose
// never returns an invalid version.
func candidates(vs []string) []candidate {
	out := make([]candidate, 0, len(vs))
	for _, v := range vs {
		if release.ValidVersion(v) == nil {
			out = append(out, candidate{v, "v" + v})
		}
	}
	slices.SortFunc(out, func(a, b candidate) int { return semver.Compare(b.semver, a.semver) })
	return out
}

// semverOf returns v in package semver's form, or "" if v is not a valid
// version (lower than every valid one, as in release.CompareVersions).
func semverOf(v string) string {
	if release.ValidVersion(v) != nil {
		return ""
	}
	return "v" + v
}

// semverAtLeast reports whether a >= b, both from semverOf or candidates.
func semverAtLeast(a, b string) bool {
	switch {
	case b == "":
		return true
	case a == "":
		return false
	}
	return semver.Compare(a, b) >= 0
}

// whyNot explains why nothing newer is offered: the state, channel or
// cohort of best, the newest release above the installed one, or that
// there is none.
func whyNot(in Input, channel, best string) string {
	if best == "" {
		return "up to date"
	}
	e := in.Doc.entry(best)
	switch {
	case in.MinVersion != "" && release.CompareVersions(best, in.MinVersion) < 0:
		return fmt.Sprintf("%s is below the minimum safe version %s", best, in.MinVersion)
	case e.State != Active:
		return fmt.Sprintf("%s is %s", best, e.State)
	case e.Channel != channel && e.Channel != DefaultChannel:
		return fmt.Sprintf("%s is in channel %s", best, e.Channel)
	}
	return fmt.Sprintf("%s is at %s and this installation is not in its cohort (bucket %d)", best, Percent(e.BasisPoints), Bucket(in.ID, e.Salt))
}

// Percent formats basis points as a percentage: 500 -> "5%", 50 -> "0.5%".
func Percent(bp int) string {
	s := fmt.Sprintf("%d.%02d", bp/100, bp%100)
	for s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	if s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s + "%"
}
