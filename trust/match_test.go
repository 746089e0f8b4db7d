package trust

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

var matchPatterns = []string{
	"", "*", "a", "a/*", "a/*/*", "a/*/*/*", "*/*", "*/*/*/*", "a/b", "a/b/c", "a/b/c/d",
	"app00001/*/*/*", "app0000?/*/*/*", "app[0-9]*/*", "app[!0]*/*/*/*", "a/", "/a", "/", "//",
	"a//b", "[", "a/[", "a/[]", `a/\*`, `a/\`, "a/**", "a/b*", "a/*c", "a/?", "*/b/*", "a*/b",
	"app00001/1.0.*/linux-*/app00001", "[a-c]/*", "a/[^b]", "é/*", "a\x00/b",
}

var matchPaths = []string{
	"", "a", "a/", "/a", "/", "//", "a/b", "a/b/", "a/b/c", "a/b/c/d", "a/b/c/d/e", "a//b", "ab/b",
	"b/b", "c/x", "d/x", "app00001/1.0.3/linux-amd64/app00001", "app00002/1.0.3/linux-amd64/app00002",
	"app10001/1.0.3/darwin-arm64/app10001", "app0/x", "app0000/x/y/z", "a/*", `a/\`, "a/[", "a/bc",
	"a/c", "a/x", "a/xc", "é/x", "a\x00/b", "a/b/c/", "x/b/y",
}

// TestPathMatchEquivalence checks pathMatch and delegatedPath against
// go-tuf's IsDelegatedPath on every pattern/path pair of a table with
// globs, escapes, bad patterns and empty segments.
func TestPathMatchEquivalence(t *testing.T) {
	for _, p := range matchPatterns {
		for _, x := range matchPaths {
			dr := &metadata.DelegatedRole{Name: "r", Paths: []string{p}}
			want, _ := dr.IsDelegatedPath(x)
			if got := delegatedPath(dr, x); got != want {
				t.Errorf("pattern %q path %q: got %v, go-tuf says %v", p, x, got, want)
			}
		}
	}
}

// hashPrefix returns the first n characters of the hash-bin name go-tuf
// computes for path.
func hashPrefix(path string, n int) string {
	h := sha256.Sum256([]byte(path))
	return base64.URLEncoding.EncodeToString(h[:])[:n]
}

// randomDelegations builds delegations mixing glob paths, hash prefixes,
// roles with both (paths win) and roles with neither.
func randomDelegations(r *rand.Rand, n int) *metadata.Delegations {
	del := &metadata.Delegations{Roles: []metadata.DelegatedRole{}}
	for i := range n {
		dr := metadata.DelegatedRole{Name: fmt.Sprintf("r%d", i), Terminating: r.IntN(4) == 0}
		switch r.IntN(6) {
		case 0:
			dr.PathHashPrefixes = []string{hashPrefix(matchPaths[r.IntN(len(matchPaths))], 1+r.IntN(2))}
		case 1:
			dr.PathHashPrefixes = []string{"A", "-", "z"}
			dr.Paths = []string{matchPatterns[r.IntN(len(matchPatterns))]}
		case 2: // neither: trusted for nothing
		default:
			for range 1 + r.IntN(3) {
				dr.Paths = append(dr.Paths, matchPatterns[r.IntN(len(matchPatterns))])
			}
		}
		del.Roles = append(del.Roles, dr)
	}
	return del
}

// TestRolesForEquivalence checks that rolesFor, with and without the
// per-prefix pre-selection of one TargetsUnder call, returns exactly
// go-tuf's GetRolesForTarget (same roles, same order, same terminating
// flags) for every path under every prefix, including hash-bin roles and
// succinct delegations.
func TestRolesForEquivalence(t *testing.T) {
	prefixes := []string{"", "a", "a/", "a/b", "a/b/", "a/b/c/", "app0", "app00001/", "/", "//", "x/", "é/", "a\x00/"}
	r := rand.New(rand.NewPCG(1, 2))
	paths := slices.Clone(matchPaths)
	for i := range 200 {
		paths = append(paths, fmt.Sprintf("app%05d/1.0.%d/linux-amd64/app%05d", i%7, i%3, i%7), fmt.Sprintf("a/%d", i))
	}
	for round := range 60 {
		del := randomDelegations(r, 1+r.IntN(12))
		if round%15 == 0 {
			del = &metadata.Delegations{SuccinctRoles: &metadata.SuccinctRoles{BitLength: 3, NamePrefix: "bin"}}
		}
		h := &held{md: &metadata.Metadata[metadata.TargetsType]{Signed: metadata.TargetsType{Delegations: del}}}
		for _, prefix := range prefixes {
			sel := newSelector(prefix)
			for _, x := range paths {
				want := del.GetRolesForTarget(x)
				if got := rolesFor(del, x, nil); !slices.Equal(got, want) {
					t.Fatalf("round %d path %q: got %v, go-tuf %v", round, x, got, want)
				}
				if !strings.HasPrefix(x, prefix) {
					continue
				}
				if got := rolesFor(del, x, sel.candidates(h)); !slices.Equal(got, want) {
					t.Fatalf("round %d prefix %q path %q: pre-selected %v, go-tuf %v (roles %+v)", round, prefix, x, got, want, del.Roles)
				}
			}
		}
	}
}

// TestSelectorSkips checks that the pre-selection does skip the roles of
// other applications (else it would not be worth having).
func TestSelectorSkips(t *testing.T) {
	del := &metadata.Delegations{Roles: []metadata.DelegatedRole{}}
	for i := range 100 {
		del.Roles = append(del.Roles, metadata.DelegatedRole{Name: fmt.Sprintf("app%d", i), Paths: []string{fmt.Sprintf("app%d/*/*/*", i)}})
	}
	h := &held{md: &metadata.Metadata[metadata.TargetsType]{Signed: metadata.TargetsType{Delegations: del}}}
	if got := newSelector("app42/").candidates(h); !slices.Equal(got, []int{42}) {
		t.Fatalf("candidates for app42/ = %v, want [42]", got)
	}
	if got := newSelector("app4").candidates(h); len(got) != 100 {
		t.Fatalf("a partial first segment must keep every role, got %d", len(got))
	}
}

func BenchmarkPathMatch(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		pathMatch("app00001/*/*/*", "app00001/1.0.3/linux-amd64/app00001")
	}
}
