//go:build unix

package repo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lock takes the repository's exclusive publisher lock without waiting.
// flock is released by the kernel when the process dies, so a crashed
// publisher never leaves a stale lock behind.
func (r *Repo) lock() (unlock func(), err error) {
	path := filepath.Join(r.dir, ".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock repository: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("repository is %w: another publisher holds %s", ErrBusy, path)
		}
		return nil, fmt.Errorf("lock repository %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
