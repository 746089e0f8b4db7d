package client

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-updates/ferry/fetch"
)

// TestCopyVerified is the cross-device path of Download: the copy is hashed
// again, and a mismatch leaves the destination untouched.
func TestCopyVerified(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	content := []byte("verified bytes")
	if err := os.WriteFile(src, content, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	other := sha256.Sum256([]byte("other"))
	tests := []struct {
		name string
		want fetch.Want
		ok   bool
	}{
		{"match", fetch.Want{Length: int64(len(content)), Hashes: map[string][]byte{"sha256": sum[:]}}, true},
		{"hash mismatch", fetch.Want{Length: int64(len(content)), Hashes: map[string][]byte{"sha256": other[:]}}, false},
		{"short", fetch.Want{Length: 3, Hashes: map[string][]byte{"sha256": sum[:]}}, false},
		{"long", fetch.Want{Length: 100, Hashes: map[string][]byte{"sha256": sum[:]}}, false},
		{"no known hash", fetch.Want{Length: int64(len(content)), Hashes: map[string][]byte{"md5": sum[:16]}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "dest")
			if err := os.WriteFile(dest, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			err := copyVerified(src, dest, 0o755, tt.want)
			got, _ := os.ReadFile(dest)
			if tt.ok {
				if err != nil || string(got) != string(content) {
					t.Fatalf("copyVerified = %v; dest %q", err, got)
				}
				if fi, _ := os.Stat(dest); fi.Mode().Perm() != 0o755 {
					t.Errorf("mode %v, want 0755", fi.Mode())
				}
				return
			}
			if err == nil || string(got) != "old" {
				t.Fatalf("copyVerified = %v; dest %q, want an error and the old content", err, got)
			}
		})
	}
}
