package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Tokens are looked up by the SHA-256 of their secret through a unique
// index. That lookup is not constant-time, and need not be: the secret has
// 256 random bits, so learning how much of a guess's hash matches a stored
// hash says nothing about any other secret's hash.

const tokenColumns = "id, kind, scope, hash, created, expires, revoked, uses, max_uses"

func (s *sqlStore) CreateToken(ctx context.Context, t Token) error {
	if t.ID == "" || t.Hash == "" || (t.Kind != Publisher && t.Kind != Enroll) {
		return fmt.Errorf("create token %q: needs an ID, a hash and kind publisher or enroll (kind %q)", t.ID, t.Kind)
	}
	return s.write(ctx, func(tx *txn) error {
		_, err := tx.exec(ctx, "INSERT INTO tokens ("+tokenColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			t.ID, string(t.Kind), t.Scope, t.Hash, nanos(t.Created), nanos(t.Expires), nanos(t.Revoked), t.Uses, t.MaxUses)
		if c := s.constraint(err); c != nil {
			return fmt.Errorf("create token %q: its ID or hash is taken: %w", t.ID, c)
		}
		if err != nil {
			return fmt.Errorf("create token %q: %w", t.ID, err)
		}
		return nil
	})
}

func (s *sqlStore) ListTokens(ctx context.Context) ([]Token, error) {
	rows, err := s.query(ctx, "SELECT "+tokenColumns+" FROM tokens ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

func (s *sqlStore) RevokeToken(ctx context.Context, id string, at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("revoke token %q: no time given", id)
	}
	return s.write(ctx, func(tx *txn) error {
		res, err := tx.exec(ctx, "UPDATE tokens SET revoked = CASE WHEN revoked = 0 THEN ? ELSE revoked END WHERE id = ?", nanos(at), id)
		if err != nil {
			return fmt.Errorf("revoke token %q: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return fmt.Errorf("revoke token %q: %w", id, ErrNotFound)
		}
		return nil
	})
}

func (s *sqlStore) UseToken(ctx context.Context, kind TokenKind, hash string, now time.Time) (Token, error) {
	var t Token
	err := s.write(ctx, func(tx *txn) (err error) {
		t, err = useToken(ctx, tx, kind, hash, now)
		return err
	})
	return t, err
}

// useToken checks the token in tx and counts one use.
func useToken(ctx context.Context, tx *txn, kind TokenKind, hash string, now time.Time) (Token, error) {
	t, err := scanToken(tx.queryRow(ctx, "SELECT "+tokenColumns+" FROM tokens WHERE hash = ? AND kind = ?", hash, string(kind)))
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, fmt.Errorf("use %s token: no such token: %w", kind, ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("use %s token: %w", kind, err)
	}
	switch {
	case !t.Revoked.IsZero():
		return Token{}, fmt.Errorf("use %s token %q: revoked at %s: %w", kind, t.ID, t.Revoked.Format(time.RFC3339), ErrTokenRevoked)
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		return Token{}, fmt.Errorf("use %s token %q: expired at %s: %w", kind, t.ID, t.Expires.Format(time.RFC3339), ErrTokenExpired)
	case t.MaxUses > 0 && t.Uses >= t.MaxUses:
		return Token{}, fmt.Errorf("use %s token %q: all %d uses taken: %w", kind, t.ID, t.MaxUses, ErrTokenUsedUp)
	}
	// The condition repeats the checks so that two transactions racing
	// for the last use cannot both take it, whatever the isolation level.
	res, err := tx.exec(ctx, "UPDATE tokens SET uses = uses + 1 WHERE id = ? AND revoked = 0 AND (max_uses = 0 OR uses < max_uses)", t.ID)
	if err != nil {
		return Token{}, fmt.Errorf("use %s token %q: %w", kind, t.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return Token{}, fmt.Errorf("use %s token %q: taken by another request: %w", kind, t.ID, ErrTokenUsedUp)
	}
	t.Uses++
	return t, nil
}

type scanner interface{ Scan(...any) error }

func scanToken(r scanner) (Token, error) {
	var t Token
	var kind string
	var created, expires, revoked int64
	if err := r.Scan(&t.ID, &kind, &t.Scope, &t.Hash, &created, &expires, &revoked, &t.Uses, &t.MaxUses); err != nil {
		return Token{}, err
	}
	t.Kind = TokenKind(kind)
	t.Created, t.Expires, t.Revoked = fromNanos(created), fromNanos(expires), fromNanos(revoked)
	return t, nil
}
