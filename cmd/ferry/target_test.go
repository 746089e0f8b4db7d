package main

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/fetch"
)

// TestTargetFileName_R24 checks that hostile target names map to a single
// file name inside the target directory.
func TestTargetFileName_R24(t *testing.T) {
	tests := []struct {
		name, want string
	}{
		{"hello/1.0.0/linux-amd64/hello", "hello%2F1.0.0%2Flinux-amd64%2Fhello"},
		{"..", "%2E%2E"},
		{".", "%2E"},
		{".hidden", "%2Ehidden"},
		{"../../etc/passwd", "%2E.%2F..%2Fetc%2Fpasswd"},
		{"/abs", "%2Fabs"},
		{`C:\x`, "%43%3A%5Cx"},
		{"hello/1.0.0/windows-amd64/Hello.exe", "hello%2F1.0.0%2Fwindows-amd64%2F%48ello.exe"},
		{"con", "%63on"},
		{"a.", "a%2E"},
		{"%2e%2e", "%252e%252e"},
		{"a\x00b", "a%00b"},
		{"a b?c#d", "a%20b%3Fc%23d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := targetFileName(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("targetFileName(%q) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
	if _, err := targetFileName(""); err == nil {
		t.Error("empty name accepted")
	}
	if _, err := targetFileName(strings.Repeat("a", 300)); err == nil {
		t.Error("name longer than a file name accepted")
	}
}

func FuzzTargetFileName_R24(f *testing.F) {
	for _, s := range []string{"a/b", "..", "../x", "/", `\\?\C:\`, "%2e", ".\x00"} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, name string) {
		enc, err := targetFileName(name)
		if err != nil {
			return
		}
		if !filepath.IsLocal(enc) || filepath.Base(enc) != enc || strings.HasPrefix(enc, ".") || strings.HasSuffix(enc, ".") {
			t.Fatalf("targetFileName(%q) = %q escapes, hides or ends in a dot", name, enc)
		}
		if other, err := targetFileName(strings.ToUpper(name)); err == nil && other != enc && strings.EqualFold(other, enc) {
			t.Fatalf("%q and %q share a file on a case-insensitive file system", name, strings.ToUpper(name))
		}
		if filepath.Dir(filepath.Join(dir, enc)) != dir {
			t.Fatalf("targetFileName(%q) = %q lands outside the directory", name, enc)
		}
	})
}

func TestTargetURL(t *testing.T) {
	h := sha256.Sum256([]byte("x"))
	want := fetch.Want{Length: 1, Hashes: map[string][]byte{"sha256": h[:], "sha512": make([]byte, 64)}}
	tests := []struct {
		base, name string
		consistent bool
		want       string
		wantErr    bool
	}{
		{"https://h/targets/", "a/b/c", false, "https://h/targets/a/b/c", false},
		{"https://h/targets", "a/b/c", true, "https://h/targets/a/b/" + "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881.c", false},
		{"https://h/t/", "a b/c?d", false, "https://h/t/a%20b/c%3Fd", false},
		{"https://h/t/", "a/../b", false, "", true},
		{"https://h/t/", "a//b", false, "", true},
	}
	for _, tt := range tests {
		got, err := targetURL(tt.base, tt.name, want, tt.consistent)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("targetURL(%q, %q, %v) = %q, %v; want %q (error %v)", tt.base, tt.name, tt.consistent, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestMatches(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	data := []byte("hello")
	h := sha256.Sum256(data)
	want := fetch.Want{Length: int64(len(data)), Hashes: map[string][]byte{"sha256": h[:]}}
	if ok, err := matches(p, want); ok || err != nil {
		t.Fatalf("missing file: ok=%v err=%v", ok, err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if ok, err := matches(p, want); !ok || err != nil {
		t.Fatalf("good file: ok=%v err=%v", ok, err)
	}
	if err := os.WriteFile(p, []byte("hellO"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ok, _ := matches(p, want); ok {
		t.Fatal("same length, other bytes: matched")
	}
	unknown := fetch.Want{Length: 5, Hashes: map[string][]byte{"md5": make([]byte, 16)}}
	if ok, _ := matches(p, unknown); ok {
		t.Fatal("no known hash algorithm: matched")
	}
}

func TestParseDayDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90d", 90 * 24 * time.Hour, true},
		{"36h", 36 * time.Hour, true},
		{"0d", 0, false},
		{"-1h", 0, false},
		{"1x", 0, false},
		{"d", 0, false},
	}
	for _, tt := range tests {
		got, err := parseDayDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseDayDuration(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
