package client_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/rollout"
	"github.com/ferry-updates/ferry/trust"
)

// ids returns n distinct install IDs.
func ids(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%032x", i*7919+1))
	}
	return out
}

// helloSim publishes hello 1.0.0 and 1.1.0.
func helloSim(t *testing.T) *repoSim {
	s := newRepoSim(t, "hello")
	s.add("hello", "1.0.0", "linux/amd64", map[string][]byte{"hello": []byte("hello 1.0.0")}, false)
	s.add("hello", "1.1.0", "linux/amd64", map[string][]byte{"hello": []byte("hello 1.1.0")}, false)
	s.r.Publish()
	return s
}

// A staged rollout at 30% offers 1.1.0 exactly to the installations whose
// bucket for its salt is below 3000, says why to the others, and widening
// to 60% keeps every installation that was in.
func TestRolloutCohort(t *testing.T) {
	s := helloSim(t)
	e := entry(3000, rollout.Active)
	s.setDoc(doc("hello", map[string]rollout.Entry{"1.1.0": e}))
	rec := &event.Recorder{}
	r := s.repo(t, rec)
	in := map[string]bool{}
	for _, id := range ids(60) {
		o, err := r.Check(context.Background(), hello("1.0.0", id))
		if err != nil {
			t.Fatal(err)
		}
		want := rollout.Bucket(id, e.Salt) < 3000
		if got := o.Release != nil; got != want {
			t.Fatalf("install %s (bucket %d): offered %v, want %v", id, rollout.Bucket(id, e.Salt), o.Release, want)
		}
		if !want && (!strings.Contains(o.Choice.Reason, "cohort") || o.Held != "1.1.0") {
			t.Errorf("out of the cohort: reason %q, held %q", o.Choice.Reason, o.Held)
		}
		in[id] = want
	}
	if n := count(rec, event.CheckOffered) + count(rec, event.CheckUpToDate); n != 60 {
		t.Errorf("%d decisions reported, want 60", n)
	}
	for _, ev := range rec.Events() {
		if ev.Kind == event.CheckUpToDate && !strings.Contains(ev.Cause, "cohort") {
			t.Errorf("check.uptodate cause %q", ev.Cause)
		}
	}
	e.BasisPoints = 6000
	s.setDoc(doc("hello", map[string]rollout.Entry{"1.1.0": e}))
	if _, err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for id, was := range in {
		if v := offered(t, r, hello("1.0.0", id)); was && v != "1.1.0" {
			t.Errorf("widening to 60%% dropped %s", id)
		}
	}
}

// A halt offers the release to no new installation from the next check on.
func TestRolloutHalt(t *testing.T) {
	s := helloSim(t)
	s.setDoc(doc("hello", map[string]rollout.Entry{"1.1.0": entry(rollout.Full, rollout.Active)}))
	r := s.repo(t, nil)
	id := ids(1)[0]
	if v := offered(t, r, hello("1.0.0", id)); v != "1.1.0" {
		t.Fatalf("before the halt: offered %q", v)
	}
	s.setDoc(doc("hello", map[string]rollout.Entry{"1.1.0": entry(rollout.Full, rollout.Halted)}))
	if _, err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	o, err := r.Check(context.Background(), hello("1.0.0", id))
	if err != nil || o.Release != nil || !strings.Contains(o.Choice.Reason, "halted") || o.Held != "1.1.0" {
		t.Fatalf("after the halt: %+v, %v", o, err)
	}
}

// Channels: a release promoted to beta is offered to the beta channel
// only; stable releases are offered to both.
func TestRolloutChannel(t *testing.T) {
	s := helloSim(t)
	e := entry(rollout.Full, rollout.Active)
	e.Channel = "beta"
	s.setDoc(doc("hello", map[string]rollout.Entry{"1.1.0": e}))
	r := s.repo(t, nil)
	beta := hello("", ids(1)[0])
	beta.Channel = "beta"
	if v := offered(t, r, beta); v != "1.1.0" {
		t.Errorf("beta offered %q", v)
	}
	if v := offered(t, r, hello("", ids(1)[0])); v != "1.0.0" {
		t.Errorf("stable offered %q, want 1.0.0", v)
	}
	bad := hello("", "")
	bad.Channel = "Beta!"
	if _, err := r.Check(context.Background(), bad); err == nil {
		t.Error("an invalid channel was accepted")
	}
}

// R63: an installation below the signed minimum safe version gets the
// newest release at or above it at once, even outside its cohort, and a
// pull cannot move an installation below the minimum.
func TestMinVersionForcesUpgrade_R63(t *testing.T) {
	s := helloSim(t)
	s.publish("hello", "1.2.0", "hello 1.2.0")
	s.setMin("hello", "1.1.0")
	s.setDoc(doc("hello", map[string]rollout.Entry{"1.1.0": entry(0, rollout.Active), "1.2.0": entry(0, rollout.Halted)}))
	rec := &event.Recorder{}
	r := s.repo(t, rec)
	o, err := r.Check(context.Background(), hello("1.0.0", ids(1)[0]))
	if err != nil || o.Release == nil || o.Release.Version != "1.2.0" {
		t.Fatalf("below the minimum: %+v, %v; want 1.2.0 whatever the rollout says", o, err)
	}
	if count(rec, event.BelowMin) != 1 {
		t.Errorf("events %v: want one rollout.below_min", rec.Kinds())
	}
	// A stolen rollout key pulls 1.1.0 and 1.2.0 to push the fleet back
	// to 1.0.0, which is below the minimum: nothing is offered.
	s.setDoc(doc("hello", map[string]rollout.Entry{"1.1.0": entry(rollout.Full, rollout.Pulled), "1.2.0": entry(rollout.Full, rollout.Pulled)}))
	if _, err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	inst := &fakeInstaller{installed: "1.2.0"}
	out, err := r.Update(context.Background(), hello("", ids(1)[0]), inst)
	if err != nil || out.Release != nil || len(inst.applied) != 0 {
		t.Fatalf("pull below the minimum: %+v, %v, applied %v", out, err, inst.applied)
	}
	if count(rec, event.Pulled) != 1 {
		t.Errorf("events %v: want one rollout.pulled", rec.Kinds())
	}
}

// A pull of the installed version moves the installation to the newest
// good release, even an older one: the only downgrade (R49). An installer
// that cannot revert gets the older release downloaded and applied.
func TestPullDowngrades(t *testing.T) {
	s := helloSim(t)
	s.setDoc(doc("hello", map[string]rollout.Entry{"1.1.0": entry(rollout.Full, rollout.Pulled)}))
	rec := &event.Recorder{}
	r := s.repo(t, rec)
	inst := &fakeInstaller{installed: "1.1.0"}
	out, err := r.Update(context.Background(), hello("", ids(1)[0]), inst)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Updated() || out.Release.Version != "1.0.0" || !out.Choice.Downgrade || out.From != "1.1.0" {
		t.Fatalf("pull: %+v", out)
	}
	if len(inst.applied) != 1 || inst.applied[0].Version != "1.0.0" {
		t.Fatalf("applied %+v", inst.applied)
	}
	if count(rec, event.Pulled) != 1 || count(rec, event.DownloadDone) != 1 {
		t.Errorf("events %v", rec.Kinds())
	}
	// Now at 1.0.0, nothing more to do: 1.1.0 stays pulled.
	if out, err := r.Update(context.Background(), hello("", ids(1)[0]), inst); err != nil || out.Release != nil {
		t.Fatalf("after the pull: %+v, %v", out, err)
	}
}

// R49: without a pull an older signed release is never offered, Download
// refuses it, and a target lying about its platform is refused.
func TestDowngradeAndPlatformRefused_R49(t *testing.T) {
	s := helloSim(t)
	s.add("hello", "2.0.0", "darwin/arm64", map[string][]byte{"hello": []byte("mac")}, false)
	// Signed for linux/amd64 by path, but its custom metadata says darwin.
	s.addFile("hello", "hello/3.0.0/linux-amd64/hello", []byte("liar"), map[string]any{"ferry": map[string]any{
		"app": "hello", "version": "3.0.0", "platform": "darwin/arm64", "kind": "binary"}})
	s.r.Publish()
	rec := &event.Recorder{}
	r := s.repo(t, rec)
	o, err := r.Check(context.Background(), hello("1.1.0", ids(1)[0]))
	if err != nil || o.Release != nil {
		t.Fatalf("at 1.1.0: %+v, %v; want nothing", o, err)
	}
	if count(rec, event.ReleaseRefused) != 1 {
		t.Errorf("events %v: want the lying target refused once", rec.Kinds())
	}
	c, err := client.New(client.Config{URLs: []string{s.srv.URL}, TrustedRoot: s.r.RootBytes(1), StateDir: t.TempDir() + "/c",
		App: "hello", Platform: "linux/amd64", Installed: "1.1.0", RootCAs: x509PoolOf(s), Events: rec})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Download(context.Background(), &client.Release{Path: "hello/1.0.0/linux-amd64/hello"}, t.TempDir())
	if !errors.Is(err, client.ErrRefused) {
		t.Fatalf("download of an older release without a pull: %v", err)
	}
}

// R48: a release whose files disagree with their signed manifest (one
// file of another release served mixed in) is refused with a
// release.mixed event and not offered; the previous release still is.
func TestMixedManifestRefused_R48(t *testing.T) {
	s := helloSim(t)
	s.add("hello", "1.2.0", "linux/amd64", map[string][]byte{"hello": []byte("1.2.0"), "lib.so": []byte("lib 1.2.0")}, false)
	// lib.so is replaced by a file with another digest, whose own
	// manifest lists only itself, as if taken from another release.
	s.add("hello", "1.2.0", "linux/amd64", map[string][]byte{"lib.so": []byte("lib 1.1.9")}, false)
	s.r.Publish()
	rec := &event.Recorder{}
	r := s.repo(t, rec)
	if v := offered(t, r, hello("1.0.0", ids(1)[0])); v != "1.1.0" {
		t.Fatalf("offered %q, want 1.1.0 (1.2.0 is mixed)", v)
	}
	var mixed []event.Event
	for _, e := range rec.Events() {
		if e.Kind == event.ReleaseMixed {
			mixed = append(mixed, e)
		}
	}
	if len(mixed) != 1 || mixed[0].Version != "1.2.0" || mixed[0].Cause == "" {
		t.Fatalf("release.mixed events %+v", mixed)
	}
}

// R61: the rollout role's key can only choose among releases the
// application key signed: a release path it signs itself is never seen
// (its delegation covers _rollout/* only), and a decision for a version
// nobody signed offers nothing; nothing is installed.
func TestRolloutKeyCannotAddRelease_R61(t *testing.T) {
	s := helloSim(t)
	s.addFile(rollout.RoleName, "hello/9.9.9/linux-amd64/hello", []byte("evil"), map[string]any{"ferry": map[string]any{
		"app": "hello", "version": "9.9.9", "platform": "linux/amd64", "kind": "binary"}})
	s.setDoc(doc("hello", map[string]rollout.Entry{
		"9.9.9": entry(rollout.Full, rollout.Active), "5.0.0": entry(rollout.Full, rollout.Active),
		"1.1.0": entry(0, rollout.Halted),
	}))
	r := s.repo(t, nil)
	inst := &fakeInstaller{installed: "1.0.0"}
	out, err := r.Update(context.Background(), hello("", ids(1)[0]), inst)
	if err != nil {
		t.Fatal(err)
	}
	if out.Release != nil || len(inst.applied) != 0 {
		t.Fatalf("the rollout key got %+v installed (applied %v)", out.Release, inst.applied)
	}
	for p := range s.log() {
		if strings.Contains(p, "9.9.9") {
			t.Errorf("the client fetched %s", p)
		}
	}
}

// R62: a replayed older decision is refused like any TUF rollback: after
// a halt, the rollout role's older metadata (the active decision) served
// in place of the current one is rejected, and so is a replayed older
// timestamp (the checks that follow fail, not fall back); the halted
// release is never offered.
func TestReplayedDecisionRefused_R62(t *testing.T) {
	s := helloSim(t)
	s.setDoc(doc("hello", map[string]rollout.Entry{"1.1.0": entry(rollout.Full, rollout.Active)}))
	oldRole := s.r.Bytes("2._rollout.json")
	oldTS := s.r.Bytes("timestamp.json")
	s.setDoc(doc("hello", map[string]rollout.Entry{"1.1.0": entry(rollout.Full, rollout.Halted)}))
	if oldRole == nil || s.r.Bytes("3._rollout.json") == nil {
		t.Fatalf("rollout role versions: %v", s.r.FetchLog())
	}
	id := ids(1)[0]
	rec := &event.Recorder{}
	r := s.repo(t, rec)
	s.r.Serve("3._rollout.json", oldRole)
	o, err := r.Check(context.Background(), hello("1.0.0", id))
	var se *trust.SecurityError
	if !errors.As(err, &se) || se.Role != rollout.RoleName || o != nil {
		t.Fatalf("replayed rollout metadata: %+v, %v; want it refused", o, err)
	}
	s.r.ClearOverrides()
	if v := offered(t, r, hello("1.0.0", id)); v != "" {
		t.Fatalf("halted release offered %q", v)
	}
	s.r.Serve("timestamp.json", oldTS)
	if _, err := r.Refresh(context.Background()); !errors.Is(err, trust.ErrRollback) {
		t.Fatalf("replayed timestamp: %v, want a rollback refusal", err)
	}
	// A check after the failed refresh refreshes again, and fails too:
	// the last trusted state is not used once a refresh failed.
	if o, err := r.Check(context.Background(), hello("1.0.0", id)); !errors.Is(err, trust.ErrRollback) || o != nil {
		t.Fatalf("check after the replay: %+v, %v", o, err)
	}
	if count(rec, event.MetadataRejected) != 3 {
		t.Errorf("events %v: want three metadata.rejected", rec.Kinds())
	}
}

// x509PoolOf trusts s's server certificate.
func x509PoolOf(s *repoSim) *x509.CertPool {
	p := x509Pool(nil)
	p.AddCert(s.srv.Certificate())
	return p
}

// A pull with the real installer: install.Binary kept the previous
// executable, so the downgrade is a Revert (re-verified against the signed
// hashes, health-checked) and nothing is downloaded; an installation that
// never had the older version gets it downloaded and applied
// (install.ErrNotOnDisk).
func TestPullRevertsFromDisk(t *testing.T) {
	needShell(t)
	s := newRepoSim(t, "hello")
	s.add("hello", "1.0.0", "linux/amd64", map[string][]byte{"hello": script("1.0.0", healthy)}, false)
	s.add("hello", "1.1.0", "linux/amd64", map[string][]byte{"hello": script("1.1.0", healthy)}, false)
	s.r.Publish()
	ctx := context.Background()
	id := ids(1)[0]

	kept := filepath.Join(t.TempDir(), "hello")
	r := s.repo(t, nil)
	b := binary(t, kept)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		s.setDoc(doc("hello", map[string]rollout.Entry{"1.1.0": entry(map[string]int{"1.0.0": 0, "1.1.0": rollout.Full}[v], rollout.Active)}))
		if _, err := r.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if out, err := r.Update(ctx, hello("", id), b); err != nil || out.Result.Version != v {
			t.Fatalf("install %s: %+v, %v", v, out, err)
		}
	}
	s.setDoc(doc("hello", map[string]rollout.Entry{"1.1.0": entry(rollout.Full, rollout.Pulled)}))
	if _, err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	s.reset()
	out, err := r.Update(ctx, hello("", id), b)
	if err != nil || !out.Updated() || out.Result.Version != "1.0.0" || !out.Choice.Downgrade {
		t.Fatalf("pull: %+v, %v", out, err)
	}
	for p := range s.log() {
		if strings.HasPrefix(p, "/targets/") {
			t.Errorf("the revert downloaded %s", p)
		}
	}
	mustFile(t, kept, script("1.0.0", healthy))

	// A fresh installation at 1.1.0 (no older copy on disk) downloads 1.0.0.
	fresh := filepath.Join(t.TempDir(), "hello")
	r2 := s.repo(t, nil)
	s.setDoc(doc("hello", map[string]rollout.Entry{"1.1.0": entry(rollout.Full, rollout.Active)}))
	b2 := binary(t, fresh)
	if out, err := r2.Update(ctx, hello("", id), b2); err != nil || out.Result.Version != "1.1.0" {
		t.Fatalf("fresh install: %+v, %v", out, err)
	}
	s.setDoc(doc("hello", map[string]rollout.Entry{"1.1.0": entry(rollout.Full, rollout.Pulled)}))
	if _, err := r2.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	s.reset()
	out, err = r2.Update(ctx, hello("", id), b2)
	if err != nil || out.Result.Version != "1.0.0" {
		t.Fatalf("pull without a kept copy: %+v, %v", out, err)
	}
	downloaded := 0
	for p := range s.log() {
		if strings.HasPrefix(p, "/targets/hello/1.0.0/") {
			downloaded++
		}
	}
	if downloaded != 1 {
		t.Errorf("requests %v: want 1.0.0 downloaded once", s.log())
	}
	mustFile(t, fresh, script("1.0.0", healthy))
}

// The publisher's own rollout signing (package repo, served by package
// server): a staged rollout at 0% reaches nobody, at 100% everyone, a halt
// stops it, a pull takes an installation on 1.1.0 back to 1.0.0, and the
// application key's minimum safe version lifts an installation below it;
// the release manifests package repo writes are accepted.
func TestRolloutFromPublisher(t *testing.T) {
	f := newFixture(t)
	f.publish("hello", "1.0.0", "linux/amd64", "hello", []byte("hello 1.0.0"))
	f.publish("hello", "1.1.0", "linux/amd64", "hello", []byte("hello 1.1.0"))
	ctx := context.Background()
	r, err := client.NewRepository(client.RepositoryConfig{URLs: []string{f.srv.URL}, TrustedRoot: f.root,
		StateDir: filepath.Join(t.TempDir(), "state"), RootCAs: f.pool()})
	if err != nil {
		t.Fatal(err)
	}
	decide := func(a rollout.Action) {
		t.Helper()
		if _, err := f.rp.Rollout(ctx, "hello", a); err != nil {
			t.Fatalf("rollout %+v: %v", a, err)
		}
		if _, err := r.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	id := ids(1)[0]
	decide(rollout.Action{Kind: rollout.Start, Version: "1.1.0", BasisPoints: 0})
	if v := offered(t, r, hello("1.0.0", id)); v != "" {
		t.Fatalf("at 0%%: offered %q", v)
	}
	decide(rollout.Action{Kind: rollout.Start, Version: "1.1.0", BasisPoints: rollout.Full})
	if v := offered(t, r, hello("1.0.0", id)); v != "1.1.0" {
		t.Fatalf("at 100%%: offered %q", v)
	}
	decide(rollout.Action{Kind: rollout.Halt, Version: "1.1.0"})
	if v := offered(t, r, hello("1.0.0", id)); v != "" {
		t.Fatalf("halted: offered %q", v)
	}
	decide(rollout.Action{Kind: rollout.Pull, Version: "1.1.0"})
	o, err := r.Check(ctx, hello("1.1.0", id))
	if err != nil || o.Release == nil || o.Release.Version != "1.0.0" || !o.Choice.Downgrade {
		t.Fatalf("pulled: %+v, %v", o, err)
	}
	f.publish("hello", "1.2.0", "linux/amd64", "hello", []byte("hello 1.2.0"))
	decide(rollout.Action{Kind: rollout.Start, Version: "1.2.0", BasisPoints: 0})
	if err := f.rp.SetMinVersion(ctx, "hello", "1.2.0"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if v := offered(t, r, hello("1.0.0", id)); v != "1.2.0" {
		t.Fatalf("below the minimum: offered %q, want 1.2.0 although its share is 0", v)
	}
}
