package repo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/rollout"
	"github.com/ferry-updates/ferry/trust"
)

// checkRolloutRole checks that dir's served targets delegate the rollout
// role as the format says, that snapshot lists it, and that its key is
// wantID.
func checkRolloutRole(t *testing.T, dir, wantID string) {
	t.Helper()
	st, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := delegationOf(st.targets, rollout.RoleName)
	if d == nil {
		t.Fatal("targets does not delegate the rollout role")
	}
	if d.Threshold != 1 || !d.Terminating || !slices.Equal(d.Paths, []string{rollout.PathPattern}) || !slices.Equal(d.KeyIDs, []string{wantID}) {
		t.Errorf("rollout delegation %+v, want terminating, threshold 1, paths [%s], key %s", d, rollout.PathPattern, wantID)
	}
	if st.snapshot.Signed.Meta[rollout.RoleName+".json"] == nil || st.apps[rollout.RoleName] == nil {
		t.Errorf("snapshot does not list %s.json", rollout.RoleName)
	}
}

func pubKeyID(t *testing.T, file string) string {
	t.Helper()
	k, err := keys.ReadPublic(file)
	if err != nil {
		t.Fatal(err)
	}
	id, err := k.ID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestInitRolloutRole(t *testing.T) {
	clk := newClock()
	r, offline := newSplitRepo(t, clk)
	file := filepath.Join(r.dir, "keys", "rollout.age")
	checkRolloutRole(t, r.dir, pubKeyID(t, file+".pub"))
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("rollout key file %s: %v %v", file, fi, err)
	}
	if _, err := os.Stat(filepath.Join(offline, "rollout.age")); err == nil {
		t.Error("the rollout key is online: it must not be in the offline keys directory")
	}
	verifyServed(t, r.dir, clk.t)
	st, err := r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 5 || st[4].Role != rollout.RoleName || st[4].Custody != CustodyOnline || st[4].Version != 1 {
		t.Errorf("status %+v, want the rollout role fifth, online, version 1", st)
	}
	ks, err := Keys(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(ks, func(k KeyInfo) bool { return k.Role == rollout.RoleName }); i < 0 || ks[i].File != file {
		t.Errorf("keys %+v: want the rollout role with file %s", ks, file)
	}
	// A server with only DIR is no holder: its rollout key is online.
	server, err := OpenWith(r.dir, Options{Passphrase: Passphrase([]byte(testPassphrase)), Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.RefreshWith(ctx, RefreshOptions{OnlineOnly: true, Force: true}); err != nil {
		t.Fatal(err)
	}
}

func TestInitRolloutOnlineSigner(t *testing.T) {
	clk := newClock()
	s := newSigner(t)
	r := newTestRepo(t, InitOptions{OnlineSigners: map[string]keys.Signer{RolloutKeyName: s}}, clk)
	checkRolloutRole(t, r.dir, keyID(t, s))
	if _, err := os.Stat(filepath.Join(r.dir, "keys", "rollout.age")); err == nil {
		t.Error("a rollout key held elsewhere: Init made a key file all the same")
	}
	// A server with the rollout key in its HSM (Options.Signers) decides;
	// that signer does not make it a holder of offline keys.
	if err := r.Publish(ctx, hello("1.0.0"), []string{writeFile(t, "hello", "v1")}); err != nil {
		t.Fatal(err)
	}
	server, err := OpenWith(r.dir, Options{Passphrase: Passphrase([]byte(testPassphrase)), Signers: []keys.Signer{s}, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.Rollout(ctx, "hello", rollout.Action{Kind: rollout.Start, Version: "1.0.0", BasisPoints: 1}); err != nil {
		t.Fatalf("a decision with the rollout key in Options.Signers: %v", err)
	}
	verifyServed(t, r.dir, clk.t)
	for _, bad := range []string{rollout.RoleName, "targets", "root"} {
		err := Init(ctx, filepath.Join(t.TempDir(), "r"), InitOptions{Passphrase: []byte("p"), OnlineSigners: map[string]keys.Signer{bad: s}})
		if err == nil || !strings.Contains(err.Error(), "want a signer for snapshot, timestamp or rollout") {
			t.Errorf("online signer for %q: err = %v", bad, err)
		}
	}
}

// makeOld turns r into a repository made before rollouts: targets delegates
// no rollout role and snapshot lists none.
func makeOld(t *testing.T, r *Repo) {
	t.Helper()
	st, err := loadState(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	d := st.targets.Signed.Delegations
	d.Roles = slices.DeleteFunc(d.Roles, func(x metadata.DelegatedRole) bool { return x.Name == rollout.RoleName })
	dropUnusedKeys(d)
	delete(st.apps, rollout.RoleName)
	delete(st.snapshot.Signed.Meta, rollout.RoleName+".json")
	if err := r.commit(ctx, st, change{targets: true}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"rollout.age", "rollout.age.pub"} {
		os.Remove(filepath.Join(r.dir, "keys", f))
	}
	if st, _ := loadState(r.dir); delegationOf(st.targets, rollout.RoleName) != nil {
		t.Fatal("still delegated")
	}
}

func TestAddRolloutRole(t *testing.T) {
	clk := newClock()
	r, _ := newSplitRepo(t, clk)
	if err := r.Publish(ctx, hello("1.0.0"), []string{writeFile(t, "hello", "v1")}); err != nil {
		t.Fatal(err)
	}
	makeOld(t, r)
	// The server alone has no targets key: refused, the repository
	// unchanged but for the new rollout key, and the message names the
	// ceremony.
	server, err := OpenWith(r.dir, Options{Passphrase: Passphrase([]byte(testPassphrase)), Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	before := treeHashes(t, filepath.Join(r.dir, "public"))
	err = server.AddRolloutRole(ctx)
	if !errors.Is(err, ErrMissingKey) || !strings.Contains(err.Error(), "ferry targets propose --repo "+r.dir+" --app _rollout --add-key") {
		t.Fatalf("add without the targets key: err = %v", err)
	}
	if d := diffTrees(before, treeHashes(t, filepath.Join(r.dir, "public"))); len(d) > 0 {
		t.Errorf("a refused add changed the served repository: %v", d)
	}
	pub := filepath.Join(r.dir, "keys", "rollout.age.pub")
	id := pubKeyID(t, pub)
	// Where the targets key is, it is added, with the key just made.
	if err := r.AddRolloutRole(ctx); err != nil {
		t.Fatal(err)
	}
	checkRolloutRole(t, r.dir, id)
	verifyServed(t, r.dir, clk.t)
	if err := r.AddRolloutRole(ctx); err != nil {
		t.Fatalf("a second add: %v", err)
	}
}

// TestAddRolloutRoleByCeremony: the holders of targets delegate the rollout
// role in a targets ceremony; the publish signs its first version with the
// online key.
func TestAddRolloutRoleByCeremony(t *testing.T) {
	clk := newClock()
	r, offline := newSplitRepo(t, clk)
	makeOld(t, r)
	server, err := OpenWith(r.dir, Options{Passphrase: Passphrase([]byte(testPassphrase)), Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := server.AddRolloutRole(ctx); !errors.Is(err, ErrMissingKey) {
		t.Fatalf("err = %v", err)
	}
	pub := filepath.Join(r.dir, "keys", "rollout.age.pub")
	k, err := keys.ReadPublic(pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ProposeTargets(ctx, TargetsChange{App: rollout.RoleName, AddKeys: []*metadata.Key{k, newSigner(t).Key()}}); err == nil {
		t.Error("a rollout role with two keys was proposed")
	}
	p, err := r.ProposeTargets(ctx, TargetsChange{App: rollout.RoleName, AddKeys: []*metadata.Key{k}})
	if err != nil {
		t.Fatal(err)
	}
	priv, err := keys.Load(filepath.Join(offline, "targets.age"), []byte(testPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := keys.NewFileSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Sign(context.Background(), ts); err != nil {
		t.Fatal(err)
	}
	if err := server.PublishProposal(ctx, p); err != nil {
		t.Fatal(err)
	}
	checkRolloutRole(t, r.dir, pubKeyID(t, pub))
	verifyServed(t, r.dir, clk.t)
}

// TestUploadTouchingRolloutRefused: no uploaded application role may sign
// a path of the rollout role, and no upload may claim to be the rollout
// role.
func TestUploadTouchingRolloutRefused(t *testing.T) {
	r, s, _ := remoteFixture(t)
	cur, err := r.AppRole(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	raw := resign(t, cur, s, func(md *targetsMD) {
		md.Signed.Version++
		tf := metadata.TargetFile()
		tf.Length, tf.Hashes = 2, metadata.Hashes{"sha256": make([]byte, 32)}
		md.Signed.Targets[rollout.DocPath("hello")] = tf
	})
	if _, err := r.CheckUpload(ctx, "hello", raw); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "outside the delegation") {
		t.Errorf("an application role signing %s: err = %v", rollout.DocPath("hello"), err)
	}
	if _, err := r.CheckUpload(ctx, rollout.RoleName, raw); err == nil || !strings.Contains(err.Error(), "invalid app name") {
		t.Errorf("an upload as the rollout role: err = %v", err)
	}
	if _, err := r.AppRole(ctx, rollout.RoleName); err == nil {
		t.Error("AppRole serves the rollout role as an application's")
	}
}

// TestRotateRolloutKey: after a theft of the rollout key, a targets
// ceremony rotates it; the server decides with the new key, and a client
// refuses the rollout role signed with the old one.
func TestRotateRolloutKey(t *testing.T) {
	holder, server, _, clk := rolloutFixture(t)
	oldFile := filepath.Join(holder.dir, "keys", "rollout.age")
	oldKey, err := keys.Load(oldFile, []byte(testPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	stolen, err := keys.NewFileSigner(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	p, err := holder.ProposeTargets(ctx, TargetsChange{App: rollout.RoleName, Rotate: true})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := keys.Load(filepath.Join(holder.opts.OfflineKeys, "targets.age"), []byte(testPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := keys.NewFileSigner(tk)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Sign(context.Background(), ts); err != nil {
		t.Fatal(err)
	}
	if err := server.PublishProposal(ctx, p); err != nil {
		t.Fatal(err)
	}
	newID := pubKeyID(t, oldFile+".pub")
	if newID == keyID(t, stolen) {
		t.Fatal("the rollout key file was not replaced by the new key")
	}
	checkRolloutRole(t, holder.dir, newID)
	server2, err := OpenWith(holder.dir, Options{Passphrase: Passphrase([]byte(testPassphrase)), Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server2.Rollout(ctx, "hello", rollout.Action{Kind: rollout.Halt, Version: "1.2.0"}); err != nil {
		t.Fatal(err)
	}
	tc := newTUFClient(t, holder.dir, clk)
	if e := tc.doc("hello").Releases["1.2.0"]; e.State != rollout.Halted {
		t.Fatalf("the client trusts %+v", e)
	}
	// The thief signs a resume with the old key.
	st, err := loadState(holder.dir)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := docOf(st.apps[rollout.RoleName], "hello")
	e := doc.Releases["1.2.0"]
	e.State = rollout.Active
	doc.Releases["1.2.0"] = e
	f, _, err := setDoc(st.apps[rollout.RoleName], doc, roleVersions(st.apps["hello"], "hello"))
	if err != nil {
		t.Fatal(err)
	}
	if err := writeDataTargets(holder.dir, []dataTarget{f}); err != nil {
		t.Fatal(err)
	}
	sk, err := newRoleKey(stolen)
	if err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(time.Minute)
	if err := server2.writeTargetsRole(st, rollout.RoleName, st.apps[rollout.RoleName], []*roleKey{sk}, clk.t.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := server2.commit(ctx, st, change{snapshot: true}); err != nil { // the online keys are the thief's too
		t.Fatal(err)
	}
	if err := tc.refresh(); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if _, err := tc.c.Target(ctx, tc.src, rollout.DocPath("hello")); !errors.Is(err, trust.ErrBadSignature) {
		t.Errorf("a rollout role signed with the revoked key: err = %v, want a threshold error", err)
	}
}
