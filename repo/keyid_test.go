package repo_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/repo"
)

func mallory(t *testing.T) keys.Signer {
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

// swapKey puts thief's key material under the ID of the first key of role
// (root: a role root defines; targets: a delegated application) in p's
// signed part, as a stolen server editing a proposal after propose would.
func swapKey(t *testing.T, p *repo.Proposal, role string, thief keys.Signer) {
	t.Helper()
	var signed any
	if p.Role == metadata.ROOT {
		md, err := metadata.Root().FromBytes(p.Metadata())
		if err != nil {
			t.Fatal(err)
		}
		md.Signed.Keys[md.Signed.Roles[role].KeyIDs[0]] = thief.Key()
		signed = md.Signed
	} else {
		md, err := metadata.Targets().FromBytes(p.Metadata())
		if err != nil {
			t.Fatal(err)
		}
		d := md.Signed.Delegations
		for _, r := range d.Roles {
			if r.Name == role {
				d.Keys[r.KeyIDs[0]] = thief.Key()
			}
		}
		signed = md.Signed
	}
	canon, err := cjson.EncodeCanonical(signed)
	if err != nil {
		t.Fatal(err)
	}
	p.Signed = json.RawMessage(canon)
}

// R58: a proposal edited after propose to put another key under a real key
// ID (the summary holders read names IDs) is refused when it is read, when
// it is signed and when it is published.
func TestProposalSwappedKey_R58(t *testing.T) {
	l := newLive(t, 1)
	l.publish("hello", "1.0.0")
	cases := []struct {
		name string
		make func() (*repo.Proposal, error)
		role string
		key  string
	}{
		{"root", func() (*repo.Proposal, error) { return l.rp.ProposeRoot(bg, repo.RootChange{}) }, metadata.TARGETS, "root-1.age"},
		{"targets", func() (*repo.Proposal, error) {
			return l.rp.ProposeTargets(bg, repo.TargetsChange{App: "hello", Threshold: 1})
		}, "hello", "targets.age"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := c.make()
			if err != nil {
				t.Fatal(err)
			}
			swapKey(t, p, c.role, mallory(t))
			file := filepath.Join(t.TempDir(), "proposal.json")
			if err := repo.WriteProposal(file, p); err != nil {
				t.Fatal(err)
			}
			if _, err := repo.ReadProposal(file); !errors.Is(err, repo.ErrBadProposal) || !strings.Contains(err.Error(), "key id") {
				t.Fatalf("read an edited proposal: %v, want ErrBadProposal naming the key id", err)
			}
			if err := p.Sign(bg, l.signer(c.key)); err == nil {
				t.Fatal("signed a proposal whose key material was swapped under a real key id")
			}
			// Signed anyway (a holder's tool without the check): publish refuses.
			s := l.signer(c.key)
			sig, err := s.Sign(bg, p.Signed)
			if err != nil {
				t.Fatal(err)
			}
			id, _ := s.Key().ID()
			p.Signatures = append(p.Signatures, metadata.Signature{KeyID: id, Signature: sig})
			before, _ := os.ReadFile(filepath.Join(l.dir, "root.json"))
			if err := l.rp.PublishProposal(bg, p); !errors.Is(err, repo.ErrBadProposal) {
				t.Fatalf("publish of a proposal whose key material was swapped under a real key id: %v, want ErrBadProposal", err)
			}
			after, _ := os.ReadFile(filepath.Join(l.dir, "root.json"))
			if string(before) != string(after) {
				t.Fatal("a refused publish changed root.json")
			}
		})
	}
}
