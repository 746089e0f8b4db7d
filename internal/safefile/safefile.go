// Package safefile opens and checks files and directories that ferry keeps
// in places where someone else might have planted something first: the
// state directory, download and staging directories, and directories the
// user names on the command line (R24, R51, R70).
//
// The guarantees:
//
//   - OpenPartial creates or reopens a file for writing without following a
//     symlink at its name, and refuses a file that is not a regular file of
//     this user with one link and no group or other write permission, so a
//     file pre-created (or linked) there by someone else is never written.
//   - CheckPrivateDir refuses a directory unless it is a directory itself
//     (not a symlink to one), owned by this user and with no group or other
//     permissions, so nobody else can plant, swap or read files in it;
//     CheckOwnDir is the same but lets group and others read.
//
// Every refusal wraps ErrUnsafe and is one line that names the path, what
// was found and what to do. On Windows, symlinks and junctions are refused;
// ownership and permissions are left to the directory's ACL. The functions
// are safe for concurrent use.
package safefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ErrUnsafe is wrapped by every refusal of a file or directory that
// someone else could have planted or may change (an *UnsafeError).
var ErrUnsafe = errors.New("unsafe file")

// UnsafeError is a refused file or directory: what was found at Path, and
// what to do about it.
type UnsafeError struct {
	Path  string
	Found string // for example "is a symlink" or "has mode 0775 (owner uid 1000)"
	Fix   string // for example "run chmod 700 /var/lib/app"
}

func (e *UnsafeError) Error() string { return e.Path + " " + e.Found + ": " + e.Fix }

// Unwrap makes every UnsafeError match ErrUnsafe.
func (e *UnsafeError) Unwrap() error { return ErrUnsafe }

// OpenPartial opens path for reading and writing, creating it (mode 0600)
// if missing, for a download that resumes from the bytes already there. A
// symlink at path is never followed; an existing file must be a regular
// file owned by this user, with one hard link and no group or other write
// permission.
func OpenPartial(path string) (*os.File, error) {
	f, err := openNoFollow(path)
	if err != nil {
		if isLoop(err) {
			return nil, &UnsafeError{path, "is a symlink, which is never followed", "remove it if you did not create it"}
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkOwnFile(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// CheckPrivateDir refuses dir unless it is a directory (not a symlink to
// one) owned by this user with no group or other permissions.
func CheckPrivateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	return CheckPrivateDirInfo(dir, fi)
}

// CheckPrivateDirInfo is CheckPrivateDir for fi, the result of Lstat(dir)
// (on any file system: ownership is checked only where fi carries it).
func CheckPrivateDirInfo(dir string, fi fs.FileInfo) error { return checkDir(dir, fi, 0o077) }

// CheckOwnDir refuses dir unless it is a directory (not a symlink to one)
// owned by this user that group and others may not write: others may read
// what is in it, but not plant, replace or remove anything.
func CheckOwnDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	return checkDir(dir, fi, 0o022)
}

func checkDir(dir string, fi fs.FileInfo, deny fs.FileMode) error {
	if fi.Mode()&(fs.ModeSymlink|fs.ModeIrregular) != 0 || !fi.IsDir() {
		return &UnsafeError{dir, "is a " + kind(fi) + ", not a directory", "use a real directory of your own"}
	}
	return checkOwner(dir, fi, deny, "use a directory of your own, or chown it", "run chmod 700 "+dir)
}

func kind(fi fs.FileInfo) string {
	switch t := fi.Mode().Type(); {
	case t&fs.ModeSymlink != 0:
		return "symlink"
	case t&fs.ModeIrregular != 0:
		return "junction or other irregular file"
	case t == 0:
		return "regular file"
	case t.IsDir():
		return "directory"
	default:
		return "special file (" + t.String() + ")"
	}
}

func checkOwnFile(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return &UnsafeError{path, "is a " + kind(fi) + ", not a regular file", "remove it if you did not create it"}
	}
	if n := links(fi); n > 1 {
		return &UnsafeError{path, fmt.Sprintf("has %d hard links, so another name shares its bytes", n), "remove it if you did not create it"}
	}
	return checkOwner(path, fi, 0o022, "remove it if you did not create it", "remove it if you did not create it")
}
