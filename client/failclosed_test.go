package client_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/install"
	"github.com/ferry-updates/ferry/rollout"
	"github.com/ferry-updates/ferry/trust"
)

// repoAt is s.repo with the state directory dir (kept across Repositories).
func repoAt(t *testing.T, s *repoSim, dir string, rec *event.Recorder) *client.Repository {
	t.Helper()
	if rec == nil {
		rec = &event.Recorder{}
	}
	r, err := client.NewRepository(client.RepositoryConfig{URLs: []string{s.srv.URL}, TrustedRoot: s.r.RootBytes(1),
		StateDir: dir, RootCAs: x509PoolOf(s), Events: rec})
	if err != nil {
		t.Fatalf("NewRepository: %v", err)
	}
	return r
}

// R62: a mirror (no key at all) that answers 404 for the rollout role's
// current metadata file must not make the check go on with "no decision"
// (every release stable, active, 100%: the halt undone); the check fails.
func TestHiddenRolloutRole_R62(t *testing.T) {
	s := helloSim(t)
	s.setDoc(doc("hello", map[string]rollout.Entry{"1.1.0": entry(rollout.Full, rollout.Active)}))
	s.setDoc(doc("hello", map[string]rollout.Entry{"1.1.0": entry(rollout.Full, rollout.Halted)}))
	id := ids(1)[0]
	if v := offered(t, s.repo(t, nil), hello("1.0.0", id)); v != "" {
		t.Fatalf("halted 1.1.0 offered %q before any tampering", v)
	}
	s.r.Hide("3._rollout.json")
	inst := &fakeInstaller{installed: "1.0.0"}
	for _, op := range []string{"check", "update"} {
		r := s.repo(t, nil) // a fresh installation: nothing cached
		var err error
		var rel *client.Release
		if op == "check" {
			var o *client.Offer
			if o, err = r.Check(context.Background(), hello("1.0.0", id)); o != nil {
				rel = o.Release
			}
		} else {
			var out *client.Outcome
			if out, err = r.Update(context.Background(), hello("1.0.0", id), inst); out != nil {
				rel = out.Release
			}
		}
		if err == nil {
			t.Fatalf("%s: the mirror hid 3._rollout.json and the %s succeeded (release %v); want it to fail", op, op, rel)
		}
		if !strings.Contains(err.Error(), "rollout decisions") || !errors.Is(err, trust.ErrNotFound) {
			t.Errorf("%s: error %q: want it to say the rollout decisions could not be fetched", op, err)
		}
	}
	if len(inst.applied) != 0 {
		t.Errorf("installed %v", inst.applied)
	}
	// Not a rollout role at all (a repository made before rollouts): no
	// decision, every release stable at 100%.
	plain := newRepoSim(t, "hello")
	plain.publish("hello", "1.1.0", "hello 1.1.0")
	if v := offered(t, plain.repo(t, nil), hello("1.0.0", id)); v != "1.1.0" {
		t.Errorf("a decision listed by no role: offered %q, want 1.1.0", v)
	}
}

// R63: a mirror that hides the application role's file cannot make the
// signed minimum safe version disappear: the check fails.
func TestHiddenAppRole_R63(t *testing.T) {
	s := helloSim(t)
	s.setMin("hello", "1.1.0")
	s.setDoc(doc("hello", map[string]rollout.Entry{"1.1.0": entry(0, rollout.Active)}))
	for v := 1; v <= 10; v++ {
		s.r.Hide(fmt.Sprintf("%d.hello.json", v))
	}
	o, err := s.repo(t, nil).Check(context.Background(), hello("1.0.0", ids(1)[0]))
	if err == nil {
		t.Fatalf("the mirror hid hello's role and the check succeeded: %+v", o)
	}
	if !errors.Is(err, trust.ErrNotFound) {
		t.Errorf("error %q: want the role's fetch error", err)
	}
}

// R63: the client keeps the highest minimum safe version it has verified
// for an application and never goes below it, even when a later, validly
// signed application role (a stale role re-signed by the pipeline, F0)
// carries a lower one: a pull cannot take it back to the old release.
func TestMinVersionNeverLowered_R63(t *testing.T) {
	s := helloSim(t)
	s.publish("hello", "1.2.0", "hello 1.2.0")
	s.setMin("hello", "1.1.0")
	dir := filepath.Join(t.TempDir(), "state")
	id := ids(1)[0]
	if v := offered(t, repoAt(t, s, dir, nil), hello("1.1.0", id)); v != "1.2.0" {
		t.Fatalf("offered %q, want 1.2.0", v)
	}
	s.setMin("hello", "1.0.0") // a later app role, validly signed, with a lower minimum
	s.setDoc(doc("hello", map[string]rollout.Entry{"1.1.0": entry(rollout.Full, rollout.Pulled), "1.2.0": entry(rollout.Full, rollout.Pulled)}))
	rec := &event.Recorder{}
	r := repoAt(t, s, dir, rec) // the same installation, a new process
	inst := &fakeInstaller{installed: "1.1.0"}
	out, err := r.Update(context.Background(), hello("1.1.0", id), inst)
	if err != nil {
		t.Fatal(err)
	}
	if out.Release != nil || len(inst.applied) != 0 {
		t.Fatalf("the signed minimum went down to 1.0.0 and the client moved to %v (choice %+v); want nothing below 1.1.0", out.Release, out.Choice)
	}
	if count(rec, event.MinLowered) != 1 {
		t.Errorf("events %v: want one %s", rec.Kinds(), event.MinLowered)
	}
	// Another state directory never saw 1.1.0: it takes the signed 1.0.0.
	if v := offered(t, s.repo(t, nil), hello("1.1.0", id)); v != "1.0.0" {
		t.Errorf("a new installation: offered %q, want the pull's 1.0.0", v)
	}
	// A damaged record is an error, not a reset.
	name := filepath.Join(dir, "min-version", "hello")
	for _, bad := range []string{"", "1.1\n", "1.1.0", "1.1.0\n\n", "v1.1.0\n"} {
		if err := os.WriteFile(name, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Check(context.Background(), hello("1.1.0", id)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("record %q: err = %v, want an error naming %s", bad, err, name)
		}
	}
}

// R48/R62: Client.Download takes only a file of the release Check would
// offer now: not a halted release, not a file of a release whose
// manifest is mixed.
func TestDownloadObeysRollout_R48(t *testing.T) {
	s := helloSim(t)
	s.add("hello", "1.2.0", "linux/amd64", map[string][]byte{"hello": []byte("1.2.0"), "lib.so": []byte("lib 1.2.0")}, false)
	s.add("hello", "1.2.0", "linux/amd64", map[string][]byte{"lib.so": []byte("lib 1.1.9")}, false) // mixed
	s.r.Publish()
	s.setDoc(doc("hello", map[string]rollout.Entry{"1.1.0": entry(rollout.Full, rollout.Halted)}))
	c, err := client.New(client.Config{URLs: []string{s.srv.URL}, TrustedRoot: s.r.RootBytes(1), StateDir: t.TempDir() + "/c",
		App: "hello", Platform: "linux/amd64", Installed: "1.0.0", RootCAs: x509PoolOf(s)})
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.CheckOffer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if o.Release != nil {
		t.Fatalf("Check offers %v; want nothing (1.1.0 halted, 1.2.0 mixed)", o.Release)
	}
	for _, p := range []string{"hello/1.1.0/linux-amd64/hello", "hello/1.2.0/linux-amd64/lib.so", "hello/1.2.0/linux-amd64/hello"} {
		_, err := c.Download(context.Background(), &client.Release{Path: p}, t.TempDir())
		if !errors.Is(err, client.ErrRefused) {
			t.Errorf("Download %s, which Check does not offer: err = %v, want ErrRefused", p, err)
		}
	}
	// Once resumed, the offered release downloads.
	s.setDoc(doc("hello", map[string]rollout.Entry{"1.1.0": entry(rollout.Full, rollout.Active)}))
	if _, err := c.CheckOffer(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Download(context.Background(), &client.Release{Path: "hello/1.1.0/linux-amd64/hello"}, t.TempDir()); err != nil {
		t.Errorf("Download of the offered release: %v", err)
	}
}

// Mirror credentials (https://user:token@host/) never reach an event or
// an error: mirror evidence, mirror errors, download errors.
func TestMirrorCredentialsRedacted(t *testing.T) {
	s := helloSim(t)
	down := httptest.NewTLSServer(nil)
	down.Close()
	withCreds := func(u string) string { return strings.Replace(u, "https://", "https://deploy:s3cr3t-token@", 1) }
	rec := &event.Recorder{}
	r, err := client.NewRepository(client.RepositoryConfig{URLs: []string{withCreds(down.URL), withCreds(s.srv.URL)},
		TrustedRoot: s.r.RootBytes(1), StateDir: t.TempDir() + "/state", RootCAs: x509PoolOf(s), Events: rec})
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	if _, err := r.Update(context.Background(), hello("1.0.0", ids(1)[0]), &fakeInstaller{installed: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	s.add("hello", "1.3.0", "linux/amd64", map[string][]byte{"hello": []byte("not served")}, false)
	s.r.Publish()
	s.mu.Lock()
	for k := range s.files {
		if strings.Contains(k, "/1.3.0/") {
			delete(s.files, k)
		}
	}
	s.mu.Unlock()
	onlyDown, err := client.NewRepository(client.RepositoryConfig{URLs: []string{withCreds(down.URL)},
		TrustedRoot: s.r.RootBytes(1), StateDir: t.TempDir() + "/state1", RootCAs: x509PoolOf(s), Events: rec})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := onlyDown.Refresh(context.Background()); err == nil {
		t.Fatal("refresh from a mirror that is down: no error")
	} else {
		errs = append(errs, err)
	}
	if _, err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err = r.Update(context.Background(), hello("1.1.0", ids(1)[0]), &fakeInstaller{installed: "1.1.0"})
	if err == nil {
		t.Fatal("update of a release no mirror serves: no error")
	}
	errs = append(errs, err)
	_, err = client.NewRepository(client.RepositoryConfig{URLs: []string{withCreds(s.srv.URL) + "?x"},
		TrustedRoot: s.r.RootBytes(1), StateDir: t.TempDir() + "/state2"})
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil || strings.Contains(err.Error(), "s3cr3t-token") {
			t.Errorf("error carries the mirror password: %v", err)
		}
	}
	kinds := map[event.Kind]bool{}
	for _, e := range rec.Events() {
		all := e.Cause
		for k, v := range e.Evidence {
			all += " " + k + "=" + v
		}
		kinds[e.Kind] = true
		if strings.Contains(all, "s3cr3t-token") {
			t.Errorf("event %s carries the mirror password: %s", e.Kind, all)
		}
	}
	for _, k := range []event.Kind{event.Refreshed, event.MirrorFailed, event.DownloadStarted, event.DownloadDone} {
		if !kinds[k] {
			t.Errorf("no %s event seen: the test checks nothing there (%v)", k, rec.Kinds())
		}
	}
}

// R49/R52: after the installer's state was lost, the live executable is
// known by its sha256. If that is a signed release's, that version is
// installed: a configured Installed below it (the agent's first-install
// value) is no permission to downgrade.
func TestLostStateKeepsLiveVersion_R49(t *testing.T) {
	s := newRepoSim(t, "hello")
	for _, v := range []string{"1.0.0", "1.4.0", "1.5.0"} {
		s.add("hello", v, "linux/amd64", map[string][]byte{"hello": []byte("hello " + v)}, false)
	}
	s.r.Publish()
	s.setDoc(doc("hello", map[string]rollout.Entry{"1.5.0": entry(rollout.Full, rollout.Halted)}))
	sum := sha256.Sum256([]byte("hello 1.5.0"))
	inst := &lostInstaller{liveSHA: hex.EncodeToString(sum[:])}
	r := s.repo(t, nil)
	for _, installed := range []string{"1.0.0", "1.4.0"} {
		out, err := r.Update(context.Background(), hello(installed, ids(1)[0]), inst)
		if err != nil {
			t.Fatalf("installed %q: %v", installed, err)
		}
		if out.Release != nil || len(inst.applied) != 0 {
			t.Fatalf("installed %q: live executable is signed 1.5.0, yet the client installs %v (downgrade flagged: %v)", installed, out.Release, out.Choice.Downgrade)
		}
		if out.From != "1.5.0" {
			t.Errorf("installed %q: From %q, want the live 1.5.0", installed, out.From)
		}
	}
	// Without a given version a lost state still installs nothing (the
	// versions marked bad are gone too), recognised or not.
	other := &lostInstaller{liveSHA: strings.Repeat("ab", 32)}
	for _, in := range []*lostInstaller{inst, other} {
		if _, err := r.Update(context.Background(), hello("", ids(1)[0]), in); !errors.Is(err, install.ErrStateLost) {
			t.Errorf("live %s, no Installed: err = %v, want ErrStateLost", in.liveSHA[:8], err)
		}
	}
	// A live executable that is no signed release: the given version counts.
	out, err := r.Update(context.Background(), hello("1.4.0", ids(1)[0]), other)
	if err != nil || out.Release != nil {
		t.Errorf("unknown live executable at 1.4.0: %+v, %v; want nothing to do", out, err)
	}
}

// lostInstaller is an installer whose state file was lost (R52): the live
// executable is known only by its hash.
type lostInstaller struct {
	fakeInstaller
	liveSHA string
}

func (l *lostInstaller) State(context.Context) (install.State, error) {
	return install.State{Lost: true, Installed: &install.Installed{SHA256: l.liveSHA}}, nil
}
