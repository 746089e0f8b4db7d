package repo_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/server"
	"github.com/ferry-updates/ferry/trust"
)

var bg = context.Background()

const pass = "rotation test"

// live is a repository served over HTTPS on 127.0.0.1 by package server,
// with clients of package client: the real parts on both sides.
type live struct {
	t       *testing.T
	dir     string
	rp      *repo.Repo
	srv     *httptest.Server
	shipped []byte // the root.json clients were shipped with
}

func newLive(t *testing.T, rootKeys int) *live {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	if err := repo.Init(bg, dir, repo.InitOptions{RootKeys: rootKeys, Passphrase: []byte(pass), InsecureScryptWorkFactor: 8}); err != nil {
		t.Fatal(err)
	}
	rp, err := repo.Open(dir, []byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	h, err := server.Repository(filepath.Join(dir, "public"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	shipped, err := os.ReadFile(filepath.Join(dir, "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	return &live{t: t, dir: dir, rp: rp, srv: srv, shipped: shipped}
}

func (l *live) publish(app, version string) {
	l.t.Helper()
	src := filepath.Join(l.t.TempDir(), app)
	if err := os.WriteFile(src, []byte(app+" "+version), 0o755); err != nil {
		l.t.Fatal(err)
	}
	rel := repo.Release{App: app, Version: version, Platform: "linux/amd64", Kind: "binary"}
	if err := l.rp.Publish(bg, rel, []string{src}); err != nil {
		l.t.Fatal(err)
	}
}

// client returns a client of app whose events go to log.
func (l *live) client(app string, log *bytes.Buffer) *client.Client {
	c, _ := l.clientState(app, log)
	return c
}

// clientState is client, also returning the client's state directory.
func (l *live) clientState(app string, log *bytes.Buffer) (*client.Client, string) {
	l.t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(l.srv.Certificate())
	cfg := client.Config{
		URLs: []string{l.srv.URL}, TrustedRoot: l.shipped, StateDir: filepath.Join(l.t.TempDir(), "state"),
		App: app, Platform: "linux/amd64", RootCAs: pool,
	}
	if log != nil {
		cfg.Log = slog.New(slog.NewJSONHandler(log, nil))
	}
	c, err := client.New(cfg)
	if err != nil {
		l.t.Fatal(err)
	}
	return c, cfg.StateDir
}

// mustOffer checks that c's next check offers version.
func mustOffer(t *testing.T, c *client.Client, version string) {
	t.Helper()
	rel, err := c.Check(bg)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if rel == nil || rel.Version != version {
		t.Fatalf("check offers %v, want %s", rel, version)
	}
}

func (l *live) signer(file string) keys.Signer {
	l.t.Helper()
	s, err := keys.Open(bg, filepath.Join(l.dir, "keys", file), func(string) ([]byte, error) { return []byte(pass), nil })
	if err != nil {
		l.t.Fatal(err)
	}
	return s
}

// ceremony signs p with the named key files, each through its own copy of
// the proposal file as a holder would, and publishes it.
func (l *live) ceremony(p *repo.Proposal, keyFiles ...string) {
	l.t.Helper()
	if err := l.ceremonyWith(p, repo.PublishOptions{}, keyFiles...); err != nil {
		l.t.Fatal(err)
	}
}

// ceremonyWith is ceremony with the publisher's options; it returns the
// publish error.
func (l *live) ceremonyWith(p *repo.Proposal, opts repo.PublishOptions, keyFiles ...string) error {
	l.t.Helper()
	file := filepath.Join(l.t.TempDir(), "proposal.json")
	if err := repo.WriteProposal(file, p); err != nil {
		l.t.Fatal(err)
	}
	for _, kf := range keyFiles {
		q, err := repo.ReadProposal(file)
		if err != nil {
			l.t.Fatal(err)
		}
		if err := q.Sign(bg, l.signer(kf)); err != nil {
			l.t.Fatal(err)
		}
		if err := repo.WriteProposal(file, q); err != nil {
			l.t.Fatal(err)
		}
	}
	q, err := repo.ReadProposal(file)
	if err != nil {
		l.t.Fatal(err)
	}
	return l.rp.PublishProposalWith(bg, q, opts)
}

func (l *live) rotateRoot(ch repo.RootChange, keyFiles ...string) {
	l.t.Helper()
	p, err := l.rp.ProposeRoot(bg, ch)
	if err != nil {
		l.t.Fatal(err)
	}
	l.ceremony(p, keyFiles...)
}

// trustedVersion is the version of role the client persisted.
func trustedVersion(t *testing.T, state, role string) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, "metadata", role+".json"))
	if role == "root" && errors.Is(err, os.ErrNotExist) {
		return 1 // nothing stored: the shipped root, version 1
	}
	if err != nil {
		t.Fatal(err)
	}
	var md struct {
		Signed struct{ Version int64 } `json:"signed"`
	}
	if err := json.Unmarshal(b, &md); err != nil {
		t.Fatal(err)
	}
	return md.Signed.Version
}

// TestRootChain50 publishes 50 root versions, one ceremony each, while a
// client that was shipped root 1 waits; its next refresh walks all of them.
func TestRootChain50(t *testing.T) {
	l := newLive(t, 1)
	l.publish("hello", "1.0.0")
	c := l.client("hello", nil)
	mustOffer(t, c, "1.0.0")
	for range 50 {
		l.rotateRoot(repo.RootChange{}, "root-1.age")
	}
	l.publish("hello", "1.1.0")
	mustOffer(t, c, "1.1.0")
	files, _ := filepath.Glob(filepath.Join(l.dir, "public", "metadata", "*.root.json"))
	if len(files) != 51 {
		t.Fatalf("%d root versions published, want 51", len(files))
	}
}

// TestRotateEachRoleLive rotates each role's key with a client updating
// across the rotation: root (a holder's key replaced), targets, snapshot
// and timestamp (root ceremonies), and an application (a targets one).
func TestRotateEachRoleLive(t *testing.T) {
	for _, role := range []string{"root", "targets", "snapshot", "timestamp", "hello"} {
		t.Run(role, func(t *testing.T) {
			l := newLive(t, 2)
			l.publish("hello", "1.0.0")
			c := l.client("hello", nil)
			mustOffer(t, c, "1.0.0")
			before, _ := repo.Keys(l.dir)
			switch role {
			case "root":
				priv, _ := keys.Generate()
				if err := keys.Save(filepath.Join(l.dir, "keys", "root-3.age"), priv, []byte(pass), 8); err != nil {
					t.Fatal(err)
				}
				k := l.signer("root-3.age").Key()
				old, _ := l.signer("root-1.age").Key().ID()
				l.rotateRoot(repo.RootChange{AddKeys: []*metadata.Key{k}, RemoveKeys: []string{old}}, "root-1.age", "root-2.age", "root-3.age")
			case "hello":
				p, err := l.rp.ProposeTargets(bg, repo.TargetsChange{App: "hello", Rotate: true})
				if err != nil {
					t.Fatal(err)
				}
				l.ceremony(p, "targets.age")
			default:
				l.rotateRoot(repo.RootChange{Rotate: []string{role}}, "root-1.age", "root-2.age")
			}
			after, _ := repo.Keys(l.dir)
			if changed := keyIDsOf(before, role) != keyIDsOf(after, role); !changed {
				t.Fatalf("the keys of %s did not change", role)
			}
			l.publish("hello", "1.1.0")
			mustOffer(t, c, "1.1.0")
		})
	}
}

func keyIDsOf(ks []repo.KeyInfo, role string) string {
	var s string
	for _, k := range ks {
		if k.Role == role {
			s += k.KeyID + " "
		}
	}
	return s
}

// forge signs md with the key in file and returns its bytes.
func forge[T metadata.Roles](t *testing.T, l *live, md *metadata.Metadata[T], file string) []byte {
	t.Helper()
	md.ClearSignatures()
	if _, err := md.Sign(keys.TUFSigner(bg, l.signer(file))); err != nil {
		t.Fatal(err)
	}
	b, err := md.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readMD(t *testing.T, l *live, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(l.dir, "public", "metadata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeMD(t *testing.T, l *live, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(l.dir, "public", "metadata", name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func metaOf(version int64, data []byte) *metadata.MetaFiles {
	m := metadata.MetaFile(version)
	sum := sha256.Sum256(data)
	m.Length = int64(len(data))
	m.Hashes = metadata.Hashes{"sha256": sum[:]}
	return m
}

// TestFastForwardRecovery_R14: a thief of the timestamp (or snapshot) key
// pushes a client's trusted version to 2^40; once the server is clean
// again the client refuses every honest timestamp as a rollback, until the
// key is rotated through a root ceremony: then the client forgets what the
// old key signed and updates (TUF 5.3.11).
func TestFastForwardRecovery_R14(t *testing.T) {
	for _, role := range []string{"timestamp", "snapshot"} {
		t.Run(role, func(t *testing.T) {
			l := newLive(t, 1)
			l.publish("hello", "1.0.0")
			var log bytes.Buffer
			c, state := l.clientState("hello", &log)
			mustOffer(t, c, "1.0.0")

			honestTS := readMD(t, l, "timestamp.json")
			ts, _ := metadata.Timestamp().FromBytes(honestTS)
			const huge = int64(1) << 40
			var planted string
			if role == "snapshot" {
				sv := ts.Signed.Meta["snapshot.json"].Version
				snap, _ := metadata.Snapshot().FromBytes(readMD(t, l, fmt.Sprintf("%d.snapshot.json", sv)))
				snap.Signed.Version = huge
				sb := forge(t, l, snap, "snapshot.age")
				planted = fmt.Sprintf("%d.snapshot.json", huge)
				writeMD(t, l, planted, sb)
				ts.Signed.Meta["snapshot.json"] = metaOf(huge, sb)
				ts.Signed.Version++
			} else {
				ts.Signed.Version = huge
			}
			writeMD(t, l, "timestamp.json", forge(t, l, ts, "timestamp.age"))
			mustOffer(t, c, "1.0.0") // the forgery verifies: the stolen key is valid
			if v := trustedVersion(t, state, role); v != huge {
				t.Fatalf("trusted %s version %d, want the forged %d", role, v, huge)
			}

			// The operator cleans the server and publishes; the client is stuck.
			writeMD(t, l, "timestamp.json", honestTS)
			if planted != "" {
				os.Remove(filepath.Join(l.dir, "public", "metadata", planted))
			}
			l.publish("hello", "1.1.0")
			if err := l.rp.Refresh(bg, true); err != nil { // a timestamp above the forged one's version
				t.Fatal(err)
			}
			if _, err := c.Check(bg); !errors.Is(err, trust.ErrRollback) {
				t.Fatalf("check before the rotation = %v, want a rollback refusal", err)
			}

			l.rotateRoot(repo.RootChange{Rotate: []string{role}}, "root-1.age")
			mustOffer(t, c, "1.1.0")
			if !bytes.Contains(log.Bytes(), []byte(`"metadata.fast_forward_recovery"`)) {
				t.Fatalf("no fast-forward recovery event logged:\n%s", log.String())
			}
		})
	}
}

// forgeRelease is what a thief of hello's key does, holding the online
// keys as well (the worst case): a new hello role with version 9.9.9,
// signed by the stolen key, and a snapshot and timestamp that list it.
func forgeRelease(t *testing.T, l *live, stolen keys.Signer) {
	t.Helper()
	ts, _ := metadata.Timestamp().FromBytes(readMD(t, l, "timestamp.json"))
	sv := ts.Signed.Meta["snapshot.json"].Version
	snap, _ := metadata.Snapshot().FromBytes(readMD(t, l, fmt.Sprintf("%d.snapshot.json", sv)))
	hv := snap.Signed.Meta["hello.json"].Version
	app, _ := metadata.Targets().FromBytes(readMD(t, l, fmt.Sprintf("%d.hello.json", hv)))
	evil := []byte("evil")
	tf, _ := metadata.TargetFile().FromBytes("hello/9.9.9/linux-amd64/hello", evil, "sha256")
	custom := json.RawMessage(`{"ferry":{"app":"hello","version":"9.9.9","platform":"linux/amd64","kind":"binary"}}`)
	tf.Custom = &custom
	app.Signed.Targets[tf.Path] = tf
	app.Signed.Version++
	app.ClearSignatures()
	if _, err := app.Sign(keys.TUFSigner(bg, stolen)); err != nil {
		t.Fatal(err)
	}
	ab, _ := app.ToBytes(false)
	writeMD(t, l, fmt.Sprintf("%d.hello.json", app.Signed.Version), ab)
	snap.Signed.Meta["hello.json"] = metaOf(app.Signed.Version, ab)
	snap.Signed.Version++
	sb := forge(t, l, snap, "snapshot.age")
	writeMD(t, l, fmt.Sprintf("%d.snapshot.json", snap.Signed.Version), sb)
	ts.Signed.Meta["snapshot.json"] = metaOf(snap.Signed.Version, sb)
	ts.Signed.Version++
	writeMD(t, l, "timestamp.json", forge(t, l, ts, "timestamp.age"))
}

// TestRevokedAppKey_R60: hello's key is stolen. Before the revocation the
// thief (with the online keys too) gets 9.9.9 offered to a client; after
// 'key rotate --role hello' (a targets ceremony) the same forgery is
// refused at the next refresh, a release signed by the new key is offered,
// and the other application's role is untouched and keeps updating.
func TestRevokedAppKey_R60(t *testing.T) {
	l := newLive(t, 1)
	l.publish("hello", "1.0.0")
	l.publish("other", "1.0.0")
	stolen := l.signer(filepath.Join("apps", "hello.age"))
	c := l.client("hello", nil)
	mustOffer(t, c, "1.0.0")
	otherC := l.client("other", nil)
	mustOffer(t, otherC, "1.0.0")

	// The stolen key works while it is delegated: a fresh client is fooled.
	honest := map[string][]byte{"timestamp.json": readMD(t, l, "timestamp.json")}
	forgeRelease(t, l, stolen)
	mustOffer(t, l.client("hello", nil), "9.9.9")
	writeMD(t, l, "timestamp.json", honest["timestamp.json"]) // the operator cleans up

	otherBefore, _ := os.ReadDir(filepath.Join(l.dir, "public", "metadata"))
	p, err := l.rp.ProposeTargets(bg, repo.TargetsChange{App: "hello", Rotate: true})
	if err != nil {
		t.Fatal(err)
	}
	l.ceremony(p, "targets.age")
	otherAfter, _ := os.ReadDir(filepath.Join(l.dir, "public", "metadata"))
	if n := countPrefix(otherAfter, ".other.json") - countPrefix(otherBefore, ".other.json"); n != 0 {
		t.Fatalf("revoking hello's key wrote %d new versions of other's role", n)
	}
	mustOffer(t, c, "1.0.0")

	var log bytes.Buffer
	c2 := l.client("hello", &log)
	honest["timestamp.json"] = readMD(t, l, "timestamp.json")
	forgeRelease(t, l, stolen)
	for _, cl := range []*client.Client{c, c2} {
		if rel, err := cl.Check(bg); !errors.Is(err, trust.ErrBadSignature) {
			t.Fatalf("check after the revocation = %v, %v; want the old key's role refused", rel, err)
		}
	}
	if !bytes.Contains(log.Bytes(), []byte(`"metadata.rejected"`)) {
		t.Fatalf("no rejection event:\n%s", log.String())
	}
	writeMD(t, l, "timestamp.json", honest["timestamp.json"])
	if err := l.rp.Refresh(bg, true); err != nil {
		t.Fatal(err)
	}
	l.publish("hello", "1.1.0")
	l.publish("other", "1.1.0")
	mustOffer(t, c2, "1.1.0")
	mustOffer(t, otherC, "1.1.0")
}

func countPrefix(ents []os.DirEntry, suffix string) int {
	n := 0
	for _, e := range ents {
		if len(e.Name()) > len(suffix) && e.Name()[len(e.Name())-len(suffix):] == suffix {
			n++
		}
	}
	return n
}

// plantRoot writes p's metadata, signed with only the keys it carries, as
// the next root on the server, as a thief of the server could.
func plantRoot(t *testing.T, l *live, p *repo.Proposal) {
	t.Helper()
	writeMD(t, l, fmt.Sprintf("%d.root.json", p.Base.Version+1), p.Metadata())
}

// TestClientRefusesUnderSignedRoot_R2: a root change of a 2-of-3 root that
// one holder signed is refused by publish and, planted on the server, by a
// client, which keeps root 1 and still updates; once a second holder signs,
// both accept it.
func TestClientRefusesUnderSignedRoot_R2(t *testing.T) {
	l := newLive(t, 3) // 3 root keys; the default threshold is a majority, 2
	l.publish("hello", "1.0.0")
	c, state := l.clientState("hello", nil)
	mustOffer(t, c, "1.0.0")
	p, err := l.rp.ProposeRoot(bg, repo.RootChange{Rotate: []string{"timestamp"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Sign(bg, l.signer("root-1.age")); err != nil {
		t.Fatal(err)
	}
	if err := l.rp.PublishProposal(bg, p); !errors.Is(err, repo.ErrBelowThreshold) {
		t.Fatalf("publish with 1 of 2 = %v, want ErrBelowThreshold", err)
	}
	plantRoot(t, l, p)
	if _, err := c.Check(bg); !errors.Is(err, trust.ErrBadSignature) {
		t.Fatalf("client given the 1-of-2 root: %v, want ErrBadSignature", err)
	}
	if v := trustedVersion(t, state, "root"); v != 1 {
		t.Fatalf("client trusts root %d, want 1", v)
	}
	if err := p.Sign(bg, l.signer("root-2.age")); err != nil {
		t.Fatal(err)
	}
	if err := l.rp.PublishProposal(bg, p); err != nil {
		t.Fatal(err)
	}
	l.publish("hello", "1.1.0")
	mustOffer(t, c, "1.1.0")
	if v := trustedVersion(t, state, "root"); v != 2 {
		t.Fatalf("client trusts root %d, want 2", v)
	}
}

// TestLeakedRootKeyLive_R58: a thief with one key of a 2-of-3 root and the
// whole server makes itself sole root holder with its own timestamp key;
// the client refuses that root. The two honest holders rotate the leaked
// key out, and a root signed by the leaked key alone is refused again.
func TestLeakedRootKeyLive_R58(t *testing.T) {
	l := newLive(t, 3)
	l.publish("hello", "1.0.0")
	c, state := l.clientState("hello", nil)
	mustOffer(t, c, "1.0.0")
	leaked := l.signer("root-1.age")
	id := func(s keys.Signer) string { i, _ := s.Key().ID(); return i }
	grab, err := l.rp.ProposeRoot(bg, repo.RootChange{
		RemoveKeys: []string{id(l.signer("root-2.age")), id(l.signer("root-3.age"))}, Threshold: 1, Rotate: []string{"timestamp"},
	})
	if err != nil {
		t.Fatal(err)
	}
	grab.Sign(bg, leaked)
	plantRoot(t, l, grab)
	if _, err := c.Check(bg); !errors.Is(err, trust.ErrBadSignature) {
		t.Fatalf("client given the thief's root: %v, want ErrBadSignature", err)
	}
	os.Remove(filepath.Join(l.dir, "public", "metadata", "2.root.json"))

	priv, _ := keys.Generate()
	if err := keys.Save(filepath.Join(l.dir, "keys", "root-4.age"), priv, []byte(pass), 8); err != nil {
		t.Fatal(err)
	}
	l.rotateRoot(repo.RootChange{AddKeys: []*metadata.Key{l.signer("root-4.age").Key()}, RemoveKeys: []string{id(leaked)}},
		"root-2.age", "root-3.age")
	mustOffer(t, c, "1.0.0")
	if v := trustedVersion(t, state, "root"); v != 2 {
		t.Fatalf("client trusts root %d after the rotation, want 2", v)
	}
	again, err := l.rp.ProposeRoot(bg, repo.RootChange{Threshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := leaked.Sign(bg, again.Signed)
	again.Signatures = append(again.Signatures, metadata.Signature{KeyID: id(leaked), Signature: sig})
	if err := l.rp.PublishProposal(bg, again); !errors.Is(err, repo.ErrBelowThreshold) {
		t.Fatalf("publish with the rotated-out key = %v, want ErrBelowThreshold", err)
	}
	plantRoot(t, l, again)
	if _, err := c.Check(bg); !errors.Is(err, trust.ErrBadSignature) {
		t.Fatalf("client given a root signed by the rotated-out key: %v, want ErrBadSignature", err)
	}
}

// TestNewAppByCeremony: a new application is delegated through a targets
// ceremony to a key its pipeline made elsewhere, before any release; the
// repository and its other application keep working while it has no role,
// and its first release, signed by the pipeline's key alone, reaches a
// client.
func TestNewAppByCeremony(t *testing.T) {
	l := newLive(t, 1)
	l.publish("hello", "1.0.0")
	priv, _ := keys.Generate()
	pipeline, err := keys.NewFileSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.rp.ProposeTargets(bg, repo.TargetsChange{App: "tool", AddKeys: []*metadata.Key{pipeline.Key()}})
	if err != nil {
		t.Fatal(err)
	}
	l.ceremony(p, "targets.age")
	ks, err := repo.Keys(l.dir)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := pipeline.Key().ID(); keyIDsOf(ks, "tool") != id+" " {
		t.Fatalf("tool is delegated to %q, want the pipeline's key %s", keyIDsOf(ks, "tool"), id)
	}
	hello := l.client("hello", nil)
	l.publish("hello", "1.1.0")
	mustOffer(t, hello, "1.1.0")

	withKey, err := repo.OpenWith(l.dir, repo.Options{Passphrase: repo.Passphrase([]byte(pass)), AppKeys: []keys.Signer{pipeline}, TrustedRoot: l.shipped})
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "tool")
	os.WriteFile(src, []byte("tool 1.0.0"), 0o755)
	if err := withKey.Publish(bg, repo.Release{App: "tool", Version: "1.0.0", Platform: "linux/amd64", Kind: "binary"}, []string{src}); err != nil {
		t.Fatal(err)
	}
	mustOffer(t, l.client("tool", nil), "1.0.0")
	ks, _ = repo.Keys(l.dir)
	if id, _ := pipeline.Key().ID(); keyIDsOf(ks, "tool") != id+" " {
		t.Fatalf("after its first release tool is delegated to %q, want only the pipeline's key", keyIDsOf(ks, "tool"))
	}
}
