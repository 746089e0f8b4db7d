// Command refresh benchmarks ferry's TUF refresh against go-tuf v2's stock
// updater, on repositories of 1k to 100k targets, over HTTPS on 127.0.0.1:
//
//	go run ./bench/refresh -targets 1000,10000,100000
//
// For each number of targets it generates two repositories once: ferry's
// layout (one delegated role per application, path pattern APP/*/*/*) and
// the same targets in one top-level targets.json. Each case runs in a child
// process (this program re-executed) that measures a first refresh and a
// no-change refresh, each followed by looking up one application's targets:
//
//   - ferry: trust.New + Refresh + TargetsUnder(APP/) over fetch.Fetcher, as
//     client.Check does; the no-change refresh is a second Refresh on the
//     same long-lived client.
//   - go-tuf (a) on ferry's repository and (b) on the flat one: updater.New
//   - Refresh + GetTargetInfo; the no-change refresh is a new Updater over
//     the populated metadata directory (an Updater refreshes only once).
//
// Every case runs -reps times; the tables show medians, and ratios computed
// in the same run. Markdown goes to stdout, progress to stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-updates/ferry/bench/internal/harness"
	"github.com/ferry-updates/ferry/server"
)

func main() {
	if harness.IsChild() {
		if err := childMain(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "refresh child: error:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "refresh: error:", err)
		os.Exit(1)
	}
}

// kase is one implementation on one layout.
type kase struct {
	name string
	impl string // "ferry" or "gotuf"
	flat bool   // serve the flat layout
}

// slug names c in file names.
func (c kase) slug() string {
	switch {
	case c.impl == "ferry":
		return "ferry"
	case c.flat:
		return "gotuf-b"
	}
	return "gotuf-a"
}

var cases = []kase{
	{"ferry", "ferry", false},
	{"go-tuf (a) same repo", "gotuf", false},
	{"go-tuf (b) one targets.json", "gotuf", true},
}

func run() error {
	targetsFlag := flag.String("targets", "1000", "comma-separated numbers of targets")
	perApp := flag.Int("per-app", 100, "targets per application (one delegated role each)")
	reps := flag.Int("reps", 5, "runs per case; tables show the median")
	gen := flag.String("gen", "repo", "how to build ferry's layout: repo (repo.PublishBatch) or testrepo")
	dir := flag.String("dir", "", "work directory, kept, whose generated repositories later runs reuse (default: a new temporary directory, removed at the end)")
	profile := flag.String("profile", "", "write CPU profiles of every measured step into this directory (slows the runs; for diagnosis)")
	genOnly := flag.Bool("generate-only", false, "only generate the repositories (useful with -dir)")
	flag.Parse()
	if *gen != "repo" && *gen != "testrepo" {
		return fmt.Errorf("-gen %q: want repo or testrepo", *gen)
	}
	ns, err := parseCounts(*targetsFlag)
	if err != nil {
		return err
	}
	work := *dir
	if work == "" {
		if work, err = os.MkdirTemp("", "ferry-bench-refresh-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	}
	ctx := context.Background()
	rep := &report{perApp: *perApp, reps: *reps}
	for _, n := range ns {
		logf("generating %d targets", n)
		ds, err := generate(ctx, filepath.Join(work, "repos"), n, *perApp, *gen == "repo")
		if err != nil {
			return err
		}
		logf("generated %d targets in %s (%s)", n, ds.genTime.Round(time.Millisecond), ds.via)
		if *genOnly {
			continue
		}
		res, srv, err := runDataset(ctx, work, ds, *reps, *profile)
		if err != nil {
			return err
		}
		rep.add(ds, res, srv)
	}
	if *genOnly {
		return nil
	}
	return rep.write(os.Stdout)
}

func parseCounts(s string) ([]int, error) {
	var ns []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-targets: %q is not a positive number", f)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "refresh: "+format+"\n", args...) }

// results are the measurements of one dataset: case name, then step.
type results map[string]map[string][]harness.Result

// runDataset serves both layouts and runs every case reps times,
// interleaved so that noise spreads over all cases.
func runDataset(ctx context.Context, work string, ds *dataset, reps int, profile string) (results, string, error) {
	ferrySrv, how, err := serve(ds.ferry, filepath.Join(work, fmt.Sprintf("ca-%d-ferry.pem", ds.n)))
	if err != nil {
		return nil, "", err
	}
	defer ferrySrv.Close()
	flatSrv, _, err := serve(ds.flat, filepath.Join(work, fmt.Sprintf("ca-%d-flat.pem", ds.n)))
	if err != nil {
		return nil, "", err
	}
	defer flatSrv.Close()
	res := results{}
	for i := range reps {
		for _, c := range cases {
			srv, l := ferrySrv, ds.ferry
			if c.flat {
				srv, l = flatSrv, ds.flat
			}
			logf("%d targets: %s, run %d of %d", ds.n, c.name, i+1, reps)
			prof := ""
			if profile != "" {
				prof = filepath.Join(profile, fmt.Sprintf("%d-%s-%d", ds.n, c.slug(), i+1))
			}
			rs, err := runCase(ctx, work, ds, c, srv, l, prof)
			if err != nil {
				rs = []harness.Result{{Step: "first", Err: err.Error()}, {Step: "nochange", Err: err.Error()}}
				logf("%s", err)
			}
			if res[c.name] == nil {
				res[c.name] = map[string][]harness.Result{}
			}
			for _, r := range rs {
				res[c.name][r.Step] = append(res[c.name][r.Step], r)
			}
		}
	}
	return res, how, nil
}

func runCase(ctx context.Context, work string, ds *dataset, c kase, srv *harness.Server, l layout, profile string) ([]harness.Result, error) {
	state, err := os.MkdirTemp(work, "state-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(state)
	args := []string{
		"-impl", c.impl, "-url", srv.URL, "-ca", srv.CAFile, "-root", l.rootFile,
		"-state", state, "-app", ds.app, "-lookup", ds.lookup,
	}
	if profile != "" {
		args = append(args, "-profile", profile)
	}
	if c.flat && ds.targetsMax > 0 {
		args = append(args, "-targets-max", strconv.FormatInt(ds.targetsMax, 10))
	}
	return harness.Run(ctx, args...)
}

// serve serves l over HTTPS with the project's repository handler, or a
// plain file server while server.Repository is not available.
func serve(l layout, caFile string) (*harness.Server, string, error) {
	var h http.Handler
	how := "server.Repository"
	h, err := server.Repository(l.public)
	if err != nil {
		h = http.FileServer(http.Dir(l.public))
		how = "net/http FileServer (server.Repository: " + err.Error() + ")"
	}
	s, err := harness.Serve(h, caFile)
	return s, how, err
}
