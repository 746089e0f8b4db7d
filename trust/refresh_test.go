package trust_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/internal/reposim"
	"github.com/ferry-updates/ferry/trust"
)

func TestRefreshAndTarget(t *testing.T) {
	e := newEnv(t)
	want := e.repo.AddTarget("targets", "hello/1.0/linux-amd64/hello", []byte("hello"), map[string]any{"app": "hello"})
	e.repo.Publish()
	c := e.refreshed()
	tf, err := c.Target(context.Background(), e.repo, "hello/1.0/linux-amd64/hello")
	if err != nil {
		t.Fatal(err)
	}
	if !tf.Equal(*want) || tf.Path != "hello/1.0/linux-amd64/hello" || tf.Custom == nil {
		t.Fatalf("got %+v, want %+v", tf, want)
	}
	if _, err := c.Target(context.Background(), e.repo, "nope"); !errors.Is(err, trust.ErrNotFound) {
		t.Fatalf("missing target: got %v, want ErrNotFound", err)
	}
	// A new client loads everything from the store and needs only timestamp.json.
	e.repo.ResetFetches()
	c2 := e.client()
	if err := e.refresh(c2); err != nil {
		t.Fatal(err)
	}
	if got := e.repo.FetchLog(); len(got) != 2 || got["timestamp.json"] != 1 || got["2.root.json"] != 1 {
		t.Fatalf("fetches after restart: %v, want 2.root.json probe and timestamp.json", got)
	}
}

func TestTargetBeforeRefresh(t *testing.T) {
	e := newEnv(t)
	if _, err := e.client().Target(context.Background(), e.repo, "x"); !errors.Is(err, trust.ErrNotRefreshed) {
		t.Fatalf("got %v", err)
	}
}

func TestNewRequiresRootAndStore(t *testing.T) {
	e := newEnv(t)
	for _, cfg := range []trust.Config{{Store: e.store}, {Root: e.repo.RootBytes(1)}, {Root: []byte("{}"), Store: e.store}} {
		if _, err := trust.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestNoChangeRefreshFetchesOnlyTimestamp(t *testing.T) {
	e := newEnv(t)
	e.repo.AddTarget("targets", "a/1", []byte("a"), nil)
	e.repo.Delegate("targets", "a", []string{"a/*"}, false)
	e.repo.Publish()
	c := e.refreshed()
	if _, err := c.Target(context.Background(), e.repo, "a/1"); err != nil {
		t.Fatal(err)
	}
	e.repo.ResetFetches()
	saves := e.store.saves
	for i := 0; i < 3; i++ {
		if err := e.refresh(c); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Target(context.Background(), e.repo, "a/1"); err != nil {
			t.Fatal(err)
		}
	}
	got := e.repo.FetchLog()
	if got["timestamp.json"] != 3 || got["2.root.json"] != 3 || len(got) != 2 {
		t.Fatalf("fetches: %v, want only timestamp.json and the next root probe", got)
	}
	if e.store.saves != saves {
		t.Fatalf("a no-change refresh wrote to the store")
	}
}

func TestTimestampOnlyChange(t *testing.T) {
	e := newEnv(t)
	c := e.refreshed()
	e.repo.PublishTimestamp()
	e.repo.ResetFetches()
	if err := e.refresh(c); err != nil {
		t.Fatal(err)
	}
	if got := e.repo.FetchLog(); len(got) != 2 {
		t.Fatalf("fetches: %v", got)
	}
}

// R1: unsigned or wrongly signed timestamp, snapshot, targets.
func TestBadSignature_R1(t *testing.T) {
	for _, role := range []string{"timestamp", "snapshot", "targets"} {
		for _, mode := range []string{"wrong key", "no signatures"} {
			t.Run(role+"/"+mode, func(t *testing.T) {
				e := newEnv(t)
				e.repo.MetaHashes = false
				c := e.refreshed()
				before := e.store.snapshot()
				e.repo.AddTarget("targets", "x", []byte("x"), nil)
				if mode == "wrong key" {
					e.repo.SignWith(role, reposim.NewKey())
				}
				e.repo.Publish()
				if mode == "no signatures" {
					name := servedName(e.repo, role)
					e.repo.Serve(name, editJSON(t, e.repo.Bytes(name), func(m map[string]any) { m["signatures"] = []any{} }))
				}
				n := e.rejects()
				wantKind(t, e.refresh(c), trust.ErrBadSignature)
				if e.rejects() != n+1 {
					t.Fatalf("want exactly one logged rejection, log:\n%s", e.logs.String())
				}
				if after := e.store.snapshot(); string(after[role]) != string(before[role]) {
					t.Fatalf("rejected %s persisted", role)
				}
				if _, err := c.Target(context.Background(), e.repo, "x"); !errors.Is(err, trust.ErrNotFound) {
					t.Fatalf("target from untrusted metadata: %v", err)
				}
			})
		}
	}
}

// servedName is the file name of role's current version.
func servedName(r *reposim.Repo, role string) string {
	switch role {
	case "timestamp":
		return "timestamp.json"
	case "snapshot":
		return itoa(r.Snapshot().Signed.Version) + ".snapshot.json"
	}
	return itoa(r.Targets(role).Signed.Version) + "." + role + ".json"
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// R2: k-1 of k signatures.
func TestThresholdNotMet_R2(t *testing.T) {
	for _, role := range []string{"timestamp", "snapshot", "targets", "root"} {
		t.Run(role, func(t *testing.T) {
			e := newEnv(t)
			e.repo.AddKey(role)
			e.repo.SetThreshold(role, 2)
			e.repo.Publish()
			c := e.refreshed()
			e.repo.SignWith(role, e.repo.Keys(role)[0])
			e.repo.BumpRoot()
			e.repo.MarkDirty("targets")
			e.repo.Publish()
			wantKind(t, e.refresh(c), trust.ErrBadSignature)
		})
	}
}

// R3: the same key id signing twice counts once.
func TestDuplicateSignature_R3(t *testing.T) {
	e := newEnv(t)
	e.repo.AddKey("timestamp")
	e.repo.SetThreshold("timestamp", 2)
	e.repo.Publish()
	c := e.refreshed()
	e.repo.SignWith("timestamp", e.repo.Keys("timestamp")[0])
	e.repo.Publish()
	ts := editJSON(t, e.repo.Bytes("timestamp.json"), func(m map[string]any) {
		m["signatures"] = append(sigs(m), sigs(m)[0])
	})
	e.repo.Serve("timestamp.json", ts)
	if err := e.refresh(c); err == nil || !(errors.Is(err, trust.ErrBadSignature) || errors.Is(err, trust.ErrInvalid)) {
		t.Fatalf("duplicate signature accepted: %v", err)
	}
}

// R4: one public key under two key ids counts once. The second ID is the
// key's own ID in another encoding (an extra member, as old TUF writers add
// keyid_hash_algorithms), so the root is valid and only the count matters.
func TestDuplicatePublicKey_R4(t *testing.T) {
	e := newEnv(t)
	k := e.repo.Keys("timestamp")[0]
	alt := &metadata.Key{Type: k.Public.Type, Scheme: k.Public.Scheme, Value: k.Public.Value,
		UnrecognizedFields: map[string]any{"keyid_hash_algorithms": []any{"sha256"}}}
	altID := keyID(t, alt)
	e.repo.Root().Signed.Keys[altID] = alt
	role := e.repo.Root().Signed.Roles["timestamp"]
	role.KeyIDs = append(role.KeyIDs, altID)
	role.Threshold = 2
	e.repo.BumpRoot()
	e.repo.Publish()
	ts := editJSON(t, e.repo.Bytes("timestamp.json"), func(m map[string]any) {
		s := sigs(m)[0].(map[string]any)
		m["signatures"] = append(sigs(m), map[string]any{"keyid": altID, "sig": s["sig"]})
	})
	e.repo.Serve("timestamp.json", ts)
	wantKind(t, e.client().Refresh(context.Background(), e.repo), trust.ErrBadSignature)
}

// R4: a key ID names exactly one key, the one it is computed from. A root or
// a delegation listing a key under another key's ID (a thief's key under the
// ID holders know) is invalid, even when everything else verifies.
func TestKeyIDNotBoundToKey_R4(t *testing.T) {
	t.Run("root", func(t *testing.T) {
		e := newEnv(t)
		c := e.refreshed()
		thief := reposim.NewKey()
		id := e.repo.Keys("targets")[0].ID
		e.repo.Root().Signed.Keys[id] = thief.Public
		e.repo.BumpRoot()
		e.repo.Publish()
		wantKind(t, e.refresh(c), trust.ErrInvalid)
	})
	t.Run("delegation", func(t *testing.T) {
		e := newEnv(t)
		e.repo.Delegate("targets", "a", []string{"*"}, false)
		e.repo.AddTarget("a", "x", []byte("genuine"), nil)
		e.repo.Publish()
		c := e.refreshed()
		del := e.repo.Targets("targets").Signed.Delegations
		thief := reposim.NewKey()
		del.Keys[del.Roles[0].KeyIDs[0]] = thief.Public
		e.repo.MarkDirty("targets")
		e.repo.Publish()
		err := e.refresh(c)
		if err == nil {
			_, err = c.Target(context.Background(), e.repo, "x")
		}
		wantKind(t, err, trust.ErrInvalid)
	})
}

// R5: thresholds of zero or below make metadata invalid.
func TestInvalidThreshold_R5(t *testing.T) {
	for _, th := range []int{0, -1} {
		e := newEnv(t)
		e.repo.Root().Signed.Roles["timestamp"].Threshold = th
		e.repo.BumpRoot()
		e.repo.Publish()
		wantKind(t, e.client().Refresh(context.Background(), e.repo), trust.ErrInvalid)

		e = newEnv(t)
		e.repo.Delegate("targets", "a", []string{"a/*"}, false)
		e.repo.AddTarget("a", "a/1", nil, nil)
		e.repo.Targets("targets").Signed.Delegations.Roles[0].Threshold = th
		e.repo.Publish()
		c := e.refreshed()
		_, err := c.Target(context.Background(), e.repo, "a/1")
		wantKind(t, err, trust.ErrInvalid)
	}
}

// R6: a new root must be signed by the old and the new threshold; a
// rejected root is not kept and is rejected again next time.
func TestRootRotationSignatures_R6(t *testing.T) {
	for _, mode := range []string{"only new", "only old"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t)
			c := e.refreshed()
			old := e.repo.Keys("root")[0]
			nk := e.repo.RotateKey("root")
			if mode == "only new" {
				e.repo.SignWith("root", nk)
			} else {
				e.repo.SignWith("root", old)
			}
			e.repo.Publish()
			for i := 0; i < 2; i++ {
				wantKind(t, e.refresh(c), trust.ErrBadSignature)
				if got, _ := e.store.Load("root"); got != nil && string(got) != string(e.repo.RootBytes(1)) {
					t.Fatal("rejected root persisted")
				}
				if got, err := e.store.Load("2.root"); err == nil {
					t.Fatalf("rejected root persisted as 2.root (%d bytes)", len(got))
				}
			}
		})
	}
}

// R7: root versions must be consecutive.
func TestRootVersion_R7(t *testing.T) {
	e := newEnv(t)
	c := e.refreshed()
	e.repo.BumpRoot()
	e.repo.Publish()
	e.repo.BumpRoot()
	e.repo.Publish()
	e.repo.Serve("2.root.json", e.repo.RootBytes(3))
	wantKind(t, e.refresh(c), trust.ErrInvalid)
	e.repo.Serve("2.root.json", e.repo.RootBytes(1))
	if err := e.refresh(c); err == nil {
		t.Fatal("same root version accepted as the next")
	}
}

// R8: an endless root chain stops at MaxRootRotations.
func TestMaxRootRotations_R8(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 300; i++ {
		e.repo.BumpRoot()
		e.repo.Publish()
	}
	c := e.client()
	if err := e.refresh(c); err != nil {
		t.Fatal(err)
	}
	if e.repo.Fetches("257.root.json") != 1 || e.repo.Fetches("258.root.json") != 0 {
		t.Fatalf("root fetches: %v", e.repo.FetchLog())
	}
}

// R9: timestamp rollback, also when the trusted timestamp expired; an
// equal version is a quiet no-op.
func TestTimestampRollback_R9(t *testing.T) {
	e := newEnv(t)
	e.repo.SetExpires("timestamp", t0.Add(2*time.Hour))
	e.repo.Publish()
	c := e.refreshed()
	oldTS := e.repo.Bytes("timestamp.json")
	e.repo.Publish()
	if err := e.refresh(c); err != nil {
		t.Fatal(err)
	}
	cur := e.repo.Bytes("timestamp.json")
	e.repo.Serve("timestamp.json", oldTS)
	wantKind(t, e.refresh(c), trust.ErrRollback)
	e.now = t0.Add(3 * time.Hour) // trusted timestamp now expired
	wantKind(t, e.refresh(c), trust.ErrRollback)
	e.now = t0.Add(time.Hour)
	e.repo.Serve("timestamp.json", cur)
	n := e.rejects()
	if err := e.refresh(c); err != nil || e.rejects() != n {
		t.Fatalf("equal version: %v", err)
	}
}

// R10: the snapshot version named by the timestamp must not decrease.
func TestSnapshotVersionInTimestampRollback_R10(t *testing.T) {
	e := newEnv(t)
	e.repo.Publish()
	c := e.refreshed()
	old := *e.repo.Timestamp().Signed.Meta["snapshot.json"]
	e.repo.Publish()
	e.repo.Timestamp().Signed.Meta["snapshot.json"] = &old
	old.Version = 1
	e.repo.PublishTimestamp()
	wantKind(t, e.refresh(c), trust.ErrRollback)
}

// R11: targets versions in snapshot must not decrease nor disappear.
func TestTargetsVersionRollback_R11(t *testing.T) {
	for _, mode := range []string{"decrease", "disappear"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t)
			e.repo.Delegate("targets", "a", []string{"a/*"}, false)
			e.repo.Publish()
			c := e.refreshed()
			m := e.repo.Snapshot().Signed.Meta
			if mode == "decrease" {
				old := *m["targets.json"]
				e.repo.MarkDirty("targets")
				e.repo.Publish()
				if err := e.refresh(c); err != nil {
					t.Fatal(err)
				}
				m["targets.json"] = &old
			} else {
				delete(m, "a.json")
			}
			e.repo.Publish()
			wantKind(t, e.refresh(c), trust.ErrRollback)
		})
	}
}

// R12: mix-and-match: a snapshot or targets other than the parent names.
func TestMixAndMatch_R12(t *testing.T) {
	for _, hashes := range []bool{true, false} {
		for _, role := range []string{"snapshot", "targets"} {
			e := newEnv(t)
			e.repo.MetaHashes = hashes
			e.repo.MarkDirty("targets")
			e.repo.Publish()
			c := e.refreshed()
			oldName := servedName(e.repo, role)
			old := e.repo.Bytes(oldName)
			e.repo.MarkDirty("targets")
			e.repo.Publish()
			e.repo.Serve(servedName(e.repo, role), old)
			wantKind(t, e.refresh(c), trust.ErrMismatch)
		}
	}
}

// R13: expired metadata is rejected, judged at the refresh's start time.
func TestFreeze_R13(t *testing.T) {
	for _, role := range []string{"root", "timestamp", "snapshot", "targets"} {
		t.Run(role, func(t *testing.T) {
			e := newEnv(t)
			e.repo.SetExpires(role, t0.Add(30*time.Minute))
			e.repo.MarkDirty("targets")
			e.repo.Publish()
			c := e.client()
			wantKind(t, e.refresh(c), trust.ErrExpired)
		})
	}
	t.Run("clock moves during refresh", func(t *testing.T) {
		e := newEnv(t)
		calls := 0
		cfg := e.config()
		cfg.Now = func() time.Time { calls++; return t0.Add(time.Duration(calls) * 100 * 24 * time.Hour) }
		c, err := trust.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Refresh(context.Background(), e.repo); err != nil || calls != 1 {
			t.Fatalf("refresh: %v after %d clock reads", err, calls)
		}
		if want := t0.Add(100 * 24 * time.Hour); !c.RefTime.Equal(want) {
			t.Fatalf("RefTime %v, want %v", c.RefTime, want)
		}
	})
	t.Run("held metadata expires", func(t *testing.T) {
		e := newEnv(t)
		c := e.refreshed()
		e.now = t0.AddDate(1, 0, 1)
		wantKind(t, e.refresh(c), trust.ErrExpired)
	})
}

// R14: after a fast-forward attack and a key rotation, updates resume.
func TestFastForwardRecovery_R14(t *testing.T) {
	for _, role := range []string{"timestamp", "snapshot"} {
		t.Run(role, func(t *testing.T) {
			e := newEnv(t)
			c := e.refreshed()
			var v *int64
			if role == "timestamp" {
				v = &e.repo.Timestamp().Signed.Version
			} else {
				v = &e.repo.Snapshot().Signed.Version
			}
			saved := *v
			*v = 1 << 40
			e.repo.Publish()
			if err := e.refresh(c); err != nil {
				t.Fatal(err)
			}
			*v = saved
			e.repo.Publish()
			wantKind(t, e.refresh(c), trust.ErrRollback)
			e.repo.RotateKey(role)
			e.repo.Publish()
			if err := e.refresh(c); err != nil {
				t.Fatalf("no recovery after key rotation: %v", err)
			}
			if err := e.refresh(e.client()); err != nil {
				t.Fatalf("restarted client: %v", err)
			}
		})
	}
}

// R28: a mirror that answers 403 for a missing file (S3-style) ends the
// root chain like a 404; for any other file a 403 is an error.
func TestRootProbeForbidden_R28(t *testing.T) {
	e := newEnv(t)
	e.repo.MissingStatus = 403
	c := e.refreshed()
	e.repo.BumpRoot()
	e.repo.Publish()
	if err := e.refresh(c); err != nil {
		t.Fatalf("refresh over a root rotation: %v", err)
	}
	e.repo.Hide("timestamp.json")
	if err := e.refresh(c); !errors.Is(err, trust.ErrForbidden) {
		t.Fatalf("forbidden timestamp: got %v, want ErrForbidden", err)
	}
}
