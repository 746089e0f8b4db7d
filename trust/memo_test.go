package trust_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func names(m map[string]*metadata.TargetFiles) []string {
	var out []string
	for n := range m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// memoEnv is a repository with one application role "hello" (one release).
func memoEnv(t *testing.T) *env {
	e := newEnv(t)
	e.repo.Delegate("targets", "hello", []string{"hello/*/*/*"}, true)
	e.repo.AddTarget("hello", "hello/1.0/linux-amd64/hello", []byte("1"), nil)
	e.repo.Publish()
	return e
}

// TestLookupMemo checks that repeated lookups after a refresh that changed
// nothing give the same answers without fetching, that callers cannot
// change the memoized answer, and that every change of trusted metadata
// (a new release, a new root) is visible after the refresh that trusts it.
func TestLookupMemo(t *testing.T) {
	ctx := context.Background()
	e := memoEnv(t)
	c := e.refreshed()
	const p1, p2 = "hello/1.0/linux-amd64/hello", "hello/1.1/linux-amd64/hello"
	got, err := c.TargetsUnder(ctx, e.repo, "hello/")
	if err != nil || !slices.Equal(names(got), []string{p1}) {
		t.Fatalf("first lookup: %v %v", names(got), err)
	}
	delete(got, p1) // the caller's map is its own
	if err := e.refresh(c); err != nil {
		t.Fatal(err)
	}
	fetches := e.repo.Fetches("1.hello.json")
	again, err := c.TargetsUnder(ctx, e.repo, "hello/")
	if err != nil || !slices.Equal(names(again), []string{p1}) {
		t.Fatalf("memoized lookup: %v %v", names(again), err)
	}
	again[p1].Length = 999
	if tf, err := c.Target(ctx, e.repo, p1); err != nil || tf.Length != 1 {
		t.Fatalf("Target after a caller changed its copy: %+v %v", tf, err)
	}
	if tf, err := c.Target(ctx, e.repo, p1); err != nil || tf.Length != 1 {
		t.Fatalf("memoized Target: %+v %v", tf, err)
	}
	if e.repo.Fetches("1.hello.json") != fetches {
		t.Fatal("a repeated lookup fetched the role again")
	}

	// A new release: visible after the refresh that trusts it.
	e.repo.AddTarget("hello", p2, []byte("22"), nil)
	e.repo.Publish()
	if got, _ := c.TargetsUnder(ctx, e.repo, "hello/"); !slices.Equal(names(got), []string{p1}) {
		t.Fatalf("before the refresh: %v", names(got))
	}
	if err := e.refresh(c); err != nil {
		t.Fatal(err)
	}
	got, err = c.TargetsUnder(ctx, e.repo, "hello/")
	if err != nil || !slices.Equal(names(got), []string{p1, p2}) {
		t.Fatalf("after publishing %s: %v %v", p2, names(got), err)
	}
	if tf, err := c.Target(ctx, e.repo, p2); err != nil || tf.Length != 2 {
		t.Fatalf("Target of the new release: %+v %v", tf, err)
	}

	// A release withdrawn under a new root: gone after the refresh.
	e.repo.RemoveTarget("hello", p2)
	e.repo.BumpRoot()
	e.repo.Publish()
	if err := e.refresh(c); err != nil {
		t.Fatal(err)
	}
	if got, err := c.TargetsUnder(ctx, e.repo, "hello/"); err != nil || !slices.Equal(names(got), []string{p1}) {
		t.Fatalf("after withdrawing %s: %v %v", p2, names(got), err)
	}
	if _, err := c.Target(ctx, e.repo, p2); err == nil {
		t.Fatal("Target still returns a withdrawn release")
	}
}

// TestLookupMemoExpiry_R13: a memoized lookup is not served once a
// delegated role it used has expired, even if the refresh changed nothing.
func TestLookupMemoExpiry_R13(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.repo.Delegate("targets", "hello", []string{"hello/*/*/*"}, true)
	e.repo.AddTarget("hello", "hello/1.0/linux-amd64/hello", []byte("1"), nil)
	e.repo.SetExpires("hello", e.now.Add(time.Hour))
	e.repo.Publish()
	c := e.refreshed()
	if _, err := c.TargetsUnder(ctx, e.repo, "hello/"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Target(ctx, e.repo, "hello/1.0/linux-amd64/hello"); err != nil {
		t.Fatal(err)
	}
	e.now = e.now.Add(2 * time.Hour) // hello expired; the rest is valid
	if err := e.refresh(c); err != nil {
		t.Fatal(err)
	}
	_, err := c.TargetsUnder(ctx, e.repo, "hello/")
	wantKind(t, err, trust.ErrExpired)
	_, err = c.Target(ctx, e.repo, "hello/1.0/linux-amd64/hello")
	wantKind(t, err, trust.ErrExpired)
}

// TestLookupMemoTopLevel: with no delegated role at all, a release added
// to top-level targets is visible after the refresh that trusts it.
func TestLookupMemoTopLevel(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.repo.AddTarget("targets", "top/1.0/linux-amd64/top", []byte("t"), nil)
	e.repo.Publish()
	c := e.refreshed()
	for i, want := range []int{1, 2} {
		got, err := c.TargetsUnder(ctx, e.repo, "top/")
		if err != nil || len(got) != want {
			t.Fatalf("step %d: %v %v, want %d targets", i, names(got), err, want)
		}
		if _, err := c.Target(ctx, e.repo, "top/1.1/linux-amd64/top"); (err == nil) != (want == 2) {
			t.Fatalf("step %d: Target of top/1.1: %v", i, err)
		}
		e.repo.AddTarget("targets", "top/1.1/linux-amd64/top", []byte("tt"), nil)
		e.repo.Publish()
		if err := e.refresh(c); err != nil {
			t.Fatal(err)
		}
	}
}
