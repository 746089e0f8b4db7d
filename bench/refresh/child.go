package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"

	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/ferry-updates/ferry/bench/internal/harness"
	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/fetch"
	"github.com/ferry-updates/ferry/internal/metastore"
	"github.com/ferry-updates/ferry/trust"
)

// childOpts is what the parent tells a child process to measure.
type childOpts struct {
	impl       string // "ferry" or "gotuf"
	url        string // repository base URL (metadata is under URL/metadata/)
	caFile     string
	rootFile   string // the trusted root shipped with the client
	state      string // the client's metadata directory
	app        string
	lookup     string // target path to look up
	targetsMax int64  // go-tuf TargetsMaxLength; 0 keeps its default
	profile    string // if set, write a CPU profile of each step to PROFILE-STEP.pprof
}

func parseChild(args []string) (childOpts, error) {
	var o childOpts
	fs := flag.NewFlagSet("child", flag.ContinueOnError)
	fs.StringVar(&o.impl, "impl", "", "")
	fs.StringVar(&o.url, "url", "", "")
	fs.StringVar(&o.caFile, "ca", "", "")
	fs.StringVar(&o.rootFile, "root", "", "")
	fs.StringVar(&o.state, "state", "", "")
	fs.StringVar(&o.app, "app", "", "")
	fs.StringVar(&o.lookup, "lookup", "", "")
	fs.Int64Var(&o.targetsMax, "targets-max", 0, "")
	fs.StringVar(&o.profile, "profile", "", "")
	err := fs.Parse(args)
	return o, err
}

// childMain runs in the child process and reports its steps to the parent.
func childMain(args []string) error {
	o, err := parseChild(args)
	if err != nil {
		return err
	}
	ctx := context.Background()
	switch o.impl {
	case "ferry":
		return childFerry(ctx, o)
	case "gotuf":
		return childGoTUF(ctx, o)
	}
	return fmt.Errorf("unknown implementation %q", o.impl)
}

// measure runs one step and reports it with the bytes served meanwhile.
func measure(ctx context.Context, o childOpts, step string, op func() error) error {
	pool, err := harness.CAPool(o.caFile)
	if err != nil {
		return err
	}
	hc := harness.HTTPClient(pool)
	before, err := harness.FetchCounts(ctx, hc, o.url)
	if err != nil {
		return err
	}
	stopProfile, err := startProfile(o, step)
	if err != nil {
		return err
	}
	s := harness.Start(step)
	opErr := op()
	r := s.Stop(opErr)
	if err := stopProfile(); err != nil {
		return err
	}
	after, err := harness.FetchCounts(ctx, hc, o.url)
	if err != nil {
		return err
	}
	r.Bytes, r.Requests, r.Files = after.Bytes-before.Bytes, after.Requests-before.Requests, after.Files-before.Files
	return harness.Report(r)
}

// startProfile starts a CPU profile of step if o asks for one.
func startProfile(o childOpts, step string) (stop func() error, err error) {
	if o.profile == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(o.profile + "-" + step + ".pprof")
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// childFerry measures a first refresh (a new trust.Client over an empty
// store) and then a no-change refresh on the same long-lived client. Each
// includes looking up the app's targets as client.Check does, through the
// client's own trust.Source (client.MetadataSource over a fetch.Fetcher).
func childFerry(ctx context.Context, o childOpts) error {
	root, err := os.ReadFile(o.rootFile)
	if err != nil {
		return err
	}
	pool, err := harness.CAPool(o.caFile)
	if err != nil {
		return err
	}
	f, err := fetch.New(fetch.Options{RootCAs: pool})
	if err != nil {
		return err
	}
	src := &client.MetadataSource{URL: o.url + "/metadata/", Fetcher: f}
	var tc *trust.Client
	check := func() error {
		if err := tc.Refresh(ctx, src); err != nil {
			return err
		}
		ts, err := tc.TargetsUnder(ctx, src, o.app+"/")
		if err != nil {
			return err
		}
		if ts[o.lookup] == nil {
			return fmt.Errorf("target %s not among the %d targets under %s/", o.lookup, len(ts), o.app)
		}
		return nil
	}
	err = measure(ctx, o, "first", func() error {
		tc, err = trust.New(trust.Config{Root: root, Store: metastore.Dir(o.state)})
		if err != nil {
			return err
		}
		return check()
	})
	if err != nil || tc == nil {
		return err
	}
	if err := measure(ctx, o, "nochange", check); err != nil {
		return err
	}
	// The same once more without the lookup, to separate the refresh's cost
	// from TargetsUnder's.
	return measure(ctx, o, "nochange-refresh", func() error { return tc.Refresh(ctx, src) })
}

// childGoTUF measures what a go-tuf user does: a first refresh (a new
// Updater over an empty metadata directory, Refresh, GetTargetInfo), then,
// since an Updater refreshes only once, a no-change refresh with a new
// Updater over the populated directory and the same http.Client.
func childGoTUF(ctx context.Context, o childOpts) error {
	pool, err := harness.CAPool(o.caFile)
	if err != nil {
		return err
	}
	hc := harness.HTTPClient(pool)
	for _, step := range []string{"first", "nochange"} {
		if err := measure(ctx, o, step, func() error { return goTUFCheck(o, hc) }); err != nil {
			return err
		}
	}
	return nil
}

func goTUFCheck(o childOpts, hc *http.Client) error {
	root, err := os.ReadFile(filepath.Join(o.state, "root.json"))
	if err != nil {
		// No trusted root persisted yet: start from the shipped one.
		if root, err = os.ReadFile(o.rootFile); err != nil {
			return err
		}
	}
	cfg, err := config.New(o.url+"/metadata/", root)
	if err != nil {
		return err
	}
	cfg.LocalMetadataDir = o.state
	cfg.LocalTargetsDir = filepath.Join(o.state, "targets")
	if o.targetsMax > 0 {
		cfg.TargetsMaxLength = o.targetsMax
	}
	if err := cfg.SetDefaultFetcherHTTPClient(hc); err != nil {
		return err
	}
	up, err := updater.New(cfg)
	if err != nil {
		return err
	}
	if err := up.Refresh(); err != nil {
		return err
	}
	tf, err := up.GetTargetInfo(o.lookup)
	if err != nil {
		return err
	}
	if tf.Path != o.lookup {
		return fmt.Errorf("go-tuf returned %s for %s", tf.Path, o.lookup)
	}
	return nil
}
