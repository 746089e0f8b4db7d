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

// TestReview8AgentHidesReverter (review8 F5): the installers the agent
// wraps are still install.Reverters, so a signed pull reverts from disk.
func TestReview8AgentHidesReverter(t *testing.T) {
	for _, inst := range []any{
		uninterrupted(&install.Binary{App: "hello", Target: "/x/hello", StateDir: "/x/s"}),
		uninterrupted(&install.Slots{Root: "/x", App: "hello"}),
	} {
		if _, ok := inst.(install.Reverter); !ok {
			t.Errorf("%T: the agent's installer is no install.Reverter", inst)
		}
	}
}

// TestParkingKeepsEveryFile (review8 F10): outside the maintenance window
// every verified file of a release of several is kept in the cache, not
// only the first.
func TestParkingKeepsEveryFile(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	var arts []install.Artifact
	for i, name := range []string{"a", "b", "c"} {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
		sum := make([]byte, 32)
		sum[0] = byte(i + 1)
		arts = append(arts, install.Artifact{App: "hello", Version: "1.0.0", File: f, Hashes: map[string][]byte{"sha256": sum}})
	}
	p := &parking{cache: cache}
	if _, err := p.ApplyAll(context.Background(), arts); err != errParked {
		t.Fatalf("ApplyAll: %v, want errParked", err)
	}
	if ents, _ := os.ReadDir(cache); len(ents) != len(arts) {
		t.Errorf("%d of %d files parked in the cache", len(ents), len(arts))
	}
}
