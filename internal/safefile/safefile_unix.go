//go:build unix

package safefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

func openNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
}

// isLoop reports the error of O_NOFOLLOW meeting a symlink (ELOOP; EMLINK
// on FreeBSD and NetBSD, EFTYPE on some others).
func isLoop(err error) bool {
	return errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EMLINK)
}

func links(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

// checkOwner refuses fi unless it belongs to this user and has none of the
// permission bits in deny; ownerFix and modeFix say what to do.
func checkOwner(path string, fi fs.FileInfo, deny fs.FileMode, ownerFix, modeFix string) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	perm := fi.Mode().Perm()
	if ok && int(st.Uid) != os.Geteuid() {
		return &UnsafeError{path, fmt.Sprintf("is owned by uid %d, not by this user (uid %d), mode %04o", st.Uid, os.Geteuid(), perm), ownerFix}
	}
	if perm&deny != 0 {
		what := "read"
		if perm&deny&0o022 != 0 {
			what = "write"
		}
		return &UnsafeError{path, fmt.Sprintf("has mode %04o (owner uid %d), so group or others may %s it", perm, os.Geteuid(), what), modeFix}
	}
	return nil
}
