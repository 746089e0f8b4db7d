package trust_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/internal/reposim"
	"github.com/ferry-updates/ferry/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// R25: malformed metadata is an error, never a panic, and changes nothing.
func TestMalformedMetadata_R25(t *testing.T) {
	e := newEnv(t)
	e.repo.MetaHashes = false
	c := e.refreshed()
	before := e.store.snapshot()
	e.repo.Publish()
	ts := e.repo.Bytes("timestamp.json")
	cases := map[string][]byte{
		"empty":          {},
		"not json":       []byte("{{{"),
		"wrong types":    []byte(`{"signed":{"_type":"timestamp","version":"1"},"signatures":[]}`),
		"missing signed": []byte(`{"signatures":[]}`),
		"huge int":       editJSON(t, ts, func(m map[string]any) { signed(m)["version"] = 1e30 }),
		"float":          []byte(strings.Replace(string(ts), `"version":2`, `"version":2.5`, 1)),
		"dup keys":       []byte(strings.Replace(string(ts), `"version":2`, `"version":2,"version":3`, 1)),
		"signed twice":   []byte(strings.Replace(string(ts), `"signed":`, `"Signed":{},"signed":`, 1)),
		"null":           []byte("null"),
		"array":          []byte("[1,2]"),
	}
	for name, data := range cases {
		e.repo.Serve("timestamp.json", data)
		if err := e.refresh(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	storeUnchanged(t, before, e.store.snapshot())

	t.Run("bad ed25519 key length in root", func(t *testing.T) {
		e := newEnv(t)
		bad := &metadata.Key{Type: "ed25519", Scheme: "ed25519", Value: metadata.KeyVal{PublicKey: strings.Repeat("ab", 31)}}
		id := keyID(t, bad)
		e.repo.Root().Signed.Keys[id] = bad
		e.repo.Root().Signed.Roles["timestamp"].KeyIDs = []string{id}
		e.repo.BumpRoot()
		e.repo.Publish()
		wantKind(t, e.client().Refresh(context.Background(), e.repo), trust.ErrBadSignature)
	})
	t.Run("bad key length in delegation", func(t *testing.T) {
		e := newEnv(t)
		e.repo.Delegate("targets", "a", []string{"*"}, false)
		del := e.repo.Targets("targets").Signed.Delegations
		bad := &metadata.Key{Type: "ed25519", Scheme: "ed25519", Value: metadata.KeyVal{PublicKey: "00"}}
		del.Keys[keyID(t, bad)] = bad
		del.Roles[0].KeyIDs = []string{keyID(t, bad)}
		e.repo.Publish()
		_, err := e.refreshed().Target(context.Background(), e.repo, "x")
		wantKind(t, err, trust.ErrBadSignature)
	})
	t.Run("bad succinct bit length", func(t *testing.T) {
		e := newEnv(t)
		k := reposim.NewKey()
		e.repo.Targets("targets").Signed.Delegations = &metadata.Delegations{
			Keys:          map[string]*metadata.Key{k.ID: k.Public},
			SuccinctRoles: &metadata.SuccinctRoles{KeyIDs: []string{k.ID}, Threshold: 1, BitLength: 40, NamePrefix: "bin"},
		}
		e.repo.MarkDirty("targets")
		e.repo.Publish()
		wantKind(t, e.client().Refresh(context.Background(), e.repo), trust.ErrInvalid)
	})
}

// R26: keys of unknown types never count toward a threshold, and do not
// make otherwise valid metadata invalid.
func TestUnknownKeyType_R26(t *testing.T) {
	e := newEnv(t)
	odd := &metadata.Key{Type: "x-quantum", Scheme: "x-quantum", Value: metadata.KeyVal{PublicKey: "whatever"}}
	oddID := keyID(t, odd)
	e.repo.Root().Signed.Keys[oddID] = odd
	r := e.repo.Root().Signed.Roles["timestamp"]
	r.KeyIDs = append(r.KeyIDs, oddID)
	e.repo.BumpRoot()
	e.repo.Publish()
	c := e.refreshed()

	r.KeyIDs = []string{oddID}
	e.repo.BumpRoot()
	e.repo.Publish()
	ts := editJSON(t, e.repo.Bytes("timestamp.json"), func(m map[string]any) {
		m["signatures"] = append(sigs(m), map[string]any{"keyid": oddID, "sig": "00"})
	})
	e.repo.Serve("timestamp.json", ts)
	wantKind(t, e.refresh(c), trust.ErrBadSignature)
}

// R27: signatures cover the bytes as served; unknown fields are kept.
func TestSignedBytesAsServed_R27(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.repo.Targets("targets").Signed.UnrecognizedFields = map[string]any{"x-ferry": map[string]any{"note": "kept"}}
	tf := e.repo.AddTarget("targets", "f", []byte("f"), nil)
	tf.UnrecognizedFields = map[string]any{"x-extra": "yes"}
	e.repo.Publish()
	c := e.refreshed()
	got, err := c.Target(ctx, e.repo, "f")
	if err != nil || got.UnrecognizedFields["x-extra"] != "yes" {
		t.Fatalf("got %+v, %v", got, err)
	}
	// Re-encoding what was served (here: indenting it) keeps it valid...
	e.repo.PublishTimestamp()
	ts := e.repo.Bytes("timestamp.json")
	pretty := editJSON(t, ts, func(map[string]any) {})
	e.repo.Serve("timestamp.json", []byte(strings.ReplaceAll(string(pretty), ",", ",\n ")))
	if err := e.refresh(c); err != nil {
		t.Fatalf("whitespace-only change rejected: %v", err)
	}
	// ...but any field added inside "signed" is not.
	e.repo.PublishTimestamp()
	e.repo.Serve("timestamp.json", editJSON(t, e.repo.Bytes("timestamp.json"), func(m map[string]any) {
		signed(m)["x-injected"] = true
	}))
	wantKind(t, e.refresh(c), trust.ErrBadSignature)
}

// R30: a Store failure aborts the refresh and leaves the previous trusted
// set in memory and in the Store.
func TestPersistFailure_R30(t *testing.T) {
	for _, role := range []string{"root", "timestamp", "snapshot", "targets"} {
		t.Run(role, func(t *testing.T) {
			e := newEnv(t)
			c := e.refreshed()
			e.repo.AddTarget("targets", "new", []byte("n"), nil)
			e.repo.BumpRoot()
			e.repo.Publish()
			e.store.fail[role] = errors.New("read-only file system")
			if err := e.refresh(c); err == nil || !strings.Contains(err.Error(), "read-only") {
				t.Fatalf("got %v", err)
			}
			if _, err := c.Target(context.Background(), e.repo, "new"); !errors.Is(err, trust.ErrNotFound) {
				t.Fatalf("state changed after failed refresh: %v", err)
			}
			delete(e.store.fail, role)
			c2 := e.client() // the store is loadable
			if err := e.refresh(c2); err != nil {
				t.Fatal(err)
			}
			if _, err := c2.Target(context.Background(), e.repo, "new"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// R52: torn or corrupted cached metadata is ignored, reported, never trusted.
func TestCorruptCache_R52(t *testing.T) {
	for _, role := range []string{"root", "timestamp", "snapshot", "targets"} {
		for _, mode := range []string{"truncate", "flip"} {
			t.Run(role+"/"+mode, func(t *testing.T) {
				e := newEnv(t)
				e.repo.BumpRoot()
				e.repo.AddTarget("targets", "f", []byte("f"), nil)
				e.repo.Publish()
				e.refreshed()
				data := e.store.m[role]
				if mode == "truncate" {
					data = data[:len(data)/2]
				} else {
					data[len(data)/3] ^= 0x01
				}
				e.store.m[role] = data
				c := e.client()
				if e.count(event.MetadataCacheIgnore) == 0 {
					t.Fatalf("corruption not reported: %s", e.logs.String())
				}
				if err := e.refresh(c); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Target(context.Background(), e.repo, "f"); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// Mangle: every byte flip and truncation of each signed document is
// rejected as a security failure of that document's role (a SecurityError
// of one of trust's kinds, naming the role), never for another reason.
func TestMangle(t *testing.T) {
	e := newEnv(t)
	e.repo.MetaHashes = false // reach the parser and signature checks
	e.repo.AddTarget("targets", "f", []byte("f"), nil)
	e.repo.Publish()
	e.refreshed()
	base := e.store.snapshot()
	e.repo.BumpRoot()
	e.repo.MarkDirty("targets")
	e.repo.Publish()
	roles := map[string]string{"2.root.json": "root", "timestamp.json": "timestamp", "3.snapshot.json": "snapshot", "3.targets.json": "targets"}
	for _, name := range []string{"2.root.json", "timestamp.json", "3.snapshot.json", "3.targets.json"} {
		orig := e.repo.Bytes(name)
		if orig == nil {
			t.Fatalf("no %s", name)
		}
		step := 1
		if testing.Short() {
			step = 7
		}
		try := func(desc string, data []byte) {
			e.store.m = mapsClone(base)
			e.repo.Serve(name, data)
			c, err := trust.New(e.config())
			if err != nil {
				t.Fatal(err)
			}
			err = c.Refresh(context.Background(), e.repo)
			if err == nil {
				t.Fatalf("%s %s accepted", name, desc)
			}
			wantSecurity(t, err, roles[name])
		}
		for i := 0; i < len(orig); i += step {
			m := append([]byte(nil), orig...)
			m[i] ^= 0x01
			try("flip", m)
		}
		for _, n := range []int{0, 1, len(orig) / 2, len(orig) - 1} {
			try("truncate", orig[:n])
		}
		e.repo.ClearOverrides()
	}
}

// wantSecurity fails unless err is a SecurityError about role, of one of
// the kinds trust reports (signature, rollback, expiry, mismatch with the
// parent, invalid metadata, too large).
func wantSecurity(t *testing.T, err error, role string) {
	t.Helper()
	var se *trust.SecurityError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want a security failure of %s", err, role)
	}
	for _, kind := range []error{trust.ErrBadSignature, trust.ErrRollback, trust.ErrExpired, trust.ErrMismatch, trust.ErrInvalid, trust.ErrTooLarge} {
		if errors.Is(se.Kind, kind) && se.Role == role {
			return
		}
	}
	t.Fatalf("got %v (kind %v, role %q), want a security failure of %s", err, se.Kind, se.Role, role)
}

func mapsClone(m map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range m {
		out[k] = append([]byte(nil), v...)
	}
	return out
}
