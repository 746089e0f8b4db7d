package trust

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/ferry-updates/ferry/event"
)

// state is a trusted set of metadata. A refresh works on a copy and
// replaces the Client's state only when it succeeds.
type state struct {
	root    *metadata.Metadata[metadata.RootType]
	ts      *metadata.Metadata[metadata.TimestampType]
	tsDoc   *doc
	snap    *metadata.Metadata[metadata.SnapshotType]
	snapDoc *doc
	targets *held
	// Delegated roles verified against the current snapshot, and the
	// (delegator, role) edges each has been verified through.
	roles map[string]*held
	edges map[[2]string]bool
}

// held is a verified targets role with what is needed to verify it again
// against another delegator.
type held struct {
	md  *metadata.Metadata[metadata.TargetsType]
	d   *doc
	raw []byte // top-level targets only
}

func newState(root *metadata.Metadata[metadata.RootType]) *state {
	return &state{root: root, roles: map[string]*held{}, edges: map[[2]string]bool{}}
}

func (s *state) clone() *state { c := *s; return &c }

func (s *state) dropDelegated() {
	s.roles, s.edges = map[string]*held{}, map[[2]string]bool{}
}

// refresh is one run of the client workflow (spec 5.3-5.5).
type refresh struct {
	c   *Client
	ctx context.Context
	src Source
	ref time.Time
	st  *state
	tm  *trustedmetadata.TrustedMetadata // go-tuf's checks, run after ours as a backstop
}

func (r *refresh) run() error {
	start, hadTS := r.st.root, r.st.ts != nil
	if err := r.rootChain(); err != nil {
		return err
	}
	if !hadTS && r.st.root != start {
		r.reloadCached()
	}
	if exp := r.st.root.Signed.Expires; r.ref.After(exp) { // 5.3.10
		return expired(metadata.ROOT, exp, r.ref)
	}
	r.tm = &trustedmetadata.TrustedMetadata{
		Root: sanitizeRoot(r.st.root), Timestamp: r.st.ts,
		Targets: map[string]*metadata.Metadata[metadata.TargetsType]{}, RefTime: r.ref,
	}
	changed, err := r.timestamp()
	if err != nil {
		return err
	}
	if !changed && r.complete() { // fast path: nothing else fetched or parsed
		return r.checkExpiry()
	}
	if err := r.snapshot(); err != nil {
		return err
	}
	if err := r.targets(); err != nil {
		return err
	}
	return r.checkExpiry()
}

func (r *refresh) fetch(name string, maxLen int64) ([]byte, error) {
	return fetchLimited(r.ctx, r.src, name, name, maxLen)
}

// fetchLimited fetches the file name from src, at most maxLen bytes; a
// Source that returns more is an ErrTooLarge rejection of role.
func fetchLimited(ctx context.Context, src Source, role, name string, maxLen int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := src.FetchMetadata(ctx, name, maxLen)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", name, err)
	}
	if int64(len(data)) > maxLen {
		return nil, secErr(ErrTooLarge, role, "metadata file exceeds its limit").want(maxLen, len(data))
	}
	return data, nil
}

func (r *refresh) save(role string, data []byte) error {
	if err := r.c.cfg.Store.Save(role, data); err != nil {
		return fmt.Errorf("persist %s: %w", role, err)
	}
	return nil
}

// rootChain follows N+1.root.json up to MaxRootRotations (5.3.2-5.3.9).
// Each new root is persisted as "N.root" (the chain New walks from the
// configured root) and as "root" (the newest, 5.3.8).
func (r *refresh) rootChain() error {
	start := r.st.root.Signed.Version
	for i := 0; i < r.c.cfg.MaxRootRotations; i++ {
		next := r.st.root.Signed.Version + 1
		data, err := r.fetch(fmt.Sprintf("%d.root.json", next), MaxRootLength)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrForbidden) { // S3-style hosts answer 403
			break
		}
		if err != nil {
			return err
		}
		nr, _, err := nextRoot(r.st.root, data)
		if err != nil {
			return err
		}
		if err := r.save(rootKey(next), data); err != nil { // 5.3.8
			return err
		}
		if err := r.save(metadata.ROOT, data); err != nil {
			return err
		}
		r.st.root = nr
	}
	if r.st.root.Signed.Version != start {
		r.fastForwardRecovery()
	}
	return nil
}

// nextRoot verifies data as the successor of the trusted root (5.3.4,
// 5.3.5): signed by the trusted root's threshold of root keys and by its
// own, with the next version number.
func nextRoot(trusted *metadata.Metadata[metadata.RootType], data []byte) (*metadata.Metadata[metadata.RootType], *doc, error) {
	nr, d, err := decode[metadata.RootType](metadata.ROOT, metadata.ROOT, data)
	if err != nil {
		return nil, nil, err
	}
	if err := verifyByRoot(trusted, metadata.ROOT, d); err != nil { // 5.3.4 old threshold
		return nil, nil, withVersions(err, "trusted root", trusted.Signed.Version, nr.Signed.Version)
	}
	if err := verifyByRoot(nr, metadata.ROOT, d); err != nil { // 5.3.4 new threshold
		return nil, nil, withVersions(err, "new root", trusted.Signed.Version, nr.Signed.Version)
	}
	if next, v := trusted.Signed.Version+1, nr.Signed.Version; v != next { // 5.3.5
		return nil, nil, secErr(ErrInvalid, metadata.ROOT, "root versions must be consecutive").want(next, v)
	}
	return nr, d, nil
}

// reloadCached trusts the cached timestamp, snapshot and targets that New
// could not verify against the root it started from because a root
// reached only now signs them (the stored chain was broken, or the state
// was written before intermediate roots were kept), so that this refresh
// has its rollback references (5.4.3, 5.5.5). As in fastForwardRecovery,
// timestamp and snapshot are kept only together, both verified by the
// current root. New has already reported these files, so failures here
// are not reported again.
func (r *refresh) reloadCached() {
	tmp := newState(r.st.root)
	r.c.loadCached(tmp, func(string, string) {})
	if tmp.ts == nil || tmp.snap == nil {
		return
	}
	r.st.ts, r.st.tsDoc, r.st.snap, r.st.snapDoc, r.st.targets = tmp.ts, tmp.tsDoc, tmp.snap, tmp.snapDoc, tmp.targets
	r.c.emit(event.MetadataCacheReload, "timestamp,snapshot", "cached metadata verified by a root reached in this refresh")
}

// fastForwardRecovery (5.3.11): trusted timestamp, snapshot and targets
// that the new root's keys no longer sign are forgotten, so a version
// pushed to the maximum with a compromised key cannot lock clients out.
func (r *refresh) fastForwardRecovery() {
	st := r.st
	st.dropDelegated()
	if st.ts == nil {
		return
	}
	tsErr := verifyByRoot(st.root, metadata.TIMESTAMP, st.tsDoc)
	var snapErr error
	if st.snap != nil {
		snapErr = verifyByRoot(st.root, metadata.SNAPSHOT, st.snapDoc)
	}
	if tsErr != nil || snapErr != nil {
		r.c.emit(event.MetadataRecovered, "timestamp,snapshot", "keys rotated: trusted timestamp and snapshot forgotten")
		st.ts, st.tsDoc, st.snap, st.snapDoc, st.targets = nil, nil, nil, nil, nil
		return
	}
	if st.targets != nil && verifyByRoot(st.root, metadata.TARGETS, st.targets.d) != nil {
		r.c.emit(event.MetadataRecovered, metadata.TARGETS, "keys rotated: trusted targets forgotten")
		st.targets = nil
	}
}

// timestamp runs 5.4 and reports whether a new timestamp was trusted.
func (r *refresh) timestamp() (bool, error) {
	data, err := r.fetch("timestamp.json", MaxTimestampLength)
	if err != nil {
		return false, err
	}
	ts, d, err := decode[metadata.TimestampType](metadata.TIMESTAMP, metadata.TIMESTAMP, data)
	if err != nil {
		return false, err
	}
	if err := verifyByRoot(r.st.root, metadata.TIMESTAMP, d); err != nil { // 5.4.2
		return false, err
	}
	newSnap := ts.Signed.Meta["snapshot.json"]
	if newSnap == nil {
		return false, secErr(ErrInvalid, metadata.TIMESTAMP, "no meta for snapshot.json")
	}
	if old := r.st.ts; old != nil { // 5.4.3
		ov, nv := old.Signed.Version, ts.Signed.Version
		if nv < ov {
			return false, rollback(metadata.TIMESTAMP, ov, nv)
		}
		if nv == ov {
			return false, nil
		}
		if osv := old.Signed.Meta["snapshot.json"]; osv != nil && newSnap.Version < osv.Version {
			return false, rollback(metadata.SNAPSHOT, osv.Version, newSnap.Version)
		}
	}
	if exp := ts.Signed.Expires; r.ref.After(exp) { // 5.4.4
		return false, expired(metadata.TIMESTAMP, exp, r.ref)
	}
	if err := backstop(metadata.TIMESTAMP, func() error { _, err := r.tm.UpdateTimestamp(data); return err }); err != nil {
		return false, err
	}
	if err := r.save(metadata.TIMESTAMP, data); err != nil { // 5.4.5
		return false, err
	}
	r.st.ts, r.st.tsDoc = ts, d
	return true, nil
}

// complete reports whether the held snapshot and targets are the ones the
// held timestamp and snapshot name.
func (r *refresh) complete() bool {
	st := r.st
	sm := st.ts.Signed.Meta["snapshot.json"]
	if st.snap == nil || st.targets == nil || st.snap.Signed.Version != sm.Version {
		return false
	}
	tm := st.snap.Signed.Meta["targets.json"]
	return tm != nil && st.targets.md.Signed.Version == tm.Version
}

// snapshot runs 5.5.
func (r *refresh) snapshot() error {
	meta := r.st.ts.Signed.Meta["snapshot.json"]
	if r.st.snap != nil && r.st.snap.Signed.Version == meta.Version {
		return nil // already trusted (timestamp re-signed without a new snapshot)
	}
	name := "snapshot.json"
	if r.st.root.Signed.ConsistentSnapshot {
		name = fmt.Sprintf("%d.snapshot.json", meta.Version)
	}
	data, err := r.fetch(name, limit(meta.Length, MaxSnapshotLength))
	if err != nil {
		return err
	}
	snap, d, err := r.c.checkSnapshot(r.st, data, false)
	if err != nil {
		return err
	}
	if exp := snap.Signed.Expires; r.ref.After(exp) { // 5.5.6
		return expired(metadata.SNAPSHOT, exp, r.ref)
	}
	r.tm.Snapshot = r.st.snap
	if err := backstop(metadata.SNAPSHOT, func() error { _, err := r.tm.UpdateSnapshot(data, false); return err }); err != nil {
		return err
	}
	if err := r.save(metadata.SNAPSHOT, data); err != nil { // 5.5.7
		return err
	}
	r.st.snap, r.st.snapDoc = snap, d
	r.st.dropDelegated()
	return nil
}

// checkSnapshot verifies snapshot bytes against the state's root and
// timestamp (5.5.2-5.5.5).
//
// Cached bytes (saved by an earlier refresh after they verified) are
// trusted like go-tuf's and python-tuf's isTrusted path: only the signature
// is checked. Neither the hash nor the version is compared with the cached
// timestamp's, because a refresh persists a new timestamp before its
// snapshot verifies: the cached snapshot may be older than the timestamp
// names, and it must stay trusted as the reference of the rollback check
// (5.5.5) for the next snapshot. A snapshot loaded this way is never final:
// Refresh fetches the one the timestamp names (5.5.4 applies to it) before
// targets are trusted or a refresh succeeds.
func (c *Client) checkSnapshot(st *state, data []byte, cached bool) (*metadata.Metadata[metadata.SnapshotType], *doc, error) {
	meta := st.ts.Signed.Meta["snapshot.json"]
	if meta == nil {
		return nil, nil, secErr(ErrInvalid, metadata.TIMESTAMP, "no meta for snapshot.json")
	}
	if !cached {
		if err := meta.VerifyLengthHashes(data); err != nil { // 5.5.2
			return nil, nil, secErr(ErrMismatch, metadata.SNAPSHOT, "length or hash differs from timestamp's").wrap(err)
		}
	}
	snap, d, err := decode[metadata.SnapshotType](metadata.SNAPSHOT, metadata.SNAPSHOT, data)
	if err != nil {
		return nil, nil, err
	}
	if err := verifyByRoot(st.root, metadata.SNAPSHOT, d); err != nil { // 5.5.3
		return nil, nil, err
	}
	if v := snap.Signed.Version; !cached && v != meta.Version { // 5.5.4
		return nil, nil, secErr(ErrMismatch, metadata.SNAPSHOT, "version differs from timestamp's").want(meta.Version, v)
	}
	if st.snap != nil { // 5.5.5
		for name, old := range st.snap.Signed.Meta {
			nm := snap.Signed.Meta[name]
			if nm == nil {
				return nil, nil, secErr(ErrRollback, name, "removed from snapshot").want("present", "absent")
			}
			if old != nil && nm.Version < old.Version {
				return nil, nil, rollback(name, old.Version, nm.Version)
			}
		}
	}
	return snap, d, nil
}

// targets runs 5.6 for the top-level targets role.
func (r *refresh) targets() error {
	meta := r.st.snap.Signed.Meta["targets.json"]
	if meta == nil {
		return secErr(ErrInvalid, metadata.SNAPSHOT, "no meta for targets.json")
	}
	if t := r.st.targets; t != nil && t.md.Signed.Version == meta.Version && meta.VerifyLengthHashes(t.raw) == nil {
		return nil // unchanged
	}
	name := "targets.json"
	if r.st.root.Signed.ConsistentSnapshot {
		name = fmt.Sprintf("%d.targets.json", meta.Version)
	}
	data, err := r.fetch(name, limit(meta.Length, MaxTargetsLength))
	if err != nil {
		return err
	}
	t, err := r.c.checkTargets(r.st, data, false)
	if err != nil {
		return err
	}
	if exp := t.md.Signed.Expires; r.ref.After(exp) { // 5.6.5
		return expired(metadata.TARGETS, exp, r.ref)
	}
	r.tm.Snapshot = r.st.snap
	if err := backstop(metadata.TARGETS, func() error { _, err := r.tm.UpdateTargets(data); return err }); err != nil {
		return err
	}
	if err := r.save(metadata.TARGETS, data); err != nil { // 5.6.6
		return err
	}
	r.st.targets = t
	return nil
}

// checkTargets verifies top-level targets bytes against the state's root
// and snapshot (5.6.2-5.6.4).
func (c *Client) checkTargets(st *state, data []byte, cached bool) (*held, error) {
	meta := st.snap.Signed.Meta["targets.json"]
	if meta == nil {
		return nil, secErr(ErrInvalid, metadata.SNAPSHOT, "no meta for targets.json")
	}
	if !cached {
		if err := meta.VerifyLengthHashes(data); err != nil {
			return nil, secErr(ErrMismatch, metadata.TARGETS, "length or hash differs from snapshot's").wrap(err)
		}
	}
	md, d, err := decode[metadata.TargetsType](metadata.TARGETS, metadata.TARGETS, data)
	if err != nil {
		return nil, err
	}
	if err := verifyByRoot(st.root, metadata.TARGETS, d); err != nil {
		return nil, err
	}
	if v := md.Signed.Version; v != meta.Version {
		return nil, secErr(ErrMismatch, metadata.TARGETS, "version differs from snapshot's").want(meta.Version, v)
	}
	return &held{md: md, d: d, raw: data}, nil
}

// checkExpiry judges everything held against the refresh's reference time.
func (r *refresh) checkExpiry() error {
	st := r.st
	for _, e := range []struct {
		role string
		exp  time.Time
	}{
		{metadata.ROOT, st.root.Signed.Expires},
		{metadata.TIMESTAMP, st.ts.Signed.Expires},
		{metadata.SNAPSHOT, st.snap.Signed.Expires},
		{metadata.TARGETS, st.targets.md.Signed.Expires},
	} {
		if r.ref.After(e.exp) {
			return expired(e.role, e.exp, r.ref)
		}
	}
	return nil
}

// limit is the most bytes to read for a file whose parent gives length
// (0: none): the signed length, but never more than the role's maximum, so
// a parent signed with a huge length cannot make a Source reserve or read
// unbounded memory.
func limit(length, max int64) int64 {
	if length > 0 {
		return min(length, max)
	}
	return max
}

func expired(role string, exp, ref time.Time) *SecurityError {
	e := secErr(ErrExpired, role, "judged at the refresh's start time")
	e.Expected = "expires after " + ref.Format(time.RFC3339)
	e.Got = exp.Format(time.RFC3339)
	return e
}

func rollback(role string, trusted, got int64) *SecurityError {
	e := secErr(ErrRollback, role, "version lower than trusted").want(fmt.Sprintf(">= %d", trusted), got)
	e.Versions = fmt.Sprintf("trusted=%d new=%d", trusted, got)
	return e
}

func withVersions(err error, which string, trusted, got int64) error {
	var se *SecurityError
	if errors.As(err, &se) {
		se.Versions = fmt.Sprintf("trusted=%d new=%d", trusted, got)
		se.Reason = "not signed by the " + which + "'s threshold"
	}
	return err
}

// backstop runs one of go-tuf's trustedmetadata checks after ferry's own,
// turning any rejection (or panic) into a SecurityError.
func backstop(role string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = secErr(ErrInvalid, role, fmt.Sprintf("panic in go-tuf check: %v", r))
		}
	}()
	err = f()
	if err == nil {
		return nil
	}
	kind := ErrInvalid
	switch {
	case errors.As(err, new(*metadata.ErrUnsignedMetadata)):
		kind = ErrBadSignature
	case errors.As(err, new(*metadata.ErrBadVersionNumber)), errors.As(err, new(*metadata.ErrEqualVersionNumber)):
		kind = ErrRollback
	case errors.As(err, new(*metadata.ErrExpiredMetadata)):
		kind = ErrExpired
	case errors.As(err, new(*metadata.ErrLengthOrHashMismatch)):
		kind = ErrMismatch
	}
	return secErr(kind, role, "rejected by go-tuf trustedmetadata").wrap(err)
}
