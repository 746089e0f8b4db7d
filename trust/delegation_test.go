package trust_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/internal/metastore"
	"github.com/ferry-updates/ferry/internal/reposim"
	"github.com/ferry-updates/ferry/trust"
)

// R21: pre-order search, terminating delegations, cycles, the cap.
func TestDelegationSearch_R21(t *testing.T) {
	ctx := context.Background()
	t.Run("order", func(t *testing.T) {
		e := newEnv(t)
		e.repo.Delegate("targets", "first", []string{"app/*"}, false)
		e.repo.Delegate("targets", "second", []string{"app/*"}, false)
		e.repo.AddTarget("first", "app/x", []byte("first"), nil)
		e.repo.AddTarget("second", "app/x", []byte("second!"), nil)
		e.repo.Publish()
		tf, err := e.refreshed().Target(ctx, e.repo, "app/x")
		if err != nil || tf.Length != 5 {
			t.Fatalf("got %v %v, want first role's target", tf, err)
		}
	})
	t.Run("terminating", func(t *testing.T) {
		e := newEnv(t)
		e.repo.Delegate("targets", "term", []string{"app/*"}, true)
		e.repo.Delegate("targets", "later", []string{"app/*"}, false)
		e.repo.AddTarget("later", "app/x", []byte("x"), nil)
		e.repo.Publish()
		c := e.refreshed()
		if _, err := c.Target(ctx, e.repo, "app/x"); !errors.Is(err, trust.ErrNotFound) {
			t.Fatalf("search went past a terminating delegation: %v", err)
		}
		if e.repo.Fetches("1.later.json") != 0 {
			t.Fatal("fetched a role after a terminating delegation")
		}
	})
	t.Run("cycle", func(t *testing.T) {
		e := newEnv(t)
		e.repo.Delegate("targets", "a", []string{"*"}, false)
		e.repo.Delegate("a", "b", []string{"*"}, false)
		e.repo.Delegate("b", "a", []string{"*"}, false)
		e.repo.Publish()
		if _, err := e.refreshed().Target(ctx, e.repo, "x"); !errors.Is(err, trust.ErrNotFound) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("max delegations", func(t *testing.T) {
		e := newEnv(t)
		parent := "targets"
		for i := 0; i < 40; i++ {
			role := fmt.Sprintf("r%d", i)
			e.repo.Delegate(parent, role, []string{"*"}, false)
			parent = role
		}
		e.repo.AddTarget(parent, "deep", []byte("x"), nil)
		e.repo.Publish()
		c := e.refreshed()
		if _, err := c.Target(ctx, e.repo, "deep"); !errors.Is(err, trust.ErrNotFound) {
			t.Fatalf("got %v", err)
		}
		n := 0
		for name := range e.repo.FetchLog() {
			if strings.Contains(name, ".r") {
				n++
			}
		}
		if n > trust.DefaultMaxDelegations {
			t.Fatalf("fetched %d delegated roles", n)
		}
	})
	// TargetsUnder shares the cap, for a deep chain and a wide fan-out.
	for _, shape := range []string{"chain", "fan-out"} {
		t.Run("max delegations/TargetsUnder/"+shape, func(t *testing.T) {
			e := newEnv(t)
			parent := "targets"
			for i := 0; i < 60; i++ {
				role := fmt.Sprintf("r%d", i)
				e.repo.Delegate(parent, role, []string{"app/*"}, false)
				e.repo.AddTarget(role, fmt.Sprintf("app/%d", i), []byte("x"), nil)
				if shape == "chain" {
					parent = role
				}
			}
			e.repo.Publish()
			c := e.refreshed()
			e.repo.ResetFetches()
			got, err := c.TargetsUnder(ctx, e.repo, "app/")
			if err != nil {
				t.Fatal(err)
			}
			if n := len(e.repo.FetchLog()); n == 0 || n >= trust.DefaultMaxDelegations {
				t.Fatalf("fetched %d delegated roles, want 1..%d", n, trust.DefaultMaxDelegations-1)
			}
			if len(got) == 0 || len(got) >= trust.DefaultMaxDelegations {
				t.Fatalf("got %d targets", len(got))
			}
			if e.count(event.DelegationLimit) == 0 {
				t.Fatal("reaching the cap was not logged")
			}
		})
	}
}

// R21: hash-bin delegations. path_hash_prefixes are prefixes of the hex
// digest of the SHA-256 of the target path (the specification's
// definition, computed here): the bin whose prefix is that digest's is
// trusted, a bin named by the base64url encoding go-tuf v2.4.2 uses, listed
// first, is not.
func TestPathHashPrefixes_R21(t *testing.T) {
	ctx := context.Background()
	const path = "bins/file"
	sum := sha256.Sum256([]byte(path))
	hexd, b64 := hex.EncodeToString(sum[:]), base64.URLEncoding.EncodeToString(sum[:])
	n := 1
	for strings.HasPrefix(hexd, b64[:n]) {
		n++
	}
	// otherbin's prefix is neither path's first hex digit.
	other := strings.Trim("0123456789abcdef", hexd[:1]+hexDigestT("bins/elsewhere")[:1])[:1]
	e := newEnv(t)
	bins := []struct{ role, prefix, content string }{
		{"b64bin", b64[:n], "base64"},
		{"otherbin", other, "other"},
		{"hexbin", hexd[:2], "hex digest"},
	}
	for _, b := range bins {
		e.repo.Delegate("targets", b.role, nil, false)
		e.repo.AddTarget(b.role, path, []byte(b.content), nil)
	}
	for i, b := range bins {
		e.repo.Targets("targets").Signed.Delegations.Roles[i].PathHashPrefixes = []string{b.prefix}
	}
	e.repo.AddTarget("otherbin", "bins/elsewhere", []byte("x"), nil)
	e.repo.Publish()
	c := e.refreshed()
	tf, err := c.Target(ctx, e.repo, path)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len("hex digest")); tf.Length != want {
		t.Fatalf("%s (hex digest %s) resolved to a %d-byte target, want hexbin's %d", path, hexd, tf.Length, want)
	}
	if _, err := c.Target(ctx, e.repo, "bins/elsewhere"); !errors.Is(err, trust.ErrNotFound) {
		t.Fatalf("bins/elsewhere (digest %s) trusted from bin %q: %v", hexDigestT("bins/elsewhere"), other, err)
	}
	got, err := c.TargetsUnder(ctx, e.repo, "bins/")
	if err != nil || got[path] == nil || got[path].Length != tf.Length {
		t.Fatalf("TargetsUnder: %v %v", got, err)
	}
}

func hexDigestT(path string) string {
	sum := sha256.Sum256([]byte(path))
	return hex.EncodeToString(sum[:])
}

// R22: a role reached through a second delegator is verified against that
// delegator's keys, and a cached role against the current delegator.
func TestDiamondDelegation_R22(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.repo.Delegate("targets", "A", []string{"a/*", "b/*"}, false)
	e.repo.Delegate("targets", "B", []string{"b/*"}, false)
	e.repo.Delegate("A", "C", []string{"a/*"}, false)
	e.repo.Delegate("B", "C", []string{"b/*"}, false, reposim.NewKey()) // B trusts another key for C
	e.repo.AddTarget("C", "a/x", []byte("a"), nil)
	e.repo.AddTarget("C", "b/y", []byte("b"), nil)
	e.repo.Publish()
	c := e.refreshed()
	if _, err := c.Target(ctx, e.repo, "a/x"); err != nil {
		t.Fatalf("through A: %v", err)
	}
	// b/y: A does not delegate b/* to C, so the search reaches C through B.
	e.repo.Targets("A").Signed.Delegations.Roles[0].Paths = []string{"a/*"}
	e.repo.MarkDirty("A")
	e.repo.Publish()
	if err := e.refresh(c); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Target(ctx, e.repo, "a/x"); err != nil {
		t.Fatalf("through A: %v", err)
	}
	_, err := c.Target(ctx, e.repo, "b/y")
	wantKind(t, err, trust.ErrBadSignature)

	t.Run("delegate key rotated, role not re-signed", func(t *testing.T) {
		e := newEnv(t)
		keys := e.repo.Delegate("targets", "A", []string{"a/*"}, false)
		e.repo.AddTarget("A", "a/x", []byte("a"), nil)
		e.repo.Publish()
		c := e.refreshed()
		if _, err := c.Target(ctx, e.repo, "a/x"); err != nil {
			t.Fatal(err)
		}
		e.repo.RotateKey("A")
		e.repo.SignWith("A", keys...)
		e.repo.Publish()
		e.repo.Serve(servedName(e.repo, "A"), e.repo.Bytes(fmt.Sprintf("%d.A.json", e.repo.Targets("A").Signed.Version)))
		if err := e.refresh(c); err != nil {
			t.Fatal(err)
		}
		_, err := c.Target(ctx, e.repo, "a/x")
		wantKind(t, err, trust.ErrBadSignature)
	})
}

// R23: targets no role lists, and roles the snapshot does not list.
func TestExtraneous_R23(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.repo.Delegate("targets", "ghost", []string{"g/*"}, false)
	e.repo.AddTarget("ghost", "g/x", []byte("x"), nil)
	e.repo.Publish()
	delete(e.repo.Snapshot().Signed.Meta, "ghost.json")
	e.repo.Publish()
	c := e.client()
	if err := e.refresh(c); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Target(ctx, e.repo, "unlisted"); !errors.Is(err, trust.ErrNotFound) {
		t.Fatalf("got %v", err)
	}
	_, err := c.Target(ctx, e.repo, "g/x")
	wantKind(t, err, trust.ErrMismatch)
	for name := range e.repo.FetchLog() {
		if strings.Contains(name, "ghost") {
			t.Fatalf("fetched %s, a role not in snapshot", name)
		}
	}
}

func TestTargetsUnder(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.repo.Delegate("targets", "hello", []string{"hello/*/*/*"}, true)
	e.repo.Delegate("targets", "other", []string{"other/*/*/*"}, true)
	e.repo.AddTarget("hello", "hello/1.0/linux-amd64/hello", []byte("1"), nil)
	e.repo.AddTarget("hello", "hello/1.1/linux-amd64/hello", []byte("2"), nil)
	e.repo.AddTarget("other", "hello/9.9/linux-amd64/hello", []byte("evil"), nil) // not other's to sign
	e.repo.AddTarget("other", "other/1.0/linux-amd64/other", []byte("o"), nil)
	e.repo.Publish()
	got, err := e.refreshed().TargetsUnder(ctx, e.repo, "hello/")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range got {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{"hello/1.0/linux-amd64/hello", "hello/1.1/linux-amd64/hello"}; !slices.Equal(names, want) {
		t.Fatalf("got %v, want %v", names, want)
	}
	if e.repo.Fetches("1.other.json") != 0 {
		t.Fatal("TargetsUnder fetched an unrelated application's role")
	}
}

// R24 (client side): odd delegated role names are fetched path-escaped and
// stored in the store directory.
func TestOddRoleNames_R24(t *testing.T) {
	e := newEnv(t)
	e.repo.Delegate("targets", "../../evil/x", []string{"*"}, false)
	e.repo.AddTarget("../../evil/x", "f", []byte("x"), nil)
	e.repo.Publish()
	dir := t.TempDir()
	cfg := e.config()
	cfg.Store = metastore.Dir(filepath.Join(dir, "m"))
	c, err := trust.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(context.Background(), e.repo); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Target(context.Background(), e.repo, "f"); err != nil {
		t.Fatal(err)
	}
	if e.repo.Fetches("1...%2F..%2Fevil%2Fx.json") != 1 {
		t.Fatalf("fetches %v", e.repo.FetchLog())
	}
	top, _ := os.ReadDir(dir)
	if len(top) != 1 {
		t.Fatalf("escaped: %v", top)
	}
}

func TestDelegationToTopLevelName(t *testing.T) {
	e := newEnv(t)
	e.repo.Delegate("targets", "snapshot", []string{"*"}, false)
	e.repo.Publish()
	_, err := e.refreshed().Target(context.Background(), e.repo, "x")
	wantKind(t, err, trust.ErrInvalid)
}

// TestSupersededCacheQuiet_R1: after a publish, the cached copy of a
// delegated role is an older version than snapshot names: normal, not
// reported (it was a WARN on every agent run, walk9 #17). A cached copy
// of the version snapshot names that was altered is still reported.
func TestSupersededCacheQuiet_R1(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.repo.Delegate("targets", "app", []string{"app/*"}, false)
	e.repo.AddTarget("app", "app/1", []byte("one"), nil)
	e.repo.Publish()
	if _, err := e.refreshed().Target(ctx, e.repo, "app/1"); err != nil {
		t.Fatal(err)
	}
	e.repo.AddTarget("app", "app/2", []byte("two"), nil)
	e.repo.Publish()
	c := e.client()
	if err := e.refresh(c); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Target(ctx, e.repo, "app/2"); err != nil {
		t.Fatal(err)
	}
	if n := e.count(event.MetadataCacheIgnore); n != 0 {
		t.Fatalf("%d metadata.cache_ignore events for a cached role a publish superseded, want none:\n%s", n, e.logs.String())
	}

	// The cached copy of the current version, altered: reported at WARN.
	e.store.mu.Lock()
	e.store.m["app"] = append(e.store.m["app"], ' ')
	e.store.mu.Unlock()
	c = e.client()
	if err := e.refresh(c); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Target(ctx, e.repo, "app/2"); err != nil {
		t.Fatal(err)
	}
	if n := e.count(event.MetadataCacheIgnore); n != 1 || !strings.Contains(e.logs.String(), `"level":"WARN","msg":"metadata.cache_ignore"`) {
		t.Fatalf("%d metadata.cache_ignore events for an altered cached role, want 1 at WARN:\n%s", n, e.logs.String())
	}
}
