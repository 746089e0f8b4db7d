package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func testEnroll(t *testing.T, b backend) {
	ctx := context.Background()
	s := b.newStore(t)
	h := newToken(t, s, Enroll, Token{ID: "tok", MaxUses: 2})
	in := Installation{ID: "inst-1", CredentialHash: hashOf("cred"), Enrolled: t0,
		Apps: []App{{App: "web", Version: "1.0.0", Channel: "stable"}, {App: "api", Channel: "beta"}}}
	if err := s.Enroll(ctx, in, h); err != nil {
		t.Fatal(err)
	}
	got, err := s.Installation(ctx, "inst-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "inst-1" || got.CredentialHash != in.CredentialHash || got.TokenID != "tok" ||
		!got.Enrolled.Equal(t0) || !got.LastSeen.Equal(t0) || len(got.Apps) != 2 ||
		got.Apps[0].App != "api" || got.Apps[0].Channel != "beta" || got.Apps[1].Version != "1.0.0" {
		t.Fatalf("Installation = %+v", got)
	}
	// Enrolling the same ID again fails and takes no use of the token.
	if err := s.Enroll(ctx, in, h); !errors.Is(err, ErrConflict) {
		t.Fatalf("second enrollment of inst-1: %v, want ErrConflict", err)
	}
	in2 := in
	in2.ID = "inst-2"
	if err := s.Enroll(ctx, in2, h); err != nil {
		t.Fatalf("enroll inst-2 with the token's second use: %v (did the refused enrollment count a use?)", err)
	}
	if got, err := s.Installation(ctx, "inst-1"); err != nil || len(got.Apps) != 2 || !got.Apps[1].Updated.Equal(t0) {
		t.Fatalf("Installation(inst-1) after inst-2 enrolled = %+v, %v", got, err)
	}
	bare := newToken(t, s, Enroll, Token{})
	if err := s.Enroll(ctx, Installation{ID: "bare", CredentialHash: hashOf("b"), Enrolled: t0}, bare); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Installation(ctx, "bare"); err != nil || got.ID != "bare" || got.CredentialHash != hashOf("b") || len(got.Apps) != 0 {
		t.Fatalf("Installation of one that runs nothing = %+v, %v", got, err)
	}
	// Those that revoking the token would cut off: enrolled with it, not
	// revoked on their own.
	countOf := func(token string) int {
		t.Helper()
		n, err := s.CountInstallations(ctx, InstallationQuery{TokenID: token})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := countOf("tok"); n != 2 {
		t.Fatalf("installations of token tok: %d, want 2", n)
	}
	if err := s.RevokeInstallation(ctx, "inst-2", t0); err != nil {
		t.Fatal(err)
	}
	if n := countOf("tok"); n != 1 {
		t.Fatalf("installations of token tok once inst-2 is revoked: %d, want 1", n)
	}
	// ListInstallations reads the same query (with the token's columns
	// beside the installation's: no ambiguous name).
	if l, err := s.ListInstallations(ctx, InstallationQuery{TokenID: "tok"}); err != nil || len(l) != 1 || l[0].ID != "inst-1" {
		t.Fatalf("ListInstallations of token tok = %+v, %v; want inst-1", l, err)
	}
	// A revoked installation never enrolls again, and is told so rather
	// than that it is enrolled; no use of the token is taken.
	fresh := newToken(t, s, Enroll, Token{ID: "fresh", MaxUses: 1})
	if err := s.Enroll(ctx, in2, fresh); !errors.Is(err, ErrInstallationRevoked) || errors.Is(err, ErrConflict) {
		t.Fatalf("enrollment of revoked inst-2: %v, want ErrInstallationRevoked", err)
	}
	if err := s.Enroll(ctx, Installation{ID: "after", CredentialHash: hashOf("a"), Enrolled: t0}, fresh); err != nil {
		t.Fatalf("the token's one use after a refused enrollment: %v", err)
	}
	in2.ID = "inst-3"
	if err := s.Enroll(ctx, in2, h); !errors.Is(err, ErrTokenUsedUp) {
		t.Fatalf("third enrollment with a 2-use token: %v, want ErrTokenUsedUp", err)
	}
	if err := s.Enroll(ctx, Installation{ID: "x", CredentialHash: "h", Enrolled: t0}, hashOf("no such token")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("enroll with an unknown token: %v, want ErrNotFound", err)
	}
	pub := newToken(t, s, Publisher, Token{})
	if err := s.Enroll(ctx, Installation{ID: "x", CredentialHash: "h", Enrolled: t0}, pub); !errors.Is(err, ErrNotFound) {
		t.Fatalf("enroll with a publisher token: %v, want ErrNotFound", err)
	}
	if _, err := s.Installation(ctx, "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Installation(x) = %v, want ErrNotFound", err)
	}
}

func testSeenAndFleet(t *testing.T, b backend) {
	ctx := context.Background()
	s := b.newStore(t)
	enroll(t, s, "a", "b", "c", "d")
	seen := func(id string, at time.Duration, apps ...App) {
		t.Helper()
		if err := s.Seen(ctx, id, t0.Add(at), apps); err != nil {
			t.Fatal(err)
		}
	}
	seen("a", time.Hour, App{App: "web", Version: "1.0.0", Channel: "stable"})
	seen("b", time.Hour, App{App: "web", Version: "1.1.0", Channel: "beta"})
	seen("c", 2*time.Hour, App{App: "web", Version: "1.0.0", Channel: "stable"}, App{App: "api", Version: "2.0.0", Channel: "stable"})
	seen("a", 3*time.Hour, App{App: "web", Version: "1.1.0", Channel: "beta"})
	seen("a", 30*time.Minute) // late and out of order: last seen stays at 3h
	if err := s.Seen(ctx, "nobody", t0, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Seen of an unknown installation: %v, want ErrNotFound", err)
	}
	a, err := s.Installation(ctx, "a")
	if err != nil || !a.LastSeen.Equal(t0.Add(3*time.Hour)) || len(a.Apps) != 1 || a.Apps[0].Version != "1.1.0" {
		t.Fatalf("Installation(a) = %+v, %v", a, err)
	}
	fleet, err := s.Fleet(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	want := []FleetCount{{"1.0.0", "stable", 1}, {"1.1.0", "beta", 2}}
	if len(fleet) != len(want) || fleet[0] != want[0] || fleet[1] != want[1] {
		t.Fatalf("Fleet(web) = %v, want %v", fleet, want)
	}
	stale, err := s.ListInstallations(ctx, InstallationQuery{SeenBefore: t0.Add(90 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) != 2 || stale[0].ID != "b" || stale[1].ID != "d" || stale[0].Apps[0].Version != "1.1.0" || len(stale[1].Apps) != 0 {
		t.Fatalf("installations last seen before 1h30 = %+v, want b and d", stale)
	}
	all, err := s.ListInstallations(ctx, InstallationQuery{Limit: 3})
	if err != nil || len(all) != 3 || all[2].ID != "c" || len(all[2].Apps) != 2 {
		t.Fatalf("ListInstallations(limit 3) = %+v, %v", all, err)
	}
}

// testCountInstallations: CountInstallations counts what ListInstallations
// lists, with no limit: all of them, or those last seen before a time (the
// stale ones), and none of an empty store.
func testCountInstallations(t *testing.T, b backend) {
	ctx := context.Background()
	s := b.newStore(t)
	if n, err := s.CountInstallations(ctx, InstallationQuery{}); n != 0 || err != nil {
		t.Fatalf("an empty store counts %d, %v", n, err)
	}
	ids := make([]string, 30)
	for i := range ids {
		ids[i] = fmt.Sprintf("inst-%02d", i)
	}
	enroll(t, s, ids...)
	for i, id := range ids[:12] { // seen later, 1 to 12 hours in
		if err := s.Seen(ctx, id, t0.Add(time.Duration(i+1)*time.Hour), nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		q    InstallationQuery
		want int
	}{
		{InstallationQuery{}, 30},
		{InstallationQuery{Limit: 5}, 30}, // the limit is for listing only
		{InstallationQuery{SeenBefore: t0}, 0},
		{InstallationQuery{SeenBefore: t0.Add(time.Second)}, 18},
		{InstallationQuery{SeenBefore: t0.Add(6*time.Hour + time.Second)}, 24},
		{InstallationQuery{SeenBefore: t0.Add(24 * time.Hour)}, 30},
	} {
		n, err := s.CountInstallations(ctx, c.q)
		if err != nil || n != c.want {
			t.Errorf("CountInstallations(%+v) = %d, %v; want %d", c.q, n, err, c.want)
		}
		listed, err := s.ListInstallations(ctx, InstallationQuery{SeenBefore: c.q.SeenBefore, Limit: MaxLimit})
		if err != nil || len(listed) != c.want {
			t.Errorf("ListInstallations(%+v) = %d, %v; the count and the listing disagree", c.q, len(listed), err)
		}
	}
}
