package repo

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

func TestInitLayout(t *testing.T) {
	clk := newClock()
	r := newTestRepo(t, InitOptions{}, clk)
	for _, name := range []string{
		"ferry-repo.json", "root.json", ".lock",
		"keys/root-1.age", "keys/targets.age", "keys/snapshot.age", "keys/timestamp.age",
		"public/metadata/1.root.json", "public/metadata/1.targets.json",
		"public/metadata/1.snapshot.json", "public/metadata/timestamp.json",
	} {
		if _, err := os.Stat(filepath.Join(r.dir, name)); err != nil {
			t.Errorf("missing %s: %v", name, err)
		}
	}
	for _, d := range []string{"keys", "keys/apps"} {
		fi, err := os.Stat(filepath.Join(r.dir, d))
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, err %v; want 0700", d, fi.Mode().Perm(), err)
		}
	}
	fi, err := os.Stat(filepath.Join(r.dir, "keys/snapshot.age"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, err %v; want 0600", fi.Mode().Perm(), err)
	}
	root, _ := os.ReadFile(filepath.Join(r.dir, "root.json"))
	root1, _ := os.ReadFile(filepath.Join(r.dir, "public/metadata/1.root.json"))
	if string(root) != string(root1) {
		t.Error("root.json differs from public/metadata/1.root.json")
	}
	md, err := metadata.Root().FromBytes(root)
	if err != nil {
		t.Fatal(err)
	}
	if !md.Signed.ConsistentSnapshot {
		t.Error("consistent_snapshot is false")
	}
	wantExp := map[string]time.Duration{"root": 365 * 24 * time.Hour}
	if got := md.Signed.Expires.Sub(clk.t); got != wantExp["root"] {
		t.Errorf("root expires after %v, want %v", got, wantExp["root"])
	}
	s := verifyServed(t, r.dir, clk.t)
	if len(s.targets) != 0 {
		t.Errorf("new repository has %d targets", len(s.targets))
	}
	var set map[string]any
	data, _ := os.ReadFile(filepath.Join(r.dir, "ferry-repo.json"))
	if err := json.Unmarshal(data, &set); err != nil || set["format"] != 1.0 {
		t.Errorf("ferry-repo.json: %s, %v", data, err)
	}
}

func TestInitDefaultExpiries(t *testing.T) {
	clk := newClock()
	r := newTestRepo(t, InitOptions{}, clk)
	st, err := loadState(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	for role, got := range map[string]time.Time{
		"targets": st.targets.Signed.Expires, "snapshot": st.snapshot.Signed.Expires, "timestamp": st.timestamp.Signed.Expires,
	} {
		want := map[string]time.Duration{"targets": 90 * day, "snapshot": 7 * day, "timestamp": day}[role]
		if got.Sub(clk.t) != want {
			t.Errorf("%s expires after %v, want %v", role, got.Sub(clk.t), want)
		}
	}
}

// TestInitRootKOfN_R2: a 2-of-3 root is signed by all three keys, verifies,
// and one signature alone is not enough.
func TestInitRootKOfN_R2(t *testing.T) {
	clk := newClock()
	r := newTestRepo(t, InitOptions{RootKeys: 3, RootThreshold: 2}, clk)
	data, err := os.ReadFile(filepath.Join(r.dir, "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := metadata.Root().FromBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	rr := root.Signed.Roles[metadata.ROOT]
	if len(rr.KeyIDs) != 3 || rr.Threshold != 2 || len(root.Signatures) != 3 {
		t.Fatalf("root: %d keys, threshold %d, %d signatures; want 3, 2, 3", len(rr.KeyIDs), rr.Threshold, len(root.Signatures))
	}
	if _, err := trustedmetadata.New(data); err != nil {
		t.Fatalf("2-of-3 root does not verify: %v", err)
	}
	verifyServed(t, r.dir, clk.t)
	for keep, wantOK := range map[int]bool{2: true, 1: false} {
		root.Signatures = root.Signatures[:keep]
		if err := root.VerifyDelegate(metadata.ROOT, root); (err == nil) != wantOK {
			t.Errorf("root with %d of 3 signatures: err = %v, want ok=%v", keep, err, wantOK)
		}
	}
	ks, err := Keys(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := countRole(ks, "root"); n != 3 {
		t.Errorf("Keys lists %d root keys, want 3", n)
	}
}

func countRole(ks []KeyInfo, role string) int {
	n := 0
	for _, k := range ks {
		if k.Role == role {
			n++
		}
	}
	return n
}

func TestInitOptions(t *testing.T) {
	if !(InitOptions{}).SingleKeyRoot() {
		t.Error("default options: SingleKeyRoot false")
	}
	if (InitOptions{RootKeys: 3}).SingleKeyRoot() {
		t.Error("3 keys, default threshold: SingleKeyRoot true, want majority 2")
	}
	tests := []struct {
		name string
		opts InitOptions
		want string
	}{
		{"no passphrase", InitOptions{Passphrase: []byte{}}, "passphrase is required"},
		{"threshold above keys", InitOptions{RootKeys: 2, RootThreshold: 3}, "root threshold 3"},
		{"negative threshold", InitOptions{RootKeys: 2, RootThreshold: -1}, "root threshold -1"},
		{"negative keys", InitOptions{RootKeys: -1}, "root keys -1"},
		{"tiny expiry", InitOptions{Expiries: Expiries{Timestamp: time.Second}}, "expiry 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "r")
			if tt.opts.Passphrase == nil {
				tt.opts.Passphrase = []byte("p")
			}
			tt.opts.InsecureScryptWorkFactor = 8
			err := Init(context.Background(), dir, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("failed Init created %s", dir)
			}
		})
	}
}

func TestInitRefusesNonEmptyDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Init(context.Background(), dir, InitOptions{Passphrase: []byte("p"), InsecureScryptWorkFactor: 8})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("err = %v, want not empty", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("dir has %d entries after refused Init", len(entries))
	}
	// An existing repository is non-empty too.
	clk := newClock()
	r := newTestRepo(t, InitOptions{}, clk)
	before := treeHashes(t, r.dir)
	if err := Init(context.Background(), r.dir, InitOptions{Passphrase: []byte("p"), InsecureScryptWorkFactor: 8}); err == nil {
		t.Fatal("Init over an existing repository succeeded")
	}
	if d := diffTrees(before, treeHashes(t, r.dir)); len(d) > 0 {
		t.Fatalf("refused Init changed the repository: %v", d)
	}
}

func TestOpenNotARepository(t *testing.T) {
	_, err := Open(t.TempDir(), []byte("p"))
	if err == nil || !strings.Contains(err.Error(), "is not a ferry repository") {
		t.Fatalf("err = %v", err)
	}
}

// TestLoadMalformedKeyNoPanic_R25: a root whose key has a bad length makes
// go-tuf panic in verification; loading reports an error instead.
func TestLoadMalformedKeyNoPanic_R25(t *testing.T) {
	clk := newClock()
	r := newTestRepo(t, InitOptions{}, clk)
	p := filepath.Join(r.dir, "root.json")
	root, err := metadata.Root().FromBytes(mustRead(t, p))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range root.Signed.Keys {
		k.Value.PublicKey = "abcd"
	}
	b, _ := root.ToBytes(false)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.List(ctx); err == nil {
		t.Fatal("List accepted a root with malformed keys")
	}
	if _, err := Keys(r.dir); err == nil {
		t.Fatal("Keys accepted a root with malformed keys")
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
