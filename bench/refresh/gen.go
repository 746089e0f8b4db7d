package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/bench/internal/testrepo"
)

// goTUFTargetsMax is go-tuf's default TargetsMaxLength, which it applies
// when the snapshot gives no length.
const goTUFTargetsMax = 5_000_000

// layout is one generated repository, served from public.
type layout struct {
	public   string // the served directory; metadata is in public/metadata
	rootFile string // the trust anchor for clients
}

// dataset is the pair of repositories for one number of targets.
type dataset struct {
	n           int
	app, lookup string // the app and target every case looks up
	ferry, flat layout
	via         string // how the ferry layout was made
	targetsMax  int64  // go-tuf TargetsMaxLength needed for flat; 0: default is enough
	flatBytes   int64  // size of the flat targets.json
	appBytes    int64  // size of the looked-up app's role file
}

// generate writes both repositories for n targets under dir.
func generate(ctx context.Context, dir string, n, perApp int) (*dataset, error) {
	spec := testrepo.Spec{Targets: n, PerApp: perApp}
	ds := &dataset{n: n}
	ds.app, ds.lookup = spec.Lookup()
	base := filepath.Join(dir, strconv.Itoa(n))
	ds.ferry = layout{public: filepath.Join(base, "ferry", "public"), rootFile: filepath.Join(base, "ferry", "root.json")}
	ds.flat = layout{public: filepath.Join(base, "flat", "public"), rootFile: filepath.Join(base, "flat", "root.json")}

	via, err := genFerry(ctx, ds.ferry, spec)
	if err != nil {
		return nil, fmt.Errorf("ferry layout, %d targets: %w", n, err)
	}
	ds.via = via
	targets, err := readTargets(filepath.Join(ds.ferry.public, "metadata"))
	if err != nil {
		return nil, fmt.Errorf("read back ferry layout: %w", err)
	}
	if len(targets) != n {
		return nil, fmt.Errorf("ferry layout lists %d targets, want %d", len(targets), n)
	}
	r, err := testrepo.FlatOf(ds.flat.public, spec, targets)
	if err != nil {
		return nil, fmt.Errorf("flat layout, %d targets: %w", n, err)
	}
	if err := os.WriteFile(ds.flat.rootFile, r.Root, 0o644); err != nil {
		return nil, err
	}
	fi, err := os.Stat(filepath.Join(ds.flat.public, "metadata", "1.targets.json"))
	if err != nil {
		return nil, err
	}
	ds.flatBytes = fi.Size()
	if ds.flatBytes > goTUFTargetsMax {
		ds.targetsMax = (ds.flatBytes/1_000_000 + 1) * 1_000_000
	}
	ds.appBytes = roleFileSize(filepath.Join(ds.ferry.public, "metadata"), ds.app)
	return ds, nil
}

// genFerry writes ferry's layout: with the testrepo generator (one
// delegated role per app, path pattern APP/*/*/*, as repo lays it out).
func genFerry(_ context.Context, l layout, spec testrepo.Spec) (string, error) {
	r, err := testrepo.Delegated(l.public, spec)
	if err != nil {
		return "", err
	}
	return "bench/internal/testrepo (ferry's layout rebuilt with go-tuf types)", os.WriteFile(l.rootFile, r.Root, 0o644)
}

// readTargets returns every target of the repository whose metadata is in
// mdDir, following timestamp.json to the snapshot and the role files it
// names. Nothing is verified: the repository was just generated here.
func readTargets(mdDir string) ([]testrepo.Target, error) {
	roles, err := snapshotRoles(mdDir)
	if err != nil {
		return nil, err
	}
	var out []testrepo.Target
	for _, name := range roles.names {
		b, err := os.ReadFile(filepath.Join(mdDir, fmt.Sprintf("%d.%s", roles.versions[name], name)))
		if err != nil {
			return nil, err
		}
		md, err := metadata.Targets().FromBytes(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for p, tf := range md.Signed.Targets {
			out = append(out, testrepo.Target{Path: p, File: tf})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

type roleVersions struct {
	names    []string // sorted file names, "targets.json", "APP.json"
	versions map[string]int64
}

// metaDoc is the part of timestamp and snapshot metadata read here.
type metaDoc struct {
	Signed struct {
		Meta map[string]struct{ Version int64 } `json:"meta"`
	} `json:"signed"`
}

func snapshotRoles(mdDir string) (*roleVersions, error) {
	var ts metaDoc
	b, err := os.ReadFile(filepath.Join(mdDir, "timestamp.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &ts); err != nil {
		return nil, fmt.Errorf("timestamp.json: %w", err)
	}
	sv := ts.Signed.Meta["snapshot.json"].Version
	b, err = os.ReadFile(filepath.Join(mdDir, fmt.Sprintf("%d.snapshot.json", sv)))
	if err != nil {
		return nil, err
	}
	var snap metaDoc
	if err := json.Unmarshal(b, &snap); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	rv := &roleVersions{versions: map[string]int64{}}
	for name, m := range snap.Signed.Meta {
		rv.names = append(rv.names, name)
		rv.versions[name] = m.Version
	}
	sort.Strings(rv.names)
	return rv, nil
}

// roleFileSize returns the size of the current file of role in mdDir, or 0.
func roleFileSize(mdDir, role string) int64 {
	rv, err := snapshotRoles(mdDir)
	if err != nil {
		return 0
	}
	fi, err := os.Stat(filepath.Join(mdDir, fmt.Sprintf("%d.%s.json", rv.versions[role+".json"], role)))
	if err != nil {
		return 0
	}
	return fi.Size()
}
