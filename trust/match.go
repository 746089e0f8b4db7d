package trust

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// This file matches target paths against delegation path patterns without
// allocating. For "paths" it is exactly equivalent to go-tuf's
// Delegations.GetRolesForTarget / DelegatedRole.IsDelegatedPath (which split
// pattern and path on "/" for every test); match_test.go checks that on a
// table of patterns and paths. For "path_hash_prefixes" it is not: go-tuf
// v2.4.2 compares the prefixes with the base64url encoding of the path's
// SHA-256, where the specification says the hex digest (hashPrefixMatch).

// rolesFor returns the roles of del trusted for name, in del's order, like
// del.GetRolesForTarget(name). When cand is not nil, only the standard
// delegations at those indices are tested: cand must contain (in order)
// every index whose role may be trusted for name (see selector).
func rolesFor(del *metadata.Delegations, name string, cand []int) []metadata.RoleResult {
	if del.Roles == nil {
		if del.SuccinctRoles != nil {
			return del.SuccinctRoles.GetRolesForTarget(name)
		}
		return nil
	}
	var res []metadata.RoleResult
	test := func(i int) {
		if r := &del.Roles[i]; delegatedPath(r, name) {
			res = append(res, metadata.RoleResult{Name: r.Name, Terminating: r.Terminating})
		}
	}
	if cand == nil {
		for i := range del.Roles {
			test(i)
		}
		return res
	}
	for _, i := range cand {
		test(i)
	}
	return res
}

// delegatedPath reports whether r is trusted for name: paths take
// precedence over path hash prefixes, as in go-tuf's IsDelegatedPath, but
// hash prefixes are matched as the specification defines them.
func delegatedPath(r *metadata.DelegatedRole, name string) bool {
	if len(r.Paths) > 0 {
		for _, p := range r.Paths {
			if pathMatch(p, name) {
				return true
			}
		}
		return false
	}
	return hashPrefixMatch(r.PathHashPrefixes, name)
}

// hashPrefixMatch reports whether the lower-case hex digest of the SHA-256
// of name starts with one of prefixes. This is "path_hash_prefixes" as the
// TUF specification defines it (each target path, hashed with SHA-256 to a
// hex digest, must share its prefix with one of them), and as python-tuf
// implements it; not go-tuf v2.4.2's base64url comparison.
func hashPrefixMatch(prefixes []string, name string) bool {
	if len(prefixes) == 0 {
		return false
	}
	sum := sha256.Sum256([]byte(name))
	var digest [2 * sha256.Size]byte
	hex.Encode(digest[:], sum[:])
	for _, p := range prefixes {
		if len(p) <= len(digest) && string(digest[:len(p)]) == p {
			return true
		}
	}
	return false
}

// pathMatch reports whether target matches pattern segment by segment
// ("/"-separated; the same number of segments, each matched with
// filepath.Match), as go-tuf's isTargetInPathPattern does.
func pathMatch(pattern, target string) bool {
	for {
		ps, prest, pmore := strings.Cut(pattern, "/")
		ts, trest, tmore := strings.Cut(target, "/")
		if !segMatch(ps, ts) {
			return false
		}
		if pmore != tmore {
			return false // different numbers of segments
		}
		if !pmore {
			return true
		}
		pattern, target = prest, trest
	}
}

// segMatch matches one segment; a pattern without glob syntax is a plain
// comparison (what filepath.Match does for it).
func segMatch(pattern, seg string) bool {
	if !strings.ContainsAny(pattern, `*?[\`) {
		return pattern == seg
	}
	ok, _ := filepath.Match(pattern, seg)
	return ok
}

// selector pre-selects, once per delegator, the delegations that may be
// trusted for some path starting with prefix, so that the searches of one
// TargetsUnder call test each target against those only. A nil selector
// selects everything.
type selector struct {
	prefix string
	cache  map[*held][]int
}

func newSelector(prefix string) *selector {
	return &selector{prefix: prefix, cache: map[*held][]int{}}
}

// candidates returns the indices of h's standard delegations that may hold
// a path under the prefix (nil: test all).
func (s *selector) candidates(h *held) []int {
	if s == nil {
		return nil
	}
	if c, ok := s.cache[h]; ok {
		return c
	}
	del := h.md.Signed.Delegations
	c := []int{}
	for i := range del.Roles {
		if mayHold(&del.Roles[i], s.prefix) {
			c = append(c, i)
		}
	}
	s.cache[h] = c
	return c
}

// mayHold reports whether a delegated role could be trusted for some path
// starting with prefix (conservatively: true when unsure). The prefix's
// complete segments (all but the last, which a path may extend) must each
// match the pattern's segment at the same place, and the pattern must have
// at least one more segment. A role without paths is trusted for nothing
// unless it has path hash prefixes, which may match anything.
func mayHold(dr *metadata.DelegatedRole, prefix string) bool {
	if len(dr.Paths) == 0 {
		return len(dr.PathHashPrefixes) > 0
	}
	for _, pattern := range dr.Paths {
		if patternMayMatchUnder(pattern, prefix) {
			return true
		}
	}
	return false
}

func patternMayMatchUnder(pattern, prefix string) bool {
	for {
		ps, prest, pmore := strings.Cut(pattern, "/")
		xs, xrest, xmore := strings.Cut(prefix, "/")
		if !xmore {
			return true // xs is a partial last segment: anything may follow
		}
		if !pmore || !segMatch(ps, xs) {
			return false
		}
		pattern, prefix = prest, xrest
	}
}
