package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/event"
)

// BenchmarkIngest compares event ingest through the Store as the events
// endpoint does it (Report: validation, evidence encoding, INSERT ... ON
// CONFLICT DO NOTHING, the count of new rows, and the installation's
// check-in: last seen and what it runs; one transaction per batch, SQLite's
// grouped when they queue) with the raw batched
// insert of the same rows into the same table of the same database (one
// multi-row INSERT per batch in one transaction, written here), batch by
// batch interleaved so that both see the same load. It reports both rates
// and their ratio (BENCHMARKS.md section 8):
//
//	go test ./store -run '^$' -bench Ingest -benchtime 400x
//	.ci/with-postgres go test ./store -run '^$' -bench Ingest -benchtime 400x
func BenchmarkIngest(b *testing.B) {
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
		for _, size := range []int{10, 100} {
			b.Run(fmt.Sprintf("%s/batch=%d", be.name, size), func(b *testing.B) { benchIngest(b, be.loc(b), size, 1) })
		}
		b.Run(be.name+"/batch=10/senders=8", func(b *testing.B) { benchIngest(b, be.loc(b), 10, 8) })
	}
}

// benchIngest times rounds: senders batches sent at once through the
// Store (wall time until all are stored), then the same rows sent at once
// as raw inserts. Each sender has installations of its own.
func benchIngest(b *testing.B, loc string, size, senders int) {
	ctx := context.Background()
	s, err := Open(ctx, loc)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	raw, d := rawBenchDB(b, loc)
	raw.SetMaxOpenConns(d.maxConns) // the pool Open sets up
	raw.SetMaxIdleConns(d.maxConns)
	insert := d.rebind(rawInsert(size))
	const installs = 4 // per sender, sent to in turn
	ids := func(kind string, sender, k int) string { return fmt.Sprintf("%s-%d-%d", kind, sender, k) }
	for sender := range senders {
		for k := range installs {
			enroll(b, s, ids("inst", sender, k), ids("raw", sender, k))
		}
	}
	next := make([]uint64, installs)
	apps := []App{{App: "web", Version: "1.4.2", Channel: "stable"}}
	var storeTime, rawTime time.Duration
	rounds := 0
	for b.Loop() {
		k := rounds % installs
		batch := benchBatch(next[k]+1, size)
		next[k] += uint64(size)
		rounds++
		storeTime += concurrently(senders, func(sender int) error {
			n, err := s.Report(ctx, ids("inst", sender, k), batch, t0.Add(time.Duration(rounds)*time.Second), apps)
			if err == nil && n != size {
				err = fmt.Errorf("Report stored %d of %d events", n, size)
			}
			return err
		}, b)
		rawTime += concurrently(senders, func(sender int) error {
			return rawBatch(ctx, raw, insert, ids("raw", sender, k), batch)
		}, b)
	}
	events := float64(rounds * senders * size)
	b.ReportMetric(events/storeTime.Seconds(), "store-events/s")
	b.ReportMetric(events/rawTime.Seconds(), "raw-events/s")
	b.ReportMetric(rawTime.Seconds()/storeTime.Seconds(), "store/raw")
}

// concurrently runs f for senders 0..n-1 at once and returns the wall time.
func concurrently(n int, f func(sender int) error, b *testing.B) time.Duration {
	var wg sync.WaitGroup
	start := time.Now()
	for sender := range n {
		wg.Go(func() {
			if err := f(sender); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// rawBenchDB opens the database with the same driver and connection
// settings as Open, without the Store.
func rawBenchDB(b *testing.B, loc string) (*sql.DB, dialect) {
	d, dsn, err := pick(loc)
	if err != nil {
		b.Fatal(err)
	}
	db, err := sql.Open(d.driver, dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db, d
}

func rawInsert(n int) string {
	row := "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	return "INSERT INTO events (install_id, seq, prev, hash, occurred, received, kind, app, version, cause, evidence) VALUES " +
		row + strings.Repeat(", "+row, n-1)
}

// rawBatch inserts the rows of batch under installID in one transaction.
func rawBatch(ctx context.Context, db *sql.DB, insert, installID string, batch []Event) error {
	args := make([]any, 0, 11*len(batch))
	for _, e := range batch {
		ev, err := json.Marshal(e.Evidence)
		if err != nil {
			return err
		}
		args = append(args, installID, int64(e.Seq), e.Prev, e.Hash, e.Time.UnixNano(), e.Received.UnixNano(),
			string(e.Kind), e.App, e.Version, e.Cause, string(ev))
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, insert, args...); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// benchBatch is size events from seq on, shaped like an agent's report.
func benchBatch(seq uint64, size int) []Event {
	out := make([]Event, size)
	for i := range out {
		n := seq + uint64(i)
		out[i] = Event{Seq: n, Prev: lineHash("x", n-1), Hash: lineHash("x", n), Received: t0,
			Event: event.Event{Time: t0.Add(time.Duration(n) * time.Millisecond), Kind: event.DownloadDone, App: "web", Version: "1.4.2",
				Evidence: map[string]string{"target": "web/1.4.2/linux-amd64/web", "bytes": "10485760", "mirror": "https://updates.example.com/"}}}
	}
	return out
}

// BenchmarkStaleGauge compares what one scrape of ferry_installations_stale
// costs: the COUNT query of CountInstallations against listing the rows as
// the gauge did before (ListInstallations up to MaxLimit, then len), on a
// fleet of n installations of which half are stale (BENCHMARKS.md):
//
//	go test ./store -run '^$' -bench StaleGauge -benchtime 20x
//	.ci/with-postgres go test ./store -run '^$' -bench StaleGauge -benchtime 20x
func BenchmarkStaleGauge(b *testing.B) {
	for _, be := range []struct {
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
	} {
		for _, n := range []int{10000} {
			b.Run(fmt.Sprintf("%s/n=%d", be.name, n), func(b *testing.B) {
				ctx := context.Background()
				loc := be.loc(b)
				s, err := Open(ctx, loc)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				fleet(b, loc, n)
				q := InstallationQuery{SeenBefore: t0.Add(time.Duration(n/2) * time.Second)}
				b.Run("count", func(b *testing.B) {
					for b.Loop() {
						if got, err := s.CountInstallations(ctx, q); err != nil || got != n/2 {
							b.Fatalf("CountInstallations = %d, %v; want %d", got, err, n/2)
						}
					}
				})
				b.Run("list", func(b *testing.B) {
					for b.Loop() {
						q := q
						q.Limit = MaxLimit
						if got, err := s.ListInstallations(ctx, q); err != nil || len(got) != n/2 {
							b.Fatalf("ListInstallations = %d, %v; want %d", len(got), err, n/2)
						}
					}
				})
			})
		}
	}
}

// fleet inserts n installations, the i-th last seen i seconds after t0,
// each with one application, in one transaction of the raw database.
func fleet(b *testing.B, loc string, n int) {
	ctx := context.Background()
	db, d := rawBenchDB(b, loc)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	exec := func(q string, args ...any) {
		if _, err := tx.ExecContext(ctx, d.rebind(q), args...); err != nil {
			b.Fatal(err)
		}
	}
	exec("INSERT INTO tokens (id, kind, scope, hash, created, expires, revoked, uses, max_uses) VALUES ('fleet', 'enroll', '*', 'fleet', 0, 0, 0, 0, 0)")
	for i := range n {
		id := fmt.Sprintf("inst-%06d", i)
		seen := t0.Add(time.Duration(i) * time.Second).UnixNano()
		exec("INSERT INTO installations (id, credential_hash, token_id, enrolled, last_seen) VALUES (?, ?, 'fleet', ?, ?)", id, lineHash(id, 0), t0.UnixNano(), seen)
		exec("INSERT INTO installation_apps (install_id, app, version, channel, updated) VALUES (?, 'web', '1.4.2', 'stable', ?)", id, seen)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}
