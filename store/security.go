package store

import (
	"context"
	"encoding/json"
	"fmt"
)

func (s *sqlStore) RecordSecurity(ctx context.Context, e SecurityEvent) error {
	if e.InstallID == "" || e.Kind == "" || e.Time.IsZero() {
		return fmt.Errorf("record security event: needs an install ID, a kind and a time")
	}
	ev := []byte("{}")
	if len(e.Evidence) > 0 {
		var err error
		if ev, err = json.Marshal(e.Evidence); err != nil {
			return fmt.Errorf("record security event of %q: %w", e.InstallID, err)
		}
	}
	return s.write(ctx, func(tx *txn) error {
		_, err := tx.exec(ctx, "INSERT INTO security_events (install_id, occurred, kind, cause, evidence) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
			e.InstallID, nanos(e.Time), e.Kind, e.Cause, string(ev))
		if s.constraint(err) == ErrNotFound {
			return fmt.Errorf("record security event of %q: not enrolled: %w", e.InstallID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("record security event of %q: %w", e.InstallID, err)
		}
		return nil
	})
}

func (s *sqlStore) ListSecurity(ctx context.Context, installID string, max int) ([]SecurityEvent, error) {
	text, args := "SELECT install_id, occurred, kind, cause, evidence FROM security_events", []any{}
	if installID != "" {
		text, args = text+" WHERE install_id = ?", append(args, installID)
	}
	rows, err := s.query(ctx, text+" ORDER BY occurred DESC, install_id, kind LIMIT ?", append(args, limit(max))...)
	if err != nil {
		return nil, fmt.Errorf("list security events: %w", err)
	}
	defer rows.Close()
	var out []SecurityEvent
	for rows.Next() {
		var e SecurityEvent
		var occurred int64
		var evidence string
		if err := rows.Scan(&e.InstallID, &occurred, &e.Kind, &e.Cause, &evidence); err != nil {
			return nil, fmt.Errorf("list security events: %w", err)
		}
		e.Time = fromNanos(occurred)
		if evidence != "{}" {
			if err := json.Unmarshal([]byte(evidence), &e.Evidence); err != nil {
				return nil, fmt.Errorf("list security events: evidence: %w", err)
			}
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
