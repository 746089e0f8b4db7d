package repo

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var errInjected = errors.New("injected failure")

// TestPublishFailpoints injects a failure after each publish step. The
// repository that timestamp.json references must stay byte-identical and
// verify with go-tuf's trustedmetadata; a retried publish then succeeds.
func TestPublishFailpoints(t *testing.T) {
	cases := []struct {
		rel   Release
		steps []string
	}{
		// A new application: every step happens.
		{Release{App: "world", Version: "1.0.0", Platform: "linux/arm64"}, []string{"target-files", "app-key", "app-roles", "targets", "snapshot"}},
		// A new version of an existing application: targets is untouched.
		{hello("1.1.0"), []string{"target-files", "app-roles", "snapshot"}},
	}
	for _, c := range cases {
		for _, step := range c.steps {
			t.Run(c.rel.App+"/"+step, func(t *testing.T) {
				clk := newClock()
				r := newTestRepo(t, InitOptions{}, clk)
				if err := r.Publish(ctx, hello("1.0.0"), []string{writeFile(t, "hello", "v1")}); err != nil {
					t.Fatal(err)
				}
				before := verifyServed(t, r.dir, clk.t)
				var reached []string
				r.failpoint = func(s string) error {
					reached = append(reached, s)
					if s == step {
						return errInjected
					}
					return nil
				}
				f := writeFile(t, "app", "new release "+c.rel.Version)
				err := r.Publish(ctx, c.rel, []string{f})
				if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "step "+step) {
					t.Fatalf("err = %v, want injected failure at %s", err, step)
				}
				if reached[len(reached)-1] != step {
					t.Fatalf("steps reached %v", reached)
				}
				after := verifyServed(t, r.dir, clk.t)
				assertSameServed(t, before, after)

				// A fresh publisher (as after a crash) retries and succeeds.
				r2, err := Open(r.dir, []byte(testPassphrase))
				if err != nil {
					t.Fatal(err)
				}
				r2.now = clk.now
				keyBefore, _ := os.ReadFile(filepath.Join(r.dir, "keys", "apps", c.rel.App+".age"))
				if err := r2.Publish(ctx, c.rel, []string{f}); err != nil {
					t.Fatalf("retry: %v", err)
				}
				keyAfter, _ := os.ReadFile(filepath.Join(r.dir, "keys", "apps", c.rel.App+".age"))
				if len(keyBefore) > 0 && !bytes.Equal(keyBefore, keyAfter) {
					t.Error("retry replaced the application key left by the failed publish")
				}
				final := verifyServed(t, r.dir, clk.t)
				if len(final.targets) != len(before.targets)+1 {
					t.Fatalf("after retry: %d targets, want %d", len(final.targets), len(before.targets)+1)
				}
			})
		}
	}
}

// assertSameServed checks that two walks referenced the same files with the
// same bytes.
func assertSameServed(t *testing.T, before, after served) {
	t.Helper()
	names := func(s served) []string {
		var out []string
		for k := range s.files {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(names(before), names(after)) {
		t.Fatalf("served files changed: %v -> %v", names(before), names(after))
	}
	for name, b := range before.files {
		if !bytes.Equal(b, after.files[name]) {
			t.Errorf("served file %s changed", name)
		}
	}
}

// TestPublishFailAfterTimestamp: the timestamp write is the commit point; a
// failure reported after it leaves the release published, and a retry is
// a no-op.
func TestPublishFailAfterTimestamp(t *testing.T) {
	clk := newClock()
	r := newTestRepo(t, InitOptions{}, clk)
	r.failpoint = func(s string) error {
		if s == "timestamp" {
			return errInjected
		}
		return nil
	}
	f := writeFile(t, "hello", "v1")
	if err := r.Publish(ctx, hello("1.0.0"), []string{f}); !errors.Is(err, errInjected) {
		t.Fatalf("err = %v", err)
	}
	r.failpoint = nil
	if s := verifyServed(t, r.dir, clk.t); len(s.targets) != 1 {
		t.Fatalf("%d targets served, want 1", len(s.targets))
	}
	res, err := r.PublishBatch(ctx, []Batch{{Release: hello("1.0.0"), Files: []string{f}}})
	if err != nil || len(res.Unchanged) != 1 {
		t.Fatalf("retry: %+v, %v", res, err)
	}
}

// TestPublishSourceChangedWhileCopying: a file that changes between hashing
// and copying is refused, not published with bytes its hash does not match.
func TestPublishSourceChangedWhileCopying(t *testing.T) {
	clk := newClock()
	r := newTestRepo(t, InitOptions{}, clk)
	f := writeFile(t, "hello", "v1")
	b := Batch{Release: hello("1.0.0"), Files: []string{f}}
	files, err := prepare(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, []byte("v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = writeTargetFiles(ctx, r.dir, files)
	if err == nil || !strings.Contains(err.Error(), "changed while it was being published") {
		t.Fatalf("err = %v", err)
	}
	entries, _ := os.ReadDir(targetsDir(r.dir))
	if len(entries) != 0 {
		t.Fatalf("targets dir has %d entries after refused copy", len(entries))
	}
}
