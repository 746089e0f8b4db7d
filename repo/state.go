package repo

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/internal/atomicfile"
	"github.com/ferry-updates/ferry/trust"
)

type (
	rootMD    = metadata.Metadata[metadata.RootType]
	targetsMD = metadata.Metadata[metadata.TargetsType]
	snapMD    = metadata.Metadata[metadata.SnapshotType]
	tsMD      = metadata.Metadata[metadata.TimestampType]
)

// state is the repository as timestamp.json currently references it.
type state struct {
	root      *rootMD
	timestamp *tsMD
	snapshot  *snapMD
	targets   *targetsMD
	apps      map[string]*targetsMD // delegated roles by name
}

func metadataDir(dir string) string { return filepath.Join(dir, "public", "metadata") }
func targetsDir(dir string) string  { return filepath.Join(dir, "public", "targets") }

// loadState follows timestamp.json to the snapshot and every role it names,
// checking each file's length and hashes against its parent and each
// signature against its delegator. Expiry is not judged: Refresh must be able
// to load an expired repository to fix it.
func loadState(dir string) (*state, error) {
	root, err := readRoot(dir)
	if err != nil {
		return nil, err
	}
	return loadStateUnder(dir, root)
}

// loadStateUnder is loadState with the root given.
func loadStateUnder(dir string, root *rootMD) (*state, error) {
	st := &state{root: root, apps: map[string]*targetsMD{}}
	var err error
	md := metadataDir(dir)
	tsBytes, err := os.ReadFile(filepath.Join(md, "timestamp.json"))
	if err != nil {
		return nil, fmt.Errorf("load repository: %w", err)
	}
	if st.timestamp, err = metadata.Timestamp().FromBytes(tsBytes); err != nil {
		return nil, fmt.Errorf("load repository: timestamp.json: %w", err)
	}
	if err := verify(st.root, metadata.TIMESTAMP, st.timestamp); err != nil {
		next := publishedNextRoot(dir, st.root)
		if next == nil || verify(next, metadata.TIMESTAMP, st.timestamp) != nil {
			return nil, fmt.Errorf("load repository: timestamp.json: %w", err)
		}
		st.root = next // a root publish stopped before its last step, root.json
	}
	snapBytes, err := readReferenced(md, "snapshot", st.timestamp.Signed.Meta["snapshot.json"])
	if err != nil {
		return nil, err
	}
	if st.snapshot, err = metadata.Snapshot().FromBytes(snapBytes); err != nil {
		return nil, fmt.Errorf("load repository: snapshot: %w", err)
	}
	if err := verify(st.root, metadata.SNAPSHOT, st.snapshot); err != nil {
		return nil, fmt.Errorf("load repository: snapshot: %w", err)
	}
	if st.targets, err = loadTargets(md, metadata.TARGETS, st.snapshot, st.root); err != nil {
		return nil, err
	}
	if d := st.targets.Signed.Delegations; d != nil {
		for _, role := range d.Roles {
			if st.snapshot.Signed.Meta[role.Name+".json"] == nil {
				continue // delegated by a ceremony, no release yet: no role to load
			}
			if st.apps[role.Name], err = loadTargets(md, role.Name, st.snapshot, st.targets); err != nil {
				return nil, err
			}
		}
	}
	return st, nil
}

type delegator interface {
	VerifyDelegate(role string, md any) error
}

// verify checks md's signatures against its delegator. go-tuf panics on a
// malformed Ed25519 key (a wrong length reaches ed25519.Verify), and these
// files may have been tampered with, so a panic becomes an error.
func verify(parent delegator, role string, md any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("verify %s: malformed metadata: %v", role, p)
		}
	}()
	return parent.VerifyDelegate(role, md)
}

func loadTargets(md, role string, snap *snapMD, parent delegator) (*targetsMD, error) {
	data, err := readReferenced(md, role, snap.Signed.Meta[role+".json"])
	if err != nil {
		return nil, err
	}
	t, err := metadata.Targets().FromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("load repository: %s: %w", role, err)
	}
	if err := verify(parent, role, t); err != nil {
		return nil, fmt.Errorf("load repository: %s: %w", role, err)
	}
	return t, nil
}

// readReferenced reads VERSION.ROLE.json and checks it against meta.
func readReferenced(md, role string, meta *metadata.MetaFiles) ([]byte, error) {
	if meta == nil {
		return nil, fmt.Errorf("load repository: %s.json is not referenced by its parent", role)
	}
	name := fmt.Sprintf("%d.%s.json", meta.Version, role)
	data, err := os.ReadFile(filepath.Join(md, name))
	if err != nil {
		return nil, fmt.Errorf("load repository: %w", err)
	}
	if err := meta.VerifyLengthHashes(data); err != nil {
		return nil, fmt.Errorf("load repository: %s: %w", name, err)
	}
	return data, nil
}

func readRoot(dir string) (*rootMD, error) {
	path := filepath.Join(dir, "root.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if _, perr := os.Stat(RootProposalFile(dir)); perr == nil {
			return nil, fmt.Errorf("load repository: %w: its holders sign %s, then it is published", ErrRootUnsigned, RootProposalFile(dir))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("load repository: %w", err)
	}
	root, err := metadata.Root().FromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("load repository: %s: %w", path, err)
	}
	if err := verify(root, metadata.ROOT, root); err != nil {
		return nil, fmt.Errorf("load repository: %s: %w", path, err)
	}
	return root, nil
}

// signBytes replaces md's signatures with one from each signer and returns
// its compact JSON encoding.
func signBytes[T metadata.Roles](md *metadata.Metadata[T], signers ...signature.Signer) ([]byte, error) {
	md.ClearSignatures()
	for _, s := range signers {
		if _, err := md.Sign(s); err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
	}
	return md.ToBytes(false)
}

// metaFor describes data as a snapshot or timestamp entry. It refuses a
// version below 1, which go-tuf's MetaFile would silently turn into 1.
func metaFor(role string, version int64, data []byte) (*metadata.MetaFiles, error) {
	if version < 1 {
		return nil, fmt.Errorf("%s version %d: a role's version must be at least 1", role, version)
	}
	sum := sha256.Sum256(data)
	m := metadata.MetaFile(version)
	m.Length = int64(len(data))
	m.Hashes = metadata.Hashes{"sha256": sum[:]}
	return m, nil
}

// nextVersion returns the version after v of role, refusing to overflow
// (a role at math.MaxInt64 cannot be signed again) or to follow a version
// below 0.
func nextVersion(role string, v int64) (int64, error) {
	if v < 0 || v == math.MaxInt64 {
		return 0, fmt.Errorf("%s version %d has no next version", role, v)
	}
	return v + 1, nil
}

func writeMetadata(dir, name string, data []byte) error {
	if err := atomicfile.WriteFile(filepath.Join(metadataDir(dir), name), data, 0o644); err != nil {
		return fmt.Errorf("write metadata: %w", err)
	}
	return nil
}

// expiry returns the expiry time for a signature made at now.
func expiry(now time.Time, d time.Duration) time.Time {
	return now.UTC().Add(d).Truncate(time.Second)
}

// stale reports whether a signature expiring at exp, with lifetime d, is
// within half its lifetime of expiring at now.
func stale(now, exp time.Time, d time.Duration) bool {
	return exp.Sub(now) < d/2
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// publishedNextRoot returns the root published after root, if it chains
// from root as clients check it, else nil.
func publishedNextRoot(dir string, root *rootMD) *rootMD {
	cur, err := currentRootBytes(dir, root)
	if err != nil {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(metadataDir(dir), fmt.Sprintf("%d.root.json", root.Signed.Version+1)))
	if err != nil || trust.VerifyNextRoot(cur, data) != nil {
		return nil
	}
	next, err := metadata.Root().FromBytes(data)
	if err != nil {
		return nil
	}
	return next
}
