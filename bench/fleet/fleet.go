package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-updates/ferry/audit"
	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/report"
	"github.com/ferry-updates/ferry/store"
)

// Request kinds, as reported.
const (
	kindEnroll    = "POST /api/v1/enroll"
	kindTimestamp = "GET timestamp.json"
	kindRoot      = "GET N+1.root.json (404)"
	kindEvents    = "POST /api/v1/events"
)

var kinds = []string{kindTimestamp, kindRoot, kindEvents}

// installation is one simulated installation: its credential and the end
// of its audit chain (what the server acknowledged last).
type installation struct {
	cred  report.Credentials
	state audit.State
}

// result is what one database's run measured.
type result struct {
	db            string
	installations int
	enrollTime    time.Duration
	load          time.Duration // from the first cycle's start to the last one's end
	cycles        int64
	lat           map[string][]time.Duration
	handler       map[string][]time.Duration // the server's handler times, from its access log
	errs          map[string]int             // by kind and what went wrong
	firstErrs     []string
	rssPeak       int64 // VmRSS sampled during the load
	hwm           int64 // VmHWM at the end of the load (since the server started)
	cpu           time.Duration
	genCPU        time.Duration // this program's, during the load
	loadavg       string        // at the end of the load
	events        int64         // events the server acknowledged
	serverLog     map[string]int
	mu            sync.Mutex
}

func (r *result) fail(kind, what string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := kind + ": " + what
	r.errs[key]++
	if len(r.firstErrs) < 10 {
		r.firstErrs = append(r.firstErrs, fmt.Sprintf("%s: %s: %v", kind, what, err))
	}
}

func (r *result) errors() int {
	n := 0
	for _, v := range r.errs {
		n += v
	}
	return n
}

func measure(ctx context.Context, c config, db, dir string, stderr io.Writer) (*result, error) {
	b := &bench{c: c, db: db, dir: dir, stderr: stderr}
	fmt.Fprintf(stderr, "fleet bench: %s: making the repository and %d enrollment token(s)\n", db, (c.installations+c.perToken-1)/c.perToken)
	cleanup, err := b.setup(ctx)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	tokens, err := b.tokens(c.installations)
	if err != nil {
		return nil, err
	}
	probe, err := b.rootProbe()
	if err != nil {
		return nil, err
	}
	if err := b.start(); err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			b.stop()
		}
	}()
	r := &result{db: db, installations: c.installations, lat: map[string][]time.Duration{}, errs: map[string]int{}}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b.ca) {
		return nil, errors.New("the server's CA file holds no certificate")
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}

	fmt.Fprintf(stderr, "fleet bench: %s: enrolling %d installations on %s\n", db, c.installations, b.url)
	start := time.Now()
	fleet, err := enroll(ctx, b, r, tokens)
	if err != nil {
		return nil, err
	}
	r.enrollTime = time.Since(start)
	fmt.Fprintf(stderr, "fleet bench: %s: %d enrolled in %v; %v of check-ins every %v\n", db, len(fleet), r.enrollTime.Round(time.Millisecond), c.duration, c.interval)

	before, err := readProc(b.srv.Process.Pid)
	if err != nil {
		return nil, err
	}
	self0, err := readProc(os.Getpid())
	if err != nil {
		return nil, err
	}
	rss := sampleRSS(b.srv.Process.Pid)
	loadStart := time.Now()
	runFleet(ctx, b, r, fleet, tlsCfg, probe)
	r.load = time.Since(loadStart)
	r.rssPeak = rss.end()
	after, err := readProc(b.srv.Process.Pid)
	if err != nil {
		return nil, err
	}
	self1, err := readProc(os.Getpid())
	if err != nil {
		return nil, err
	}
	r.hwm, r.cpu, r.genCPU = after.hwm, after.cpu-before.cpu, self1.cpu-self0.cpu
	r.loadavg = loadavg()
	b.stop()
	stopped = true
	// Warnings and errors of the server (server.log) and of its HTTP
	// server (the access log's logger: TLS handshake errors, the
	// connection limit).
	if r.serverLog, err = serverLog(b.p("server.log"), b.p("access.log")); err != nil {
		return nil, err
	}
	if r.handler, err = handlerTimes(b.p("access.log"), probe); err != nil {
		return nil, err
	}
	if err := verify(ctx, b, r, fleet); err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "fleet bench: %s: %d cycles, %d errors\n", db, r.cycles, r.errors())
	return r, nil
}

// enroll enrolls the installations, c.enrollers at a time, each token for
// its share of them, through package report's Client.
func enroll(ctx context.Context, b *bench, r *result, tokens []string) ([]*installation, error) {
	cl, err := report.NewClient(b.url, b.ca)
	if err != nil {
		return nil, err
	}
	n := b.c.installations
	fleet := make([]*installation, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range b.c.enrollers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				var raw [16]byte
				rand.Read(raw[:])
				id := hex.EncodeToString(raw[:])
				apps := []report.App{{App: "hello", Version: "1.0.0", Channel: "stable"}}
				t0 := time.Now()
				cred, err := cl.Enroll(ctx, tokens[i/b.c.perToken], id, fmt.Sprintf("host%05d", i), apps)
				d := time.Since(t0)
				if err != nil {
					r.fail(kindEnroll, what(err), err)
					continue
				}
				r.mu.Lock()
				r.lat[kindEnroll] = append(r.lat[kindEnroll], d)
				r.mu.Unlock()
				fleet[i] = &installation{cred: cred, state: audit.Start}
			}
		}()
	}
	wg.Wait()
	out := slices.DeleteFunc(fleet, func(in *installation) bool { return in == nil })
	if len(out) == 0 {
		return nil, fmt.Errorf("no installation enrolled: %v", r.firstErrs)
	}
	return out, nil
}

// what names what went wrong with a request, for counting.
func what(err error) string {
	var ae *report.APIError
	if errors.As(err, &ae) {
		return fmt.Sprintf("status %d", ae.Status)
	}
	var se statusError
	if errors.As(err, &se) {
		return fmt.Sprintf("status %d", se)
	}
	s := err.Error()
	for _, k := range []string{"connection reset", "connection refused", "EOF", "timeout", "broken pipe"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

type statusError int

func (e statusError) Error() string { return fmt.Sprintf("status %d", int(e)) }

// runFleet runs every installation's cycles until the duration is over,
// and waits for the cycles in flight.
func runFleet(ctx context.Context, b *bench, r *result, fleet []*installation, tlsCfg *tls.Config, probe string) {
	start := time.Now()
	end := start.Add(b.c.duration)
	var wg sync.WaitGroup
	var cycles atomic.Int64
	lats := make([]map[string][]time.Duration, len(fleet))
	for i, in := range fleet {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := map[string][]time.Duration{}
			lats[i] = lat
			// The first cycle at a random moment of the first interval
			// (from the same start for all, so with an interval no longer
			// than the duration every installation has one), the next
			// ones an interval and a jitter after the end of the last.
			at := start.Add(time.Duration(mrand.Int64N(int64(b.c.interval))))
			for at.Before(end) {
				time.Sleep(time.Until(at))
				cycle(ctx, b, r, in, tlsCfg, probe, lat)
				cycles.Add(1)
				at = time.Now().Add(b.c.interval + time.Duration(mrand.Int64N(int64(b.c.interval/10)+1)))
			}
		}()
	}
	wg.Wait()
	r.cycles = cycles.Load()
	for _, lat := range lats {
		for k, ds := range lat {
			r.lat[k] = append(r.lat[k], ds...)
		}
	}
}

// cycle is one idle agent cycle: the refresh's two requests on one new
// connection, then the cycle's events on another.
func cycle(ctx context.Context, b *bench, r *result, in *installation, tlsCfg *tls.Config, probe string, lat map[string][]time.Duration) {
	tr := &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: false, MaxIdleConnsPerHost: 1}
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	get := func(kind, path string, want int) {
		t0 := time.Now()
		err := fetch(ctx, hc, b.url+path, want)
		if err != nil {
			r.fail(kind, what(err), err)
			return
		}
		lat[kind] = append(lat[kind], time.Since(t0))
	}
	get(kindTimestamp, "metadata/timestamp.json", http.StatusOK)
	get(kindRoot, probe, http.StatusNotFound)
	tr.CloseIdleConnections()

	items, next := cycleLines(in.state)
	cl, err := report.NewClient(b.url, b.ca)
	if err != nil {
		r.fail(kindEvents, "client", err)
		return
	}
	t0 := time.Now()
	head, err := cl.Send(ctx, in.cred, items, []report.App{{App: "hello", Version: "1.0.0", Channel: "stable"}})
	d := time.Since(t0)
	cl.CloseIdleConnections()
	switch {
	case err != nil:
		r.fail(kindEvents, what(err), err)
	case head != next:
		r.fail(kindEvents, "wrong head", fmt.Errorf("head %v, want %v", head, next))
	default:
		lat[kindEvents] = append(lat[kindEvents], d)
		in.state = next
		atomic.AddInt64(&r.events, int64(len(items)))
	}
}

func fetch(ctx context.Context, hc *http.Client, url string, want int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != want {
		return statusError(resp.StatusCode)
	}
	return nil
}

// cycleLines are the audit-log lines of an idle cycle after st, as
// package audit writes them, and the chain's end after them.
func cycleLines(st audit.State) ([]report.Item, audit.State) {
	now := time.Now().UTC()
	evs := []struct {
		kind  event.Kind
		cause string
		ev    map[string]string
	}{
		{event.Refreshed, "", map[string]string{"changed": "false"}},
		{event.CheckStarted, "", nil},
		{event.CheckUpToDate, "1.0.0 is the newest release", nil},
	}
	items := make([]report.Item, 0, len(evs))
	for _, e := range evs {
		rec := audit.Record{Seq: st.Seq + 1, Prev: st.Hash, Time: now, Kind: e.kind, App: "hello", Version: "1.0.0", Cause: e.cause, Evidence: e.ev}
		line, _ := json.Marshal(rec)
		sum := sha256.Sum256(line)
		it := report.Item{Seq: rec.Seq, Prev: rec.Prev, Hash: hex.EncodeToString(sum[:]), Line: line}
		items = append(items, it)
		st = it.State()
	}
	return items, st
}

// verify reads, with the server stopped, every installation's chain head
// from the database: it must be the last line the server acknowledged.
func verify(ctx context.Context, b *bench, r *result, fleet []*installation) error {
	st, err := store.Open(ctx, b.dbLoc)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, in := range fleet {
		h, err := st.ChainHead(ctx, in.cred.InstallID)
		if err != nil {
			return err
		}
		if in.state.Seq == 0 {
			continue
		}
		if h.Seq != in.state.Seq || h.Hash != in.state.Hash {
			r.fail("database", "chain head differs", fmt.Errorf("installation %s: stored head seq %d, acknowledged %d", in.cred.InstallID, h.Seq, in.state.Seq))
		}
	}
	return nil
}

// quantile is the q-quantile of sorted ds (nearest rank).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(q*float64(len(ds))+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func printResults(w io.Writer, c config, rs []*result) {
	perCycle := 3.0
	offered := float64(c.installations) / c.interval.Seconds()
	fmt.Fprintf(w, "%d installations, each an idle agent's cycle every %v (+ up to %v jitter) for %v: offered load %.0f cycles/s = %.0f requests/s (%.0f timestamp.json, %.0f root probes, %.0f event batches of 3 lines), %.0f new TLS connections/s.\n\n",
		c.installations, c.interval, c.interval/10, c.duration, offered, offered*perCycle, offered, offered, offered, 2*offered)
	row := func(name string, f func(r *result) string) {
		fmt.Fprintf(w, "| %s |", name)
		for _, r := range rs {
			fmt.Fprintf(w, " %s |", f(r))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, "| |")
	for _, r := range rs {
		fmt.Fprintf(w, " %s |", map[string]string{"sqlite": "SQLite", "postgres": "PostgreSQL"}[r.db])
	}
	fmt.Fprint(w, "\n|---|")
	for range rs {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)
	row("errors (all kinds, and the database check)", func(r *result) string { return fmt.Sprint(r.errors()) })
	row("enrollment: installations / time", func(r *result) string {
		return fmt.Sprintf("%d / %.1f s", len(r.lat[kindEnroll]), r.enrollTime.Seconds())
	})
	row("enrollment p50 / p99", func(r *result) string {
		ds := slices.Sorted(slices.Values(r.lat[kindEnroll]))
		return ms(quantile(ds, .5)) + " / " + ms(quantile(ds, .99))
	})
	row("cycles completed", func(r *result) string { return fmt.Sprint(r.cycles) })
	row("achieved requests/s", func(r *result) string {
		n := 0
		for _, k := range kinds {
			n += len(r.lat[k])
		}
		return fmt.Sprintf("%.0f", float64(n)/r.load.Seconds())
	})
	row("events stored", func(r *result) string { return fmt.Sprint(r.events) })
	for _, k := range kinds {
		row(k+" p50 / p99 / max", func(r *result) string {
			ds := slices.Sorted(slices.Values(r.lat[k]))
			if len(ds) == 0 {
				return "-"
			}
			return ms(quantile(ds, .5)) + " / " + ms(quantile(ds, .99)) + " / " + ms(ds[len(ds)-1])
		})
	}
	for _, k := range kinds {
		row(k+": the server's handler, p50 / p99", func(r *result) string {
			ds := slices.Sorted(slices.Values(r.handler[k]))
			if len(ds) == 0 {
				return "-"
			}
			return ms(quantile(ds, .5)) + " / " + ms(quantile(ds, .99))
		})
	}
	row("server peak RSS during the load (VmRSS, 100 ms samples)", func(r *result) string { return mib(r.rssPeak) })
	row("server VmHWM since start (enrollment included)", func(r *result) string { return mib(r.hwm) })
	row("server CPU during the load (utime+stime)", func(r *result) string {
		return fmt.Sprintf("%.1f s (%.0f %% of one core, %.2f ms per cycle)", r.cpu.Seconds(), 100*r.cpu.Seconds()/r.load.Seconds(), float64(r.cpu.Microseconds())/1000/float64(r.cycles))
	})
	row("load generator CPU during the load (this program)", func(r *result) string {
		return fmt.Sprintf("%.1f s (%.0f %% of one core)", r.genCPU.Seconds(), 100*r.genCPU.Seconds()/r.load.Seconds())
	})
	row("load average at the end of the load (1, 5, 15 min)", func(r *result) string { return r.loadavg })
	for _, r := range rs {
		if r.errors() == 0 && len(r.serverLog) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s: errors by kind:\n", r.db)
		for _, k := range slices.Sorted(maps.Keys(r.errs)) {
			fmt.Fprintf(w, "- %s: %d\n", k, r.errs[k])
		}
		for _, e := range r.firstErrs {
			fmt.Fprintf(w, "  - e.g. %s\n", e)
		}
		keys := slices.Collect(maps.Keys(r.serverLog))
		sort.Slice(keys, func(i, j int) bool { return r.serverLog[keys[i]] > r.serverLog[keys[j]] })
		fmt.Fprintf(w, "%s: the server logged (warnings and errors):\n", r.db)
		for _, k := range keys[:min(len(keys), 10)] {
			fmt.Fprintf(w, "- %d x %s\n", r.serverLog[k], k)
		}
	}
}

// loadavg is the machine's load average (1, 5 and 15 minutes).
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
