package release

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/mod/semver"
)

// FuzzParsePath: ParsePath never panics; what it accepts is bounded, made
// only of valid parts, and round-trips through String exactly.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"hello/1.4.2/linux-amd64/hello", "hello/2.0.0-rc.1/darwin-arm64/hello.tar.gz",
		"hello/1.1.0+rebuild/linux-amd64/hello", "hello/v1/linux-amd64/hello", "../1.0.0/linux-amd64/x",
		"hello/1.0.0/linux-amd64/..", "hello/1.0.0/linux-amd64/CON", "a/0.0.0/a-b/c", "hello/1.0.0/linux-amd64-x/h",
		"hello//linux-amd64/hello", "hello/1.0.0/linux-amd64/hello/x"} {
		f.Add(s)
	}
	maxLen := MaxAppLength + MaxVersionLength + 2*maxOSArchLength + 1 + MaxFileLength + 3
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			if p != (Path{}) {
				t.Fatalf("ParsePath(%q) failed but returned %+v", s, p)
			}
			return
		}
		if p.String() != s {
			t.Fatalf("ParsePath(%q).String() = %q", s, p.String())
		}
		if len(s) > maxLen {
			t.Fatalf("accepted %d bytes, bound %d", len(s), maxLen)
		}
		if err := p.Check(); err != nil {
			t.Fatalf("ParsePath(%q) accepted a path Check refuses: %v", s, err)
		}
		q, err := ParsePath(p.String())
		if err != nil || q != p {
			t.Fatalf("round trip of %q: %+v, %v", s, q, err)
		}
		if strings.ContainsAny(p.File, `/\:*?"<>| `) || p.File == "." || p.File == ".." || strings.Contains(p.App, "/") {
			t.Fatalf("unsafe names accepted: %+v", p)
		}
		if ValidVersion(p.Version) != nil || strings.Contains(p.Version, "+") {
			t.Fatalf("version %q accepted", p.Version)
		}
	})
}

// FuzzCustom: ParseCustom never panics, refuses input over the bound, and
// what it accepts is valid, marshals, and parses back to the same value;
// Marshal's output is stable.
func FuzzCustom(f *testing.F) {
	for _, s := range []string{
		`{"ferry":{"app":"hello","version":"1.4.2","platform":"linux/amd64","kind":"binary"}}`,
		`{"other":1,"ferry":{"kind":"zip","platform":"darwin/arm64","version":"2.0.0-rc.1","app":"x","deltas":[]}}`,
		`{"ferry":{"app":"hello","version":"1.1.0+rebuild","platform":"linux/amd64","kind":"binary"}}`,
		`{"ferry":{"app":"a","app":"b","version":"1.0.0","platform":"linux/amd64","kind":"binary"}}`,
		`{"ferry":{"app":"\u0068ello","version":"1.0.0","platform":"linux/amd64","kind":"binary"}}`,
		`{"ferry":{"app":"hello","version":"1.4.2","platform":"linux/amd64","kind":"binary","files":{"hello":"` + sumA + `","b":"` + sumB + `"}}}`,
		`{"ferry":{"app":"hello","version":"1.4.2","platform":"linux/amd64","kind":"binary","files":{}}}`,
		`{"ferry":{"app":"hello","version":"1.4.2","platform":"linux/amd64","kind":"binary","files":{"a":"x","a":"y"}}}`,
		`{"ferry":null}`, `[]`, `{`, `{"ferry":{"app":1}}`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCustom(b)
		if err != nil {
			if !c.Equal(Custom{}) {
				t.Fatalf("ParseCustom failed but returned %+v", c)
			}
			return
		}
		if len(b) > MaxCustomLength {
			t.Fatalf("accepted %d bytes", len(b))
		}
		if err := c.Check(); err != nil {
			t.Fatalf("accepted an invalid Custom %+v: %v", c, err)
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", c, err)
		}
		d, err := ParseCustom(out)
		if err != nil || !d.Equal(c) {
			t.Fatalf("round trip of %+v: %+v, %v", c, d, err)
		}
		again, _ := d.Marshal()
		if !bytes.Equal(again, out) {
			t.Fatalf("Marshal not stable: %s, then %s", out, again)
		}
		p := Path{App: c.App, Version: c.Version, Platform: c.Platform, File: "f"}
		if q, err := ParsePath(p.String()); err != nil || c.Matches(q) != nil {
			t.Fatalf("custom %+v has no matching path: %v", c, err)
		}
	})
}

// FuzzVersion: ValidVersion never panics, accepts only canonical strict
// semver, and CompareVersions is a consistent order on what it accepts.
func FuzzVersion(f *testing.F) {
	f.Add("1.0.0", "1.0.0-rc.1")
	f.Add("1.1.0+rebuild", "1.1.0")
	f.Add("v1", "1.0")
	f.Add("1.10.0", "1.9.0")
	f.Fuzz(func(t *testing.T, a, b string) {
		va, vb := ValidVersion(a) == nil, ValidVersion(b) == nil
		// The rule: canonical semver ("v"+a is its own semver.Canonical)
		// without build metadata, at most MaxVersionLength bytes.
		for _, s := range []string{a, b} {
			canonical := len(s) <= MaxVersionLength && !strings.Contains(s, "+") && semver.IsValid("v"+s) && semver.Canonical("v"+s) == "v"+s
			if (ValidVersion(s) == nil) != canonical {
				t.Fatalf("ValidVersion(%q) = %v, but canonical semver: %v", s, ValidVersion(s), canonical)
			}
		}
		if va && (len(a) > MaxVersionLength || strings.HasPrefix(a, "v") || strings.ContainsAny(a, "+ ")) {
			t.Fatalf("accepted %q", a)
		}
		ab, ba := CompareVersions(a, b), CompareVersions(b, a)
		if ab != -ba {
			t.Fatalf("CompareVersions(%q, %q) = %d but reversed %d", a, b, ab, ba)
		}
		if va && vb && (ab == 0) != (a == b) {
			t.Fatalf("CompareVersions(%q, %q) = %d: equal versions must be equal strings", a, b, ab)
		}
	})
}
