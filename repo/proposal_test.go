package repo

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/keys"
)

// rootSigner opens root key i of a test repository.
func rootSigner(t *testing.T, r *Repo, i int) keys.Signer {
	t.Helper()
	s, err := keys.Open(ctx, filepath.Join(r.dir, "keys", rootKeyName(i)), r.opts.Passphrase)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sampleProposal is a root proposal of a 2-of-3 repository signed by one key.
func sampleProposal(t *testing.T) (*Repo, *Proposal) {
	t.Helper()
	r := newTestRepo(t, InitOptions{RootKeys: 3, RootThreshold: 2}, newClock())
	p, err := r.ProposeRoot(ctx, RootChange{Threshold: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Sign(ctx, rootSigner(t, r, 1)); err != nil {
		t.Fatal(err)
	}
	return r, p
}

// TestProposalRoundTrip: Marshal then ParseProposal gives the same
// proposal and the same bytes, and the signed part is kept byte for byte.
func TestProposalRoundTrip(t *testing.T) {
	_, p := sampleProposal(t)
	data, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, p.Signed) {
		t.Fatal("the file does not hold the canonical signed part as it is")
	}
	q, err := ParseProposal(data)
	if err != nil {
		t.Fatalf("ParseProposal(Marshal()): %v\n%s", err, data)
	}
	again, err := q.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, again) {
		t.Fatalf("round trip changed the file:\n%s\n---\n%s", data, again)
	}
	if !bytes.Equal(q.Metadata(), p.Metadata()) {
		t.Fatal("round trip changed the metadata the proposal stands for")
	}
}

// TestProposalStrict: every departure from the format is refused with
// ErrBadProposal.
func TestProposalStrict(t *testing.T) {
	_, p := sampleProposal(t)
	good, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s := string(good)
	cases := map[string]string{
		"format 2":             strings.Replace(s, `"ferry_proposal": 1`, `"ferry_proposal": 2`, 1),
		"unknown member":       strings.Replace(s, `"role": "root"`, `"role": "root", "extra": 1`, 1),
		"duplicate member":     strings.Replace(s, `"role": "root"`, `"role": "root", "role": "targets"`, 1),
		"wrong role":           strings.Replace(s, `"role": "root"`, `"role": "snapshot"`, 1),
		"trailing data":        s + "{}",
		"non-canonical signed": strings.Replace(s, `"signed": {"_type"`, `"signed": { "_type"`, 1),
		"version jump":         strings.Replace(s, `"version":2`, `"version":3`, 1),
		"bad base hash":        strings.Replace(s, p.Base.SHA256, strings.ToUpper(p.Base.SHA256), 1),
		"bad signature hex":    strings.Replace(s, `"sig": "`, `"sig": "zz`, 1),
		"too large":            s + strings.Repeat(" ", MaxProposalSize),
		"threshold 0":          strings.Replace(s, `"threshold": 2`, `"threshold": 0`, 1),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if in == s {
				t.Fatal("the mutation did not apply")
			}
			if _, err := ParseProposal([]byte(in)); !errors.Is(err, ErrBadProposal) {
				t.Fatalf("ParseProposal = %v, want ErrBadProposal", err)
			}
		})
	}
}

// TestSignInPlace: signing twice with one key leaves one signature, and a
// key the proposal does not need is refused.
func TestSignInPlace(t *testing.T) {
	r, p := sampleProposal(t)
	if err := p.Sign(ctx, rootSigner(t, r, 1)); err != nil {
		t.Fatal(err)
	}
	if len(p.Signatures) != 1 {
		t.Fatalf("%d signatures after signing twice with one key, want 1", len(p.Signatures))
	}
	priv, _ := keys.Generate()
	stranger, _ := keys.NewFileSigner(priv)
	if err := p.Sign(ctx, stranger); !errors.Is(err, ErrNotRequired) {
		t.Fatalf("sign with a stranger's key = %v, want ErrNotRequired", err)
	}
	path := filepath.Join(t.TempDir(), "p.json")
	if err := WriteProposal(path, p); err != nil {
		t.Fatal(err)
	}
	q, err := ReadProposal(path)
	if err != nil || len(q.Signatures) != 1 {
		t.Fatalf("ReadProposal: %v, %d signatures", err, len(q.Signatures))
	}
}

// FuzzParseProposal: arbitrary bytes never panic, and whatever parses
// marshals back to a file that parses to the same bytes.
func FuzzParseProposal(f *testing.F) {
	clk := newClock()
	dir := filepath.Join(f.TempDir(), "repo")
	if err := initRepo(ctx, dir, InitOptions{RootKeys: 2, Passphrase: []byte(testPassphrase), InsecureScryptWorkFactor: 8}, clk.now); err != nil {
		f.Fatal(err)
	}
	r, err := Open(dir, []byte(testPassphrase))
	if err != nil {
		f.Fatal(err)
	}
	p, err := r.ProposeRoot(ctx, RootChange{})
	if err != nil {
		f.Fatal(err)
	}
	s, err := keys.Open(ctx, filepath.Join(dir, "keys", rootKeyName(1)), func(string) ([]byte, error) { return []byte(testPassphrase), nil })
	if err != nil {
		f.Fatal(err)
	}
	if err := p.Sign(ctx, s); err != nil {
		f.Fatal(err)
	}
	good, _ := p.Marshal()
	f.Add(good)
	f.Add([]byte(`{"ferry_proposal":1}`))
	f.Add([]byte(`{"ferry_proposal":1,"ferry_proposal":1}`))
	if seeds, _ := filepath.Glob("testdata/proposal/*"); len(seeds) > 0 {
		for _, sd := range seeds {
			if b, err := os.ReadFile(sd); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProposal(data)
		if err != nil {
			return
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed proposal: %v", err)
		}
		q, err := ParseProposal(out)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		again, _ := q.Marshal()
		if !bytes.Equal(out, again) {
			t.Fatal("marshal is not stable")
		}
	})
}
