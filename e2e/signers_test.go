// Package e2e holds end-to-end tests that join the publisher, the server
// and the client with real parts only: keys in a real PKCS#11 token
// (SoftHSM2) or a real KMS API server (local-kms), a repository on disk,
// HTTPS on 127.0.0.1 and package client. The agent tests run the ferry
// command itself (built once per test run): ferry serve, ferry rollout and
// ferry agent processes, signals and all. The fleet simulations ask one
// client.Repository what each of 1,000 install IDs should install, and
// the halt-reach simulation runs 50 clients on a simulated clock.
package e2e_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/server"
	"github.com/ferry-updates/ferry/trust"
)

var bg = context.Background()

const pass = "e2e passphrase"

// site is a repository with its offline keys beside it, served over HTTPS
// on 127.0.0.1 by package server.
type site struct {
	t            *testing.T
	dir, offline string
	srv          *httptest.Server
	online       map[string]keys.Signer // online keys held elsewhere, by role
}

func newSite(t *testing.T, online map[string]keys.Signer) *site {
	t.Helper()
	return newSiteRoot(t, online, nil)
}

// newSiteRoot is newSite with a first root made of the given holders'
// keys, all of which must sign it: Init writes the proposal, each holder
// signs the file with their key, and it is published.
func newSiteRoot(t *testing.T, online map[string]keys.Signer, holders []keys.Signer) *site {
	t.Helper()
	base := t.TempDir()
	s := &site{t: t, dir: filepath.Join(base, "repo"), offline: filepath.Join(base, "offline"), online: online}
	opts := repo.InitOptions{
		Passphrase: []byte(pass), OfflineKeys: s.offline, OnlineSigners: online, InsecureScryptWorkFactor: 8,
	}
	for _, h := range holders {
		opts.RootPublic = append(opts.RootPublic, h.Key())
		opts.RootThreshold = len(holders)
	}
	if err := repo.Init(bg, s.dir, opts); err != nil {
		t.Fatal(err)
	}
	if len(holders) > 0 {
		s.rootCeremony(holders)
	}
	h, err := server.Repository(filepath.Join(s.dir, "public"))
	if err != nil {
		t.Fatal(err)
	}
	s.srv = httptest.NewTLSServer(h)
	t.Cleanup(s.srv.Close)
	return s
}

// publish publishes app at version, its role signed by appKey (delegated
// to it on the application's first release).
func (s *site) publish(app, version string, appKey keys.Signer, online ...keys.Signer) {
	s.t.Helper()
	r, err := repo.OpenWith(s.dir, repo.Options{
		Passphrase: repo.Passphrase([]byte(pass)), OfflineKeys: s.offline,
		AppKeys: []keys.Signer{appKey}, Signers: online,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	src := filepath.Join(s.t.TempDir(), app)
	if err := os.WriteFile(src, []byte(app+" "+version+"\n"), 0o755); err != nil {
		s.t.Fatal(err)
	}
	rel := repo.Release{App: app, Version: version, Platform: "linux/amd64", Kind: "binary"}
	if err := r.Publish(bg, rel, []string{src}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *site) client(app string) *client.Client {
	s.t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(s.srv.Certificate())
	c, err := client.New(client.Config{
		URLs: []string{s.srv.URL}, TrustedRootFile: repo.RootFile(s.dir), StateDir: filepath.Join(s.t.TempDir(), "state"),
		App: app, Platform: "linux/amd64", RootCAs: pool,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// install checks, downloads and verifies app's newest release with a
// fresh client, and checks the bytes.
func (s *site) install(app, version string) {
	s.t.Helper()
	c := s.client(app)
	rel, err := c.Check(bg)
	if err != nil {
		s.t.Fatalf("check %s: %v", app, err)
	}
	if rel == nil || rel.Version != version {
		s.t.Fatalf("check %s offers %v, want %s", app, rel, version)
	}
	path, err := c.Download(bg, rel, s.t.TempDir())
	if err != nil {
		s.t.Fatalf("download %s: %v", app, err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		s.t.Fatal(err)
	}
	if want := app + " " + version + "\n"; string(got) != want {
		s.t.Fatalf("installed %q, want %q", got, want)
	}
}

// delegatedTo checks that app's role is delegated to k alone, as ECDSA.
func (s *site) delegatedTo(app string, k keys.Signer) {
	s.t.Helper()
	want, _ := k.Key().ID()
	ks, err := repo.Keys(s.dir)
	if err != nil {
		s.t.Fatal(err)
	}
	var ids []string
	for _, ki := range ks {
		if ki.Role == app {
			ids = append(ids, ki.KeyID)
		}
	}
	if len(ids) != 1 || ids[0] != want || k.Key().Type != metadata.KeyTypeECDSA_SHA2_P256 {
		s.t.Fatalf("%s is delegated to %v, want the %s key %s", app, ids, k.Key().Type, want)
	}
}

// spoilAppSignature flips one bit of the signature on the newest version
// of app's role and, as a thief of the server would, re-signs snapshot
// and timestamp over it with the online keys; a client must refuse the
// release, because the device's signature is what it verifies.
func (s *site) spoilAppSignature(app string) {
	s.t.Helper()
	ts, err := metadata.Timestamp().FromBytes(s.readMD("timestamp.json"))
	if err != nil {
		s.t.Fatal(err)
	}
	snap, err := metadata.Snapshot().FromBytes(s.readMD(fmt.Sprintf("%d.snapshot.json", ts.Signed.Meta["snapshot.json"].Version)))
	if err != nil {
		s.t.Fatal(err)
	}
	name := fmt.Sprintf("%d.%s.json", snap.Signed.Meta[app+".json"].Version, app)
	role, err := metadata.Targets().FromBytes(s.readMD(name))
	if err != nil {
		s.t.Fatal(err)
	}
	role.Signatures[0].Signature[10] ^= 0x01
	spoiled, err := role.ToBytes(false)
	if err != nil {
		s.t.Fatal(err)
	}
	s.writeMD(name, spoiled)
	snap.Signed.Meta[app+".json"] = metaOf(role.Signed.Version, spoiled)
	snap.Signed.Version++
	sb := sign(s.t, snap, s.onlineSigner(metadata.SNAPSHOT))
	s.writeMD(fmt.Sprintf("%d.snapshot.json", snap.Signed.Version), sb)
	ts.Signed.Meta["snapshot.json"] = metaOf(snap.Signed.Version, sb)
	ts.Signed.Version++
	s.writeMD("timestamp.json", sign(s.t, ts, s.onlineSigner(metadata.TIMESTAMP)))

	_, err = s.client(app).Check(bg)
	if !errors.Is(err, trust.ErrBadSignature) {
		s.t.Fatalf("check with a spoiled %s signature: %v, want ErrBadSignature", app, err)
	}
}

func (s *site) onlineSigner(role string) keys.Signer {
	s.t.Helper()
	if k := s.online[role]; k != nil {
		return k
	}
	k, err := keys.Open(bg, filepath.Join(s.dir, "keys", role+".age"), repo.Passphrase([]byte(pass)))
	if err != nil {
		s.t.Fatal(err)
	}
	return k
}

func (s *site) readMD(name string) []byte {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, "public", "metadata", name))
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

func (s *site) writeMD(name string, b []byte) {
	s.t.Helper()
	if err := os.WriteFile(filepath.Join(s.dir, "public", "metadata", name), b, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func sign[T metadata.Roles](t *testing.T, md *metadata.Metadata[T], k keys.Signer) []byte {
	t.Helper()
	md.ClearSignatures()
	if _, err := md.Sign(keys.TUFSigner(bg, k)); err != nil {
		t.Fatal(err)
	}
	b, err := md.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func metaOf(version int64, data []byte) *metadata.MetaFiles {
	m := metadata.MetaFile(version)
	sum := sha256.Sum256(data)
	m.Length = int64(len(data))
	m.Hashes = metadata.Hashes{"sha256": sum[:]}
	return m
}

// fileKey is an Ed25519 application key held in memory.
func fileKey(t *testing.T) keys.Signer {
	t.Helper()
	priv, err := keys.Generate()
	if err != nil {
		t.Fatal(err)
	}
	k, err := keys.NewFileSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// noOnlineKeyFiles checks that the repository directory holds no key file
// at all: its online keys are elsewhere and its offline keys beside it.
func (s *site) noOnlineKeyFiles() {
	s.t.Helper()
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".age") {
			return fmt.Errorf("key file %s in the repository", p)
		}
		return err
	})
	if err != nil {
		s.t.Fatal(err)
	}
}

// refreshOnline re-signs timestamp and snapshot the way ferry serve does
// (online roles only), with the online signers and no passphrase, and
// checks that a new timestamp was written.
func (s *site) refreshOnline(online ...keys.Signer) {
	s.t.Helper()
	before := s.readMD("timestamp.json")
	r, err := repo.OpenWith(s.dir, repo.Options{Signers: online})
	if err != nil {
		s.t.Fatal(err)
	}
	res, err := r.RefreshWith(bg, repo.RefreshOptions{OnlineOnly: true, Force: true})
	if err != nil {
		s.t.Fatal(err)
	}
	if !slices.Contains(res.Signed, "timestamp") || bytes.Equal(before, s.readMD("timestamp.json")) {
		s.t.Fatalf("refresh signed %v; timestamp.json unchanged", res.Signed)
	}
}

// rootCeremony has each holder sign the first root's proposal file in
// turn, then publishes it with the online keys.
func (s *site) rootCeremony(holders []keys.Signer) {
	s.t.Helper()
	file := repo.RootProposalFile(s.dir)
	for _, h := range holders {
		p, err := repo.ReadProposal(file)
		if err != nil {
			s.t.Fatal(err)
		}
		if err := p.Sign(bg, h); err != nil {
			s.t.Fatal(err)
		}
		if err := repo.WriteProposal(file, p); err != nil {
			s.t.Fatal(err)
		}
	}
	p, err := repo.ReadProposal(file)
	if err != nil {
		s.t.Fatal(err)
	}
	var online []keys.Signer
	for _, k := range s.online {
		online = append(online, k)
	}
	r, err := repo.OpenWith(s.dir, repo.Options{Passphrase: repo.Passphrase([]byte(pass)), OfflineKeys: s.offline, Signers: online})
	if err != nil {
		s.t.Fatal(err)
	}
	if err := r.PublishProposal(bg, p); err != nil {
		s.t.Fatal(err)
	}
}
