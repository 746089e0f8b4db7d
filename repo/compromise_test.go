package repo_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/repo"
)

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

// hello is 2-of-2, keys A and B both held by its pipeline. A thief has A and
// the server: the server answers the pipeline's GET role with a role adding
// 6.6.6 signed by A alone. The pipeline refuses to sign on top of it, with
// or without the targets role to check the threshold against; nothing is
// uploaded and a client never sees 6.6.6.
func TestSignReleaseRefusesPartlySignedRole_R53(t *testing.T) {
	l := newLive(t, 1)
	a, b := mallory(t), mallory(t)
	r, err := repo.OpenWith(l.dir, repo.Options{Passphrase: repo.Passphrase([]byte(pass)), AppKeys: []keys.Signer{a, b}, AppThreshold: 2, TrustedRoot: l.shipped})
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(src, []byte("hello 1.0.0"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := r.Publish(bg, repo.Release{App: "hello", Version: "1.0.0", Platform: "linux/amd64", Kind: "binary"}, []string{src}); err != nil {
		t.Fatal(err)
	}
	cur, err := r.AppRole(bg, "hello")
	if err != nil {
		t.Fatal(err)
	}
	md, err := metadata.Targets().FromBytes(cur)
	if err != nil {
		t.Fatal(err)
	}
	tf, err := metadata.TargetFile().FromBytes("hello/6.6.6/linux-amd64/hello", []byte("evil"), "sha256")
	if err != nil {
		t.Fatal(err)
	}
	custom := json.RawMessage(`{"ferry":{"app":"hello","version":"6.6.6","platform":"linux/amd64","kind":"binary"}}`)
	tf.Custom = &custom
	md.Signed.Targets[tf.Path] = tf
	md.Signed.Version++
	evil := signRole(t, md, a)
	batch := repo.Batch{Release: repo.Release{App: "hello", Version: "1.1.0", Platform: "linux/amd64", Kind: "binary"}, Files: []string{src}}
	for _, opts := range signForms(t, l.dir) {
		s, err := repo.SignRelease(bg, []keys.Signer{a, b}, evil, batch, opts)
		if err == nil || !strings.Contains(err.Error(), "refusing to sign on top of it") {
			t.Fatalf("SignRelease on a role signed by 1 of 2 keys (targets given: %v): signed %v, err %v", opts.Targets != nil, s != nil, err)
		}
	}
	// The genuine role still signs with either form.
	for _, opts := range signForms(t, l.dir) {
		if _, err := repo.SignRelease(bg, []keys.Signer{a, b}, cur, batch, opts); err != nil {
			t.Fatalf("SignRelease on the genuine role: %v", err)
		}
	}
	mustOffer(t, l.client("hello", nil), "1.0.0")
}

// signForms are the SignOptions a publisher may sign with: alone, and with
// the repository's newest targets role.
func signForms(t *testing.T, dir string) []repo.SignOptions {
	t.Helper()
	for n := 1; ; n++ {
		if _, err := os.Stat(filepath.Join(dir, "public", "metadata", fmt.Sprintf("%d.targets.json", n+1))); err != nil {
			b, err := os.ReadFile(filepath.Join(dir, "public", "metadata", fmt.Sprintf("%d.targets.json", n)))
			if err != nil {
				t.Fatal(err)
			}
			return []repo.SignOptions{{}, {Targets: b}}
		}
	}
}
