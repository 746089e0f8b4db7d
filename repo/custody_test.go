package repo

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/rollout"
)

// newSplitRepo creates a repository whose offline keys are in their own
// directory, and opens it with them.
func newSplitRepo(t *testing.T, clk *testClock) (*Repo, string) {
	t.Helper()
	base := t.TempDir()
	dir, offline := filepath.Join(base, "repo"), filepath.Join(base, "offline-keys")
	opts := InitOptions{Passphrase: []byte(testPassphrase), OfflineKeys: offline, InsecureScryptWorkFactor: 8}
	if err := initRepo(ctx, dir, opts, clk.now); err != nil {
		t.Fatal(err)
	}
	r, err := OpenWith(dir, Options{Passphrase: Passphrase([]byte(testPassphrase)), OfflineKeys: offline, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return r, offline
}

// files lists the regular files under dir, relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	})
	slices.Sort(out)
	return out
}

// countingPass is a passphrase source that records which key files it was
// asked for.
type countingPass struct {
	mu    sync.Mutex
	asked []string
}

func (c *countingPass) pass(path string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = append(c.asked, filepath.Base(path))
	return []byte(testPassphrase), nil
}

func TestInitSplitLayout(t *testing.T) {
	clk := newClock()
	r, offline := newSplitRepo(t, clk)
	if got, want := files(t, filepath.Join(r.dir, "keys")), []string{"rollout.age", "rollout.age.pub", "snapshot.age", "snapshot.age.pub", "timestamp.age", "timestamp.age.pub"}; !slices.Equal(got, want) {
		t.Errorf("repository keys = %v, want only the online keys %v", got, want)
	}
	if got, want := files(t, offline), []string{"root-1.age", "root-1.age.pub", "root.json", "targets.age", "targets.age.pub"}; !slices.Equal(got, want) {
		t.Errorf("offline keys = %v, want %v (and the pinned root)", got, want)
	}
	if err := r.Publish(ctx, hello("1.0.0"), []string{writeFile(t, "hello", "v1")}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(files(t, offline), "apps/hello.age") || slices.Contains(files(t, filepath.Join(r.dir, "keys")), "apps/hello.age") {
		t.Errorf("the new application key is not in the offline keys directory only: %v", files(t, offline))
	}
	verifyServed(t, r.dir, clk.t)
}

func TestInitRefusesOfflineKeysInsideRepo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	for _, off := range []string{dir, filepath.Join(dir, "public", "k"), filepath.Join(dir, "keys")} {
		err := Init(ctx, dir, InitOptions{Passphrase: []byte("p"), OfflineKeys: off, InsecureScryptWorkFactor: 8})
		if err == nil || !strings.Contains(err.Error(), "is inside the repository") {
			t.Errorf("offline keys %s: err = %v", off, err)
		}
	}
	// A directory holding another repository's keys is refused too.
	clk := newClock()
	_, offline := newSplitRepo(t, clk)
	err := Init(ctx, dir, InitOptions{Passphrase: []byte("p"), OfflineKeys: offline, InsecureScryptWorkFactor: 8})
	if err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Fatalf("reused offline keys directory: err = %v", err)
	}
}

// TestPublishOpensOnlyItsKeys (item 8): a release of an existing
// application decrypts its application key, snapshot and timestamp, and
// no other key file.
func TestPublishOpensOnlyItsKeys(t *testing.T) {
	clk := newClock()
	r, offline := newSplitRepo(t, clk)
	if err := r.Publish(ctx, hello("1.0.0"), []string{writeFile(t, "hello", "v1")}); err != nil {
		t.Fatal(err)
	}
	var c countingPass
	r2, err := OpenWith(r.dir, Options{Passphrase: c.pass, OfflineKeys: offline, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.Publish(ctx, hello("1.0.1"), []string{writeFile(t, "hello", "v2")}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(c.asked)
	if want := []string{"hello.age", "snapshot.age", "timestamp.age"}; !slices.Equal(c.asked, want) {
		t.Fatalf("publish opened %v, want %v", c.asked, want)
	}
	// A refresh of the timestamp alone opens the timestamp key alone.
	var c2 countingPass
	r3, _ := OpenWith(r.dir, Options{Passphrase: c2.pass, Now: clk.now})
	clk.t = clk.t.Add(13 * time.Hour)
	res, err := r3.RefreshWith(ctx, RefreshOptions{OnlineOnly: true})
	if err != nil || !slices.Equal(res.Signed, []string{"timestamp"}) {
		t.Fatalf("timestamp refresh: %+v, %v", res, err)
	}
	if !slices.Equal(c2.asked, []string{"timestamp.age"}) {
		t.Fatalf("timestamp refresh opened %v", c2.asked)
	}
}

// TestPublishWithAppKeyOnly: a pipeline that holds only its application
// key (no offline keys directory) publishes; a new application, which
// needs the targets key, is refused with ErrMissingKey and changes nothing.
func TestPublishWithAppKeyOnly(t *testing.T) {
	clk := newClock()
	r, offline := newSplitRepo(t, clk)
	if err := r.Publish(ctx, hello("1.0.0"), []string{writeFile(t, "hello", "v1")}); err != nil {
		t.Fatal(err)
	}
	appKey, err := keys.Open(ctx, filepath.Join(offline, "apps", "hello.age"), Passphrase([]byte(testPassphrase)))
	if err != nil {
		t.Fatal(err)
	}
	ci, err := OpenWith(r.dir, Options{Passphrase: Passphrase([]byte(testPassphrase)), AppKeys: []keys.Signer{appKey}, Now: clk.now, PinnedRoot: PinnedRootFile(offline)})
	if err != nil {
		t.Fatal(err)
	}
	if err := ci.Publish(ctx, hello("1.1.0"), []string{writeFile(t, "hello", "v1.1")}); err != nil {
		t.Fatal(err)
	}
	before := treeHashes(t, r.dir)
	err = ci.Publish(ctx, Release{App: "other", Version: "1.0.0", Platform: "linux/amd64"}, []string{writeFile(t, "other", "x")})
	if !errors.Is(err, ErrMissingKey) {
		t.Fatalf("new application without the targets key: err = %v, want ErrMissingKey", err)
	}
	if d := diffTrees(before, treeHashes(t, r.dir)); len(d) > 0 {
		t.Fatalf("refused publish changed the tree: %v", d)
	}
	// A key that is not the application's is refused, not ignored.
	other, _ := keys.Generate()
	s, _ := keys.NewFileSigner(other)
	wrong, _ := OpenWith(r.dir, Options{Passphrase: Passphrase([]byte(testPassphrase)), AppKeys: []keys.Signer{s}, Now: clk.now, PinnedRoot: PinnedRootFile(offline)})
	if err := wrong.Publish(ctx, hello("1.2.0"), []string{writeFile(t, "hello", "v1.2")}); err == nil || !strings.Contains(err.Error(), "is not a key of application hello") {
		t.Fatalf("foreign application key: err = %v", err)
	}
	verifyServed(t, r.dir, clk.t)
}

// TestRefreshOnlineOnly: with only the online keys, a refresh re-signs
// timestamp and snapshot while targets and the application role are due
// and then expired, and reports them; the served repository verifies for
// as long as they have not expired.
func TestRefreshOnlineOnly(t *testing.T) {
	clk := newClock()
	r, _ := newSplitRepo(t, clk)
	if err := r.Publish(ctx, hello("1.0.0"), []string{writeFile(t, "hello", "v1")}); err != nil {
		t.Fatal(err)
	}
	server, err := OpenWith(r.dir, Options{Passphrase: Passphrase([]byte(testPassphrase)), Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(50 * 24 * time.Hour) // targets and hello past half life
	res, err := server.RefreshWith(ctx, RefreshOptions{OnlineOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{rollout.RoleName, "snapshot", "timestamp"}; !slices.Equal(res.Signed, want) { // the rollout role's key is online
		t.Errorf("signed %v, want %v", res.Signed, want)
	}
	var due []string
	for _, s := range res.Due {
		due = append(due, s.Role)
	}
	if want := []string{"targets", "hello"}; !slices.Equal(due, want) {
		t.Errorf("due %v, want %v", due, want)
	}
	verifyServed(t, r.dir, clk.t)
	// The same without OnlineOnly: the keys are not here, so the due
	// roles are skipped, not a failure.
	clk.t = clk.t.Add(13 * time.Hour)
	if err := server.Refresh(ctx, false); err != nil {
		t.Fatalf("refresh with due offline roles and no offline keys: %v", err)
	}
	verifyServed(t, r.dir, clk.t)
	// Named, a role whose keys are missing is an error.
	if _, err := server.RefreshWith(ctx, RefreshOptions{Roles: []string{"targets"}}); !errors.Is(err, ErrMissingKey) {
		t.Fatalf("--role targets without its key: err = %v", err)
	}
	// Its holder re-signs it.
	res, err = r.RefreshWith(ctx, RefreshOptions{Roles: []string{"targets", "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"hello", "targets", "snapshot", "timestamp"}; !slices.Equal(res.Signed, want) {
		t.Errorf("holder signed %v, want %v", res.Signed, want)
	}
	st, err := r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Due && s.Role != metadata.ROOT {
			t.Errorf("%s still due after its holder re-signed: %+v", s.Role, s)
		}
	}
}

func TestStatus(t *testing.T) {
	clk := newClock()
	r, _ := newSplitRepo(t, clk)
	if err := r.Publish(ctx, hello("1.0.0"), []string{writeFile(t, "hello", "v1")}); err != nil {
		t.Fatal(err)
	}
	st, err := r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"root": CustodyOffline, "targets": CustodyOffline, "snapshot": CustodyOnline, "timestamp": CustodyOnline, rollout.RoleName: CustodyOnline, "hello": CustodyApp}
	if len(st) != len(want) {
		t.Fatalf("%d roles, want %d: %+v", len(st), len(want), st)
	}
	for _, s := range st {
		if s.Custody != want[s.Role] || s.Threshold != 1 || len(s.KeyIDs) != 1 || s.ResignCmd == "" || s.TimeLeft <= 0 || s.Due {
			t.Errorf("%+v", s)
		}
	}
	clk.t = clk.t.Add(13 * time.Hour)
	st, _ = r.Status(ctx)
	if !st[3].Due || st[2].Due {
		t.Errorf("after 13h: timestamp due %v (want true), snapshot due %v (want false)", st[3].Due, st[2].Due)
	}
}

// TestOldLayoutKeepsWorking: a repository with every key under DIR/keys
// still publishes and refreshes every role, and SplitKeys moves its
// offline keys out; after that the repository needs them from the
// offline directory.
func TestOldLayoutKeepsWorking(t *testing.T) {
	clk := newClock()
	r := newTestRepo(t, InitOptions{RootKeys: 3, RootThreshold: 2}, clk)
	if err := r.Publish(ctx, hello("1.0.0"), []string{writeFile(t, "hello", "v1")}); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(50 * 24 * time.Hour)
	res, err := r.RefreshWith(ctx, RefreshOptions{})
	if err != nil || len(res.Due) != 0 || len(res.Signed) != 5 { // _rollout, hello, targets, snapshot, timestamp
		t.Fatalf("old layout refresh: %+v, %v", res, err)
	}
	offline := filepath.Join(t.TempDir(), "offline")
	moved, err := SplitKeys(ctx, r.dir, offline)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, n := range []string{"apps/hello.age", "root-1.age", "root-2.age", "root-3.age", "targets.age"} {
		want = append(want, n, n+".pub")
	}
	if got := files(t, offline); !slices.Equal(moved, want) || !slices.Equal(slices.DeleteFunc(got, func(n string) bool { return n == PinnedRootName }), want) {
		t.Fatalf("moved %v, offline dir has %v, want %v", moved, files(t, offline), want)
	}
	if got := files(t, filepath.Join(r.dir, "keys")); !slices.Equal(got, []string{"rollout.age", "rollout.age.pub", "snapshot.age", "snapshot.age.pub", "timestamp.age", "timestamp.age.pub"}) {
		t.Fatalf("repository keys after split: %v", got)
	}
	if names, _ := OfflineKeyFiles(r.dir); len(names) != 0 {
		t.Fatalf("OfflineKeyFiles after split: %v", names)
	}
	// Without the offline directory the application can no longer be signed...
	server, _ := OpenWith(r.dir, Options{Passphrase: Passphrase([]byte(testPassphrase)), Now: clk.now})
	if err := server.Publish(ctx, hello("1.0.1"), []string{writeFile(t, "hello", "v2")}); !errors.Is(err, ErrMissingKey) {
		t.Fatalf("publish without offline keys after split: %v", err)
	}
	// ...with it, it can.
	holder, _ := OpenWith(r.dir, Options{Passphrase: Passphrase([]byte(testPassphrase)), OfflineKeys: offline, Now: clk.now})
	if err := holder.Publish(ctx, hello("1.0.1"), []string{writeFile(t, "hello", "v2")}); err != nil {
		t.Fatal(err)
	}
	verifyServed(t, r.dir, clk.t)
}

// TestSplitKeysInterrupted: a split that stopped after copying (a crash
// before the originals were removed) is finished by running it again, and
// a conflicting file in the offline directory stops it with nothing
// removed.
func TestSplitKeysInterrupted(t *testing.T) {
	clk := newClock()
	r := newTestRepo(t, InitOptions{}, clk)
	offline := filepath.Join(t.TempDir(), "offline")
	keyDir := filepath.Join(r.dir, "keys")
	// The state a crash after the copies leaves: both copies exist.
	os.MkdirAll(filepath.Join(offline, "apps"), 0o700)
	b, _ := os.ReadFile(filepath.Join(keyDir, "targets.age"))
	os.WriteFile(filepath.Join(offline, "targets.age"), b, 0o600)
	if _, err := SplitKeys(ctx, r.dir, offline); err != nil {
		t.Fatal(err)
	}
	if got := files(t, offline); !slices.Equal(got, []string{"root-1.age", "root-1.age.pub", "root.json", "targets.age", "targets.age.pub"}) {
		t.Fatalf("offline: %v (want the keys and the pinned root)", got)
	}

	r2 := newTestRepo(t, InitOptions{}, clk)
	conflict := filepath.Join(t.TempDir(), "offline")
	os.MkdirAll(conflict, 0o700)
	os.WriteFile(filepath.Join(conflict, "targets.age"), []byte("another key"), 0o600)
	before := treeHashes(t, r2.dir)
	if _, err := SplitKeys(ctx, r2.dir, conflict); err == nil || !strings.Contains(err.Error(), "already exists with other content") {
		t.Fatalf("conflict: err = %v", err)
	}
	if d := diffTrees(before, treeHashes(t, r2.dir)); len(d) > 0 {
		t.Fatalf("refused split changed the repository: %v", d)
	}
}
