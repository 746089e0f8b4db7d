package trust

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferry-updates/ferry/internal/atomicfile"
	"github.com/ferry-updates/ferry/internal/safename"
)

// RoleFileName is the name of role's metadata on a mirror ("ROLE.json",
// prefixed "V." with consistent snapshots), handed to a Source as one
// escaped URL path segment: bytes outside [A-Za-z0-9._~-] are
// percent-encoded (upper-case hex, as url.PathEscape does), so "/", "",
// NUL and "%" never appear literally. It is the name a repository must
// serve, not a local file name: DirStore names its files with
// internal/safename, which also survives case-insensitive and Windows file
// systems. The empty name is refused. RoleFromFileName inverts it.
func RoleFileName(role string) (string, error) {
	if role == "" {
		return "", errors.New("empty role name")
	}
	var b strings.Builder
	for i := 0; i < len(role); i++ {
		c := role[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	name := b.String() + ".json"
	if !filepath.IsLocal(name) || filepath.Base(name) != name || strings.ContainsAny(name, "/\\\x00") {
		return "", fmt.Errorf("role name %q cannot be stored as a file", role)
	}
	return name, nil
}

// RoleFromFileName returns the role name that RoleFileName maps to name.
func RoleFromFileName(name string) (string, error) {
	base, ok := strings.CutSuffix(name, ".json")
	if !ok {
		return "", fmt.Errorf("file name %q does not end in .json", name)
	}
	role, err := url.PathUnescape(base)
	if err != nil {
		return "", fmt.Errorf("file name %q: %w", name, err)
	}
	if again, err := RoleFileName(role); err != nil || again != name {
		return "", fmt.Errorf("file name %q is not a canonical role file name", name)
	}
	return role, nil
}

// DirStore returns a Store keeping metadata in dir, one file per key: the
// key (a role name, or "N.root" for an intermediate root) encoded by
// internal/safename, plus ".json". So top-level roles are root.json,
// timestamp.json, snapshot.json and targets.json, intermediate roots
// 2.root.json, 3.root.json and so on, and no other key can
// share a file with them, even on a case-insensitive file system (a
// delegated role "Timestamp" is %54imestamp.json) or on Windows ("CON" and
// "con" are %43%4F%4E.json and %63on.json). Files are written atomically
// with mode 0600; dir is created with mode 0700 if missing.
func DirStore(dir string) Store { return dirStore{dir} }

type dirStore struct{ dir string }

// storeFileName is DirStore's file name for key.
func storeFileName(key string) (string, error) { return safename.File(key, ".json") }

func (s dirStore) Load(role string) ([]byte, error) {
	name, err := storeFileName(role)
	if err != nil {
		return nil, fmt.Errorf("load %w: %w", err, os.ErrNotExist)
	}
	return os.ReadFile(filepath.Join(s.dir, name))
}

func (s dirStore) Save(role string, data []byte) error {
	name, err := storeFileName(role)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("save %s: %w", role, err)
	}
	return atomicfile.WriteFile(filepath.Join(s.dir, name), data, 0o600)
}
