package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ferry-updates/ferry/internal/atomicfile"
)

// SplitKeys moves the offline private keys (root, targets, applications,
// with their .pub files) of the repository in dir from dir/keys to the
// directory offline, and records that the repository keeps them there;
// dir/keys then holds only the online keys. It returns the names moved,
// relative to the key directories.
//
// No key can be lost to a crash: every file is copied and synced (through
// internal/atomicfile) and read back before the repository's settings
// change, and only then are the originals removed. Running it again
// finishes an interrupted move; a file already in offline with other
// content is an error and nothing is removed. Key files are moved, not
// decrypted: no passphrase is needed.
func SplitKeys(ctx context.Context, dir, offline string) ([]string, error) {
	moved, err := splitKeys(ctx, dir, offline)
	if err != nil {
		return nil, fmt.Errorf("split keys of %s: %w", dir, err)
	}
	return moved, nil
}

func splitKeys(ctx context.Context, dir, offline string) ([]string, error) {
	s, err := readSettings(dir)
	if err != nil {
		return nil, err
	}
	if offline == "" {
		return nil, errors.New("no offline keys directory given")
	}
	if err := checkInside(dir, offline); err != nil {
		return nil, err
	}
	r := &Repo{dir: dir, settings: s}
	unlock, err := r.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	online := filepath.Join(dir, "keys")
	names, err := offlineKeyFiles(online)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{offline, filepath.Join(offline, "apps")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := pinOnSplit(dir, offline); err != nil {
		return nil, err
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := copyKey(filepath.Join(online, name), filepath.Join(offline, name)); err != nil {
			return nil, err
		}
	}
	if s.Custody != custodySplit {
		s.Custody = custodySplit
		data, err := s.marshal()
		if err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFile(filepath.Join(dir, settingsFile), data, 0o644); err != nil {
			return nil, err
		}
	}
	for _, name := range names {
		if err := os.Remove(filepath.Join(online, name)); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{online, filepath.Join(online, "apps")} {
		if err := atomicfile.SyncDir(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return names, nil
}

// OfflineKeyFiles lists the offline key files still under dir/keys (a
// repository of the old layout, or a split that was interrupted), relative
// to it. A server should hold none.
func OfflineKeyFiles(dir string) ([]string, error) {
	names, err := offlineKeyFiles(filepath.Join(dir, "keys"))
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(names, func(n string) bool { return strings.HasSuffix(n, ".pub") }), nil
}

// offlineKeyFiles lists the offline key files (and .pub files) under a key
// directory, relative to it: root-N.age, targets.age, apps/APP.age.
func offlineKeyFiles(keyDir string) ([]string, error) {
	var out []string
	for _, pattern := range []string{"root-*.age", "targets.age", filepath.Join("apps", "*.age")} {
		for _, suffix := range []string{"", ".pub"} {
			m, err := filepath.Glob(filepath.Join(keyDir, pattern+suffix))
			if err != nil {
				return nil, err
			}
			for _, p := range m {
				rel, err := filepath.Rel(keyDir, p)
				if err != nil {
					return nil, err
				}
				out = append(out, rel)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// copyKey copies a key file durably, or checks that dst already holds the
// same bytes (an interrupted earlier run).
func copyKey(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if have, err := os.ReadFile(dst); err == nil {
		if !bytes.Equal(have, data) {
			return fmt.Errorf("%s already exists with other content: nothing was moved over it", dst)
		}
		return nil
	}
	perm := os.FileMode(0o600)
	if strings.HasSuffix(dst, ".pub") {
		perm = 0o644
	}
	if err := atomicfile.WriteFile(dst, data, perm); err != nil {
		return err
	}
	back, err := os.ReadFile(dst)
	if err != nil {
		return err
	}
	if !bytes.Equal(back, data) {
		return fmt.Errorf("copy of %s to %s reads back different bytes", src, dst)
	}
	return nil
}

// pinOnSplit writes the repository's root to the pinned copy in offline,
// unless one is there: the split runs where every key still is, so what
// REPO holds then is what its owner trusts from now on.
func pinOnSplit(dir, offline string) error {
	if _, err := os.Stat(PinnedRootFile(offline)); err == nil {
		return nil
	}
	root, err := readRoot(dir)
	if err != nil {
		return err
	}
	data, err := currentRootBytes(dir, root)
	if err != nil {
		return err
	}
	return writePin(PinnedRootFile(offline), data)
}
