package repo

import (
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/keys"
)

var helloRel = Release{App: "hello", Version: "1.0.0", Platform: "linux/amd64"}

// remoteFixture is a repository with hello 1.0.0 published locally, and
// hello's key as the application's pipeline would hold it.
func remoteFixture(t *testing.T) (*Repo, keys.Signer, *testClock) {
	t.Helper()
	clk := newClock()
	r := newTestRepo(t, InitOptions{}, clk)
	if err := r.Publish(context.Background(), helloRel, []string{writeFile(t, "hello", "v1")}); err != nil {
		t.Fatal(err)
	}
	priv, err := keys.Load(filepath.Join(r.dir, "keys", keyName("hello")), []byte(testPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	s, err := keys.NewFileSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return r, s, clk
}

func signNext(t *testing.T, r *Repo, s keys.Signer, rel Release, files ...string) *Signed {
	t.Helper()
	ctx := context.Background()
	cur, err := r.AppRole(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	sg, err := SignRelease(ctx, []keys.Signer{s}, cur, Batch{Release: rel, Files: files}, SignOptions{Now: r.now()})
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

// resign edits a signed role and signs it again with s.
func resign(t *testing.T, raw []byte, s keys.Signer, edit func(*targetsMD)) []byte {
	t.Helper()
	md, err := metadata.Targets().FromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	edit(md)
	out, err := signBytes(md, keys.TUFSigner(context.Background(), s))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPublishUploadRoundTrip(t *testing.T) {
	r, s, clk := remoteFixture(t)
	ctx := context.Background()
	rel := helloRel
	rel.Version = "1.1.0"
	f := writeFile(t, "hello", "v2")
	sg := signNext(t, r, s, rel, f)
	if len(sg.New) != 1 || sg.New[0].Path != "hello/1.1.0/linux-amd64/hello" || sg.Files[0] != f {
		t.Fatalf("SignRelease = %+v", sg)
	}
	if _, err := r.CheckUpload(ctx, "hello", sg.Role); err != nil {
		t.Fatal(err)
	}
	res, err := r.PublishUpload(ctx, "hello", sg.Role, sg.Files)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Published) != 1 {
		t.Fatalf("published %+v", res.Published)
	}
	s2 := verifyServed(t, r.dir, clk.t)
	for _, p := range []string{"hello/1.0.0/linux-amd64/hello", "hello/1.1.0/linux-amd64/hello"} {
		if s2.targets[p] == nil {
			t.Errorf("%s is not served", p)
		}
	}
	// The role is served byte for byte as uploaded.
	cur, err := r.AppRole(ctx, "hello")
	if err != nil || string(cur) != string(sg.Role) {
		t.Fatalf("served role differs from the uploaded one (%v)", err)
	}
	// The same release again: nothing to sign.
	if again := signNext(t, r, s, rel, f); again != nil {
		t.Fatalf("identical release signed again: %+v", again)
	}
}

// TestUploadRefused_R53 uploads roles that the delegation does not allow;
// each is refused and the repository is left byte for byte as it was.
func TestUploadRefused_R53(t *testing.T) {
	r, s, _ := remoteFixture(t)
	ctx := context.Background()
	rel := helloRel
	rel.Version = "1.1.0"
	v2 := writeFile(t, "hello", "v2")
	good := signNext(t, r, s, rel, v2)
	wrongPriv, _ := keys.Generate()
	wrong, _ := keys.NewFileSigner(wrongPriv)
	other := signNext(t, r, s, Release{App: "other", Version: "1.0.0", Platform: "linux/amd64"}, writeFile(t, "other", "x"))
	v1 := "hello/1.0.0/linux-amd64/hello"
	cases := []struct {
		name  string
		role  []byte
		files []string
		want  error
	}{
		{"wrong app key", resign(t, good.Role, wrong, func(*targetsMD) {}), good.Files, ErrRefused},
		{"unsigned", resign(t, good.Role, wrong, func(md *targetsMD) { md.Signatures = nil }), good.Files, ErrRefused},
		{"path outside delegation", other.Role, other.Files, ErrRefused},
		{"changed published version", resign(t, good.Role, s, func(md *targetsMD) {
			sum := sha256.Sum256([]byte("evil"))
			md.Signed.Targets[v1].Hashes["sha256"] = sum[:]
		}), good.Files, ErrImmutable},
		{"removed published version", resign(t, good.Role, s, func(md *targetsMD) { delete(md.Signed.Targets, v1) }), good.Files, ErrImmutable},
		{"file added to published release", resign(t, good.Role, s, func(md *targetsMD) {
			t := *md.Signed.Targets[v1]
			md.Signed.Targets["hello/1.0.0/linux-amd64/extra"] = &t
		}), good.Files, ErrImmutable},
		{"same version", resign(t, good.Role, s, func(md *targetsMD) { md.Signed.Version-- }), good.Files, ErrStaleRole},
		{"expired", resign(t, good.Role, s, func(md *targetsMD) { md.Signed.Expires = r.now().Add(-1) }), good.Files, ErrRefused},
		{"file bytes differ", good.Role, []string{writeFile(t, "hello", "v3")}, ErrRefused},
		{"file missing", good.Role, nil, ErrRefused},
		{"extra file", good.Role, []string{v2, writeFile(t, "x", "extra")}, ErrRefused},
		{"garbage", []byte("{"), good.Files, ErrRefused},
	}
	before := treeHashes(t, r.dir)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := r.PublishUpload(ctx, "hello", c.role, c.files)
			if !errors.Is(err, c.want) {
				t.Fatalf("PublishUpload = %v, want %v", err, c.want)
			}
			if d := diffTrees(before, treeHashes(t, r.dir)); len(d) > 0 {
				t.Fatalf("a refused upload changed the repository: %v", d)
			}
		})
	}
	if _, err := r.PublishUpload(ctx, "nope", good.Role, good.Files); !errors.Is(err, ErrNoDelegation) {
		t.Fatalf("upload for an undelegated app = %v, want ErrNoDelegation", err)
	}
	// The good one still goes through after all that.
	if _, err := r.PublishUpload(ctx, "hello", good.Role, good.Files); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PublishUpload(ctx, "hello", good.Role, good.Files); !errors.Is(err, ErrStaleRole) {
		t.Fatalf("replayed upload = %v, want ErrStaleRole", err)
	}
}

// TestSignReleaseRefusesForeignRole: a server that hands the publisher a
// role its key never signed cannot get targets signed through it.
func TestSignReleaseRefusesForeignRole(t *testing.T) {
	r, s, _ := remoteFixture(t)
	cur, err := r.AppRole(context.Background(), "hello")
	if err != nil {
		t.Fatal(err)
	}
	wrongPriv, _ := keys.Generate()
	wrong, _ := keys.NewFileSigner(wrongPriv)
	planted := resign(t, cur, wrong, func(md *targetsMD) {
		t := *md.Signed.Targets["hello/1.0.0/linux-amd64/hello"]
		md.Signed.Targets["hello/6.6.6/linux-amd64/hello"] = &t
	})
	rel := helloRel
	rel.Version = "1.1.0"
	_, err = SignRelease(context.Background(), []keys.Signer{s}, planted, Batch{Release: rel, Files: []string{writeFile(t, "hello", "v2")}}, SignOptions{})
	if err == nil {
		t.Fatal("signed on top of a role the key never signed")
	}
	// A changed version is refused on the publisher's side too.
	_, err = SignRelease(context.Background(), []keys.Signer{s}, cur, Batch{Release: helloRel, Files: []string{writeFile(t, "hello", "other")}}, SignOptions{})
	if !errors.Is(err, ErrImmutable) {
		t.Fatalf("SignRelease of a changed version = %v, want ErrImmutable", err)
	}
}

// TestPublishUploadFailpoints: an upload that fails after any step leaves
// what is served byte for byte as it was, and the same upload then goes
// through from a fresh Repo (as after a crash).
func TestPublishUploadFailpoints(t *testing.T) {
	for _, step := range []string{"target-files", "app-roles", "snapshot"} {
		t.Run(step, func(t *testing.T) {
			r, s, clk := remoteFixture(t)
			rel := helloRel
			rel.Version = "1.1.0"
			sg := signNext(t, r, s, rel, writeFile(t, "hello", "v2"))
			before := verifyServed(t, r.dir, clk.t)
			r.failpoint = func(s string) error {
				if s == step {
					return errInjected
				}
				return nil
			}
			_, err := r.PublishUpload(context.Background(), "hello", sg.Role, sg.Files)
			if !errors.Is(err, errInjected) {
				t.Fatalf("PublishUpload = %v, want the injected failure at %s", err, step)
			}
			assertSameServed(t, before, verifyServed(t, r.dir, clk.t))
			r2, err := Open(r.dir, []byte(testPassphrase))
			if err != nil {
				t.Fatal(err)
			}
			r2.now = clk.now
			if _, err := r2.PublishUpload(context.Background(), "hello", sg.Role, sg.Files); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if after := verifyServed(t, r.dir, clk.t); len(after.targets) != len(before.targets)+1 {
				t.Fatalf("after retry: %d targets, want %d", len(after.targets), len(before.targets)+1)
			}
		})
	}
}

// TestUploadOutsideNarrowDelegation: a delegation narrower than APP/*/*/*
// (here hello/1.*/*/*) bounds what hello's key may upload: hello 2.0.0 is
// refused although it is a path of hello.
func TestUploadOutsideNarrowDelegation(t *testing.T) {
	r, s, _ := remoteFixture(t)
	ctx := context.Background()
	st, err := loadState(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	delegationOf(st.targets, "hello").Paths = []string{"hello/1.*/*/*"}
	if err := r.commit(ctx, st, change{targets: true}); err != nil {
		t.Fatal(err)
	}
	rel := helloRel
	rel.Version = "2.0.0"
	sg := signNext(t, r, s, rel, writeFile(t, "hello", "v2"))
	before := treeHashes(t, r.dir)
	_, err = r.PublishUpload(ctx, "hello", sg.Role, sg.Files)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "outside the delegation's paths hello/1.*/*/*") {
		t.Fatalf("PublishUpload of hello 2.0.0 = %v, want refused as outside the delegation", err)
	}
	if d := diffTrees(before, treeHashes(t, r.dir)); len(d) > 0 {
		t.Fatalf("a refused upload changed the repository: %v", d)
	}
	rel.Version = "1.1.0"
	sg = signNext(t, r, s, rel, writeFile(t, "hello", "v1.1"))
	if _, err := r.PublishUpload(ctx, "hello", sg.Role, sg.Files); err != nil {
		t.Fatalf("hello 1.1.0, inside the delegation: %v", err)
	}
}

// TestResignRoleRemotely: a role re-signed with the same targets and a
// later expiry is published without any file; its targets stay as they
// were.
func TestResignRoleRemotely(t *testing.T) {
	r, s, clk := remoteFixture(t)
	ctx := context.Background()
	cur, err := r.AppRole(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	before := verifyServed(t, r.dir, clk.t)
	clk.t = clk.t.Add(24 * time.Hour)
	sg, err := ResignRole(ctx, []keys.Signer{s}, "hello", cur, SignOptions{Now: clk.t})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.PublishUpload(ctx, "hello", sg.Role, nil)
	if err != nil || len(res.Published) != 0 {
		t.Fatalf("PublishUpload of a re-signed role = %+v, %v", res, err)
	}
	after := verifyServed(t, r.dir, clk.t)
	if len(after.targets) != len(before.targets) {
		t.Fatalf("targets %d, want %d", len(after.targets), len(before.targets))
	}
	old, _ := metadata.Targets().FromBytes(cur)
	now, err := r.AppRole(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	md, _ := metadata.Targets().FromBytes(now)
	if md.Signed.Version != old.Signed.Version+1 || !md.Signed.Expires.After(old.Signed.Expires) {
		t.Fatalf("role version %d expires %v; was %d, %v", md.Signed.Version, md.Signed.Expires, old.Signed.Version, old.Signed.Expires)
	}
	if _, err := ResignRole(ctx, []keys.Signer{s}, "hello", nil, SignOptions{}); err == nil {
		t.Fatal("ResignRole without a current role succeeded")
	}
}
