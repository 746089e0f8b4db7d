package repo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/release"
)

// Signed is the next version of an application's role, signed on the
// publisher's machine, with the files it adds.
type Signed struct {
	Role  []byte   // the signed role metadata, to upload as is
	New   []Entry  // targets added, sorted like List
	Files []string // Files[i] is the local file of New[i]
}

// SignOptions configure SignRelease.
type SignOptions struct {
	Now     time.Time     // zero: time.Now()
	Expires time.Duration // lifetime of the role's signature; 0: DefaultExpiries.Targets
}

// SignRelease builds the next version of the application role of b.App:
// current (the role as the server publishes it now; nil if it has none yet)
// plus the files of b, signed by each of signers (the application's keys
// this publisher holds; an application with a threshold of k needs k of
// them). It needs no other key, and reads nothing but b's files.
//
// current must carry a valid signature of one of signers: a server cannot
// make the publisher sign targets that its keys never signed. A release
// already in current with the same files returns (nil, nil), nothing to
// upload; with other files it fails with ErrImmutable.
func SignRelease(ctx context.Context, signers []keys.Signer, current []byte, b Batch, opts SignOptions) (*Signed, error) {
	if len(signers) == 0 {
		return nil, fmt.Errorf("sign %s: no application key", b.Release)
	}
	out, err := signRelease(ctx, signers, current, b, opts)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", b.Release, err)
	}
	return out, nil
}

func signRelease(ctx context.Context, signers []keys.Signer, current []byte, b Batch, opts SignOptions) (*Signed, error) {
	files, err := prepare(ctx, b)
	if err != nil {
		return nil, err
	}
	md, err := currentRole(signers, b.App, current)
	if err != nil {
		return nil, err
	}
	existing := indexByRelease(md)[b.Release.dirPath()]
	if len(existing) > 0 {
		return nil, sameFiles(b.Release, existing, files)
	}
	out := &Signed{}
	for _, f := range files {
		md.Signed.Targets[f.entry.Path] = f.targetFile()
		out.New = append(out.New, f.entry)
	}
	sortEntries(out.New)
	for _, e := range out.New {
		for _, f := range files {
			if f.entry.Path == e.Path {
				out.Files = append(out.Files, f.src)
			}
		}
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	life := opts.Expires
	if life == 0 {
		life = DefaultExpiries.Targets
	}
	if md.Signed.Version, err = nextVersion(b.Release.App, md.Signed.Version); err != nil {
		return nil, err
	}
	md.Signed.Expires = expiry(now, life)
	var tufSigners []signature.Signer
	for _, s := range signers {
		tufSigners = append(tufSigners, keys.TUFSigner(ctx, s))
	}
	if out.Role, err = signBytes(md, tufSigners...); err != nil {
		return nil, err
	}
	return out, nil
}

// currentRole parses the role the server publishes now and checks that one
// of signers signed it; nil or empty current starts a new role at version 0.
func currentRole(signers []keys.Signer, app string, current []byte) (*targetsMD, error) {
	if len(current) == 0 {
		md := metadata.Targets()
		md.Signed.Version = 0
		return md, nil
	}
	md, err := metadata.Targets().FromBytes(current)
	if err != nil {
		return nil, fmt.Errorf("current role %s: %w", app, err)
	}
	self := metadata.Targets()
	d := &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	role := metadata.DelegatedRole{Name: app, Threshold: 1, Paths: []string{release.Pattern(app)}}
	for _, s := range signers {
		id, err := s.Key().ID()
		if err != nil {
			return nil, err
		}
		d.Keys[id] = s.Key()
		role.KeyIDs = append(role.KeyIDs, id)
	}
	d.Roles = []metadata.DelegatedRole{role}
	self.Signed.Delegations = d
	if err := verify(self, app, md); err != nil {
		return nil, fmt.Errorf("current role %s (version %d) carries no valid signature of key %s: refusing to sign on top of it: %w",
			app, md.Signed.Version, strings.Join(role.KeyIDs, ", "), err)
	}
	return md, nil
}
