package install

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferry-updates/ferry/internal/faultfs"
)

var archiveKinds = []string{KindTarGz, KindTarZst, KindZip}

// applyArchive installs entries as version 2.0.0 of app "a" under a fresh
// root and returns the root and the error.
func applyArchive(t *testing.T, kind string, entries []entry, lim Limits) (string, error) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	s := &Slots{Root: root, App: "a", Limits: lim}
	_, err := s.Apply(context.Background(), artifact(t, dir, "a", "2.0.0", kind, archive(t, kind, entries)))
	return root, err
}

// assertNothingInstalled checks that a refused artifact left no slot, no
// current link and no staging behind, and nothing outside the root.
func assertNothingInstalled(t *testing.T, root string) {
	t.Helper()
	for _, p := range []string{"a/current", "a/versions/2.0.0", "a/.staging", "evil", "../evil"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s exists after a refused install", p)
		}
	}
}

func TestExtractTraversal_R35(t *testing.T) {
	names := []string{"../evil", "a/../../evil", "/evil", "/tmp/evil", "C:/evil", "C:evil", `\\?\C:\evil`,
		`..\evil`, "a\\..\\..\\evil", "a/./../../evil", "", "a//../../evil", "nul\x00/x"}
	for _, kind := range archiveKinds {
		for _, name := range names {
			if kind != KindZip && strings.Contains(name, "\x00") {
				continue // tar cannot encode it
			}
			t.Run(kind+"/"+name, func(t *testing.T) {
				root, err := applyArchive(t, kind, []entry{{name: "ok.txt", body: "fine"}, {name: name, body: "pwned"}}, Limits{})
				if !errors.Is(err, ErrUnsafeArchive) {
					t.Fatalf("entry %q: got %v, want ErrUnsafeArchive", name, err)
				}
				var ae *ArchiveError
				if !errors.As(err, &ae) || ae.Entry == "" && name != "" {
					t.Errorf("error carries no entry name: %v", err)
				}
				assertNothingInstalled(t, root)
			})
		}
	}
}

func TestExtractLinksAndDevices_R41(t *testing.T) {
	cases := []struct {
		name    string
		entries []entry
	}{
		{"symlink out", []entry{{name: "l", typ: tar.TypeSymlink, link: "/etc"}}},
		{"symlink then write through it", []entry{{name: "l", typ: tar.TypeSymlink, link: ".."}, {name: "l/evil", body: "x"}}},
		{"relative symlink inside", []entry{{name: "f", body: "x"}, {name: "l", typ: tar.TypeSymlink, link: "f"}}},
		{"hardlink out", []entry{{name: "h", typ: tar.TypeLink, link: "/etc/passwd"}}},
		{"hardlink inside", []entry{{name: "f", body: "x"}, {name: "h", typ: tar.TypeLink, link: "f"}}},
		{"char device", []entry{{name: "null", typ: tar.TypeChar}}},
		{"block device", []entry{{name: "sda", typ: tar.TypeBlock}}},
		{"fifo", []entry{{name: "p", typ: tar.TypeFifo}}},
		{"duplicate file", []entry{{name: "f", body: "1"}, {name: "f", body: "2"}}},
		{"file over dir", []entry{{name: "d/x", body: "1"}, {name: "d", body: "2"}}},
	}
	for _, kind := range archiveKinds {
		for _, c := range cases {
			if kind == KindZip && (c.entries[len(c.entries)-1].typ == tar.TypeLink ||
				c.entries[len(c.entries)-1].typ == tar.TypeBlock || c.entries[len(c.entries)-1].typ == tar.TypeFifo) {
				continue // zip cannot express these
			}
			t.Run(kind+"/"+c.name, func(t *testing.T) {
				root, err := applyArchive(t, kind, c.entries, Limits{})
				if !errors.Is(err, ErrUnsafeArchive) {
					t.Fatalf("got %v, want ErrUnsafeArchive", err)
				}
				assertNothingInstalled(t, root)
			})
		}
	}
}

func TestExtractLimits(t *testing.T) {
	zeros := strings.Repeat("\x00", 4<<20)
	many := make([]entry, 20)
	for i := range many {
		many[i] = entry{name: "f" + string(rune('a'+i)), body: "x"}
	}
	cases := []struct {
		name    string
		entries []entry
		lim     Limits
	}{
		{"bomb by ratio", []entry{{name: "z", body: zeros}}, Limits{MaxRatio: 10}},
		{"total size", []entry{{name: "a", body: zeros[:600]}, {name: "b", body: zeros[:600]}}, Limits{MaxBytes: 1000}},
		{"file count", many, Limits{MaxFiles: 10}},
		// R41 bombs: implicit parent directories count too (5 entries,
		// 300 directories), and depth and name length are bounded.
		{"implicit dirs count", deepDirs(5, 60), Limits{MaxFiles: 10}},
		{"too deep", []entry{{name: strings.Repeat("d/", maxDepth) + "f", body: "x"}}, Limits{}},
		{"name too long", []entry{{name: strings.Repeat("n", 200) + "/" + strings.Repeat("m", 900), body: "x"}}, Limits{}},
		{"duplicate dirs count", slices.Repeat([]entry{{name: "d/", typ: tar.TypeDir}}, 20), Limits{MaxFiles: 10}},
	}
	for _, kind := range archiveKinds {
		for _, c := range cases {
			t.Run(kind+"/"+c.name, func(t *testing.T) {
				root, err := applyArchive(t, kind, c.entries, c.lim)
				if !errors.Is(err, ErrUnsafeArchive) {
					t.Fatalf("got %v, want ErrUnsafeArchive", err)
				}
				assertNothingInstalled(t, root)
			})
		}
		t.Run(kind+"/within limits", func(t *testing.T) {
			root, err := applyArchive(t, kind, []entry{{name: "bin/app", body: "#!", mode: 0o755}, {name: "./share/doc/x.txt", body: "doc"}}, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, filepath.Join(root, "a/current/share/doc/x.txt")); got != "doc" {
				t.Errorf("x.txt = %q", got)
			}
			fi, err := os.Stat(filepath.Join(root, "a/current/bin/app"))
			if err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("bin/app: %v %v, want mode 0755", fi, err)
			}
		})
	}
}

// deepDirs returns n files, each under its own chain of depth directories
// that no entry names.
func deepDirs(n, depth int) []entry {
	var es []entry
	for i := range n {
		es = append(es, entry{name: fmt.Sprintf("x%d/", i) + strings.Repeat("d/", depth-1) + "f", body: "x"})
	}
	return es
}

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	r io.ReaderAt
	n *atomic.Int64
}

func (c countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

func TestNoBytesToDecompressorBeforeVerify_R39(t *testing.T) {
	bomb := []entry{{name: "z", body: strings.Repeat("\x00", 1<<20)}}
	for _, kind := range archiveKinds {
		for _, good := range []bool{false, true} {
			dir := t.TempDir()
			a := artifact(t, dir, "a", "2.0.0", kind, archive(t, kind, bomb))
			if !good {
				a.Hashes["sha256"][0] ^= 1
			}
			var n atomic.Int64
			s := &Slots{Root: filepath.Join(dir, "root"), App: "a"}
			s.wrapArch = func(r io.ReaderAt) io.ReaderAt { return countingReaderAt{r, &n} }
			_, err := s.Apply(context.Background(), a)
			switch {
			case !good && (!errors.Is(err, ErrVerify) || n.Load() != 0):
				t.Errorf("%s, wrong hash: err %v, %d bytes reached the decompressor, want ErrVerify and 0", kind, err, n.Load())
			case good && (err != nil || n.Load() == 0):
				t.Errorf("%s, right hash: err %v, %d bytes read; the counter must see the archive", kind, err, n.Load())
			}
		}
	}
}

func TestInjectedFileRejected_R40(t *testing.T) {
	for _, kind := range archiveKinds {
		dir := t.TempDir()
		signed := artifact(t, dir, "a", "2.0.0", kind, archive(t, kind, []entry{{name: "app", body: "v2"}}))
		// After signing, someone adds a side file to the archive.
		tampered := archive(t, kind, []entry{{name: "app", body: "v2"}, {name: "plugin.so", body: "evil"}})
		if err := os.WriteFile(signed.File, tampered, 0o600); err != nil {
			t.Fatal(err)
		}
		signed.Length = int64(len(tampered)) // even with a matching length
		s := &Slots{Root: filepath.Join(dir, "root"), App: "a"}
		_, err := s.Apply(context.Background(), signed)
		var ve *VerifyError
		if !errors.As(err, &ve) || ve.What != "sha256" {
			t.Fatalf("%s: got %v, want a sha256 *VerifyError", kind, err)
		}
		assertNothingInstalled(t, s.Root)
	}
}

func FuzzExtract_R35(f *testing.F) {
	for _, kind := range archiveKinds {
		for _, es := range [][]entry{
			{{name: "../evil", body: "x"}},
			{{name: "l", typ: tar.TypeSymlink, link: ".."}, {name: "l/evil", body: "x"}},
			{{name: "d/", typ: tar.TypeDir}, {name: "d/f", body: "ok"}},
			{{name: "/abs", body: "x"}},
		} {
			f.Add(kindIndex(kind), archive(f, kind, es))
		}
	}
	base := f.TempDir()
	if d, err := os.MkdirTemp("/dev/shm", "ferry-fuzz"); err == nil {
		base = d // tmpfs: fsync is free, so the fuzzer spends its time on archives
		f.Cleanup(func() { os.RemoveAll(d) })
	}
	f.Fuzz(func(t *testing.T, k uint8, data []byte) {
		kind := archiveKinds[int(k)%len(archiveKinds)]
		dir, err := os.MkdirTemp(base, "x")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		// Three levels above the stage: an escape by "../" at any depth
		// shows up as a second entry in one of them.
		stage := filepath.Join(dir, "o1", "o2", "stage")
		if err := os.MkdirAll(stage, 0o755); err != nil {
			t.Fatal(err)
		}
		tr, err := faultfs.OS{}.OpenTree(stage)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		w := &watchTree{Tree: tr}
		extract(context.Background(), w, bytes.NewReader(data), int64(len(data)), kind, Limits{MaxBytes: 1 << 20, MaxFiles: 100}, nil, func(string) {})
		if w.bad != "" {
			t.Fatalf("the extractor asked the tree for a name outside it: %q", w.bad)
		}
		for d := stage; d != dir; d = filepath.Dir(d) {
			checkContained(t, filepath.Dir(d), d)
		}
	})
}

// watchTree records a name that is not a plain local slash path: whatever
// os.Root would do with it, the extractor must never ask for one.
type watchTree struct {
	faultfs.Tree
	bad string
}

func (w *watchTree) check(name string) {
	if name != "." && (!fs.ValidPath(name) || strings.ContainsAny(name, "\\:\x00") || !filepath.IsLocal(filepath.FromSlash(name))) {
		w.bad = name
	}
}

func (w *watchTree) Mkdir(name string, perm fs.FileMode) error {
	w.check(name)
	return w.Tree.Mkdir(name, perm)
}

func (w *watchTree) Create(name string, perm fs.FileMode) (faultfs.File, error) {
	w.check(name)
	return w.Tree.Create(name, perm)
}

func (w *watchTree) SyncDir(name string) error {
	w.check(name)
	return w.Tree.SyncDir(name)
}

func kindIndex(kind string) uint8 {
	for i, k := range archiveKinds {
		if k == kind {
			return uint8(i)
		}
	}
	return 0
}

// checkContained fails if anything but stage exists in dir, or if stage
// holds anything but regular files and directories.
func checkContained(t *testing.T, dir, stage string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("extraction escaped its staging dir: %v", ents)
	}
	filepath.WalkDir(stage, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !d.Type().IsRegular() {
			t.Errorf("extraction created %s of type %v", p, d.Type())
		}
		return nil
	})
}
