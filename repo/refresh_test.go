package repo

import (
	"fmt"
	"testing"
	"time"
)

type versions struct{ ts, snap, targets, hello int64 }

func currentVersions(t *testing.T, dir string) versions {
	t.Helper()
	st, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	v := versions{st.timestamp.Signed.Version, st.snapshot.Signed.Version, st.targets.Signed.Version, 0}
	if h := st.apps["hello"]; h != nil {
		v.hello = h.Signed.Version
	}
	return v
}

// TestRefresh judges expiry with an injected clock: each role is re-signed
// once it is within half its lifetime of expiring, and the result verifies
// at that time.
func TestRefresh(t *testing.T) {
	clk := newClock()
	r := newTestRepo(t, InitOptions{}, clk)
	if err := r.Publish(ctx, hello("1.0.0"), []string{writeFile(t, "hello", "v1")}); err != nil {
		t.Fatal(err)
	}
	start := currentVersions(t, r.dir) // ts 2, snap 2, targets 2, hello 1
	steps := []struct {
		name    string
		advance time.Duration
		force   bool
		want    versions // increments relative to the previous step
	}{
		{"fresh: nothing to do", time.Hour, false, versions{}},
		{"timestamp past half life", 13 * time.Hour, false, versions{ts: 1}},
		{"forced", 0, true, versions{ts: 1, snap: 1}},
		{"snapshot past half life", 4 * 24 * time.Hour, false, versions{ts: 1, snap: 1}},
		{"targets and app past half life", 46 * 24 * time.Hour, false, versions{ts: 1, snap: 1, targets: 1, hello: 1}},
	}
	prev := start
	for _, s := range steps {
		clk.t = clk.t.Add(s.advance)
		if err := r.Refresh(ctx, s.force); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got := currentVersions(t, r.dir)
		delta := versions{got.ts - prev.ts, got.snap - prev.snap, got.targets - prev.targets, got.hello - prev.hello}
		if delta != s.want {
			t.Errorf("%s: version increments %+v, want %+v", s.name, delta, s.want)
		}
		verifyServed(t, r.dir, clk.t)
		prev = got
	}
}

// TestRefreshRepairsExpired_R13: a repository whose timestamp and snapshot
// have expired (a client would report a freeze) is repaired by Refresh.
func TestRefreshRepairsExpired_R13(t *testing.T) {
	clk := newClock()
	r := newTestRepo(t, InitOptions{}, clk)
	clk.t = clk.t.Add(8 * 24 * time.Hour)
	if _, err := walkServed(r.dir, clk.t); err == nil {
		t.Fatal("expired repository verifies")
	}
	if err := r.Refresh(ctx, false); err != nil {
		t.Fatal(err)
	}
	verifyServed(t, r.dir, clk.t)
}

func TestRefreshNeedsPassphrase(t *testing.T) {
	clk := newClock()
	r := newTestRepo(t, InitOptions{}, clk)
	ro, err := Open(r.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := treeHashes(t, r.dir)
	if err := ro.Refresh(ctx, true); err == nil {
		t.Fatal("refresh without passphrase succeeded")
	}
	if d := diffTrees(before, treeHashes(t, r.dir)); len(d) > 0 {
		t.Fatal(d)
	}
	if _, err := ro.List(ctx); err != nil {
		t.Fatalf("List without passphrase: %v", err)
	}
}

func TestPublishBatch(t *testing.T) {
	clk := newClock()
	r := newTestRepo(t, InitOptions{}, clk)
	var batch []Batch
	for a := range 5 {
		for v := range 4 {
			for _, p := range []string{"linux/amd64", "darwin/arm64"} {
				rel := Release{App: fmt.Sprintf("app%d", a), Version: fmt.Sprintf("1.%d.0", v), Platform: p}
				batch = append(batch, Batch{Release: rel, Files: []string{writeFile(t, "bin", rel.String())}})
			}
		}
	}
	res, err := r.PublishBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Published) != 40 || len(res.Unchanged) != 0 {
		t.Fatalf("published %d, unchanged %d", len(res.Published), len(res.Unchanged))
	}
	v := currentVersions(t, r.dir)
	if v.ts != 2 || v.snap != 2 || v.targets != 2 {
		t.Errorf("one batch should be one step: versions %+v", v)
	}
	if s := verifyServed(t, r.dir, clk.t); len(s.targets) != 40 {
		t.Fatalf("served %d targets", len(s.targets))
	}

	// A batch with one conflicting release is refused as a whole.
	before := treeHashes(t, r.dir)
	bad := []Batch{
		{Release: Release{App: "app9", Version: "1.0.0", Platform: "linux/amd64"}, Files: []string{writeFile(t, "bin", "new")}},
		{Release: batch[0].Release, Files: []string{writeFile(t, "bin", "different")}},
	}
	if _, err := r.PublishBatch(ctx, bad); err == nil {
		t.Fatal("conflicting batch accepted")
	}
	if _, err := r.PublishBatch(ctx, []Batch{bad[0], bad[0]}); err == nil {
		t.Fatal("batch with a release twice accepted")
	}
	if d := diffTrees(before, treeHashes(t, r.dir)); len(d) > 0 {
		t.Fatalf("refused batch changed the tree: %v", d)
	}

	// Identical releases are reported unchanged next to new ones.
	res, err = r.PublishBatch(ctx, []Batch{batch[0], bad[0]})
	if err != nil || len(res.Published) != 1 || len(res.Unchanged) != 1 {
		t.Fatalf("mixed batch: %+v, %v", res, err)
	}
}
