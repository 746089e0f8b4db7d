//go:build windows

package install

import "github.com/ferry-updates/ferry/internal/faultfs"

// replaceExe renames staged over target. Windows refuses to replace a
// running executable but allows renaming it, so when the direct rename
// fails, the running executable is renamed aside first and staged takes its
// place; if that fails, the old one is renamed back. Between the two renames
// target is briefly absent: Recover (and the kept .ferry-old copy) covers a
// crash in that window. The aside file is deleted by the next install's
// cleanup, once the old process has exited.
func replaceExe(fsys faultfs.FS, staged, target, aside string) error {
	if err := fsys.Rename(staged, target); err == nil {
		return nil
	}
	if err := fsys.Rename(target, aside); err != nil {
		return err
	}
	if err := fsys.Rename(staged, target); err != nil {
		fsys.Rename(aside, target)
		return err
	}
	return nil
}
