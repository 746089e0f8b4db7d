package agent

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/install"
)

type stubInstaller struct{ applied int }

func (s *stubInstaller) State(context.Context) (install.State, error) { return install.State{}, nil }
func (s *stubInstaller) Apply(context.Context, install.Artifact) (install.Result, error) {
	s.applied++
	return install.Result{}, nil
}

// TestParking: outside a window the verified file goes back into the
// client's download cache under its sha256, and nothing is installed.
func TestParking(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "downloads")
	os.Mkdir(cache, 0o700)
	art := artifact(t, dir, "hello", "1.1.0", []byte("new version"))
	inner := &stubInstaller{}
	p := &parking{Installer: inner, cache: cache}
	if _, err := p.Apply(context.Background(), art); !errors.Is(err, errParked) {
		t.Fatalf("Apply: %v, want errParked", err)
	}
	if inner.applied != 0 {
		t.Error("parking installed")
	}
	b, err := os.ReadFile(filepath.Join(cache, hex.EncodeToString(art.Hashes["sha256"])))
	if err != nil || string(b) != "new version" {
		t.Errorf("cache file: %q %v", b, err)
	}
	if _, err := os.Stat(art.File); err == nil {
		t.Error("the staged file was copied, not moved")
	}
}

// TestUninterruptedKeepsMethods: the wrapped installers keep what the
// client looks for, so a signed pull reverts to a version on disk and a
// release of several files goes into one slot.
func TestUninterruptedKeepsMethods(t *testing.T) {
	e := newTestEnv(t)
	c := e.config(t, "", appTOML("hello", "a.example", ""), `
[[app]]
name = "world"
urls = ["https://a.example/"]
trusted_root = "root.json"
[app.install]
strategy = "slots"
root = "apps"
`)
	a := e.agent(t, c, e.options())
	bin := uninterrupted(a.installer(c.Apps[0]))
	if _, ok := bin.(install.Reverter); !ok {
		t.Error("the wrapped Binary is not an install.Reverter")
	}
	slots := uninterrupted(a.installer(c.Apps[1]))
	_, multi := slots.(client.MultiInstaller)
	_, rev := slots.(install.Reverter)
	_, revAll := slots.(interface {
		RevertAll(context.Context, []install.Artifact) (install.Result, error)
	})
	if !multi || !rev || !revAll {
		t.Errorf("the wrapped Slots: ApplyAll %v, Revert %v, RevertAll %v; want all", multi, rev, revAll)
	}
}
