package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ferry-updates/ferry/event"
)

// chunk is the most events one INSERT statement carries: 11 parameters
// each, well below both databases' limits on parameters.
const chunk = 500

const eventColumns = "install_id, seq, prev, hash, occurred, received, kind, app, version, cause, evidence"

func (s *sqlStore) AppendEvents(ctx context.Context, installID string, batch []Event) (int, error) {
	args, err := eventArgs(installID, batch)
	if err != nil {
		return 0, err
	}
	if len(batch) == 0 {
		_, err := s.ChainHead(ctx, installID)
		return 0, err
	}
	added := 0
	err = s.write(ctx, func(tx *txn) (err error) {
		added, err = s.appendTx(ctx, tx, installID, batch, args)
		return err
	})
	if err != nil {
		return 0, err
	}
	return added, nil
}

func (s *sqlStore) Report(ctx context.Context, installID string, batch []Event, at time.Time, apps []App) (int, error) {
	args, err := eventArgs(installID, batch)
	if err != nil {
		return 0, err
	}
	added := 0
	err = s.write(ctx, func(tx *txn) (err error) {
		if added, err = s.appendTx(ctx, tx, installID, batch, args); err != nil {
			return err
		}
		return seenTx(ctx, tx, installID, at, apps)
	})
	if err != nil {
		return 0, err
	}
	return added, nil
}

// appendTx is AppendEvents in tx, with the batch's parameters.
func (s *sqlStore) appendTx(ctx context.Context, tx *txn, installID string, batch []Event, args []any) (int, error) {
	added := 0
	for i := 0; i < len(batch); i += chunk {
		n := min(chunk, len(batch)-i)
		res, err := tx.exec(ctx, insertEvents(n), args[i*11:(i+n)*11]...)
		if s.constraint(err) == ErrNotFound {
			return 0, fmt.Errorf("append events of installation %q: not enrolled: %w", installID, ErrNotFound)
		}
		if err != nil {
			return 0, fmt.Errorf("append events of installation %q: %w", installID, err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("append events of installation %q: %w", installID, err)
		}
		added += int(k)
	}
	if added < len(batch) {
		if err := sameHashes(ctx, tx, installID, batch); err != nil {
			return 0, err
		}
	}
	return added, nil
}

// eventArgs validates a batch and returns its parameters, 11 per event.
func eventArgs(installID string, batch []Event) ([]any, error) {
	if installID == "" {
		return nil, fmt.Errorf("append events: no install ID")
	}
	args := make([]any, 0, 11*len(batch))
	now := time.Now()
	for _, e := range batch {
		if e.Seq == 0 || e.Seq > math.MaxInt64 || e.Hash == "" || e.Kind == "" || e.Time.IsZero() {
			return nil, fmt.Errorf("append events of installation %q: event seq %d: needs a seq in 1..2^63-1, a hash, a kind and a time", installID, e.Seq)
		}
		ev := []byte("{}")
		if len(e.Evidence) > 0 {
			var err error
			if ev, err = json.Marshal(e.Evidence); err != nil {
				return nil, fmt.Errorf("append events of installation %q: event seq %d: %w", installID, e.Seq, err)
			}
		}
		received := e.Received
		if received.IsZero() {
			received = now
		}
		args = append(args, installID, int64(e.Seq), e.Prev, e.Hash, nanos(e.Time), nanos(received),
			string(e.Kind), e.App, e.Version, e.Cause, string(ev))
	}
	return args, nil
}

// insertEvents is the INSERT of n events; one already stored is skipped.
func insertEvents(n int) string {
	row := "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	return "INSERT INTO events (" + eventColumns + ") VALUES " + row + strings.Repeat(", "+row, n-1) +
		" ON CONFLICT (install_id, seq) DO NOTHING"
}

// sameHashes checks, after an insert skipped some events, that every event
// of the batch is stored with the batch's hash: a resent event, not
// another event under a sequence number already taken.
func sameHashes(ctx context.Context, tx *txn, installID string, batch []Event) error {
	lo, hi := batch[0].Seq, batch[0].Seq
	for _, e := range batch {
		lo, hi = min(lo, e.Seq), max(hi, e.Seq)
	}
	rows, err := tx.query(ctx, "SELECT seq, hash FROM events WHERE install_id = ? AND seq >= ? AND seq <= ?", installID, int64(lo), int64(hi))
	if err != nil {
		return fmt.Errorf("append events of installation %q: %w", installID, err)
	}
	defer rows.Close()
	stored := make(map[uint64]string, len(batch))
	for rows.Next() {
		var seq int64
		var hash string
		if err := rows.Scan(&seq, &hash); err != nil {
			return fmt.Errorf("append events of installation %q: %w", installID, err)
		}
		stored[uint64(seq)] = hash
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("append events of installation %q: %w", installID, err)
	}
	for _, e := range batch {
		if h := stored[e.Seq]; h != e.Hash {
			return fmt.Errorf("append events of installation %q: seq %d is stored with hash %s, the batch has %s: %w", installID, e.Seq, h, e.Hash, ErrConflict)
		}
	}
	return nil
}

func (s *sqlStore) QueryEvents(ctx context.Context, q EventQuery) ([]Event, error) {
	where, args := eventWhere(q, "occurred")
	text := "SELECT " + eventColumns + " FROM events" + where
	return s.queryEvents(ctx, "query events", text+" ORDER BY occurred, install_id, seq LIMIT ?", append(args, limit(q.Limit))...)
}

func (s *sqlStore) RecentEvents(ctx context.Context, q EventQuery, perInstall int) ([]Event, error) {
	where, args := eventWhere(q, "received")
	if perInstall <= 0 {
		perInstall = MaxLimit
	}
	// The window numbers each installation's events newest first; both
	// databases have ROW_NUMBER (SQLite since 3.25).
	text := "SELECT " + eventColumns + " FROM (SELECT " + eventColumns +
		", ROW_NUMBER() OVER (PARTITION BY install_id ORDER BY received DESC, seq DESC) AS nth FROM events" + where +
		") AS recent WHERE nth <= ? ORDER BY received DESC, install_id, seq DESC LIMIT ?"
	return s.queryEvents(ctx, "recent events", text, append(args, perInstall, limit(q.Limit))...)
}

// eventWhere is the WHERE clause of q (with its leading space, or empty),
// Since and Until applying to the column at (occurred or received).
func eventWhere(q EventQuery, at string) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, a ...any) { where, args = append(where, cond), append(args, a...) }
	if q.InstallID != "" {
		add("install_id = ?", q.InstallID)
	}
	if q.App != "" {
		add("app = ?", q.App)
	}
	if q.Version != "" {
		add("version = ?", q.Version)
	}
	if len(q.Kinds) > 0 {
		ks := make([]any, len(q.Kinds))
		for i, k := range q.Kinds {
			ks[i] = string(k)
		}
		add("kind IN (?"+strings.Repeat(", ?", len(ks)-1)+")", ks...)
	}
	if !q.Since.IsZero() {
		add(at+" >= ?", nanos(q.Since))
	}
	if !q.Until.IsZero() {
		add(at+" < ?", nanos(q.Until))
	}
	if len(where) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

func (s *sqlStore) queryEvents(ctx context.Context, what, text string, args ...any) ([]Event, error) {
	rows, err := s.query(ctx, text, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

func scanEvent(r scanner) (Event, error) {
	var e Event
	var seq, occurred, received int64
	var kind, evidence string
	if err := r.Scan(&e.InstallID, &seq, &e.Prev, &e.Hash, &occurred, &received, &kind, &e.App, &e.Version, &e.Cause, &evidence); err != nil {
		return Event{}, err
	}
	e.Seq, e.Time, e.Received, e.Kind = uint64(seq), fromNanos(occurred), fromNanos(received), event.Kind(kind)
	if evidence != "{}" {
		if err := json.Unmarshal([]byte(evidence), &e.Evidence); err != nil {
			return Event{}, fmt.Errorf("event seq %d of %q: evidence: %w", seq, e.InstallID, err)
		}
	}
	return e, nil
}

func (s *sqlStore) ChainHead(ctx context.Context, installID string) (Head, error) {
	// One statement: the installation (none: not enrolled) and its
	// newest event, if any (the primary key's index finds it).
	var id string
	var seq int64
	var h Head
	err := s.queryRow(ctx, `SELECT i.id, COALESCE(e.seq, 0), COALESCE(e.hash, '') FROM installations i
		LEFT JOIN events e ON e.install_id = i.id AND e.seq = (SELECT MAX(seq) FROM events WHERE install_id = i.id)
		WHERE i.id = ?`, installID).Scan(&id, &seq, &h.Hash)
	if err != nil {
		return Head{}, fmt.Errorf("chain head of installation %q: %w", installID, noRows(err))
	}
	h.Seq = uint64(seq)
	return h, nil
}
