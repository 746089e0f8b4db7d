package trust

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
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
// globs, escapes, bad patterns and empty segments (paths only: go-tuf
// matches path hash prefixes against the wrong encoding).
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

// hexDigest is the specification's HEX_DIGEST of a target path: the
// SHA-256 of the path, hex-encoded.
func hexDigest(path string) string {
	h := sha256.Sum256([]byte(path))
	return hex.EncodeToString(h[:])
}

// hashPrefix returns the first n characters of path's hex digest.
func hashPrefix(path string, n int) string { return hexDigest(path)[:n] }

// specRolesFor is the delegation match of the specification (5.6.7.2),
// written here independently of match.go: a role with "paths" is trusted
// for the paths its patterns match (go-tuf's IsDelegatedPath, asked about
// the patterns only), one with "path_hash_prefixes" for the paths whose
// hex digest starts with one of them; succinct roles as go-tuf computes
// them (the leading bit_length bits of the same digest).
func specRolesFor(del *metadata.Delegations, path string) []metadata.RoleResult {
	if del.Roles == nil {
		if del.SuccinctRoles != nil {
			return del.SuccinctRoles.GetRolesForTarget(path)
		}
		return nil
	}
	var out []metadata.RoleResult
	for _, r := range del.Roles {
		ok := false
		if len(r.Paths) > 0 {
			ok, _ = (&metadata.DelegatedRole{Paths: r.Paths}).IsDelegatedPath(path)
		} else {
			for _, p := range r.PathHashPrefixes {
				ok = ok || strings.HasPrefix(hexDigest(path), p)
			}
		}
		if ok {
			out = append(out, metadata.RoleResult{Name: r.Name, Terminating: r.Terminating})
		}
	}
	return out
}

// TestPathHashPrefixHex_R21: path_hash_prefixes are prefixes of the hex
// SHA-256 digest of the target path, as the specification defines them;
// the base64url encoding go-tuf v2.4.2 compares with matches nothing.
func TestPathHashPrefixHex_R21(t *testing.T) {
	for _, path := range matchPaths {
		sum := sha256.Sum256([]byte(path))
		hx := hex.EncodeToString(sum[:])
		b64 := base64.URLEncoding.EncodeToString(sum[:])
		for n := 1; n <= len(hx); n++ {
			if !hashPrefixMatch([]string{"zz", hx[:n]}, path) {
				t.Fatalf("%q: hex prefix %q not matched", path, hx[:n])
			}
		}
		flipped := "0"
		if hx[0] == '0' {
			flipped = "1"
		}
		if hashPrefixMatch([]string{flipped}, path) {
			t.Fatalf("%q: prefix %q matched digest %s", path, flipped, hx)
		}
		if wrong := b64[:4]; !strings.HasPrefix(hx, wrong) && hashPrefixMatch([]string{wrong}, path) {
			t.Fatalf("%q: base64url prefix %q matched", path, wrong)
		}
		if hashPrefixMatch([]string{strings.ToUpper(hx[:8])}, path) && strings.ToUpper(hx[:8]) != hx[:8] {
			t.Fatalf("%q: upper-case hex matched (the digest is lower-case)", path)
		}
		if hashPrefixMatch(nil, path) || hashPrefixMatch([]string{hx + "0"}, path) {
			t.Fatalf("%q: no prefix, or one longer than the digest, matched", path)
		}
	}
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
			dr.PathHashPrefixes = []string{"a", "0", "f"}
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
// per-prefix pre-selection of one TargetsUnder call, returns exactly what
// the specification says (specRolesFor: go-tuf's GetRolesForTarget for
// paths and succinct roles, the hex digest for hash prefixes; same roles,
// same order, same terminating flags) for every path under every prefix.
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
				want := specRolesFor(del, x)
				if got := rolesFor(del, x, nil); !slices.Equal(got, want) {
					t.Fatalf("round %d path %q: got %v, spec %v", round, x, got, want)
				}
				if !strings.HasPrefix(x, prefix) {
					continue
				}
				if got := rolesFor(del, x, sel.candidates(h)); !slices.Equal(got, want) {
					t.Fatalf("round %d prefix %q path %q: pre-selected %v, spec %v (roles %+v)", round, prefix, x, got, want, del.Roles)
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
