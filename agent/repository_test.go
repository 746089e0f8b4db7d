package agent

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

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
