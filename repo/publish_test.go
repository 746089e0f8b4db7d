package repo

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/rollout"
)

var ctx = context.Background()

func hello(version string) Release {
	return Release{App: "hello", Version: version, Platform: "linux/amd64"}
}

func TestPublishRoundTrip(t *testing.T) {
	clk := newClock()
	r := newTestRepo(t, InitOptions{}, clk)
	bin := writeFile(t, "hello", "#!/bin/sh\necho hello 1.0.0\n")
	tgz := writeFile(t, "hello.tar.gz", "not really gzip")
	if err := r.Publish(ctx, hello("1.0.0"), []string{bin, tgz}); err != nil {
		t.Fatal(err)
	}
	if err := r.Publish(ctx, Release{App: "world", Version: "2.0.0-rc.1", Platform: "darwin/arm64", Kind: "zip"}, []string{bin}); err != nil {
		t.Fatal(err)
	}
	s := verifyServed(t, r.dir, clk.t)
	want := []string{"hello/1.0.0/linux-amd64/hello", "hello/1.0.0/linux-amd64/hello.tar.gz", "world/2.0.0-rc.1/darwin-arm64/hello"}
	if len(s.targets) != len(want) {
		t.Fatalf("served %d targets, want %d", len(s.targets), len(want))
	}
	for _, p := range want {
		if s.targets[p] == nil {
			t.Errorf("target %s not served", p)
		}
	}
	es, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, e := range es {
		kinds[e.Path] = e.Kind
	}
	wantKinds := map[string]string{want[0]: "binary", want[1]: "tar.gz", want[2]: "zip"}
	if fmt.Sprint(kinds) != fmt.Sprint(wantKinds) {
		t.Errorf("kinds %v, want %v", kinds, wantKinds)
	}
	custom := string(*s.targets[want[0]].Custom)
	manifest := fmt.Sprintf(`"files":{"hello":"%x","hello.tar.gz":"%x"}`, sha256.Sum256([]byte("#!/bin/sh\necho hello 1.0.0\n")), sha256.Sum256([]byte("not really gzip")))
	if custom != `{"ferry":{"app":"hello","version":"1.0.0","platform":"linux/amd64","kind":"binary",`+manifest+`}}` {
		t.Errorf("custom metadata %s", custom)
	}
	// Each application is its own role, and one app's role cannot sign the
	// other's paths.
	st, err := loadState(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range st.targets.Signed.Delegations.Roles {
		if d.Name == rollout.RoleName {
			if d.Threshold != 1 || !d.Terminating || !slices.Equal(d.Paths, []string{rollout.PathPattern}) || len(d.KeyIDs) != 1 {
				t.Errorf("rollout delegation %+v", d)
			}
			for _, p := range want {
				if ok, _ := d.IsDelegatedPath(p); ok {
					t.Errorf("the rollout role may sign %s", p)
				}
			}
			continue
		}
		if d.Threshold != 1 || !d.Terminating || len(d.Paths) != 1 || d.Paths[0] != d.Name+"/*/*/*" || len(d.KeyIDs) != 1 {
			t.Errorf("delegation %+v", d)
		}
		other := map[string]string{"hello": want[2], "world": want[0]}[d.Name]
		if ok, _ := d.IsDelegatedPath(other); ok {
			t.Errorf("role %s may sign %s", d.Name, other)
		}
	}
	ks, _ := Keys(r.dir)
	if countRole(ks, "hello") != 1 || countRole(ks, "world") != 1 || ks[0].KeyID == ks[len(ks)-1].KeyID {
		t.Errorf("Keys: %+v", ks)
	}
}

func TestListSortsBySemver(t *testing.T) {
	clk := newClock()
	r := newTestRepo(t, InitOptions{}, clk)
	for _, v := range []string{"1.10.0", "1.9.0", "1.10.0-rc.1", "0.1.0"} {
		f := writeFile(t, "hello", "v"+v)
		if err := r.Publish(ctx, hello(v), []string{f}); err != nil {
			t.Fatal(err)
		}
	}
	es, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Version)
	}
	if strings.Join(got, " ") != "0.1.0 1.9.0 1.10.0-rc.1 1.10.0" {
		t.Fatalf("order %v", got)
	}
}

// TestRepublishDifferentBytes_R56: a published version is immutable.
func TestRepublishDifferentBytes_R56(t *testing.T) {
	clk := newClock()
	r := newTestRepo(t, InitOptions{}, clk)
	v1 := writeFile(t, "hello", "original")
	extra := writeFile(t, "README", "docs")
	if err := r.Publish(ctx, hello("1.0.0"), []string{v1}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		rel   Release
		files []string
	}{
		{"other bytes", hello("1.0.0"), []string{writeFile(t, "hello", "evil!!!!")}},
		{"other bytes same length", hello("1.0.0"), []string{writeFile(t, "hello", "origina_")}},
		{"extra file", hello("1.0.0"), []string{v1, extra}},
		{"other file name", hello("1.0.0"), []string{writeFile(t, "hello2", "original")}},
		{"other kind", Release{App: "hello", Version: "1.0.0", Platform: "linux/amd64", Kind: "zip"}, []string{v1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := treeHashes(t, r.dir)
			err := r.Publish(ctx, tt.rel, tt.files)
			if !errors.Is(err, ErrImmutable) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one-line ErrImmutable", err)
			}
			if d := diffTrees(before, treeHashes(t, r.dir)); len(d) > 0 {
				t.Fatalf("refused publish changed the tree: %v", d)
			}
		})
	}
}

func TestRepublishIdenticalIsNoop(t *testing.T) {
	clk := newClock()
	r := newTestRepo(t, InitOptions{}, clk)
	f := writeFile(t, "hello", "same")
	if err := r.Publish(ctx, hello("1.0.0"), []string{f}); err != nil {
		t.Fatal(err)
	}
	before := treeHashes(t, r.dir)
	res, err := r.PublishBatch(ctx, []Batch{{Release: hello("1.0.0"), Files: []string{f}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Published) != 0 || len(res.Unchanged) != 1 || res.Unchanged[0] != hello("1.0.0") {
		t.Fatalf("result %+v, want one unchanged release", res)
	}
	if err := r.Publish(ctx, hello("1.0.0"), []string{f}); err != nil {
		t.Fatalf("identical Publish: %v", err)
	}
	if d := diffTrees(before, treeHashes(t, r.dir)); len(d) > 0 {
		t.Fatalf("no-op publish changed the tree: %v", d)
	}
}

// TestPublishBadInputs: each bad input gets a one-line error and changes
// nothing on disk.
func TestPublishBadInputs(t *testing.T) {
	good := func(t *testing.T) string { return writeFile(t, "hello", "v2") }
	tests := []struct {
		name  string
		setup func(t *testing.T, r *Repo) // may change the repo before the "before" snapshot
		rel   Release
		files func(t *testing.T) []string
		want  string
	}{
		{"bad semver short", nil, hello("1.4"), nil, `invalid version "1.4"`},
		{"bad semver v prefix", nil, hello("v1.4.2"), nil, `invalid version "v1.4.2"`},
		{"bad semver build", nil, hello("1.4.2+meta"), nil, `invalid version`},
		{"bad semver garbage", nil, hello("latest"), nil, `invalid version`},
		{"unknown platform", nil, Release{App: "hello", Version: "1.0.1", Platform: "linux/amd65"}, nil, `unknown platform "linux/amd65"`},
		{"platform with dash", nil, Release{App: "hello", Version: "1.0.1", Platform: "linux-amd64"}, nil, `unknown platform`},
		{"unknown kind", nil, Release{App: "hello", Version: "1.0.1", Platform: "linux/amd64", Kind: "rpm"}, nil, `unknown kind`},
		{"bad app name", nil, Release{App: "Hello", Version: "1.0.1", Platform: "linux/amd64"}, nil, `invalid app name`},
		{"app named targets", nil, Release{App: "targets", Version: "1.0.1", Platform: "linux/amd64"}, nil, `top-level TUF role`},
		{"app traversal", nil, Release{App: "../x", Version: "1.0.1", Platform: "linux/amd64"}, nil, `invalid app name`},
		{"missing file", nil, hello("1.0.1"), func(t *testing.T) []string { return []string{filepath.Join(t.TempDir(), "nope")} }, "no such file"},
		{"directory", nil, hello("1.0.1"), func(t *testing.T) []string { return []string{t.TempDir()} }, "not a regular file"},
		{"unsafe file name", nil, hello("1.0.1"), func(t *testing.T) []string { return []string{writeFile(t, ".hidden", "x")} }, "unsafe file name"},
		{"no files", nil, hello("1.0.1"), func(t *testing.T) []string { return nil }, "no files"},
		{"wrong passphrase", func(t *testing.T, r *Repo) {
			resetKeys(t, r, Options{Passphrase: Passphrase([]byte("wrong"))})
		}, hello("1.0.1"), nil, "wrong passphrase for key "},
		{"wrong passphrase new app", func(t *testing.T, r *Repo) {
			resetKeys(t, r, Options{Passphrase: Passphrase([]byte("wrong"))})
		}, Release{App: "newapp", Version: "1.0.0", Platform: "linux/amd64"}, nil, "wrong passphrase for key "},
		{"corrupted snapshot key", corruptKey("snapshot.age"), hello("1.0.1"), nil, "snapshot.age is corrupted: "},
		{"corrupted app key", corruptKey("apps/hello.age"), hello("1.0.1"), nil, "hello.age is corrupted: "},
		{"truncated timestamp key", func(t *testing.T, r *Repo) {
			resetKeys(t, r, r.opts)
			p := filepath.Join(r.dir, "keys", "timestamp.age")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o600)
		}, hello("1.0.1"), nil, "timestamp.age is corrupted: "},
		{"swapped key files", func(t *testing.T, r *Repo) {
			resetKeys(t, r, r.opts)
			k := filepath.Join(r.dir, "keys")
			b, _ := os.ReadFile(filepath.Join(k, "targets.age"))
			os.WriteFile(filepath.Join(k, "snapshot.age"), b, 0o600)
		}, hello("1.0.1"), nil, "which is not a key of role snapshot"},
		{"unwritable directory", makeUnwritable, hello("1.0.1"), nil, "create target directory: mkdir "},
		{"busy", func(t *testing.T, r *Repo) {
			other, err := Open(r.dir, []byte(testPassphrase))
			if err != nil {
				t.Fatal(err)
			}
			unlock, err := other.lock()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(unlock)
		}, hello("1.0.1"), nil, "repository is busy: another publisher holds "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			r := newTestRepo(t, InitOptions{}, clk)
			if err := r.Publish(ctx, hello("1.0.0"), []string{writeFile(t, "hello", "v1")}); err != nil {
				t.Fatal(err)
			}
			if tt.setup != nil {
				tt.setup(t, r)
			}
			files := []string{good(t)}
			if tt.files != nil {
				files = tt.files(t)
			}
			before := treeHashes(t, r.dir)
			err := r.Publish(ctx, tt.rel, files)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line containing %q", err, tt.want)
			}
			if d := diffTrees(before, treeHashes(t, r.dir)); len(d) > 0 {
				t.Fatalf("failed publish changed the tree: %v", d)
			}
		})
	}
}

func corruptKey(name string) func(t *testing.T, r *Repo) {
	return func(t *testing.T, r *Repo) {
		resetKeys(t, r, r.opts)
		p := filepath.Join(r.dir, "keys", name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)-3] ^= 0x40
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// makeUnwritable makes every directory of the repository unwritable: with
// mode 0500, or, as root (whom modes do not stop), with the immutable
// attribute; it skips the test if neither works.
func makeUnwritable(t *testing.T, r *Repo) {
	var dirs []string
	filepath.WalkDir(r.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return err
	})
	if os.Geteuid() != 0 {
		for _, d := range dirs {
			os.Chmod(d, 0o500)
		}
		t.Cleanup(func() {
			for _, d := range dirs {
				os.Chmod(d, 0o755)
			}
		})
		return
	}
	args := append([]string{"+i"}, dirs...)
	if out, err := exec.Command("chattr", args...).CombinedOutput(); err != nil {
		exec.Command("chattr", append([]string{"-i"}, dirs...)...).Run()
		t.Skipf("running as root and chattr +i failed (%v: %s): cannot make a directory unwritable", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", append([]string{"-i"}, dirs...)...).Run() })
	if f, err := os.Create(filepath.Join(r.dir, "probe")); err == nil {
		f.Close()
		os.Remove(filepath.Join(r.dir, "probe"))
		t.Skip("directory still writable after chattr +i")
	}
}
