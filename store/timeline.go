package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ferry-updates/ferry/event"
)

func (s *sqlStore) InstallCounts(ctx context.Context, q InstallCountQuery) ([]InstallCount, error) {
	if q.App == "" || q.Step <= 0 || !q.Since.Before(q.Until) {
		return nil, fmt.Errorf("install counts of %q: needs an application, a step above zero and Since before Until", q.App)
	}
	if n := q.Until.Sub(q.Since) / q.Step; n > MaxInstallSteps {
		return nil, fmt.Errorf("install counts of %q: %d steps, at most %d", q.App, n, MaxInstallSteps)
	}
	since, step := nanos(q.Since), int64(q.Step)
	// Integer division of BIGINTs truncates in both databases; occurred is
	// at or after since, so it never rounds towards a step before.
	rows, err := s.query(ctx, `SELECT version, (occurred - ?) / ?, COUNT(DISTINCT install_id) FROM events
		WHERE app = ? AND kind = ? AND occurred >= ? AND occurred < ? GROUP BY 1, 2`,
		since, step, q.App, string(event.InstallDone), since, nanos(q.Until))
	if err != nil {
		return nil, fmt.Errorf("install counts of %s: %w", q.App, err)
	}
	defer rows.Close()
	var out []InstallCount
	for rows.Next() {
		var c InstallCount
		var i int64
		if err := rows.Scan(&c.Version, &i, &c.Installs); err != nil {
			return nil, fmt.Errorf("install counts of %s: %w", q.App, err)
		}
		c.Start = q.Since.Add(time.Duration(i) * q.Step)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("install counts of %s: %w", q.App, err)
	}
	sortInstallCounts(out)
	return out, nil
}

// sortInstallCounts orders by Start, then Version (here, not by the
// database's collation, so that both databases give the same order).
func sortInstallCounts(cs []InstallCount) {
	slices.SortFunc(cs, func(a, b InstallCount) int {
		return cmp.Or(a.Start.Compare(b.Start), strings.Compare(a.Version, b.Version))
	})
}
