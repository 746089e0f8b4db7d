//go:build !unix

package repo

import (
	"fmt"
	"runtime"
)

// lock is not implemented without flock; publishing is refused rather than
// left unlocked.
func (r *Repo) lock() (unlock func(), err error) {
	return nil, fmt.Errorf("lock repository: publishing is not supported on %s", runtime.GOOS)
}
