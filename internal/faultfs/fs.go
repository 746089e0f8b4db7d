package faultfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/ferry-updates/ferry/internal/atomicfile"
	"github.com/ferry-updates/ferry/internal/lockfile"
)

// ErrLocked is returned by Lock when another holder has the lock (it is
// lockfile.ErrLocked).
var ErrLocked = lockfile.ErrLocked

// File is an open file. Reads, writes and Sync follow *os.File semantics.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	Sync() error
	Close() error
	Stat() (fs.FileInfo, error)
}

// FS is the file system the installer uses. Names are OS paths. Every
// method returns an error wrapping the underlying cause (an *fs.PathError,
// *os.LinkError or a syscall.Errno) so callers can test it with errors.Is.
type FS interface {
	// Open opens name for reading, following symlinks.
	Open(name string) (File, error)
	// Create creates name exclusively (it must not exist) for writing.
	Create(name string, perm fs.FileMode) (File, error)
	Mkdir(name string, perm fs.FileMode) error
	MkdirAll(name string, perm fs.FileMode) error
	// Rename atomically replaces newname with oldname.
	Rename(oldname, newname string) error
	Link(oldname, newname string) error
	Symlink(target, name string) error
	Readlink(name string) (string, error)
	Remove(name string) error
	RemoveAll(name string) error
	Lstat(name string) (fs.FileInfo, error)
	ReadDir(name string) ([]fs.DirEntry, error)
	// SyncDir makes creations, renames and removals in dir durable.
	SyncDir(dir string) error
	// WriteFile atomically and durably replaces name with data.
	WriteFile(name string, data []byte, perm fs.FileMode) error
	// Lock takes an exclusive lock named by the file name, creating it if
	// needed. It does not wait for the holder: if another holder has it, it
	// fails with an error wrapping ErrLocked (OS first retries for half a
	// second and names the holder's pid, see internal/lockfile); Close
	// releases it.
	Lock(name string) (io.Closer, error)
	// OpenTree returns a Tree confined to the existing directory dir.
	OpenTree(dir string) (Tree, error)
}

// Tree creates files and directories inside one directory. Names are
// slash-separated and relative to the tree; nothing a Tree creates can land
// outside it, whatever the name and whatever symlinks exist inside.
type Tree interface {
	Mkdir(name string, perm fs.FileMode) error
	Create(name string, perm fs.FileMode) (File, error)
	SyncDir(name string) error
	Close() error
}

// OS is the operating system's file system.
type OS struct{}

var (
	_ FS   = OS{}
	_ FS   = (*Mem)(nil)
	_ File = (*os.File)(nil)
)

func (OS) Open(name string) (File, error) { return os.Open(name) }

func (OS) Create(name string, perm fs.FileMode) (File, error) {
	return os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
}

func (OS) Mkdir(name string, perm fs.FileMode) error    { return os.Mkdir(name, perm) }
func (OS) MkdirAll(name string, perm fs.FileMode) error { return os.MkdirAll(name, perm) }
func (OS) Rename(oldname, newname string) error         { return os.Rename(oldname, newname) }
func (OS) Link(oldname, newname string) error           { return os.Link(oldname, newname) }
func (OS) Symlink(target, name string) error            { return os.Symlink(target, name) }
func (OS) Readlink(name string) (string, error)         { return os.Readlink(name) }
func (OS) Remove(name string) error                     { return os.Remove(name) }
func (OS) RemoveAll(name string) error                  { return os.RemoveAll(name) }
func (OS) Lstat(name string) (fs.FileInfo, error)       { return os.Lstat(name) }
func (OS) ReadDir(name string) ([]fs.DirEntry, error)   { return os.ReadDir(name) }
func (OS) SyncDir(dir string) error                     { return atomicfile.SyncDir(dir) }

func (OS) WriteFile(name string, data []byte, perm fs.FileMode) error {
	return atomicfile.WriteFile(name, data, perm)
}

func (OS) Lock(name string) (io.Closer, error) { return lockfile.Lock(name) }

func (OS) OpenTree(dir string) (Tree, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return osTree{r}, nil
}

// osTree confines every operation to one directory with os.Root, which
// refuses names and symlinks that escape it.
type osTree struct{ r *os.Root }

func (t osTree) Mkdir(name string, perm fs.FileMode) error { return t.r.Mkdir(name, perm) }

func (t osTree) Create(name string, perm fs.FileMode) (File, error) {
	return t.r.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
}

func (t osTree) SyncDir(name string) error {
	d, err := t.r.Open(name)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil && !errors.Is(serr, os.ErrInvalid) {
		return fmt.Errorf("sync dir %s: %w", name, serr)
	}
	return cerr
}

func (t osTree) Close() error { return t.r.Close() }
