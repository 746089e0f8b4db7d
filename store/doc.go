// Package store keeps the server's state: the enrolled installations and
// what they run, the events they report, the releases and rollouts as the
// server signed them, and the tokens that authenticate publishers and
// enrollments. It is server-side only; the client library never imports
// it.
//
// # Databases
//
// Open picks the database from its argument: a postgres:// URL selects
// PostgreSQL (through pgx), anything else is a SQLite file (pure Go,
// modernc.org/sqlite), created if missing, needing no set-up. A SQLite
// database runs in WAL mode (readers do not wait for the writer), with
// foreign keys on, synchronous=FULL (a commit that returned survives a
// power cut) and a busy timeout of BusyTimeout for other processes; the
// writers of one process take turns in Go.
//
// Both databases run the same SQL: the migrations and every query are one
// text, with "?" placeholders that become $1, $2... for PostgreSQL, and
// only TEXT, INTEGER and BIGINT columns (times are Unix nanoseconds, 0 for
// none). What differs between the two is in one place, the dialect in
// open.go.
//
// # Schema and migrations
//
// The schema is the embedded files migrations/NNNN_name.sql, numbered from
// 0001 with no gaps. Open applies those the database lacks, all in one
// transaction that first takes a lock (BEGIN IMMEDIATE in SQLite, an
// advisory lock in PostgreSQL), and records each in schema_version; so a
// database is at one version or the next, and two processes opening a new
// database at once migrate it once. A database whose schema_version is
// above the newest migration this code knows fails with ErrSchemaNewer,
// untouched.
//
// # Events
//
// An event is keyed by (install ID, Seq), its installation's audit-log
// sequence number. AppendEvents stores a batch in one transaction and
// skips an event already stored with the same hash, so a batch the agent
// resends because an answer was lost counts once; an event whose Seq is
// stored with another hash is ErrConflict and the batch is refused whole.
// ChainHead is the last (Seq, Hash) stored for an installation, the value
// the audit log's tail-truncation check compares against (audit.VerifyKnown).
// Release counters (Stats) are computed from the events, counting each
// installation once.
//
// Security events (SecurityEvents) are what the server itself found wrong
// in what an installation reported, such as a batch that contradicts the
// chain stored before; they are kept apart from the events it reported.
//
// # Guarded rollouts
//
// Plans keeps, per release, the plan of a guarded rollout (package guard:
// stages, stage wait, healthy-report minimum, failure budget, check
// interval), the stage it is in and since when, and the guard's last
// Status. Outcomes is the guard's evidence, computed from the events: one
// row per installation that reported on the release, with the server's
// first receipt of its start, of a healthy report and of a failure, so an
// installation counts once however often it reports, and only enrolled
// installations count (R68).
//
// # Concurrency
//
// A Store is safe for concurrent use, and several processes may open one
// database. Methods take a context first; cancelling it abandons the call
// and rolls back what it had written.
package store
