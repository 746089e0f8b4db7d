package repo

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/rollout"
)

// policyBytes is the custom metadata of a policy, lowered from from when
// from is not "".
func policyBytes(t *testing.T, min, from string) []byte {
	t.Helper()
	b, err := rollout.Policy{App: "hello", MinVersion: min, LoweredFrom: from}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// uploadRelease signs the next release of hello on top of the published
// role and publishes it.
func uploadRelease(t *testing.T, r *Repo, s keys.Signer, version string) {
	t.Helper()
	sg := signNext(t, r, s, Release{App: "hello", Version: version, Platform: "linux/amd64"}, writeFile(t, "hello", version))
	if _, err := r.PublishUpload(ctx, "hello", sg.Role, sg.Files); err != nil {
		t.Fatal(err)
	}
}

func uploadPolicy(t *testing.T, r *Repo, s keys.Signer, min string) {
	t.Helper()
	if _, err := r.PublishUpload(ctx, "hello", signPolicyNext(t, r, s, min).Role, nil); err != nil {
		t.Fatal(err)
	}
}

// TestPipelineRefusesReplayedRole_R63 (review F0): a stolen server hands
// the pipeline an old role of hello, validly signed by hello's key, whose
// minimum safe version is lower than the one the pipeline signed since.
// With its record of the last role it signed (SignOptions.Last), the
// pipeline refuses to sign on top of it, whether it publishes a release,
// sets the minimum or re-signs; it also refuses another role of the
// recorded version, and a newer role whose minimum went down without
// being signed as lowered. Without a record it signs (what the record
// adds), and on the role it signed last it signs as before.
func TestPipelineRefusesReplayedRole_R63(t *testing.T) {
	r, s, _ := remoteFixture(t)
	uploadRelease(t, r, s, "1.1.0")
	uploadPolicy(t, r, s, "1.0.0")
	old := mustAppRole(t, r) // version 3, minimum 1.0.0
	uploadRelease(t, r, s, "1.2.0")
	uploadPolicy(t, r, s, "1.2.0")
	cur := mustAppRole(t, r) // version 5, minimum 1.2.0
	last, err := RecordOf("hello", cur)
	if err != nil {
		t.Fatal(err)
	}
	if last.RoleVersion != 5 || last.MinVersion != "1.2.0" {
		t.Fatalf("RecordOf = %+v, want version 5, minimum 1.2.0", last)
	}
	opts := SignOptions{Now: r.now(), Last: last}
	rel := Batch{Release: Release{App: "hello", Version: "1.3.0", Platform: "linux/amd64"}, Files: []string{writeFile(t, "hello", "1.3.0")}}
	signers := []keys.Signer{s}

	sameVersion := resign(t, cur, s, func(md *targetsMD) { setCustom(md, rollout.PolicyPath("hello"), policyBytes(t, "1.0.0", "")) })
	newerLowered := resign(t, cur, s, func(md *targetsMD) {
		md.Signed.Version++
		setCustom(md, rollout.PolicyPath("hello"), policyBytes(t, "1.1.0", ""))
	})
	for _, c := range []struct {
		name    string
		current []byte
		want    error
	}{
		{"an old role", old, ErrOlderRole},
		{"no role at all", nil, ErrOlderRole},
		{"another role of the recorded version", sameVersion, ErrOlderRole},
		{"a newer role whose minimum went down unmarked", newerLowered, ErrLowerMin},
	} {
		t.Run(c.name, func(t *testing.T) {
			if sg, err := SignRelease(ctx, signers, c.current, rel, opts); !errors.Is(err, c.want) {
				t.Errorf("SignRelease = %v, %v; want %v", sg != nil, err, c.want)
			}
			if sg, err := SignPolicy(ctx, signers, "hello", c.current, "1.2.0", opts); !errors.Is(err, c.want) && c.current != nil {
				t.Errorf("SignPolicy = %v, %v; want %v", sg != nil, err, c.want)
			}
			if sg, err := ResignRole(ctx, signers, "hello", c.current, opts); !errors.Is(err, c.want) && c.current != nil {
				t.Errorf("ResignRole = %v, %v; want %v", sg != nil, err, c.want)
			}
		})
	}
	// What the record adds: without it, the old role is signed on, with
	// its lower minimum.
	if sg, err := SignRelease(ctx, signers, old, rel, SignOptions{Now: r.now()}); err != nil || sg == nil {
		t.Fatalf("without a record: SignRelease = %v, %v", sg, err)
	}
	// A newer role that lowers the minimum as the application key meant
	// to (with the marker) is signed on.
	marked := resign(t, cur, s, func(md *targetsMD) {
		md.Signed.Version++
		setCustom(md, rollout.PolicyPath("hello"), policyBytes(t, "1.1.0", "1.2.0"))
	})
	if _, err := SignRelease(ctx, signers, marked, rel, opts); err != nil {
		t.Errorf("a newer role, lowered with its marker: %v", err)
	}
	sg, err := SignRelease(ctx, signers, cur, rel, opts)
	if err != nil {
		t.Fatalf("the recorded role itself: %v", err)
	}
	if _, err := r.PublishUpload(ctx, "hello", sg.Role, sg.Files); err != nil {
		t.Fatal(err)
	}
}

// TestUploadLowersMinRefused_R63: the server refuses an uploaded role whose
// minimum safe version is below the published one unless the policy signs
// that it lowers exactly that one (what ferry release min-version
// --lower-min signs), and a lowering marker that does not fit the
// published minimum. A refused upload changes nothing.
func TestUploadLowersMinRefused_R63(t *testing.T) {
	r, s, _ := remoteFixture(t)
	uploadRelease(t, r, s, "1.1.0")
	uploadRelease(t, r, s, "1.2.0")
	uploadPolicy(t, r, s, "1.1.0")
	cur := mustAppRole(t, r)
	pp := rollout.PolicyPath("hello")
	next := func(custom []byte) []byte {
		return resign(t, cur, s, func(md *targetsMD) {
			md.Signed.Version++
			setCustom(md, pp, custom)
		})
	}
	before := treeHashes(t, r.dir)
	for _, c := range []struct{ name, min, from string }{
		{"lowered without the marker", "1.0.0", ""},
		{"lowered from another minimum", "1.0.0", "1.2.0"},
		{"raised with a lowering marker", "1.2.0", "1.3.0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := r.PublishUpload(ctx, "hello", next(policyBytes(t, c.min, c.from)), nil)
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("PublishUpload = %v, want ErrRefused", err)
			}
			if d := diffTrees(before, treeHashes(t, r.dir)); len(d) > 0 {
				t.Fatalf("a refused upload changed the repository: %v", d)
			}
		})
	}
	if min, _ := r.MinVersion("hello"); min != "1.1.0" {
		t.Fatalf("minimum %q after refusals, want 1.1.0", min)
	}
	if _, err := r.PublishUpload(ctx, "hello", next(policyBytes(t, "1.0.0", "1.1.0")), nil); err != nil {
		t.Fatalf("a lowering marked as such: %v", err)
	}
	if min, _ := r.MinVersion("hello"); min != "1.0.0" {
		t.Errorf("minimum %q, want the lowered 1.0.0", min)
	}
	// The next release keeps the marked policy as it is.
	uploadRelease(t, r, s, "1.3.0")
	if min, _ := r.MinVersion("hello"); min != "1.0.0" {
		t.Errorf("minimum %q after a release, want 1.0.0", min)
	}
}

// TestSetMinVersionLower_R63: locally too, the minimum goes down only when
// asked (MinVersionOptions.Lower), and then the policy signs what it
// lowers; Lower with a version that is not lower is an error.
func TestSetMinVersionLower_R63(t *testing.T) {
	r, s, _ := remoteFixture(t)
	uploadRelease(t, r, s, "1.1.0")
	if err := r.SetMinVersion(ctx, "hello", "1.1.0"); err != nil {
		t.Fatal(err)
	}
	before := treeHashes(t, r.dir)
	if err := r.SetMinVersion(ctx, "hello", "1.0.0"); !errors.Is(err, ErrLowerMin) {
		t.Fatalf("lowering without Lower: %v, want ErrLowerMin", err)
	}
	if _, err := r.SetMinVersionWith(ctx, "hello", "1.1.0", MinVersionOptions{Lower: true}); err == nil || !strings.Contains(err.Error(), "not below") {
		t.Errorf("Lower to the same minimum: %v", err)
	}
	// The minimum it has already: nothing signed, nothing written.
	if signed, err := r.SetMinVersionWith(ctx, "hello", "1.1.0", MinVersionOptions{}); err != nil || signed {
		t.Errorf("the same minimum again: signed %v, %v; want nothing signed", signed, err)
	}
	if d := diffTrees(before, treeHashes(t, r.dir)); len(d) > 0 {
		t.Fatalf("a refused or empty change changed the repository: %v", d)
	}
	if signed, err := r.SetMinVersionWith(ctx, "hello", "1.0.0", MinVersionOptions{Lower: true}); err != nil || !signed {
		t.Fatalf("lowering: signed %v, %v", signed, err)
	}
	md := mustAppRole(t, r)
	rec, err := RecordOf("hello", md)
	if err != nil || rec.MinVersion != "1.0.0" {
		t.Fatalf("RecordOf = %+v, %v", rec, err)
	}
	if !strings.Contains(string(md), `"ferry-policy-lowered":{"from":"1.1.0"}`) {
		t.Errorf("the lowered policy does not sign what it lowers:\n%s", md)
	}
}

// TestPublisherRecordFile: the record is written atomically, read back,
// absent is nil, and damage is an error naming the file, not a reset.
func TestPublisherRecordFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "state", "hello.json")
	if rec, err := ReadPublisherRecord(file, "hello"); rec != nil || err != nil {
		t.Fatalf("no file: %+v, %v", rec, err)
	}
	want := &PublisherRecord{App: "hello", RoleVersion: 7, RoleSHA256: strings.Repeat("ab", 32), MinVersion: "1.2.0"}
	if err := WritePublisherRecord(file, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadPublisherRecord(file, "hello")
	if err != nil || *got != *want {
		t.Fatalf("read back %+v, %v; want %+v", got, err, want)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("record mode: %v, %v", fi.Mode(), err)
	}
	if _, err := ReadPublisherRecord(file, "world"); err == nil {
		t.Error("hello's record read as world's")
	}
	for _, bad := range []string{"", "{}", `{"app":"hello","role_version":0,"role_sha256":"","min_version":""}`,
		`{"app":"hello","role_version":3,"role_sha256":"` + strings.Repeat("ab", 32) + `","min_version":"v1"}`,
		`{"app":"hello","role_version":3,"role_sha256":"` + strings.Repeat("ab", 32) + `","min_version":"","x":1}`} {
		if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadPublisherRecord(file, "hello"); err == nil || !strings.Contains(err.Error(), file) {
			t.Errorf("record %q: err = %v, want one naming %s", bad, err, file)
		}
	}
}
