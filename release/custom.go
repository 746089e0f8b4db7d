package release

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ferry-updates/ferry/internal/strictjson"
)

// MaxCustomLength bounds the signed custom metadata of a target (bytes).
// It fits a manifest of MaxManifestFiles files with the longest names.
const MaxCustomLength = 16384

// MaxManifestFiles bounds the number of files one release manifest lists.
const MaxManifestFiles = 64

// Custom is the ferry member of a target's signed custom metadata.
//
// Files is the release manifest (R48): every file of the release (same
// application, version and platform), itself included, by file name, with
// its sha256 in lower-case hex. It is nil for a target published before
// manifests. Custom holds a map, so compare values with Equal.
type Custom struct {
	App      string            `json:"app"`
	Version  string            `json:"version"`
	Platform string            `json:"platform"` // OS/ARCH
	Kind     string            `json:"kind"`
	Files    map[string]string `json:"files,omitempty"` // FILE -> sha256 hex
}

// Equal reports whether c and d are the same metadata (a nil and an empty
// Files are the same: neither has a manifest).
func (c Custom) Equal(d Custom) bool {
	if c.App != d.App || c.Version != d.Version || c.Platform != d.Platform || c.Kind != d.Kind || len(c.Files) != len(d.Files) {
		return false
	}
	for name, sum := range c.Files {
		if other, ok := d.Files[name]; !ok || other != sum {
			return false
		}
	}
	return true
}

// ParseCustom parses and checks the signed custom metadata of a target:
// at most MaxCustomLength bytes of one JSON object with a "ferry" object
// whose four members are present, strings, and valid, and whose optional
// "files" member, if present, is a non-empty object of at most
// MaxManifestFiles valid file names, each with a string of 64 lower-case
// hex digits. Member names are
// matched exactly, and an object with a member twice is refused, so that
// no two readers can see different values in the same signed bytes.
func ParseCustom(b []byte) (Custom, error) {
	c, err := parseCustom(b)
	if err != nil {
		return Custom{}, fmt.Errorf("custom metadata: %w", err)
	}
	return c, nil
}

func parseCustom(b []byte) (Custom, error) {
	if len(b) > MaxCustomLength {
		return Custom{}, fmt.Errorf("%d bytes, more than %d", len(b), MaxCustomLength)
	}
	doc, err := strictjson.Object(b)
	if err != nil {
		return Custom{}, err
	}
	raw, ok := doc["ferry"]
	if !ok {
		return Custom{}, errors.New(`no "ferry" object`)
	}
	f, err := strictjson.Object(raw)
	if err != nil {
		return Custom{}, fmt.Errorf("ferry: %w", err)
	}
	var c Custom
	for _, m := range []struct {
		name string
		v    *string
	}{{"app", &c.App}, {"version", &c.Version}, {"platform", &c.Platform}, {"kind", &c.Kind}} {
		s, err := strictjson.String(f[m.name])
		if err != nil {
			return Custom{}, fmt.Errorf("ferry.%s: missing or not a string", m.name)
		}
		*m.v = s
	}
	if raw, ok := f["files"]; ok {
		if c.Files, err = parseFiles(raw); err != nil {
			return Custom{}, fmt.Errorf("ferry.files: %w", err)
		}
	}
	if err := c.check(); err != nil {
		return Custom{}, err
	}
	return c, nil
}

// parseFiles parses the manifest member: a non-empty object of strings.
// Names and digests are checked by Custom.check.
func parseFiles(raw json.RawMessage) (map[string]string, error) {
	m, err := strictjson.Object(raw)
	if err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, errors.New("empty; a manifest lists at least the file itself")
	}
	files := make(map[string]string, len(m))
	for name, v := range m {
		s, err := strictjson.String(v)
		if err != nil {
			return nil, fmt.Errorf("%.140q: not a string", name)
		}
		files[name] = s
	}
	return files, nil
}

// Check reports whether every field of c is valid.
func (c Custom) Check() error {
	if err := c.check(); err != nil {
		return fmt.Errorf("custom metadata: %w", err)
	}
	return nil
}

func (c Custom) check() error {
	for _, err := range []error{ValidApp(c.App), ValidVersion(c.Version), ValidPlatform(c.Platform), ValidKind(c.Kind)} {
		if err != nil {
			return err
		}
	}
	return checkFiles(c.Files)
}

// checkFiles checks a manifest: at most MaxManifestFiles valid file names,
// each with a sha256 digest in lower-case hex.
func checkFiles(files map[string]string) error {
	if len(files) > MaxManifestFiles {
		return fmt.Errorf("manifest of %d files, more than %d", len(files), MaxManifestFiles)
	}
	for name, sum := range files {
		if err := ValidFile(name); err != nil {
			return fmt.Errorf("manifest: %w", err)
		}
		if !validSHA256(sum) {
			return fmt.Errorf("manifest: file %s: sha256 %.70q is not 64 lower-case hex digits", name, sum)
		}
	}
	return nil
}

// validSHA256 reports whether s is 64 lower-case hex digits.
func validSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// Marshal returns c as the custom field of a target,
// {"ferry":{"app":..,"version":..,"platform":..,"kind":..,"files":{..}}}
// ("files" only when c has a manifest, its names sorted), after checking
// it and that the result is at most MaxCustomLength bytes.
func (c Custom) Marshal() ([]byte, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(struct {
		Ferry Custom `json:"ferry"`
	}{c})
	if err != nil {
		return nil, err
	}
	if len(b) > MaxCustomLength {
		return nil, fmt.Errorf("custom metadata: %d bytes, more than %d", len(b), MaxCustomLength)
	}
	return b, nil
}

// Matches reports whether c describes the target at p: same application,
// version and platform.
func (c Custom) Matches(p Path) error {
	if c.App != p.App || c.Version != p.Version || c.Platform != p.Platform {
		return fmt.Errorf("signed custom metadata (%s %s %s) disagrees with the path %s", c.App, c.Version, c.Platform, p)
	}
	return nil
}
