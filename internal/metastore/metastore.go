// Package metastore keeps trusted TUF metadata in a directory: it is the
// file system side of trust.Store, so that package trust itself does no
// file I/O.
//
// Each key (a role name, or "N.root" for an intermediate root) is one file,
// the key encoded by internal/safename plus ".json". So top-level roles are
// root.json, timestamp.json, snapshot.json and targets.json, intermediate
// roots 2.root.json, 3.root.json and so on, and no other key can share a
// file with them, even on a case-insensitive file system (a delegated role
// "Timestamp" is %54imestamp.json) or on Windows ("CON" and "con" are
// %43%4F%4E.json and %63on.json). Files are written through
// internal/atomicfile with mode 0600; the directory is created with mode
// 0700 if missing. A Save that failed may still have replaced its file
// (an error wrapping atomicfile.ErrNotDurable), which trust tolerates:
// trust.New verifies whatever it loads.
package metastore

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ferry-updates/ferry/internal/atomicfile"
	"github.com/ferry-updates/ferry/internal/safename"
	"github.com/ferry-updates/ferry/trust"
)

// Dir returns a trust.Store keeping metadata in dir. The caller checks
// that dir is private (trusted storage, see trust.Config.Store).
func Dir(dir string) trust.Store { return dirStore{dir} }

type dirStore struct{ dir string }

var _ trust.Store = dirStore{}

// FileName is the name of key's file in the directory.
func FileName(key string) (string, error) { return safename.File(key, ".json") }

// Load reads key's file; a key that cannot name a file is missing
// (an error wrapping fs.ErrNotExist), like an absent file.
func (s dirStore) Load(key string) ([]byte, error) {
	name, err := FileName(key)
	if err != nil {
		return nil, fmt.Errorf("load %w: %w", err, os.ErrNotExist)
	}
	return os.ReadFile(filepath.Join(s.dir, name))
}

// Save replaces key's file atomically and durably.
func (s dirStore) Save(key string, data []byte) error {
	name, err := FileName(key)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("save %s: %w", key, err)
	}
	return atomicfile.WriteFile(filepath.Join(s.dir, name), data, 0o600)
}
