package fetch

import (
	"fmt"
	"net/url"
	"strings"
)

// Join returns the URL of name under base, for names that come from signed
// metadata (role and target names). Each "/"-separated segment of name is
// percent-escaped, so no name can change the host, the scheme, the query or
// climb out of base's path: "../x", "%2e%2e", "https://other/x", "?q" and
// "#f" all stay inside base. Empty, "." and ".." segments are refused.
// base must pass CheckURL with insecureAllowHTTPLoopback set as given.
func Join(base, name string, insecureAllowHTTPLoopback bool) (string, error) {
	u, err := parseBase(base, insecureAllowHTTPLoopback)
	if err != nil {
		return "", err
	}
	segs := strings.Split(name, "/")
	for i, s := range segs {
		if s == "" || s == "." || s == ".." || strings.ContainsRune(s, 0) {
			return "", fmt.Errorf("%w: name %q has an empty, dot or NUL segment", ErrRefused, name)
		}
		segs[i] = url.PathEscape(s)
	}
	return strings.TrimSuffix(u.String(), "/") + "/" + strings.Join(segs, "/"), nil
}

// JoinEscaped returns the URL of segment under base, for a name that is
// already one escaped URL path segment (as package trust hands a Source:
// "timestamp.json", "3.root.json", "2.a%2Fb.json"). The segment is appended
// as it is, never escaped again, and only if CheckSegment accepts it. base
// must pass CheckURL with insecureAllowHTTPLoopback set as given.
func JoinEscaped(base, segment string, insecureAllowHTTPLoopback bool) (string, error) {
	u, err := parseBase(base, insecureAllowHTTPLoopback)
	if err != nil {
		return "", err
	}
	if err := CheckSegment(segment); err != nil {
		return "", err
	}
	return strings.TrimSuffix(u.String(), "/") + "/" + segment, nil
}

// CheckSegment reports whether s is one escaped URL path segment that stays
// where it is put: not empty, only RFC 3986 path characters (unreserved,
// sub-delimiters, ":" and "@") and well-formed %XX escapes, so no "/", "?",
// "#", "\" or NUL; and not "." or ".." once unescaped.
func CheckSegment(s string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: %q is not one escaped path segment: %s", ErrRefused, s, why)
	}
	if s == "" {
		return bad("empty")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("-._~!$&'()*+,;=:@", c) >= 0:
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			i += 2
		default:
			return bad(fmt.Sprintf("byte %q at %d", c, i))
		}
	}
	if u, err := url.PathUnescape(s); err != nil || u == "." || u == ".." {
		return bad("a dot segment")
	}
	return nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// parseBase parses and checks the base URL of Join and JoinEscaped.
func parseBase(base string, insecureAllowHTTPLoopback bool) (*url.URL, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("%w: base %q: %v", ErrRefused, base, err)
	}
	if err := checkURL(u, insecureAllowHTTPLoopback); err != nil {
		return nil, err
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: base %q has a query or fragment", ErrRefused, u.Redacted())
	}
	return u, nil
}
