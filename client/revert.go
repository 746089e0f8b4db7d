package client

import (
	"context"
	"errors"

	"github.com/ferry-updates/ferry/install"
)

// reverter is an installer that can switch back to a version it still
// keeps on disk (install.Reverter): Revert re-verifies that copy against
// a's signed length and hashes (a.File is empty) and switches to it like
// an install; an error wrapping errNotOnDisk means there is no such copy
// and nothing changed.
type reverter interface {
	Revert(ctx context.Context, a install.Artifact) (install.Result, error)
}

// errNotOnDisk is what a reverter's error wraps when it has no verified
// copy of the version asked for: the client then downloads and applies it.
var errNotOnDisk = errors.New("version not on disk")

func isNotOnDisk(err error) bool { return errors.Is(err, errNotOnDisk) }
