package safename

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestFile_R24(t *testing.T) {
	tests := []struct{ in, want string }{
		{"hello/1.0.0/linux-amd64/hello", "hello%2F1.0.0%2Flinux-amd64%2Fhello"},
		{"timestamp", "timestamp"},
		{"Timestamp", "%54imestamp"},
		{"ROOT", "%52%4F%4F%54"},
		{"Snapshot.", "%53napshot%2E"},
		{"..", "%2E%2E"},
		{".", "%2E"},
		{".hidden", "%2Ehidden"},
		{"../../etc/passwd", "%2E.%2F..%2Fetc%2Fpasswd"},
		{`C:\x`, "%43%3A%5Cx"},
		{"%2e%2e", "%252e%252e"},
		{"a\x00b", "a%00b"},
		{"a b?c#d", "a%20b%3Fc%23d"},
		{"con", "%63on"},
		{"con.json", "%63on.json"},
		{"nul.tar.gz", "%6Eul.tar.gz"},
		{"com1", "%63om1"},
		{"lpt9.txt", "%6Cpt9.txt"},
		{"CON", "%43%4F%4E"},
		{"console", "console"},
		{"com10", "com10"},
		{"progra~1", "progra%7E1"},
		{"a ", "a%20"},
		{"ü", "%C3%BC"},
	}
	for _, tt := range tests {
		got, err := Encode(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Encode(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			continue
		}
		back, err := Decode(got+".json", ".json")
		if err != nil || back != tt.in {
			t.Errorf("Decode(%q) = %q, %v", got+".json", back, err)
		}
	}
	if _, err := Encode(""); err == nil {
		t.Error("empty name accepted")
	}
	if _, err := File(strings.Repeat("a", MaxLen-4), ".json"); err == nil {
		t.Error("file name longer than MaxLen accepted")
	}
	if _, err := File(strings.Repeat("a", MaxLen-5), ".json"); err != nil {
		t.Errorf("file name of MaxLen refused: %v", err)
	}
	for _, bad := range []string{"A.json", "%2e.json", "%2.json", "%.json", "a.", "con.json", "%41", "a~.json", ".a.json"} {
		if s, err := Decode(bad, ".json"); err == nil {
			t.Errorf("Decode(%q) = %q, want an error (not canonical)", bad, s)
		}
	}
}

// windowsReserved is the list of device names from Microsoft's "Naming
// Files, Paths, and Namespaces", written out here rather than taken from
// the package.
var windowsReserved = strings.Fields("con prn aux nul com0 com1 com2 com3 com4 com5 com6 com7 com8 com9 lpt0 lpt1 lpt2 lpt3 lpt4 lpt5 lpt6 lpt7 lpt8 lpt9")

// checkSafe fails unless name is one local file name element that no
// supported file system reads as something else.
func checkSafe(t *testing.T, in, name string) {
	t.Helper()
	if !filepath.IsLocal(name) || filepath.Base(name) != name || strings.ContainsAny(name, "/\\:\x00") {
		t.Fatalf("%q -> %q is not one local file name", in, name)
	}
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
		t.Fatalf("%q -> %q is hidden or has a trailing dot or space", in, name)
	}
	stem, _, _ := strings.Cut(strings.ToLower(name), ".")
	for _, r := range windowsReserved {
		if stem == r {
			t.Fatalf("%q -> %q is a Windows device name", in, name)
		}
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 0x80 || 'A' <= c && c <= 'Z' && (i < 1 || name[i-1] != '%') && (i < 2 || name[i-2] != '%') || c == '~' {
			t.Fatalf("%q -> %q has byte %q outside the kept set", in, name, c)
		}
	}
}

// FuzzFile_R24: every name encodes to a safe file name that decodes back,
// and two different names never share a file, even on a case-insensitive
// file system.
func FuzzFile_R24(f *testing.F) {
	for _, s := range [][2]string{
		{"Timestamp", "timestamp"}, {"ROOT", "root"}, {"Snapshot.", "snapshot"}, {"CON", "con"},
		{"a.", "a"}, {"a ", "a"}, {"Ab", "aB"}, {"%41", "A"}, {"..", "."}, {"nul.x", "NUL.x"}, {"ü", "Ü"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		na, errA := File(a, ".json")
		nb, errB := File(b, ".json")
		for _, c := range []struct {
			in, name string
			err      error
		}{{a, na, errA}, {b, nb, errB}} {
			if c.err != nil {
				if c.in != "" && len(c.in) < MaxLen/3-5 {
					t.Fatalf("%q: %v", c.in, c.err)
				}
				continue
			}
			checkSafe(t, c.in, c.name)
			if back, err := Decode(c.name, ".json"); err != nil || back != c.in {
				t.Fatalf("%q -> %q -> %q, %v", c.in, c.name, back, err)
			}
		}
		if errA == nil && errB == nil && a != b && strings.EqualFold(na, nb) {
			t.Fatalf("%q and %q share the file %q on a case-insensitive file system", a, b, na)
		}
	})
}
