//go:build !linux

package server

import (
	"errors"
	"os"
)

// beneath is the openat2 opener of Linux; elsewhere os.Root serves.
type beneath struct{}

func newBeneath(*os.Root) *beneath { return nil }

func (*beneath) open(string) (servedFile, error) { return nil, errors.ErrUnsupported }

// openNonblock is O_NONBLOCK where os.Root passes it on.
const openNonblock = 0
