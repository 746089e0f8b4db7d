package repo_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/repo"
)

func signAs[T metadata.Roles](t *testing.T, md *metadata.Metadata[T], ss ...keys.Signer) []byte {
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

// metadataFiles returns every file of l's public/metadata by name.
func metadataFiles(t *testing.T, l *live) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, err := os.ReadDir(filepath.Join(l.dir, "public", "metadata"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		out[e.Name()] = string(readMD(t, l, e.Name()))
	}
	return out
}

// plantForgedChain rewrites l's repository as a stolen server would: a
// root signed only by thief (at the current version, or as the next one)
// that makes thief root and targets, a targets role delegating hello to
// the real key and thief, and a hello role carrying 6.6.6; snapshot and
// timestamp signed with the server's own online keys.
func plantForgedChain(t *testing.T, l *live, thief keys.Signer, bump bool) {
	t.Helper()
	md := filepath.Join(l.dir, "public", "metadata")
	mid, _ := thief.Key().ID()
	root, err := metadata.Root().FromBytes(l.shipped)
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"root", "targets"} {
		for _, id := range append([]string(nil), root.Signed.Roles[role].KeyIDs...) {
			root.Signed.RevokeKey(id, role)
		}
		root.Signed.AddKey(thief.Key(), role)
	}
	if bump {
		root.Signed.Version++
	}
	rb := signAs(t, root, thief)
	os.WriteFile(filepath.Join(l.dir, "root.json"), rb, 0o644)
	os.WriteFile(filepath.Join(md, fmt.Sprintf("%d.root.json", root.Signed.Version)), rb, 0o644)

	ts, _ := metadata.Timestamp().FromBytes(readMD(t, l, "timestamp.json"))
	sv := ts.Signed.Meta["snapshot.json"].Version
	snap, _ := metadata.Snapshot().FromBytes(readMD(t, l, fmt.Sprintf("%d.snapshot.json", sv)))
	tv, hv := snap.Signed.Meta["targets.json"].Version, snap.Signed.Meta["hello.json"].Version
	tg, _ := metadata.Targets().FromBytes(readMD(t, l, fmt.Sprintf("%d.targets.json", tv)))
	for i := range tg.Signed.Delegations.Roles {
		if tg.Signed.Delegations.Roles[i].Name == "hello" {
			tg.Signed.Delegations.Roles[i].KeyIDs = append(tg.Signed.Delegations.Roles[i].KeyIDs, mid)
		}
	}
	tg.Signed.Delegations.Keys[mid] = thief.Key()
	tb := signAs(t, tg, thief)
	app, _ := metadata.Targets().FromBytes(readMD(t, l, fmt.Sprintf("%d.hello.json", hv)))
	tf, _ := metadata.TargetFile().FromBytes("hello/6.6.6/linux-amd64/hello", []byte("evil"), "sha256")
	custom := json.RawMessage(`{"ferry":{"app":"hello","version":"6.6.6","platform":"linux/amd64","kind":"binary"}}`)
	tf.Custom = &custom
	app.Signed.Targets[tf.Path] = tf
	ab := signAs(t, app, thief)
	writeMD(t, l, fmt.Sprintf("%d.targets.json", tv), tb)
	writeMD(t, l, fmt.Sprintf("%d.hello.json", hv), ab)
	snap.Signed.Meta["targets.json"] = metaOf(tv, tb)
	snap.Signed.Meta["hello.json"] = metaOf(hv, ab)
	sb := forge(t, l, snap, "snapshot.age")
	writeMD(t, l, fmt.Sprintf("%d.snapshot.json", sv), sb)
	ts.Signed.Meta["snapshot.json"] = metaOf(sv, sb)
	writeMD(t, l, "timestamp.json", forge(t, l, ts, "timestamp.age"))
}

// R57: the server is stolen and plants a self-consistent chain (root,
// targets, hello) signed by the thief. The application's key holder runs
// what serve's warning says ('ferry repo refresh --role hello --app-key
// KEY'), or publishes a release or a targets change: the holder checks
// REPO against the root it trusts, walked forward through
// public/metadata/N.root.json, and signs nothing.
func TestHolderRefusesForgedRepo_R57(t *testing.T) {
	for _, bump := range []bool{false, true} {
		t.Run(fmt.Sprintf("next-version=%v", bump), func(t *testing.T) {
			l := newLive(t, 1)
			l.publish("hello", "1.0.0")
			honestApp := l.signer(filepath.Join("apps", "hello.age"))
			plantForgedChain(t, l, mallory(t), bump)
			before := metadataFiles(t, l)

			h, err := repo.OpenWith(l.dir, repo.Options{AppKeys: []keys.Signer{honestApp}, TrustedRoot: l.shipped, Passphrase: repo.Passphrase([]byte(pass))})
			if err != nil {
				t.Fatal(err)
			}
			_, err = h.RefreshWith(bg, repo.RefreshOptions{Roles: []string{"hello"}})
			if err == nil || !strings.Contains(err.Error(), "root") {
				t.Fatalf("holder refresh of a forged repository: %v, want a refusal naming the root", err)
			}
			src := filepath.Join(t.TempDir(), "hello")
			os.WriteFile(src, []byte("hello 1.1.0"), 0o755)
			if err := h.Publish(bg, repo.Release{App: "hello", Version: "1.1.0", Platform: "linux/amd64", Kind: "binary"}, []string{src}); err == nil {
				t.Fatal("holder published a release on a forged repository")
			}
			// Without a trusted root, a holder refuses too.
			bare, _ := repo.OpenWith(l.dir, repo.Options{AppKeys: []keys.Signer{honestApp}, Passphrase: repo.Passphrase([]byte(pass))})
			if _, err := bare.RefreshWith(bg, repo.RefreshOptions{Roles: []string{"hello"}}); !errors.Is(err, repo.ErrNoTrustedRoot) {
				t.Fatalf("holder without a trusted root: %v, want ErrNoTrustedRoot", err)
			}
			if after := metadataFiles(t, l); !maps.Equal(before, after) {
				t.Fatal("a refused holder changed the repository's metadata")
			}
		})
	}
}

// TestHolderWalksPinnedRoot: a holder whose pinned root is older than the
// repository's follows the genuine rotation, signs, and advances the pin.
func TestHolderWalksPinnedRoot(t *testing.T) {
	l := newLive(t, 1)
	l.publish("hello", "1.0.0")
	l.rotateRoot(repo.RootChange{}, "root-1.age")
	pin := filepath.Join(t.TempDir(), "root.json")
	os.WriteFile(pin, l.shipped, 0o600)
	h, err := repo.OpenWith(l.dir, repo.Options{AppKeys: []keys.Signer{l.signer(filepath.Join("apps", "hello.age"))}, PinnedRoot: pin, Passphrase: repo.Passphrase([]byte(pass))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.RefreshWith(bg, repo.RefreshOptions{Roles: []string{"hello"}, Force: true}); err != nil {
		t.Fatalf("holder refresh after a genuine root rotation: %v", err)
	}
	got, _ := os.ReadFile(pin)
	want, _ := os.ReadFile(filepath.Join(l.dir, "root.json"))
	if string(got) != string(want) {
		t.Fatal("the pinned root was not advanced to the repository's current root")
	}
}
