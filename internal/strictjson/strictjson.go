// Package strictjson decodes the JSON objects of ferry's signed formats
// strictly: member names are matched exactly by the caller (not ignoring
// case as encoding/json does), a member that occurs twice is refused, and
// nothing may follow the object. So no two readers can see different
// values in the same signed bytes. It is pure and safe for concurrent use.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Object decodes one JSON object into its members, refusing a member name
// that occurs twice and anything after the object.
func Object(b []byte) (map[string]json.RawMessage, error) {
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

// String decodes a JSON string member; null and any other type are refused.
func String(raw json.RawMessage) (string, error) {
	var s *string
	if err := json.Unmarshal(raw, &s); err != nil || s == nil {
		return "", errors.New("not a string")
	}
	return *s, nil
}

// Only checks that every member of m is one of names.
func Only(m map[string]json.RawMessage, names ...string) error {
	for name := range m {
		known := false
		for _, n := range names {
			known = known || n == name
		}
		if !known {
			return fmt.Errorf("unknown member %.40q", name)
		}
	}
	return nil
}

// Uint decodes a JSON number member that is a non-negative integer at most
// max, written as decimal digits without a leading zero: no sign, fraction
// or exponent (TUF's canonical JSON has no floats), no null.
func Uint(raw json.RawMessage, max int) (int, error) {
	s := string(raw)
	ok := s != "" && len(s) <= 18 && (s[0] != '0' || s == "0")
	n := 0
	for i := 0; ok && i < len(s); i++ {
		ok = '0' <= s[i] && s[i] <= '9'
		n = n*10 + int(s[i]-'0')
	}
	if !ok || n > max {
		return 0, fmt.Errorf("%.20s is not an integer 0..%d", s, max)
	}
	return n, nil
}
