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
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("%w: base %q: %v", ErrRefused, base, err)
	}
	if err := checkURL(u, insecureAllowHTTPLoopback); err != nil {
		return "", err
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%w: base %q has a query or fragment", ErrRefused, u.Redacted())
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
