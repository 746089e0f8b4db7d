package repo

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/trust"
)

// ecdsaHolder is an ECDSA P-256 key as an HSM or a KMS holds it (here in
// memory, behind the same keys.NewECDSASigner the device signers use).
func ecdsaHolder(t *testing.T) keys.Signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := keys.NewECDSASigner("test:ecdsa", &priv.PublicKey, func(_ context.Context, d []byte) ([]byte, error) {
		return ecdsa.SignASN1(rand.Reader, priv, d)
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRootHeldInDevices: a first root whose keys are ECDSA keys in HSMs or
// KMS (their public values are PEM blocks, with newlines) goes through the
// ceremony: the proposal file parses, holders sign it, it publishes, and
// the published root.json is valid JSON that the client's trust accepts.
// Canonical JSON leaves the newlines raw, which is not JSON text: the
// proposal file and the published root must escape them.
func TestRootHeldInDevices(t *testing.T) {
	holders := []keys.Signer{ecdsaHolder(t), ecdsaHolder(t)}
	base := t.TempDir()
	dir, offline := filepath.Join(base, "repo"), filepath.Join(base, "offline")
	opts := InitOptions{Passphrase: []byte(testPassphrase), OfflineKeys: offline, RootThreshold: 2, InsecureScryptWorkFactor: 8}
	for _, h := range holders {
		opts.RootPublic = append(opts.RootPublic, h.Key())
	}
	if err := Init(ctx, dir, opts); err != nil {
		t.Fatal(err)
	}
	for _, h := range holders {
		p, err := ReadProposal(RootProposalFile(dir))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Sign(ctx, h); err != nil {
			t.Fatal(err)
		}
		if err := WriteProposal(RootProposalFile(dir), p); err != nil {
			t.Fatal(err)
		}
	}
	p, err := ReadProposal(RootProposalFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenWith(dir, Options{Passphrase: Passphrase([]byte(testPassphrase)), OfflineKeys: offline})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.PublishProposal(ctx, p); err != nil {
		t.Fatal(err)
	}
	root, err := os.ReadFile(RootFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	md, err := metadata.Root().FromBytes(root)
	if err != nil {
		t.Fatalf("published root.json does not parse: %v", err)
	}
	if err := md.VerifyDelegate(metadata.ROOT, md); err != nil {
		t.Fatalf("go-tuf: %v", err)
	}
	n, err := trust.CountSignatures(root, md.Signed.Keys, md.Signed.Roles[metadata.ROOT].KeyIDs, 2)
	if err != nil || len(n.Signed) != 2 {
		t.Fatalf("trust counts %v signatures of the ECDSA holders: %v", n.Signed, err)
	}
}
