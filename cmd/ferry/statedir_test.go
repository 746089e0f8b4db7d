//go:build linux

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLegacyStateDirMoved: the state directory an older ferry kept in the
// cache directory (install state, bad marks) moves to the state directory
// on first use, so nothing it recorded is lost; an existing new one wins.
func TestLegacyStateDirMoved(t *testing.T) {
	cache, state := t.TempDir(), t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	var stderr bytes.Buffer
	e := &env{stderr: &stderr, getenv: func(k string) string {
		return map[string]string{"XDG_STATE_HOME": state}[k]
	}}
	root := []byte(`{"signed":{}}`)
	dir, err := e.defaultStateDir("hello", root)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dir, filepath.Join(state, "ferry", "hello-")) {
		t.Fatalf("state directory %s is not under XDG_STATE_HOME", dir)
	}
	legacy := filepath.Join(cache, "ferry", filepath.Base(dir))
	if err := os.MkdirAll(filepath.Join(legacy, "install"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(legacy, "install", "state.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.defaultStateDir("hello", root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "install", "state.json")); err != nil {
		t.Fatalf("legacy state not moved: %v", err)
	}
	if _, err := os.Stat(legacy); err == nil {
		t.Error("legacy directory still there")
	}
	if !strings.Contains(stderr.String(), "ferry: note: moved the state directory") {
		t.Errorf("no note: %q", stderr.String())
	}
	// A legacy directory that turns up again does not replace the new one.
	os.MkdirAll(legacy, 0o700)
	stderr.Reset()
	e.defaultStateDir("hello", root)
	if stderr.Len() != 0 {
		t.Errorf("moved over an existing state directory: %q", stderr.String())
	}
}
