package trust

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// RoleFileName is the name of role's metadata on a mirror ("ROLE.json",
// prefixed "V." with consistent snapshots), handed to a Source as one
// escaped URL path segment: bytes outside [A-Za-z0-9._~-] are
// percent-encoded (upper-case hex, as url.PathEscape does), so "/", "",
// NUL and "%" never appear literally. It is the name a repository must
// serve, not a local file name: a directory store (internal/metastore)
// names its files with internal/safename, which also survives case-insensitive and Windows file
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
