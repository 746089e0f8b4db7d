package server

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestTokenRoundTrip(t *testing.T) {
	file := filepath.Join(t.TempDir(), TokensFile)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	secret, tok, err := CreateToken(file, "hello", now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "ferry_") || len(secret) != len("ferry_")+43 {
		t.Fatalf("token %q: want ferry_ and 43 base64url characters", secret)
	}
	data, _ := os.ReadFile(file)
	if strings.Contains(string(data), secret) || strings.Contains(string(data), secret[len("ferry_"):]) {
		t.Fatal("the tokens file holds the token itself")
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("tokens file mode %v, want 0600", fi.Mode().Perm())
	}
	secret2, _, err := CreateToken(file, "other", now)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := ListTokens(file)
	if err != nil || len(ts) != 2 || ts[0] != tok {
		t.Fatalf("ListTokens = %+v, %v", ts, err)
	}
	for _, c := range []struct {
		secret, app string
		ok          bool
	}{
		{secret, "hello", true},
		{secret2, "other", true},
		{secret + "x", "", false},
		{secret[:len(secret)-1], "", false},
		{"", "", false},
		{tok.SHA256, "", false},
		{strings.Repeat("a", 10000), "", false},
	} {
		got, ok := authenticate(ts, c.secret)
		if ok != c.ok || ok && got.App != c.app {
			t.Errorf("authenticate(%.12q...) = %v, %v; want %v, %v", c.secret, got.App, ok, c.app, c.ok)
		}
	}
	if _, err := RevokeToken(file, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := RevokeToken(file, tok.ID); !errors.Is(err, ErrNoToken) {
		t.Fatalf("second revoke = %v, want ErrNoToken", err)
	}
	ts, _ = ListTokens(file)
	if _, ok := authenticate(ts, secret); ok {
		t.Fatal("a revoked token still authenticates")
	}
	if _, _, err := CreateToken(file, "Bad/App", now); err == nil {
		t.Fatal("a token for an invalid application name was created")
	}
}

// FuzzListTokens: the tokens file parser never panics, and what it accepts
// writes back to a file it reads the same.
func FuzzListTokens(f *testing.F) {
	f.Add([]byte(`{"format":1,"tokens":[{"id":"0123456789ab","app":"hello","sha256":"0123456789ab` + strings.Repeat("0", 52) + `","created":"2026-12-01T10:00:00Z"}]}`))
	f.Add([]byte(`{"format":1,"tokens":[]}`))
	f.Add([]byte(`{"format":2}`))
	f.Add([]byte(`{"format":1,"tokens":[{"id":"x","sha256":"zz"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		file := filepath.Join(dir, TokensFile)
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		ts, err := ListTokens(file)
		if err != nil {
			return
		}
		if err := writeTokens(file, ts); err != nil {
			t.Fatal(err)
		}
		again, err := ListTokens(file)
		if err != nil {
			t.Fatalf("a written tokens file does not read back: %v", err)
		}
		if len(ts) != len(again) || len(ts) > 0 && !reflect.DeepEqual(ts, again) {
			t.Fatalf("round trip changed the tokens: %+v -> %+v", ts, again)
		}
	})
}
