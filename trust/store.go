package trust

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferry-updates/ferry/internal/atomicfile"
)

// RoleFileName is the one place role names become file names, both for
// DirStore and for the names of delegated metadata on a mirror
// ("V." + RoleFileName(role), handed to a Source as one escaped URL path
// segment). Bytes outside [A-Za-z0-9._~-] are
// percent-encoded (upper-case hex, as url.PathEscape does), so "/", "\",
// NUL and "%" never appear literally and the result is always one local
// file name. The empty name is refused. RoleFromFileName inverts it.
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

// DirStore returns a Store keeping metadata in dir as root.json,
// timestamp.json, snapshot.json, targets.json and ROLE.json for delegated
// roles (names encoded by RoleFileName). Files are written atomically with
// mode 0600; dir is created with mode 0700 if missing.
func DirStore(dir string) Store { return dirStore{dir} }

type dirStore struct{ dir string }

func (s dirStore) Load(role string) ([]byte, error) {
	name, err := RoleFileName(role)
	if err != nil {
		return nil, fmt.Errorf("load %w: %w", err, os.ErrNotExist)
	}
	return os.ReadFile(filepath.Join(s.dir, name))
}

func (s dirStore) Save(role string, data []byte) error {
	name, err := RoleFileName(role)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("save %s: %w", role, err)
	}
	return atomicfile.WriteFile(filepath.Join(s.dir, name), data, 0o600)
}
