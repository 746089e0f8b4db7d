package repo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/trust"
)

// newSigner makes a key held outside the repository, as a holder would.
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

func keyID(t *testing.T, s keys.Signer) string {
	t.Helper()
	id, err := s.Key().ID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func rootBytes(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustRefuse checks that publishing p fails with a threshold error naming
// missing, and that the repository is unchanged.
func mustRefuse(t *testing.T, r *Repo, p *Proposal, missing ...string) {
	t.Helper()
	before := treeHashes(t, r.dir)
	err := r.PublishProposal(ctx, p)
	var te *ThresholdError
	if !errors.As(err, &te) || !errors.Is(err, ErrBelowThreshold) {
		t.Fatalf("publish = %v, want a *ThresholdError", err)
	}
	var got []string
	for _, tl := range te.Tallies {
		got = append(got, tl.Missing...)
	}
	for _, id := range missing {
		if !slices.Contains(got, id) {
			t.Errorf("error does not name missing key %s: %v", id, err)
		}
	}
	if d := diffTrees(before, treeHashes(t, r.dir)); len(d) > 0 {
		t.Fatalf("a refused publish changed the repository: %v", d)
	}
}

// TestCeremonyBelowThreshold_R2: a root change of a 2-of-3 root with one
// signature is refused at publish, naming the keys that did not sign; the
// same root file handed to a client is refused too; with two it publishes
// and verifies as a client checks it.
func TestCeremonyBelowThreshold_R2(t *testing.T) {
	r := newTestRepo(t, InitOptions{RootKeys: 3, RootThreshold: 2}, newClock())
	old := rootBytes(t, r.dir)
	p, err := r.ProposeRoot(ctx, RootChange{})
	if err != nil {
		t.Fatal(err)
	}
	k1, k2, k3 := rootSigner(t, r, 1), rootSigner(t, r, 2), rootSigner(t, r, 3)
	if err := p.Sign(ctx, k1); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, r, p, keyID(t, k2), keyID(t, k3))
	if err := trust.VerifyNextRoot(old, p.Metadata()); !errors.Is(err, trust.ErrBadSignature) {
		t.Fatalf("client check of the 1-of-2 root = %v, want ErrBadSignature", err)
	}
	if err := p.Sign(ctx, k3); err != nil {
		t.Fatal(err)
	}
	if err := r.PublishProposal(ctx, p); err != nil {
		t.Fatal(err)
	}
	now := rootBytes(t, r.dir)
	if err := trust.VerifyNextRoot(old, now); err != nil {
		t.Fatalf("published root does not verify as clients check it: %v", err)
	}
	verifyServed(t, r.dir, r.now())
	if err := r.PublishProposal(ctx, p); err != nil {
		t.Fatalf("publishing the same proposal again: %v", err)
	}
}

// TestCeremonyDuplicateSignature_R3: the same key signing twice counts once.
func TestCeremonyDuplicateSignature_R3(t *testing.T) {
	r := newTestRepo(t, InitOptions{RootKeys: 2, RootThreshold: 2}, newClock())
	p, err := r.ProposeRoot(ctx, RootChange{})
	if err != nil {
		t.Fatal(err)
	}
	k1 := rootSigner(t, r, 1)
	if err := p.Sign(ctx, k1); err != nil {
		t.Fatal(err)
	}
	p.Signatures = append(p.Signatures, p.Signatures[0]) // as a hand-edited file would
	mustRefuse(t, r, p, keyID(t, rootSigner(t, r, 2)))
}

// TestCeremonyBadThenGoodSignature_R3: a key ID that carries a bad
// signature and then a good one counts once, and the published root keeps
// the good one.
func TestCeremonyBadThenGoodSignature_R3(t *testing.T) {
	r := newTestRepo(t, InitOptions{RootKeys: 1}, newClock())
	old := rootBytes(t, r.dir)
	p, err := r.ProposeRoot(ctx, RootChange{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Sign(ctx, rootSigner(t, r, 1)); err != nil {
		t.Fatal(err)
	}
	bad := p.Signatures[0]
	bad.Signature = append([]byte(nil), bad.Signature...)
	bad.Signature[0] ^= 1
	p.Signatures = append([]metadata.Signature{bad}, p.Signatures...)
	if err := r.PublishProposal(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := trust.VerifyNextRoot(old, rootBytes(t, r.dir)); err != nil {
		t.Fatalf("published root: %v", err)
	}
}

// twin presents a key under a second key ID: the same public key with an
// extra member in its TUF form.
type twin struct {
	keys.Signer
	k *metadata.Key
}

func (s twin) Key() *metadata.Key { return s.k }

func newTwin(t *testing.T, s keys.Signer) twin {
	t.Helper()
	k := *s.Key()
	k.UnrecognizedFields = map[string]any{"x-twin": true}
	if a, b := keyID(t, s), keyID(t, twin{s, &k}); a == b {
		t.Fatal("twin has the same key id")
	}
	return twin{s, &k}
}

// TestCeremonyOneKeyTwoIDs_R4: a root key listed again under a second ID
// (threshold 2) and signing under both still counts once.
func TestCeremonyOneKeyTwoIDs_R4(t *testing.T) {
	r := newTestRepo(t, InitOptions{RootKeys: 1}, newClock())
	k1 := rootSigner(t, r, 1)
	tw := newTwin(t, k1)
	p, err := r.ProposeRoot(ctx, RootChange{AddKeys: []*metadata.Key{tw.Key()}, Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []keys.Signer{k1, tw} {
		if err := p.Sign(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if len(p.Signatures) != 2 {
		t.Fatalf("%d signatures, want 2 (one per key id)", len(p.Signatures))
	}
	mustRefuse(t, r, p)
	var te *ThresholdError
	errors.As(r.PublishProposal(ctx, p), &te)
	if n := len(te.Tallies[1].Signed); n != 1 {
		t.Fatalf("new root counts %d keys, want 1", n)
	}
}

// TestCeremonyOnlyOldOrOnlyNewKeys_R6: replacing root key A by B needs A
// (the current root's threshold) and B (the new root's): either alone is
// refused, at publish and by the client's check.
func TestCeremonyOnlyOldOrOnlyNewKeys_R6(t *testing.T) {
	r := newTestRepo(t, InitOptions{RootKeys: 1}, newClock())
	old := rootBytes(t, r.dir)
	a, b := rootSigner(t, r, 1), newSigner(t)
	change := RootChange{AddKeys: []*metadata.Key{b.Key()}, RemoveKeys: []string{keyID(t, a)}}
	for _, only := range []keys.Signer{a, b} {
		p, err := r.ProposeRoot(ctx, change)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Sign(ctx, only); err != nil {
			t.Fatal(err)
		}
		other := keyID(t, a)
		if only == a {
			other = keyID(t, b)
		}
		mustRefuse(t, r, p, other)
		if err := trust.VerifyNextRoot(old, p.Metadata()); !errors.Is(err, trust.ErrBadSignature) {
			t.Fatalf("client check = %v, want ErrBadSignature", err)
		}
	}
	p, _ := r.ProposeRoot(ctx, change)
	p.Sign(ctx, a)
	p.Sign(ctx, b)
	if err := r.PublishProposal(ctx, p); err != nil {
		t.Fatal(err)
	}
	verifyServed(t, r.dir, r.now())
}

// TestCeremonyVersionJump_R7: a proposal whose new root skips a version is
// refused by the parser and, built by hand, by publish.
func TestCeremonyVersionJump_R7(t *testing.T) {
	r := newTestRepo(t, InitOptions{RootKeys: 1}, newClock())
	p, err := r.ProposeRoot(ctx, RootChange{})
	if err != nil {
		t.Fatal(err)
	}
	md, _ := metadata.Root().FromBytes(p.Metadata())
	md.Signed.Version++ // 3 where 2 is next
	jump, err := newProposal(metadata.ROOT, nil, 2, &md.Signed, p.Requires)
	if err != nil {
		t.Fatal(err)
	}
	jump.Base = p.Base
	jump.Sign(ctx, rootSigner(t, r, 1))
	data, _ := jump.Marshal()
	if _, err := ParseProposal(data); !errors.Is(err, ErrBadProposal) {
		t.Fatalf("parse of a version jump = %v, want ErrBadProposal", err)
	}
	before := treeHashes(t, r.dir)
	if err := r.PublishProposal(ctx, jump); !errors.Is(err, trust.ErrInvalid) {
		t.Fatalf("publish of a version jump = %v, want the client's ErrInvalid", err)
	}
	if d := diffTrees(before, treeHashes(t, r.dir)); len(d) > 0 {
		t.Fatalf("changed: %v", d)
	}
}

// TestLeakedRootKey_R58: with one key of a 2-of-3 root, an attacker can
// neither publish a root (even one that makes the leaked key the only root
// key) nor get a forged next root past a client; the two honest holders
// then rotate the leaked key out, after which its signature is worthless.
func TestLeakedRootKey_R58(t *testing.T) {
	r := newTestRepo(t, InitOptions{RootKeys: 3, RootThreshold: 2}, newClock())
	old := rootBytes(t, r.dir)
	leaked, k2, k3 := rootSigner(t, r, 1), rootSigner(t, r, 2), rootSigner(t, r, 3)
	grab, err := r.ProposeRoot(ctx, RootChange{RemoveKeys: []string{keyID(t, k2), keyID(t, k3)}, Threshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	grab.Sign(ctx, leaked)
	mustRefuse(t, r, grab, keyID(t, k2), keyID(t, k3))
	if err := trust.VerifyNextRoot(old, grab.Metadata()); !errors.Is(err, trust.ErrBadSignature) {
		t.Fatalf("client check of the attacker's root = %v, want ErrBadSignature", err)
	}

	k4 := newSigner(t)
	rot, err := r.ProposeRoot(ctx, RootChange{AddKeys: []*metadata.Key{k4.Key()}, RemoveKeys: []string{keyID(t, leaked)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []keys.Signer{k2, k3} {
		if err := rot.Sign(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.PublishProposal(ctx, rot); err != nil {
		t.Fatal(err)
	}
	after, err := r.ProposeRoot(ctx, RootChange{Threshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := after.Sign(ctx, leaked); !errors.Is(err, ErrNotRequired) {
		t.Fatalf("signing with the rotated-out key = %v, want ErrNotRequired", err)
	}
	after.Signatures = append(after.Signatures, metadata.Signature{KeyID: keyID(t, leaked), Signature: mustSign(t, leaked, after.Signed)})
	mustRefuse(t, r, after)
}

func mustSign(t *testing.T, s keys.Signer, msg []byte) []byte {
	t.Helper()
	sig, err := s.Sign(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// TestCeremonyStale: a proposal made before another change is refused.
func TestCeremonyStale(t *testing.T) {
	clk := newClock()
	r := newTestRepo(t, InitOptions{RootKeys: 1}, clk)
	p1, _ := r.ProposeRoot(ctx, RootChange{})
	clk.t = clk.t.Add(time.Hour) // another expiry: another proposal
	p2, _ := r.ProposeRoot(ctx, RootChange{})
	k := rootSigner(t, r, 1)
	p1.Sign(ctx, k)
	p2.Sign(ctx, k)
	if err := r.PublishProposal(ctx, p1); err != nil {
		t.Fatal(err)
	}
	if err := r.PublishProposal(ctx, p2); !errors.Is(err, ErrStale) {
		t.Fatalf("publish of a stale proposal = %v, want ErrStale", err)
	}
}

// TestRootPublishInterrupted: a root publish (with a rotated timestamp key)
// that stops after any of its steps leaves a repository that loads, and
// publishing the same proposal again finishes it; the result verifies as
// clients check it.
func TestRootPublishInterrupted(t *testing.T) {
	for _, step := range []string{"root", "snapshot", "timestamp"} {
		t.Run(step, func(t *testing.T) {
			r := newTestRepo(t, InitOptions{RootKeys: 1}, newClock())
			if err := r.Publish(ctx, hello("1.0.0"), []string{writeFile(t, "hello", "v1")}); err != nil {
				t.Fatal(err)
			}
			old := rootBytes(t, r.dir)
			p, err := r.ProposeRoot(ctx, RootChange{Rotate: []string{"timestamp"}})
			if err != nil {
				t.Fatal(err)
			}
			p.Sign(ctx, rootSigner(t, r, 1))
			boom := errors.New("power cut")
			r.failpoint = func(s string) error {
				if s == step {
					return boom
				}
				return nil
			}
			if err := r.PublishProposal(ctx, p); !errors.Is(err, boom) {
				t.Fatalf("publish = %v, want the injected failure", err)
			}
			r.failpoint = nil
			if _, err := loadState(r.dir); err != nil {
				t.Fatalf("repository after a publish stopped at %s: %v", step, err)
			}
			if err := r.PublishProposal(ctx, p); err != nil {
				t.Fatalf("publishing again: %v", err)
			}
			if err := trust.VerifyNextRoot(old, rootBytes(t, r.dir)); err != nil {
				t.Fatalf("root.json after recovery: %v", err)
			}
			verifyServed(t, r.dir, r.now())
		})
	}
}
