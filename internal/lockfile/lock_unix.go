//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package lockfile

import (
	"errors"
	"os"
	"syscall"
)

// tryLock takes an flock without waiting.
func tryLock(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errHeld
	}
	return err
}
