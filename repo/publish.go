package repo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/release"
)

// Batch is one release and its files, for PublishBatch.
type Batch struct {
	Release
	Files []string
}

// Result reports what PublishBatch did.
type Result struct {
	Published []Entry   // targets added, sorted like List
	Unchanged []Release // releases already published with identical files: nothing was done for them
}

// sourceFile is one file to publish, already validated and hashed.
type sourceFile struct {
	src    string
	entry  Entry
	sum    []byte
	meta   release.Custom  // the signed custom metadata (package release)
	custom json.RawMessage // meta, marshalled
}

// Publish adds files as targets APP/VERSION/OS-ARCH/FILE and re-signs the
// application's role, snapshot and timestamp, atomically. Publishing the
// same files again is a no-op and returns nil (PublishBatch tells the two
// apart); publishing other content under the same app, version and
// platform fails with ErrImmutable.
func (r *Repo) Publish(ctx context.Context, rel Release, files []string) error {
	_, err := r.PublishBatch(ctx, []Batch{{Release: rel, Files: files}})
	return err
}

// PublishBatch publishes many releases, of one or many applications, in one
// atomic step: each changed role is signed once, and one new timestamp makes
// them all visible together. Either every release is published (or found
// already published identically) or none is.
func (r *Repo) PublishBatch(ctx context.Context, batches []Batch) (Result, error) {
	res, err := r.publishBatch(ctx, batches)
	if err != nil {
		if len(batches) == 1 {
			return Result{}, fmt.Errorf("publish %s: %w", batches[0].Release, err)
		}
		return Result{}, fmt.Errorf("publish batch of %d releases: %w", len(batches), err)
	}
	return res, nil
}

func (r *Repo) publishBatch(ctx context.Context, batches []Batch) (Result, error) {
	var files [][]sourceFile
	for _, b := range batches {
		fs, err := prepare(ctx, b)
		if err != nil {
			if len(batches) > 1 {
				return Result{}, fmt.Errorf("%s: %w", b.Release, err)
			}
			return Result{}, err
		}
		files = append(files, fs)
	}
	unlock, err := r.lock()
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	st, err := r.loadState()
	if err != nil {
		return Result{}, err
	}
	p, err := r.plan(st, batches, files)
	if err != nil || len(p.todo) == 0 {
		return p.res, err
	}
	return p.res, r.apply(ctx, st, p)
}

// prepare validates a release and hashes its files; it writes nothing.
func prepare(ctx context.Context, b Batch) ([]sourceFile, error) {
	if err := b.Release.validate(); err != nil {
		return nil, err
	}
	if len(b.Files) == 0 {
		return nil, fmt.Errorf("no files to publish")
	}
	var out []sourceFile
	seen := map[string]bool{}
	for _, src := range b.Files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		base := filepath.Base(src)
		if err := release.ValidFile(base); err != nil {
			return nil, err
		}
		if seen[base] {
			return nil, fmt.Errorf("two files named %q", base)
		}
		seen[base] = true
		f, err := hashSource(b.Release, src)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return withManifest(out)
}

// withManifest writes the release manifest (R48) into the signed custom
// metadata of each of files, the files of one release: every file's name
// and sha256, so a client takes only files that were published together.
func withManifest(files []sourceFile) ([]sourceFile, error) {
	if len(files) > release.MaxManifestFiles {
		return nil, fmt.Errorf("%d files: a release has at most %d", len(files), release.MaxManifestFiles)
	}
	manifest := map[string]string{}
	for _, f := range files {
		manifest[path.Base(f.entry.Path)] = f.entry.SHA256
	}
	for i := range files {
		files[i].meta.Files = manifest
		var err error
		if files[i].custom, err = files[i].meta.Marshal(); err != nil {
			return nil, err
		}
	}
	return files, nil
}

func hashSource(rel Release, src string) (sourceFile, error) {
	f, err := os.Open(src)
	if err != nil {
		return sourceFile{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return sourceFile{}, err
	}
	if !fi.Mode().IsRegular() {
		return sourceFile{}, fmt.Errorf("%s is not a regular file", src)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return sourceFile{}, fmt.Errorf("read %s: %w", src, err)
	}
	sum := h.Sum(nil)
	sf := sourceFile{src: src, sum: sum, entry: Entry{Length: n, SHA256: hex.EncodeToString(sum)}}
	if rel.App == "" { // an uploaded file: its metadata comes signed with the uploaded role
		return sf, nil
	}
	base := filepath.Base(src)
	if rel.Kind == "" {
		rel.Kind = release.InferKind(base)
	}
	sf.meta = rel.custom() // custom is marshalled with the manifest (withManifest)
	sf.entry.Release, sf.entry.Path = rel, rel.path(base).String()
	return sf, nil
}

// storedName is where a target's bytes live under public/targets: the
// consistent-snapshot name DIR/SHA256HEX.FILE.
func storedName(e Entry) string {
	dir, base := path.Split(e.Path)
	return dir + e.SHA256 + "." + base
}

// targetFile is the TUF description of a source file.
func (f sourceFile) targetFile() *metadata.TargetFiles {
	raw := slices.Clone(f.custom)
	t := metadata.TargetFile()
	t.Length = f.entry.Length
	t.Hashes = metadata.Hashes{"sha256": f.sum}
	t.Custom = (*json.RawMessage)(&raw)
	t.Path = f.entry.Path
	return t
}
