package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/store"
)

// TestInstallationRevoke_R69: ferry installation revoke marks one enrolled
// installation revoked in the server's database (its reports are refused
// and not counted: server and store tests), and says what to do for an
// unknown install ID.
func TestInstallationRevoke_R69(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, storeFile))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := st.CreateToken(ctx, store.Token{ID: "tok", Kind: store.Enroll, Scope: "*", Hash: strings.Repeat("ab", 32), Created: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.Enroll(ctx, store.Installation{ID: "inst-1", CredentialHash: strings.Repeat("cd", 32), Enrolled: now}, strings.Repeat("ab", 32)); err != nil {
		t.Fatal(err)
	}
	st.Close()

	code, out, errOut := runFerry(t, "installation", "revoke", "--repo", dir, "inst-1")
	if code != 0 || !strings.Contains(out, "revoked installation inst-1") {
		t.Fatalf("revoke: %d %q %q", code, out, errOut)
	}
	code, _, errOut = runFerry(t, "installation", "revoke", "--repo", dir, "nobody")
	if code == 0 || !strings.Contains(errOut, "ferry agent status") {
		t.Fatalf("revoke of an unknown installation: %d %q; want an error saying where install IDs are", code, errOut)
	}

	st, err = store.Open(ctx, filepath.Join(dir, storeFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	in, err := st.Installation(ctx, "inst-1")
	if err != nil || in.Revoked.IsZero() {
		t.Fatalf("Installation(inst-1) = %+v, %v; want revoked", in, err)
	}
	if _, err := st.Installation(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
}
