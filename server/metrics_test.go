package server

import (
	"bufio"
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/rollout"
)

const metricsToken = "metrics-token-for-tests-0123456789"

// metricsFixture is the admin fixture served by Run with metrics on
// /metrics, as ferry serve mounts them.
type metricsFixture struct {
	*adminFixture
	m *Metrics
}

func newMetricsFixture(t *testing.T) *metricsFixture {
	t.Helper()
	f := adminRepo(t, nil)
	m, err := NewMetrics(MetricsConfig{Repo: f.repo, PublicDir: filepath.Join(f.dir, "public")})
	if err != nil {
		t.Fatal(err)
	}
	mh, err := m.Handler(metricsToken)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(MetricsPath, mh)
	mux.Handle("/", f.handler(t))
	f.srv = startRun(t, mux, Config{Metrics: m})
	return &metricsFixture{f, m}
}

// samples are the values of one scrape by series: `name{k="v",...}` with
// the labels sorted, as the text format writes them.
type samples map[string]float64

// scrape GETs /metrics with token and parses the text format.
func (f *metricsFixture) scrape(t *testing.T, token string) (int, samples, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", f.srv.url+MetricsPath, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.srv.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	s := samples{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for resp.StatusCode == http.StatusOK && sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		s[line[:i]] = v
	}
	return resp.StatusCode, s, string(body)
}

func (s samples) need(t *testing.T, series string) float64 {
	t.Helper()
	v, ok := s[series]
	if !ok {
		t.Fatalf("no series %s", series)
	}
	return v
}

func (f *metricsFixture) get(t *testing.T, path string) int64 {
	t.Helper()
	resp, err := f.srv.client.Get(f.srv.url + path)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return n
}

// TestMetricsScrape publishes a release into beta at 5% through the admin
// API, halts it, sends repository requests, reports events, and checks
// what a scrape over HTTPS says: each value, not only its presence.
func TestMetricsScrape(t *testing.T) {
	f := newMetricsFixture(t)
	ctx := context.Background()
	code, before, _ := f.scrape(t, metricsToken)
	if code != 200 {
		t.Fatalf("scrape: %d", code)
	}
	if _, ok := before[`ferry_rollout_state{app="hello",state="active",version="1.1.0"}`]; ok {
		t.Fatal("a rollout of 1.1.0 before it was published")
	}
	c := f.client(t, f.hello)
	if _, err := c.PublishWith(ctx, "hello", f.signed(t, "1.1.0", "hello 1.1.0"), PublishOptions{Rollout: &rollout.Entry{Channel: "beta", BasisPoints: 500}}); err != nil {
		t.Fatal(err)
	}
	_, mid, _ := f.scrape(t, metricsToken)
	if v := mid.need(t, `ferry_rollout_share_ratio{app="hello",channel="beta",version="1.1.0"}`); v != 0.05 {
		t.Errorf("share after publishing at 5%%: %v", v)
	}
	if v := mid.need(t, `ferry_rollout_state{app="hello",state="active",version="1.1.0"}`); v != 1 {
		t.Errorf("active after publishing: %v", v)
	}
	if _, err := f.client(t, f.roll).Rollout(ctx, "hello", rollout.Action{Kind: rollout.Halt, Version: "1.1.0"}); err != nil {
		t.Fatal(err)
	}
	var ts int64
	for range 3 {
		ts += f.get(t, "/metadata/timestamp.json")
	}
	missing := f.get(t, "/metadata/nothing.json")
	if code, _, _ := f.scrape(t, "wrong-token-wrong-token"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	f.m.ObserveCheckin()
	f.m.ObserveCheckin()
	for _, e := range []struct {
		kind event.Kind
		app  string
	}{
		{event.InstallDone, "hello"}, {event.InstallDone, "hello"}, {event.RolledBack, "hello"},
		{event.HealthFailed, "not-delegated"}, {event.MetadataRejected, ""}, {event.MetadataRejected, ""},
		{event.DownloadRejected, "hello"}, {"made.up.kind", "hello"},
	} {
		f.m.ObserveEvent(e.kind, e.app)
	}
	t0 := time.Now()
	_, after, _ := f.scrape(t, metricsToken)
	t1 := time.Now()

	delta := func(series string) float64 { return after.need(t, series) - before[series] }
	want := map[string]float64{
		`ferry_http_requests_total{code="2xx",face="repository"}`: 3,
		`ferry_http_requests_total{code="4xx",face="repository"}`: 1,
		`ferry_http_response_bytes_total{face="repository"}`:      float64(ts + missing),
		`ferry_http_requests_total{code="2xx",face="metrics"}`:    2, // the two scrapes since before (this one is counted after it)
		`ferry_http_requests_total{code="4xx",face="metrics"}`:    1, // the wrong token
		`ferry_http_requests_total{code="2xx",face="admin"}`:      3, // the role (for signed), the upload, the decision
		`ferry_checkins_total`:                                    2,
		`ferry_installs_total{app="hello"}`:                       2,
		`ferry_rollbacks_total{app="hello"}`:                      1,
		`ferry_install_failures_total{app="_other"}`:              1,
		`ferry_security_events_total{kind="metadata.rejected"}`:   2,
		`ferry_security_events_total{kind="download.rejected"}`:   1,
		`ferry_events_total{kind="install.done"}`:                 2,
		`ferry_events_total{kind="other"}`:                        1,
	}
	for series, w := range want {
		if got := delta(series); got != w {
			t.Errorf("%s went up by %v, want %v", series, got, w)
		}
	}
	if _, ok := after[`ferry_installs_total{app="not-delegated"}`]; ok {
		t.Error("a client's application name became a label")
	}
	if after.need(t, `ferry_security_events_total{kind="install.rejected"}`) != 0 {
		t.Error("install.rejected counted")
	}
	for series, w := range map[string]float64{
		`ferry_rollout_state{app="hello",state="halted",version="1.1.0"}`:       1,
		`ferry_rollout_state{app="hello",state="active",version="1.1.0"}`:       0,
		`ferry_rollout_state{app="hello",state="pulled",version="1.1.0"}`:       0,
		`ferry_rollout_share_ratio{app="hello",channel="beta",version="1.1.0"}`: 0.05,
		`ferry_metadata_up`: 1,
	} {
		if got := after.need(t, series); got != w {
			t.Errorf("%s = %v, want %v", series, got, w)
		}
	}
	checkExpiries(t, f, after, t0, t1)
}

// checkExpiries: each role's ferry_role_expiry_seconds is its signed
// expiry minus the time of the scrape (between t0 and t1).
func checkExpiries(t *testing.T, f *metricsFixture, s samples, t0, t1 time.Time) {
	t.Helper()
	st, err := f.repo.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var roles []string
	for _, r := range st {
		roles = append(roles, r.Role)
		v := s.need(t, `ferry_role_expiry_seconds{role="`+r.Role+`"}`)
		lo, hi := r.Expires.Sub(t1).Seconds(), r.Expires.Sub(t0).Seconds()
		if v < lo-0.001 || v > hi+0.001 {
			t.Errorf("%s expires in %v s, want %v..%v (signed expiry %v)", r.Role, v, lo, hi, r.Expires)
		}
		if at := s.need(t, `ferry_role_expires_timestamp_seconds{role="`+r.Role+`"}`); math.Abs(at-float64(r.Expires.UnixNano())/1e9) > 0.001 {
			t.Errorf("%s expires at %v, want %v", r.Role, at, r.Expires.Unix())
		}
		if v := s.need(t, `ferry_role_version{role="`+r.Role+`"}`); v != float64(r.Version) {
			t.Errorf("%s version %v, want %d", r.Role, v, r.Version)
		}
	}
	for _, want := range []string{"root", "targets", "snapshot", "timestamp", rollout.RoleName, "hello", "other"} {
		if !slices.Contains(roles, want) {
			t.Errorf("no role %s in the repository's status: %v", want, roles)
		}
	}
}

// TestMetricsFollowOtherWriters: a decision signed by another process
// (here the repository directly, as ferry rollout --repo does) shows at
// the next scrape, because timestamp.json changed.
func TestMetricsFollowOtherWriters(t *testing.T) {
	f := newMetricsFixture(t)
	ctx := context.Background()
	c := f.client(t, f.hello)
	if _, err := c.PublishWith(ctx, "hello", f.signed(t, "1.1.0", "hello 1.1.0"), PublishOptions{Rollout: &rollout.Entry{Channel: rollout.DefaultChannel, BasisPoints: 2500}}); err != nil {
		t.Fatal(err)
	}
	_, s, _ := f.scrape(t, metricsToken)
	series := `ferry_rollout_share_ratio{app="hello",channel="stable",version="1.1.0"}`
	if v := s.need(t, series); v != 0.25 {
		t.Fatalf("share %v, want 0.25", v)
	}
	if _, err := f.repo.Rollout(ctx, "hello", rollout.Action{Kind: rollout.Start, Version: "1.1.0", BasisPoints: 7500}); err != nil {
		t.Fatal(err)
	}
	_, s, _ = f.scrape(t, metricsToken)
	if v := s.need(t, series); v != 0.75 {
		t.Fatalf("share after a decision by another writer: %v, want 0.75", v)
	}
}

// TestMetricsAuth_R53 is the decision for /metrics: a bearer token is
// required, a wrong one refused, a flood limited; nothing is shown
// without it.
func TestMetricsAuth_R53(t *testing.T) {
	f := newMetricsFixture(t)
	for _, tc := range []struct {
		name, token, msg string
	}{
		{"no token", "", "metrics token is required"},
		{"wrong token", "x" + metricsToken[1:], "wrong metrics token"},
		{"prefix of the token", metricsToken[:20], "wrong metrics token"},
	} {
		code, _, body := f.scrape(t, tc.token)
		if code != http.StatusUnauthorized || !strings.Contains(body, tc.msg) || strings.Contains(body, "ferry_") {
			t.Errorf("%s: %d %q, want 401 saying %q and no metric", tc.name, code, body, tc.msg)
		}
	}
	req, _ := http.NewRequest("POST", f.srv.url+MetricsPath, nil)
	req.Header.Set("Authorization", "Bearer "+metricsToken)
	resp, err := f.srv.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
	if code, s, _ := f.scrape(t, metricsToken); code != 200 || s.need(t, "ferry_metadata_up") != 1 {
		t.Fatalf("right token: %d", code)
	}
	if _, err := f.m.Handler("short"); err == nil || !strings.Contains(err.Error(), "fewer than 16") {
		t.Errorf("a 5-byte token: %v", err)
	}
	for range DefaultIPRate.Burst {
		if code, _, _ := f.scrape(t, "wrong-token-of-a-flood"); code == http.StatusTooManyRequests {
			return
		}
	}
	req, _ = http.NewRequest("GET", f.srv.url+MetricsPath, nil)
	resp, err = f.srv.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after a flood: %d (Retry-After %q), want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// TestMetricsStaleInstallations: the gauge is exported once its source is
// set, with the source's count; a failing source drops it from the scrape.
func TestMetricsStaleInstallations(t *testing.T) {
	f := newMetricsFixture(t)
	if _, s, _ := f.scrape(t, metricsToken); len(s) == 0 {
		t.Fatal("empty scrape")
	} else if _, ok := s["ferry_installations_stale"]; ok {
		t.Fatal("stale installations exported without a source")
	}
	n := 7
	f.m.SetStaleInstallations(func(context.Context) (int, error) { return n, nil })
	if _, s, _ := f.scrape(t, metricsToken); s.need(t, "ferry_installations_stale") != 7 {
		t.Fatalf("stale: %v", s["ferry_installations_stale"])
	}
	f.m.SetStaleInstallations(func(context.Context) (int, error) { return 0, errors.New("database down") })
	code, s, _ := f.scrape(t, metricsToken)
	if _, ok := s["ferry_installations_stale"]; ok || code != 200 || s.need(t, "ferry_metadata_up") != 1 {
		t.Fatalf("failing source: %d, stale %v", code, s["ferry_installations_stale"])
	}
}

// TestObserveRequestAllocs: counting a request allocates nothing.
func TestObserveRequestAllocs(t *testing.T) {
	m, err := NewMetrics(MetricsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { m.observeRequest("/metadata/timestamp.json", 200, 1234) }); n != 0 {
		t.Fatalf("%v allocations per request", n)
	}
	var nilM *Metrics
	nilM.observeRequest("/", 200, 1) // a nil *Metrics counts nothing
	nilM.ObserveEvent(event.InstallDone, "x")
	nilM.ObserveCheckin()
}

func TestFaceOf(t *testing.T) {
	for p, want := range map[string]string{
		"/metadata/timestamp.json": "repository", "/targets/a/b": "repository", "/": "repository",
		"/metrics": "metrics", "/metrics/x": "repository", "/api/v1/apps/hello/role": "admin",
		"/api/v1/events": "events", "/api/v1/enroll": "events", "/api/v2/": "admin",
		"/dashboard/": "dashboard", "/dashboard/apps/hello": "dashboard", "/dashboard": "repository",
	} {
		if got := faceNames[faceOf(p)]; got != want {
			t.Errorf("%s: face %s, want %s", p, got, want)
		}
	}
}

// TestKnownKindsComplete_Metrics: every Kind constant of package event is
// a label value of ferry_events_total, so no real kind counts as "other".
func TestKnownKindsComplete_Metrics(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "event", "event.go"))
	if err != nil {
		t.Fatal(err)
	}
	file, err := parser.ParseFile(token.NewFileSet(), "event.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range file.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Kind" {
				continue
			}
			for _, v := range vs.Values {
				k := event.Kind(strings.Trim(v.(*ast.BasicLit).Value, `"`))
				n++
				if !slices.Contains(knownKinds, k) {
					t.Errorf("kind %s is not in knownKinds", k)
				}
			}
		}
	}
	if n != len(knownKinds) {
		t.Errorf("event.go has %d kinds, knownKinds %d", n, len(knownKinds))
	}
}

// BenchmarkObserveRequest is what the metrics add to each request.
func BenchmarkObserveRequest(b *testing.B) {
	m, err := NewMetrics(MetricsConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m.observeRequest("/metadata/timestamp.json", 200, 1234)
	}
}
