// Package pkcs11 signs TUF metadata with an ECDSA P-256 key that never
// leaves a PKCS#11 token (an HSM, a smart card, SoftHSM2), through
// github.com/ThalesGroup/crypto11. crypto11 needs cgo, so the signer is
// built only with -tags pkcs11; without the tag this package holds only
// the URI parser and keys.Open says how to get the signer. Importing the
// package in a pkcs11 build registers the "pkcs11:" scheme with keys.Open.
//
// # References (RFC 7512 PKCS#11 URIs)
//
//	pkcs11:token=LABEL;object=KEYLABEL;id=%01?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/ferry/pin
//
// Path attributes (separated by ";"): exactly one of token (token label),
// serial or slot-id selects the token; object (CKA_LABEL) and id (CKA_ID,
// percent-encoded bytes), at least one, select the key pair, which must
// match exactly one; type, if given, must be "private". Query attributes
// (separated by "&"): module-path (required) is the PKCS#11 library;
// pin-source=file:PATH (or a plain path) names a file holding the user
// PIN (a trailing newline is ignored), or pin-value gives it inline
// (visible in process lists: prefer pin-source). Values are
// percent-decoded. Unknown or repeated attributes are errors.
//
// ECDSA is used because crypto11 has no Ed25519; the token signs the
// SHA-256 digest ferry computes, and keys.NewECDSASigner checks every
// signature (see package keys).
package pkcs11

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// Scheme is the reference prefix this package registers.
const Scheme = "pkcs11:"

// maxPINFile bounds a pin-source file.
const maxPINFile = 1024

// URI is a parsed pkcs11: reference.
type URI struct {
	Token, Serial string
	SlotID        *int
	Object        string // CKA_LABEL
	ID            []byte // CKA_ID
	ModulePath    string
	PINValue      string
	PINSource     string // a file path
}

// ParseURI parses a pkcs11: URI (see the package doc).
func ParseURI(s string) (*URI, error) {
	rest, ok := strings.CutPrefix(s, Scheme)
	if !ok {
		return nil, fmt.Errorf("signer %s: want a %s URI", redact(s), Scheme)
	}
	path, query, _ := strings.Cut(rest, "?")
	u := &URI{}
	if err := u.setAll(path, ";", u.setPath); err != nil {
		return nil, fmt.Errorf("signer %s: %w", redact(s), err)
	}
	if err := u.setAll(query, "&", u.setQuery); err != nil {
		return nil, fmt.Errorf("signer %s: %w", redact(s), err)
	}
	if err := u.check(); err != nil {
		return nil, fmt.Errorf("signer %s: %w", redact(s), err)
	}
	return u, nil
}

func (u *URI) setAll(s, sep string, set func(name, value string) error) error {
	if s == "" {
		return nil
	}
	seen := map[string]bool{}
	for _, attr := range strings.Split(s, sep) {
		name, raw, ok := strings.Cut(attr, "=")
		if !ok || name == "" {
			return fmt.Errorf("attribute %q is not NAME=VALUE", attr)
		}
		if seen[name] {
			return fmt.Errorf("attribute %q given twice", name)
		}
		seen[name] = true
		v, err := url.PathUnescape(raw)
		if err != nil {
			return fmt.Errorf("attribute %q: %w", name, err)
		}
		if err := set(name, v); err != nil {
			return err
		}
	}
	return nil
}

func (u *URI) setPath(name, v string) error {
	switch name {
	case "token":
		u.Token = v
	case "serial":
		u.Serial = v
	case "slot-id":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("slot-id %q: want a number", v)
		}
		u.SlotID = &n
	case "object":
		u.Object = v
	case "id":
		u.ID = []byte(v)
	case "type":
		if v != "private" {
			return fmt.Errorf("type %q: want private (the signing key)", v)
		}
	default:
		return fmt.Errorf("unknown path attribute %q (want token, serial, slot-id, object, id, type)", name)
	}
	return nil
}

func (u *URI) setQuery(name, v string) error {
	switch name {
	case "module-path":
		u.ModulePath = v
	case "pin-value":
		u.PINValue = v
	case "pin-source":
		u.PINSource = strings.TrimPrefix(v, "file:")
	default:
		return fmt.Errorf("unknown query attribute %q (want module-path, pin-source, pin-value)", name)
	}
	return nil
}

func (u *URI) check() error {
	n := 0
	for _, set := range []bool{u.Token != "", u.Serial != "", u.SlotID != nil} {
		if set {
			n++
		}
	}
	switch {
	case n != 1:
		return errors.New("give exactly one of token, serial or slot-id to select the token")
	case u.Object == "" && len(u.ID) == 0:
		return errors.New("give object or id to select the key")
	case u.ModulePath == "":
		return errors.New("no module-path (the PKCS#11 library, e.g. module-path=/usr/lib/softhsm/libsofthsm2.so)")
	case u.PINValue != "" && u.PINSource != "":
		return errors.New("give pin-source or pin-value, not both")
	}
	return nil
}

// PIN returns the user PIN from pin-value or the pin-source file, or ""
// when the URI gives none (a token without login).
func (u *URI) PIN() (string, error) {
	if u.PINSource == "" {
		return u.PINValue, nil
	}
	f, err := os.Open(u.PINSource)
	if err != nil {
		return "", fmt.Errorf("read pin-source: %w", err)
	}
	defer f.Close()
	b := make([]byte, maxPINFile+1)
	n, err := f.Read(b)
	if err != nil && n == 0 {
		return "", fmt.Errorf("read pin-source %s: %w", u.PINSource, err)
	}
	if n > maxPINFile {
		return "", fmt.Errorf("pin-source %s: larger than %d bytes", u.PINSource, maxPINFile)
	}
	pin := strings.TrimRight(string(b[:n]), "\r\n")
	if pin == "" {
		return "", fmt.Errorf("pin-source %s is empty", u.PINSource)
	}
	return pin, nil
}

// redact hides a pin-value so that errors never show the PIN.
func redact(s string) string {
	i := strings.Index(s, "pin-value=")
	if i < 0 {
		return s
	}
	j := strings.IndexByte(s[i:], '&')
	if j < 0 {
		return s[:i] + "pin-value=REDACTED"
	}
	return s[:i] + "pin-value=REDACTED" + s[i+j:]
}

// String returns the URI's reference for messages, without any PIN.
func (u *URI) String() string {
	var p []string
	switch {
	case u.Token != "":
		p = append(p, "token="+url.PathEscape(u.Token))
	case u.Serial != "":
		p = append(p, "serial="+url.PathEscape(u.Serial))
	case u.SlotID != nil:
		p = append(p, "slot-id="+strconv.Itoa(*u.SlotID))
	}
	if u.Object != "" {
		p = append(p, "object="+url.PathEscape(u.Object))
	}
	if len(u.ID) > 0 {
		p = append(p, "id="+pctEncode(u.ID))
	}
	return Scheme + strings.Join(p, ";")
}

func pctEncode(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		fmt.Fprintf(&sb, "%%%02x", c)
	}
	return sb.String()
}
