package repo

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/rollout"
)

func signPolicyNext(t *testing.T, r *Repo, s keys.Signer, version string) *Signed {
	t.Helper()
	cur, err := r.AppRole(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	sg, err := SignPolicy(ctx, []keys.Signer{s}, "hello", cur, version, SignOptions{Now: r.now()})
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

// setCustom replaces the custom metadata of the target p of md, keeping
// its length and hashes those of the bytes (as a policy target's are).
func setCustom(md *targetsMD, p string, custom []byte) {
	sum := sha256.Sum256(custom)
	raw := json.RawMessage(custom)
	t := md.Signed.Targets[p]
	t.Custom, t.Length, t.Hashes = &raw, int64(len(custom)), metadata.Hashes{"sha256": sum[:]}
}

// TestSignPolicyUpload: a remote publisher signs the minimum safe version
// with the application key and the server publishes it through the upload
// path, with no file; a role that only re-signs it changes nothing.
func TestSignPolicyUpload(t *testing.T) {
	r, s, clk := remoteFixture(t)
	up := signNext(t, r, s, Release{App: "hello", Version: "1.1.0", Platform: "linux/amd64"}, writeFile(t, "hello", "v2"))
	if _, err := r.PublishUpload(ctx, "hello", up.Role, up.Files); err != nil {
		t.Fatal(err)
	}
	if _, err := SignPolicy(ctx, []keys.Signer{s}, "hello", mustAppRole(t, r), "2.0.0", SignOptions{}); err == nil || !strings.Contains(err.Error(), "2.0.0 is not a signed release of hello") {
		t.Errorf("a policy naming no release: err = %v", err)
	}
	sg := signPolicyNext(t, r, s, "1.1.0")
	u, err := r.CheckUpload(ctx, "hello", sg.Role)
	if err != nil || u.MinVersion != "1.1.0" || len(u.New) != 0 {
		t.Fatalf("CheckUpload = %+v, %v", u, err)
	}
	if _, err := r.PublishUpload(ctx, "hello", sg.Role, nil); err != nil {
		t.Fatal(err)
	}
	if min, err := r.MinVersion("hello"); err != nil || min != "1.1.0" {
		t.Errorf("MinVersion = %q, %v", min, err)
	}
	verifyServed(t, r.dir, clk.t)
	if again, err := SignPolicy(ctx, []keys.Signer{s}, "hello", mustAppRole(t, r), "1.1.0", SignOptions{}); again != nil || err != nil {
		t.Errorf("the same policy again: %+v, %v; want nothing to upload", again, err)
	}
	// The next release keeps the policy, and lowering it is the
	// application key's to do.
	next := signNext(t, r, s, Release{App: "hello", Version: "1.2.0", Platform: "linux/amd64"}, writeFile(t, "hello", "v3"))
	if _, err := r.PublishUpload(ctx, "hello", next.Role, next.Files); err != nil {
		t.Fatal(err)
	}
	if min, _ := r.MinVersion("hello"); min != "1.1.0" {
		t.Errorf("after a release the minimum is %q", min)
	}
	if _, err := SignPolicy(ctx, []keys.Signer{s}, "hello", mustAppRole(t, r), "1.0.0", SignOptions{}); !errors.Is(err, ErrLowerMin) {
		t.Fatalf("a lower minimum without LowerMin: err = %v, want ErrLowerMin", err)
	}
	low, err := SignPolicy(ctx, []keys.Signer{s}, "hello", mustAppRole(t, r), "1.0.0", SignOptions{Now: r.now(), LowerMin: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.PublishUpload(ctx, "hello", low.Role, nil); err != nil {
		t.Fatal(err)
	}
	if min, _ := r.MinVersion("hello"); min != "1.0.0" {
		t.Errorf("lowered minimum is %q", min)
	}
	verifyServed(t, r.dir, clk.t)
}

func mustAppRole(t *testing.T, r *Repo) []byte {
	t.Helper()
	b, err := r.AppRole(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPolicyUploadRefused: the upload path takes a policy target only as
// SignPolicy makes it, and nothing odd along with it.
func TestPolicyUploadRefused(t *testing.T) {
	r, s, _ := remoteFixture(t)
	good := signPolicyNext(t, r, s, "1.0.0")
	pp := rollout.PolicyPath("hello")
	policy := func(app, min string) []byte {
		b, err := json.Marshal(map[string]any{"ferry-policy": map[string]string{"app": app, "min_version": min}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	v1 := "hello/1.0.0/linux-amd64/hello"
	cases := []struct {
		name string
		role []byte
		want error
	}{
		{"hash not of the policy", resign(t, good.Role, s, func(md *targetsMD) {
			sum := sha256.Sum256([]byte("other"))
			md.Signed.Targets[pp].Hashes["sha256"] = sum[:]
		}), ErrRefused},
		{"length not of the policy", resign(t, good.Role, s, func(md *targetsMD) { md.Signed.Targets[pp].Length++ }), ErrRefused},
		{"minimum no release", resign(t, good.Role, s, func(md *targetsMD) { setCustom(md, pp, policy("hello", "9.9.9")) }), ErrRefused},
		{"another app's policy", resign(t, good.Role, s, func(md *targetsMD) { setCustom(md, pp, policy("world", "1.0.0")) }), ErrRefused},
		{"not a policy", resign(t, good.Role, s, func(md *targetsMD) { setCustom(md, pp, []byte(`{"ferry":{}}`)) }), ErrRefused},
		{"no custom", resign(t, good.Role, s, func(md *targetsMD) { md.Signed.Targets[pp].Custom = nil }), ErrRefused},
		{"another file beside it", resign(t, good.Role, s, func(md *targetsMD) {
			c := *md.Signed.Targets[pp]
			md.Signed.Targets["hello/_/_/other"] = &c
		}), ErrRefused},
		{"and a changed release", resign(t, good.Role, s, func(md *targetsMD) {
			sum := sha256.Sum256([]byte("evil"))
			md.Signed.Targets[v1].Hashes["sha256"] = sum[:]
		}), ErrImmutable},
	}
	before := treeHashes(t, r.dir)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := r.PublishUpload(ctx, "hello", c.role, nil); !errors.Is(err, c.want) {
				t.Fatalf("PublishUpload = %v, want %v", err, c.want)
			}
			if d := diffTrees(before, treeHashes(t, r.dir)); len(d) > 0 {
				t.Fatalf("a refused upload changed the repository: %v", d)
			}
		})
	}
	if _, err := r.PublishUpload(ctx, "hello", good.Role, nil); err != nil {
		t.Fatal(err)
	}
	// Once published, a policy is not removed.
	gone := resign(t, mustAppRole(t, r), s, func(md *targetsMD) {
		md.Signed.Version++
		delete(md.Signed.Targets, pp)
	})
	if _, err := r.PublishUpload(ctx, "hello", gone, nil); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "removes the minimum safe version") {
		t.Errorf("a role without the published policy: err = %v", err)
	}
}

// TestUploadWithRollout: the server records a decision with an uploaded
// release in the same commit; one needs exactly one new version.
func TestUploadWithRollout(t *testing.T) {
	r, s, clk := remoteFixture(t)
	before := timestampVersion(t, r.dir)
	up := signNext(t, r, s, Release{App: "hello", Version: "1.1.0", Platform: "linux/amd64"}, writeFile(t, "hello", "v2"))
	e := &rollout.Entry{Channel: "beta", BasisPoints: 2500, State: rollout.Active}
	if _, err := r.PublishUploadWith(ctx, "hello", up.Role, up.Files, UploadOptions{Rollout: e}); err != nil {
		t.Fatal(err)
	}
	if v := timestampVersion(t, r.dir); v != before+1 {
		t.Errorf("timestamp version %d, want %d", v, before+1)
	}
	tc := newTUFClient(t, r.dir, clk)
	if got := tc.doc("hello").Releases["1.1.0"]; got.Channel != "beta" || got.BasisPoints != 2500 || len(got.Salt) != 32 {
		t.Errorf("the client trusts %+v", got)
	}
	if e.Salt != "" {
		t.Error("the caller's entry was changed")
	}
	pol := signPolicyNext(t, r, s, "1.1.0")
	if _, err := r.PublishUploadWith(ctx, "hello", pol.Role, nil, UploadOptions{Rollout: e}); err == nil || !strings.Contains(err.Error(), "one new version") {
		t.Errorf("a decision with an upload of no release: err = %v", err)
	}
	verifyServed(t, r.dir, clk.t)
}

// TestManifests_R48: every published file carries the manifest of its
// release; publishing it again is a no-op; a release published before
// manifests stays as it is and is still recognized; an upload whose files'
// manifests disagree is refused.
func TestManifests_R48(t *testing.T) {
	r, s, _ := remoteFixture(t)
	a, b := writeFile(t, "hello", "binary"), writeFile(t, "hello.sig", "signature")
	rel := Release{App: "hello", Version: "2.0.0", Platform: "linux/amd64"}
	if err := r.Publish(ctx, rel, []string{a, b}); err != nil {
		t.Fatal(err)
	}
	st, err := loadState(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	sigs := map[string]release.FileSig{}
	for _, name := range []string{"hello", "hello.sig"} {
		tf := st.apps["hello"].Signed.Targets["hello/2.0.0/linux-amd64/"+name]
		c, err := signedCustom(tf)
		if err != nil || len(c.Files) != 2 {
			t.Fatalf("%s: custom %+v, %v; want a manifest of both files", name, c, err)
		}
		e, _ := entryOf("hello/2.0.0/linux-amd64/"+name, tf)
		sigs[name] = release.FileSig{SHA256: e.SHA256, Files: c.Files}
	}
	if err := release.CheckManifest(sigs); err != nil {
		t.Errorf("the published manifests: %v", err)
	}
	res, err := r.PublishBatch(ctx, []Batch{{rel, []string{a, b}}})
	if err != nil || len(res.Unchanged) != 1 {
		t.Errorf("publishing the same release again: %+v, %v", res, err)
	}
	// hello 1.0.0 as published before manifests.
	md := st.apps["hello"]
	v1 := "hello/1.0.0/linux-amd64/hello"
	old, _ := release.Custom{App: "hello", Version: "1.0.0", Platform: "linux/amd64", Kind: "binary"}.Marshal()
	raw := json.RawMessage(old)
	md.Signed.Targets[v1].Custom = &raw
	if err := r.commit(ctx, st, change{apps: []string{"hello"}}); err != nil {
		t.Fatal(err)
	}
	res, err = r.PublishBatch(ctx, []Batch{{helloRel, []string{writeFile(t, "hello", "v1")}}})
	if err != nil || len(res.Unchanged) != 1 {
		t.Errorf("a release of before manifests published again: %+v, %v", res, err)
	}
	if err := r.Publish(ctx, helloRel, []string{writeFile(t, "hello", "other")}); !errors.Is(err, ErrImmutable) {
		t.Errorf("other bytes for a release of before manifests: err = %v", err)
	}
	// An upload whose two files' manifests name different releases.
	up := signNext(t, r, s, Release{App: "hello", Version: "3.0.0", Platform: "linux/amd64"}, writeFile(t, "hello", "3"), writeFile(t, "hello.sig", "3 sig"))
	mixed := resign(t, up.Role, s, func(md *targetsMD) {
		tf := md.Signed.Targets["hello/3.0.0/linux-amd64/hello.sig"]
		c, _ := signedCustom(tf)
		c.Files["hello"] = strings.Repeat("0", 64)
		b, _ := c.Marshal()
		raw := json.RawMessage(b)
		tf.Custom = &raw
	})
	if _, err := r.PublishUpload(ctx, "hello", mixed, up.Files); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "manifest") {
		t.Errorf("an upload with mixed manifests: err = %v", err)
	}
	if _, err := r.PublishUpload(ctx, "hello", up.Role, up.Files); err != nil {
		t.Errorf("the upload as signed: %v", err)
	}
}
