package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/bench/internal/testrepo"
	"github.com/ferry-updates/ferry/repo"
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
	genTime     time.Duration
}

// datasetFile records a finished generation in DIR/N, so that a later run
// with the same -dir reuses it.
const datasetFile = "dataset.json"

// savedDataset is the content of datasetFile.
type savedDataset struct {
	PerApp     int
	UseRepo    bool
	Via        string
	TargetsMax int64
	FlatBytes  int64
	AppBytes   int64
	GenNanos   int64
}

// generate writes both repositories for n targets under dir/N, or reuses
// the ones an earlier run generated there with the same settings.
func generate(ctx context.Context, dir string, n, perApp int, useRepo bool) (*dataset, error) {
	spec := testrepo.Spec{Targets: n, PerApp: perApp}
	ds := &dataset{n: n}
	ds.app, ds.lookup = spec.Lookup()
	base := filepath.Join(dir, strconv.Itoa(n))
	ds.ferry = layout{public: filepath.Join(base, "ferry", "public"), rootFile: filepath.Join(base, "ferry", "root.json")}
	ds.flat = layout{public: filepath.Join(base, "flat", "public"), rootFile: filepath.Join(base, "flat", "root.json")}
	if b, err := os.ReadFile(filepath.Join(base, datasetFile)); err == nil {
		var sd savedDataset
		if json.Unmarshal(b, &sd) == nil && sd.PerApp == perApp && sd.UseRepo == useRepo {
			ds.via, ds.targetsMax, ds.flatBytes, ds.appBytes = sd.Via+", reused", sd.TargetsMax, sd.FlatBytes, sd.AppBytes
			ds.genTime = time.Duration(sd.GenNanos)
			return ds, nil
		}
	}
	if err := os.RemoveAll(base); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := fill(ctx, ds, spec, useRepo); err != nil {
		return nil, err
	}
	ds.genTime = time.Since(start)
	sd, err := json.Marshal(savedDataset{perApp, useRepo, ds.via, ds.targetsMax, ds.flatBytes, ds.appBytes, int64(ds.genTime)})
	if err != nil {
		return nil, err
	}
	return ds, os.WriteFile(filepath.Join(base, datasetFile), sd, 0o644)
}

// fill generates both layouts of ds.
func fill(ctx context.Context, ds *dataset, spec testrepo.Spec, useRepo bool) error {
	n := spec.Targets

	via, err := genFerry(ctx, ds.ferry, spec, useRepo)
	if err != nil {
		return fmt.Errorf("ferry layout, %d targets: %w", n, err)
	}
	ds.via = via
	targets, err := readTargets(filepath.Join(ds.ferry.public, "metadata"))
	if err != nil {
		return fmt.Errorf("read back ferry layout: %w", err)
	}
	if len(targets) != n {
		return fmt.Errorf("ferry layout lists %d targets, want %d", len(targets), n)
	}
	r, err := testrepo.FlatOf(ds.flat.public, spec, targets)
	if err != nil {
		return fmt.Errorf("flat layout, %d targets: %w", n, err)
	}
	if err := os.WriteFile(ds.flat.rootFile, r.Root, 0o644); err != nil {
		return err
	}
	fi, err := os.Stat(filepath.Join(ds.flat.public, "metadata", "1.targets.json"))
	if err != nil {
		return err
	}
	ds.flatBytes = fi.Size()
	if ds.flatBytes > goTUFTargetsMax {
		ds.targetsMax = (ds.flatBytes/1_000_000 + 1) * 1_000_000
	}
	ds.appBytes = roleFileSize(filepath.Join(ds.ferry.public, "metadata"), ds.app)
	return nil
}

// genFerry writes ferry's layout with the repo package's PublishBatch, so
// the layout is exactly what ferry publishes; with -gen testrepo (or if the
// repo package fails), with the testrepo generator instead.
func genFerry(ctx context.Context, l layout, spec testrepo.Spec, useRepo bool) (string, error) {
	if useRepo {
		err := genRepo(ctx, filepath.Dir(l.public), spec)
		if err == nil {
			return "repo.PublishBatch", nil
		}
		logf("repo.PublishBatch failed, falling back to testrepo: %v", err)
		if err := os.RemoveAll(filepath.Dir(l.public)); err != nil {
			return "", err
		}
	}
	r, err := testrepo.Delegated(l.public, spec)
	if err != nil {
		return "", err
	}
	return "bench/internal/testrepo (ferry's layout rebuilt with go-tuf types)", os.WriteFile(l.rootFile, r.Root, 0o644)
}

// benchPassphrase encrypts the throw-away keys of generated repositories.
var benchPassphrase = []byte("ferry benchmark repository")

// genRepo initialises a repository in dir and publishes the spec's targets
// in one batch, one release per app, version and platform, each one file
// whose content is its own target path. Keys use a low scrypt work factor:
// it only protects keys at rest, which is nothing a refresh touches.
func genRepo(ctx context.Context, dir string, spec testrepo.Spec) error {
	opts := repo.InitOptions{Passphrase: benchPassphrase, InsecureScryptWorkFactor: 8}
	if err := repo.Init(ctx, dir, opts); err != nil {
		return err
	}
	r, err := repo.Open(dir, benchPassphrase)
	if err != nil {
		return err
	}
	src := filepath.Join(filepath.Dir(dir), "src")
	var batches []repo.Batch
	for _, t := range spec.List() {
		seg := strings.Split(t.Path, "/") // APP/VERSION/OS-ARCH/FILE
		f := filepath.Join(src, filepath.FromSlash(t.Path))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f, []byte(t.Path+"\n"), 0o644); err != nil {
			return err
		}
		batches = append(batches, repo.Batch{
			Release: repo.Release{App: seg[0], Version: seg[1], Platform: strings.Replace(seg[2], "-", "/", 1), Kind: "binary"},
			Files:   []string{f},
		})
	}
	_, err = r.PublishBatch(ctx, batches)
	if rmErr := os.RemoveAll(src); err == nil {
		err = rmErr
	}
	return err
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
