package server

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ferry-updates/ferry/internal/atomicfile"
	"github.com/ferry-updates/ferry/release"
)

// Publisher tokens authenticate the admin API. A token is "ferry_" and the
// unpadded base64url encoding of 32 random bytes; it is shown once, when it
// is created, and only its SHA-256 is stored, in a file of the repository
// directory (never under public/) with mode 0600:
//
//	{"format":2,"tokens":[{"id":"0123456789ab","app":"hello","sha256":"HEX","created":"RFC3339","scope":"rollout"}]}
//
// The ID is the first 12 hex digits of the hash: enough to name a token in
// list and revoke, and of no use to find the token. A token is scoped to
// one application and to one kind of work (Scope): publishing, the
// default, or rollout decisions (F4: a pipeline's publisher token, the
// secret most likely to leak, cannot halt, pull or widen a rollout). A
// token without "scope", as every token made before scopes existed, is a
// publish token; a file that holds none with a scope keeps format 1, so
// that an older server still reads it.

// TokensFile is the name of the tokens file in a repository directory.
const TokensFile = "ferry-tokens.json"

const (
	tokenPrefix    = "ferry_"
	tokensFormat   = 2 // 1: no token has a scope
	maxTokensFile  = 1 << 20
	tokenIDLen     = 12
	maxTokenLength = 128
)

// Token is one stored publisher token (its hash, never the secret).
type Token struct {
	ID      string    `json:"id"`
	App     string    `json:"app"`
	SHA256  string    `json:"sha256"`
	Created time.Time `json:"created"`
	Scope   Scope     `json:"scope,omitempty"` // "": ScopePublish
}

// Scope is what a token may do for its application.
type Scope string

const (
	// ScopePublish reads the application's role and rollout status and
	// uploads releases (with the initial rollout decision of the version
	// an upload adds). It is the scope of a token stored without one.
	ScopePublish Scope = "publish"
	// ScopeRollout reads the rollout status and signs rollout decisions
	// (start, halt, resume, pull, promote) with the online rollout key.
	ScopeRollout Scope = "rollout"
)

// Of returns t's scope; a token stored without one publishes.
func (t Token) Of() Scope {
	if t.Scope == "" {
		return ScopePublish
	}
	return t.Scope
}

type tokensJSON struct {
	Format int     `json:"format"`
	Tokens []Token `json:"tokens"`
}

// ErrNoToken means a token ID names no stored token.
var ErrNoToken = errors.New("no such token")

// CreateToken makes a new publish token for app, adds its hash to the
// tokens file (created if missing) and returns the secret, which is stored
// nowhere. Concurrent calls on one file may lose one of the tokens; run
// them one at a time.
func CreateToken(file, app string, now time.Time) (secret string, t Token, err error) {
	return CreateScopedToken(file, app, ScopePublish, now)
}

// CreateScopedToken is CreateToken for a token of scope.
func CreateScopedToken(file, app string, scope Scope, now time.Time) (secret string, t Token, err error) {
	if err := release.ValidApp(app); err != nil {
		return "", Token{}, err
	}
	if scope != ScopePublish && scope != ScopeRollout {
		return "", Token{}, fmt.Errorf("create token: scope %q is not publish or rollout", scope)
	}
	ts, err := ListTokens(file)
	if err != nil {
		return "", Token{}, err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Token{}, fmt.Errorf("create token: %w", err)
	}
	secret = tokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(secret))
	h := hex.EncodeToString(sum[:])
	t = Token{ID: h[:tokenIDLen], App: app, SHA256: h, Created: now.UTC().Truncate(time.Second)}
	if scope != ScopePublish {
		t.Scope = scope
	}
	if err := writeTokens(file, append(ts, t)); err != nil {
		return "", Token{}, err
	}
	return secret, t, nil
}

// ListTokens returns the stored tokens; a missing file is no tokens.
func ListTokens(file string) ([]Token, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTokensFile+1))
	if err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	if len(data) > maxTokensFile {
		return nil, fmt.Errorf("read tokens %s: larger than %d bytes", file, maxTokensFile)
	}
	var tj tokensJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tj); err != nil {
		return nil, fmt.Errorf("read tokens %s: %w", file, err)
	}
	if tj.Format != 1 && tj.Format != tokensFormat {
		return nil, fmt.Errorf("read tokens %s: format %d, want 1 or %d (made by a newer ferry?)", file, tj.Format, tokensFormat)
	}
	for _, t := range tj.Tokens {
		if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != sha256.Size || !strings.HasPrefix(t.SHA256, t.ID) {
			return nil, fmt.Errorf("read tokens %s: token %q has a malformed hash", file, t.ID)
		}
		switch {
		case t.Scope != "" && t.Scope != ScopeRollout:
			// "publish" is stored as no scope: anything else is not ours.
			return nil, fmt.Errorf("read tokens %s: token %q has an unknown scope %q", file, t.ID, t.Scope)
		case t.Scope != "" && tj.Format == 1:
			return nil, fmt.Errorf("read tokens %s: token %q has a scope in a format 1 file", file, t.ID)
		}
	}
	return tj.Tokens, nil
}

// RevokeToken removes the token with this ID (ErrNoToken if none has it).
func RevokeToken(file, id string) (Token, error) {
	ts, err := ListTokens(file)
	if err != nil {
		return Token{}, err
	}
	i := slices.IndexFunc(ts, func(t Token) bool { return t.ID == id })
	if i < 0 {
		return Token{}, fmt.Errorf("revoke token %q: %w", id, ErrNoToken)
	}
	gone := ts[i]
	if err := writeTokens(file, slices.Delete(ts, i, i+1)); err != nil {
		return Token{}, err
	}
	return gone, nil
}

func writeTokens(file string, ts []Token) error {
	format := 1
	if slices.ContainsFunc(ts, func(t Token) bool { return t.Scope != "" }) {
		format = tokensFormat
	}
	data, err := json.MarshalIndent(tokensJSON{Format: format, Tokens: ts}, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(file, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write tokens: %w", err)
	}
	return nil
}

// authenticate returns the stored token whose hash is that of secret. Every
// stored hash is compared, in constant time, whatever matches first.
func authenticate(ts []Token, secret string) (Token, bool) {
	if secret == "" || len(secret) > maxTokenLength {
		return Token{}, false
	}
	sum := sha256.Sum256([]byte(secret))
	var found Token
	ok := 0
	for _, t := range ts {
		want, err := hex.DecodeString(t.SHA256)
		if err != nil {
			continue
		}
		if subtle.ConstantTimeCompare(sum[:], want) == 1 {
			found, ok = t, 1
		}
	}
	return found, ok == 1
}
