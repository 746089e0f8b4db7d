package store

import (
	"context"
	"fmt"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/rollout"
)

func (s *sqlStore) PutRelease(ctx context.Context, r Release) error {
	if r.App == "" || r.Version == "" || r.Channel == "" {
		return fmt.Errorf("put release %s/%s: needs an application, a version and a channel", r.App, r.Version)
	}
	return s.write(ctx, func(tx *txn) error {
		_, err := tx.exec(ctx, `INSERT INTO releases (app, version, channel, created) VALUES (?, ?, ?, ?)
			ON CONFLICT (app, version) DO UPDATE SET channel = excluded.channel`,
			r.App, r.Version, r.Channel, nanos(r.Created))
		if err != nil {
			return fmt.Errorf("put release %s/%s: %w", r.App, r.Version, err)
		}
		return nil
	})
}

func (s *sqlStore) ListReleases(ctx context.Context, app string) ([]Release, error) {
	rows, err := s.query(ctx, "SELECT app, version, channel, created FROM releases WHERE ? = '' OR app = ? ORDER BY app, created, version", app, app)
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	defer rows.Close()
	var out []Release
	for rows.Next() {
		var r Release
		var created int64
		if err := rows.Scan(&r.App, &r.Version, &r.Channel, &created); err != nil {
			return nil, fmt.Errorf("list releases: %w", err)
		}
		r.Created = fromNanos(created)
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *sqlStore) PutRollout(ctx context.Context, r Rollout) error {
	if r.BasisPoints < 0 || r.BasisPoints > rollout.Full || (r.State != rollout.Active && r.State != rollout.Halted && r.State != rollout.Pulled) {
		return fmt.Errorf("put rollout %s/%s: share %d basis points (want 0..%d), state %q (want active, halted or pulled)", r.App, r.Version, r.BasisPoints, rollout.Full, r.State)
	}
	return s.write(ctx, func(tx *txn) error {
		_, err := tx.exec(ctx, `INSERT INTO rollouts (app, version, basis_points, state, salt, reason, updated) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (app, version) DO UPDATE SET basis_points = excluded.basis_points, state = excluded.state,
			salt = excluded.salt, reason = excluded.reason, updated = excluded.updated`,
			r.App, r.Version, r.BasisPoints, string(r.State), r.Salt, r.Reason, nanos(r.Updated))
		if s.constraint(err) == ErrNotFound {
			return fmt.Errorf("put rollout %s/%s: no such release: %w", r.App, r.Version, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("put rollout %s/%s: %w", r.App, r.Version, err)
		}
		return nil
	})
}

const rolloutColumns = "app, version, basis_points, state, salt, reason, updated"

func (s *sqlStore) Rollout(ctx context.Context, app, version string) (Rollout, error) {
	r, err := scanRollout(s.queryRow(ctx, "SELECT "+rolloutColumns+" FROM rollouts WHERE app = ? AND version = ?", app, version))
	if err != nil {
		return Rollout{}, fmt.Errorf("rollout %s/%s: %w", app, version, noRows(err))
	}
	return r, nil
}

func (s *sqlStore) ListRollouts(ctx context.Context, app string) ([]Rollout, error) {
	rows, err := s.query(ctx, "SELECT "+rolloutColumns+" FROM rollouts WHERE ? = '' OR app = ? ORDER BY app, updated, version", app, app)
	if err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	defer rows.Close()
	var out []Rollout
	for rows.Next() {
		r, err := scanRollout(rows)
		if err != nil {
			return nil, fmt.Errorf("list rollouts: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func scanRollout(r scanner) (Rollout, error) {
	var ro Rollout
	var state string
	var updated int64
	if err := r.Scan(&ro.App, &ro.Version, &ro.BasisPoints, &state, &ro.Salt, &ro.Reason, &updated); err != nil {
		return Rollout{}, err
	}
	ro.State, ro.Updated = rollout.State(state), fromNanos(updated)
	return ro, nil
}

// The kinds a release's Stats count; Failed is any of three.
var statKinds = []event.Kind{event.InstallStarted, event.InstallDone, event.HealthPassed, event.RolledBack,
	event.HealthFailed, event.InstallFailed, event.RollbackFailed}

func (s *sqlStore) ReleaseStats(ctx context.Context, app, version string) (Stats, error) {
	// Only the installations the guard counts (countedJoin), so that the
	// dashboard's counters and the guard's evidence agree.
	rows, err := s.query(ctx, `SELECT o.k, COUNT(*) FROM (SELECT DISTINCT CASE WHEN kind IN (?, ?, ?) THEN 'failed' ELSE kind END AS k, install_id
		FROM events WHERE app = ? AND version = ? AND kind IN (?, ?, ?, ?, ?, ?, ?)) o`+countedJoin+` WHERE`+counted+` GROUP BY o.k`,
		string(event.HealthFailed), string(event.InstallFailed), string(event.RollbackFailed), app, version,
		string(statKinds[0]), string(statKinds[1]), string(statKinds[2]), string(statKinds[3]),
		string(statKinds[4]), string(statKinds[5]), string(statKinds[6]), app)
	if err != nil {
		return Stats{}, fmt.Errorf("release stats %s/%s: %w", app, version, err)
	}
	defer rows.Close()
	var st Stats
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return Stats{}, fmt.Errorf("release stats %s/%s: %w", app, version, err)
		}
		switch event.Kind(k) {
		case event.InstallDone:
			st.Installed = n
		case event.HealthPassed:
			st.Healthy = n
		case event.RolledBack:
			st.RolledBack = n
		case "failed":
			st.Failed = n
		}
	}
	if err := rows.Err(); err != nil {
		return Stats{}, fmt.Errorf("release stats %s/%s: %w", app, version, err)
	}
	rows.Close()
	// Started as the guard counts it (Outcomes): any installation that
	// reported a step of the release, once.
	if err := s.queryRow(ctx, "SELECT COUNT(*) FROM (SELECT DISTINCT install_id FROM events WHERE app = ? AND version = ? AND "+outcomeKinds+") o"+countedJoin+" WHERE"+counted,
		app, version, app).Scan(&st.Started); err != nil {
		return Stats{}, fmt.Errorf("release stats %s/%s: %w", app, version, err)
	}
	return st, nil
}
