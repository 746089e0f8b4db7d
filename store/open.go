package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// BusyTimeout is how long a SQLite write waits for another process that
// holds the database's write lock.
const BusyTimeout = 10 * time.Second

// Open opens the store at urlOrPath and brings its schema up to date: a
// postgres:// or postgresql:// URL selects PostgreSQL (pgx connection
// string: host, port, user, dbname, sslmode, search_path...); anything
// else is the path of a SQLite file, created if missing (its directory
// must exist). Opening a database that a newer ferry migrated fails with
// ErrSchemaNewer and changes nothing.
func Open(ctx context.Context, urlOrPath string) (Store, error) {
	d, dsn, err := pick(urlOrPath)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(d.driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", d.name, err)
	}
	db.SetMaxOpenConns(d.maxConns)
	db.SetMaxIdleConns(d.maxConns)
	s := &sqlStore{db: db, d: d, writer: make(chan struct{}, 1)}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s database %s: %w", d.name, redact(urlOrPath), err)
	}
	return s, nil
}

// dialect is everything that differs between the two databases: the SQL
// text, migrations included, is shared and written with "?" placeholders.
type dialect struct {
	name     string
	driver   string
	maxConns int
	// numbered: placeholders are $1, $2... rather than ?.
	numbered bool
	// lock is run first in the migration transaction so that two
	// processes opening one database migrate it one after the other.
	lock string
	// oneWriter: write transactions of this process take turns (SQLite
	// has one writer; waiting in Go is fairer than its busy handler).
	oneWriter bool
	// code maps a constraint violation to ErrConflict or ErrNotFound.
	code func(error) error
}

var sqliteDialect = dialect{
	name: "sqlite", driver: "sqlite", maxConns: 8, oneWriter: true,
	code: func(err error) error {
		var e *sqlite.Error
		if !errors.As(err, &e) {
			return nil
		}
		switch e.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return ErrConflict
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return ErrNotFound
		}
		return nil
	},
}

var postgresDialect = dialect{
	name: "postgres", driver: "pgx", maxConns: 16, numbered: true,
	lock: "SELECT pg_advisory_xact_lock(4670391582205331001)", // a constant: "ferry migrations"
	code: func(err error) error {
		var e *pgconn.PgError
		if !errors.As(err, &e) {
			return nil
		}
		switch e.Code {
		case "23505": // unique_violation
			return ErrConflict
		case "23503": // foreign_key_violation
			return ErrNotFound
		}
		return nil
	},
}

// pick chooses the dialect and driver connection string for urlOrPath.
func pick(urlOrPath string) (dialect, string, error) {
	if strings.HasPrefix(urlOrPath, "postgres://") || strings.HasPrefix(urlOrPath, "postgresql://") {
		return postgresDialect, urlOrPath, nil
	}
	if urlOrPath == "" {
		return dialect{}, "", errors.New("open store: no database path or URL")
	}
	if strings.ContainsAny(urlOrPath, "?#") || strings.HasPrefix(urlOrPath, "file:") || strings.Contains(urlOrPath, "://") {
		return dialect{}, "", fmt.Errorf("open store %q: not a postgres:// URL, and not a plain file path for SQLite (no '?', '#', file: or scheme)", urlOrPath)
	}
	// The driver strips the query from a plain path and runs these on
	// every connection: WAL for concurrent readers, a busy timeout for
	// other processes, foreign keys on, and full fsync of every commit
	// (an acknowledged batch of events survives a power cut). _txlock
	// makes every transaction BEGIN IMMEDIATE: it takes the write lock
	// at once, so no transaction fails halfway on a lock upgrade.
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(BusyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	return sqliteDialect, urlOrPath + "?" + q.Encode(), nil
}

// redact removes a password from a URL for error messages.
func redact(urlOrPath string) string {
	u, err := url.Parse(urlOrPath)
	if err != nil || u.User == nil {
		if strings.Contains(urlOrPath, "://") {
			return "(url)"
		}
		return urlOrPath
	}
	return u.Redacted()
}
