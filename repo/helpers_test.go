package repo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

const testPassphrase = "test passphrase"

// testClock is a settable clock.
type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

func newClock() *testClock { return &testClock{t: time.Now().UTC().Truncate(time.Second)} }

// newTestRepo creates and opens a repository with a low scrypt work factor.
func newTestRepo(t *testing.T, opts InitOptions, clk *testClock) *Repo {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	if opts.Passphrase == nil {
		opts.Passphrase = []byte(testPassphrase)
	}
	opts.InsecureScryptWorkFactor = 8
	if err := initRepo(context.Background(), dir, opts, clk.now); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir, opts.Passphrase)
	if err != nil {
		t.Fatal(err)
	}
	r.now = clk.now
	return r
}

// resetKeys makes r forget every key it opened and use o's from now on.
func resetKeys(t *testing.T, r *Repo, o Options) {
	t.Helper()
	kr, err := newKeyring(r.dir, r.settings, o)
	if err != nil {
		t.Fatal(err)
	}
	r.opts, r.keys = o, kr
}

// writeFile creates a file with content in a fresh temp dir.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// treeHashes hashes every regular file under dir.
func treeHashes(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[strings.TrimPrefix(p, dir)] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffTrees(before, after map[string]string) []string {
	var d []string
	for p, h := range before {
		if after[p] != h {
			d = append(d, "changed or removed: "+p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			d = append(d, "added: "+p)
		}
	}
	return d
}

// served is what a client would see, by following timestamp.json.
type served struct {
	files   map[string][]byte // path under public/ -> bytes
	targets map[string]*metadata.TargetFiles
}

// verifyServed walks timestamp -> snapshot -> targets -> application roles
// with go-tuf's trustedmetadata, as a client would, and checks every target
// file's bytes. It returns every referenced file.
func verifyServed(t *testing.T, dir string, at time.Time) served {
	t.Helper()
	s, err := walkServed(dir, at)
	if err != nil {
		t.Fatalf("served repository does not verify: %v", err)
	}
	return s
}

func walkServed(dir string, at time.Time) (served, error) {
	s := served{files: map[string][]byte{}, targets: map[string]*metadata.TargetFiles{}}
	read := func(rel string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, "public", rel))
		s.files[rel] = b
		return b, err
	}
	rootBytes, err := os.ReadFile(filepath.Join(dir, "root.json"))
	if err != nil {
		return s, err
	}
	tm, err := trustedmetadata.New(rootBytes)
	if err != nil {
		return s, err
	}
	tm.RefTime = at
	b, err := read("metadata/timestamp.json")
	if err != nil {
		return s, err
	}
	if _, err := tm.UpdateTimestamp(b); err != nil {
		return s, fmt.Errorf("timestamp: %w", err)
	}
	if b, err = read(fmt.Sprintf("metadata/%d.snapshot.json", tm.Timestamp.Signed.Meta["snapshot.json"].Version)); err != nil {
		return s, err
	}
	if _, err := tm.UpdateSnapshot(b, false); err != nil {
		return s, fmt.Errorf("snapshot: %w", err)
	}
	if b, err = read(fmt.Sprintf("metadata/%d.targets.json", tm.Snapshot.Signed.Meta["targets.json"].Version)); err != nil {
		return s, err
	}
	if _, err := tm.UpdateTargets(b); err != nil {
		return s, fmt.Errorf("targets: %w", err)
	}
	if d := tm.Targets[metadata.TARGETS].Signed.Delegations; d != nil {
		for _, role := range d.Roles {
			if b, err = read(fmt.Sprintf("metadata/%d.%s.json", tm.Snapshot.Signed.Meta[role.Name+".json"].Version, role.Name)); err != nil {
				return s, err
			}
			md, err := tm.UpdateDelegatedTargets(b, role.Name, metadata.TARGETS)
			if err != nil {
				return s, fmt.Errorf("role %s: %w", role.Name, err)
			}
			for p, tf := range md.Signed.Targets {
				if ok, _ := role.IsDelegatedPath(p); !ok {
					return s, fmt.Errorf("role %s signs %s outside its paths", role.Name, p)
				}
				e := Entry{Path: p, SHA256: hex.EncodeToString(tf.Hashes["sha256"])}
				b, err := read("targets/" + storedName(e))
				if err != nil {
					return s, err
				}
				if err := tf.VerifyLengthHashes(b); err != nil {
					return s, fmt.Errorf("target %s: %w", p, err)
				}
				s.targets[p] = tf
			}
		}
	}
	return s, nil
}
