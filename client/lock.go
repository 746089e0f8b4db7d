package client

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"

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

// stateLock is a Repository's hold on the state directory's lock: taken
// when the first of its operations starts and released when the last one
// ends, so that the Repository's own goroutines share it while two runs
// that share a state directory never interleave their downloads and
// metadata writes: the second one is told the directory is busy, and by
// whom.
type stateLock struct {
	dir     string
	mu      sync.Mutex
	n       int    // operations running
	release func() // the file lock's release while n > 0
}

// acquire takes the lock for one operation; the returned unlock is
// idempotent.
func (l *stateLock) acquire() (unlock func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 {
		rel, err := lockState(l.dir)
		if err != nil {
			return nil, err
		}
		l.release = rel
	}
	l.n++
	return sync.OnceFunc(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.n--; l.n == 0 {
			l.release()
			l.release = nil
		}
	}), nil
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
