package repo_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/repo"
)

// A thief of hello's key ships 6.6.6 (through the admin API's path) before
// the leak is found. Revoking the key re-signs hello's role under a new
// key; with --drop hello@6.6.6 the thief's release is left out, so no
// client, including one that first refreshes after the revocation, is
// offered it, while the owner's releases stay (R60). Without the drop the
// same revocation would have vouched for 6.6.6 under the new key.
func TestRevocationDropsThiefRelease_R60(t *testing.T) {
	l := newLive(t, 1)
	l.publish("hello", "1.0.0")
	l.publish("hello", "1.1.0")
	stolen := l.signer(filepath.Join("apps", "hello.age"))
	cur, err := l.rp.AppRole(bg, "hello")
	if err != nil {
		t.Fatal(err)
	}
	evil := filepath.Join(t.TempDir(), "hello")
	os.WriteFile(evil, []byte("evil"), 0o755)
	s, err := repo.SignRelease(bg, []keys.Signer{stolen}, cur,
		repo.Batch{Release: repo.Release{App: "hello", Version: "6.6.6", Platform: "linux/amd64", Kind: "binary"}, Files: []string{evil}}, repo.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.rp.PublishUpload(bg, "hello", s.Role, s.Files); err != nil {
		t.Fatal(err)
	}
	before := l.client("hello", nil)
	mustOffer(t, before, "6.6.6")

	p, err := l.rp.ProposeTargets(bg, repo.TargetsChange{App: "hello", Rotate: true})
	if err != nil {
		t.Fatal(err)
	}
	// A drop that names nothing this publish re-signs publishes nothing.
	for _, bad := range []string{"hello@9.9.9", "world@1.0.0", "hello"} {
		if err := l.ceremonyWith(p, repo.PublishOptions{Drop: []string{bad}}, "targets.age"); err == nil {
			t.Fatalf("drop %q accepted", bad)
		}
		mustOffer(t, l.client("hello", nil), "6.6.6") // nothing changed
	}
	var kept, dropped []string
	opts := repo.PublishOptions{Drop: []string{"hello@6.6.6"}, Resigned: func(app, path string, d bool) {
		if d {
			dropped = append(dropped, path)
		} else {
			kept = append(kept, path)
		}
	}}
	if err := l.ceremonyWith(p, opts, "targets.age"); err != nil {
		t.Fatal(err)
	}
	if len(dropped) != 1 || !strings.HasPrefix(dropped[0], "hello/6.6.6/") || len(kept) != 2 {
		t.Fatalf("re-signed %v, dropped %v; want 1.0.0 and 1.1.0 kept, 6.6.6 dropped", kept, dropped)
	}
	mustOffer(t, l.client("hello", nil), "1.1.0") // a client that first refreshes now
	mustOffer(t, before, "1.1.0")                 // and one that saw 6.6.6 before
	if _, err := l.rp.PublishUpload(bg, "hello", s.Role, s.Files); err == nil {
		t.Fatal("the thief's role, signed by the revoked key, was accepted again")
	}
}
