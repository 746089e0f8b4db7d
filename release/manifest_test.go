package release

import (
	"strings"
	"testing"
)

const (
	sumA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	sumB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	sumC = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
)

func TestValidChannel(t *testing.T) {
	for _, c := range []string{"stable", "beta", "canary-eu", "a", "b2", strings.Repeat("x", 32)} {
		if err := ValidChannel(c); err != nil {
			t.Errorf("ValidChannel(%q) = %v", c, err)
		}
	}
	for _, c := range []string{"", "Beta", "2beta", "-beta", "beta_1", "beta.1", "bêta", "be ta", strings.Repeat("x", 33)} {
		if err := ValidChannel(c); err == nil || !strings.Contains(err.Error(), "invalid channel") {
			t.Errorf("ValidChannel(%q) = %v, want an invalid channel error", c, err)
		}
	}
}

func TestCustomFiles(t *testing.T) {
	c := Custom{App: "hello", Version: "1.4.2", Platform: "linux/amd64", Kind: "binary",
		Files: map[string]string{"hello": sumA, "hello.sig": sumB}}
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ferry":{"app":"hello","version":"1.4.2","platform":"linux/amd64","kind":"binary","files":{"hello":"` + sumA + `","hello.sig":"` + sumB + `"}}}`
	if string(b) != want {
		t.Fatalf("Marshal = %s\nwant      %s", b, want)
	}
	got, err := ParseCustom(b)
	if err != nil || !got.Equal(c) {
		t.Fatalf("ParseCustom(Marshal) = %+v, %v", got, err)
	}
	// Without a manifest nothing changes: no "files" member, Files nil.
	c.Files = nil
	b, _ = c.Marshal()
	if strings.Contains(string(b), "files") {
		t.Errorf("Marshal without a manifest wrote %s", b)
	}
	if got, err := ParseCustom(b); err != nil || got.Files != nil {
		t.Errorf("ParseCustom without files = %+v, %v", got, err)
	}
	// Equal sees every field and every manifest entry.
	base := Custom{App: "hello", Version: "1.4.2", Platform: "linux/amd64", Kind: "binary", Files: map[string]string{"hello": sumA}}
	for _, other := range []Custom{
		{App: "hello", Version: "1.4.2", Platform: "linux/amd64", Kind: "binary"},
		{App: "hello", Version: "1.4.2", Platform: "linux/amd64", Kind: "binary", Files: map[string]string{"hello": sumB}},
		{App: "hello", Version: "1.4.2", Platform: "linux/amd64", Kind: "binary", Files: map[string]string{"hellO": sumA}},
		{App: "hello", Version: "1.4.2", Platform: "linux/amd64", Kind: "zip", Files: map[string]string{"hello": sumA}},
		{App: "hello", Version: "1.4.3", Platform: "linux/amd64", Kind: "binary", Files: map[string]string{"hello": sumA}},
	} {
		if base.Equal(other) || other.Equal(base) {
			t.Errorf("%+v Equal %+v", base, other)
		}
	}
}

func TestCustomFilesRefused(t *testing.T) {
	head := `{"ferry":{"app":"hello","version":"1.4.2","platform":"linux/amd64","kind":"binary","files":`
	many := "{"
	for i := 0; i <= MaxManifestFiles; i++ {
		if i > 0 {
			many += ","
		}
		many += `"f` + strings.Repeat("x", i) + `":"` + sumA + `"`
	}
	many += "}"
	bad := map[string]string{
		`null`:           "not a JSON object",
		`[]`:             "not a JSON object",
		`{}`:             "empty",
		`{"hello":1}`:    "not a string",
		`{"hello":null}`: "not a string",
		`{"hello":"` + sumA + `","hello":"` + sumA + `"}`: "twice",
		`{"../x":"` + sumA + `"}`:                         "unsafe file name",
		`{"CON":"` + sumA + `"}`:                          "Windows reserves",
		`{"hello":"` + strings.ToUpper(sumA) + `"}`:       "lower-case hex",
		`{"hello":"` + sumA[:63] + `"}`:                   "lower-case hex",
		`{"hello":"` + sumA + `0"}`:                       "lower-case hex",
		many:                                              "more than 64",
	}
	for files, want := range bad {
		in := head + files + "}}"
		if c, err := ParseCustom([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCustom(...files:%.60s) = %+v, %v; want an error containing %q", files, c, err, want)
		}
	}
	c := Custom{App: "hello", Version: "1.4.2", Platform: "linux/amd64", Kind: "binary", Files: map[string]string{"hello": "ABC"}}
	if _, err := c.Marshal(); err == nil {
		t.Error("Marshal of a bad manifest succeeded")
	}
}

func TestCheckManifest(t *testing.T) {
	m := map[string]string{"hello": sumA, "hello.sig": sumB}
	ok := []map[string]FileSig{
		{},
		{"hello": {SHA256: sumA}}, // before manifests
		{"hello": {SHA256: sumA}, "data": {SHA256: sumC}}, // before manifests, several files
		{"hello": {SHA256: sumA, Files: map[string]string{"hello": sumA}}},
		{"hello": {SHA256: sumA, Files: m}, "hello.sig": {SHA256: sumB, Files: map[string]string{"hello.sig": sumB, "hello": sumA}}},
	}
	for i, files := range ok {
		if err := CheckManifest(files); err != nil {
			t.Errorf("case %d: CheckManifest = %v", i, err)
		}
	}
	other := map[string]string{"hello": sumC, "hello.sig": sumB} // another release's manifest
	bad := map[string]struct {
		files map[string]FileSig
		want  string
	}{
		"one file without": {map[string]FileSig{"hello": {SHA256: sumA, Files: m}, "hello.sig": {SHA256: sumB}}, "has none"},
		"other release's file": {map[string]FileSig{"hello": {SHA256: sumC, Files: other}, "hello.sig": {SHA256: sumB, Files: m}},
			"list different files"},
		"digest differs":  {map[string]FileSig{"hello": {SHA256: sumC, Files: m}, "hello.sig": {SHA256: sumB, Files: m}}, "listed sha256"},
		"file missing":    {map[string]FileSig{"hello": {SHA256: sumA, Files: m}}, "hello.sig is listed but not signed"},
		"extra file":      {map[string]FileSig{"hello": {SHA256: sumA, Files: m}, "hello.sig": {SHA256: sumB, Files: m}, "x": {SHA256: sumC, Files: m}}, "x is signed but not listed"},
		"extra, no list":  {map[string]FileSig{"hello": {SHA256: sumA, Files: m}, "hello.sig": {SHA256: sumB, Files: m}, "x": {SHA256: sumC}}, "has none"},
		"one file subset": {map[string]FileSig{"hello": {SHA256: sumA, Files: map[string]string{"hello": sumA}}, "hello.sig": {SHA256: sumB, Files: m}}, "list different files"},
	}
	for name, c := range bad {
		if err := CheckManifest(c.files); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: CheckManifest = %v, want an error containing %q", name, err, c.want)
		}
	}
}
