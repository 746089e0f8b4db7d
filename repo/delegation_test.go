package repo

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/rollout"
)

// TestProposalWidensDelegation_R61 (review8 F1): whoever prepares a
// targets proposal (the server, R57) edits its signed part so that the
// online rollout role, or an application's role, is trusted for more than
// its own paths, or is no longer terminating. The holder's tool must refuse
// to parse or sign it, publish must refuse it even when signed, and the
// summary a holder reads must show every delegation's paths.
func TestProposalWidensDelegation_R61(t *testing.T) {
	clk := newClock()
	r, offline := newSplitRepo(t, clk)
	if err := r.Publish(ctx, hello("1.0.0"), []string{writeFile(t, "hello", "v1")}); err != nil {
		t.Fatal(err)
	}
	honest, err := r.ProposeTargets(ctx, TargetsChange{App: "hello", Threshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	sum := strings.Join(honest.Summary(), "\n")
	for _, want := range []string{"paths [" + rollout.PathPattern + "], terminating", "paths [hello/*/*/*], terminating"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary does not show %q:\n%s", want, sum)
		}
	}
	priv, err := keys.Load(offline+"/targets.age", []byte(testPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := keys.NewFileSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	server, err := OpenWith(r.dir, Options{Passphrase: Passphrase([]byte(testPassphrase)), Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	edits := map[string]func(d *metadata.DelegatedRole){
		"rollout widened":         func(d *metadata.DelegatedRole) { d.Paths = append(d.Paths, "hello/*/*/*") },
		"rollout not terminating": func(d *metadata.DelegatedRole) { d.Terminating = false },
		"rollout hash prefixes":   func(d *metadata.DelegatedRole) { d.Paths, d.PathHashPrefixes = nil, []string{"00"} },
		"app widened":             func(d *metadata.DelegatedRole) { d.Paths = []string{"*/*/*/*"} },
		"app not terminating":     func(d *metadata.DelegatedRole) { d.Terminating = false },
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			role := "hello"
			if strings.HasPrefix(name, "rollout") {
				role = rollout.RoleName
			}
			evil := tamperedProposal(t, honest, role, edit)
			b, err := evil.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ParseProposal(b); !errors.Is(err, ErrBadDelegation) {
				t.Errorf("ParseProposal: err = %v, want ErrBadDelegation", err)
			}
			if err := evil.Sign(context.Background(), ts); !errors.Is(err, ErrBadDelegation) {
				t.Errorf("Sign: err = %v, want ErrBadDelegation", err)
			}
			// A signature obtained some other way: publish still refuses.
			sig, err := ts.Sign(context.Background(), evil.Signed)
			if err != nil {
				t.Fatal(err)
			}
			id, _ := ts.Key().ID()
			evil.Signatures = []metadata.Signature{{KeyID: id, Signature: sig}}
			if err := server.PublishProposal(ctx, evil); !errors.Is(err, ErrBadDelegation) {
				t.Errorf("PublishProposal: err = %v, want ErrBadDelegation", err)
			}
			if s := strings.Join(evil.Summary(), "\n"); s == sum {
				t.Errorf("the summary of the edited proposal reads like the honest one:\n%s", s)
			}
		})
	}
	st, err := loadState(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	if d := delegationOf(st.targets, rollout.RoleName); len(d.Paths) != 1 || !d.Terminating {
		t.Errorf("published rollout delegation %v, terminating %v", d.Paths, d.Terminating)
	}
	if err := server.PublishProposal(ctx, signedCopy(t, honest, ts)); err != nil {
		t.Errorf("the honest proposal: %v", err)
	}
}

// tamperedProposal returns a copy of p whose signed part has role's
// delegation edited.
func tamperedProposal(t *testing.T, p *Proposal, role string, edit func(*metadata.DelegatedRole)) *Proposal {
	t.Helper()
	md, err := metadata.Targets().FromBytes(envelopeText(p.Signed, nil))
	if err != nil {
		t.Fatal(err)
	}
	for i := range md.Signed.Delegations.Roles {
		if d := &md.Signed.Delegations.Roles[i]; d.Name == role {
			edit(d)
		}
	}
	canon, err := cjson.EncodeCanonical(md.Signed)
	if err != nil {
		t.Fatal(err)
	}
	evil := *p
	evil.Signed = canon
	evil.Signatures = nil
	return &evil
}

func signedCopy(t *testing.T, p *Proposal, s keys.Signer) *Proposal {
	t.Helper()
	c := *p
	if err := c.Sign(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return &c
}
