package client

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/internal/atomicfile"
	"github.com/ferry-updates/ferry/release"
)

// minDir is the state subdirectory that keeps, per application, the
// highest minimum safe version this installation has verified:
// StateDir/min-version/APP holds the version and a newline (0600).
const minDir = "min-version"

// floorMin returns the minimum safe version to decide with: the higher of
// the signed one and the highest this state directory has verified for
// the application before (R63: a later role, validly signed, with a lower
// minimum does not lower it; a rollout.min_lowered event says so). A
// higher signed minimum is recorded first. A damaged record is an error,
// never reset.
func (c *call) floorMin(signed string) (string, error) {
	name := filepath.Join(c.r.cfg.StateDir, minDir, c.a.Name)
	defer c.r.files.lock(name)() // concurrent calls for one application
	kept, err := readMin(name)
	if err != nil {
		return "", err
	}
	switch {
	case signed == "" && kept == "":
		return "", nil
	case kept != "" && (signed == "" || release.CompareVersions(signed, kept) < 0):
		c.ev.Emit(event.MinLowered, "", "the signed minimum safe version is below one verified before; keeping "+kept,
			"signed", signed, "kept", kept)
		return kept, nil
	case signed != kept:
		if err := atomicfile.WriteFile(name, []byte(signed+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("minimum safe version: %w", err)
		}
	}
	return signed, nil
}

// readMin reads a minimum safe version record: "" if there is none, an
// error naming the file if it is anything but one valid version and a
// newline.
func readMin(name string) (string, error) {
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("minimum safe version: %w", err)
	}
	v, ok := strings.CutSuffix(string(b), "\n")
	if !ok || release.ValidVersion(v) != nil {
		return "", fmt.Errorf("minimum safe version record %s: want one version and a newline, got %q (restore it; removing it forgets the highest minimum this installation verified)", name, b)
	}
	return v, nil
}
