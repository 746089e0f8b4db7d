package e2e_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/ferry-updates/ferry/audit"
	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/server"
)

// The dashboard in a real headless Chromium: a real ferry serve over HTTPS
// with its SQLite store, installations that enrolled and reported through
// the reporting API, and a browser that signs in, reads the numbers,
// halts a rollout by clicking, watches a number change by itself, and
// starts a guarded rollout from its form with scripts off.
//
// FERRY_TEST_CHROMIUM is the browser's path (.ci/run installs it and sets
// it); without it the test is skipped, and with it a missing browser is a
// failure. Screenshots go to FERRY_TEST_ARTIFACTS (default: a temporary
// directory), as PNG.

const dashPassword = "a long dashboard password for the browser test"

// reporter is one installation that enrolled through the reporting API,
// with its audit log, whose lines it sends.
type reporter struct {
	t      *testing.T
	srv    *dashSite
	id     string
	cred   string
	log    *audit.Log
	lines  []string
	posted int
}

type dashSite struct {
	*ferryCmd
	srv    *serveProc
	client *http.Client
	enroll string // the enrollment token
}

func (s *dashSite) post(path, auth string, body any, out any) {
	s.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		s.t.Fatal(err)
	}
	req, err := http.NewRequest("POST", strings.TrimSuffix(s.srv.url, "/")+path, bytes.NewReader(b))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		s.t.Fatalf("POST %s: %d %s", path, resp.StatusCode, e.Error)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			s.t.Fatal(err)
		}
	}
}

// newReporter enrolls a new installation running app at version.
func (s *dashSite) newReporter(app, version string) *reporter {
	s.t.Helper()
	r := &reporter{t: s.t, srv: s, id: newInstallID(s.t)}
	var ans server.EnrollAnswer
	s.post("/api/v1/enroll", s.enroll, server.EnrollRequest{InstallID: r.id, Hostname: "host-" + r.id[:6],
		Apps: []server.App{{App: app, Version: version, Channel: "stable"}}}, &ans)
	r.cred = ans.Credential
	l, err := audit.Open(filepath.Join(s.t.TempDir(), "audit.log"), audit.Options{
		OnAppend: func(line []byte, _ audit.State) { r.lines = append(r.lines, string(line)) }})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { l.Close() })
	r.log = l
	return r
}

// report appends events to the installation's audit log and sends the
// new lines, saying it runs app at runs.
func (r *reporter) report(app, runs string, evs ...event.Event) {
	r.t.Helper()
	for _, e := range evs {
		r.log.Observe(e)
	}
	if err := r.log.Err(); err != nil {
		r.t.Fatal(err)
	}
	r.srv.post("/api/v1/events", r.cred, server.EventsRequest{InstallID: r.id, Lines: r.lines[r.posted:],
		Apps: []server.App{{App: app, Version: runs, Channel: "stable"}}}, nil)
	r.posted = len(r.lines)
}

// installs is the events of an installation that installs version at t.
func installs(app, version string, at time.Time, healthy bool) []event.Event {
	evs := []event.Event{{Time: at, Kind: event.InstallStarted, App: app, Version: version}}
	if healthy {
		return append(evs, event.Event{Time: at.Add(time.Second), Kind: event.InstallDone, App: app, Version: version},
			event.Event{Time: at.Add(2 * time.Second), Kind: event.HealthPassed, App: app, Version: version})
	}
	return append(evs, event.Event{Time: at.Add(time.Second), Kind: event.HealthFailed, App: app, Version: version, Cause: "exit status 3"},
		event.Event{Time: at.Add(2 * time.Second), Kind: event.RolledBack, App: app, Version: version})
}

// spkiHash is the base64 SHA-256 of the public key of the certificate the
// server presents, verified against its CA: the browser is told to accept
// that key, and only it.
func spkiHash(t *testing.T, s *serveProc) (string, *x509.CertPool) {
	t.Helper()
	pem, err := os.ReadFile(s.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", s.ca)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(s.url, "https://"), "/")
	c, err := tls.Dial("tcp", host, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sum := sha256.Sum256(c.ConnectionState().PeerCertificates[0].RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:]), pool
}

// artifacts is where screenshots go.
func artifacts(t *testing.T) string {
	dir := os.Getenv("FERRY_TEST_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	dir = filepath.Join(dir, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestDashboardInBrowser(t *testing.T) {
	chromium := os.Getenv("FERRY_TEST_CHROMIUM")
	if chromium == "" {
		t.Skip("FERRY_TEST_CHROMIUM is unset: set it to a Chromium binary to run the dashboard in a headless browser (.ci/run installs one and sets it)")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("FERRY_TEST_CHROMIUM=%s: %v", chromium, err)
	}
	shots := artifacts(t)

	// The repository: hello 1.0.0 everywhere, 1.1.0 rolling out at 20%.
	f := newFerryCmd(t)
	f.run("init", "repo")
	for _, v := range []string{"1.0.0", "1.1.0"} {
		src := f.write(filepath.Join("dist", v, "hello"), program("hello", v), 0o755)
		f.run("release", "publish", "--repo", "repo", "--app", "hello", "--version", v, "--platform", platform, src)
	}
	c := f.command("dashboard", "credential", "--out", f.path("dashboard.cred"))
	c.Stdin = strings.NewReader(dashPassword + "\n")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("ferry dashboard credential: %v\n%s", err, out)
	}
	enroll := strings.TrimSpace(f.run("token", "create", "--repo", "repo", "--enroll"))
	rolloutToken := f.write("rollout.token", f.run("token", "create", "--repo", "repo", "--rollout", "--app", "hello"), 0o600)
	srv := f.serve("repo", "--dashboard-credential", f.path("dashboard.cred"))
	// 1.1.0 is rolled out by the guard: 20%, then 50% and 100% an hour
	// apart on enough healthy reports, halted above 30% failed.
	f.run("rollout", "start", "--server", srv.url, "--ca", srv.ca, "--token-file", rolloutToken, "--app", "hello", "--version", "1.1.0",
		"--stages", "20,50,100", "--stage-wait", "1h", "--min-healthy", "3", "--budget", "30%")
	spki, pool := spkiHash(t, srv)
	site := &dashSite{ferryCmd: f, srv: srv, enroll: enroll,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}

	// The fleet: seven installations installed 1.0.0 over the last hour;
	// four of them then tried 1.1.0: three are healthy, one failed its
	// health check and rolled back. One refused a download whose hash was
	// wrong.
	now := time.Now()
	var fleet []*reporter
	for i := range 7 {
		r := site.newReporter("hello", "")
		r.report("hello", "1.0.0", installs("hello", "1.0.0", now.Add(-time.Duration(55-5*i)*time.Minute), true)...)
		fleet = append(fleet, r)
	}
	for i, r := range fleet[:4] {
		runs := "1.1.0"
		if i == 3 {
			runs = "1.0.0"
		}
		r.report("hello", runs, installs("hello", "1.1.0", now.Add(-time.Duration(20-4*i)*time.Minute), i != 3)...)
	}
	fleet[5].report("hello", "1.0.0", event.Event{Time: now.Add(-3 * time.Minute), Kind: event.DownloadRejected, App: "hello", Version: "1.1.0",
		Cause: "sha256 mismatch", Evidence: map[string]string{"target": "hello/1.1.0/linux-amd64/hello", "expected_sha256": "aaaa", "got_sha256": "bbbb"}})
	// And one reports a refusal whose every string is markup (R67): the
	// browser must show it as text, create no element from it, run nothing.
	fleet[6].report("hello", "1.0.0", event.Event{Time: now.Add(-2 * time.Minute), Kind: event.MetadataRejected,
		Cause:    `<img src=x id=xss-cause onerror="document.title='pwned'">`,
		Evidence: map[string]string{"role": `"><script id=xss-script>document.title='pwned'</script>`, `<b id=xss-key>k</b>`: `javascript:alert(1)`}})

	// The browser: headless, no sandbox (containers), a profile of its
	// own, nothing in the background, and the server's key accepted.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.UserDataDir(profileDir(t)),
		chromedp.WindowSize(1280, 1000),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("ignore-certificate-errors-spki-list", spki),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	if err := chromedp.Do(bctx); err != nil { // starts the browser, which lives as long as bctx
		t.Fatalf("start %s: %v", chromium, err)
	}
	ctx, cancel := context.WithTimeout(bctx, 3*time.Minute)
	defer cancel()

	base := strings.TrimSuffix(srv.url, "/")
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
			shot("failed")
			t.Fatalf("%s: %v\nthe browser is at %s, showing:\n%s\nferry serve's log:\n%s", what, err, loc, body, lastLines(srv.stderr.String(), 20))
		}
	}

	// Not signed in: the dashboard sends the browser to sign in.
	do("open the dashboard", chromedp.Navigate(base+"/dashboard/"), chromedp.WaitVisible(chromedp.CSS("#password")))
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); loc != base+"/dashboard/login" {
		t.Fatalf("the dashboard without a session is at %s, want the sign-in page", loc)
	}
	shot("01-sign-in")
	// A wrong password is refused.
	do("sign in wrongly", chromedp.SendKeys(chromedp.CSS("#password"), "not the password"), chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#flash")))
	if got := text("#flash"); got != "Wrong password." {
		t.Fatalf("after a wrong password the page says %q", got)
	}
	do("sign in", chromedp.SendKeys(chromedp.CSS("#password"), dashPassword), chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#apps")))

	// The overview shows the numbers the test created.
	if got := text(`[data-app-installations="hello"]`); got != "7" {
		t.Errorf("overview: hello has %q installations, want 7", got)
	}
	if got := text("#card-security .num"); got != "2" {
		t.Errorf("overview: %q security events in the last day, want 2", got)
	}
	if got := text("#rollouts tbody"); !strings.Contains(got, "hello 1.1.0") || !strings.Contains(got, "20%") {
		t.Errorf("overview: rollouts in progress %q, want hello 1.1.0 at 20%%", got)
	}
	// The guard's finding, once it has evaluated the reports (every 5 s;
	// the page refreshes itself).
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`(document.querySelector('#rollouts [data-guard]') || {textContent: ""}).textContent.includes("1 failed + 0 silent of 4 started")`,
		chromedp.WithPollingTimeout(45*time.Second))); err != nil {
		t.Errorf("overview: the guard's evidence did not appear within 45 s: %v; the rollouts show %q", err, text("#rollouts tbody"))
	}
	if got := text("#rollouts [data-guard]"); !strings.Contains(got, "stage 1 of 3 (20% → 50% → 100%) at 20%") || !strings.Contains(got, "budget 30%, failed 25.0%") {
		t.Errorf("overview: guard status %q, want stage 1 of 3 at 20%%, budget 30%%, failed 25%%", got)
	}
	fleetText := text("#apps tbody")
	if !strings.Contains(fleetText, "1.1.0 · stable · 3") || !strings.Contains(fleetText, "1.0.0 · stable · 4") {
		t.Errorf("overview: fleet %q, want 3 on 1.1.0 and 4 on 1.0.0", fleetText)
	}
	shot("02-overview")

	// Live refresh: an eighth installation enrolls and the overview shows
	// it within a few refreshes, without a reload.
	eighth := site.newReporter("hello", "")
	eighth.report("hello", "1.0.0", installs("hello", "1.0.0", time.Now(), true)...)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('[data-app-installations="hello"]').textContent.trim() === "8"`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Errorf("the overview did not show the eighth installation by itself within 30 s: %v", err)
	}

	// The application: its release counts, the chart, and the halt.
	do("open hello", chromedp.Navigate(base+"/dashboard/apps/hello?range=1h"), chromedp.WaitVisible(chromedp.CSS("#releases")))
	rel := `li[data-version="1.1.0"] `
	for k, want := range map[string]string{"started": "4", "installed": "3", "healthy": "3", "failed": "1", "rolled_back": "1"} {
		if got := text(rel + `[data-count="` + k + `"]`); got != want {
			t.Errorf("hello 1.1.0 %s: %q, want %s", k, got, want)
		}
	}
	if got := text(`li[data-version="1.0.0"] [data-count="installed"]`); got != "8" {
		t.Errorf("hello 1.0.0 installed: %q, want 8", got)
	}
	lines, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('figure.chart polyline').length`))
	if err != nil || lines != 2 {
		t.Errorf("the chart draws %d lines (%v), want one per version, 2", lines, err)
	}
	shot("03-application")
	do("halt 1.1.0", chromedp.Click(chromedp.CSS(rel+`button[data-action="halt"]`)),
		chromedp.WaitVisible(chromedp.CSS("#flash")))
	if got := text("#flash"); got != "Signed: hello 1.1.0 is halted at 20% in stable." {
		t.Errorf("after the halt the page says %q", got)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); loc != base+"/dashboard/apps/hello?range=1h" {
		t.Errorf("after the halt the browser is at %s, want the application's page with its range", loc)
	}
	if got := text(rel + "[data-state]"); got != "halted" {
		t.Errorf("hello 1.1.0 is %q on the page after the halt", got)
	}
	shot("04-halted")
	// The halt is signed into the repository ferry serve serves.
	if out := f.run("rollout", "status", "--repo", "repo", "--app", "hello"); !strings.Contains(out, "halted") {
		t.Errorf("ferry rollout status after the halt:\n%s", out)
	}

	// Security events, with their evidence.
	do("open security events", chromedp.Navigate(base+"/dashboard/security"), chromedp.WaitVisible(chromedp.CSS("#security-events")))
	if got := text("#security-events tbody"); !strings.Contains(got, "download.rejected") || !strings.Contains(got, "got_sha256") ||
		!strings.Contains(got, "bbbb") || !strings.Contains(got, fleet[5].id) {
		t.Errorf("security events %q, want the rejected download with its evidence and installation", got)
	}
	// The hostile strings are on the page as text, and nothing of them
	// became an element or ran.
	hostile := text("#security-events tbody")
	for _, want := range []string{`<img src=x id=xss-cause onerror="document.title='pwned'">`, `"><script id=xss-script>`, `<b id=xss-key>k</b>`, "javascript:alert(1)"} {
		if !strings.Contains(hostile, want) {
			t.Errorf("security events do not show %q as text", want)
		}
	}
	xss, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[document.title, !!document.getElementById('xss-cause'), !!document.getElementById('xss-script'),
		!!document.getElementById('xss-key'), document.querySelectorAll('a[href^="javascript:"]').length].join(" ")`))
	if err != nil || xss != "Security events · ferry dashboard false false false 0" {
		t.Errorf("hostile strings in the browser: title, elements made, javascript links = %q (%v)", xss, err)
	}
	shot("05-security")
	do("open installations", chromedp.Navigate(base+"/dashboard/installations"), chromedp.WaitVisible(chromedp.CSS("#installations")))
	if got := text("#install-count"); got != "8" {
		t.Errorf("installations page lists %q, want 8", got)
	}
	shot("06-installations")

	// Without JavaScript the pages and the forms work the same: resume 1.1.0
	// with scripts off; the footer says the page does not refresh itself.
	do("turn scripts off", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	}))
	do("open hello without scripts", chromedp.Navigate(base+"/dashboard/apps/hello"), chromedp.WaitVisible(chromedp.CSS("#releases")))
	if got := text("#live-status"); got != "Reload the page for new numbers." {
		t.Errorf("without scripts the footer says %q", got)
	}
	do("resume 1.1.0 without scripts", chromedp.Click(chromedp.CSS(rel+`button[data-action="resume"]`)), chromedp.WaitVisible(chromedp.CSS("#flash")))
	if got := text(rel + "[data-state]"); got != "active" {
		t.Errorf("hello 1.1.0 is %q after a resume without scripts", got)
	}
	shot("07-resumed-without-scripts")

	// A guarded start from the release's form, still without scripts: the
	// disclosure opens, a budget of 0 is refused with ferry rollout
	// start's reason and signs nothing, and then the plan is signed through
	// the guard, as ferry rollout start --stages would sign it.
	guarded := rel + "details[data-guarded-start] "
	fill := func(what string, fields map[string]string) {
		t.Helper()
		// From a page without a flash, so that the one waited for is the answer's.
		steps := []chromedp.Action[chromedp.Void]{chromedp.Navigate(base + "/dashboard/apps/hello"), chromedp.WaitVisible(chromedp.CSS("#releases")),
			chromedp.Click(chromedp.CSS(guarded + "summary")), chromedp.WaitVisible(chromedp.CSS(guarded + `input[name="stages"]`))}
		for _, name := range []string{"stages", "stage-wait", "min-healthy", "budget"} {
			if v, ok := fields[name]; ok {
				steps = append(steps, chromedp.SendKeys(chromedp.CSS(guarded+`input[name="`+name+`"]`), v))
			}
		}
		steps = append(steps, chromedp.Click(chromedp.CSS(guarded+`button[data-action="guarded-start"]`)), chromedp.WaitVisible(chromedp.CSS("#flash")))
		do(what, steps...)
	}
	fill("a guarded start with a budget of 0", map[string]string{"stages": "30,60,100", "budget": "0"})
	if got := text("#flash"); got != `Not started: budget "0": want a share above 0 and at most 100%, e.g. 5% or 0.5.` {
		t.Errorf("after a guarded start with a budget of 0 the page says %q", got)
	}
	if got := text(rel + "[data-state]"); got != "active" || !strings.Contains(text(rel+".head"), "20% of") {
		t.Errorf("a refused guarded start changed hello 1.1.0: %q, %q", got, text(rel+".head"))
	}
	fill("a guarded start", map[string]string{"stages": "30,60,100", "stage-wait": "1h", "min-healthy": "3", "budget": "40%"})
	plan := "stages 30% 60% 100%, each at least 1h0m0s and 3 healthy reports; halts above 40% failed (silent for 2h0m0s counts as failed)"
	if got := text("#flash"); got != "Signed: hello 1.1.0 is active at 30% in stable; guarded: "+plan+"." {
		t.Errorf("after the guarded start the page says %q", got)
	}
	if got := text(rel + "[data-guard]"); !strings.Contains(got, "stage 1 of 3 (30% → 60% → 100%) at 30%") || !strings.Contains(got, "budget 40%") {
		t.Errorf("hello 1.1.0's guard after the guarded start: %q", got)
	}
	shot("08-guarded-start")
	// The server's guard has the plan, as ferry rollout status shows it.
	if out := f.run("rollout", "status", "--server", srv.url, "--ca", srv.ca, "--token-file", rolloutToken, "--app", "hello"); !strings.Contains(out, "1.1.0: guarded: "+plan) {
		t.Errorf("ferry rollout status after the guarded start:\n%s", out)
	}
	t.Logf("screenshots in %s", shots)
	fmt.Fprintln(os.Stderr, "dashboard screenshots:", shots)
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// profileDir is a fresh browser profile directory, removed at the end. The
// browser's child processes can still write in it for a moment after the
// browser is stopped, so its removal is retried (t.TempDir's would fail the
// test with "directory not empty").
func profileDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "ferry-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if err = os.RemoveAll(dir); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("browser profile %s not removed: %v", dir, err)
	})
	return dir
}
