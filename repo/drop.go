package repo

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ferry-updates/ferry/release"
)

// PublishOptions are the choices of whoever publishes a proposal.
type PublishOptions struct {
	// Drop lists releases, as APP@VERSION, to leave out when a targets
	// proposal re-signs an application's role under new keys (the
	// revocation of a leaked application key, R60). Whatever a thief
	// shipped with the leaked key is otherwise carried forward and signed
	// by the new key. Each entry must name a version that is in the role
	// of an application this publish re-signs; anything else is an error
	// and nothing is published.
	Drop []string
	// Resigned, when not nil, is called for each target that the publish
	// re-signs under new keys (kept) and each it leaves out (dropped), so
	// the publisher sees what the new key vouches for.
	Resigned func(app, path string, dropped bool)
}

// PublishProposalWith is PublishProposal with the publisher's choices.
func (r *Repo) PublishProposalWith(ctx context.Context, p *Proposal, opts PublishOptions) error {
	return r.publishProposal(ctx, p, opts)
}

// dropReleases removes the releases opts.Drop names from the roles in
// st.apps of the applications in resign, and reports every target of
// those roles to opts.Resigned.
func dropReleases(st *state, resign []string, opts PublishOptions) error {
	drop := map[string]map[string]bool{}
	for _, d := range opts.Drop {
		app, version, ok := strings.Cut(d, "@")
		if !ok || !slices.Contains(resign, app) {
			return fmt.Errorf("drop %s: want APP@VERSION of an application this publish re-signs under new keys (%s)", d, strings.Join(orNone(resign), ", "))
		}
		if drop[app] == nil {
			drop[app] = map[string]bool{}
		}
		drop[app][version] = true
	}
	for _, app := range resign {
		md := st.apps[app]
		found := map[string]bool{}
		paths := make([]string, 0, len(md.Signed.Targets))
		for path := range md.Signed.Targets {
			paths = append(paths, path)
		}
		sort.Strings(paths)
		for _, path := range paths {
			p, err := release.ParsePath(path)
			dropped := err == nil && drop[app][p.Version]
			if dropped {
				delete(md.Signed.Targets, path)
				found[p.Version] = true
			}
			if opts.Resigned != nil {
				opts.Resigned(app, path, dropped)
			}
		}
		for v := range drop[app] {
			if !found[v] {
				return fmt.Errorf("drop %s@%s: %s's role has no release %s", app, v, app, v)
			}
		}
	}
	return nil
}

func orNone(s []string) []string {
	if len(s) == 0 {
		return []string{"none"}
	}
	return s
}
