package store

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

func testTokens(t *testing.T, b backend) {
	ctx := context.Background()
	s := b.newStore(t)
	h := newToken(t, s, Publisher, Token{ID: "pub1", Scope: "hello", Expires: t0.Add(time.Hour)})
	if err := s.CreateToken(ctx, Token{ID: "pub1", Kind: Publisher, Hash: hashOf("other")}); !errors.Is(err, ErrConflict) {
		t.Errorf("a second token with ID pub1: %v, want ErrConflict", err)
	}
	if err := s.CreateToken(ctx, Token{ID: "pub2", Kind: Publisher, Hash: h}); !errors.Is(err, ErrConflict) {
		t.Errorf("a second token with the same hash: %v, want ErrConflict", err)
	}
	if err := s.CreateToken(ctx, Token{ID: "x", Kind: "root", Hash: hashOf("x")}); err == nil || errors.Is(err, ErrConflict) {
		t.Errorf("a token of kind root: %v, want a validation error", err)
	}
	for i := 1; i <= 3; i++ {
		tk, err := s.UseToken(ctx, Publisher, h, t0)
		if err != nil || tk.ID != "pub1" || tk.Scope != "hello" || tk.Uses != i || !tk.Expires.Equal(t0.Add(time.Hour)) {
			t.Fatalf("use %d: %+v, %v", i, tk, err)
		}
	}
	if _, err := s.UseToken(ctx, Enroll, h, t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("a publisher token used to enroll: %v, want ErrNotFound", err)
	}
	if _, err := s.UseToken(ctx, Publisher, hashOf("wrong"), t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown hash: %v, want ErrNotFound", err)
	}
	newToken(t, s, Enroll, Token{ID: "enr1", MaxUses: 2})
	ts, err := s.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, tk := range ts {
		ids = append(ids, tk.ID)
	}
	if !slices.Equal(ids, []string{"enr1", "pub1"}) || ts[1].Uses != 3 || ts[0].MaxUses != 2 || ts[0].Kind != Enroll {
		t.Fatalf("ListTokens = %+v", ts)
	}
}

func testTokenExpiryAndRevocation(t *testing.T, b backend) {
	ctx := context.Background()
	s := b.newStore(t)
	exp := t0.Add(time.Hour)
	h := newToken(t, s, Enroll, Token{ID: "e", Expires: exp})
	if _, err := s.UseToken(ctx, Enroll, h, exp.Add(-time.Nanosecond)); err != nil {
		t.Fatalf("use just before expiry: %v", err)
	}
	if _, err := s.UseToken(ctx, Enroll, h, exp); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("use at expiry: %v, want ErrTokenExpired", err)
	}
	r := newToken(t, s, Enroll, Token{ID: "r"})
	if err := s.RevokeToken(ctx, "r", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, "r", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UseToken(ctx, Enroll, r, t0); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("use of a revoked token: %v, want ErrTokenRevoked", err)
	}
	if err := s.RevokeToken(ctx, "nope", t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke an unknown token: %v, want ErrNotFound", err)
	}
	ts, _ := s.ListTokens(ctx)
	for _, tk := range ts {
		if tk.ID == "r" && !tk.Revoked.Equal(t0.Add(time.Minute)) {
			t.Fatalf("revoked at %v, want the first revocation's time", tk.Revoked)
		}
		if tk.ID == "e" && tk.Uses != 1 {
			t.Fatalf("expired token has %d uses, want 1 (a refused use counts nothing)", tk.Uses)
		}
	}
	// A revoked enrollment token enrolls nobody.
	in := Installation{ID: "late", CredentialHash: hashOf("c"), Enrolled: t0}
	if err := s.Enroll(ctx, in, r); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("enroll with a revoked token: %v, want ErrTokenRevoked", err)
	}
	if _, err := s.Installation(ctx, "late"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("installation enrolled with a revoked token: %v", err)
	}
}

// Many requests racing for the last uses of a token: exactly MaxUses win.
func testTokenLastUseRace(t *testing.T, b backend) {
	ctx := context.Background()
	loc := b.fresh(t)
	s := openStore(t, loc)
	other := openStore(t, loc) // a second handle, as a second process
	h := newToken(t, s, Enroll, Token{ID: "five", MaxUses: 5})
	var mu sync.Mutex
	won, usedUp := 0, 0
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			st := s
			if i%2 == 1 {
				st = other
			}
			_, err := st.UseToken(ctx, Enroll, h, t0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, ErrTokenUsedUp):
				usedUp++
			default:
				t.Errorf("UseToken: %v", err)
			}
		})
	}
	wg.Wait()
	if won != 5 || usedUp != 15 {
		t.Fatalf("%d uses accepted and %d refused as used up, want 5 and 15", won, usedUp)
	}
}
