package repo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/ferry-updates/ferry/internal/sentinel"
	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/rollout"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Remote publishing: an application's release pipeline signs the next
// version of its own role with its own key (SignRelease) and hands the
// signed bytes and the new files to the server, which checks them against
// the delegation in targets and publishes them with its online keys only
// (PublishUpload). The server never needs the application's key, and the
// publisher never needs an online key.

var (
	// ErrNoDelegation means targets delegates nothing to the application.
	ErrNoDelegation = errors.New("application has no delegation")
	// ErrRefused means an uploaded role does not satisfy its delegation:
	// signatures below threshold, paths outside the delegation, or a file
	// that does not match what the role signed. It is fetch.ErrRefused and
	// client.ErrRefused (one value, see internal/sentinel).
	ErrRefused = sentinel.ErrRefused
	// ErrStaleRole means an uploaded role's version is not above the
	// published one (another release got there first, or a replay).
	ErrStaleRole = errors.New("role version is not newer than the published one")
)

// Upload is an application role signed elsewhere, checked against the
// repository's current state.
type Upload struct {
	App     string
	Version int64    // the uploaded role's version
	New     []Entry  // targets the role adds; each needs its file uploaded
	KeyIDs  []string // the keys whose signatures on the role verified, sorted
	// MinVersion is the minimum safe version the role signs, when it adds
	// or changes it (SignPolicy); "" otherwise. Its target needs no
	// uploaded file: the file is the signed custom metadata.
	MinVersion string
	role       *targetsMD
	raw        []byte
	policy     []dataTarget // the policy target's file, when added or changed
}

// Want is the total length of the files the upload still needs.
func (u *Upload) Want() int64 {
	var n int64
	for _, e := range u.New {
		n += e.Length
	}
	return n
}

// CheckUpload checks role, the signed metadata of application app, against
// the repository as it is now, without taking the lock or writing anything:
// a server calls it before it accepts the files, so that nothing is read
// for an upload that is refused anyway. PublishUpload checks again.
func (r *Repo) CheckUpload(ctx context.Context, app string, role []byte) (*Upload, error) {
	st, err := loadState(r.dir)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	u, err := r.checkUpload(st, app, role)
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", app, err)
	}
	return u, nil
}

// PublishUpload publishes an application role signed elsewhere: role is
// the signed metadata of application app, files the local paths of the
// targets it adds (in any order; each is matched by length and sha256).
// Under the same lock and in the same order as Publish, it writes the
// target files, the role as uploaded, and a snapshot and timestamp signed
// with the online keys. It refuses, changing nothing: a role not signed by
// the delegation's keys and threshold, or with paths outside it
// (ErrRefused); a role whose version is not above the published one
// (ErrStaleRole); a role that changes or removes a published target, or
// adds a file to a published release (ErrImmutable); and files missing,
// extra or different from what the role signed (ErrRefused).
func (r *Repo) PublishUpload(ctx context.Context, app string, role []byte, files []string) (Result, error) {
	return r.PublishUploadWith(ctx, app, role, files, UploadOptions{})
}

// UploadOptions are the server's choices for an upload (PublishUploadWith).
type UploadOptions struct {
	// Rollout, if set, is the rollout decision to record, in the same
	// commit, for the one version the upload adds, as Release.Rollout for
	// Publish: signed with the online rollout key, salt generated when
	// empty, recorded only if the decisions name no entry for the version
	// yet. An upload that adds no release, or several versions, cannot
	// take one.
	Rollout *rollout.Entry
}

// PublishUploadWith is PublishUpload with the server's choices o.
func (r *Repo) PublishUploadWith(ctx context.Context, app string, role []byte, files []string, o UploadOptions) (Result, error) {
	res, err := r.publishUpload(ctx, app, role, files, o)
	if err != nil {
		return Result{}, fmt.Errorf("upload %s: %w", app, err)
	}
	return res, nil
}

func (r *Repo) publishUpload(ctx context.Context, app string, role []byte, files []string, o UploadOptions) (Result, error) {
	unlock, err := r.lock()
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	st, err := loadState(r.dir)
	if err != nil {
		return Result{}, err
	}
	u, err := r.checkUpload(st, app, role)
	if err != nil {
		return Result{}, err
	}
	src, err := matchFiles(ctx, u, files)
	if err != nil {
		return Result{}, err
	}
	old := st.apps[app]
	st.apps[app] = u.role
	docs, ch, err := uploadDecision(st, u, o, old)
	if err != nil {
		st.apps[app] = old
		return Result{}, err
	}
	// Decrypt the online keys before writing anything: a server without
	// them changes nothing.
	if _, err := r.signerKeys(ctx, st, ch); err != nil {
		return Result{}, err
	}
	if err := writeTargetFiles(ctx, r.dir, src); err != nil {
		return Result{}, err
	}
	if err := writeDataTargets(r.dir, append(u.policy, docs...)); err != nil {
		return Result{}, err
	}
	if err := r.fail("target-files"); err != nil {
		return Result{}, err
	}
	if err := writeMetadata(r.dir, fmt.Sprintf("%d.%s.json", u.Version, app), u.raw); err != nil {
		return Result{}, err
	}
	m, err := metaFor(app, u.Version, u.raw)
	if err != nil {
		return Result{}, err
	}
	st.snapshot.Signed.Meta[app+".json"] = m
	if err := r.fail("app-roles"); err != nil {
		return Result{}, err
	}
	if err := r.commit(ctx, st, ch); err != nil {
		return Result{}, err
	}
	res := Result{Published: slices.Clone(u.New)}
	sortEntries(res.Published)
	return res, nil
}

// uploadDecision plans o.Rollout for the release u adds (u's role already
// in st) and returns the decision files and the change to commit.
func uploadDecision(st *state, u *Upload, o UploadOptions, old *targetsMD) ([]dataTarget, change, error) {
	ch := change{snapshot: true}
	if o.Rollout == nil {
		return nil, ch, nil
	}
	var versions []string
	for _, e := range u.New {
		if !slices.Contains(versions, e.Version) {
			versions = append(versions, e.Version)
		}
	}
	if len(versions) != 1 {
		return nil, ch, fmt.Errorf("a rollout decision goes with an upload of one new version; this one adds %d (%s)", len(versions), strings.Join(orNone(versions), ", "))
	}
	if old != nil && slices.Contains(roleVersions(old, u.App), versions[0]) {
		return nil, ch, nil // another platform of a signed version: its decision stays (see plan)
	}
	p := &publishPlan{}
	if err := p.addDecision(Release{App: u.App, Version: versions[0], Platform: u.New[0].Platform, Rollout: o.Rollout}); err != nil {
		return nil, ch, err
	}
	docs, err := planDecisions(st, p)
	ch.apps = p.ch.apps
	return docs, ch, err
}

// checkUpload checks an uploaded role against st (see PublishUpload).
func (r *Repo) checkUpload(st *state, app string, raw []byte) (*Upload, error) {
	if err := release.ValidApp(app); err != nil {
		return nil, err
	}
	d := delegationOf(st.targets, app)
	if d == nil {
		return nil, fmt.Errorf("%s: %w", app, ErrNoDelegation)
	}
	md, err := metadata.Targets().FromBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("upload %w: parse role %s: %v", ErrRefused, app, err)
	}
	if err := verify(st.targets, app, md); err != nil {
		return nil, fmt.Errorf("upload %w: role %s is not signed by %d of its delegated keys (%s): %v",
			ErrRefused, app, d.Threshold, strings.Join(d.KeyIDs, ", "), err)
	}
	if !md.Signed.Expires.After(r.now()) {
		return nil, fmt.Errorf("upload %w: role %s expired at %s", ErrRefused, app, md.Signed.Expires.UTC().Format("2006-01-02T15:04:05Z"))
	}
	if md.Signed.Delegations != nil {
		return nil, fmt.Errorf("upload %w: role %s delegates further; an application role may not", ErrRefused, app)
	}
	var cur int64
	old := map[string]*metadata.TargetFiles{}
	if o := st.apps[app]; o != nil {
		cur, old = o.Signed.Version, o.Signed.Targets
	}
	if md.Signed.Version <= cur {
		return nil, fmt.Errorf("role %s version %d, published %d: %w", app, md.Signed.Version, cur, ErrStaleRole)
	}
	if md.Signed.Version != cur+1 {
		return nil, fmt.Errorf("upload %w: role %s version %d skips versions: published %d, the next must be %d",
			ErrRefused, app, md.Signed.Version, cur, cur+1)
	}
	u := &Upload{App: app, Version: md.Signed.Version, role: md, raw: raw, KeyIDs: signedBy(d, st.targets, md)}
	if u.New, err = newTargets(d, old, md.Signed.Targets); err != nil {
		return nil, err
	}
	if err := u.checkPolicy(old); err != nil {
		return nil, err
	}
	return u, nil
}

// checkPolicy checks the policy target of an uploaded role, if it adds or
// changes one: the target is exactly the policy's signed bytes (custom
// metadata, length and sha256 agree), for this application, naming a
// release the role signs. A role may not remove a published policy.
func (u *Upload) checkPolicy(old map[string]*metadata.TargetFiles) error {
	pp := rollout.PolicyPath(u.App)
	was, t := old[pp], u.role.Signed.Targets[pp]
	switch {
	case t == nil && was != nil:
		return fmt.Errorf("upload %w: the role removes the minimum safe version (%s); sign a new one instead", ErrRefused, pp)
	case t == nil || was != nil && sameTarget(was, t) == nil:
		return nil
	}
	bad := func(why string, args ...any) error {
		return fmt.Errorf("upload %w: minimum safe version target %s: %s", ErrRefused, pp, fmt.Sprintf(why, args...))
	}
	if t.Custom == nil {
		return bad("no custom metadata")
	}
	p, err := rollout.ParsePolicy(u.App, *t.Custom)
	if err != nil {
		return bad("%v", err)
	}
	sum := sha256.Sum256(*t.Custom)
	if t.Length != int64(len(*t.Custom)) || len(t.Hashes) != 1 || !bytes.Equal(t.Hashes["sha256"], sum[:]) {
		return bad("its length and sha256 are not those of its custom metadata")
	}
	if versions := roleVersions(u.role, u.App); !slices.Contains(versions, p.MinVersion) {
		return bad("%s is not a release the role signs (%s)", p.MinVersion, strings.Join(orNone(versions), ", "))
	}
	// The minimum goes down only when the application key signed that it
	// lowers exactly the published one (F0): a pipeline that signed on
	// top of an old role a stolen server gave it never does so.
	published := ""
	if was != nil && was.Custom != nil {
		if q, err := rollout.ParsePolicy(u.App, *was.Custom); err == nil {
			published = q.MinVersion
		}
	}
	lowers := published != "" && release.CompareVersions(p.MinVersion, published) < 0
	switch {
	case lowers && p.LoweredFrom != published:
		return fmt.Errorf("upload %w: the role lowers the minimum safe version from %s to %s without signing that it lowers %s (ferry release min-version --lower-min)",
			ErrRefused, published, p.MinVersion, published)
	case !lowers && p.LoweredFrom != "" && published == "":
		return bad("it signs that it lowers the minimum from %s, but none is published", p.LoweredFrom)
	case !lowers && p.LoweredFrom != "":
		return bad("it signs that it lowers the minimum from %s, but the published minimum is %s", p.LoweredFrom, published)
	}
	u.MinVersion = p.MinVersion
	u.policy = []dataTarget{{path: pp, data: slices.Clone(*t.Custom), sum: sum}}
	return nil
}

func delegationOf(t *targetsMD, app string) *metadata.DelegatedRole {
	if t.Signed.Delegations == nil {
		return nil
	}
	for i, d := range t.Signed.Delegations.Roles {
		if d.Name == app {
			return &t.Signed.Delegations.Roles[i]
		}
	}
	return nil
}

// newTargets returns the targets of next that old lacks, checking that
// every published target is kept as it is, that no published release gains
// a file, and that each new target is a well-formed ferry target inside the
// delegation.
func newTargets(d *metadata.DelegatedRole, old, next map[string]*metadata.TargetFiles) ([]Entry, error) {
	published := map[string]bool{} // release directories
	pp := rollout.PolicyPath(d.Name)
	for p, t := range old {
		if p == pp {
			continue // may change: checkPolicy
		}
		published[path.Dir(p)] = true
		n, ok := next[p]
		if !ok {
			return nil, fmt.Errorf("the role removes published target %s: %w", p, ErrImmutable)
		}
		if err := sameTarget(t, n); err != nil {
			return nil, fmt.Errorf("the role changes published target %s (%s): %w", p, err, ErrImmutable)
		}
	}
	var out []Entry
	for _, p := range sortedKeys(next) {
		if _, ok := old[p]; ok || p == pp {
			continue
		}
		e, err := uploadedEntry(d, p, next[p])
		if err != nil {
			return nil, err
		}
		if published[path.Dir(p)] {
			return nil, fmt.Errorf("the role adds %s to the published release %s: %w", p, e.Release, ErrImmutable)
		}
		out = append(out, e)
	}
	return out, checkManifests(out, next)
}

// checkManifests refuses new releases whose files' manifests disagree
// (release.CheckManifest): a client would refuse them (R48).
func checkManifests(es []Entry, next map[string]*metadata.TargetFiles) error {
	byRelease := map[string]map[string]release.FileSig{}
	for _, e := range es {
		c, err := signedCustom(next[e.Path])
		if err != nil {
			return fmt.Errorf("upload %w: target %s: %v", ErrRefused, e.Path, err)
		}
		dir := path.Dir(e.Path)
		if byRelease[dir] == nil {
			byRelease[dir] = map[string]release.FileSig{}
		}
		byRelease[dir][path.Base(e.Path)] = release.FileSig{SHA256: e.SHA256, Files: c.Files}
	}
	for _, dir := range sortedKeys(byRelease) {
		if err := release.CheckManifest(byRelease[dir]); err != nil {
			return fmt.Errorf("upload %w: release %s: %v", ErrRefused, dir, err)
		}
	}
	return nil
}

func sameTarget(a, b *metadata.TargetFiles) error {
	if a.Length != b.Length || len(a.Hashes) != len(b.Hashes) {
		return fmt.Errorf("length %d, now %d", a.Length, b.Length)
	}
	for alg, h := range a.Hashes {
		if !bytes.Equal(h, b.Hashes[alg]) {
			return fmt.Errorf("%s %x, now %x", alg, []byte(h), []byte(b.Hashes[alg]))
		}
	}
	if (a.Custom == nil) != (b.Custom == nil) || a.Custom != nil && !bytes.Equal(*a.Custom, *b.Custom) {
		return errors.New("other custom metadata")
	}
	return nil
}

// uploadedEntry checks one new target of an uploaded role: inside the
// delegation's paths, APP/VERSION/OS-ARCH/FILE with valid parts, custom
// metadata that says the same, one sha256 hash.
func uploadedEntry(d *metadata.DelegatedRole, p string, t *metadata.TargetFiles) (Entry, error) {
	bad := func(why string, args ...any) (Entry, error) {
		return Entry{}, fmt.Errorf("upload %w: target %s: %s", ErrRefused, p, fmt.Sprintf(why, args...))
	}
	if ok, err := d.IsDelegatedPath(p); err != nil || !ok {
		return bad("outside the delegation's paths %s", strings.Join(d.Paths, ", "))
	}
	rel, err := parseTargetPath(p)
	if err != nil {
		return bad("%v", err)
	}
	e, err := entryOf(p, t)
	if err != nil {
		return bad("%v", err)
	}
	if err := e.Release.custom().Matches(rel); err != nil {
		return bad("%v", err)
	}
	if rel.App != d.Name {
		return bad("not a path of application %s", d.Name)
	}
	if len(t.Hashes) != 1 || len(t.Hashes["sha256"]) != 32 || t.Length < 0 {
		return bad("want exactly one sha256 hash and a length")
	}
	return e, nil
}

// parseTargetPath parses APP/VERSION/OS-ARCH/FILE with package release's
// rules; the platform must also be one Go can build for, as for Publish.
func parseTargetPath(p string) (release.Path, error) {
	rp, err := release.ParsePath(p)
	if err != nil {
		return release.Path{}, err
	}
	if err := release.KnownPlatform(rp.Platform); err != nil {
		return release.Path{}, err
	}
	return rp, nil
}

// matchFiles hashes every uploaded file and pairs each new target with a
// file of its length and sha256. A target without a file, or a file that no
// new target names, is refused.
func matchFiles(ctx context.Context, u *Upload, files []string) ([]sourceFile, error) {
	bySum := map[string]sourceFile{}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sf, err := hashSource(Release{}, f)
		if err != nil {
			return nil, err
		}
		bySum[fmt.Sprintf("%s-%d", sf.entry.SHA256, sf.entry.Length)] = sf
	}
	used := map[string]bool{}
	var out []sourceFile
	for _, e := range u.New {
		key := fmt.Sprintf("%s-%d", e.SHA256, e.Length)
		sf, ok := bySum[key]
		if !ok {
			return nil, fmt.Errorf("upload %w: no uploaded file for %s (%d bytes, sha256 %s)", ErrRefused, e.Path, e.Length, e.SHA256)
		}
		used[key] = true
		t := u.role.Signed.Targets[e.Path]
		sum, _ := hex.DecodeString(e.SHA256)
		out = append(out, sourceFile{src: sf.src, entry: e, sum: sum, meta: e.Release.custom(), custom: json.RawMessage(*t.Custom)})
	}
	for key, sf := range bySum {
		if !used[key] {
			return nil, fmt.Errorf("upload %w: uploaded file %s (%d bytes, sha256 %s) is not a new target of the role",
				ErrRefused, sf.src, sf.entry.Length, sf.entry.SHA256)
		}
	}
	return out, nil
}

// AppRole returns the signed metadata of application app's role as the
// repository publishes it now: what a remote publisher signs its next
// release on top of. It needs no passphrase. An application without a
// delegation is ErrNoDelegation; a delegated one without a role yet
// returns nil, nil.
func (r *Repo) AppRole(ctx context.Context, app string) ([]byte, error) {
	if err := release.ValidApp(app); err != nil {
		return nil, err
	}
	st, err := loadState(r.dir)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if delegationOf(st.targets, app) == nil {
		return nil, fmt.Errorf("%s: %w", app, ErrNoDelegation)
	}
	if st.apps[app] == nil {
		return nil, nil // delegated, no role signed yet
	}
	return readReferenced(metadataDir(r.dir), app, st.snapshot.Signed.Meta[app+".json"])
}

// signedBy returns the delegated keys whose signatures on md verify.
func signedBy(d *metadata.DelegatedRole, parent *targetsMD, md *targetsMD) []string {
	var out []string
	for _, id := range d.KeyIDs {
		k := parent.Signed.Delegations.Keys[id]
		if k == nil {
			continue
		}
		one := metadata.Targets()
		one.Signed.Delegations = &metadata.Delegations{
			Keys:  map[string]*metadata.Key{id: k},
			Roles: []metadata.DelegatedRole{{Name: d.Name, KeyIDs: []string{id}, Threshold: 1, Paths: d.Paths}},
		}
		if verify(one, d.Name, md) == nil {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}
