package install

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestApplyAllPartialBundle_R47 installs a release of two artifacts into one
// slot, and refuses a release one of whose artifacts is bad or collides:
// nothing of it is installed and the previous version stays current.
func TestApplyAllPartialBundle_R47(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := &Slots{Root: filepath.Join(dir, "srv"), App: "app"}
	release := func(v string) []Artifact {
		bin := artifact(t, dir, "app", v, KindBinary, script(v, 0))
		docs := artifact(t, dir, "app", v, KindTarGz, archive(t, KindTarGz, []entry{{name: "doc/README", body: "readme " + v}}))
		return []Artifact{bin, docs}
	}
	if res, err := s.ApplyAll(ctx, release("1.0.0")); err != nil || res.Version != "1.0.0" {
		t.Fatalf("ApplyAll 1.0.0: %+v %v", res, err)
	}
	cur := s.Current()
	if got := readFile(t, filepath.Join(cur, "doc", "README")); got != "readme 1.0.0" {
		t.Fatalf("README = %q", got)
	}
	if got := readFile(t, filepath.Join(cur, "app")); got != string(script("1.0.0", 0)) {
		t.Fatalf("app = %q", got)
	}
	badHash := release("2.0.0")
	badHash[1].Hashes["sha256"][0] ^= 1
	missing := release("2.0.0")
	missing[1].File = filepath.Join(dir, "not-downloaded")
	collide := release("2.0.0") // last: artifact() reuses file names
	collide[1] = artifact(t, dir, "app", "2.0.0", KindTarGz, archive(t, KindTarGz, []entry{{name: "app", body: "other"}}))
	cases := []struct {
		name string
		arts []Artifact
		want error
	}{
		{"second artifact fails verification", badHash, ErrVerify},
		{"file in two artifacts", collide, ErrUnsafeArchive},
		{"second artifact missing", missing, os.ErrNotExist},
	}
	for _, c := range cases {
		_, err := s.ApplyAll(ctx, c.arts)
		if !errors.Is(err, c.want) {
			t.Fatalf("%s: %v, want %v", c.name, err, c.want)
		}
		st, serr := s.State(ctx)
		if serr != nil || st.Installed.Version != "1.0.0" || st.Pending != nil || len(st.Bad) > 0 {
			t.Fatalf("%s: state %+v %v", c.name, st, serr)
		}
		if got := readFile(t, filepath.Join(cur, "doc", "README")); got != "readme 1.0.0" {
			t.Fatalf("%s: README = %q", c.name, got)
		}
		if _, err := os.Lstat(filepath.Join(s.Root, "app", "versions", "2.0.0")); err == nil {
			t.Fatalf("%s: a slot of the refused release is on disk", c.name)
		}
	}
	if res, err := s.ApplyAll(ctx, release("2.0.0")); err != nil || res.Version != "2.0.0" || res.Previous != "1.0.0" {
		t.Fatalf("ApplyAll 2.0.0: %+v %v", res, err)
	}
}
