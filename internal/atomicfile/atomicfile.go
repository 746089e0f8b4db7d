// Package atomicfile is the one place in ferry that writes files which must
// survive a crash: a temporary file in the same directory, write, fsync,
// close, rename over the destination, fsync the directory.
//
// The temporary file has an unpredictable name and is created exclusively
// (O_EXCL, and O_NOFOLLOW where the system has it), so a file or symlink
// planted in the directory is never opened or written through (R51); the
// rename replaces a symlink at the destination, never what it points to.
//
// After WriteFile or Write returns nil, the destination holds the new bytes
// even across power loss (on file systems that honour fsync). After it
// returns an error, the temporary file has been removed and either:
//
//   - the error does not wrap ErrNotDurable: the destination holds its
//     previous content (or still does not exist); or
//   - the error wraps ErrNotDurable: the rename happened, so the destination
//     holds the new bytes now, but syncing the directory failed, so after a
//     power loss it may hold either the old or the new content (never a
//     torn mix). Callers must treat the write as possibly applied.
//
// Rename reports a failed directory sync after a successful rename the same
// way.
package atomicfile

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrNotDurable is wrapped by the error of a write or rename that is in
// place but whose directory could not be synced: it may or may not survive
// a power loss.
var ErrNotDurable = errors.New("in place but not durable")

// syncDir is SyncDir; tests replace it to inject failures.
var syncDir = SyncDir

// WriteFile atomically replaces path with data, created with mode perm.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := io.Copy(w, bytes.NewReader(data))
		return err
	})
}

// Write atomically replaces path with whatever fill writes, created with mode
// perm. If fill returns an error (or panics), path is left untouched and
// the temporary file is removed.
func Write(path string, perm os.FileMode, fill func(w io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := createTemp(dir, base)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	renamed := false
	defer func() { // also when fill panics, which leaves err nil
		if !renamed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = fill(tmp); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: close: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	renamed = true
	if err = syncDir(dir); err != nil {
		return fmt.Errorf("write %s: %w: %w", path, ErrNotDurable, err)
	}
	return nil
}

// tempName returns the name of a temporary file for base: unpredictable,
// so nobody can plant anything at it in advance. Tests replace it.
var tempName = func(base string) string {
	return "." + base + ".tmp-" + rand.Text()[:16]
}

// createTemp creates a new temporary file for base in dir, 0600. It never
// opens an existing file or follows a symlink: O_EXCL fails on any name
// that exists (a symlink included), and another name is tried.
func createTemp(dir, base string) (*os.File, error) {
	for try := 0; ; try++ {
		f, err := os.OpenFile(filepath.Join(dir, tempName(base)), os.O_RDWR|os.O_CREATE|os.O_EXCL|noFollow, 0o600)
		if err == nil || !errors.Is(err, fs.ErrExist) || try == 9 {
			return f, err
		}
	}
}

// Rename moves oldpath to newpath atomically and makes the rename durable by
// syncing both parent directories. If the rename happened but a sync
// failed, the error wraps ErrNotDurable.
func Rename(oldpath, newpath string) error {
	if err := os.Rename(oldpath, newpath); err != nil {
		return err
	}
	dirs := []string{filepath.Dir(newpath)}
	if d := filepath.Dir(oldpath); d != dirs[0] {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := syncDir(d); err != nil {
			return fmt.Errorf("rename %s: %w: %w", newpath, ErrNotDurable, err)
		}
	}
	return nil
}

// SyncDir fsyncs a directory so that renames and creations in it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil && !errors.Is(serr, os.ErrInvalid) {
		return fmt.Errorf("sync dir %s: %w", dir, serr)
	}
	return cerr
}
