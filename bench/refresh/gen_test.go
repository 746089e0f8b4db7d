package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/bench/internal/testrepo"
)

func TestParseCounts(t *testing.T) {
	if ns, err := parseCounts("1000, 10000,100000"); err != nil || len(ns) != 3 || ns[2] != 100000 {
		t.Errorf("parseCounts = %v, %v", ns, err)
	}
	for _, bad := range []string{"", "0", "1k", "10,-1"} {
		if _, err := parseCounts(bad); err == nil {
			t.Errorf("parseCounts(%q) accepted", bad)
		}
	}
}

// TestGenerate builds both layouts of a small dataset with the testrepo
// generator and checks that the flat one lists exactly the ferry one's
// targets.
func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	ds, err := generate(context.Background(), dir, 30, 10, false)
	if err != nil {
		t.Fatal(err)
	}
	again, err := generate(context.Background(), dir, 30, 10, false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(again.via, ", reused") || again.flatBytes != ds.flatBytes || again.lookup != ds.lookup {
		t.Errorf("second generate did not reuse the first: %+v", again)
	}
	a, err := readTargets(filepath.Join(ds.ferry.public, "metadata"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := readTargets(filepath.Join(ds.flat.public, "metadata"))
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 30 || len(b) != 30 {
		t.Fatalf("%d and %d targets, want 30 each", len(a), len(b))
	}
	for i := range a {
		if a[i].Path != b[i].Path || !a[i].File.Equal(*b[i].File) {
			t.Errorf("target %d differs: %s vs %s", i, a[i].Path, b[i].Path)
		}
	}
	if _, want := (testrepo.Spec{Targets: 30, PerApp: 10}).Lookup(); ds.lookup != want {
		t.Errorf("lookup %s, want %s", ds.lookup, want)
	}
	if ds.targetsMax != 0 || ds.appBytes == 0 {
		t.Errorf("targetsMax %d, appBytes %d", ds.targetsMax, ds.appBytes)
	}
	for _, f := range []string{ds.ferry.rootFile, ds.flat.rootFile} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
}
