package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/guard"
)

func (s *sqlStore) PutPlan(ctx context.Context, p RolloutPlan) error {
	if p.App == "" || p.Version == "" {
		return fmt.Errorf("put rollout plan %s/%s: needs an application and a version", p.App, p.Version)
	}
	if err := p.Plan.Check(); err != nil {
		return fmt.Errorf("put rollout plan %s/%s: %w", p.App, p.Version, err)
	}
	if p.Stage < 0 || (len(p.Plan.Stages) > 0 && p.Stage >= len(p.Plan.Stages)) || (len(p.Plan.Stages) == 0 && p.Stage != 0) {
		return fmt.Errorf("put rollout plan %s/%s: stage %d of a plan of %d stages", p.App, p.Version, p.Stage, len(p.Plan.Stages))
	}
	status, err := json.Marshal(p.Status)
	if p.Status.Evaluated.IsZero() {
		status, err = []byte("{}"), nil
	}
	if err != nil {
		return fmt.Errorf("put rollout plan %s/%s: %w", p.App, p.Version, err)
	}
	stages := make([]string, len(p.Plan.Stages))
	for i, bp := range p.Plan.Stages {
		stages[i] = strconv.Itoa(bp)
	}
	return s.write(ctx, func(tx *txn) error {
		_, err := tx.exec(ctx, `INSERT INTO rollout_plans (`+planColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (app, version) DO UPDATE SET stages = excluded.stages, stage_wait = excluded.stage_wait,
			min_healthy = excluded.min_healthy, budget = excluded.budget, check_interval = excluded.check_interval,
			stage = excluded.stage, stage_since = excluded.stage_since, created = excluded.created, status = excluded.status`,
			p.App, p.Version, strings.Join(stages, ","), int64(p.Plan.StageWait), p.Plan.MinHealthy, p.Plan.Budget,
			int64(p.Plan.CheckInterval), p.Stage, nanos(p.StageSince), nanos(p.Created), string(status))
		if err != nil {
			return fmt.Errorf("put rollout plan %s/%s: %w", p.App, p.Version, err)
		}
		return nil
	})
}

const planColumns = "app, version, stages, stage_wait, min_healthy, budget, check_interval, stage, stage_since, created, status"

func (s *sqlStore) Plan(ctx context.Context, app, version string) (RolloutPlan, error) {
	p, err := scanPlan(s.queryRow(ctx, "SELECT "+planColumns+" FROM rollout_plans WHERE app = ? AND version = ?", app, version))
	if err != nil {
		return RolloutPlan{}, fmt.Errorf("rollout plan %s/%s: %w", app, version, noRows(err))
	}
	return p, nil
}

func (s *sqlStore) ListPlans(ctx context.Context, app string) ([]RolloutPlan, error) {
	rows, err := s.query(ctx, "SELECT "+planColumns+" FROM rollout_plans WHERE ? = '' OR app = ? ORDER BY app, created, version", app, app)
	if err != nil {
		return nil, fmt.Errorf("list rollout plans: %w", err)
	}
	defer rows.Close()
	var out []RolloutPlan
	for rows.Next() {
		p, err := scanPlan(rows)
		if err != nil {
			return nil, fmt.Errorf("list rollout plans: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (s *sqlStore) DeletePlan(ctx context.Context, app, version string) error {
	return s.write(ctx, func(tx *txn) error {
		if _, err := tx.exec(ctx, "DELETE FROM rollout_plans WHERE app = ? AND version = ?", app, version); err != nil {
			return fmt.Errorf("delete rollout plan %s/%s: %w", app, version, err)
		}
		return nil
	})
}

func scanPlan(r scanner) (RolloutPlan, error) {
	var p RolloutPlan
	var stages, status string
	var wait, interval, since, created int64
	if err := r.Scan(&p.App, &p.Version, &stages, &wait, &p.Plan.MinHealthy, &p.Plan.Budget, &interval,
		&p.Stage, &since, &created, &status); err != nil {
		return RolloutPlan{}, err
	}
	if stages != "" {
		for _, f := range strings.Split(stages, ",") {
			bp, err := strconv.Atoi(f)
			if err != nil {
				return RolloutPlan{}, fmt.Errorf("rollout plan %s/%s: stages %q: %w", p.App, p.Version, stages, err)
			}
			p.Plan.Stages = append(p.Plan.Stages, bp)
		}
	}
	p.Plan.StageWait, p.Plan.CheckInterval = time.Duration(wait), time.Duration(interval)
	p.StageSince, p.Created = fromNanos(since), fromNanos(created)
	if status != "{}" {
		if err := json.Unmarshal([]byte(status), &p.Status); err != nil {
			return RolloutPlan{}, fmt.Errorf("rollout plan %s/%s: status: %w", p.App, p.Version, err)
		}
	}
	return p, nil
}

// The kinds an Outcome is made of.
var (
	startedKinds = []event.Kind{event.InstallStarted}
	healthyKinds = []event.Kind{event.HealthPassed, event.InstallDone}
	failedKinds  = []event.Kind{event.HealthFailed, event.InstallFailed, event.RolledBack, event.RollbackFailed}
)

// kindIn is "kind IN ('a', 'b')" for constant kinds: written as literals,
// not parameters, so that a partial index whose WHERE is the same text
// (migration 0004, events_outcomes) can serve the query on both databases.
func kindIn(ks ...[]event.Kind) string {
	var q []string
	for _, k := range slices.Concat(ks...) {
		q = append(q, "'"+string(k)+"'") // constants of package event: no quote in them
	}
	return "kind IN (" + strings.Join(q, ", ") + ")"
}

// outcomeKinds is the WHERE of the index events_outcomes, as its migration
// writes it (TestOutcomesIndexText checks the two agree).
var outcomeKinds = kindIn(startedKinds, healthyKinds, failedKinds)

// outcomesQuery gives one row per installation: each installation counts
// once, however many events it sent. Only enrolled installations have
// events, and of those only the ones whose enrollment token is for this
// application and not revoked count: any other installation could say
// anything about a release it was never offered (R68). The condition is
// outside the grouping, so that the WHERE on events stays the partial
// index's text and each installation is looked up once.
var outcomesQuery = "SELECT o.* FROM (SELECT install_id, MIN(CASE WHEN " + kindIn(startedKinds) + " THEN received END) AS st, MIN(CASE WHEN " + kindIn(healthyKinds) +
	" THEN received END) AS he, MIN(CASE WHEN " + kindIn(failedKinds) + " THEN received END) AS fa FROM events WHERE app = ? AND version = ? AND " +
	outcomeKinds + " GROUP BY install_id) o JOIN installations i ON i.id = o.install_id JOIN tokens t ON t.id = i.token_id" +
	" WHERE (t.scope = '*' OR t.scope = ?) AND t.revoked = 0 AND i.revoked = 0 ORDER BY o.install_id"

func (s *sqlStore) Outcomes(ctx context.Context, app, version string) ([]guard.Outcome, error) {
	rows, err := s.query(ctx, outcomesQuery, app, version, app)
	if err != nil {
		return nil, fmt.Errorf("outcomes of %s/%s: %w", app, version, err)
	}
	defer rows.Close()
	var out []guard.Outcome
	for rows.Next() {
		var o guard.Outcome
		var st, he, fa sql.NullInt64
		if err := rows.Scan(&o.InstallID, &st, &he, &fa); err != nil {
			return nil, fmt.Errorf("outcomes of %s/%s: %w", app, version, err)
		}
		o.Started, o.Healthy, o.Failed = fromNanos(st.Int64), fromNanos(he.Int64), fromNanos(fa.Int64)
		out = append(out, o)
	}
	return out, rows.Err()
}
