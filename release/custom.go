package release

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxCustomLength bounds the signed custom metadata of a target (bytes).
const MaxCustomLength = 4096

// Custom is the ferry member of a target's signed custom metadata.
type Custom struct {
	App      string `json:"app"`
	Version  string `json:"version"`
	Platform string `json:"platform"` // OS/ARCH
	Kind     string `json:"kind"`
}

// ParseCustom parses and checks the signed custom metadata of a target:
// at most MaxCustomLength bytes of one JSON object with a "ferry" object
// whose four members are present, strings, and valid. Member names are
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
	doc, err := members(b)
	if err != nil {
		return Custom{}, err
	}
	raw, ok := doc["ferry"]
	if !ok {
		return Custom{}, errors.New(`no "ferry" object`)
	}
	f, err := members(raw)
	if err != nil {
		return Custom{}, fmt.Errorf("ferry: %w", err)
	}
	var c Custom
	for _, m := range []struct {
		name string
		v    *string
	}{{"app", &c.App}, {"version", &c.Version}, {"platform", &c.Platform}, {"kind", &c.Kind}} {
		var s *string
		if err := json.Unmarshal(f[m.name], &s); err != nil || s == nil {
			return Custom{}, fmt.Errorf("ferry.%s: missing or not a string", m.name)
		}
		*m.v = *s
	}
	if err := c.check(); err != nil {
		return Custom{}, err
	}
	return c, nil
}

// members decodes one JSON object into its members, refusing a member
// name that occurs twice and anything after the object.
func members(b []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := t.(string)
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("member %q twice", name)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out[name] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return out, nil
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
	return nil
}

// Marshal returns c as the custom field of a target,
// {"ferry":{"app":..,"version":..,"platform":..,"kind":..}}, after checking it.
func (c Custom) Marshal() ([]byte, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	return json.Marshal(struct {
		Ferry Custom `json:"ferry"`
	}{c})
}

// Matches reports whether c describes the target at p: same application,
// version and platform.
func (c Custom) Matches(p Path) error {
	if c.App != p.App || c.Version != p.Version || c.Platform != p.Platform {
		return fmt.Errorf("signed custom metadata (%s %s %s) disagrees with the path %s", c.App, c.Version, c.Platform, p)
	}
	return nil
}
