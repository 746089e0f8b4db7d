// Command fleet puts a fleet of simulated installations on a real ferry
// serve (the built command, over HTTPS on 127.0.0.1) and measures what it
// answers, on SQLite and on PostgreSQL:
//
//	.ci/with-postgres go run ./bench/fleet -installations 10000 -duration 60s -db sqlite,postgres
//	go run ./bench/fleet -installations 200 -duration 5s             # SQLite only, a smoke run
//
// For each database it makes a repository (ferry init, one release of
// one application), creates enrollment tokens (ferry token create --enroll,
// -per-token uses each), starts ferry serve with its database (SQLite: the
// default file next to the repository; PostgreSQL: a new schema of the
// server in $FERRY_TEST_POSTGRES, which .ci/with-postgres sets) and its
// access log in a file, and enrolls -installations installations through
// POST /api/v1/enroll, each with its own install ID, so each gets its own
// credential.
//
// Then, for -duration, every installation runs the cycle of an idle agent
// every -interval (plus a jitter of up to a tenth, as ferry agent does;
// the first cycle at a random moment of the first interval): on one new
// TLS connection, GET metadata/timestamp.json (200) and the check for a
// next root, N+1.root.json (404, as in BENCHMARKS.md section 9); then, on
// another new connection (the agent's reporter has a client of its own),
// POST /api/v1/events with the cycle's three audit-log lines (refresh.done,
// check.started, check.uptodate), chained to the installation's earlier
// ones, through package report's Client. New connections, because an agent
// on its default interval of an hour finds its connection closed by the
// server's idle timeout at every cycle. Cycles started before the end are
// finished. An error is any failed request, any status other than the
// expected one, an events answer whose head is not the batch's last line,
// and, once the server is stopped, any installation whose chain head in the
// database is not the last line the server acknowledged.
//
// It reports, per database: the offered and achieved load in requests per
// second, the errors, p50, p99 and the maximum latency of each kind of
// request (from the request's start to its body's end, the connection and
// TLS handshake included where a request opens its connection), the
// server's resident memory (VmRSS sampled every 100 ms during the load,
// and VmHWM since its start) and its CPU time (utime+stime). Markdown goes
// to stdout, progress to stderr; the temporary directories are removed at
// the end. Linux only (it reads /proc).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

func main() {
	if _, err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fleet bench: error:", err)
		os.Exit(1)
	}
}

type config struct {
	installations int
	duration      time.Duration
	interval      time.Duration
	perToken      int
	enrollers     int
	dbs           []string
	ferry         string
	postgres      string // base URL for -db postgres
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.installations, "installations", 10000, "simulated installations")
	fs.DurationVar(&c.duration, "duration", 60*time.Second, "how long the fleet checks in and reports")
	fs.DurationVar(&c.interval, "interval", 60*time.Second, "each installation's check interval")
	fs.IntVar(&c.perToken, "per-token", 1000, "installations enrolled with one enrollment token (its --uses)")
	fs.IntVar(&c.enrollers, "enrollers", 16, "enrollments sent at once")
	db := fs.String("db", "sqlite", "databases to measure, in order: sqlite, postgres (comma-separated; postgres needs $FERRY_TEST_POSTGRES)")
	fs.StringVar(&c.ferry, "ferry", "", "ferry binary (default: build ./cmd/ferry)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.installations < 1 || c.duration <= 0 || c.interval <= 0 || c.perToken < 1 || c.enrollers < 1 {
		return c, errors.New("-installations, -per-token and -enrollers must be at least 1, -duration and -interval positive")
	}
	for _, d := range strings.Split(*db, ",") {
		switch d = strings.TrimSpace(d); d {
		case "sqlite":
		case "postgres":
			c.postgres = os.Getenv("FERRY_TEST_POSTGRES")
			if c.postgres == "" {
				return c, errors.New("-db postgres: set FERRY_TEST_POSTGRES to a postgres:// URL (.ci/with-postgres go run ./bench/fleet ... does)")
			}
		default:
			return c, fmt.Errorf("-db: %q is neither sqlite nor postgres", d)
		}
		c.dbs = append(c.dbs, strings.TrimSpace(d))
	}
	return c, nil
}

// run measures and prints; it fails if a run had any error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) ([]*result, error) {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return nil, err
	}
	if runtime.GOOS != "linux" {
		return nil, errors.New("reads /proc: Linux only")
	}
	tmp, err := os.MkdirTemp("", "ferry-bench-fleet-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if c.ferry == "" {
		c.ferry = filepath.Join(tmp, "ferry")
		fmt.Fprintln(stderr, "fleet bench: building ferry")
		if out, err := exec.Command("go", "build", "-o", c.ferry, "github.com/ferry-updates/ferry/cmd/ferry").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build ./cmd/ferry: %v: %s", err, out)
		}
	}
	var results []*result
	for i, db := range c.dbs {
		dir := filepath.Join(tmp, fmt.Sprintf("%d-%s", i, db))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, err
		}
		r, err := measure(ctx, c, db, dir, stderr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", db, err)
		}
		results = append(results, r)
	}
	printResults(stdout, c, results)
	for _, r := range results {
		if r.errors() > 0 {
			return results, fmt.Errorf("%s: %d errors", r.db, r.errors())
		}
	}
	return results, nil
}
