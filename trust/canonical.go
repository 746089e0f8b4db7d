package trust

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"
)

// canonicalize returns the OLPC canonical JSON form of the JSON value in
// raw, the form TUF signatures are computed over. It is strict where the
// decoder that later reads the same bytes would be lenient: duplicate object
// keys, non-integer numbers, integers outside int64 and invalid UTF-8 are
// errors, so the bytes whose signature is checked and the values that are
// used cannot differ.
func canonicalize(raw []byte) ([]byte, error) {
	if !utf8.Valid(raw) {
		return nil, errors.New("canonical json: invalid utf-8")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out bytes.Buffer
	out.Grow(len(raw))
	if err := canonValue(dec, &out); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("canonical json: trailing data")
	}
	return out.Bytes(), nil
}

func canonValue(dec *json.Decoder, out *bytes.Buffer) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return canonObject(dec, out)
		}
		if v == '[' {
			return canonArray(dec, out)
		}
		return fmt.Errorf("unexpected %q", v)
	case string:
		canonString(v, out)
	case json.Number:
		if _, err := v.Int64(); err != nil {
			return fmt.Errorf("number %.40q is not an int64", v.String())
		}
		out.WriteString(v.String())
	case bool:
		if v {
			out.WriteString("true")
		} else {
			out.WriteString("false")
		}
	case nil:
		out.WriteString("null")
	default:
		return fmt.Errorf("unexpected token %T", tok)
	}
	return nil
}

func canonObject(dec *json.Decoder, out *bytes.Buffer) error {
	members := map[string][]byte{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("object key %v is not a string", tok)
		}
		if _, dup := members[key]; dup {
			return fmt.Errorf("duplicate key %.80q", key)
		}
		var val bytes.Buffer
		if err := canonValue(dec, &val); err != nil {
			return err
		}
		members[key] = val.Bytes()
	}
	if _, err := dec.Token(); err != nil { // '}'
		return err
	}
	keys := make([]string, 0, len(members))
	for k := range members {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			out.WriteByte(',')
		}
		canonString(k, out)
		out.WriteByte(':')
		out.Write(members[k])
	}
	out.WriteByte('}')
	return nil
}

func canonArray(dec *json.Decoder, out *bytes.Buffer) error {
	out.WriteByte('[')
	for i := 0; dec.More(); i++ {
		if i > 0 {
			out.WriteByte(',')
		}
		if err := canonValue(dec, out); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // ']'
		return err
	}
	out.WriteByte(']')
	return nil
}

var canonEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

// canonString writes s as OLPC canonical JSON does: only backslash and
// double quote are escaped.
func canonString(s string, out *bytes.Buffer) {
	out.WriteByte('"')
	canonEscaper.WriteString(out, s)
	out.WriteByte('"')
}
