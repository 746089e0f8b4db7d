package client_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/install"
	"github.com/ferry-updates/ferry/repo"
)

// docsTarGz is a tar.gz holding doc/README with text.
func docsTarGz(t *testing.T, text string) []byte {
	var raw, out bytes.Buffer
	tw := tar.NewWriter(&raw)
	tw.WriteHeader(&tar.Header{Name: "doc/README", Mode: 0o644, Size: int64(len(text)), Typeflag: tar.TypeReg})
	tw.Write([]byte(text))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(&out)
	zw.Write(raw.Bytes())
	zw.Close()
	return out.Bytes()
}

// publishRelease publishes one release of several files (kinds inferred
// from the names) and returns their target paths.
func (f *fixture) publishRelease(version string, files map[string][]byte) map[string]string {
	f.t.Helper()
	dir := f.t.TempDir()
	var srcs []string
	paths := map[string]string{}
	for name, body := range files {
		src := filepath.Join(dir, name)
		if err := os.WriteFile(src, body, 0o644); err != nil {
			f.t.Fatal(err)
		}
		srcs = append(srcs, src)
		paths[name] = "hello/" + version + "/linux-amd64/" + name
	}
	rel := repo.Release{App: "hello", Version: version, Platform: "linux/amd64"}
	if err := f.rp.Publish(context.Background(), rel, srcs); err != nil {
		f.t.Fatalf("publish %s: %v", version, err)
	}
	return paths
}

// TestPartialBundle_R47: a release of two files (the program and a docs
// archive) is installed whole; when the server drops one file of the next
// release, or serves it altered, nothing of that release is installed and
// the previous version stays intact, with either installer.
func TestPartialBundle_R47(t *testing.T) {
	needShell(t)
	ctx := context.Background()
	f := newFixture(t)
	v1 := map[string][]byte{"hello": script("1.0.0", healthy), "docs.tar.gz": docsTarGz(t, "docs 1.0.0")}
	f.publishRelease("1.0.0", v1)
	v2 := map[string][]byte{"hello": script("2.0.0", healthy), "docs.tar.gz": docsTarGz(t, "docs 2.0.0")}
	p2 := f.publishRelease("2.0.0", v2)

	for _, fault := range []string{"404", "altered"} {
		for _, strategy := range []string{"slots", "binary"} {
			t.Run(fault+"/"+strategy, func(t *testing.T) {
				// The docs file is the one the Binary installer ignores:
				// it must still stop the install.
				served := f.targetFile(p2["docs.tar.gz"], v2["docs.tar.gz"])
				orig, err := os.ReadFile(served)
				if err != nil {
					t.Fatal(err)
				}
				root := t.TempDir()
				target := filepath.Join(root, "bin", "hello")
				os.MkdirAll(filepath.Dir(target), 0o755)
				var inst client.Installer = &install.Slots{Root: root, App: "hello"}
				if strategy == "binary" {
					inst = binary(t, target)
				}
				c := f.client(t, nil)
				if err := installV1(ctx, t, f, inst, v1); err != nil {
					t.Fatal(err)
				}
				switch fault {
				case "404":
					os.Remove(served)
				case "altered":
					bad := bytes.Clone(orig)
					bad[len(bad)-1] ^= 1
					os.WriteFile(served, bad, 0o644)
				}
				defer os.WriteFile(served, orig, 0o644)
				out, err := c.Update(ctx, inst)
				if err == nil || !strings.Contains(err.Error(), "nothing installed") {
					t.Fatalf("update with a %s file: %+v, %v; want an error", fault, out, err)
				}
				st, serr := inst.State(ctx)
				if serr != nil || st.Installed == nil || st.Installed.Version != "1.0.0" || st.Pending != nil || len(st.Bad) > 0 {
					t.Fatalf("state after a partial release: %+v %v", st, serr)
				}
				if strategy == "slots" {
					mustFile(t, filepath.Join(root, "hello", "current", "hello"), v1["hello"])
					mustFile(t, filepath.Join(root, "hello", "current", "doc", "README"), []byte("docs 1.0.0"))
					if _, err := os.Lstat(filepath.Join(root, "hello", "versions", "2.0.0")); err == nil {
						t.Fatal("a slot of the partial release is on disk")
					}
				} else {
					mustFile(t, target, v1["hello"])
				}
				// With the file back, the whole release installs.
				os.WriteFile(served, orig, 0o644)
				out, err = c.Update(ctx, inst)
				if err != nil || !out.Updated() || out.Result.Version != "2.0.0" || len(out.Files) != 2 {
					t.Fatalf("update with the whole release: %+v, %v", out, err)
				}
				if strategy == "slots" {
					mustFile(t, filepath.Join(root, "hello", "current", "doc", "README"), []byte("docs 2.0.0"))
				} else {
					mustFile(t, target, v2["hello"])
					if out.Release.Path != p2["hello"] {
						t.Fatalf("binary installer got %s, want the file named like the app", out.Release.Path)
					}
				}
			})
		}
	}
}

// installV1 installs release 1.0.0 through a client that only knows it:
// the repository also has 2.0.0, so it installs the files directly with
// the installer, as a previous Update would have.
func installV1(ctx context.Context, t *testing.T, f *fixture, inst client.Installer, files map[string][]byte) error {
	dir := t.TempDir()
	var arts []install.Artifact
	for _, name := range []string{"hello", "docs.tar.gz"} {
		a := artifactFor(t, "1.0.0", files[name])
		a.Name = name
		if name != "hello" {
			a.Kind = install.KindTarGz
		}
		a.File = filepath.Join(dir, name)
		if err := os.WriteFile(a.File, files[name], 0o644); err != nil {
			return err
		}
		arts = append(arts, a)
	}
	if m, ok := inst.(client.MultiInstaller); ok {
		_, err := m.ApplyAll(ctx, arts)
		return err
	}
	_, err := inst.Apply(ctx, arts[0])
	return err
}

// The staging and download directories are refused unless they are real
// directories private to this user: a pre-planted symlink (to a directory
// the attacker reads or writes), a world-accessible directory, or one owned
// by someone else makes Update stop before it downloads anything (R51).
func TestStagingPrivate_R51(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.publish("hello", "1.0.0", "linux/amd64", "hello", script("1.0.0", healthy))
	cases := []struct {
		name  string
		plant func(t *testing.T, state, attacker string)
	}{
		{"staging is a symlink", func(t *testing.T, state, attacker string) {
			os.RemoveAll(filepath.Join(state, "staging"))
			if err := os.Symlink(attacker, filepath.Join(state, "staging")); err != nil {
				t.Skip("no symlinks:", err)
			}
		}},
		{"downloads is a symlink", func(t *testing.T, state, attacker string) {
			os.RemoveAll(filepath.Join(state, "downloads"))
			if err := os.Symlink(attacker, filepath.Join(state, "downloads")); err != nil {
				t.Skip("no symlinks:", err)
			}
		}},
		{"staging is world-writable", func(t *testing.T, state, _ string) {
			os.Mkdir(filepath.Join(state, "staging"), 0o700)
			os.Chmod(filepath.Join(state, "staging"), 0o777)
		}},
		{"downloads is group-readable", func(t *testing.T, state, _ string) {
			os.Chmod(filepath.Join(state, "downloads"), 0o750)
		}},
		{"staging is owned by someone else", func(t *testing.T, state, _ string) {
			d := filepath.Join(state, "staging")
			os.Mkdir(d, 0o700)
			if err := os.Chown(d, 65534, 65534); err != nil {
				t.Skip("cannot give a directory away (not root):", err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			attacker := t.TempDir()
			var ev events
			cfg := f.config(t)
			cfg.Log = ev.logger()
			cl := newClient(t, cfg)
			c.plant(t, cfg.StateDir, attacker)
			rec := &recorder{}
			out, err := cl.Update(ctx, rec)
			if err == nil || len(rec.applied) > 0 {
				t.Fatalf("update: %+v %v, applied %d; want a refusal", out, err, len(rec.applied))
			}
			if ents, _ := os.ReadDir(attacker); len(ents) > 0 {
				t.Fatalf("files written into the attacker's directory: %v", ents)
			}
			if ev.count(t, "staging.refused") != 1 {
				t.Fatalf("want one staging.refused event, log:\n%s", ev.buf.String())
			}
		})
	}
	// And a private layout works.
	// And a private layout works; the installer gets a file in it.
	cfg := f.config(t)
	rec := &recorder{}
	if _, err := newClient(t, cfg).Update(ctx, rec); err != nil || len(rec.applied) != 1 {
		t.Fatalf("private staging: %v, applied %d", err, len(rec.applied))
	}
	if rel, err := filepath.Rel(filepath.Join(cfg.StateDir, "staging"), rec.applied[0].File); err != nil || !filepath.IsLocal(rel) {
		t.Fatalf("artifact %s outside the private staging directory", rec.applied[0].File)
	}
}
