package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/guard"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/rollout"
	"github.com/ferry-updates/ferry/server"
	"github.com/ferry-updates/ferry/store"
)

// publisher is the fake repository as the admin API's Publisher: it
// decides rollouts and publishes nothing.
type publisher struct{ *fakeRepo }

var errNoPublish = errors.New("the test repository publishes nothing")

func (publisher) AppRole(context.Context, string) ([]byte, error) { return nil, errNoPublish }
func (publisher) CheckUpload(context.Context, string, []byte) (*repo.Upload, error) {
	return nil, errNoPublish
}
func (publisher) PublishUpload(context.Context, string, []byte, []string) (repo.Result, error) {
	return repo.Result{}, errNoPublish
}
func (publisher) PublishUploadWith(context.Context, string, []byte, []string, repo.UploadOptions) (repo.Result, error) {
	return repo.Result{}, errNoPublish
}

// guardedFixture is a dashboard whose decisions go through a real rollout
// guard (server.Guard over the fixture's store and repository), as in
// ferry serve, and the admin API over the same guard, with a rollout
// token for hello: the path of ferry rollout start --server.
type guardedFixture struct {
	*fixture
	guard *server.Guard
	admin *server.AdminClient
}

func newGuardedFixture(t *testing.T) *guardedFixture {
	t.Helper()
	gf := &guardedFixture{}
	gf.fixture = newFixture(t, func(c *Config) {
		g, err := server.NewGuard(server.GuardConfig{Repo: c.Repo, Store: c.Store, Now: c.Now, Logger: c.Logger})
		if err != nil {
			t.Fatal(err)
		}
		gf.guard, c.Guard, c.Decide = g, g, g.Decide
	})
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	secret, _, err := server.CreateScopedToken(tokens, "hello", server.ScopeRollout, t0)
	if err != nil {
		t.Fatal(err)
	}
	h, err := server.Admin(server.AdminConfig{Repo: publisher{gf.repo}, Tokens: tokens, TempDir: t.TempDir(), Guard: gf.guard, Logger: gf.cfg.Logger})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	if gf.admin, err = server.NewAdminClient(srv.URL, secret, srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs); err != nil {
		t.Fatal(err)
	}
	return gf
}

// plan is the plan stored for hello's version (nil: none).
func (gf *guardedFixture) plan(version string) *store.RolloutPlan {
	gf.t.Helper()
	p, err := gf.st.Plan(context.Background(), "hello", version)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		gf.t.Fatal(err)
	}
	return &p
}

// startForm is the guarded start form of hello's version, filled in.
func startForm(csrf, version string, fields map[string]string) url.Values {
	v := url.Values{"csrf": {csrf}, "action": {"start"}, "version": {version}, "guarded": {"yes"}, "do": {"guarded"}}
	for _, name := range []string{"stages", "percent", "stage-wait", "min-healthy", "budget", "check-interval"} {
		v.Set(name, fields[name]) // the form sends every field, empty when left empty
	}
	return v
}

// TestGuardedStartAsCLI: a guarded start from the dashboard's form signs
// the same decision and stores the same plan as ferry rollout start with
// the same values through the admin API (the plan flags read by the same
// guard.Spec, sent with AdminClient.RolloutPlanned, recorded by the
// guard's Decide): a staged rollout, a watched one, and one left to the
// defaults. The page then shows the plan and the flash says it.
func TestGuardedStartAsCLI(t *testing.T) {
	gf := newGuardedFixture(t)
	gf.repo.sign("hello", "1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0", "1.6.0")
	b, csrf := gf.signedIn()
	ctx := context.Background()
	for _, c := range []struct {
		name         string
		form         map[string]string
		cliV, dashV  string
		flash, guard string
	}{
		{"staged", map[string]string{"stages": "1,10,100", "stage-wait": "30m", "min-healthy": "5", "budget": "2.5%", "check-interval": "10m"},
			"1.1.0", "1.2.0", "is active at 1% in stable; guarded: stages 1% 10% 100%, each at least 30m0s and 5 healthy reports; halts above 2.5% failed (silent for 20m0s counts as failed).",
			"stage 1 of 3 (1% → 10% → 100%) at 1%"},
		{"watched", map[string]string{"percent": "5", "budget": "10"},
			"1.3.0", "1.4.0", "is active at 5% in stable; guarded: watched: never widened; halts above 10% failed (silent for 2h0m0s counts as failed).",
			"budget 10%"},
		{"defaults", map[string]string{"stages": " 20, 50,100 "},
			"1.5.0", "1.6.0", "is active at 20% in stable; guarded: stages 20% 50% 100%, no stage wait, each at least 20 healthy reports; halts above 5% failed (silent for 2h0m0s counts as failed).",
			"stage 1 of 3 (20% → 50% → 100%) at 20%"},
	} {
		// The CLI's way: its flags as guard.Spec, then the admin API.
		f := c.form
		spec := guard.Spec{Percent: f["percent"], Stages: f["stages"], StageWait: f["stage-wait"], MinHealthy: f["min-healthy"],
			Budget: f["budget"], CheckInterval: f["check-interval"]}
		bp, plan, err := spec.Start()
		if err != nil {
			t.Fatalf("%s: the CLI's spec: %v", c.name, err)
		}
		cliEntry, err := gf.admin.RolloutPlanned(ctx, "hello", rollout.Action{Kind: rollout.Start, Version: c.cliV, BasisPoints: bp}, plan)
		if err != nil {
			t.Fatalf("%s: through the admin API: %v", c.name, err)
		}
		// The dashboard's way: the form.
		a := b.post(Prefix+"apps/hello/rollout", startForm(csrf, c.dashV, c.form))
		if a.code != http.StatusSeeOther || a.h.Get("Location") != Prefix+"apps/hello" {
			t.Fatalf("%s: guarded start from the form: %d %q", c.name, a.code, a.h.Get("Location"))
		}
		page := b.get(Prefix + "apps/hello").body
		if want := "Signed: hello " + c.dashV + " " + c.flash; !strings.Contains(page, want) {
			t.Errorf("%s: the page does not say %q", c.name, want)
		}
		if !strings.Contains(page, c.guard) {
			t.Errorf("%s: the page does not show the guard's %q", c.name, c.guard)
		}
		cli, dash := gf.plan(c.cliV), gf.plan(c.dashV)
		if cli == nil || dash == nil {
			t.Fatalf("%s: plans stored: CLI %v, dashboard %v", c.name, cli, dash)
		}
		if !reflect.DeepEqual(cli.Plan, dash.Plan) || cli.Stage != dash.Stage || !cli.StageSince.Equal(dash.StageSince) {
			t.Errorf("%s: the dashboard stored plan %+v (stage %d since %v)\nthe CLI's %+v (stage %d since %v)",
				c.name, dash.Plan, dash.Stage, dash.StageSince, cli.Plan, cli.Stage, cli.StageSince)
		}
		docs, _ := gf.repo.Rollouts("hello")
		if de := docs.Releases[c.dashV]; de.BasisPoints != cliEntry.BasisPoints || de.State != cliEntry.State || de.Channel != cliEntry.Channel {
			t.Errorf("%s: the dashboard signed %+v, the CLI %+v", c.name, de, cliEntry)
		}
	}
	want := []string{"hello start 1.1.0 100", "hello start 1.2.0 100", "hello start 1.3.0 500", "hello start 1.4.0 500",
		"hello start 1.5.0 2000", "hello start 1.6.0 2000"}
	if d := gf.repo.decided(); !slices.Equal(d, want) {
		t.Fatalf("decided %v\nwant %v", d, want)
	}
	if !strings.Contains(gf.logs.String(), `"msg":"dashboard: rollout","app":"hello","action":"start","version":"1.2.0","channel":"stable","basis_points":100,"state":"active","remote":"127.0.0.1","stages":"1,10,100","budget_bp":250`) {
		t.Errorf("the guarded start is not logged with its plan:\n%s", gf.logs)
	}
	// The Start button beside the share (no plan field) ends the plan, as
	// ferry rollout start --percent does.
	b.post(Prefix+"apps/hello/rollout", url.Values{"csrf": {csrf}, "action": {"start"}, "version": {"1.2.0"}, "percent": {"30"}})
	if p := gf.plan("1.2.0"); p != nil {
		t.Errorf("a start by hand kept the plan %+v", p.Plan)
	}
}

// TestGuardedStartRefused: a guarded start whose fields make no sense is
// refused with one line on the page saying why, in the words of ferry
// rollout start's errors (the same guard.Spec), and nothing is signed or
// stored; a release's plan is kept through a refused start.
func TestGuardedStartRefused(t *testing.T) {
	gf := newGuardedFixture(t)
	gf.repo.sign("hello", "1.0.0", "1.1.0", "1.2.0")
	b, csrf := gf.signedIn()
	// 1.2.0 has a plan, which a refused start must keep.
	if a := b.post(Prefix+"apps/hello/rollout", startForm(csrf, "1.2.0", map[string]string{"stages": "1,100"})); a.code != http.StatusSeeOther || gf.plan("1.2.0") == nil {
		t.Fatalf("guarded start of 1.2.0: %d, plan %v", a.code, gf.plan("1.2.0"))
	}
	before := gf.repo.decided()
	for _, c := range []struct {
		name    string
		version string
		form    map[string]string
		want    string
	}{
		{"budget 0", "1.1.0", map[string]string{"percent": "5", "budget": "0"}, `Not started: budget &#34;0&#34;: want a share above 0 and at most 100%, e.g. 5% or 0.5.`},
		{"budget over 100", "1.1.0", map[string]string{"stages": "1,10", "budget": "101%"}, `Not started: budget &#34;101%&#34;: want a share above 0`},
		{"budget not a number", "1.2.0", map[string]string{"stages": "1,10", "budget": "five"}, `Not started: budget &#34;five&#34;: want a share above 0`},
		{"stages falling", "1.1.0", map[string]string{"stages": "10,1"}, `Not started: stages: stages &#34;10,1&#34;: stage 2 (1%) is not above stage 1 (10%): stages rise.`},
		{"stages not numbers", "1.2.0", map[string]string{"stages": "1,ten"}, `Not started: stages: stages &#34;1,ten&#34;: invalid percent &#34;ten&#34;`},
		{"stages over 100", "1.1.0", map[string]string{"stages": "50,150"}, `Not started: stages: stages &#34;50,150&#34;: invalid percent &#34;150&#34;`},
		{"stages and share", "1.1.0", map[string]string{"stages": "1,10", "percent": "5"}, `Not started: use either stages (the first stage is the share it starts at) or share, not both.`},
		{"stage wait without stages", "1.1.0", map[string]string{"percent": "5", "stage-wait": "1h"}, `Not started: stage wait goes with stages.`},
		{"min healthy 0", "1.1.0", map[string]string{"stages": "1,10", "min-healthy": "0"}, `Not started: min healthy 0: a stage needs at least 1 healthy report to advance.`},
		{"check interval 0", "1.1.0", map[string]string{"stages": "1,10", "check-interval": "0s"}, `Not started: check interval must be positive and stage wait not negative.`},
		{"stage wait not a duration", "1.1.0", map[string]string{"stages": "1,10", "stage-wait": "soon"}, `Not started: stage wait &#34;soon&#34;: want a duration such as 30m or 1h.`},
		{"no share", "1.1.0", map[string]string{"budget": "5%"}, `Not started: no share: pass share P, or stages S1,S2,... for a staged rollout.`},
		{"check interval without budget", "1.2.0", map[string]string{"percent": "3", "check-interval": "5m"}, `Not started: check interval goes with stages, or with budget for a watched rollout.`},
		{"no plan", "1.2.0", map[string]string{"percent": "50"}, `Not started: a guarded start needs stages, or a share and a budget for a watched rollout`},
	} {
		a := b.post(Prefix+"apps/hello/rollout", startForm(csrf, c.version, c.form))
		if a.code != http.StatusSeeOther {
			t.Errorf("%s: %d, want 303 back to the page", c.name, a.code)
			continue
		}
		page := b.get(Prefix + "apps/hello").body
		m := flashRE.FindStringSubmatch(page)
		if m == nil || !strings.HasPrefix(m[1], c.want) || strings.Contains(m[1], "\n") {
			t.Errorf("%s: the page's flash is %q, want one line starting %q", c.name, m, c.want)
		}
	}
	if d := gf.repo.decided(); !slices.Equal(d, before) {
		t.Errorf("refused starts signed %v", d[len(before):])
	}
	if p := gf.plan("1.1.0"); p != nil {
		t.Errorf("a refused start stored the plan %+v", p.Plan)
	}
	if p := gf.plan("1.2.0"); p == nil || !slices.Equal(p.Plan.Stages, []int{100, rollout.Full}) {
		t.Errorf("refused starts changed 1.2.0's plan: %+v", p)
	}
}

var flashRE = regexp.MustCompile(`<p class="flash error" role="status" id="flash">([^<]*)</p>`)

// TestGuardedStartCSRF_R67: the guarded start form, sent without the
// session's CSRF token, with a wrong one, or from another origin, is
// refused with 403 before its fields are read: nothing signed, no plan
// stored. With the token the same form starts the guarded rollout.
func TestGuardedStartCSRF_R67(t *testing.T) {
	gf := newGuardedFixture(t)
	gf.repo.sign("hello", "1.0.0", "1.1.0")
	b, csrf := gf.signedIn()
	fields := map[string]string{"stages": "1,10,100", "budget": "5%"}
	noToken := startForm(csrf, "1.1.0", fields)
	noToken.Del("csrf")
	for _, c := range []struct {
		name   string
		form   url.Values
		header map[string]string
	}{
		{"no token", noToken, nil},
		{"wrong token", startForm(wrongToken(csrf), "1.1.0", fields), nil},
		{"other origin", startForm(csrf, "1.1.0", fields), map[string]string{"Origin": "https://evil.example"}},
		{"cross-site", startForm(csrf, "1.1.0", fields), map[string]string{"Sec-Fetch-Site": "cross-site"}},
	} {
		b.header = http.Header{}
		for k, v := range c.header {
			b.header.Set(k, v)
		}
		if a := b.post(Prefix+"apps/hello/rollout", c.form); a.code != http.StatusForbidden {
			t.Errorf("guarded start with %s: %d, want 403", c.name, a.code)
		}
	}
	b.header = http.Header{}
	if d := gf.repo.decided(); len(d) > 0 {
		t.Fatalf("refused guarded starts signed %v", d)
	}
	if p := gf.plan("1.1.0"); p != nil {
		t.Fatalf("a refused guarded start stored the plan %+v", p.Plan)
	}
	if a := b.post(Prefix+"apps/hello/rollout", startForm(csrf, "1.1.0", fields)); a.code != http.StatusSeeOther || gf.plan("1.1.0") == nil {
		t.Fatalf("guarded start with the token: %d, plan %v", a.code, gf.plan("1.1.0"))
	}
}

// TestGuardedNoDecision: a guarded release whose decision was pruned
// (it reached the whole channel) shows where the guard is with it, not
// "no decision: the whole channel" beside the guard's line.
func TestGuardedNoDecision(t *testing.T) {
	gf := newGuardedFixture(t)
	gf.repo.sign("hello", "1.0.0", "1.1.0")
	b, csrf := gf.signedIn()
	if a := b.post(Prefix+"apps/hello/rollout", startForm(csrf, "1.1.0", map[string]string{"stages": "50,100"})); a.code != http.StatusSeeOther {
		t.Fatalf("guarded start: %d", a.code)
	}
	gf.repo.mu.Lock()
	delete(gf.repo.docs["hello"].Releases, "1.1.0") // pruned, as a release at 100% is
	gf.repo.mu.Unlock()
	page := b.get(Prefix + "apps/hello").body
	i := strings.Index(page, `id="release-1.1.0"`)
	j := strings.Index(page, `id="release-1.0.0"`)
	if i < 0 || j < i {
		t.Fatalf("releases not on the page")
	}
	if guarded := page[i:j]; strings.Contains(guarded, "no decision") || !strings.Contains(guarded, `<span class="muted" data-phase>guarded, stage 1 of 2</span>`) {
		t.Errorf("the guarded release says:\n%s", guarded)
	}
	if !strings.Contains(page[j:], "no decision: the whole channel") {
		t.Errorf("the unguarded release without a decision does not say so")
	}
}

// TestGuardedStartWithoutGuard: a dashboard without a guard (no Decide)
// refuses a plan, as the admin API without one does, and signs nothing.
func TestGuardedStartWithoutGuard(t *testing.T) {
	f := newFixture(t, nil)
	f.repo.sign("hello", "1.0.0")
	b, csrf := f.signedIn()
	b.post(Prefix+"apps/hello/rollout", startForm(csrf, "1.0.0", map[string]string{"stages": "1,100"}))
	if page := b.get(Prefix + "apps/hello").body; !strings.Contains(page, "start hello 1.0.0 refused: this server has no guard to keep a plan.") {
		t.Errorf("a plan without a guard: no refusal shown")
	}
	if d := f.repo.decided(); len(d) > 0 {
		t.Fatalf("signed %v", d)
	}
}

// TestGuardedStartFormOnPage: every release that can be started has the
// guarded start form, a disclosure that needs no script, with the
// session's token and the fields named as ferry rollout start's flags.
func TestGuardedStartFormOnPage(t *testing.T) {
	f := newFixture(t, nil)
	f.repo.sign("hello", "1.0.0", "1.1.0")
	b, csrf := f.signedIn()
	page := b.get(Prefix + "apps/hello").body
	if n := strings.Count(page, "<details class=\"guarded\" data-guarded-start>"); n != 2 {
		t.Errorf("%d guarded start forms, want one per release", n)
	}
	for _, want := range []string{`<input type="hidden" name="csrf" value="` + csrf + `">`, `name="guarded" value="yes"`,
		`name="stages"`, `name="stage-wait"`, `name="min-healthy" size="4" inputmode="numeric" placeholder="20"`,
		`name="budget" size="5" inputmode="decimal" placeholder="5%"`, `name="check-interval" size="6" placeholder="1h"`,
		`data-action="guarded-start">Start guarded</button>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the application page lacks %q", want)
		}
	}
}
