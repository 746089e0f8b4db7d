package trust

import (
	"maps"
	"slices"
)

// TopLevelPaths returns what the trusted top-level targets role names: the
// path patterns of every role it delegates to, and the paths of the targets
// it lists itself, sorted and without duplicates. It fetches nothing; it
// returns ErrNotRefreshed before the first successful Refresh. Callers use
// it to tell a name the repository has never heard of from one it has (for
// example to list its applications), never to trust a target.
func (c *Client) TopLevelPaths() ([]string, error) {
	if err := c.ready(); err != nil {
		return nil, err
	}
	t := c.st.targets.md.Signed
	set := map[string]bool{}
	for p := range t.Targets {
		set[p] = true
	}
	if t.Delegations != nil {
		for _, r := range t.Delegations.Roles {
			for _, p := range r.Paths {
				set[p] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set)), nil
}
