package client

import (
	"context"
	"errors"

	"github.com/ferry-updates/ferry/install"
)

// multiReverter is a MultiInstaller that can switch back to a release of
// several files still on disk; *install.Slots satisfies it.
type multiReverter interface {
	RevertAll(ctx context.Context, arts []install.Artifact) (install.Result, error)
}

var _ multiReverter = (*install.Slots)(nil)

// revert asks an installer that keeps older versions on disk
// (install.Reverter) to switch back to out.Release, a signed pull's
// downgrade, re-verifying its copy against the signed length and hashes.
// done is false when it cannot (not a Reverter, or install.ErrNotOnDisk):
// the release is then downloaded and applied.
func (c *call) revert(ctx context.Context, inst Installer, out *Outcome) (res install.Result, done bool, err error) {
	if mr, ok := inst.(multiReverter); ok {
		if _, multi := inst.(MultiInstaller); multi {
			arts := make([]install.Artifact, len(out.Files))
			for i, f := range out.Files {
				arts[i] = artifact(f, "")
			}
			res, err = mr.RevertAll(ctx, arts)
			return res, !errors.Is(err, install.ErrNotOnDisk), err
		}
	}
	rv, ok := inst.(install.Reverter)
	if !ok {
		return install.Result{}, false, nil
	}
	one, err := c.single(out.Release, out.Files)
	if err != nil {
		return install.Result{}, true, err
	}
	res, err = rv.Revert(ctx, artifact(one, ""))
	if errors.Is(err, install.ErrNotOnDisk) {
		return install.Result{}, false, nil
	}
	*out.Release = *one
	return res, true, err
}
