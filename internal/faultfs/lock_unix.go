//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package faultfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// lockWait is how long lockFile retries a held lock before giving up.
const lockWait = 500 * time.Millisecond

// lockFile takes an flock on name. The kernel releases it when the process
// dies, so a crash never leaves a stale lock behind.
//
// It retries for lockWait before reporting ErrLocked: a child that this
// process forks (for any reason, in any goroutine) shares the lock's open
// file description until it execs, so a lock released just before can look
// held for a moment.
func lockFile(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(lockWait)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", name, ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return f, nil
}
