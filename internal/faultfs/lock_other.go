//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly || windows)

package faultfs

import (
	"errors"
	"io"
)

func lockFile(name string) (io.Closer, error) {
	return nil, errors.New("lock " + name + ": file locking is not supported on this platform")
}
