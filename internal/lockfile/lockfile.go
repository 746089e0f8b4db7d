// Package lockfile takes exclusive locks on files without waiting for the
// holder, for state that one process at a time may change: an install
// (install's per-application lock) or a client's state directory. The
// kernel releases a lock when its process dies, so a crash never leaves a
// stale lock. The holder writes its process id into the file, so a
// refused caller can say who holds it.
//
// A lock file is opened like a partial download (internal/safefile): a
// symlink at its name is never followed and a file that someone else owns
// or may write is refused. Lock is safe for concurrent use; two Locks of
// one file conflict also within one process.
package lockfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/ferry-updates/ferry/internal/safefile"
)

// ErrLocked is wrapped by Lock's error when another holder has the lock.
var ErrLocked = errors.New("locked by another process")

// HeldError is a lock that another holder has.
type HeldError struct {
	Path string
	PID  int // the holder's process id, 0 if unknown
}

func (e *HeldError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("lock %s: %v (pid %d)", e.Path, ErrLocked, e.PID)
	}
	return fmt.Sprintf("lock %s: %v", e.Path, ErrLocked)
}

// Unwrap makes a HeldError match ErrLocked.
func (e *HeldError) Unwrap() error { return ErrLocked }

// wait is how long Lock retries a held lock before giving up: a child that
// this process forks (for any reason, in any goroutine) shares the lock's
// open file description until it execs, so a lock released just before can
// look held for a moment.
const wait = 500 * time.Millisecond

// Lock takes the exclusive lock of the file path, creating it (0600) if
// needed, and records this process's id in it. If another holder has it,
// Lock retries for half a second and then fails with a *HeldError. Close
// releases the lock.
func Lock(path string) (io.Closer, error) {
	f, err := safefile.OpenPartial(path)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err = tryLock(f)
		if !errors.Is(err, errHeld) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if errors.Is(err, errHeld) {
		pid := holder(f)
		f.Close()
		return nil, &HeldError{Path: path, PID: pid}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// The pid is a hint for a refused caller; failing to write it does
	// not weaken the lock.
	if f.Truncate(0) == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// errHeld is tryLock's error when another holder has the lock.
var errHeld = errors.New("held")

// holder reads the pid a holder wrote, 0 if there is none.
func holder(f *os.File) int {
	var b [24]byte
	n, _ := f.ReadAt(b[:], 0)
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
