package repo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/internal/atomicfile"
	"github.com/ferry-updates/ferry/trust"
)

// A ceremony changes an offline-signed role (root, or targets) without its
// keys ever meeting: ProposeRoot or ProposeTargets writes the new role's
// signed part into a Proposal, each holder adds a signature with
// Proposal.Sign on their own machine, and PublishProposal checks the
// signatures exactly as clients will and publishes the role.

// ErrBelowThreshold is wrapped by PublishProposal when a threshold is not
// met; the error is a *ThresholdError naming the missing key IDs.
var ErrBelowThreshold = errors.New("not enough signatures")

// ErrStale means the repository changed since the proposal was made.
var ErrStale = errors.New("the repository changed since the proposal was made")

// ThresholdError says, for each threshold a proposal must meet, how many
// distinct keys signed and which did not.
type ThresholdError struct {
	Role    string
	Tallies []NamedTally
}

// NamedTally is one requirement's count.
type NamedTally struct {
	Name string
	trust.Tally
}

func (e *ThresholdError) Error() string {
	var parts []string
	for _, t := range e.Tallies {
		s := fmt.Sprintf("%s: %d of %d signatures", t.Name, len(t.Signed), t.Threshold)
		if !t.Met() {
			s += fmt.Sprintf(" (not signed by keys %s)", strings.Join(shortIDs(t.Missing), ", "))
		}
		parts = append(parts, s)
	}
	return fmt.Sprintf("%s proposal: %v: %s", e.Role, ErrBelowThreshold, strings.Join(parts, "; "))
}

func (e *ThresholdError) Unwrap() error { return ErrBelowThreshold }

// RootChange is an edit of the root role.
type RootChange struct {
	AddKeys    []*metadata.Key // new root keys (public keys their holders made)
	RemoveKeys []string        // root key IDs to remove
	Threshold  int             // new root threshold; 0 keeps the current one
	// Rotate lists roles (timestamp, snapshot, targets) whose key is
	// replaced by a new one, generated now into the repository as a
	// pending key that publish puts in place.
	Rotate []string
}

// ProposeRoot returns a proposal for the next root version: the current
// root with ch applied and a fresh expiry. It changes nothing in the
// repository except for the pending keys of rotated roles.
func (r *Repo) ProposeRoot(ctx context.Context, ch RootChange) (*Proposal, error) {
	p, err := r.proposeRoot(ctx, ch)
	if err != nil {
		return nil, fmt.Errorf("propose root: %w", err)
	}
	return p, nil
}

func (r *Repo) proposeRoot(ctx context.Context, ch RootChange) (*Proposal, error) {
	st, err := r.loadState()
	if err != nil {
		return nil, err
	}
	cur, err := currentRootBytes(r.dir, st.root)
	if err != nil {
		return nil, err
	}
	next, err := metadata.Root().FromBytes(cur)
	if err != nil {
		return nil, err
	}
	nr := &next.Signed
	if err := editRootKeys(nr, ch); err != nil {
		return nil, err
	}
	for _, role := range ch.Rotate {
		if err := r.rotateInRoot(ctx, nr, role); err != nil {
			return nil, err
		}
	}
	if nr.Version, err = nextVersion(metadata.ROOT, nr.Version); err != nil {
		return nil, err
	}
	nr.Expires = expiry(r.now(), r.settings.exp.Root)
	old := st.root.Signed
	return newProposal(metadata.ROOT, cur, old.Version, nr, []Requirement{
		requirement(fmt.Sprintf("current root (version %d)", old.Version), old.Keys, old.Roles[metadata.ROOT]),
		requirement(fmt.Sprintf("new root (version %d)", nr.Version), nr.Keys, nr.Roles[metadata.ROOT]),
	})
}

func editRootKeys(nr *metadata.RootType, ch RootChange) error {
	for _, k := range ch.AddKeys {
		id, err := k.ID()
		if err != nil {
			return err
		}
		if slices.Contains(nr.Roles[metadata.ROOT].KeyIDs, id) {
			return fmt.Errorf("key %s is already a root key", id)
		}
		if err := nr.AddKey(k, metadata.ROOT); err != nil {
			return err
		}
	}
	for _, id := range ch.RemoveKeys {
		if !slices.Contains(nr.Roles[metadata.ROOT].KeyIDs, id) {
			return fmt.Errorf("key %s is not a root key", id)
		}
		if err := nr.RevokeKey(id, metadata.ROOT); err != nil {
			return err
		}
	}
	rr := nr.Roles[metadata.ROOT]
	if ch.Threshold != 0 {
		rr.Threshold = ch.Threshold
	}
	if rr.Threshold < 1 || rr.Threshold > len(rr.KeyIDs) {
		return fmt.Errorf("root threshold %d with %d root keys: want 1 to %d", rr.Threshold, len(rr.KeyIDs), len(rr.KeyIDs))
	}
	return nil
}

// rotateInRoot replaces every key of role in nr by a new pending key.
func (r *Repo) rotateInRoot(ctx context.Context, nr *metadata.RootType, role string) error {
	switch role {
	case metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS:
	case metadata.ROOT:
		return errors.New("root keys are held by their holders: rotate them with --add-key and --remove-key")
	default:
		return fmt.Errorf("cannot rotate %q in root: want timestamp, snapshot or targets (an application's key is rotated by a targets change)", role)
	}
	k, err := r.generatePending(ctx, role)
	if err != nil {
		return err
	}
	for _, id := range slices.Clone(nr.Roles[role].KeyIDs) {
		if err := nr.RevokeKey(id, role); err != nil {
			return err
		}
	}
	return nr.AddKey(k.tuf, role)
}

func requirement(name string, ks map[string]*metadata.Key, role *metadata.Role) Requirement {
	rq := Requirement{Name: name, Threshold: role.Threshold, KeyIDs: slices.Clone(role.KeyIDs), Keys: map[string]*metadata.Key{}}
	for _, id := range role.KeyIDs {
		rq.Keys[id] = ks[id]
	}
	return rq
}

func newProposal(role string, base []byte, baseVersion int64, signed any, req []Requirement) (*Proposal, error) {
	canon, err := cjson.EncodeCanonical(signed)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(base) // for a first root (no base), the SHA-256 of nothing: genesisBase
	p := &Proposal{Role: role, Base: Base{Version: baseVersion, SHA256: hex.EncodeToString(sum[:])}, Requires: req, Signed: canon}
	if err := p.checkHeader(); err != nil {
		return nil, err
	}
	if _, err := checkSigned(role, baseVersion, jsonText(canon)); err != nil {
		return nil, err
	}
	return p, nil
}

// PublishProposal checks p's signatures against the repository's current
// keys, as clients will (each key counted once, however often or under
// however many IDs it signed; a new root needs the current root's
// threshold and its own), and publishes the new role: root or targets,
// then snapshot and timestamp re-signed with the online keys. Below a
// threshold it returns a *ThresholdError and changes nothing; if the
// repository changed since the proposal was made, an error wrapping
// ErrStale. Publishing a proposal that is already published completes any
// step an interrupted publish left undone and is otherwise a no-op.
func (r *Repo) PublishProposal(ctx context.Context, p *Proposal) error {
	return r.publishProposal(ctx, p, PublishOptions{})
}

func (r *Repo) publishProposal(ctx context.Context, p *Proposal, opts PublishOptions) error {
	unlock, err := r.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := p.checkKeys(); err != nil {
		return fmt.Errorf("publish %s proposal: %w", p.Role, err)
	}
	switch {
	case p.Role == metadata.ROOT && len(opts.Drop) > 0:
		err = fmt.Errorf("--drop is for a targets proposal that re-signs applications under new keys")
	case p.Role == metadata.ROOT:
		err = r.publishRoot(ctx, p)
	default:
		err = r.publishTargets(ctx, p, opts)
	}
	if err != nil {
		return fmt.Errorf("publish %s proposal: %w", p.Role, err)
	}
	return nil
}

// checkBase refuses a proposal made against other metadata than cur.
func checkBase(p *Proposal, version int64, cur []byte) error {
	sum := sha256.Sum256(cur)
	if p.Base.Version != version || p.Base.SHA256 != hex.EncodeToString(sum[:]) {
		return fmt.Errorf("%w: it changes %s version %d (sha256 %.12s), the repository has version %d (sha256 %.12x); propose again",
			ErrStale, p.Role, p.Base.Version, p.Base.SHA256, version, sum[:6])
	}
	return nil
}

// counted tallies p against each requirement and returns the metadata file
// with one signature per distinct key that counts, or a *ThresholdError.
func counted(p *Proposal, reqs []Requirement) ([]byte, error) {
	all := p.Metadata()
	te := &ThresholdError{Role: p.Role}
	keep := map[string]bool{}
	met := true
	for _, rq := range reqs {
		t, err := trust.CountSignatures(all, rq.Keys, rq.KeyIDs, rq.Threshold)
		if err != nil {
			return nil, err
		}
		te.Tallies = append(te.Tallies, NamedTally{Name: rq.Name, Tally: t})
		met = met && t.Met()
		for _, id := range t.Signed {
			keep[id] = true
		}
	}
	if !met {
		return nil, te
	}
	var sigs []metadata.Signature
	for _, s := range p.Signatures {
		if keep[s.KeyID] && validSignature(p.Signed, s, reqs) {
			sigs = append(sigs, s)
			delete(keep, s.KeyID) // one signature per key ID
		}
	}
	return envelope(p.Signed, sigs), nil
}

// validSignature reports whether s alone is a valid signature over signed
// by the key a requirement lists under s.KeyID (a key ID may carry a bad
// signature before a good one in a hand-edited file).
func validSignature(signed []byte, s metadata.Signature, reqs []Requirement) bool {
	for _, rq := range reqs {
		if _, ok := rq.Keys[s.KeyID]; !ok {
			continue
		}
		t, err := trust.CountSignatures(envelope(signed, []metadata.Signature{s}), rq.Keys, []string{s.KeyID}, 1)
		if err == nil && t.Met() {
			return true
		}
	}
	return false
}

// currentRootBytes returns the published file of the current root.
func currentRootBytes(dir string, root *rootMD) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(metadataDir(dir), fmt.Sprintf("%d.root.json", root.Signed.Version)))
	if err != nil {
		return nil, fmt.Errorf("read current root: %w", err)
	}
	return data, nil
}

// sameSigned reports whether md's signed part is canonically signed.
func sameSigned(md any, signed []byte) bool {
	var s any
	switch m := md.(type) {
	case *rootMD:
		s = m.Signed
	case *targetsMD:
		s = m.Signed
	}
	c, err := cjson.EncodeCanonical(s)
	return err == nil && bytes.Equal(c, signed)
}

func (r *Repo) publishRoot(ctx context.Context, p *Proposal) error {
	st, err := r.loadState()
	if errors.Is(err, ErrRootUnsigned) {
		return r.publishGenesisRoot(ctx, p)
	}
	if err != nil {
		return err
	}
	if st.root.Signed.Version == p.Base.Version+1 && sameSigned(st.root, p.Signed) {
		if done, err := rootFileCurrent(r.dir, st.root); err != nil || done {
			return err // already published
		}
		return r.finishRoot(ctx, st) // an interrupted publish left root.json behind
	}
	cur, err := currentRootBytes(r.dir, st.root)
	if err != nil {
		return err
	}
	if err := checkBase(p, st.root.Signed.Version, cur); err != nil {
		return err
	}
	nr, err := metadata.Root().FromBytes(envelope(p.Signed, nil))
	if err != nil {
		return err
	}
	old := st.root.Signed
	final, err := counted(p, []Requirement{
		requirement(fmt.Sprintf("current root (version %d)", old.Version), old.Keys, old.Roles[metadata.ROOT]),
		requirement(fmt.Sprintf("new root (version %d)", nr.Signed.Version), nr.Signed.Keys, nr.Signed.Roles[metadata.ROOT]),
	})
	if err != nil {
		return err
	}
	if err := trust.VerifyNextRoot(cur, final); err != nil { // the client's own check, on the bytes it will get
		return err
	}
	if !nr.Signed.Expires.After(r.now()) {
		return fmt.Errorf("the new root expired at %s: propose again", nr.Signed.Expires.Format("2006-01-02 15:04:05Z"))
	}
	if nr, err = metadata.Root().FromBytes(final); err != nil {
		return err
	}
	pending, err := r.openPendingRoles(ctx, st.root, nr)
	if err != nil {
		return err
	}
	if err := writeMetadata(r.dir, fmt.Sprintf("%d.root.json", nr.Signed.Version), final); err != nil {
		return err
	}
	if err := r.fail("root"); err != nil {
		return err
	}
	if err := r.installPending(pending); err != nil {
		return err
	}
	st.root = nr
	return r.finishRoot(ctx, st)
}

// finishRoot re-signs what the new root's keys must sign and makes
// root.json the new root, the last step of a root publish.
func (r *Repo) finishRoot(ctx context.Context, st *state) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ch := change{snapshot: true}
	if rerr := verify(st.root, metadata.TARGETS, st.targets); rerr != nil {
		ch.targets = true // the targets key was rotated
	}
	if err := r.commit(ctx, st, ch); err != nil {
		return err
	}
	data, err := currentRootBytes(r.dir, st.root)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(r.dir, "root.json"), data, 0o644); err != nil {
		return err
	}
	return r.pinPublished(st)
}

// rootFileCurrent reports whether DIR/root.json is the published root.
func rootFileCurrent(dir string, root *rootMD) (bool, error) {
	pub, err := currentRootBytes(dir, root)
	if err != nil {
		return false, err
	}
	have, err := os.ReadFile(filepath.Join(dir, "root.json"))
	if err != nil {
		return false, fmt.Errorf("read root.json: %w", err)
	}
	return bytes.Equal(pub, have), nil
}
