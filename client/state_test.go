package client_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/client"
)

// A state directory that someone else could have prepared is refused by
// New before anything is loaded from it, with one line that names the
// path, what was found and what to do (R70). Each case starts from a
// working state directory, so only the planted defect can be the cause.
func TestStateDirNotPrivate_R70(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name  string
		plant func(t *testing.T, state string) string // returns the path the error must name
		want  string                                  // regexp the message must match
	}{
		{"state directory group-writable", func(t *testing.T, state string) string {
			chmod(t, state, 0o770)
			return state
		}, `has mode 0770 .*group or others may write it: run chmod 700 `},
		{"metadata writable by others", func(t *testing.T, state string) string {
			d := filepath.Join(state, "metadata")
			chmod(t, d, 0o703)
			return d
		}, `has mode 0703 .*group or others may write it: run chmod 700 `},
		{"metadata is a symlink", func(t *testing.T, state string) string {
			d := filepath.Join(state, "metadata")
			elsewhere := t.TempDir()
			os.Chmod(elsewhere, 0o700)
			if err := os.RemoveAll(d); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(elsewhere, d); err != nil {
				t.Skip("no symlinks:", err)
			}
			return d
		}, `is a symlink, not a directory`},
		{"state directory is a symlink to another user's directory", func(t *testing.T, state string) string {
			other := t.TempDir()
			os.Chmod(other, 0o700)
			if err := os.Rename(state, filepath.Join(other, "state")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(other, "state"), state); err != nil {
				t.Skip("no symlinks:", err)
			}
			return state
		}, `is a symlink, not a directory`},
		{"downloads owned by someone else", func(t *testing.T, state string) string {
			d := filepath.Join(state, "downloads")
			if err := os.Chown(d, 65534, 65534); err != nil {
				t.Skip("cannot give a directory away (not root):", err)
			}
			return d
		}, `is owned by uid 65534, not by this user`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := f.config(t)
			newClient(t, cfg) // a good state directory first
			path := c.plant(t, cfg.StateDir)
			_, err := client.New(cfg)
			if err == nil {
				t.Fatal("client.New accepted a state directory that is not private")
			}
			msg := err.Error()
			if !strings.Contains(msg, path+" ") || !regexp.MustCompile(c.want).MatchString(msg) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q: want one line naming %s and matching %q", msg, path, c.want)
			}
		})
	}
	// A state directory created by New itself is private.
	cfg := f.config(t)
	newClient(t, cfg)
	for _, d := range []string{"", "metadata", "downloads", "staging"} {
		fi, err := os.Lstat(filepath.Join(cfg.StateDir, d))
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v, mode %v; want a 0700 directory", filepath.Join(cfg.StateDir, d), err, fi.Mode())
		}
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
