package testrepo

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Repo is a generated repository.
type Repo struct {
	Dir  string // DIR; metadata is in DIR/metadata
	Root []byte // 1.root.json, the trust anchor for clients
}

// top holds the top-level roles under construction.
type top struct {
	w        writer
	root     *metadata.Metadata[metadata.RootType]
	keys     map[string]*key // by top-level role name
	targets  *metadata.Metadata[metadata.TargetsType]
	snapshot *metadata.Metadata[metadata.SnapshotType]
}

func newTop(dir string, s Spec) (*top, error) {
	if s.Targets < 1 {
		return nil, fmt.Errorf("testrepo: %d targets, want at least 1", s.Targets)
	}
	if err := os.MkdirAll(filepath.Join(dir, "metadata"), 0o755); err != nil {
		return nil, err
	}
	exp := s.expires()
	t := &top{
		w:        writer{dir},
		root:     metadata.Root(exp),
		keys:     map[string]*key{},
		targets:  metadata.Targets(exp),
		snapshot: metadata.Snapshot(exp),
	}
	t.root.Signed.ConsistentSnapshot = true
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		k, err := newKey()
		if err != nil {
			return nil, err
		}
		t.keys[role] = k
		if err := t.root.Signed.AddKey(k.pub, role); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// finish signs and writes root, targets, snapshot and timestamp.
func (t *top) finish(s Spec) (*Repo, error) {
	if _, err := t.root.Sign(t.keys[metadata.ROOT].signer); err != nil {
		return nil, err
	}
	rootBytes, err := t.root.ToBytes(false)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(t.w.dir, "metadata", "1.root.json"), rootBytes, 0o644); err != nil {
		return nil, err
	}
	if _, err := t.targets.Sign(t.keys[metadata.TARGETS].signer); err != nil {
		return nil, err
	}
	if err := t.w.write("1.targets.json", t.targets); err != nil {
		return nil, err
	}
	if _, err := t.snapshot.Sign(t.keys[metadata.SNAPSHOT].signer); err != nil {
		return nil, err
	}
	if err := t.w.write("1.snapshot.json", t.snapshot); err != nil {
		return nil, err
	}
	ts := metadata.Timestamp(s.expires())
	ts.Signed.Meta["snapshot.json"] = metadata.MetaFile(1)
	if _, err := ts.Sign(t.keys[metadata.TIMESTAMP].signer); err != nil {
		return nil, err
	}
	if err := t.w.write("timestamp.json", ts); err != nil {
		return nil, err
	}
	return &Repo{Dir: t.w.dir, Root: rootBytes}, nil
}

// Flat writes a repository in dir with the spec's targets in one top-level
// targets.json.
func Flat(dir string, s Spec) (*Repo, error) {
	return FlatOf(dir, s, s.List())
}

// FlatOf writes a repository in dir listing targets in one top-level
// targets.json (for example the targets read from a ferry repository, so
// that both layouts describe exactly the same files). Only s.Expires is
// used from s.
func FlatOf(dir string, s Spec, targets []Target) (*Repo, error) {
	if s.Targets == 0 {
		s.Targets = len(targets)
	}
	t, err := newTop(dir, s)
	if err != nil {
		return nil, err
	}
	for _, tg := range targets {
		t.targets.Signed.Targets[tg.Path] = tg.File
	}
	t.snapshot.Signed.Meta["targets.json"] = metadata.MetaFile(1)
	return t.finish(s)
}

// Delegated writes a repository in dir in ferry's layout: one delegated
// role per application.
func Delegated(dir string, s Spec) (*Repo, error) {
	t, err := newTop(dir, s)
	if err != nil {
		return nil, err
	}
	t.targets.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	all := s.List()
	per := s.perApp()
	for a := 0; a*per < len(all); a++ {
		app := AppName(a)
		if err := t.delegate(app, all[a*per:min((a+1)*per, len(all))], s); err != nil {
			return nil, fmt.Errorf("testrepo: role %s: %w", app, err)
		}
	}
	t.snapshot.Signed.Meta["targets.json"] = metadata.MetaFile(1)
	return t.finish(s)
}

// delegate adds role app to top-level targets and writes 1.APP.json.
func (t *top) delegate(app string, targets []Target, s Spec) error {
	k, err := newKey()
	if err != nil {
		return err
	}
	id, err := k.pub.ID()
	if err != nil {
		return err
	}
	d := t.targets.Signed.Delegations
	d.Keys[id] = k.pub
	d.Roles = append(d.Roles, metadata.DelegatedRole{
		Name:        app,
		KeyIDs:      []string{id},
		Threshold:   1,
		Terminating: true,
		Paths:       []string{app + "/*/*/*"},
	})
	md := metadata.Targets(s.expires())
	for _, tg := range targets {
		md.Signed.Targets[tg.Path] = tg.File
	}
	if _, err := md.Sign(k.signer); err != nil {
		return err
	}
	t.snapshot.Signed.Meta[app+".json"] = metadata.MetaFile(1)
	return t.w.write("1."+app+".json", md)
}
