package client

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/trust"
)

var (
	// ErrUnknownApp means the repository has never published Config.App:
	// no signed delegation or target of its top-level targets role names
	// it. Nothing is newer because nothing is there: a typo, or the wrong
	// repository.
	ErrUnknownApp = errors.New("unknown application")
	// ErrUnknownPlatform means the application has no release at all for
	// Config.Platform.
	ErrUnknownPlatform = errors.New("no release for this platform")
)

// NotPublishedError is the error of Check, Update and SelfUpdate when the
// repository has no such application (Kind is ErrUnknownApp; Known lists
// the applications it has) or the application has no release for the
// platform (Kind is ErrUnknownPlatform; Known lists the platforms it has
// releases for). Known is sorted. errors.Is(err, ErrUnknownApp) and
// errors.Is(err, ErrUnknownPlatform) tell the two apart.
type NotPublishedError struct {
	Kind     error
	App      string
	Platform string
	Known    []string
}

func (e *NotPublishedError) Error() string {
	if e.Kind == ErrUnknownApp {
		if len(e.Known) == 0 {
			return fmt.Sprintf("%v %q: the repository has no applications", e.Kind, e.App)
		}
		return fmt.Sprintf("%v %q: the repository has %s", e.Kind, e.App, strings.Join(e.Known, ", "))
	}
	if len(e.Known) == 0 {
		return fmt.Sprintf("%v: %s has no release for %s, nor for any other platform", e.Kind, e.App, e.Platform)
	}
	return fmt.Sprintf("%v: %s has no release for %s, only for %s", e.Kind, e.App, e.Platform, strings.Join(e.Known, ", "))
}

func (e *NotPublishedError) Unwrap() error { return e.Kind }

// knownApps lists the applications the trusted top-level targets role
// names: each delegation path pattern's and each own target path's first
// segment that is an application name (see release.AppOfPattern).
func knownApps(tc *trust.Client) ([]string, error) {
	paths, err := tc.TopLevelPaths()
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, p := range paths {
		if app, ok := release.AppOfPattern(p); ok {
			set[app] = true
		}
	}
	return slices.Sorted(maps.Keys(set)), nil
}
