package client

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ferry-updates/ferry/internal/safefile"
)

// stateSubdirs are the directories under StateDir, all private to this
// user: trusted metadata, the download cache, the installer's staging and
// the highest minimum safe version verified per application.
var stateSubdirs = []string{"metadata", "downloads", "staging", minDir}

// prepareState creates StateDir and its subdirectories (0700) where
// missing and checks every one before anything is read from them: a
// directory itself (not a symlink), owned by this user, that group and
// others may not write (R51, R70); stagingDir later requires staging and
// downloads to be fully private. The state directory is trusted storage: a
// root or a cached artifact planted there must not be loaded.
func prepareState(dir string) error {
	for _, d := range append([]string{dir}, stateSubdirs...) {
		if d != dir {
			d = filepath.Join(dir, d)
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
		if err := safefile.CheckOwnDir(d); err != nil {
			return fmt.Errorf("state directory %w", err)
		}
	}
	return nil
}

// checkPrivate refuses dir unless it is a directory itself (not a symlink
// to one), owned by this process's user, with no group or other
// permissions: nobody else can plant or swap files in it (R51). On Windows
// only symlinks and junctions are refused: the directory's ACL decides who
// may use it.
func checkPrivate(dir string) error { return safefile.CheckPrivateDir(dir) }
