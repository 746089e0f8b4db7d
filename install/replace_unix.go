//go:build !windows

package install

import "github.com/ferry-updates/ferry/internal/faultfs"

// replaceExe renames staged over target in one atomic step: at every moment
// target is either the old or the new executable. A running old executable
// keeps its inode. aside is unused on unix.
func replaceExe(fsys faultfs.FS, staged, target, aside string) error {
	return fsys.Rename(staged, target)
}
