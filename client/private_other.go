//go:build !unix

package client

import (
	"fmt"
	"io/fs"
	"os"
)

// checkPrivate refuses dir unless it is a directory itself, not a symlink
// or junction to one. On Windows, ownership and ACLs are not checked: the
// state directory's ACL (a per-user or per-service profile directory)
// decides who may use it (R51).
func checkPrivate(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("private directory: %w", err)
	}
	if fi.Mode()&(fs.ModeSymlink|fs.ModeIrregular) != 0 || !fi.IsDir() {
		return fmt.Errorf("private directory %s: is %v, not a directory", dir, fi.Mode().Type())
	}
	return nil
}
