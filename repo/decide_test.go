package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/rollout"
	"github.com/ferry-updates/ferry/trust"
)

// memStore is a trust.Store in memory.
type memStore map[string][]byte

func (m memStore) Load(role string) ([]byte, error) {
	b, ok := m[role]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return b, nil
}

func (m memStore) Save(role string, b []byte) error { m[role] = slices.Clone(b); return nil }

// dirSource serves a repository's public/metadata to a trust client.
type dirSource string

func (d dirSource) FetchMetadata(_ context.Context, name string, maxLen int64) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(string(d), "public", "metadata", name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", name, trust.ErrNotFound)
	}
	if err == nil && int64(len(b)) > maxLen {
		return nil, fmt.Errorf("%s: longer than %d bytes", name, maxLen)
	}
	return b, err
}

// tufClient is a client of a repository, with the trust package: what
// every ferry client verifies with.
type tufClient struct {
	t   *testing.T
	c   *trust.Client
	src dirSource
}

func newTUFClient(t *testing.T, dir string, clk *testClock) *tufClient {
	t.Helper()
	c, err := trust.New(trust.Config{Root: rootBytes(t, dir), Store: memStore{}, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	tc := &tufClient{t: t, c: c, src: dirSource(dir)}
	if err := tc.refresh(); err != nil {
		t.Fatalf("first refresh: %v", err)
	}
	return tc
}

func (tc *tufClient) refresh() error { return tc.c.Refresh(context.Background(), tc.src) }

// doc returns the decisions of app as the client trusts them.
func (tc *tufClient) doc(app string) *rollout.Doc {
	tc.t.Helper()
	tf, err := tc.c.Target(context.Background(), tc.src, rollout.DocPath(app))
	if errors.Is(err, trust.ErrNotFound) {
		return &rollout.Doc{App: app, Releases: map[string]rollout.Entry{}}
	}
	if err != nil {
		tc.t.Fatalf("client: %s: %v", rollout.DocPath(app), err)
	}
	d, err := rollout.ParseDoc(app, *tf.Custom)
	if err != nil {
		tc.t.Fatal(err)
	}
	return d
}

// rolloutFixture is a repository with hello 1.0.0, 1.1.0 and 1.2.0
// published by the holder of every key, and the server: a Repo opened with
// DIR alone (the online keys), recording every key file it opens.
func rolloutFixture(t *testing.T) (holder, server *Repo, pass *countingPass, clk *testClock) {
	t.Helper()
	clk = newClock()
	holder, _ = newSplitRepo(t, clk)
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		if err := holder.Publish(ctx, hello(v), []string{writeFile(t, "hello", "hello "+v)}); err != nil {
			t.Fatal(err)
		}
	}
	pass = &countingPass{}
	server, err := OpenWith(holder.dir, Options{Passphrase: pass.pass, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return holder, server, pass, clk
}

// TestRolloutKeyAlone_R61: with the online keys alone (no offline key on
// the machine) a server starts, widens, halts, resumes, promotes and pulls
// a release, and a client verifies every decision; it opens no other key.
// It cannot decide about a version the application key did not sign, and
// a rollout role that lists a release path (a new one, or an existing one
// with other bytes) or a policy gets nothing past the client.
func TestRolloutKeyAlone_R61(t *testing.T) {
	holder, server, pass, clk := rolloutFixture(t)
	tc := newTUFClient(t, holder.dir, clk)
	steps := []struct {
		a    rollout.Action
		want func(rollout.Entry) bool
	}{
		{rollout.Action{Kind: rollout.Start, Version: "1.2.0", BasisPoints: 500}, func(e rollout.Entry) bool { return e.State == rollout.Active && e.BasisPoints == 500 }},
		{rollout.Action{Kind: rollout.Start, Version: "1.2.0", BasisPoints: 5000}, func(e rollout.Entry) bool { return e.State == rollout.Active && e.BasisPoints == 5000 }},
		{rollout.Action{Kind: rollout.Halt, Version: "1.2.0"}, func(e rollout.Entry) bool { return e.State == rollout.Halted && e.BasisPoints == 5000 }},
		{rollout.Action{Kind: rollout.Resume, Version: "1.2.0"}, func(e rollout.Entry) bool { return e.State == rollout.Active }},
		{rollout.Action{Kind: rollout.Promote, Version: "1.2.0", Channel: "beta"}, func(e rollout.Entry) bool { return e.Channel == "beta" }},
		{rollout.Action{Kind: rollout.Pull, Version: "1.1.0"}, func(e rollout.Entry) bool { return e.State == rollout.Pulled }},
	}
	salt := ""
	for _, s := range steps {
		e, err := server.Rollout(ctx, "hello", s.a)
		if err != nil {
			t.Fatalf("%+v: %v", s.a, err)
		}
		if !s.want(e) {
			t.Errorf("%+v: entry %+v", s.a, e)
		}
		if s.a.Version == "1.2.0" {
			if salt != "" && e.Salt != salt {
				t.Errorf("%s changed the salt of 1.2.0: %s, was %s", s.a.Kind, e.Salt, salt)
			}
			salt = e.Salt
		}
		if err := tc.refresh(); err != nil {
			t.Fatalf("client refresh after %s: %v", s.a.Kind, err)
		}
		if got := tc.doc("hello").Releases[s.a.Version]; got != e {
			t.Errorf("after %s the client trusts %+v, want %+v", s.a.Kind, got, e)
		}
		verifyServed(t, holder.dir, clk.t)
	}
	tsBefore := timestampVersion(t, holder.dir)
	if _, err := server.Rollout(ctx, "hello", rollout.Action{Kind: rollout.Pull, Version: "1.1.0"}); err != nil || timestampVersion(t, holder.dir) != tsBefore {
		t.Errorf("a pull of a pulled release: %v; timestamp %d, was %d (want nothing signed)", err, timestampVersion(t, holder.dir), tsBefore)
	}
	if e, signed, err := server.RolloutSigned(ctx, "hello", rollout.Action{Kind: rollout.Pull, Version: "1.1.0"}); err != nil || signed || e.State != rollout.Pulled {
		t.Errorf("RolloutSigned of a pull of a pulled release: %+v, signed %v, %v; want it pulled, nothing signed", e, signed, err)
	}
	if _, signed, err := server.RolloutSigned(ctx, "hello", rollout.Action{Kind: rollout.Halt, Version: "1.2.0"}); err != nil || !signed {
		t.Errorf("RolloutSigned of a halt of an active release: signed %v, %v", signed, err)
	}
	doc, err := server.Rollouts("hello")
	if err != nil || len(doc.Releases) != 2 || doc.Releases["1.1.0"].State != rollout.Pulled {
		t.Errorf("Rollouts = %+v, %v", doc, err)
	}
	for _, f := range pass.asked {
		if !slices.Contains([]string{"rollout.age", "snapshot.age", "timestamp.age"}, f) {
			t.Errorf("deciding opened key file %s: want the online keys only", f)
		}
	}
	// At the publisher: no decision about a version the application key
	// did not sign, and nothing changes.
	before := treeHashes(t, filepath.Join(holder.dir, "public"))
	if _, err := server.Rollout(ctx, "hello", rollout.Action{Kind: rollout.Start, Version: "9.9.9", BasisPoints: 100}); err == nil || !strings.Contains(err.Error(), "signed no release 9.9.9") {
		t.Errorf("a decision for an unsigned version: err = %v", err)
	}
	if d := diffTrees(before, treeHashes(t, filepath.Join(holder.dir, "public"))); len(d) > 0 {
		t.Errorf("a refused decision changed the repository: %v", d)
	}
	forgeRolloutTargets(t, server, tc)
}

// forgeRolloutTargets is the thief of the server: with the rollout key and
// the online keys it signs a rollout role that lists a new release, other
// bytes for a published one and a minimum safe version, and publishes it
// as the server would. The client refreshes fine, and finds none of them.
func forgeRolloutTargets(t *testing.T, server *Repo, tc *tufClient) {
	t.Helper()
	genuine, err := tc.c.Target(ctx, tc.src, "hello/1.0.0/linux-amd64/hello")
	if err != nil {
		t.Fatal(err)
	}
	st, err := loadState(server.dir)
	if err != nil {
		t.Fatal(err)
	}
	md := st.apps[rollout.RoleName]
	evil := []byte("evil")
	forged := []string{"hello/9.9.9/linux-amd64/hello", "hello/1.0.0/linux-amd64/hello", rollout.PolicyPath("hello")}
	var files []dataTarget
	for _, p := range forged {
		custom, _ := release.Custom{App: "hello", Version: "9.9.9", Platform: "linux/amd64", Kind: "binary"}.Marshal()
		if p == rollout.PolicyPath("hello") {
			custom, _ = rollout.Policy{App: "hello", MinVersion: "1.0.0"}.Marshal()
		}
		f := setDataTarget(md, p, evil)
		raw := slices.Clone(custom)
		md.Signed.Targets[p].Custom = (*json.RawMessage)(&raw)
		files = append(files, f)
	}
	if err := writeDataTargets(server.dir, files); err != nil {
		t.Fatal(err)
	}
	if err := server.commit(ctx, st, change{apps: []string{rollout.RoleName}}); err != nil {
		t.Fatalf("the thief signs with the rollout key: %v", err)
	}
	if err := tc.refresh(); err != nil {
		t.Fatalf("refresh after the forgery: %v", err)
	}
	if tf, err := tc.c.Target(ctx, tc.src, forged[0]); !errors.Is(err, trust.ErrNotFound) {
		t.Errorf("a release only the rollout key signed: %+v, %v; want not found", tf, err)
	}
	tf, err := tc.c.Target(ctx, tc.src, forged[1])
	if err != nil || tf.Length != genuine.Length || !slices.Equal(tf.Hashes["sha256"], genuine.Hashes["sha256"]) {
		t.Errorf("a published release re-signed by the rollout key: client got %+v, %v; want the application key's", tf, err)
	}
	if tf, err := tc.c.Target(ctx, tc.src, forged[2]); !errors.Is(err, trust.ErrNotFound) {
		t.Errorf("a minimum safe version signed by the rollout key: %+v, %v; want not found", tf, err)
	}
	under, err := tc.c.TargetsUnder(ctx, tc.src, "hello/")
	if err != nil || len(under) != 3 || under[forged[0]] != nil {
		t.Errorf("releases the client lists after the forgery: %v, %v; want the 3 the application key signed", keysOf(under), err)
	}
	if doc := tc.doc("hello"); len(doc.Releases) != 2 {
		t.Errorf("the decisions the rollout key did sign: %+v", doc)
	}
}

func keysOf[V any](m map[string]V) []string { return sortedKeys(m) }

// TestRolloutReplay_R62: an older rollout role replayed, with the old
// timestamp or under a new snapshot signed by the stolen online keys, is
// refused by the client, which keeps the newer decision (the halt).
func TestRolloutReplay_R62(t *testing.T) {
	holder, server, _, clk := rolloutFixture(t)
	if _, err := server.Rollout(ctx, "hello", rollout.Action{Kind: rollout.Start, Version: "1.2.0", BasisPoints: 500}); err != nil {
		t.Fatal(err)
	}
	oldTS, err := os.ReadFile(filepath.Join(metadataDir(holder.dir), "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := loadState(holder.dir)
	if err != nil {
		t.Fatal(err)
	}
	oldMeta := st.snapshot.Signed.Meta[rollout.RoleName+".json"]
	if _, err := server.Rollout(ctx, "hello", rollout.Action{Kind: rollout.Halt, Version: "1.2.0"}); err != nil {
		t.Fatal(err)
	}
	tc := newTUFClient(t, holder.dir, clk)
	halted := func(when string) {
		t.Helper()
		if e := tc.doc("hello").Releases["1.2.0"]; e.State != rollout.Halted {
			t.Errorf("%s: the client trusts %+v, want the halt", when, e)
		}
	}
	halted("before the replay")
	// The old timestamp, as served before the halt.
	tsFile := filepath.Join(metadataDir(holder.dir), "timestamp.json")
	newTS, err := os.ReadFile(tsFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tsFile, oldTS, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := tc.refresh(); err == nil {
		t.Error("the timestamp of before the halt was accepted")
	}
	halted("after an old timestamp")
	if err := os.WriteFile(tsFile, newTS, 0o644); err != nil {
		t.Fatal(err)
	}
	// A new snapshot and timestamp, signed with the stolen online keys,
	// that name the old rollout role.
	st, err = loadState(holder.dir)
	if err != nil {
		t.Fatal(err)
	}
	st.snapshot.Signed.Meta[rollout.RoleName+".json"] = oldMeta
	clk.t = clk.t.Add(time.Minute)
	if err := server.commit(ctx, st, change{snapshot: true}); err != nil {
		t.Fatal(err)
	}
	err = tc.refresh()
	if err == nil || !strings.Contains(err.Error(), rollout.RoleName) {
		t.Errorf("a snapshot naming the older %s was accepted: %v", rollout.RoleName, err)
	}
	halted("after a snapshot naming the old decisions")
}

// TestRolloutBelowMinimum_R63: the minimum safe version is signed by the
// application key alone; no decision offers or pulls to a version below
// it, at the publisher; the rollout key cannot sign one.
func TestRolloutBelowMinimum_R63(t *testing.T) {
	holder, server, _, clk := rolloutFixture(t)
	if err := server.SetMinVersion(ctx, "hello", "1.1.0"); !errors.Is(err, ErrMissingKey) {
		t.Fatalf("the server, without the application key, sets the minimum: err = %v", err)
	}
	pass := &countingPass{}
	app, err := OpenWith(holder.dir, Options{Passphrase: pass.pass, OfflineKeys: holder.opts.OfflineKeys, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := app.SetMinVersion(ctx, "hello", "3.0.0"); err == nil || !strings.Contains(err.Error(), "3.0.0 is not a signed release of hello (its releases: 1.0.0, 1.1.0, 1.2.0)") {
		t.Errorf("a minimum that is no release: err = %v", err)
	}
	if err := app.SetMinVersion(ctx, "hello", "1.1.0"); err != nil {
		t.Fatal(err)
	}
	if got, want := slices.Sorted(slices.Values(pass.asked)), []string{"hello.age", "snapshot.age", "timestamp.age"}; !slices.Equal(got, want) {
		t.Errorf("setting the minimum opened %v, want %v (the application key and the online keys)", got, want)
	}
	if min, err := server.MinVersion("hello"); err != nil || min != "1.1.0" {
		t.Errorf("MinVersion = %q, %v", min, err)
	}
	tc := newTUFClient(t, holder.dir, clk)
	tf, err := tc.c.Target(ctx, tc.src, rollout.PolicyPath("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := rollout.ParsePolicy("hello", *tf.Custom); err != nil || p.MinVersion != "1.1.0" {
		t.Errorf("the client trusts policy %+v, %v", p, err)
	}
	verifyServed(t, holder.dir, clk.t)
	if list, _ := holder.List(ctx); len(list) != 3 {
		t.Errorf("List shows the policy as a release: %+v", list)
	}
	before := treeHashes(t, filepath.Join(holder.dir, "public"))
	for _, a := range []rollout.Action{
		{Kind: rollout.Start, Version: "1.0.0", BasisPoints: 10000},
		{Kind: rollout.Resume, Version: "1.0.0"},
		{Kind: rollout.Promote, Version: "1.0.0", Channel: "beta"},
	} {
		if _, err := server.Rollout(ctx, "hello", a); err == nil || !strings.Contains(err.Error(), "below the minimum safe version 1.1.0") {
			t.Errorf("%s of 1.0.0 below the minimum: err = %v", a.Kind, err)
		}
	}
	rel := hello("1.0.5")
	rel.Rollout = &rollout.Entry{Channel: "stable", BasisPoints: 100, State: rollout.Active}
	if err := holder.Publish(ctx, rel, []string{writeFile(t, "hello", "1.0.5")}); err == nil || !strings.Contains(err.Error(), "below the minimum safe version 1.1.0") {
		t.Errorf("a release below the minimum published with a decision: err = %v", err)
	}
	if d := diffTrees(before, treeHashes(t, filepath.Join(holder.dir, "public"))); len(d) > 0 {
		t.Errorf("refused decisions changed the repository: %v", d)
	}
	if _, err := server.Rollout(ctx, "hello", rollout.Action{Kind: rollout.Pull, Version: "1.1.0"}); err != nil {
		t.Errorf("pull of the minimum itself: %v", err)
	}
	if err := app.SetMinVersion(ctx, "hello", "1.1.0"); err != nil {
		t.Errorf("setting the same minimum again: %v", err)
	}
}

// TestPublishWithRollout: a release published with a decision is served
// with it from one timestamp on, and a failure at any step leaves the old
// state served; a retry publishes both.
func TestPublishWithRollout(t *testing.T) {
	for _, step := range []string{"", "target-files", "app-roles", "snapshot"} {
		t.Run("fail at "+step, func(t *testing.T) {
			holder, _, _, clk := rolloutFixture(t)
			tsBefore := timestampVersion(t, holder.dir)
			before := verifyServed(t, holder.dir, clk.t)
			rel := hello("1.3.0")
			rel.Rollout = &rollout.Entry{Channel: "beta", BasisPoints: 500, State: rollout.Active}
			file := writeFile(t, "hello", "hello 1.3.0")
			holder.failpoint = func(s string) error {
				if s == step {
					return errInjected
				}
				return nil
			}
			err := holder.Publish(ctx, rel, []string{file})
			if step != "" {
				if !errors.Is(err, errInjected) {
					t.Fatalf("err = %v, want the injected failure", err)
				}
				assertSameServed(t, before, verifyServed(t, holder.dir, clk.t))
				if doc, _ := holder.Rollouts("hello"); len(doc.Releases) != 0 {
					t.Fatalf("a failed publish left decisions %+v", doc)
				}
				holder.failpoint = nil
				err = holder.Publish(ctx, rel, []string{file})
			}
			if err != nil {
				t.Fatal(err)
			}
			if v := timestampVersion(t, holder.dir); v != tsBefore+1 {
				t.Errorf("timestamp version %d, want %d: release and decision in one commit", v, tsBefore+1)
			}
			tc := newTUFClient(t, holder.dir, clk)
			e := tc.doc("hello").Releases["1.3.0"]
			if e.Channel != "beta" || e.BasisPoints != 500 || e.State != rollout.Active || len(e.Salt) != 32 {
				t.Errorf("the client trusts %+v", e)
			}
			if _, err := tc.c.Target(ctx, tc.src, "hello/1.3.0/linux-amd64/hello"); err != nil {
				t.Errorf("the release: %v", err)
			}
		})
	}
}

func timestampVersion(t *testing.T, dir string) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(metadataDir(dir), "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	md, err := metadata.Timestamp().FromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return md.Signed.Version
}

// TestPublishRolloutPerVersion: a decision is per version: two platforms in
// one batch share it (and must agree), a platform published later keeps
// the entry the version has, and a repository without a rollout role
// refuses a decision.
func TestPublishRolloutPerVersion(t *testing.T) {
	clk := newClock()
	r := newTestRepo(t, InitOptions{}, clk)
	e := &rollout.Entry{Channel: "beta", BasisPoints: 100, State: rollout.Active}
	lin, mac := hello("1.0.0"), Release{App: "hello", Version: "1.0.0", Platform: "darwin/arm64"}
	lin.Rollout, mac.Rollout = e, e
	other := *e
	other.BasisPoints = 200
	bad := mac
	bad.Rollout = &other
	if _, err := r.PublishBatch(ctx, []Batch{{lin, []string{writeFile(t, "hello", "l")}}, {bad, []string{writeFile(t, "hello", "m")}}}); err == nil || !strings.Contains(err.Error(), "two rollout decisions") {
		t.Errorf("two decisions for one version: err = %v", err)
	}
	if _, err := r.PublishBatch(ctx, []Batch{{lin, []string{writeFile(t, "hello", "l")}}, {mac, []string{writeFile(t, "hello", "m")}}}); err != nil {
		t.Fatal(err)
	}
	doc, err := r.Rollouts("hello")
	if err != nil || len(doc.Releases) != 1 || doc.Releases["1.0.0"].BasisPoints != 100 {
		t.Fatalf("Rollouts = %+v, %v", doc, err)
	}
	win := Release{App: "hello", Version: "1.0.0", Platform: "windows/amd64", Rollout: &other}
	if err := r.Publish(ctx, win, []string{writeFile(t, "hello.exe", "w")}); err != nil {
		t.Fatal(err)
	}
	if doc, _ := r.Rollouts("hello"); doc.Releases["1.0.0"].BasisPoints != 100 {
		t.Errorf("a later platform replaced the version's decision: %+v", doc)
	}
	makeOld(t, r)
	rel := hello("1.1.0")
	rel.Rollout = e
	if err := r.Publish(ctx, rel, []string{writeFile(t, "hello", "1.1")}); !errors.Is(err, ErrNoRolloutRole) {
		t.Errorf("a decision in a repository without a rollout role: err = %v", err)
	}
	if _, err := r.Rollout(ctx, "hello", rollout.Action{Kind: rollout.Halt, Version: "1.0.0"}); !errors.Is(err, ErrNoRolloutRole) {
		t.Errorf("Rollout without a rollout role: err = %v", err)
	}
	if doc, err := r.Rollouts("hello"); err != nil || len(doc.Releases) != 0 {
		t.Errorf("Rollouts without a rollout role: %+v, %v", doc, err)
	}
}

// TestDecisionFailpoints: a decision or a minimum safe version that fails
// after any step leaves the old state served; a retry publishes it.
func TestDecisionFailpoints(t *testing.T) {
	ops := map[string]func(r *Repo) error{
		"rollout": func(r *Repo) error {
			_, err := r.Rollout(ctx, "hello", rollout.Action{Kind: rollout.Start, Version: "1.2.0", BasisPoints: 700})
			return err
		},
		"min-version": func(r *Repo) error { return r.SetMinVersion(ctx, "hello", "1.1.0") },
	}
	for name, op := range ops {
		for _, step := range []string{"target-files", "app-roles", "snapshot"} {
			t.Run(name+"/"+step, func(t *testing.T) {
				holder, _, _, clk := rolloutFixture(t)
				before := verifyServed(t, holder.dir, clk.t)
				reached := false
				holder.failpoint = func(s string) error {
					if s == step {
						reached = true
						return errInjected
					}
					return nil
				}
				if err := op(holder); !errors.Is(err, errInjected) || !reached {
					t.Fatalf("err = %v, want the injected failure at %s", err, step)
				}
				assertSameServed(t, before, verifyServed(t, holder.dir, clk.t))
				doc, _ := holder.Rollouts("hello")
				min, _ := holder.MinVersion("hello")
				if len(doc.Releases) != 0 || min != "" {
					t.Fatalf("a failed %s is served: %+v, minimum %q", name, doc, min)
				}
				holder.failpoint = nil
				if err := op(holder); err != nil {
					t.Fatalf("retry: %v", err)
				}
				doc, _ = holder.Rollouts("hello")
				min, _ = holder.MinVersion("hello")
				if len(doc.Releases) == 0 && min == "" {
					t.Fatal("the retry published nothing")
				}
				verifyServed(t, holder.dir, clk.t)
			})
		}
	}
}
