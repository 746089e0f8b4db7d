package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawDB opens the database at loc with database/sql, without migrating.
func rawDB(t *testing.T, loc string) (*sql.DB, dialect) {
	t.Helper()
	d, dsn, err := pick(loc)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(d.driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, d
}

func schemaVersions(t *testing.T, loc string) []int {
	t.Helper()
	db, _ := rawDB(t, loc)
	rows, err := db.Query("SELECT version FROM schema_version ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	return vs
}

func testMigrateEmptyAndReopen(t *testing.T, b backend) {
	ctx := context.Background()
	loc := b.fresh(t)
	s, err := Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if got := schemaVersions(t, loc); len(got) != len(ms) || got[len(got)-1] != len(ms) {
		t.Fatalf("schema_version after migrating an empty database: %v, want 1..%d", got, len(ms))
	}
	enroll(t, s, "inst-a")
	if _, err := s.AppendEvents(ctx, "inst-a", chain("inst-a", 1, 3)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, loc) // re-open: nothing to migrate, everything kept
	if got := schemaVersions(t, loc); len(got) != len(ms) {
		t.Fatalf("schema_version after re-opening: %v, want %d rows", got, len(ms))
	}
	h, err := s.ChainHead(ctx, "inst-a")
	if err != nil || h != (Head{3, lineHash("inst-a", 3)}) {
		t.Fatalf("ChainHead after re-opening = %v, %v; want seq 3", h, err)
	}
}

func testMigrateNewerSchemaRefused(t *testing.T, b backend) {
	loc := b.fresh(t)
	openStore(t, loc).Close()
	db, d := rawDB(t, loc)
	if _, err := db.Exec(d.rebind("INSERT INTO schema_version (version, applied) VALUES (?, ?)"), 999, time.Now().UnixNano()); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), loc)
	if !errors.Is(err, ErrSchemaNewer) || !strings.Contains(err.Error(), "schema version 999") {
		t.Fatalf("Open of a database at schema 999 = %v, want ErrSchemaNewer naming version 999", err)
	}
}

// A migration that fails halfway leaves the database as it was.
func testMigrationIsTransactional(t *testing.T, b backend) {
	ctx := context.Background()
	loc := b.fresh(t)
	s := openStore(t, loc).(*sqlStore)
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	bad := migration{version: len(ms) + 1, name: "bad.sql", stmts: []string{
		"CREATE TABLE half_done (x INTEGER)",
		"INSERT INTO no_such_table VALUES (1)",
	}}
	if err := s.migrateWith(ctx, append(ms, bad)); err == nil || !strings.Contains(err.Error(), "migration bad.sql") {
		t.Fatalf("failing migration: err = %v, want one naming bad.sql", err)
	}
	if got := schemaVersions(t, loc); len(got) != len(ms) {
		t.Fatalf("schema_version after a failed migration: %v, want %d rows", got, len(ms))
	}
	db, _ := rawDB(t, loc)
	if _, err := db.Exec("SELECT x FROM half_done"); err == nil {
		t.Fatal("the failed migration's first table exists: it was not rolled back")
	}
}

// Two processes opening one new database at once migrate it once.
func testConcurrentOpen(t *testing.T, b backend) {
	loc := b.fresh(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := Open(context.Background(), loc)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
	ms, _ := migrations()
	if got := schemaVersions(t, loc); len(got) != len(ms) {
		t.Fatalf("schema_version after concurrent opens: %v", got)
	}
}

func TestOpenRefusesURLsItDoesNotKnow(t *testing.T) {
	for _, loc := range []string{"", "mysql://x/y", "file:ferry.db", "ferry.db?mode=ro"} {
		if _, err := Open(context.Background(), loc); err == nil {
			t.Errorf("Open(%q) succeeded", loc)
		}
	}
}

func TestStatements(t *testing.T) {
	got := statements("-- a comment; here\nCREATE TABLE a (\n  x INTEGER\n);\n\nCREATE INDEX i ON a (x);\n")
	if len(got) != 2 || got[0] != "CREATE TABLE a (\n  x INTEGER\n);" || got[1] != "CREATE INDEX i ON a (x);" {
		t.Fatalf("statements = %q", got)
	}
}

// The SQLite connection settings Open promises, on every connection.
func TestSQLitePragmas(t *testing.T) {
	s := openStore(t, sqliteBackend.fresh(t)).(*sqlStore)
	want := map[string]string{"journal_mode": "wal", "foreign_keys": "1", "synchronous": "2", "busy_timeout": "10000"}
	for range 3 { // several connections of the pool
		conn, err := s.db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for p, w := range want {
			var got string
			if err := conn.QueryRowContext(context.Background(), "PRAGMA "+p).Scan(&got); err != nil || got != w {
				t.Errorf("PRAGMA %s = %q, %v; want %q", p, got, err, w)
			}
		}
	}
}
