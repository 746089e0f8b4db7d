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

// TestJoinEscaped_R24: an already-escaped segment is appended as it is, and
// anything that is not exactly one segment is refused (R24, R29).
func TestJoinEscaped_R24(t *testing.T) {
	const base = "https://updates.example.com/repo/metadata/"
	tests := []struct {
		seg  string
		want string // "" means refused
	}{
		{"timestamp.json", base + "timestamp.json"},
		{"3.root.json", base + "3.root.json"},
		{"2.odd%2Fro%25le.json", base + "2.odd%2Fro%25le.json"},
		{"1.a@b:c.json", base + "1.a@b:c.json"},
		{"...json", base + "...json"},
		{"", ""},
		{".", ""},
		{"..", ""},
		{"%2e%2E", ""},
		{"%2e", ""},
		{"a/b", ""},
		{"a?b", ""},
		{"a#b", ""},
		{`a\b`, ""},
		{"a\x00b", ""},
		{"a b", ""},
		{"a%", ""},
		{"a%2", ""},
		{"a%zz", ""},
		{"héllo", ""},
	}
	for _, tt := range tests {
		got, err := JoinEscaped(base, tt.seg, false)
		if tt.want == "" {
			if !errors.Is(err, ErrRefused) {
				t.Errorf("JoinEscaped(%q) = %q, %v; want ErrRefused", tt.seg, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("JoinEscaped(%q) = %q, %v; want %q", tt.seg, got, err, tt.want)
		}
	}
	if _, err := JoinEscaped("http://updates.example.com/", "x", false); !errors.Is(err, ErrRefused) {
		t.Errorf("plain http base accepted: %v", err)
	}
}
