package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// stateDirHelp is the paragraph of ferry update --help on the default
// state directory.
const stateDirHelp = `Without --state-dir, state lives in the user's state directory, one per application and
trusted root: $XDG_STATE_HOME/ferry/APP-HASH (default ~/.local/state/ferry/APP-HASH) on Linux and
other unix systems, ~/Library/Application Support/ferry/APP-HASH on macOS and
%LocalAppData%\ferry\APP-HASH on Windows. It holds the install state and the versions marked bad,
so it is not a cache: cleaners must not delete it. A state directory that an older ferry left in
the user's cache directory is moved there on first use.`

// defaultStateDir returns the state directory for app and the trusted root
// bytes: one per application and root, so two repositories that serve the
// same application name never share trust.
func (e *env) defaultStateDir(app string, root []byte) (string, error) {
	base, err := e.userStateDir()
	if err != nil {
		return "", withHint(fmt.Errorf("no state directory: %w", err), "pass --state-dir DIR")
	}
	sum := sha256.Sum256(root)
	name := fmt.Sprintf("%s-%x", app, sum[:6])
	dir := filepath.Join(base, "ferry", name)
	e.moveLegacyStateDir(name, dir)
	return dir, nil
}

// userStateDir is XDG_STATE_HOME (or ~/.local/state) on unix, the
// application support directory on macOS and LocalAppData on Windows.
func (e *env) userStateDir() (string, error) {
	switch runtime.GOOS {
	case "windows":
		return os.UserCacheDir() // %LocalAppData%: per user and machine, not roamed
	case "darwin", "ios", "plan9":
		return os.UserConfigDir()
	}
	if d := e.getenv("XDG_STATE_HOME"); d != "" {
		if !filepath.IsAbs(d) {
			return "", fmt.Errorf("XDG_STATE_HOME %q is not an absolute path", d)
		}
		return d, nil
	}
	home := e.getenv("HOME")
	if home == "" {
		return "", errors.New("neither XDG_STATE_HOME nor HOME is set")
	}
	return filepath.Join(home, ".local", "state"), nil
}

// moveLegacyStateDir moves the state directory NAME that ferry kept in
// the user's cache directory before to dir, if dir does not exist yet, so
// that the install state and bad marks are kept.
func (e *env) moveLegacyStateDir(name, dir string) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return
	}
	old := filepath.Join(cache, "ferry", name)
	if _, err := os.Lstat(old); err != nil {
		return
	}
	if _, err := os.Lstat(dir); old == dir || !errors.Is(err, fs.ErrNotExist) {
		return
	}
	err = os.MkdirAll(filepath.Dir(dir), 0o700)
	if err == nil {
		err = os.Rename(old, dir)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "ferry: warning: could not move the state directory %s to %s: %v\n", old, dir, err)
		return
	}
	fmt.Fprintf(e.stderr, "ferry: note: moved the state directory %s to %s\n", old, dir)
}
