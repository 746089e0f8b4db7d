//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly || windows)

package lockfile

import (
	"errors"
	"os"
	"runtime"
)

func tryLock(*os.File) error {
	return errors.New("file locking is not supported on " + runtime.GOOS)
}
