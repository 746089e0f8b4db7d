package trust_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ferry-updates/ferry/trust"
)

// R62: only the search's own "listed by no role" is ErrNotListed. A
// delegated role's file that the mirror does not have is an error wrapping
// the Source's ErrNotFound but not ErrNotListed, so a caller that takes
// "not listed" for "nothing to apply" cannot be fooled by a hidden file;
// a search cut short by MaxDelegations is not ErrNotListed either.
func TestNotListedIsNotAMissingRole_R62(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.repo.Delegate("targets", "decisions", []string{"d/*"}, true)
	e.repo.AddTarget("decisions", "d/app", []byte("halt"), nil)
	e.repo.Publish()
	c := e.refreshed()
	if _, err := c.Target(ctx, e.repo, "d/other"); !errors.Is(err, trust.ErrNotListed) || !errors.Is(err, trust.ErrNotFound) {
		t.Errorf("unlisted path: %v, want ErrNotListed (and ErrNotFound)", err)
	}
	if _, err := c.Target(ctx, e.repo, "elsewhere"); !errors.Is(err, trust.ErrNotListed) {
		t.Errorf("path no role is trusted for: %v, want ErrNotListed", err)
	}
	e2 := newEnv(t)
	e2.repo.Delegate("targets", "decisions", []string{"d/*"}, true)
	e2.repo.AddTarget("decisions", "d/app", []byte("halt"), nil)
	e2.repo.Publish()
	e2.repo.Hide("1.decisions.json")
	_, err := e2.refreshed().Target(ctx, e2.repo, "d/app")
	if err == nil || errors.Is(err, trust.ErrNotListed) {
		t.Fatalf("hidden role file: %v, want a fetch error that is not ErrNotListed", err)
	}
	if !errors.Is(err, trust.ErrNotFound) {
		t.Errorf("hidden role file: %v, want the Source's ErrNotFound", err)
	}
}
