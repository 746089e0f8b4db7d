package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The store suite: every test in suite runs against each backend, each on
// a database of its own (a new SQLite file, a new PostgreSQL schema).

// backend makes new, empty databases for a test.
type backend struct {
	// fresh returns the location (path or URL) of a new empty database,
	// removed when the test ends.
	fresh func(t *testing.T) string
}

// newStore opens a store on a new database, closed when the test ends.
func (b backend) newStore(t *testing.T) Store {
	t.Helper()
	return openStore(t, b.fresh(t))
}

func openStore(t *testing.T, loc string) Store {
	t.Helper()
	s, err := Open(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var suite = []struct {
	name string
	fn   func(*testing.T, backend)
}{
	{"MigrateEmptyAndReopen", testMigrateEmptyAndReopen},
	{"MigrateNewerSchemaRefused", testMigrateNewerSchemaRefused},
	{"MigrationIsTransactional", testMigrationIsTransactional},
	{"ConcurrentOpen", testConcurrentOpen},
	{"Tokens", testTokens},
	{"TokenExpiryAndRevocation", testTokenExpiryAndRevocation},
	{"TokenLastUseRace", testTokenLastUseRace},
	{"Enroll", testEnroll},
	{"SeenAndFleet", testSeenAndFleet},
	{"CountInstallations", testCountInstallations},
	{"EventsIdempotent", testEventsIdempotent},
	{"EventsConflict", testEventsConflict},
	{"Report", testReport},
	{"EventsManyInstallationsConcurrently", testEventsManyInstallationsConcurrently},
	{"EventsOrderAndQueries", testEventsOrderAndQueries},
	{"RecentEvents", testRecentEvents},
	{"ReleasesAndRollouts", testReleasesAndRollouts},
	{"ReleaseStats", testReleaseStats},
	{"ConcurrentWriters", testConcurrentWriters},
	{"SecurityEvents", testSecurityEvents},
	{"Plans", testPlans},
	{"Outcomes", testOutcomes},
	{"OutcomesScope", testOutcomesScope},
	{"InstallCounts", testInstallCounts},
}

func runSuite(t *testing.T, b backend) {
	for _, c := range suite {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, b)
		})
	}
}

var sqliteBackend = backend{fresh: func(t *testing.T) string {
	return filepath.Join(t.TempDir(), "ferry.db")
}}

func TestSQLite(t *testing.T) { runSuite(t, sqliteBackend) }

func TestPostgres(t *testing.T) { runSuite(t, postgresBackend(t)) }

// postgresBackend gives each test a new schema in the database at
// FERRY_TEST_POSTGRES, dropped at the end.
func postgresBackend(t *testing.T) backend {
	base := os.Getenv("FERRY_TEST_POSTGRES")
	if base == "" {
		t.Skip("FERRY_TEST_POSTGRES is unset: set it to a postgres:// URL to run the store suite on PostgreSQL (.ci/run starts a PostgreSQL 15 and sets it)")
	}
	return backend{fresh: func(t *testing.T) string {
		t.Helper()
		return freshSchema(t, base)
	}}
}

func freshSchema(t testing.TB, base string) string {
	t.Helper()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	schema := "ferry_test_" + randomHex(t, 8)
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema in FERRY_TEST_POSTGRES: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func hashOf(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// t0 is the tests' clock origin.
var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// newToken stores a token and returns its hash.
func newToken(t testing.TB, s Store, kind TokenKind, tk Token) string {
	t.Helper()
	if tk.ID == "" {
		tk.ID = randomHex(t, 6)
	}
	if tk.Hash == "" {
		tk.Hash = hashOf("secret-" + tk.ID)
	}
	if tk.Scope == "" {
		tk.Scope = "*"
	}
	if tk.Created.IsZero() {
		tk.Created = t0
	}
	tk.Kind = kind
	if err := s.CreateToken(context.Background(), tk); err != nil {
		t.Fatal(err)
	}
	return tk.Hash
}

// enroll enrolls installations with the given IDs through one new token.
func enroll(t testing.TB, s Store, ids ...string) {
	t.Helper()
	h := newToken(t, s, Enroll, Token{})
	for _, id := range ids {
		in := Installation{ID: id, CredentialHash: hashOf("cred-" + id), Enrolled: t0}
		if err := s.Enroll(context.Background(), in, h); err != nil {
			t.Fatal(err)
		}
	}
}

// chain returns events seq from..to of an installation, one second apart,
// with hashes that depend on the installation and seq only.
func chain(id string, from, to uint64) []Event {
	var out []Event
	for seq := from; seq <= to; seq++ {
		out = append(out, Event{Seq: seq, Prev: lineHash(id, seq-1), Hash: lineHash(id, seq), Event: testEvent(seq)})
	}
	return out
}

func lineHash(id string, seq uint64) string { return hashOf(fmt.Sprintf("%s/%d", id, seq)) }
