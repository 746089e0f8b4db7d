package repo

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/keys"
)

// holderKeys makes n keys as their holders would, each on its own.
func holderKeys(t *testing.T, n int) []keys.Signer {
	t.Helper()
	var out []keys.Signer
	for range n {
		priv, err := keys.Generate()
		if err != nil {
			t.Fatal(err)
		}
		s, err := keys.NewFileSigner(priv)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// TestInitWithHoldersRoot: init with root keys held elsewhere cannot sign
// root; the repository serves and publishes nothing until a threshold of
// holders signed the proposal, and a proposal below threshold (one key,
// or one key twice) is refused with nothing written.
func TestInitWithHoldersRoot(t *testing.T) {
	clk := newClock()
	holders := holderKeys(t, 3)
	base := t.TempDir()
	dir, offline := filepath.Join(base, "repo"), filepath.Join(base, "offline")
	opts := InitOptions{Passphrase: []byte(testPassphrase), OfflineKeys: offline, RootThreshold: 2, InsecureScryptWorkFactor: 8}
	for _, h := range holders {
		opts.RootPublic = append(opts.RootPublic, h.Key())
	}
	if err := initRepo(ctx, dir, opts, clk.now); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(RootFile(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("root.json exists before its holders signed: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(offline, "root-*")); len(m) > 0 {
		t.Fatalf("init generated root keys: %v", m)
	}
	r, err := OpenWith(dir, Options{Passphrase: Passphrase([]byte(testPassphrase)), OfflineKeys: offline, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Publish(ctx, hello("1.0.0"), []string{writeFile(t, "hello", "v1")}); !errors.Is(err, ErrRootUnsigned) {
		t.Fatalf("publish before root is signed: err = %v, want ErrRootUnsigned", err)
	}
	prop, err := ReadProposal(RootProposalFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	signed := func(signers ...keys.Signer) *Proposal {
		p, err := ReadProposal(RootProposalFile(dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range signers {
			if err := p.Sign(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	before := treeHashes(t, dir)
	for name, p := range map[string]*Proposal{
		"one key":       signed(holders[0]),
		"one key twice": signed(holders[0], holders[0]),
	} {
		if err := r.PublishProposal(ctx, p); !errors.Is(err, ErrBelowThreshold) {
			t.Errorf("%s: err = %v, want ErrBelowThreshold", name, err)
		}
		if d := diffTrees(before, treeHashes(t, dir)); len(d) > 0 {
			t.Fatalf("%s: refused root changed the tree: %v", name, d)
		}
	}
	// Another root than the proposal, even well signed, is refused.
	md, _ := metadata.Root().FromBytes(envelope(prop.Signed, nil))
	md.Signed.Roles[metadata.ROOT].Threshold = 1
	other, err := newProposal(metadata.ROOT, nil, 0, &md.Signed, prop.Requires)
	if err != nil {
		t.Fatal(err)
	}
	other.Sign(ctx, holders[0])
	other.Sign(ctx, holders[1])
	if err := r.PublishProposal(ctx, other); err == nil || !strings.Contains(err.Error(), "is not the proposal") {
		t.Errorf("another root than the proposal: err = %v", err)
	}
	if err := r.PublishProposal(ctx, signed(holders[0], holders[2])); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(RootProposalFile(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("proposal left after publishing: %v", err)
	}
	if err := r.Publish(ctx, hello("1.0.0"), []string{writeFile(t, "hello", "v1")}); err != nil {
		t.Fatal(err)
	}
	verifyServed(t, dir, clk.t)
}
