package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/server"
)

const custodyPass = "custody test passphrase"

// fakeClock is the one clock of a test: repository, refresher and client.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// custodyFixture is a repository of the safe layout served over HTTPS on
// 127.0.0.1: DIR holds the online keys, OFFLINE the others.
type custodyFixture struct {
	t            *testing.T
	dir, offline string
	clock        *fakeClock
	srv          *httptest.Server
	root         []byte
}

func newCustodyFixture(t *testing.T, exp repo.Expiries) *custodyFixture {
	return newFixtureLayout(t, exp, true)
}

// newFixtureLayout is newCustodyFixture, or with split false a repository
// of the old layout (every key in DIR/keys).
func newFixtureLayout(t *testing.T, exp repo.Expiries, split bool) *custodyFixture {
	t.Helper()
	base := t.TempDir()
	f := &custodyFixture{t: t, dir: filepath.Join(base, "repo"), offline: filepath.Join(base, "offline-keys"),
		clock: &fakeClock{t: time.Now().UTC().Truncate(time.Second)}}
	offline := f.offline
	if !split {
		offline = ""
	}
	err := repo.Init(context.Background(), f.dir, repo.InitOptions{
		Passphrase: []byte(custodyPass), OfflineKeys: offline, Expiries: exp, InsecureScryptWorkFactor: 8,
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := server.Repository(filepath.Join(f.dir, "public"))
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewTLSServer(h)
	t.Cleanup(f.srv.Close)
	if f.root, err = os.ReadFile(repo.RootFile(f.dir)); err != nil {
		t.Fatal(err)
	}
	return f
}

// open opens the repository with the offline keys directory (if offline)
// and the given application keys, on the fixture's clock.
func (f *custodyFixture) open(offline bool, appKeys ...keys.Signer) *repo.Repo {
	f.t.Helper()
	o := repo.Options{Passphrase: repo.Passphrase([]byte(custodyPass)), AppKeys: appKeys, Now: f.clock.now}
	if offline {
		o.OfflineKeys = f.offline
	} else if len(appKeys) > 0 {
		o.PinnedRoot = repo.PinnedRootFile(f.offline) // the pipeline's copy of the root it trusts
	}
	r, err := repo.OpenWith(f.dir, o)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *custodyFixture) publish(r *repo.Repo, app, version, content string) error {
	src := filepath.Join(f.t.TempDir(), app)
	if err := os.WriteFile(src, []byte(content), 0o755); err != nil {
		f.t.Fatal(err)
	}
	return r.Publish(context.Background(), repo.Release{App: app, Version: version, Platform: "linux/amd64", Kind: "binary"}, []string{src})
}

func (f *custodyFixture) client(installed string) *client.Client {
	f.t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(f.srv.Certificate())
	c, err := client.New(client.Config{
		URLs: []string{f.srv.URL}, TrustedRoot: f.root, StateDir: filepath.Join(f.t.TempDir(), "state"),
		App: "hello", Platform: "linux/amd64", Installed: installed, RootCAs: pool, Now: f.clock.now,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func openKey(t *testing.T, path string) keys.Signer {
	t.Helper()
	s, err := keys.Open(context.Background(), path, repo.Passphrase([]byte(custodyPass)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestServeWithoutOfflineKeys: the offline keys directory is deleted from
// the machine; the server's refresher, with the online keys alone, keeps a
// real client updating over HTTPS across six timestamp lifetimes, while
// targets and the application role become due (named in warnings), and a
// release published by the pipeline (its application key only) reaches the
// client. Before custody by role, the refresh failed as a whole once an
// offline role was due and the timestamp expired a day later.
func TestServeWithoutOfflineKeys(t *testing.T) {
	f := newCustodyFixture(t, repo.Expiries{Targets: 8 * 24 * time.Hour})
	if err := f.publish(f.open(true), "hello", "1.0.0", "v1"); err != nil {
		t.Fatal(err)
	}
	appKeyFile := filepath.Join(t.TempDir(), "hello.age") // the pipeline's copy
	b, err := os.ReadFile(filepath.Join(f.offline, "apps", "hello.age"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(appKeyFile, b, 0o600)
	pin, _ := os.ReadFile(repo.PinnedRootFile(f.offline)) // and its copy of the root it trusts
	if err := os.RemoveAll(f.offline); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log syncBuffer
	tick, ran := make(chan time.Time), make(chan struct{})
	go refreshLoop(ctx, f.open(false), tick, f.clock.now, &log, func() { ran <- struct{}{} })
	<-ran
	c := f.client("1.0.0")
	for step := range 7 { // 7 x 20h: about six timestamp lifetimes
		f.clock.advance(20 * time.Hour)
		tick <- f.clock.now()
		<-ran
		if step == 3 {
			os.MkdirAll(f.offline, 0o700)
			os.WriteFile(repo.PinnedRootFile(f.offline), pin, 0o600)
			pipeline := f.open(false, openKey(t, appKeyFile))
			if err := f.publish(pipeline, "hello", "1.1.0", "v1.1"); err != nil {
				t.Fatalf("pipeline publish: %v", err)
			}
		}
		rel, err := c.Check(ctx)
		if err != nil {
			t.Fatalf("step %d (%s): client stopped updating: %v\nserver log:\n%s", step, f.clock.now().Format(time.RFC3339), err, log.String())
		}
		if step >= 3 && (rel == nil || rel.Version != "1.1.0") {
			t.Fatalf("step %d: client does not see 1.1.0: %+v", step, rel)
		}
	}
	if strings.Contains(log.String(), "error") {
		t.Errorf("refresher reported errors:\n%s", log.String())
	}
	for _, want := range []string{"ferry: warning: role targets (offline keys) expires in ", "--role targets"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("server log lacks %q:\n%s", want, log.String())
		}
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// forger is an attacker who holds what the server holds: the repository
// directory, its online keys and their passphrase. It writes metadata into
// the served directory and re-signs snapshot and timestamp over it, as a
// server taken over can.
type forger struct {
	t        *testing.T
	f        *custodyFixture
	snap, ts keys.Signer
}

func newForger(t *testing.T, f *custodyFixture) *forger {
	pass := repo.Passphrase([]byte(custodyPass)) // FERRY_PASSPHRASE, from the server's environment
	var ss []keys.Signer
	for _, role := range []string{"snapshot", "timestamp"} {
		s, err := keys.Open(context.Background(), filepath.Join(f.dir, "keys", role+".age"), pass)
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	return &forger{t: t, f: f, snap: ss[0], ts: ss[1]}
}

func (g *forger) md(name string) string { return filepath.Join(g.f.dir, "public", "metadata", name) }

// release builds the next version of app's role as served now, with a
// file of content added as version, signs it with signers, and writes the
// file where the server serves targets. It returns the role bytes.
func (g *forger) release(app, version, content string, signers ...keys.Signer) []byte {
	g.t.Helper()
	md := metadata.Targets(g.f.clock.now().Add(30 * 24 * time.Hour))
	md.Signed.Version = 0
	if cur := g.served(app); cur != nil {
		var err error
		if md, err = metadata.Targets().FromBytes(cur); err != nil {
			g.t.Fatal(err)
		}
	}
	custom, err := release.Custom{App: app, Version: version, Platform: "linux/amd64", Kind: "binary"}.Marshal()
	if err != nil {
		g.t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(content))
	p := app + "/" + version + "/linux-amd64/" + app
	tf := metadata.TargetFile()
	tf.Path, tf.Length, tf.Hashes = p, int64(len(content)), metadata.Hashes{"sha256": sum[:]}
	raw := json.RawMessage(custom)
	tf.Custom = &raw
	md.Signed.Targets[p] = tf
	md.Signed.Version++
	md.Signed.Expires = g.f.clock.now().Add(30 * 24 * time.Hour)
	dst := filepath.Join(g.f.dir, "public", "targets", app, version, "linux-amd64", hex.EncodeToString(sum[:])+"."+app)
	os.MkdirAll(filepath.Dir(dst), 0o755)
	os.WriteFile(dst, []byte(content), 0o644)
	return signMD(g.t, md, signers...)
}

// served returns app's role as the server serves it now, read without
// verifying anything (an attacker need not), or nil.
func (g *forger) served(app string) []byte {
	g.t.Helper()
	snap := g.snapshot()
	m := snap.Signed.Meta[app+".json"]
	if m == nil {
		return nil
	}
	b, err := os.ReadFile(g.md(fmt.Sprintf("%d.%s.json", m.Version, app)))
	if err != nil {
		g.t.Fatal(err)
	}
	return b
}

// snapshot returns the snapshot timestamp.json names now.
func (g *forger) snapshot() *metadata.Metadata[metadata.SnapshotType] {
	g.t.Helper()
	tsBytes, _ := os.ReadFile(g.md("timestamp.json"))
	ts, err := metadata.Timestamp().FromBytes(tsBytes)
	if err != nil {
		g.t.Fatal(err)
	}
	snapBytes, _ := os.ReadFile(g.md(fmt.Sprintf("%d.snapshot.json", ts.Signed.Meta["snapshot.json"].Version)))
	snap, err := metadata.Snapshot().FromBytes(snapBytes)
	if err != nil {
		g.t.Fatal(err)
	}
	return snap
}

// serve writes role's metadata (targets or an application) and a new
// snapshot and timestamp signed with the online keys that reference it.
func (g *forger) serve(role string, data []byte) {
	g.t.Helper()
	md, err := metadata.Targets().FromBytes(data)
	if err != nil {
		g.t.Fatal(err)
	}
	v := md.Signed.Version
	os.WriteFile(g.md(fmt.Sprintf("%d.%s.json", v, role)), data, 0o644)
	tsBytes, _ := os.ReadFile(g.md("timestamp.json"))
	ts, err := metadata.Timestamp().FromBytes(tsBytes)
	if err != nil {
		g.t.Fatal(err)
	}
	snap := g.snapshot()
	snap.Signed.Meta[role+".json"] = metaOf(v, data)
	snap.Signed.Version++
	snap.Signed.Expires = g.f.clock.now().Add(7 * 24 * time.Hour)
	snapOut := signMD(g.t, snap, g.snap)
	os.WriteFile(g.md(fmt.Sprintf("%d.snapshot.json", snap.Signed.Version)), snapOut, 0o644)
	ts.Signed.Meta["snapshot.json"] = metaOf(snap.Signed.Version, snapOut)
	ts.Signed.Version++
	ts.Signed.Expires = g.f.clock.now().Add(24 * time.Hour)
	os.WriteFile(g.md("timestamp.json"), signMD(g.t, ts, g.ts), 0o644)
}

// signMD replaces md's signatures with signers' and encodes it.
func signMD[T metadata.Roles](t *testing.T, md *metadata.Metadata[T], signers ...keys.Signer) []byte {
	t.Helper()
	md.ClearSignatures()
	for _, s := range signers {
		if _, err := md.Sign(keys.TUFSigner(context.Background(), s)); err != nil {
			t.Fatal(err)
		}
	}
	out, err := md.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func metaOf(v int64, data []byte) *metadata.MetaFiles {
	sum := sha256.Sum256(data)
	m := metadata.MetaFile(v)
	m.Length = int64(len(data))
	m.Hashes = metadata.Hashes{"sha256": sum[:]}
	return m
}

func newSigner(t *testing.T) keys.Signer {
	t.Helper()
	priv, err := keys.Generate()
	if err != nil {
		t.Fatal(err)
	}
	s, err := keys.NewFileSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAppThreshold_R53: an application created with --app-threshold 2
// cannot be released with one of its keys: the publish writes nothing, the
// server's upload check refuses the role, and a role with 1 of 2
// signatures served anyway (by a server that re-signs snapshot and
// timestamp over it) is refused by a real client, which does offer the
// same release once both keys signed it.
func TestAppThreshold_R53(t *testing.T) {
	f := newCustodyFixture(t, repo.Expiries{})
	a, b := newSigner(t), newSigner(t)
	first, err := repo.OpenWith(f.dir, repo.Options{Passphrase: repo.Passphrase([]byte(custodyPass)), OfflineKeys: f.offline,
		AppKeys: []keys.Signer{a, b}, AppThreshold: 2, Now: f.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.publish(first, "hello", "1.0.0", "v1"); err != nil {
		t.Fatal(err)
	}
	c := f.client("0.9.0")
	if rel, err := c.Check(context.Background()); err != nil || rel == nil || rel.Version != "1.0.0" {
		t.Fatalf("2-of-2 release: %+v, %v", rel, err)
	}

	// One key: nothing is written.
	before := dirHashes(t, f.dir)
	err = f.publish(f.open(false, a), "hello", "1.1.0", "one key")
	if err == nil || !strings.Contains(err.Error(), "1 of 2 keys available") {
		t.Fatalf("publish with 1 of 2 keys: %v", err)
	}
	if d := dirHashes(t, f.dir); d != before {
		t.Fatal("a refused publish changed the repository")
	}

	g := newForger(t, f)
	oneSig := g.release("hello", "1.1.0", "signed by one key", a)
	if _, err := f.open(false).CheckUpload(context.Background(), "hello", oneSig); err == nil {
		t.Fatal("upload check accepted a role with 1 of 2 signatures")
	}
	g.serve("hello", oneSig)
	c = f.client("1.0.0")
	rel, err := c.Check(context.Background())
	if err == nil || rel != nil {
		t.Fatalf("client accepted a role with 1 of 2 signatures: %+v, %v", rel, err)
	}

	// The control: a release with both signatures is offered.
	both := g.release("hello", "1.2.0", "signed by both", a, b)
	g.serve("hello", both)
	if rel, err := f.client("1.0.0").Check(context.Background()); err != nil || rel == nil || rel.Version != "1.2.0" {
		t.Fatalf("2-of-2 release not offered: %+v, %v", rel, err)
	}
}

// dirHashes is one hash over every file under dir (names and contents).
func dirHashes(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		fmt.Fprintf(h, "%s %x\n", p, sha256.Sum256(b))
		return nil
	})
	return fmt.Sprintf("%x", h.Sum(nil))
}

// servedTargets returns targets as the server serves it now.
func (g *forger) servedTargets() *metadata.Metadata[metadata.TargetsType] {
	g.t.Helper()
	b := g.served("targets")
	md, err := metadata.Targets().FromBytes(b)
	if err != nil {
		g.t.Fatal(err)
	}
	return md
}

// redelegate serves a targets role that delegates hello to x, signed by
// signers (targets' own key is offline: the attacker has none).
func (g *forger) redelegate(x keys.Signer, signers ...keys.Signer) {
	t := g.servedTargets()
	id, _ := x.Key().ID()
	d := t.Signed.Delegations
	d.Keys[id] = x.Key()
	for i := range d.Roles {
		if d.Roles[i].Name == "hello" {
			d.Roles[i].KeyIDs = []string{id}
		}
	}
	t.Signed.Version++
	g.serve("targets", signMD(g.t, t, signers...))
}

// TestStolenServer_R57 hands an attacker everything the server has: the
// repository directory with its online keys, and the passphrase from the
// server's environment (FERRY_PASSPHRASE); the offline keys are not on the
// machine. Every forgery it can make, served over HTTPS to a client that
// trusts the repository, offers nothing no application key signed; at
// worst it withholds updates and replays metadata until the timestamp
// expires.
func TestStolenServer_R57(t *testing.T) {
	const evil = "6.6.6"
	attacks := []struct {
		name  string
		forge func(t *testing.T, f *custodyFixture, g *forger)
	}{
		// Not an attack: the plumbing below with the application key (which
		// the server does not have) is offered, so each refusal below is the
		// client's doing, not a broken forgery.
		{"control: the same with the application key", nil},
		{"app role signed with the online keys", func(t *testing.T, f *custodyFixture, g *forger) {
			g.serve("hello", g.release("hello", evil, "evil", g.snap, g.ts))
		}},
		{"app role signed with the attacker's own key", func(t *testing.T, f *custodyFixture, g *forger) {
			g.serve("hello", g.release("hello", evil, "evil", newSigner(t)))
		}},
		{"targets re-delegating the app, signed with the online keys", func(t *testing.T, f *custodyFixture, g *forger) {
			x := newSigner(t)
			g.redelegate(x, g.snap, g.ts, x)
			g.serve("hello", g.release("hello", evil, "evil", x))
		}},
		{"new root listing the attacker's keys, signed with the online keys", func(t *testing.T, f *custodyFixture, g *forger) {
			x := newSigner(t)
			root, err := metadata.Root().FromBytes(f.root)
			if err != nil {
				t.Fatal(err)
			}
			for _, role := range []string{"root", "targets"} {
				for _, old := range root.Signed.Roles[role].KeyIDs {
					root.Signed.RevokeKey(old, role)
				}
				root.Signed.AddKey(x.Key(), role)
			}
			root.Signed.Version = 2
			os.WriteFile(g.md("2.root.json"), signMD(t, root, g.snap, g.ts, x), 0o644)
			g.redelegate(x, x)
			g.serve("hello", g.release("hello", evil, "evil", x))
		}},
		{"the ferry command run with the stolen directory and environment", func(t *testing.T, f *custodyFixture, g *forger) {
			src := filepath.Join(t.TempDir(), "hello")
			os.WriteFile(src, []byte("evil"), 0o755)
			e := &env{stdin: strings.NewReader(""), stdout: new(bytes.Buffer), stderr: new(bytes.Buffer), getenv: func(k string) string {
				return map[string]string{envPassphrase: custodyPass, envInsecureWorkFactor: "8"}[k]
			}}
			for _, args := range [][]string{
				{"release", "publish", "--repo", f.dir, "--app", "hello", "--version", evil, "--platform", "linux/amd64", src},
				{"release", "publish", "--repo", f.dir, "--app-key", filepath.Join(f.dir, "keys", "snapshot.age"), "--app", "hello", "--version", evil, "--platform", "linux/amd64", src},
				{"release", "publish", "--repo", f.dir, "--app", "evil", "--version", evil, "--platform", "linux/amd64", src},
				{"repo", "refresh", "--repo", f.dir, "--role", "targets"},
				{"repo", "refresh", "--repo", f.dir, "--role", "hello"},
			} {
				errb := e.stderr.(*bytes.Buffer)
				errb.Reset()
				if code := e.run(context.Background(), args); code == 0 || !strings.Contains(errb.String(), "key") {
					t.Errorf("ferry %s on the stolen server: exit %d, %s", strings.Join(args, " "), code, errb)
				}
			}
		}},
		{"an upload of a role signed with an online key", func(t *testing.T, f *custodyFixture, g *forger) {
			role := g.release("hello", evil, "evil", g.snap)
			dst := filepath.Join(t.TempDir(), "hello")
			os.WriteFile(dst, []byte("evil"), 0o755)
			if _, err := f.open(false).PublishUpload(context.Background(), "hello", role, []string{dst}); err == nil {
				t.Error("the server's own upload check accepted a role signed with an online key")
			}
		}},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			f, victim, appKey := stolenServer(t)
			if a.forge == nil {
				g := newForger(t, f)
				g.serve("hello", g.release("hello", evil, "signed by the application key", appKey))
				if rel, err := victim.Check(context.Background()); err != nil || rel == nil || rel.Version != evil {
					t.Fatalf("control release not offered: %+v, %v", rel, err)
				}
				return
			}
			a.forge(t, f, newForger(t, f))
			for name, c := range map[string]*client.Client{"a client that trusted the repository": victim, "a new client": f.client("0.1.0")} {
				rel, err := c.Check(context.Background())
				if rel != nil && rel.Version != "1.0.0" {
					t.Fatalf("%s was offered %s %s (err %v)", name, rel.App, rel.Version, err)
				}
			}
		})
	}
	t.Run("control: the old layout gives the thief every key", func(t *testing.T) {
		// The same theft from a repository that keeps every key in DIR/keys
		// (ferry init without --offline-keys): the thief publishes, which is
		// what the safe layout above prevents.
		f := newFixtureLayout(t, repo.Expiries{}, false)
		legacy := f.dir
		if err := f.publish(f.open(false), "hello", "1.0.0", "v1"); err != nil {
			t.Fatal(err)
		}
		src := filepath.Join(t.TempDir(), "hello")
		os.WriteFile(src, []byte("evil"), 0o755)
		e := &env{stdin: strings.NewReader(""), stdout: new(bytes.Buffer), stderr: new(bytes.Buffer), getenv: func(k string) string {
			return map[string]string{envPassphrase: custodyPass}[k]
		}}
		if code := e.run(context.Background(), []string{"release", "publish", "--repo", legacy, "--app", "hello", "--version", evil, "--platform", "linux/amd64", src}); code != 0 {
			t.Fatalf("thief's publish on the old layout failed: %s", e.stderr)
		}
		if rel, err := f.client("1.0.0").Check(context.Background()); err != nil || rel == nil || rel.Version != evil {
			t.Fatalf("old layout: %+v, %v", rel, err)
		}
	})
	t.Run("an altered artifact", func(t *testing.T) {
		f, _, _ := stolenServer(t)
		m, _ := filepath.Glob(filepath.Join(f.dir, "public", "targets", "hello", "1.0.0", "linux-amd64", "*.hello"))
		if len(m) != 1 {
			t.Fatalf("stored artifact: %v", m)
		}
		os.WriteFile(m[0], []byte("X1"), 0o644) // same length as "v1"
		c := f.client("0.1.0")
		rel, err := c.Check(context.Background())
		if err != nil || rel == nil {
			t.Fatalf("check: %+v, %v", rel, err)
		}
		out := t.TempDir()
		if p, err := c.Download(context.Background(), rel, out); err == nil {
			t.Fatalf("altered artifact downloaded to %s", p)
		}
		if ents, _ := os.ReadDir(out); len(ents) > 0 {
			t.Fatalf("download left %d files", len(ents))
		}
	})
	t.Run("a replay withholds until the timestamp expires", func(t *testing.T) {
		f, victim, _ := stolenServer(t)
		old, _ := os.ReadFile(filepath.Join(f.dir, "public", "metadata", "timestamp.json"))
		f.clock.advance(13 * time.Hour)
		if _, err := f.open(false).RefreshWith(context.Background(), repo.RefreshOptions{OnlineOnly: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := victim.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
		ts := filepath.Join(f.dir, "public", "metadata", "timestamp.json")
		cur, _ := os.ReadFile(ts)
		os.WriteFile(ts, old, 0o644) // an older timestamp: refused as a rollback
		if rel, err := victim.Check(context.Background()); rel != nil || err == nil || !strings.Contains(err.Error(), "rollback") {
			t.Fatalf("replayed older metadata: %+v, %v", rel, err)
		}
		// The newest metadata the attacker has, no longer refreshed: accepted
		// (nothing new is offered) until the timestamp expires.
		os.WriteFile(ts, cur, 0o644)
		f.clock.advance(10 * time.Hour)
		if rel, err := victim.Check(context.Background()); rel != nil || err != nil {
			t.Fatalf("withheld updates, timestamp still valid: %+v, %v", rel, err)
		}
		f.clock.advance(15 * time.Hour)
		if _, err := victim.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("after the timestamp's lifetime the client should report a freeze: %v", err)
		}
	})
}

// stolenServer is a repository with hello 1.0.0 whose offline keys are
// gone from the machine, a client that trusts its current state, and the
// application key as its pipeline holds it (not on the server).
func stolenServer(t *testing.T) (*custodyFixture, *client.Client, keys.Signer) {
	t.Helper()
	f := newCustodyFixture(t, repo.Expiries{})
	if err := f.publish(f.open(true), "hello", "1.0.0", "v1"); err != nil {
		t.Fatal(err)
	}
	appKey := openKey(t, filepath.Join(f.offline, "apps", "hello.age"))
	if err := os.RemoveAll(f.offline); err != nil {
		t.Fatal(err)
	}
	var priv []string
	filepath.WalkDir(f.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".age") {
			rel, _ := filepath.Rel(f.dir, p)
			priv = append(priv, filepath.ToSlash(rel))
		}
		return err
	})
	if strings.Join(priv, " ") != "keys/rollout.age keys/snapshot.age keys/timestamp.age" {
		t.Fatalf("the server holds private keys %v, want only the online keys", priv)
	}
	c := f.client("1.0.0")
	if rel, err := c.Check(context.Background()); err != nil || rel != nil {
		t.Fatalf("before the attack: %+v, %v", rel, err)
	}
	return f, c, appKey
}
