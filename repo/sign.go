package repo

import (
	"context"
	"fmt"
	"sort"
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
	// Targets, if set, is the top-level targets role, which the caller has
	// verified against a root it trusts (package trust or client): the
	// current role must then also verify with the application's delegated
	// keys and threshold in it.
	Targets []byte
	// Last, if set, is this publisher's record of the last role of the
	// application it signed (ReadPublisherRecord): a current role older
	// than it, or another role of its version, is refused (ErrOlderRole),
	// and so is one whose minimum safe version is below the record's
	// without being signed as lowered (ErrLowerMin). A stolen server then
	// cannot replay an old role to get a lower minimum signed (F0, R63).
	Last *PublisherRecord
	// LowerMin, for SignPolicy only, allows a minimum below the current
	// one (MinVersionOptions.Lower).
	LowerMin bool
}

// SignRelease builds the next version of the application role of b.App:
// current (the role as the server publishes it now; nil if it has none yet)
// plus the files of b, signed by each of signers (the application's keys
// this publisher holds; an application with a threshold of k needs k of
// them). It needs no other key, and reads nothing but b's files.
//
// current must carry a valid signature of every one of signers (of every
// one the delegation lists, with opts.Targets, and reach the delegation's
// threshold): a server, even with one of the publisher's keys, cannot make
// the publisher sign targets that its keys never signed. A release
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
	var targets *targetsMD
	if len(opts.Targets) > 0 {
		if targets, err = metadata.Targets().FromBytes(opts.Targets); err != nil {
			return nil, fmt.Errorf("targets: %w", err)
		}
	}
	md, err := currentRole(signers, b.App, current, targets)
	if err != nil {
		return nil, err
	}
	if err := checkCurrent(opts.Last, b.App, md, current); err != nil {
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
	if out.Role, err = signNextVersion(ctx, signers, b.App, md, opts); err != nil {
		return nil, err
	}
	return out, nil
}

// ResignRole returns the next version of app's role with the same targets
// and a new expiry, signed by signers: how a pipeline that holds only its
// keys keeps its role from expiring between releases. current must carry
// the signatures SignRelease requires of it.
func ResignRole(ctx context.Context, signers []keys.Signer, app string, current []byte, opts SignOptions) (*Signed, error) {
	if len(signers) == 0 {
		return nil, fmt.Errorf("re-sign %s: no application key", app)
	}
	if len(current) == 0 {
		return nil, fmt.Errorf("re-sign %s: it has no role yet; publish a release first", app)
	}
	var targets *targetsMD
	if len(opts.Targets) > 0 {
		var err error
		if targets, err = metadata.Targets().FromBytes(opts.Targets); err != nil {
			return nil, fmt.Errorf("re-sign %s: targets: %w", app, err)
		}
	}
	md, err := currentRole(signers, app, current, targets)
	if err != nil {
		return nil, fmt.Errorf("re-sign %s: %w", app, err)
	}
	if err := checkCurrent(opts.Last, app, md, current); err != nil {
		return nil, fmt.Errorf("re-sign %s: %w", app, err)
	}
	raw, err := signNextVersion(ctx, signers, app, md, opts)
	if err != nil {
		return nil, fmt.Errorf("re-sign %s: %w", app, err)
	}
	return &Signed{Role: raw}, nil
}

// signNextVersion bumps md's version, sets its expiry from opts and signs
// it with every signer.
func signNextVersion(ctx context.Context, signers []keys.Signer, app string, md *targetsMD, opts SignOptions) ([]byte, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	life := opts.Expires
	if life == 0 {
		life = DefaultExpiries.Targets
	}
	var err error
	if md.Signed.Version, err = nextVersion(app, md.Signed.Version); err != nil {
		return nil, err
	}
	md.Signed.Expires = expiry(now, life)
	var tufSigners []signature.Signer
	for _, s := range signers {
		tufSigners = append(tufSigners, keys.TUFSigner(ctx, s))
	}
	return signBytes(md, tufSigners...)
}

// currentRole parses the role the server publishes now and checks that
// every one of signers that app's delegation lists signed it (every signer
// when targets is nil), and, with targets, that it verifies with the
// delegation's keys and threshold: a thief holding one of the publisher's
// keys cannot get the others to sign on top of a role only it signed. nil or
// empty current starts a new role at version 0.
func currentRole(signers []keys.Signer, app string, current []byte, targets *targetsMD) (*targetsMD, error) {
	if len(current) == 0 {
		md := metadata.Targets()
		md.Signed.Version = 0
		return md, nil
	}
	md, err := metadata.Targets().FromBytes(current)
	if err != nil {
		return nil, fmt.Errorf("current role %s: %w", app, err)
	}
	var listed map[string]bool
	if targets != nil {
		d := delegationOf(targets, app)
		if d == nil {
			return nil, fmt.Errorf("%s: %w", app, ErrNoDelegation)
		}
		if err := verify(targets, app, md); err != nil {
			return nil, fmt.Errorf("current role %s (version %d) is not signed by %d of its delegated keys: refusing to sign on top of it: %w",
				app, md.Signed.Version, d.Threshold, err)
		}
		listed = map[string]bool{}
		for _, id := range d.KeyIDs {
			listed[id] = true
		}
	}
	self, ids, err := selfDelegation(signers, app, listed)
	if err != nil {
		return nil, err
	}
	if err := verify(self, app, md); err != nil {
		if missing := unsignedBy(md, ids); len(missing) > 0 {
			return nil, fmt.Errorf("key %s did not sign %s's current role (version %d, signed by %s): it is not one of %s's delegated keys, or the role is not the one it signed; refusing to sign on top of it",
				strings.Join(shortIDs(missing), ", "), app, md.Signed.Version, strings.Join(shortIDs(sigKeyIDs(md)), ", "), app)
		}
		return nil, fmt.Errorf("current role %s (version %d) is not signed by every key of this publisher (%s): refusing to sign on top of it: %w",
			app, md.Signed.Version, strings.Join(ids, ", "), err)
	}
	return md, nil
}

// sigKeyIDs lists the key IDs of md's signatures (as they claim; nothing is
// verified here).
func sigKeyIDs(md *targetsMD) []string {
	var ids []string
	for _, sig := range md.Signatures {
		ids = append(ids, sig.KeyID)
	}
	if len(ids) == 0 {
		ids = []string{"no key"}
	}
	return ids
}

// unsignedBy lists those of ids that have no signature on md.
func unsignedBy(md *targetsMD, ids []string) []string {
	var missing []string
	for _, id := range ids {
		found := false
		for _, sig := range md.Signatures {
			found = found || sig.KeyID == id
		}
		if !found {
			missing = append(missing, id)
		}
	}
	return missing
}

// selfDelegation delegates app to those of signers in listed (all of them
// when listed is nil) with a threshold of all of them.
func selfDelegation(signers []keys.Signer, app string, listed map[string]bool) (*targetsMD, []string, error) {
	self := metadata.Targets()
	d := &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	role := metadata.DelegatedRole{Name: app, Paths: []string{release.Pattern(app)}}
	for _, s := range signers {
		id, err := s.Key().ID()
		if err != nil {
			return nil, nil, err
		}
		if listed != nil && !listed[id] || d.Keys[id] != nil {
			continue
		}
		d.Keys[id] = s.Key()
		role.KeyIDs = append(role.KeyIDs, id)
	}
	if len(role.KeyIDs) == 0 {
		var own, delegated []string
		for _, s := range signers {
			id, _ := s.Key().ID()
			own = append(own, id)
		}
		for id := range listed {
			delegated = append(delegated, id)
		}
		sort.Strings(delegated)
		return nil, nil, fmt.Errorf("key %s is not one of %s's delegated keys (%s)",
			strings.Join(shortIDs(own), ", "), app, strings.Join(shortIDs(delegated), ", "))
	}
	role.Threshold = len(role.KeyIDs)
	d.Roles = []metadata.DelegatedRole{role}
	self.Signed.Delegations = d
	return self, role.KeyIDs, nil
}
