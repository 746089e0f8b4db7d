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

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// ErrRootUnsigned means the repository's root is not signed yet: Init was
// given the root keys of holders elsewhere (InitOptions.RootPublic), and
// nothing can be served or published until enough of them have signed the
// proposal Init wrote (RootProposalFile) and it is published
// (PublishProposal).
var ErrRootUnsigned = errors.New("root is not signed yet")

// genesisBase is the base of the proposal for a repository's first root:
// version 0, the SHA-256 of nothing.
func genesisBase() Base {
	sum := sha256.Sum256(nil)
	return Base{Version: 0, SHA256: hex.EncodeToString(sum[:])}
}

// writeRootProposal writes root, unsigned, as the proposal its holders
// sign: the only requirement is the new root's own threshold.
func writeRootProposal(dir string, root *rootMD) error {
	rs := root.Signed
	p, err := newProposal(metadata.ROOT, nil, 0, &rs, []Requirement{
		requirement("new root (version 1)", rs.Keys, rs.Roles[metadata.ROOT]),
	})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(RootProposalFile(dir)), 0o755); err != nil {
		return err
	}
	return WriteProposal(RootProposalFile(dir), p)
}

// publishGenesisRoot publishes version 1 of a root Init could not sign: p
// must be the proposal Init wrote, signed by the new root's threshold.
// Snapshot and timestamp are then re-signed with the online keys (opened
// before anything is written), root.json written, the proposal removed.
func (r *Repo) publishGenesisRoot(ctx context.Context, p *Proposal) error {
	want, err := ReadProposal(RootProposalFile(r.dir))
	if err != nil {
		return err
	}
	if p.Base != genesisBase() || !bytes.Equal(p.Signed, want.Signed) {
		return fmt.Errorf("the repository's root is not signed yet, and this is not the proposal %s that its holders are to sign", RootProposalFile(r.dir))
	}
	nr, err := metadata.Root().FromBytes(envelope(p.Signed, nil))
	if err != nil {
		return err
	}
	final, err := counted(p, []Requirement{requirement("new root (version 1)", nr.Signed.Keys, nr.Signed.Roles[metadata.ROOT])})
	if err != nil {
		return err
	}
	if nr, err = metadata.Root().FromBytes(final); err != nil {
		return err
	}
	if err := verify(nr, metadata.ROOT, nr); err != nil { // as a client will, on the bytes it will get
		return err
	}
	if !nr.Signed.Expires.After(r.now()) {
		return fmt.Errorf("the new root expired at %s: initialise again", nr.Signed.Expires.Format("2006-01-02 15:04:05Z"))
	}
	st, err := loadStateUnder(r.dir, nr)
	if err != nil {
		return err
	}
	if _, err := r.signerKeys(ctx, st, change{snapshot: true}); err != nil {
		return err
	}
	if err := writeMetadata(r.dir, "1.root.json", final); err != nil {
		return err
	}
	if err := r.finishRoot(ctx, st); err != nil {
		return err
	}
	return os.Remove(RootProposalFile(r.dir))
}
