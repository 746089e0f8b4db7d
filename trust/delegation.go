package trust

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/event"
)

// step is one role to visit in a delegation search, with the delegator it
// is reached through.
type step struct{ role, parent string }

// errLimited is the ErrNotFound of a search that MaxDelegations cut short
// before any role listed the target: it may be listed further on, so it is
// not ErrNotListed.
var errLimited = fmt.Errorf("%w within the delegation limit", ErrNotFound)

// budget is the cap on distinct roles visited by one Target or
// TargetsUnder call (MaxDelegations, including the top-level targets).
type budget struct {
	max  int
	seen map[string]bool
	// expires is the earliest expiry of the roles used, after which a
	// memoized result of the lookup is no longer valid.
	expires time.Time
	limited bool // the cap stopped the lookup
}

// note records that the lookup used h.
func (b *budget) note(h *held) {
	if exp := h.md.Signed.Expires; b.expires.IsZero() || exp.Before(b.expires) {
		b.expires = exp
	}
}

func (c *Client) newBudget() *budget {
	return &budget{max: c.cfg.MaxDelegations, seen: map[string]bool{}}
}

// visit reports whether role may be visited: it was already, or the cap
// leaves room for one more.
func (b *budget) visit(role string) bool {
	if b.seen[role] {
		return true
	}
	if len(b.seen) >= b.max {
		b.limited = true
		return false
	}
	b.seen[role] = true
	return true
}

// walk is the pre-order depth-first search of spec 5.6.7 over the
// delegation graph, from the top-level targets role. It visits each role at
// most once and only while the budget allows, verified against the
// delegator it is reached through, and calls visit with it; visit returns
// true to end the walk. choose gives the roles that a visited role
// delegates to and the walk descends into, in the delegator's order, and
// whether the last of them is a terminating delegation (5.6.7.2.1), after
// which nothing that was still pending is visited. walk reports whether the
// budget cut it short.
//
// Target and TargetsUnder differ only in choose: the roles trusted for one
// path (forPath), or every role that may list a path under a prefix
// (underPrefix).
func (c *Client) walk(ctx context.Context, src Source, b *budget, choose func(*held) ([]string, bool), visit func(*held) bool) (limited bool, err error) {
	stack := []step{{metadata.TARGETS, metadata.ROOT}}
	visited := map[string]bool{}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if visited[s.role] {
			continue
		}
		if !b.visit(s.role) {
			return true, nil
		}
		visited[s.role] = true
		h, err := c.role(ctx, src, s.role, s.parent)
		if err != nil {
			return false, err
		}
		b.note(h)
		if visit(h) {
			return false, nil
		}
		next, terminating := choose(h)
		if terminating {
			stack = stack[:0] // nothing after a terminating delegation
		}
		for i := len(next) - 1; i >= 0; i-- { // pre-order: first delegation on top
			stack = append(stack, step{next[i], s.role})
		}
	}
	return false, nil
}

// forPath chooses, for the search of target path name, the roles trusted
// for name, up to the first terminating one. sel, if not nil, pre-selects
// the delegations to test (see selector).
func forPath(name string, sel *selector) func(*held) ([]string, bool) {
	return func(h *held) ([]string, bool) {
		if h.md.Signed.Delegations == nil {
			return nil, false
		}
		var next []string
		for _, rr := range rolesFor(h.md.Signed.Delegations, name, sel.candidates(h)) {
			next = append(next, rr.Name)
			if rr.Terminating {
				return next, true
			}
		}
		return next, false
	}
}

// underPrefix chooses every role that may list a path under sel's prefix
// (every bin of succinct delegations), ignoring terminating delegations:
// what the roles it visits list is only a candidate, each resolved again by
// the search for its own path.
func underPrefix(sel *selector) func(*held) ([]string, bool) {
	return func(h *held) ([]string, bool) {
		del := h.md.Signed.Delegations
		if del == nil {
			return nil, false
		}
		var next []string
		for _, i := range sel.candidates(h) {
			next = append(next, del.Roles[i].Name)
		}
		if sr := del.SuccinctRoles; sr != nil {
			next = append(next, sr.GetRoles()...)
		}
		return next, false
	}
}

// search finds the signed description of target path name: the first role
// of the walk that lists it.
func (c *Client) search(ctx context.Context, src Source, name string, b *budget, sel *selector) (tf *metadata.TargetFiles, err error) {
	defer recoverInvalid(name, &err)
	limited, err := c.walk(ctx, src, b, forPath(name, sel), func(h *held) bool {
		if t := h.md.Signed.Targets[name]; t != nil {
			cp := *t
			cp.Path = name
			tf = &cp
		}
		return tf != nil
	})
	switch {
	case err != nil:
		return nil, err
	case tf != nil:
		return tf, nil
	case limited:
		return nil, fmt.Errorf("target %q: %w (gave up after %d delegated roles)", name, errLimited, len(b.seen))
	}
	return nil, fmt.Errorf("target %q: %w", name, ErrNotListed)
}

// under collects the targets under prefix from every role that may list
// one, in the walk's pre-order, then resolves each through search. The
// collection and the searches share one budget of MaxDelegations roles.
func (c *Client) under(ctx context.Context, src Source, prefix string, b *budget) (out map[string]*metadata.TargetFiles, err error) {
	defer recoverInvalid(prefix, &err)
	sel := newSelector(prefix)
	names := map[string]bool{}
	limited, err := c.walk(ctx, src, b, underPrefix(sel), func(h *held) bool {
		for p := range h.md.Signed.Targets {
			if strings.HasPrefix(p, prefix) {
				names[p] = true
			}
		}
		return false
	})
	if err != nil {
		return nil, err
	}
	if limited {
		c.emit(event.DelegationLimit, prefix, fmt.Sprintf("gave up after %d delegated roles", len(b.seen)))
	}
	out = map[string]*metadata.TargetFiles{}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		tf, err := c.search(ctx, src, n, b, sel)
		if errors.Is(err, ErrNotListed) || errors.Is(err, errLimited) {
			continue // listed, but not by the role the search chooses (or beyond the limit, reported above)
		}
		if err != nil {
			return nil, err
		}
		out[n] = tf
	}
	return out, nil
}

// role returns role as verified through parent, fetching it if needed.
// Verified (parent, role) edges are cached, so repeated lookups are map
// lookups; a role held after verification through another delegator is
// verified again against parent's keys before it is used (diamonds).
func (c *Client) role(ctx context.Context, src Source, role, parent string) (*held, error) {
	st := c.st
	if role == metadata.TARGETS && parent == metadata.ROOT {
		return st.targets, c.notExpired(role, st.targets)
	}
	if slices.Contains(metadata.TOP_LEVEL_ROLE_NAMES[:], role) {
		return nil, secErr(ErrInvalid, role, "delegation to a top-level role name")
	}
	if isRootKey(role) {
		return nil, secErr(ErrInvalid, role, `delegation to a name of the form "N.root", which the Store keeps for intermediate roots`)
	}
	edge := [2]string{parent, role}
	if st.edges[edge] {
		h := st.roles[role]
		return h, c.notExpired(role, h)
	}
	delegator := st.targets
	if parent != metadata.TARGETS {
		delegator = st.roles[parent]
	}
	keys, keyIDs, threshold, err := delegation(delegator.md, parent, role)
	if err != nil {
		return nil, err
	}
	h := st.roles[role]
	if h == nil {
		if h, err = c.fetchRole(ctx, src, role, keys, keyIDs, threshold); err != nil {
			return nil, err
		}
		st.roles[role] = h
	} else if err := verifyThreshold(role, keys, keyIDs, threshold, h.d); err != nil {
		return nil, annotateDelegator(err, parent)
	}
	if err := c.notExpired(role, h); err != nil {
		return nil, err
	}
	st.edges[edge] = true
	return h, nil
}

func (c *Client) notExpired(role string, h *held) error {
	if exp := h.md.Signed.Expires; c.RefTime.After(exp) {
		return expired(role, exp, c.RefTime)
	}
	return nil
}

func annotateDelegator(err error, parent string) error {
	var se *SecurityError
	if errors.As(err, &se) {
		se.Reason += " (verified against delegator " + parent + ")"
	}
	return err
}

// delegation finds role's keys and threshold in the delegator's metadata.
func delegation(md *metadata.Metadata[metadata.TargetsType], parent, role string) (map[string]*metadata.Key, []string, int, error) {
	del := md.Signed.Delegations
	if del == nil {
		return nil, nil, 0, secErr(ErrInvalid, role, "delegator "+parent+" has no delegations")
	}
	if err := validDelegations(del); err != nil {
		return nil, nil, 0, secErr(ErrInvalid, parent, "delegations").wrap(err)
	}
	for _, dr := range del.Roles {
		if dr.Name == role {
			return del.Keys, dr.KeyIDs, dr.Threshold, nil
		}
	}
	if sr := del.SuccinctRoles; sr != nil && sr.IsDelegatedRole(role) {
		return del.Keys, sr.KeyIDs, sr.Threshold, nil
	}
	return nil, nil, 0, secErr(ErrInvalid, role, "not delegated by "+parent)
}

// validDelegations rejects delegations that go-tuf would mishandle.
func validDelegations(del *metadata.Delegations) error {
	if len(del.Roles) > 0 && del.SuccinctRoles != nil {
		return errors.New("both roles and succinct_roles")
	}
	if sr := del.SuccinctRoles; sr != nil && (sr.BitLength < 1 || sr.BitLength > 16) {
		return fmt.Errorf("succinct_roles bit_length %d outside 1..16", sr.BitLength)
	}
	seen := map[string]bool{}
	for _, dr := range del.Roles {
		if seen[dr.Name] {
			return fmt.Errorf("role %q delegated twice", dr.Name)
		}
		seen[dr.Name] = true
	}
	return nil
}

// fetchRole returns role's metadata from the Store if the copy there is
// the one snapshot names and verifies, else from src (persisting it).
func (c *Client) fetchRole(ctx context.Context, src Source, role string, keys map[string]*metadata.Key, keyIDs []string, threshold int) (*held, error) {
	meta := c.st.snap.Signed.Meta[role+".json"]
	if meta == nil { // 5.6.7 / R23: roles not in snapshot are never trusted
		return nil, secErr(ErrMismatch, role, "delegated role not listed in snapshot").want("listed", "absent")
	}
	check := func(data []byte) (*held, error) {
		if err := meta.VerifyLengthHashes(data); err != nil {
			return nil, secErr(ErrMismatch, role, "length or hash differs from snapshot's").wrap(err)
		}
		md, d, err := decode[metadata.TargetsType](role, metadata.TARGETS, data)
		if err != nil {
			return nil, err
		}
		if err := verifyThreshold(role, keys, keyIDs, threshold, d); err != nil {
			return nil, err
		}
		if v := md.Signed.Version; v != meta.Version {
			return nil, secErr(ErrMismatch, role, "version differs from snapshot's").want(meta.Version, v)
		}
		return &held{md: md, d: d}, nil
	}
	if data, err := c.load(role); err == nil {
		h, err := check(data)
		if err == nil {
			return h, nil
		}
		// An older version than snapshot names is the normal case after a
		// publish, as quiet as a missing file (and as harmless: it is
		// replaced, never trusted). Any other failure of a cached copy, the
		// same version altered or a newer one, may be tampering: reported.
		if !superseded(data, meta.Version) {
			c.emit(event.MetadataCacheIgnore, role, err.Error())
		}
	}
	name, err := RoleFileName(role) // one escaped segment (see Source)
	if err != nil {
		return nil, secErr(ErrInvalid, role, "role name").wrap(err)
	}
	if c.st.root.Signed.ConsistentSnapshot {
		name = fmt.Sprintf("%d.%s", meta.Version, name)
	}
	data, err := fetchLimited(ctx, src, role, name, limit(meta.Length, MaxTargetsLength))
	if err != nil {
		return nil, err
	}
	h, err := check(data)
	if err != nil {
		return nil, err
	}
	if err := c.cfg.Store.Save(role, data); err != nil {
		return nil, fmt.Errorf("persist %s: %w", role, err)
	}
	return h, nil
}

func recoverInvalid(what string, err *error) {
	if r := recover(); r != nil {
		*err = secErr(ErrInvalid, what, fmt.Sprintf("panic during delegation search: %v", r))
	}
}

// superseded reports whether cached metadata claims a version older than
// want. The claim is unverified, and only silences the report of a copy
// that is set aside anyway.
func superseded(data []byte, want int64) bool {
	var m struct {
		Signed struct {
			Version int64 `json:"version"`
		} `json:"signed"`
	}
	return json.Unmarshal(data, &m) == nil && m.Signed.Version > 0 && m.Signed.Version < want
}
