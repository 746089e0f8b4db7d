// Package safename is the one place in ferry where a name from signed
// metadata (a TUF role name, a target path) becomes a local file name.
//
// Encode maps every non-empty string to one file name element that is the
// same file on no other name's behalf, on every file system ferry writes
// to (Linux, macOS, Windows; case-sensitive or not):
//
//   - Only the bytes a-z, 0-9, '-', '_' and '.' stay as they are; every
//     other byte, upper-case letters included, becomes %XX (upper-case
//     hex). So "/", "\", ":", NUL and "%" never appear literally, the result
//     is pure ASCII (no Unicode normalization can touch it), and two names
//     that differ only in case ("Timestamp", "timestamp") stay different on
//     a case-insensitive file system: case folding changes only the hex
//     digits after a '%', which decode the same either way.
//   - A leading '.' is escaped ("." and ".." and hidden files never come
//     out), and so is a trailing '.' (Windows drops trailing dots and
//     spaces, so "a." would open "a"). '~' is escaped, so no name looks like
//     a Windows 8.3 short name ("PROGRA~1").
//   - When the part before the first '.' is a name Windows reserves for a
//     device (con, prn, aux, nul, com0-com9, lpt0-lpt9, in any case, with
//     or without an extension), its first byte is escaped: "con.json"
//     becomes "%63on.json".
//
// File appends an extension such as ".json" (which keeps every property
// above) and bounds the result to MaxLen bytes. Decode inverts Encode, and
// accepts only the canonical encoding.
package safename

import (
	"errors"
	"fmt"
	"strings"
)

// MaxLen is the longest file name File returns: the limit of common file
// systems (ext4, APFS, NTFS) on one path element.
const MaxLen = 255

// Encode returns s as one safe file name element (see the package doc).
// The empty string is refused.
func Encode(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty name")
	}
	reserved := reservedStem(s)
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keep(c) && !(c == '.' && (i == 0 || i == len(s)-1)) && !(i == 0 && reserved) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String(), nil
}

// File returns Encode(s) + ext, refusing a result longer than MaxLen. ext
// is a constant of the caller's, empty or "." followed by bytes that
// Encode keeps (".json").
func File(s, ext string) (string, error) {
	enc, err := Encode(s)
	if err != nil {
		return "", err
	}
	name := enc + ext
	if len(name) > MaxLen {
		return "", fmt.Errorf("name %.40q... is too long for a file name (%d bytes encoded, at most %d)", s, len(name), MaxLen)
	}
	return name, nil
}

// Decode returns the string that File(s, ext) maps to name, or an error if
// name is not exactly such a result.
func Decode(name, ext string) (string, error) {
	enc, ok := strings.CutSuffix(name, ext)
	if !ok {
		return "", fmt.Errorf("file name %q does not end in %q", name, ext)
	}
	var b strings.Builder
	for i := 0; i < len(enc); i++ {
		if enc[i] != '%' {
			b.WriteByte(enc[i])
			continue
		}
		if i+2 >= len(enc) {
			return "", fmt.Errorf("file name %q: truncated escape", name)
		}
		hi, lo := unhex(enc[i+1]), unhex(enc[i+2])
		if hi < 0 || lo < 0 {
			return "", fmt.Errorf("file name %q: bad escape %q", name, enc[i:i+3])
		}
		b.WriteByte(byte(hi<<4 | lo))
		i += 2
	}
	s := b.String()
	if again, err := File(s, ext); err != nil || again != name {
		return "", fmt.Errorf("file name %q is not a canonical encoded name", name)
	}
	return s, nil
}

func keep(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// reservedStem reports whether the part of s before its first '.', in any
// case, is a device name Windows reserves.
func reservedStem(s string) bool {
	stem, _, _ := strings.Cut(s, ".")
	return IsReserved(stem)
}

// IsReserved reports whether name, in any case, is one of the device
// names Windows reserves (CON, PRN, AUX, NUL, COM0-COM9, LPT0-LPT9).
// Trailing spaces do not make a device name safe on Windows, so they are
// ignored.
func IsReserved(name string) bool {
	name = strings.ToLower(strings.TrimRight(name, " "))
	switch name {
	case "con", "prn", "aux", "nul":
		return true
	}
	if len(name) == 4 && (name[:3] == "com" || name[:3] == "lpt") && '0' <= name[3] && name[3] <= '9' {
		return true
	}
	return false
}
