package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/guard"
)

// BenchmarkGuardEvidence is what one evaluation of one guarded release
// costs the rollout guard, which does it every tick (5 s by default): the
// Outcomes query over the events of N enrolled installations that each
// reported the release (install.started, install.swapped, health.passed,
// install.done, and for 2% a health.failed and a roll-back instead), plus
// guard.Evaluate of the rows, with migration 0004's index and without it.
// BENCHMARKS.md section 12:
//
//	go test ./store -run '^$' -bench GuardEvidence -benchtime 20x
//	.ci/with-postgres go test ./store -run '^$' -bench GuardEvidence -benchtime 20x
func BenchmarkGuardEvidence(b *testing.B) {
	backends := []struct {
		name string
		loc  func(b *testing.B) string
	}{
		{"sqlite", func(b *testing.B) string { return filepath.Join(b.TempDir(), "ferry.db") }},
		{"postgres", func(b *testing.B) string {
			base := os.Getenv("FERRY_TEST_POSTGRES")
			if base == "" {
				b.Skip("FERRY_TEST_POSTGRES is unset: set it to a postgres:// URL (.ci/with-postgres does) to benchmark PostgreSQL")
			}
			return freshSchema(b, base)
		}},
	}
	for _, be := range backends {
		for _, n := range []int{1000, 10000} {
			for _, index := range []bool{true, false} {
				b.Run(fmt.Sprintf("%s/installations=%d/index=%v", be.name, n, index), func(b *testing.B) { benchGuardEvidence(b, be.loc(b), n, index) })
			}
		}
	}
}

// benchGuardEvidence times it on a fleet of n; without index, the partial
// index of migration 0004 is dropped first (as before it), for the ratio.
func benchGuardEvidence(b *testing.B, loc string, n int, index bool) {
	ctx := context.Background()
	s, err := Open(ctx, loc)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	fillFleet(b, loc, n)
	if !index {
		db, _ := rawBenchDB(b, loc)
		if _, err := db.ExecContext(ctx, "DROP INDEX events_outcomes"); err != nil {
			b.Fatal(err)
		}
	}
	plan := guard.Plan{Stages: []int{100, 1000, 10000}, MinHealthy: 20, Budget: 500, CheckInterval: time.Hour}
	cur := guard.Current{State: "active", BasisPoints: 100, StageSince: t0}
	now := t0.Add(2 * time.Hour)
	b.ResetTimer()
	var v guard.Verdict
	for range b.N {
		ev, err := s.Outcomes(ctx, "web", "1.1.0")
		if err != nil {
			b.Fatal(err)
		}
		v = guard.Evaluate(plan, cur, ev, now)
	}
	b.StopTimer()
	if v.Status.Started != n || v.Status.Failed != n/50 {
		b.Fatalf("counted %d started, %d failed; want %d, %d", v.Status.Started, v.Status.Failed, n, n/50)
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/evaluation")
}

// fillFleet writes n enrolled installations and their events about web
// 1.1.0 with plain multi-row inserts (enrolling them one by one would
// take a transaction each).
func fillFleet(b *testing.B, loc string, n int) {
	ctx := context.Background()
	db, d := rawBenchDB(b, loc)
	exec := func(q string, args ...any) {
		if _, err := db.ExecContext(ctx, d.rebind(q), args...); err != nil {
			b.Fatal(err)
		}
	}
	exec("INSERT INTO tokens (id, kind, scope, hash, created, expires, revoked, uses, max_uses) VALUES ('fleet', 'enroll', '*', 'h', 0, 0, 0, 0, 0)")
	const chunk = 400
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		var ins, evs []string
		var iargs, eargs []any
		for i := lo; i < hi; i++ {
			id := fmt.Sprintf("%032x", i)
			ins, iargs = append(ins, "(?, ?, 'fleet', ?, ?)"), append(iargs, id, hashOf(id), nanos(t0), nanos(t0))
			kinds := []event.Kind{event.InstallStarted, event.Swapped, event.HealthPassed, event.InstallDone}
			if i%50 == 0 {
				kinds = []event.Kind{event.InstallStarted, event.Swapped, event.HealthFailed, event.RolledBack}
			}
			for k, kind := range kinds {
				at := nanos(t0.Add(time.Duration(i) * time.Millisecond).Add(time.Duration(k) * time.Second))
				evs = append(evs, "(?, ?, '', ?, ?, ?, ?, 'web', '1.1.0', '', '{}')")
				eargs = append(eargs, id, k+1, fmt.Sprintf("%s-%d", id, k), at, at, string(kind))
			}
		}
		exec("INSERT INTO installations (id, credential_hash, token_id, enrolled, last_seen) VALUES "+strings.Join(ins, ", "), iargs...)
		exec("INSERT INTO events (install_id, seq, prev, hash, occurred, received, kind, app, version, cause, evidence) VALUES "+strings.Join(evs, ", "), eargs...)
	}
}
