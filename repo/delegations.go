package repo

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/rollout"
)

// ErrBadDelegation is wrapped when top-level targets would delegate a role
// other than as ferry delegates it.
var ErrBadDelegation = errors.New("delegation not as ferry writes it")

// checkDelegations refuses delegations other than the ones ferry writes:
// the rollout role (rollout.RoleName) with exactly [rollout.PathPattern],
// terminating, one key and threshold 1; every other role an application
// (release.ValidApp) with exactly [release.Pattern(APP)], terminating; no
// path hash prefixes or succinct roles. The confinement of the online
// rollout key to its decisions (R61, R57) and of each application key to
// its application rests on these paths alone, so a targets proposal that
// widens them is refused before it is signed or published.
func checkDelegations(d *metadata.Delegations) error {
	if d == nil {
		return nil
	}
	if d.SuccinctRoles != nil {
		return fmt.Errorf("%w: succinct roles", ErrBadDelegation)
	}
	seen := map[string]bool{}
	for _, r := range d.Roles {
		if err := checkDelegation(r); err != nil {
			return err
		}
		if seen[r.Name] {
			return fmt.Errorf("%w: role %s delegated twice", ErrBadDelegation, r.Name)
		}
		seen[r.Name] = true
	}
	return nil
}

func checkDelegation(r metadata.DelegatedRole) error {
	want := release.Pattern(r.Name)
	if r.Name == rollout.RoleName {
		want = rollout.PathPattern
		if r.Threshold != 1 || len(r.KeyIDs) > 1 {
			return fmt.Errorf("%w: %s has threshold %d of %d keys, want 1 of 1", ErrBadDelegation, r.Name, r.Threshold, len(r.KeyIDs))
		}
	} else if err := release.ValidApp(r.Name); err != nil {
		return fmt.Errorf("%w: role %.40q is neither an application nor %s", ErrBadDelegation, r.Name, rollout.RoleName)
	}
	if len(r.PathHashPrefixes) > 0 || !slices.Equal(r.Paths, []string{want}) {
		return fmt.Errorf("%w: %s is delegated paths [%s], want exactly [%s]", ErrBadDelegation, r.Name, strings.Join(r.Paths, " "), want)
	}
	if !r.Terminating {
		return fmt.Errorf("%w: %s is not terminating", ErrBadDelegation, r.Name)
	}
	return nil
}

// delegationLine describes one delegated role for a holder: keys,
// threshold, paths and whether the search stops there.
func delegationLine(r metadata.DelegatedRole) string {
	term := "terminating"
	if !r.Terminating {
		term = "NOT terminating"
	}
	paths := strings.Join(r.Paths, " ")
	if len(r.PathHashPrefixes) > 0 {
		paths += " hash-prefixes " + strings.Join(r.PathHashPrefixes, " ")
	}
	return fmt.Sprintf("  %-10s %d of %d keys: %s; paths [%s], %s", r.Name, r.Threshold, len(r.KeyIDs), strings.Join(shortIDs(r.KeyIDs), " "), paths, term)
}
