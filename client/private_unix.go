//go:build unix

package client

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkPrivate refuses dir unless it is a directory itself (not a symlink
// to one), owned by this process's user, with no group or other
// permissions: nobody else can plant or swap files in it (R51).
func checkPrivate(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("private directory: %w", err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 || !fi.IsDir() {
		return fmt.Errorf("private directory %s: is %v, not a directory", dir, fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("private directory %s: mode %v, want no group or other permissions (0700)", dir, perm)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("private directory %s: owned by uid %d, not by this user (uid %d)", dir, st.Uid, os.Geteuid())
	}
	return nil
}
