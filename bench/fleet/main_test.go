package main

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"strings"
	"testing"
)

// TestSmoke runs the program as BENCHMARKS.md does, on a small fleet for a
// few seconds (on SQLite, and on PostgreSQL too when FERRY_TEST_POSTGRES is
// set, as in .ci/run), so that it keeps working: every installation
// enrolls, checks in and reports once, with no error, and the server's
// database holds what it acknowledged.
func TestSmoke(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc: Linux only")
	}
	dbs := "sqlite"
	if os.Getenv("FERRY_TEST_POSTGRES") != "" {
		dbs += ",postgres"
	}
	const n = 100
	var out, progress bytes.Buffer
	rs, err := run(context.Background(), []string{"-installations", "100", "-duration", "4s", "-interval", "4s", "-per-token", "60", "-db", dbs}, &out, &progress)
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, out.String(), progress.String())
	}
	if len(rs) != strings.Count(dbs, ",")+1 {
		t.Fatalf("%d results for %s", len(rs), dbs)
	}
	for _, r := range rs {
		// The interval is the duration: each installation's one cycle starts in it.
		if len(r.lat[kindEnroll]) != n || r.cycles != n || r.events != 3*n || len(r.lat[kindEvents]) != n || len(r.lat[kindTimestamp]) != n {
			t.Errorf("%s: %d enrolled, %d cycles, %d events stored, %d batches, %d timestamps; want %d, %d, %d, %d, %d",
				r.db, len(r.lat[kindEnroll]), r.cycles, r.events, len(r.lat[kindEvents]), len(r.lat[kindTimestamp]), n, n, 3*n, n, n)
		}
	}
	if !strings.Contains(out.String(), "| errors (all kinds, and the database check) | 0 |") {
		t.Errorf("no zero-error row in the report:\n%s", out.String())
	}
}
