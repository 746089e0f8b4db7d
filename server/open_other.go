//go:build !linux

package server

import (
	"errors"
	"io/fs"
	"os"
	"time"
)

// beneath is the openat2 opener of Linux; elsewhere os.Root serves.
type beneath struct{}

func newBeneath(*os.Root) *beneath { return nil }

func (*beneath) open(string) (servedFile, error) { return nil, errors.ErrUnsupported }

// openNonblock is O_NONBLOCK where os.Root passes it on.
const openNonblock = 0

func (*beneath) lookup(string) (*inMemory, bool) { return nil, false }

func (*beneath) remember(string, servedFile, fs.FileInfo, time.Time, *inMemory) {}
