package dashboard

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/rollout"
	"github.com/ferry-updates/ferry/store"
)

// fakeRepo is the rollout side of a repository, in memory: the decisions
// are applied by rollout.Doc.Apply, as *repo.Repo applies them, without
// signing anything.
type fakeRepo struct {
	mu      sync.Mutex
	signed  map[string][]string // app -> versions
	docs    map[string]*rollout.Doc
	min     map[string]string
	actions []string // "app action version bp", in order
}

func newFakeRepo() *fakeRepo {
	return &fakeRepo{signed: map[string][]string{}, docs: map[string]*rollout.Doc{}, min: map[string]string{}}
}

func (f *fakeRepo) sign(app string, versions ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signed[app] = append(f.signed[app], versions...)
}

func (f *fakeRepo) Rollout(ctx context.Context, app string, a rollout.Action) (rollout.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.docs[app]
	if d == nil {
		d = &rollout.Doc{App: app}
	}
	e, err := d.Apply(a, f.signed[app], f.min[app])
	if err != nil {
		return rollout.Entry{}, fmt.Errorf("%w: %w", repo.ErrRefused, err)
	}
	f.docs[app] = d
	f.actions = append(f.actions, fmt.Sprintf("%s %s %s %d", app, a.Kind, a.Version, a.BasisPoints))
	return e, nil
}

func (f *fakeRepo) Rollouts(app string) (*rollout.Doc, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.docs[app]
	if d == nil {
		return nil, nil
	}
	c := &rollout.Doc{App: d.App, Releases: map[string]rollout.Entry{}}
	maps.Copy(c.Releases, d.Releases)
	return c, nil
}

func (f *fakeRepo) MinVersion(app string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.min[app], nil
}

func (f *fakeRepo) List(ctx context.Context) ([]repo.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []repo.Entry
	for _, app := range slices.Sorted(maps.Keys(f.signed)) {
		for _, v := range f.signed[app] {
			out = append(out, repo.Entry{Release: repo.Release{App: app, Version: v, Platform: "linux/amd64"}, Path: app + "/" + v + "/linux-amd64/" + app})
		}
	}
	return out, nil
}

func (f *fakeRepo) decided() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.actions)
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// The test password, and cheap argon2id parameters (tests only).
const testPassword = "correct horse battery staple"

var testParams = Params{Memory: 64, Time: 1, Lanes: 1}

// fixture is a dashboard over a real SQLite store and a fake repository,
// served over HTTPS by httptest.
type fixture struct {
	t     testing.TB
	st    store.Store
	repo  *fakeRepo
	clock *clock
	srv   *httptest.Server
	h     http.Handler // the dashboard itself
	logs  *syncBuffer
	cfg   Config
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

var t0 = time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)

func newFixture(t testing.TB, tweak func(*Config)) *fixture {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cred, err := HashPassword([]byte(testPassword), testParams)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, st: st, repo: newFakeRepo(), clock: &clock{t: t0}, logs: &syncBuffer{}}
	f.cfg = Config{Store: st, Repo: f.repo, Credential: cred, Now: f.clock.Now,
		Logger: slog.New(slog.NewJSONHandler(f.logs, nil))}
	if tweak != nil {
		tweak(&f.cfg)
	}
	h, err := New(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	mux := http.NewServeMux()
	mux.Handle(Prefix, h)
	f.srv = httptest.NewTLSServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// browser is a client with its own cookie jar that does not follow
// redirects (the tests look at them).
type browser struct {
	f      *fixture
	c      *http.Client
	header http.Header // added to every request
}

func (f *fixture) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	c := *f.srv.Client() // a copy: httptest shares one client
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{f: f, c: &c, header: http.Header{}}
}

type answer struct {
	code int
	h    http.Header
	body string
}

func (b *browser) do(method, path string, form url.Values) answer {
	b.f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.f.srv.URL+path, body)
	if err != nil {
		b.f.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, vs := range b.header {
		req.Header[k] = vs
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.f.t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(rb)}
}

func (b *browser) get(path string) answer { b.f.t.Helper(); return b.do("GET", path, nil) }

func (b *browser) post(path string, form url.Values) answer {
	b.f.t.Helper()
	return b.do("POST", path, form)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t testing.TB, html string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", html)
	}
	return m[1]
}

// signIn signs in with password and returns the answer to the POST.
func (b *browser) signIn(password string) answer {
	b.f.t.Helper()
	page := b.get(Prefix + "login")
	if page.code != http.StatusOK {
		b.f.t.Fatalf("GET login: %d", page.code)
	}
	return b.post(Prefix+"login", url.Values{"csrf": {csrfOf(b.f.t, page.body)}, "password": {password}})
}

// signedIn is a browser signed in with the right password, and its
// session's CSRF token.
func (f *fixture) signedIn() (*browser, string) {
	f.t.Helper()
	b := f.browser()
	if a := b.signIn(testPassword); a.code != http.StatusSeeOther || a.h.Get("Location") != Prefix {
		f.t.Fatalf("sign in: %d %s %s", a.code, a.h.Get("Location"), a.body)
	}
	ov := b.get(Prefix)
	if ov.code != http.StatusOK {
		f.t.Fatalf("overview after sign-in: %d", ov.code)
	}
	return b, csrfOf(f.t, ov.body)
}

// enroll enrolls installations running app at version.
func (f *fixture) enroll(app, version string, ids ...string) {
	f.t.Helper()
	ctx := context.Background()
	tokID := fmt.Sprintf("tok-%d", time.Now().UnixNano())
	if err := f.st.CreateToken(ctx, store.Token{ID: tokID, Kind: store.Enroll, Scope: "*", Hash: "h-" + tokID, Created: t0}); err != nil {
		f.t.Fatal(err)
	}
	for _, id := range ids {
		if err := f.st.Enroll(ctx, store.Installation{ID: id, CredentialHash: "c-" + id, Enrolled: t0.Add(-time.Hour),
			Apps: []store.App{{App: app, Version: version, Channel: "stable"}}}, "h-"+tokID); err != nil {
			f.t.Fatal(err)
		}
	}
}

// report stores events of one installation, numbered from seq.
func (f *fixture) report(id string, seq uint64, evs ...store.Event) {
	f.t.Helper()
	for i := range evs {
		evs[i].Seq = seq + uint64(i)
		evs[i].Hash = fmt.Sprintf("hash-%s-%d", id, evs[i].Seq)
		if evs[i].Time.IsZero() {
			evs[i].Time = f.clock.Now().Add(-time.Minute)
		}
	}
	if _, err := f.st.AppendEvents(context.Background(), id, evs); err != nil {
		f.t.Fatal(err)
	}
}
