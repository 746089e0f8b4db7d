package repo

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/internal/atomicfile"
	"github.com/ferry-updates/ferry/rollout"
	"github.com/ferry-updates/ferry/trust"
)

// A holder (a Repo opened with offline keys, application keys, or signers
// of an offline role) signs on top of what REPO holds, and REPO may be a
// stolen server's. So a holder's state is anchored in a root the holder
// trusts: Options.TrustedRoot, or the pinned copy PinnedRootFile (Init and
// SplitKeys write it into the offline keys directory). From there it walks
// REPO/public/metadata/N.root.json forward, each verified against its
// predecessor as clients do (trust.VerifyNextRoot); REPO/root.json must be
// one of the roots so reached, and targets and every application role must
// verify against it with the client's checks before anything is signed on
// top of them. The pinned copy is advanced after a successful walk.

// PinnedRootName is the file name of the pinned root in an offline keys
// directory.
const PinnedRootName = "root.json"

// ErrNoTrustedRoot means a holder has no root to check the repository
// against: no Options.TrustedRoot and no pinned copy.
var ErrNoTrustedRoot = errors.New("no trusted root to check the repository against")

// PinnedRootFile is the pinned root in the offline keys directory offline.
func PinnedRootFile(offline string) string { return filepath.Join(offline, PinnedRootName) }

// loadState loads the repository's state; for a holder, anchored in the
// holder's trusted root (see above).
func (r *Repo) loadState() (*state, error) {
	st, err := loadState(r.dir)
	if err != nil || !r.holder(st) {
		return st, err
	}
	return r.anchoredState()
}

// holder reports whether r signs with keys a server must not have: an
// offline keys directory, application keys, a trusted root given, or a
// signer whose key st lists for root, targets or an application.
func (r *Repo) holder(st *state) bool {
	if r.offlineOutside() || len(r.opts.AppKeys) > 0 || len(r.opts.TrustedRoot) > 0 || r.opts.PinnedRoot != "" {
		return true
	}
	for _, s := range r.opts.Signers {
		id, err := s.Key().ID()
		if err != nil || listsOffline(st, id) {
			return true
		}
	}
	return false
}

// listsOffline reports whether st lists key id for an offline role (root,
// targets, an application).
func listsOffline(st *state, id string) bool {
	for _, name := range []string{metadata.ROOT, metadata.TARGETS} {
		if r := st.root.Signed.Roles[name]; r != nil && contains(r.KeyIDs, id) {
			return true
		}
	}
	if d := st.targets.Signed.Delegations; d != nil {
		for _, role := range d.Roles {
			if role.Name != rollout.RoleName && contains(role.KeyIDs, id) { // the rollout key is online
				return true
			}
		}
	}
	return false
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// offlineOutside reports whether r has an offline keys directory outside
// the repository. One inside it (DIR/keys of the old layout) is the
// server's own: whoever has DIR has every key, and nothing there can
// anchor anything.
func (r *Repo) offlineOutside() bool {
	return r.opts.OfflineKeys != "" && checkInside(r.dir, r.opts.OfflineKeys) == nil
}

// pinFile is the pinned root r reads and advances, or "".
func (r *Repo) pinFile() string {
	if r.opts.PinnedRoot != "" {
		return r.opts.PinnedRoot
	}
	if r.offlineOutside() {
		return PinnedRootFile(r.opts.OfflineKeys)
	}
	return ""
}

// trustAnchor returns the root r trusts and whether it is the pinned copy.
func (r *Repo) trustAnchor() ([]byte, bool, error) {
	if len(r.opts.TrustedRoot) > 0 {
		return r.opts.TrustedRoot, false, nil
	}
	pin := r.pinFile()
	if pin == "" {
		return nil, false, ErrNoTrustedRoot
	}
	data, err := os.ReadFile(pin)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("%w: %s does not exist", ErrNoTrustedRoot, pin)
	}
	if err != nil {
		return nil, false, fmt.Errorf("read trusted root: %w", err)
	}
	return data, true, nil
}

// anchoredState walks from the trusted root to the newest root REPO
// publishes, then loads the state under REPO/root.json, which must be one
// of the roots walked, and checks targets and the application roles
// against it.
func (r *Repo) anchoredState() (*state, error) {
	trusted, pinned, err := r.trustAnchor()
	if err != nil {
		return nil, err
	}
	chain, err := walkRoots(r.dir, trusted)
	if err != nil {
		return nil, err
	}
	cur, err := os.ReadFile(filepath.Join(r.dir, "root.json"))
	if err != nil {
		return nil, fmt.Errorf("load repository: %w", err)
	}
	md, err := metadata.Root().FromBytes(cur)
	if err != nil {
		return nil, fmt.Errorf("load repository: root.json: %w", err)
	}
	if v := md.Signed.Version; !bytes.Equal(chain[v], cur) {
		return nil, fmt.Errorf("load repository: %s (version %d) is not the root reached from the trusted root (version %d)",
			filepath.Join(r.dir, "root.json"), v, firstVersion(chain))
	}
	st, err := loadStateUnder(r.dir, md)
	if err != nil {
		return nil, err
	}
	if err := checkUnderRoot(r.dir, st, chain); err != nil {
		return nil, err
	}
	if pinned {
		if err := advancePin(r.pinFile(), trusted, chain); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// walkRoots verifies trusted and every REPO/public/metadata/N.root.json
// after it, each against its predecessor, and returns them by version.
func walkRoots(dir string, trusted []byte) (map[int64][]byte, error) {
	trusted, err := signedFirstRoot(dir, trusted)
	if err != nil {
		return nil, err
	}
	if err := trust.VerifySelfSigned(trusted); err != nil {
		return nil, fmt.Errorf("trusted root: %w", err)
	}
	md, err := metadata.Root().FromBytes(trusted)
	if err != nil {
		return nil, fmt.Errorf("trusted root: %w", err)
	}
	chain := map[int64][]byte{md.Signed.Version: trusted}
	prev := trusted
	for v := md.Signed.Version + 1; ; v++ {
		name := filepath.Join(metadataDir(dir), fmt.Sprintf("%d.root.json", v))
		data, err := os.ReadFile(name)
		if errors.Is(err, fs.ErrNotExist) {
			return chain, nil
		}
		if err != nil {
			return nil, fmt.Errorf("load repository: %w", err)
		}
		if err := trust.VerifyNextRoot(prev, data); err != nil {
			return nil, fmt.Errorf("load repository: %s does not verify against the trusted root chain: %w", name, err)
		}
		chain[v], prev = data, data
	}
}

// signedFirstRoot returns trusted, or, when trusted is the unsigned first
// root Init pinned for a root held by its holders, the published version 1
// if its signed part is exactly the pinned one.
func signedFirstRoot(dir string, trusted []byte) ([]byte, error) {
	md, err := metadata.Root().FromBytes(trusted)
	if err != nil {
		return nil, fmt.Errorf("trusted root: %w", err)
	}
	if md.Signed.Version != 1 || len(md.Signatures) > 0 {
		return trusted, nil
	}
	pub, err := os.ReadFile(filepath.Join(metadataDir(dir), "1.root.json"))
	if err != nil {
		return nil, fmt.Errorf("load repository: the pinned first root is not published yet: %w", err)
	}
	canon, err := cjson.EncodeCanonical(md.Signed)
	if err != nil {
		return nil, err
	}
	pmd, err := metadata.Root().FromBytes(pub)
	if err != nil || !sameSigned(pmd, canon) {
		return nil, errors.New("load repository: the published first root is not the one pinned at init")
	}
	return pub, nil
}

func firstVersion(chain map[int64][]byte) int64 {
	first := int64(-1)
	for v := range chain {
		if first < 0 || v < first {
			first = v
		}
	}
	return first
}

// checkUnderRoot checks st's targets against st's root, which must be in
// chain, and every application role against targets' delegation, with the
// client's own checks, on the files as REPO holds them.
func checkUnderRoot(dir string, st *state, chain map[int64][]byte) error {
	cur := chain[st.root.Signed.Version]
	if cur == nil {
		return fmt.Errorf("load repository: root version %d is not in the trusted root chain", st.root.Signed.Version)
	}
	md := metadataDir(dir)
	tb, err := readReferenced(md, metadata.TARGETS, st.snapshot.Signed.Meta["targets.json"])
	if err != nil {
		return err
	}
	if err := trust.VerifyRole(cur, metadata.TARGETS, tb); err != nil {
		return fmt.Errorf("load repository: targets does not verify against the trusted root: %w", err)
	}
	d := st.targets.Signed.Delegations
	if d == nil {
		return nil
	}
	for _, role := range d.Roles {
		if st.apps[role.Name] == nil {
			continue
		}
		ab, err := readReferenced(md, role.Name, st.snapshot.Signed.Meta[role.Name+".json"])
		if err != nil {
			return err
		}
		if err := trust.VerifyDelegated(tb, role.Name, ab); err != nil {
			return fmt.Errorf("load repository: %s does not verify against targets: %w", role.Name, err)
		}
	}
	return nil
}

func versionOf(root []byte) int64 {
	md, err := metadata.Root().FromBytes(root)
	if err != nil {
		return -1
	}
	return md.Signed.Version
}

// advancePin writes the newest root of chain to the pinned copy at pin, if
// it is newer than trusted.
func advancePin(pin string, trusted []byte, chain map[int64][]byte) error {
	newest := versionOf(trusted)
	for v := range chain {
		newest = max(newest, v)
	}
	if newest == versionOf(trusted) {
		return nil
	}
	return writePin(pin, chain[newest])
}

func writePin(pin string, root []byte) error {
	if err := atomicfile.WriteFile(pin, root, 0o600); err != nil {
		return fmt.Errorf("pin trusted root: %w", err)
	}
	return nil
}

// pinPublished writes the published root of st to the pinned copy, after
// the holder published it (a first root, a root rotation).
func (r *Repo) pinPublished(st *state) error {
	pin := r.pinFile()
	if pin == "" || len(r.opts.TrustedRoot) > 0 {
		return nil
	}
	data, err := currentRootBytes(r.dir, st.root)
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(pin); err == nil { // the pin only moves along the chain it starts
		chain, err := walkRoots(r.dir, old)
		if err != nil {
			return err
		}
		if !bytes.Equal(chain[st.root.Signed.Version], data) {
			return fmt.Errorf("pin trusted root: version %d does not chain from %s", st.root.Signed.Version, pin)
		}
	}
	return writePin(pin, data)
}

// pinInit writes the root Init made to the pinned copy in offline: the
// signed root.json, or, for a root its holders are yet to sign, the
// unsigned first root (its published version 1 must then say exactly
// that; see signedFirstRoot).
func (r *Repo) pinInit(offline string, root *rootMD) error {
	data, err := os.ReadFile(filepath.Join(r.dir, "root.json"))
	if errors.Is(err, fs.ErrNotExist) {
		c := *root
		c.Signatures = []metadata.Signature{}
		data, err = c.ToBytes(false)
	}
	if err != nil {
		return err
	}
	return writePin(PinnedRootFile(offline), data)
}
