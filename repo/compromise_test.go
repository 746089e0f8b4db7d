package repo_test

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/repo"
)

// thiefKey is a new key no one but the test holds.
func thiefKey(t *testing.T) keys.Signer {
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

// signRole signs md with exactly ss and returns its bytes.
func signRole[T metadata.Roles](t *testing.T, md *metadata.Metadata[T], ss ...keys.Signer) []byte {
	t.Helper()
	md.ClearSignatures()
	for _, s := range ss {
		if _, err := md.Sign(keys.TUFSigner(bg, s)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := md.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A thief of hello's key (and a publisher token) uploads hello's role at a
// version far above the next one, up to math.MaxInt64, which would leave no
// version for the owner's revocation or the next release. The upload is
// refused with a reason naming the version expected; the owner's revocation
// and the next release go through and a client follows them.
func TestUploadVersionJumpRefused_R53(t *testing.T) {
	l := newLive(t, 1)
	l.publish("hello", "1.0.0")
	c := l.client("hello", nil)
	mustOffer(t, c, "1.0.0")
	stolen := l.signer(filepath.Join("apps", "hello.age"))
	cur, err := l.rp.AppRole(bg, "hello")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []int64{math.MaxInt64, 3} {
		md, err := metadata.Targets().FromBytes(cur)
		if err != nil {
			t.Fatal(err)
		}
		md.Signed.Version = v
		_, err = l.rp.PublishUpload(bg, "hello", signRole(t, md, stolen), nil)
		if !errors.Is(err, repo.ErrRefused) || !strings.Contains(err.Error(), "the next must be 2") {
			t.Fatalf("upload of hello at version %d: %v, want refused naming version 2", v, err)
		}
	}
	p, err := l.rp.ProposeTargets(bg, repo.TargetsChange{App: "hello", Rotate: true})
	if err != nil {
		t.Fatal(err)
	}
	l.ceremony(p, "targets.age")
	l.publish("hello", "1.1.0")
	mustOffer(t, c, "1.1.0")
	mustOffer(t, l.client("hello", nil), "1.1.0")
}
