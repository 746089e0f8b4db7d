package repo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/internal/atomicfile"
	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/rollout"
)

// publishPlan is what a publish will change, worked out in memory.
type publishPlan struct {
	res     Result
	todo    []sourceFile // target files to write
	ch      change
	newApps []string // applications without a delegation yet
	// decisions are the rollout entries of the releases added (Release.Rollout),
	// by application and version.
	decisions map[string]map[string]rollout.Entry
}

// plan adds the new targets to the in-memory state, refusing any change to
// an already published release.
func (r *Repo) plan(st *state, batches []Batch, files [][]sourceFile) (*publishPlan, error) {
	p := &publishPlan{}
	index := map[string]map[string]map[string]*metadata.TargetFiles{} // app -> release dir -> path -> target
	before := map[string][]string{}                                   // app -> the versions its role signed before this publish
	seen := map[string]bool{}
	for i, b := range batches {
		rel := b.Release
		if seen[rel.dirPath()] {
			return p, fmt.Errorf("%s appears twice in the batch", rel)
		}
		seen[rel.dirPath()] = true
		md := st.apps[rel.App]
		if md == nil {
			md = metadata.Targets()
			md.Signed.Version = 0 // commit bumps it to 1
			st.apps[rel.App] = md
			if delegationOf(st.targets, rel.App) == nil { // else delegated by a ceremony, first release
				p.newApps = append(p.newApps, rel.App)
			}
		}
		if index[rel.App] == nil {
			index[rel.App] = indexByRelease(md)
			before[rel.App] = roleVersions(md, rel.App)
		}
		existing := index[rel.App][rel.dirPath()]
		if len(existing) > 0 {
			if err := sameFiles(rel, existing, files[i]); err != nil {
				return p, err
			}
			p.res.Unchanged = append(p.res.Unchanged, rel)
			continue
		}
		for _, f := range files[i] {
			md.Signed.Targets[f.entry.Path] = f.targetFile()
			p.todo = append(p.todo, f)
			p.res.Published = append(p.res.Published, f.entry)
		}
		// The decision goes with the first publish of a version: another
		// platform of a signed version keeps the version's decision,
		// named or default (a default one is pruned, so "no entry yet"
		// cannot tell them apart).
		if !slices.Contains(before[rel.App], rel.Version) {
			if err := p.addDecision(rel); err != nil {
				return p, err
			}
		}
		if !slices.Contains(p.ch.apps, rel.App) {
			p.ch.apps = append(p.ch.apps, rel.App)
		}
	}
	sortEntries(p.res.Published)
	p.ch.targets = len(p.newApps) > 0
	return p, nil
}

// addDecision records rel.Rollout, if any, for rel's version; two
// platforms of one version in a batch must carry the same decision.
func (p *publishPlan) addDecision(rel Release) error {
	if rel.Rollout == nil {
		return nil
	}
	e := *rel.Rollout
	if p.decisions == nil {
		p.decisions = map[string]map[string]rollout.Entry{}
	}
	if p.decisions[rel.App] == nil {
		p.decisions[rel.App] = map[string]rollout.Entry{}
	}
	if have, ok := p.decisions[rel.App][rel.Version]; ok {
		if e.Salt == "" {
			e.Salt = have.Salt
		}
		if have != e {
			return fmt.Errorf("%s %s has two rollout decisions in the batch (%+v and %+v)", rel.App, rel.Version, have, e)
		}
		return nil
	}
	if e.Salt == "" {
		e.Salt = rollout.NewSalt()
	}
	if err := e.Check(); err != nil {
		return fmt.Errorf("%s: rollout decision: %w", rel, err)
	}
	p.decisions[rel.App][rel.Version] = e
	return nil
}

// planDecisions records the decisions of p in the rollout role of st, for
// every version the decisions name no entry for yet, and returns the
// decision files to write; the rollout role then joins p's change. A
// decision for a version below the application's minimum safe version is
// refused (R63), and a repository without a rollout role cannot take one.
func planDecisions(st *state, p *publishPlan) ([]dataTarget, error) {
	if len(p.decisions) == 0 {
		return nil, nil
	}
	md, err := rolloutRole(st)
	if err != nil {
		return nil, err
	}
	var out []dataTarget
	for _, app := range sortedKeys(p.decisions) {
		doc, err := docOf(md, app)
		if err != nil {
			return nil, err
		}
		min, err := minVersionOf(st.apps[app], app)
		if err != nil {
			return nil, err
		}
		changed := false
		for v, e := range p.decisions[app] {
			if _, ok := doc.Releases[v]; ok {
				continue
			}
			if min != "" && release.CompareVersions(v, min) < 0 {
				return nil, fmt.Errorf("rollout decision for %s %s: below the minimum safe version %s (R63), no installation is offered it", app, v, min)
			}
			doc.Releases[v], changed = e, true
		}
		if !changed {
			continue
		}
		f, changed, err := setDoc(md, doc, roleVersions(st.apps[app], app))
		if err != nil {
			return nil, err
		}
		if changed {
			out = append(out, f)
		}
	}
	if len(out) > 0 {
		p.ch.apps = append(p.ch.apps, rollout.RoleName)
	}
	return out, nil
}

func indexByRelease(md *targetsMD) map[string]map[string]*metadata.TargetFiles {
	out := map[string]map[string]*metadata.TargetFiles{}
	for p, t := range md.Signed.Targets {
		dir := path.Dir(p)
		if out[dir] == nil {
			out[dir] = map[string]*metadata.TargetFiles{}
		}
		out[dir][p] = t
	}
	return out
}

// sameFiles returns nil if files are exactly the published files of rel,
// and an ErrImmutable error otherwise.
func sameFiles(rel Release, existing map[string]*metadata.TargetFiles, files []sourceFile) error {
	differ := func(why string) error {
		return fmt.Errorf("%s is already published with other content (%s): %w", rel, why, ErrImmutable)
	}
	if len(existing) != len(files) {
		return differ(fmt.Sprintf("%d published files, %d given", len(existing), len(files)))
	}
	for _, f := range files {
		t, ok := existing[f.entry.Path]
		if !ok {
			return differ(fmt.Sprintf("%s is not among the published files", f.entry.Path))
		}
		if t.Length != f.entry.Length || len(t.Hashes) != 1 || !bytes.Equal(t.Hashes["sha256"], f.sum) {
			return differ(fmt.Sprintf("%s: published sha256 %x, length %d; given sha256 %s, length %d",
				f.entry.Path, []byte(t.Hashes["sha256"]), t.Length, f.entry.SHA256, f.entry.Length))
		}
		want := f.meta
		if have, err := signedCustom(t); err == nil && have.Files == nil {
			want.Files = nil // published before manifests: it stays as it is
		}
		if have, err := signedCustom(t); err != nil || !have.Equal(want) {
			return differ(fmt.Sprintf("%s: other custom metadata (kind %q)", f.entry.Path, have.Kind))
		}
	}
	return nil
}

// apply performs a plan: keys are opened first, so a missing key or a
// wrong passphrase changes nothing; then target files, new application
// keys and delegations, and the metadata (commit).
func (r *Repo) apply(ctx context.Context, st *state, p *publishPlan) error {
	docs, err := planDecisions(st, p)
	if err != nil {
		return err
	}
	var existing []string
	for _, app := range p.ch.apps {
		if !slices.Contains(p.newApps, app) && app != rollout.RoleName {
			existing = append(existing, app)
		}
	}
	if err := r.checkAppKeys(st, existing); err != nil {
		return err
	}
	newKeys := map[string][]*roleKey{}
	for _, app := range p.newApps {
		var err error
		if newKeys[app], err = r.newAppKeys(ctx, app); err != nil {
			return err
		}
	}
	if err := r.resignTargetsIfDue(ctx, st, &p.ch); err != nil {
		return err
	}
	open := change{apps: existing, targets: p.ch.targets, snapshot: true}
	if len(docs) > 0 {
		open.apps = append(slices.Clone(existing), rollout.RoleName)
	}
	if _, err := r.signerKeys(ctx, st, open); err != nil {
		return err
	}
	if err := writeTargetFiles(ctx, r.dir, p.todo); err != nil {
		return err
	}
	if err := writeDataTargets(r.dir, docs); err != nil {
		return err
	}
	if err := r.fail("target-files"); err != nil {
		return err
	}
	created := false
	for _, app := range p.newApps {
		ks := newKeys[app]
		if ks == nil {
			k, err := r.keys.generate(ctx, filepath.Join(r.keyDir(app), keyName(app)), r.settings.KeyWorkFactor)
			if err != nil {
				return err
			}
			ks, created = []*roleKey{k}, true
		}
		addDelegation(st.targets, app, ks, max(r.opts.AppThreshold, 1))
	}
	if created {
		if err := r.fail("app-key"); err != nil {
			return err
		}
	}
	return r.commit(ctx, st, p.ch)
}

// resignTargetsIfDue adds targets to ch when it is within half its
// lifetime and its key is here; a publisher without the offline targets
// key still publishes, and the holder re-signs targets later.
func (r *Repo) resignTargetsIfDue(ctx context.Context, st *state, ch *change) error {
	if ch.targets || !stale(r.now(), st.targets.Signed.Expires, r.settings.exp.Targets) {
		return nil
	}
	_, err := r.topKeys(ctx, st, metadata.TARGETS)
	switch {
	case errors.Is(err, ErrMissingKey):
		return nil
	case err != nil:
		return err
	}
	ch.targets = true
	return nil
}

// checkAppKeys refuses application keys (Options.AppKeys) that an
// existing application being published does not list, and a threshold
// other than the one it has: both can only change through targets.
func (r *Repo) checkAppKeys(st *state, apps []string) error {
	for _, app := range apps {
		d := delegation(st, app)
		if d == nil {
			return fmt.Errorf("application %s has no delegation", app)
		}
		for _, k := range r.opts.AppKeys {
			id, err := k.Key().ID()
			if err != nil {
				return err
			}
			if !slices.Contains(d.KeyIDs, id) {
				return fmt.Errorf("application key %s is not a key of application %s (its keys: %s)", id, app, strings.Join(shortIDs(d.KeyIDs), ", "))
			}
		}
		if t := r.opts.AppThreshold; t != 0 && t != d.Threshold {
			return fmt.Errorf("application %s already has threshold %d: a threshold is set at an application's first publish, and changed through targets", app, d.Threshold)
		}
	}
	return nil
}

// newAppKeys returns the keys of an application that has no delegation
// yet: the application keys given (Options.AppKeys), or the key file left
// in the offline keys directory by an earlier, failed publish, or nil
// (the caller creates that file once target files are in place).
func (r *Repo) newAppKeys(ctx context.Context, app string) ([]*roleKey, error) {
	threshold := max(r.opts.AppThreshold, 1)
	if n := len(r.opts.AppKeys); n > 0 {
		if threshold > n {
			return nil, fmt.Errorf("application %s: threshold %d needs at least %d application keys, %d given", app, threshold, threshold, n)
		}
		var ks []*roleKey
		for _, s := range r.opts.AppKeys {
			id, err := s.Key().ID()
			if err != nil {
				return nil, err
			}
			ks = append(ks, r.keys.byID[id])
		}
		return ks, nil
	}
	if threshold > 1 {
		return nil, fmt.Errorf("application %s: threshold %d needs %d application keys, none given", app, threshold, threshold)
	}
	dir := r.keyDir(app)
	if dir == "" {
		return nil, fmt.Errorf("new application %s needs a key: give its key, or the offline keys directory to create one in: %w", app, ErrMissingKey)
	}
	k, err := r.keys.openFile(ctx, filepath.Join(dir, keyName(app)), nil)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return []*roleKey{k}, nil
}

// addDelegation delegates release.Pattern(app), APP/*/*/*, to app's keys,
// terminating. go-tuf matches patterns segment by segment, so "APP/*" would
// match only APP/X, never APP/VERSION/OS-ARCH/FILE.
func addDelegation(t *targetsMD, app string, ks []*roleKey, threshold int) {
	d := t.Signed.Delegations
	if d == nil {
		d = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
		t.Signed.Delegations = d
	}
	var ids []string
	for _, k := range ks {
		d.Keys[k.id] = k.tuf
		ids = append(ids, k.id)
	}
	d.Roles = append(d.Roles, metadata.DelegatedRole{
		Name:        app,
		KeyIDs:      ids,
		Threshold:   threshold,
		Terminating: true,
		Paths:       []string{release.Pattern(app)},
	})
	sort.Slice(d.Roles, func(i, j int) bool { return d.Roles[i].Name < d.Roles[j].Name })
}

// copyWorkers is how many target files are written at once: each write
// waits for two fsyncs, so overlapping them is what makes large batches
// fast, not CPU.
const copyWorkers = 16

// writeTargetFiles copies every file to its consistent-snapshot name, a few
// at a time. Each copy is re-hashed while it is written, so a source file
// that changed since it was hashed is refused instead of published.
func writeTargetFiles(ctx context.Context, dir string, files []sourceFile) error {
	created, err := makeDirs(dir, files)
	if err != nil {
		return err
	}
	jobs := make(chan sourceFile)
	errs := make([]error, copyWorkers)
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for f := range jobs {
				if errs[w] == nil {
					errs[w] = copyTarget(ctx, dir, f)
				}
			}
		})
	}
	for _, f := range files {
		jobs <- f
	}
	close(jobs)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, d := range slices.Backward(created) {
			os.Remove(d) // only if still empty
		}
		return err
	}
	return nil
}

// makeDirs creates the target directories and returns those it created,
// parents first.
func makeDirs(dir string, files []sourceFile) ([]string, error) {
	var created []string
	for _, f := range files {
		var missing []string
		for d := filepath.Dir(filepath.Join(targetsDir(dir), filepath.FromSlash(f.entry.Path))); ; d = filepath.Dir(d) {
			if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
				break
			}
			missing = append(missing, d)
		}
		for _, d := range slices.Backward(missing) {
			if err := os.Mkdir(d, 0o755); err != nil {
				return created, fmt.Errorf("create target directory: %w", err)
			}
			created = append(created, d)
		}
	}
	return created, nil
}

func copyTarget(ctx context.Context, dir string, f sourceFile) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	src, err := os.Open(f.src)
	if err != nil {
		return err
	}
	defer src.Close()
	dst := filepath.Join(targetsDir(dir), filepath.FromSlash(storedName(f.entry)))
	return atomicfile.Write(dst, 0o644, func(w io.Writer) error {
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(src, f.entry.Length+1))
		if err != nil {
			return err
		}
		if n != f.entry.Length || !bytes.Equal(h.Sum(nil), f.sum) {
			return fmt.Errorf("%s changed while it was being published", f.src)
		}
		return nil
	})
}

func sortEntries(es []Entry) {
	slices.SortFunc(es, compareEntries)
}

func compareEntries(a, b Entry) int {
	if c := strings.Compare(a.App, b.App); c != 0 {
		return c
	}
	if c := release.CompareVersions(a.Version, b.Version); c != 0 {
		return c
	}
	if c := strings.Compare(a.Platform, b.Platform); c != 0 {
		return c
	}
	return strings.Compare(a.Path, b.Path)
}
