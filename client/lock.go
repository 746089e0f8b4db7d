package client

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/ferry-updates/ferry/internal/lockfile"
	"github.com/ferry-updates/ferry/internal/sentinel"
)

// ErrBusy is wrapped by the error of New, Check, Download and Update when
// another Client (in this or another process) is using the same state
// directory. It is install.ErrBusy (one value, see internal/sentinel).
var ErrBusy = sentinel.ErrBusy

// lockName is the state directory's lock file. The installer's own locks
// have other names, so an installer may keep its state in StateDir.
const lockName = "client.lock"

// lock takes the state directory's lock for one operation: two runs that
// share a state directory never interleave their downloads and metadata
// writes; the second one is told the directory is busy, and by whom.
func (c *Client) lock() (unlock func(), err error) {
	return lockState(c.cfg.StateDir)
}

func lockState(dir string) (func(), error) {
	l, err := lockfile.Lock(filepath.Join(dir, lockName))
	var held *lockfile.HeldError
	switch {
	case errors.As(err, &held):
		who := "another process"
		if held.PID > 0 {
			who = fmt.Sprintf("process %d", held.PID)
		}
		return nil, fmt.Errorf("state directory %s is %w: %s is using it (lock %s); wait for it to finish, or give each run its own state directory",
			dir, ErrBusy, who, held.Path)
	case err != nil:
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	return func() { l.Close() }, nil
}
