package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

func (s *sqlStore) Enroll(ctx context.Context, in Installation, tokenHash string) error {
	if in.ID == "" || in.CredentialHash == "" || in.Enrolled.IsZero() {
		return fmt.Errorf("enroll installation %q: needs an install ID, a credential hash and an enrollment time", in.ID)
	}
	return s.write(ctx, func(tx *txn) error {
		t, err := useToken(ctx, tx, Enroll, tokenHash, in.Enrolled)
		if err != nil {
			return fmt.Errorf("enroll installation %q: %w", in.ID, err)
		}
		seen := in.LastSeen
		if seen.IsZero() {
			seen = in.Enrolled
		}
		// An installation whose enrollment token was revoked (its reports
		// refused) enrolls again under the same ID with a valid token: the
		// new credential and token replace the old ones. Tried first, since
		// a failed INSERT would end a PostgreSQL transaction.
		res, err := tx.exec(ctx, `UPDATE installations SET credential_hash = ?, token_id = ?, enrolled = ?, last_seen = ?
			WHERE id = ? AND revoked = 0 AND token_id IN (SELECT id FROM tokens WHERE revoked <> 0)`,
			in.CredentialHash, t.ID, nanos(in.Enrolled), nanos(seen), in.ID)
		if err != nil {
			return fmt.Errorf("enroll installation %q: %w", in.ID, err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			return putApps(ctx, tx, in.ID, seen, in.Apps)
		}
		// Enrolled already: say whether it was revoked on its own, which
		// no enrollment token undoes. Asked before the INSERT, for the
		// same reason as the UPDATE; a race that enrolls it in between is
		// still caught by the INSERT's conflict.
		var revoked int64
		switch err := tx.queryRow(ctx, "SELECT revoked FROM installations WHERE id = ?", in.ID).Scan(&revoked); {
		case err == nil && revoked != 0:
			return fmt.Errorf("enroll installation %q: revoked at %s: %w", in.ID, fromNanos(revoked).Format(time.RFC3339), ErrInstallationRevoked)
		case err == nil:
			return fmt.Errorf("enroll installation %q: already enrolled: %w", in.ID, ErrConflict)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("enroll installation %q: %w", in.ID, err)
		}
		_, err = tx.exec(ctx, "INSERT INTO installations (id, credential_hash, token_id, enrolled, last_seen) VALUES (?, ?, ?, ?, ?)",
			in.ID, in.CredentialHash, t.ID, nanos(in.Enrolled), nanos(seen))
		if c := s.constraint(err); c == ErrConflict {
			return fmt.Errorf("enroll installation %q: already enrolled: %w", in.ID, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("enroll installation %q: %w", in.ID, err)
		}
		return putApps(ctx, tx, in.ID, seen, in.Apps)
	})
}

func (s *sqlStore) RevokeInstallation(ctx context.Context, id string, at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("revoke installation %q: needs a time", id)
	}
	return s.write(ctx, func(tx *txn) error {
		var one int
		if err := tx.queryRow(ctx, "SELECT 1 FROM installations WHERE id = ?", id).Scan(&one); err != nil {
			return fmt.Errorf("revoke installation %q: %w", id, noRows(err))
		}
		if _, err := tx.exec(ctx, "UPDATE installations SET revoked = ? WHERE id = ? AND revoked = 0", nanos(at), id); err != nil {
			return fmt.Errorf("revoke installation %q: %w", id, err)
		}
		return nil
	})
}

// putApps records what an installation runs.
func putApps(ctx context.Context, tx *txn, id string, at time.Time, apps []App) error {
	for _, a := range apps {
		if a.App == "" {
			return fmt.Errorf("installation %q: an application without a name", id)
		}
		_, err := tx.exec(ctx, `INSERT INTO installation_apps (install_id, app, version, channel, updated) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (install_id, app) DO UPDATE SET version = excluded.version, channel = excluded.channel, updated = excluded.updated`,
			id, a.App, a.Version, a.Channel, nanos(at))
		if err != nil {
			return fmt.Errorf("installation %q: record %s: %w", id, a.App, err)
		}
	}
	return nil
}

func (s *sqlStore) Seen(ctx context.Context, id string, at time.Time, apps []App) error {
	return s.write(ctx, func(tx *txn) error { return seenTx(ctx, tx, id, at, apps) })
}

// seenTx is Seen in tx.
func seenTx(ctx context.Context, tx *txn, id string, at time.Time, apps []App) error {
	res, err := tx.exec(ctx, "UPDATE installations SET last_seen = ? WHERE id = ? AND last_seen < ?", nanos(at), id, nanos(at))
	if err != nil {
		return fmt.Errorf("installation %q seen: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		// Either unknown, or seen later already: tell them apart.
		var one int
		if err := tx.queryRow(ctx, "SELECT 1 FROM installations WHERE id = ?", id).Scan(&one); err != nil {
			return fmt.Errorf("installation %q seen: %w", id, noRows(err))
		}
	}
	return putApps(ctx, tx, id, at, apps)
}

// installationColumns are what ListInstallations reads of an installation
// (i) and of its enrollment token (t).
const installationColumns = "i.id, i.credential_hash, i.token_id, i.enrolled, i.last_seen, i.revoked, t.revoked"

// countedJoin and counted select, of rows with an install_id column o,
// those of the installations the guard counts (outcomesQuery): enrolled,
// with a token for the application (the argument) or for any, neither
// revoked. The dashboard's counters count the same, so that its numbers
// and the guard's agree (a revoked installation is in neither).
const (
	countedJoin = " JOIN installations i ON i.id = o.install_id JOIN tokens t ON t.id = i.token_id"
	counted     = " (t.scope = '*' OR t.scope = ?) AND t.revoked = 0 AND i.revoked = 0"
)

func (s *sqlStore) Installation(ctx context.Context, id string) (Installation, error) {
	// One statement (every report authenticates with it): the
	// installation, once per application it runs, or once with none, and
	// what its enrollment token allows.
	rows, err := s.query(ctx, `SELECT i.id, i.credential_hash, i.token_id, i.enrolled, i.last_seen, i.revoked, t.scope, t.revoked, a.app, a.version, a.channel, a.updated
		FROM installations i JOIN tokens t ON t.id = i.token_id LEFT JOIN installation_apps a ON a.install_id = i.id WHERE i.id = ?`, id)
	if err != nil {
		return Installation{}, fmt.Errorf("installation %q: %w", id, err)
	}
	defer rows.Close()
	var in Installation
	found := false
	for rows.Next() {
		var enrolled, seen, self, revoked int64
		var app, version, channel sql.NullString
		var updated sql.NullInt64
		if err := rows.Scan(&in.ID, &in.CredentialHash, &in.TokenID, &enrolled, &seen, &self, &in.TokenScope, &revoked, &app, &version, &channel, &updated); err != nil {
			return Installation{}, fmt.Errorf("installation %q: %w", id, err)
		}
		in.Enrolled, in.LastSeen, in.Revoked, in.TokenRevoked, found = fromNanos(enrolled), fromNanos(seen), fromNanos(self), fromNanos(revoked), true
		if app.Valid {
			in.Apps = append(in.Apps, App{App: app.String, Version: version.String, Channel: channel.String, Updated: fromNanos(updated.Int64)})
		}
	}
	if err := rows.Err(); err != nil {
		return Installation{}, fmt.Errorf("installation %q: %w", id, err)
	}
	if !found {
		return Installation{}, fmt.Errorf("installation %q: %w", id, ErrNotFound)
	}
	slices.SortFunc(in.Apps, func(a, b App) int { return strings.Compare(a.App, b.App) })
	return in, nil
}

// where is the WHERE clause of q and its arguments.
func (q InstallationQuery) where() (string, []any) {
	var conds []string
	var args []any
	if !q.SeenBefore.IsZero() {
		conds, args = append(conds, "i.last_seen < ?"), append(args, nanos(q.SeenBefore))
	}
	if q.TokenID != "" {
		conds, args = append(conds, "i.token_id = ? AND i.revoked = 0"), append(args, q.TokenID)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

func (s *sqlStore) CountInstallations(ctx context.Context, q InstallationQuery) (int, error) {
	where, args := q.where()
	var n int
	if err := s.queryRow(ctx, "SELECT COUNT(*) FROM installations i"+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count installations: %w", err)
	}
	return n, nil
}

func (s *sqlStore) ListInstallations(ctx context.Context, q InstallationQuery) ([]Installation, error) {
	where, args := q.where()
	args = append(args, limit(q.Limit))
	rows, err := s.query(ctx, "SELECT "+installationColumns+" FROM installations i JOIN tokens t ON t.id = i.token_id"+where+" ORDER BY i.id LIMIT ?", args...)
	if err != nil {
		return nil, fmt.Errorf("list installations: %w", err)
	}
	defer rows.Close()
	var out []Installation
	for rows.Next() {
		in, err := scanInstallation(rows)
		if err != nil {
			return nil, fmt.Errorf("list installations: %w", err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list installations: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	apps, err := s.apps(ctx, "WHERE install_id >= ? AND install_id <= ?", out[0].ID, out[len(out)-1].ID)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Apps = apps[out[i].ID]
	}
	return out, nil
}

// apps returns the applications of the installations that where selects, by install ID.
func (s *sqlStore) apps(ctx context.Context, where string, args ...any) (map[string][]App, error) {
	rows, err := s.query(ctx, "SELECT install_id, app, version, channel, updated FROM installation_apps "+where, args...)
	if err != nil {
		return nil, fmt.Errorf("installation applications: %w", err)
	}
	defer rows.Close()
	out := map[string][]App{}
	for rows.Next() {
		var id string
		var a App
		var updated int64
		if err := rows.Scan(&id, &a.App, &a.Version, &a.Channel, &updated); err != nil {
			return nil, fmt.Errorf("installation applications: %w", err)
		}
		a.Updated = fromNanos(updated)
		out[id] = append(out[id], a)
	}
	for _, as := range out {
		slices.SortFunc(as, func(a, b App) int { return strings.Compare(a.App, b.App) })
	}
	return out, rows.Err()
}

func scanInstallation(r scanner) (Installation, error) {
	var in Installation
	var enrolled, seen, revoked, tokenRevoked int64
	if err := r.Scan(&in.ID, &in.CredentialHash, &in.TokenID, &enrolled, &seen, &revoked, &tokenRevoked); err != nil {
		return Installation{}, err
	}
	in.Enrolled, in.LastSeen = fromNanos(enrolled), fromNanos(seen)
	in.Revoked, in.TokenRevoked = fromNanos(revoked), fromNanos(tokenRevoked)
	return in, nil
}

func (s *sqlStore) Fleet(ctx context.Context, app string) ([]FleetCount, error) {
	rows, err := s.query(ctx, "SELECT o.version, o.channel, COUNT(*) FROM installation_apps o"+countedJoin+
		" WHERE o.app = ? AND"+counted+" GROUP BY o.version, o.channel", app, app)
	if err != nil {
		return nil, fmt.Errorf("fleet of %s: %w", app, err)
	}
	defer rows.Close()
	var out []FleetCount
	for rows.Next() {
		var f FleetCount
		if err := rows.Scan(&f.Version, &f.Channel, &f.Installations); err != nil {
			return nil, fmt.Errorf("fleet of %s: %w", app, err)
		}
		out = append(out, f)
	}
	// Sorted here, not by the database's collation, so that both
	// databases give the same order.
	slices.SortFunc(out, func(a, b FleetCount) int {
		return cmp.Or(strings.Compare(a.Version, b.Version), strings.Compare(a.Channel, b.Channel))
	})
	return out, rows.Err()
}
