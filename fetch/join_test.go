package fetch

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// TestJoin_R29: names from metadata never move a URL off the configured
// base: not to another host, another scheme or above the base path.
func TestJoin_R29(t *testing.T) {
	const base = "https://updates.example.com/repo/metadata"
	tests := []struct {
		name, want string
	}{
		{"timestamp.json", base + "/timestamp.json"},
		{"3.hello.json", base + "/3.hello.json"},
		{"hello/1.0.0/linux-amd64/ab.hello", base + "/hello/1.0.0/linux-amd64/ab.hello"},
		{"a b", base + "/a%20b"},
		{"%2e%2e", base + "/%252e%252e"},
		{"x?admin=1", base + "/x%3Fadmin=1"},
		{"x#frag", base + "/x%23frag"},
		{"https:", base + "/https:"},
		{"https:%2F%2Fevil.example", base + "/https:%252F%252Fevil.example"},
		{"@evil.example", base + "/@evil.example"},
		{`..\..\x`, base + `/..%5C..%5Cx`},
		{"../x", ""},
		{"a/../../x", ""},
		{"./x", ""},
		{"/abs", ""},
		{"//evil.example/x", ""},
		{"https://evil.example/x", ""},
		{"", ""},
		{"a//b", ""},
		{"a\x00b", ""},
	}
	for _, tt := range tests {
		got, err := Join(base, tt.name, false)
		if tt.want == "" {
			if !errors.Is(err, ErrRefused) {
				t.Errorf("Join(%q) = %q, %v; want ErrRefused", tt.name, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Join(%q) = %q, %v; want %q", tt.name, got, err, tt.want)
			continue
		}
		u, err := url.Parse(got)
		if err != nil || u.Host != "updates.example.com" || u.Scheme != "https" || u.RawQuery != "" || u.Fragment != "" ||
			!strings.HasPrefix(u.Path, "/repo/metadata/") || strings.Contains(u.Path, "/../") {
			t.Errorf("Join(%q) = %q leaves the base", tt.name, got)
		}
	}
	for _, b := range []string{"http://updates.example.com/", "file:///srv/repo", "https://h/x?q=1"} {
		if _, err := Join(b, "x", true); !errors.Is(err, ErrRefused) {
			t.Errorf("base %q accepted: %v", b, err)
		}
	}
	if got, err := Join("http://127.0.0.1:8080/", "x", true); err != nil || got != "http://127.0.0.1:8080/x" {
		t.Errorf("loopback base: %q, %v", got, err)
	}
}
