package trust_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/internal/reposim"
	"github.com/ferry-updates/ferry/trust"
)

// R70: a root planted in the Store, signed only by its own (attacker's)
// keys, with a timestamp, snapshot and targets of the attacker's, does not
// re-root the client. Before, a stored root newer than the shipped one was
// trusted if it was self-signed. Now the client starts from the shipped
// root, ignores and logs what does not chain from it, refuses the
// attacker's repository, and keeps working against the real one.
func TestPlantedRoot_R70(t *testing.T) {
	ctx := context.Background()
	for _, planted := range []string{"root", "2.root", "both"} {
		t.Run(planted, func(t *testing.T) {
			e := newEnv(t)
			e.repo.AddTarget("targets", "f", []byte("real"), nil)
			e.repo.Publish()
			e.refreshed()

			evil := reposim.New(t0)
			evil.AddTarget("targets", "f", []byte("attacker's"), nil)
			evil.BumpRoot()
			for range 5 { // versions far above the real ones
				evil.MarkDirty("targets")
				evil.Publish()
			}
			if planted != "2.root" {
				e.store.m["root"] = evil.RootBytes(2)
			}
			if planted != "root" {
				e.store.m["2.root"] = evil.RootBytes(2)
			}
			for _, role := range []string{"timestamp", "snapshot", "targets"} {
				e.store.m[role] = evil.Bytes(servedName(evil, role))
			}

			c := e.client()
			if n := e.count(event.MetadataCacheIgnore); n < 2 {
				t.Errorf("planted root and timestamp not reported (%d events): %s", n, e.logs.String())
			}
			wantKind(t, c.Refresh(ctx, evil), trust.ErrBadSignature)
			if err := e.refresh(c); err != nil {
				t.Fatalf("refresh against the real repository: %v", err)
			}
			tf, err := c.Target(ctx, e.repo, "f")
			if err != nil || tf.Length != int64(len("real")) {
				t.Fatalf("target f: %v %v, want the real one", tf, err)
			}
			// The real repository rotates its root: the chain goes on.
			e.repo.BumpRoot()
			e.repo.RotateKey("timestamp")
			e.repo.Publish()
			if err := e.refresh(c); err != nil {
				t.Fatal(err)
			}
			if err := e.refresh(e.client()); err != nil {
				t.Fatalf("reloaded after the real rotation: %v", err)
			}
		})
	}
}

// R70: a real rotated chain (v1 shipped, v2..v5 stored by a refresh) loads
// from the Store without fetching any of it again, even though the
// timestamp key of v5 is one the shipped root does not trust.
func TestStoredRootChain_R70(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.repo.AddTarget("targets", "f", []byte("f"), nil)
	e.repo.Publish()
	for range 4 {
		e.repo.BumpRoot()
		e.repo.RotateKey("timestamp")
		e.repo.Publish()
	}
	e.refreshed()
	for v := 2; v <= 5; v++ {
		if _, err := e.store.Load(fmt.Sprintf("%d.root", v)); err != nil {
			t.Fatalf("intermediate root %d not stored: %v", v, err)
		}
	}
	e.repo.ResetFetches()
	ignoredBefore := e.count(event.MetadataCacheIgnore)
	c := e.client()
	if err := e.refresh(c); err != nil {
		t.Fatal(err)
	}
	for name := range e.repo.FetchLog() {
		if name != "6.root.json" && name != "timestamp.json" {
			t.Errorf("fetched %s again", name)
		}
	}
	if e.count(event.MetadataCacheIgnore) > ignoredBefore {
		t.Errorf("a stored file was rejected: %s", e.logs.String())
	}
	if _, err := c.Target(ctx, e.repo, "f"); err != nil {
		t.Fatal(err)
	}
}

// R52: a broken link in the stored chain (a torn or flipped N.root) ends
// the walk there, is reported, and the refresh fetches the rest again.
func TestBrokenStoredRootChain_R52(t *testing.T) {
	for _, mode := range []string{"truncate", "flip", "missing"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t)
			e.repo.AddTarget("targets", "f", []byte("f"), nil)
			for range 4 {
				e.repo.BumpRoot()
				e.repo.RotateKey("timestamp")
				e.repo.Publish()
			}
			e.refreshed()
			data := e.store.m["3.root"]
			if data == nil {
				t.Fatal("test setup: 3.root not stored")
			}
			switch mode {
			case "truncate":
				e.store.m["3.root"] = data[:len(data)/2]
			case "flip":
				data[len(data)/3] ^= 0x01
			case "missing":
				delete(e.store.m, "3.root")
			}
			e.repo.ResetFetches()
			c := e.client()
			if e.count(event.MetadataCacheIgnore) == 0 {
				t.Fatalf("broken chain not reported: %s", e.logs.String())
			}
			if err := e.refresh(c); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"3.root.json", "4.root.json", "5.root.json"} {
				if e.repo.Fetches(name) != 1 {
					t.Errorf("%s fetched %d times, want 1", name, e.repo.Fetches(name))
				}
			}
			if e.repo.Fetches("2.root.json") != 0 {
				t.Error("2.root.json fetched again, though it was stored intact")
			}
			if _, err := c.Target(context.Background(), e.repo, "f"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A delegated role may not take a key the Store keeps for intermediate
// roots.
func TestDelegationToRootKeyName(t *testing.T) {
	e := newEnv(t)
	e.repo.Delegate("targets", "2.root", []string{"*"}, false)
	e.repo.AddTarget("2.root", "x", []byte("x"), nil)
	e.repo.Publish()
	_, err := e.refreshed().Target(context.Background(), e.repo, "x")
	wantKind(t, err, trust.ErrInvalid)
}

// R52 (and R9): when the stored chain is broken or missing (a torn N.root,
// or a state directory written before intermediate roots were kept), New
// cannot verify the cached timestamp, whose key only a later root trusts.
// Once the refresh has walked the chain again, the cached timestamp is the
// rollback reference again: an older timestamp, validly signed, is refused.
func TestRollbackReferenceAfterBrokenChain_R52(t *testing.T) {
	for _, mode := range []string{"no intermediate roots", "torn 2.root"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t)
			e.repo.BumpRoot()
			e.repo.RotateKey("timestamp")
			e.repo.Publish()
			oldTS := e.repo.Bytes("timestamp.json")
			e.repo.PublishTimestamp()
			e.refreshed() // trusts root v2 and the newer timestamp
			if mode == "torn 2.root" {
				e.store.m["2.root"] = e.store.m["2.root"][:10]
			} else {
				delete(e.store.m, "2.root")
			}
			e.repo.Serve("timestamp.json", oldTS)
			c := e.client()
			wantKind(t, e.refresh(c), trust.ErrRollback)
			e.repo.ClearOverrides()
			if err := e.refresh(c); err != nil {
				t.Fatalf("refresh with the current timestamp: %v", err)
			}
		})
	}
}
