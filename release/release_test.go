package release

import (
	"strings"
	"testing"
)

func TestValidVersion(t *testing.T) {
	good := []string{"0.0.0", "1.4.2", "1.10.0", "2.0.0-rc.1", "1.0.0-alpha", "1.0.0-alpha.beta.1", "1.0.0-0.3.7",
		"1.0.0-x-y-z.--", "999999999999999999999.0.0"}
	for _, v := range good {
		if err := ValidVersion(v); err != nil {
			t.Errorf("ValidVersion(%q) = %v", v, err)
		}
	}
	bad := map[string]string{
		"":               "semver",
		"1":              "semver",
		"1.0":            "semver",
		"v1":             "leading v",
		"v1.0.0":         "leading v",
		"1.0.0+build":    "+build",
		"1.1.0+rebuild":  "+build",
		"1.0.0-rc.1+b.2": "+build",
		"01.0.0":         "semver",
		"1.02.0":         "semver",
		"1.0.0-01":       "semver",
		"1.0.0-":         "semver",
		"1.0.0-a..b":     "semver",
		"1.0.0-rc_1":     "semver",
		" 1.0.0":         "semver",
		"1.0.0\n":        "semver",
		"1.0.0/../x":     "semver",
		"1.0.0." + "0":   "semver",
		"1.0.0-" + strings.Repeat("a", MaxVersionLength): "longer than",
	}
	for v, want := range bad {
		err := ValidVersion(v)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidVersion(%q) = %v, want an error containing %q", v, err, want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	order := []string{"0.9.9", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0", "10.0.0"}
	for i, a := range order {
		for j, b := range order {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := CompareVersions(a, b); got != want {
				t.Errorf("CompareVersions(%s, %s) = %d, want %d", a, b, got, want)
			}
		}
	}
	if CompareVersions("1.0.0+x", "0.0.1") != -1 || CompareVersions("0.0.1", "v9") != 1 || CompareVersions("x", "y") != 0 {
		t.Error("an invalid version must sort below every valid one")
	}
	if !Prerelease("1.0.0-rc.1") || Prerelease("1.0.0") {
		t.Error("Prerelease")
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		name  string
		check func(string) error
		good  []string
		bad   []string
	}{
		{"app", ValidApp,
			[]string{"hello", "a", "my-app", "app.v2", "x_y", "0day", strings.Repeat("a", MaxAppLength), "console", "com10", "lpt"},
			[]string{"", "Hello", "-x", ".x", "_x", "x.", "a/b", "a b", "root", "targets", "snapshot", "timestamp",
				"con", "nul", "aux", "prn", "com1", "lpt9", "nul.app", "a+b", "é", strings.Repeat("a", MaxAppLength+1)}},
		{"file", ValidFile,
			[]string{"hello", "hello.exe", "Hello_1.2+x-y.tar.gz", "README", strings.Repeat("F", MaxFileLength), "CONSOLE"},
			[]string{"", ".", "..", ".hidden", "-x", "+x", "a b", "a/b", `a\b`, "a:b", "x.", "x\x00", "CON", "con.txt",
				"Nul.tar.gz", "COM3", "LPT1.exe", "a*b", strings.Repeat("F", MaxFileLength+1)}},
		{"platform", ValidPlatform,
			[]string{"linux/amd64", "darwin/arm64", "plan10/z80", "a/b"},
			[]string{"", "linux", "linux-amd64", "linux/", "/amd64", "Linux/amd64", "linux/amd64/x", "lin ux/amd64",
				"linux/amd_64", strings.Repeat("a", 17) + "/amd64"}},
		{"kind", ValidKind, Kinds(), []string{"", "exe", "tar", "TAR.GZ", "binary "}},
		{"known platform", KnownPlatform, []string{"linux/amd64", "windows/arm64", "wasip1/wasm"}, []string{"plan10/z80", "linux/amd65"}},
	}
	for _, tt := range tests {
		for _, s := range tt.good {
			if err := tt.check(s); err != nil {
				t.Errorf("%s %q: %v", tt.name, s, err)
			}
		}
		for _, s := range tt.bad {
			if err := tt.check(s); err == nil {
				t.Errorf("%s %q accepted", tt.name, s)
			}
		}
	}
}

func TestInferKind(t *testing.T) {
	for file, want := range map[string]string{"hello": KindBinary, "hello.exe": KindBinary, "a.tar.gz": KindTarGz,
		"a.tgz": KindTarGz, "a.tar.zst": KindTarZst, "a.tzst": KindTarZst, "a.zip": KindZip, "a.gz": KindBinary} {
		if got := InferKind(file); got != want {
			t.Errorf("InferKind(%q) = %q, want %q", file, got, want)
		}
	}
}

func TestParsePath(t *testing.T) {
	p, err := ParsePath("hello/1.4.2/linux-amd64/hello.tar.gz")
	want := Path{App: "hello", Version: "1.4.2", Platform: "linux/amd64", File: "hello.tar.gz"}
	if err != nil || p != want {
		t.Fatalf("ParsePath = %+v, %v; want %+v", p, err, want)
	}
	if p.String() != "hello/1.4.2/linux-amd64/hello.tar.gz" || p.Dir() != "hello/1.4.2/linux-amd64" {
		t.Errorf("String %q, Dir %q", p.String(), p.Dir())
	}
	bad := map[string]string{
		"hello/1.4.2/hello":                   "APP/VERSION",
		"hello/1.4.2/linux-amd64/x/hello":     "APP/VERSION",
		"/hello/1.4.2/linux-amd64/hello":      "APP/VERSION",
		"Hello/1.4.2/linux-amd64/hello":       "app name",
		"hello/v1.4.2/linux-amd64/hello":      "leading v",
		"hello/1.1.0+rebuild/linux-amd64/h":   "+build",
		"hello/1.4/linux-amd64/hello":         "semver",
		"hello/1.4.2/linux/hello":             "OS-ARCH",
		"hello/1.4.2/linux-amd64-x/hello":     "OS-ARCH",
		"hello/1.4.2/linux_amd64/hello":       "OS-ARCH",
		"hello/1.4.2/linux-amd64/..":          "file name",
		"hello/1.4.2/linux-amd64/":            "file name",
		`hello/1.4.2/linux-amd64/..\x`:        "file name",
		"hello/1.4.2/linux-amd64/hello world": "file name",
		"hello/1.4.2/linux-amd64/CON":         "reserves",
		"root/1.4.2/linux-amd64/hello":        "top-level",
	}
	for s, want := range bad {
		if p, err := ParsePath(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePath(%q) = %+v, %v; want an error containing %q", s, p, err, want)
		}
	}
	if err := (Path{App: "hello", Version: "1.0", Platform: "linux/amd64", File: "hello"}).Check(); err == nil {
		t.Error("Check accepted version 1.0")
	}
}

func TestPattern(t *testing.T) {
	if got := Pattern("hello"); got != "hello/*/*/*" {
		t.Errorf("Pattern = %q", got)
	}
	for pattern, want := range map[string]string{"hello/*/*/*": "hello", "hello/*": "hello", "my.app/1.0.0/*/*": "my.app"} {
		if app, ok := AppOfPattern(pattern); !ok || app != want {
			t.Errorf("AppOfPattern(%q) = %q, %v; want %q", pattern, app, ok, want)
		}
	}
	for _, pattern := range []string{"*", "*/*/*/*", "hel*/*/*/*", "hello", "", "Hello/*", "root/*/*/*"} {
		if app, ok := AppOfPattern(pattern); ok {
			t.Errorf("AppOfPattern(%q) = %q, want none", pattern, app)
		}
	}
}

func TestCustom(t *testing.T) {
	c := Custom{App: "hello", Version: "1.4.2", Platform: "linux/amd64", Kind: KindBinary}
	b, err := c.Marshal()
	want := `{"ferry":{"app":"hello","version":"1.4.2","platform":"linux/amd64","kind":"binary"}}`
	if err != nil || string(b) != want {
		t.Fatalf("Marshal = %s, %v; want %s", b, err, want)
	}
	got, err := ParseCustom(b)
	if err != nil || !got.Equal(c) {
		t.Fatalf("ParseCustom = %+v, %v", got, err)
	}
	// Unknown members, outside "ferry" and inside it, are ignored.
	got, err = ParseCustom([]byte(`{"other":{"x":1},"ferry":{"deltas":[1,2],"kind":"binary","platform":"linux/amd64","version":"1.4.2","app":"hello"}}`))
	if err != nil || !got.Equal(c) {
		t.Fatalf("ParseCustom with extra members = %+v, %v", got, err)
	}
	// Names match exactly: "App" is another, unknown member, not "app".
	got, err = ParseCustom([]byte(`{"ferry":{"App":"evil","app":"hello","version":"1.4.2","platform":"linux/amd64","kind":"binary"}}`))
	if err != nil || !got.Equal(c) {
		t.Fatalf("ParseCustom with a member differing in case = %+v, %v", got, err)
	}
	p, _ := ParsePath("hello/1.4.2/linux-amd64/hello")
	if err := c.Matches(p); err != nil {
		t.Errorf("Matches: %v", err)
	}
	for _, other := range []string{"evil/1.4.2/linux-amd64/hello", "hello/1.4.3/linux-amd64/hello", "hello/1.4.2/darwin-arm64/hello"} {
		q, _ := ParsePath(other)
		if err := c.Matches(q); err == nil || !strings.Contains(err.Error(), "disagrees") {
			t.Errorf("Matches(%s) = %v", other, err)
		}
	}
	if _, err := (Custom{App: "hello", Version: "1.0.0+b", Platform: "linux/amd64", Kind: "binary"}).Marshal(); err == nil {
		t.Error("Marshal of an invalid Custom succeeded")
	}
}

func TestParseCustomRefuses(t *testing.T) {
	f := func(app, version, platform, kind string) string {
		return `{"ferry":{"app":"` + app + `","version":"` + version + `","platform":"` + platform + `","kind":"` + kind + `"}}`
	}
	bad := map[string]string{
		"":                          "not a JSON object",
		"null":                      "not a JSON object",
		"[]":                        "not a JSON object",
		`{"other":1}`:               `no "ferry"`,
		`{"ferry":null}`:            "not a JSON object",
		`{"ferry":{"app":1}}`:       "ferry.app",
		`{"ferry":{"app":"hello"}}`: "ferry.version",
		`{"ferry":{"app":null,"version":"1.0.0","platform":"linux/amd64","kind":"binary"}}`:                                       "ferry.app",
		f("hello", "1.0.0+rebuild", "linux/amd64", "binary"):                                                                      "+build",
		f("hello", "v1.0.0", "linux/amd64", "binary"):                                                                             "leading v",
		f("hello", "1.0.0", "linux-amd64", "binary"):                                                                              "platform",
		f("hello", "1.0.0", "linux/amd64", "exe"):                                                                                 "kind",
		f("Hello", "1.0.0", "linux/amd64", "binary"):                                                                              "app name",
		f("hello", "1.0.0", "linux/amd64", "binary") + " {}":                                                                      "after",
		`{"ferry":{"app":"evil","app":"hello","version":"1.0.0","platform":"linux/amd64","kind":"binary"}}`:                       "twice",
		`{"ferry":{"app":"hello","version":"1.0.0","platform":"linux/amd64","kind":"binary"},"ferry":{}}`:                         "twice",
		`{"ferry":{"APP":"hello","version":"1.0.0","platform":"linux/amd64","kind":"binary"}}`:                                    "ferry.app",
		`{"ferry":` + f("hello", "1.0.0", "linux/amd64", "binary")[9:] + `,"pad":"` + strings.Repeat("x", MaxCustomLength) + `"}`: "more than",
	}
	for in, want := range bad {
		if c, err := ParseCustom([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCustom(%.80q) = %+v, %v; want an error containing %q", in, c, err, want)
		}
	}
}
