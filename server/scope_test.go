package server

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/rollout"
)

// TestAdminTokenScopes_R53 (review F4): a publish token, the pipeline's
// secret, publishes and reads the rollout status but cannot sign a
// rollout decision (403 naming the rollout token to use, nothing signed);
// a rollout token signs decisions and reads the status but can neither
// read the role to sign on nor upload; another application's rollout
// token is refused as any other application's token is.
func TestAdminTokenScopes_R53(t *testing.T) {
	f := newAdminFixture(t, nil)
	ctx := context.Background()
	otherRoll, _, err := CreateScopedToken(f.tokens, "other", ScopeRollout, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.client(t, f.hello).Publish(ctx, "hello", f.signed(t, "1.1.0", "hello 1.1.0")); err != nil {
		t.Fatal(err)
	}
	public := filepath.Join(f.dir, "public")
	before := treeHashes(t, public)
	for _, body := range []string{
		`{"action":"start","version":"1.1.0","basis_points":10000}`,
		`{"action":"halt","version":"1.1.0"}`,
		`{"action":"pull","version":"1.1.0"}`,
		`{"action":"promote","version":"1.1.0","channel":"beta"}`,
	} {
		code, msg := f.rolloutPost(t, f.hello, body)
		if code != http.StatusForbidden || !strings.Contains(msg, "ferry token create --rollout --app hello") {
			t.Errorf("POST rollout %s with the publish token: %d %s, want 403 naming a rollout token", body, code, msg)
		}
		if code, msg := f.rolloutPost(t, otherRoll, body); code != http.StatusForbidden {
			t.Errorf("POST rollout with other's rollout token: %d %s, want 403", code, msg)
		}
	}
	if d := treeDiff(before, treeHashes(t, public)); len(d) > 0 {
		t.Fatalf("refused decisions changed what is served: %v", d)
	}
	if !strings.Contains(f.logs.String(), `"msg":"admin: token of another scope"`) {
		t.Errorf("the refusals are not logged:\n%s", f.logs)
	}
	for _, tok := range []string{f.hello, f.roll} {
		if resp := f.do(t, "GET", "/api/v1/apps/hello/rollout", tok, "", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("GET rollout: %d, want 200 with either scope", resp.StatusCode)
		}
	}
	rc := f.client(t, f.roll)
	if resp := f.do(t, "GET", "/api/v1/apps/hello/role", f.roll, "", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET role with the rollout token: %d, want 403", resp.StatusCode)
	}
	var ae *APIError
	if _, err := rc.Publish(ctx, "hello", f.signed(t, "1.2.0", "hello 1.2.0")); !errors.As(err, &ae) || ae.Status != http.StatusForbidden || !strings.Contains(ae.Message, "not publish") {
		t.Errorf("upload with the rollout token: %v, want 403", err)
	}
	if d := treeDiff(before, treeHashes(t, public)); len(d) > 0 {
		t.Fatalf("a refused upload changed what is served: %v", d)
	}
	if e, err := rc.Rollout(ctx, "hello", rollout.Action{Kind: rollout.Halt, Version: "1.1.0"}); err != nil || e.State != rollout.Halted {
		t.Fatalf("halt with the rollout token: %+v, %v", e, err)
	}
}

// TestTokensWithoutScope_R53: a tokens file written before scopes existed
// (format 1, no "scope") keeps working as documented: each token
// publishes, none makes rollout decisions; a file written with a rollout
// token is format 2, one with only publish tokens stays format 1, and an
// unknown scope, or a scope in a format 1 file, is refused.
func TestTokensWithoutScope_R53(t *testing.T) {
	f := newAdminFixture(t, nil)
	old := `{"format":1,"tokens":[` + tokenJSON(t, mustTokens(t, f.tokens)[0]) + `]}`
	if err := os.WriteFile(f.tokens, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client(t, f.hello).Publish(context.Background(), "hello", f.signed(t, "1.1.0", "hello 1.1.0")); err != nil {
		t.Fatalf("publish with a token of a format 1 file: %v", err)
	}
	if code, msg := f.rolloutPost(t, f.hello, `{"action":"halt","version":"1.1.0"}`); code != http.StatusForbidden {
		t.Errorf("halt with a token of a format 1 file: %d %s, want 403", code, msg)
	}

	file := filepath.Join(t.TempDir(), TokensFile)
	if _, _, err := CreateToken(file, "hello", time.Now()); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); !strings.Contains(string(b), `"format": 1`) || strings.Contains(string(b), "scope") {
		t.Errorf("only publish tokens: want format 1 without scope:\n%s", b)
	}
	if _, _, err := CreateScopedToken(file, "hello", ScopeRollout, time.Now()); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); !strings.Contains(string(b), `"format": 2`) || !strings.Contains(string(b), `"scope": "rollout"`) {
		t.Errorf("with a rollout token: want format 2 with its scope:\n%s", b)
	}
	ts, err := ListTokens(file)
	if err != nil || len(ts) != 2 || ts[0].Of() != ScopePublish || ts[1].Of() != ScopeRollout {
		t.Fatalf("ListTokens = %+v, %v", ts, err)
	}
	if _, _, err := CreateScopedToken(file, "hello", "admin", time.Now()); err == nil {
		t.Error("a token of an unknown scope was created")
	}
	for _, bad := range []string{
		strings.Replace(string(mustRead(t, file)), `"scope": "rollout"`, `"scope": "admin"`, 1),
		strings.Replace(string(mustRead(t, file)), `"scope": "rollout"`, `"scope": "publish"`, 1),
		strings.Replace(string(mustRead(t, file)), `"format": 2`, `"format": 1`, 1),
	} {
		os.WriteFile(file+".bad", []byte(bad), 0o600)
		if _, err := ListTokens(file + ".bad"); err == nil {
			t.Errorf("ListTokens accepted:\n%s", bad)
		}
	}
}

func tokenJSON(t *testing.T, tok Token) string {
	t.Helper()
	return `{"id":"` + tok.ID + `","app":"` + tok.App + `","sha256":"` + tok.SHA256 + `","created":"` + tok.Created.Format(time.RFC3339) + `"}`
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
