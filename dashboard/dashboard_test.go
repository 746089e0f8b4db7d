package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/guard"
	"github.com/ferry-updates/ferry/rollout"
	"github.com/ferry-updates/ferry/store"
)

// The routes: every page, and every action with a form that would be
// accepted when signed in.
var pageRoutes = []string{Prefix, Prefix + "apps/hello", Prefix + "security", Prefix + "installations", Prefix + "no-such-page"}

// TestRoutesRefuseWithoutSession_R67: every page without a session cookie,
// or with one the server did not issue, sends the browser to the sign-in
// page and shows nothing of the fleet; every action is refused with 401
// and decides nothing. With the session the pages answer.
func TestRoutesRefuseWithoutSession_R67(t *testing.T) {
	f := newFixture(t, nil)
	f.repo.sign("hello", "1.0.0", "1.1.0")
	f.enroll("hello", "1.0.0", "secret-install-id")
	good, csrf := f.signedIn()
	forged := f.browser()
	forged.header.Set("Cookie", sessionCookie+"="+randomID())
	expired := f.browser()
	expired.header.Set("Cookie", sessionCookie+"=")
	for name, b := range map[string]*browser{"no cookie": f.browser(), "unknown session": forged, "empty session": expired} {
		for _, p := range pageRoutes {
			a := b.get(p)
			if a.code != http.StatusSeeOther || a.h.Get("Location") != Prefix+"login" || strings.Contains(a.body, "secret-install-id") {
				t.Errorf("GET %s with %s: %d to %q, want 303 to the sign-in page", p, name, a.code, a.h.Get("Location"))
			}
		}
		for _, p := range []string{Prefix + "apps/hello/rollout", Prefix + "logout"} {
			a := b.post(p, url.Values{"csrf": {csrf}, "action": {"halt"}, "version": {"1.1.0"}})
			if a.code != http.StatusUnauthorized {
				t.Errorf("POST %s with %s: %d, want 401", p, name, a.code)
			}
		}
	}
	if d := f.repo.decided(); len(d) > 0 {
		t.Fatalf("refused requests decided %v", d)
	}
	for _, p := range pageRoutes {
		want := http.StatusOK
		if strings.HasSuffix(p, "no-such-page") {
			want = http.StatusNotFound
		}
		if a := good.get(p); a.code != want {
			t.Errorf("GET %s signed in: %d, want %d", p, a.code, want)
		}
	}
	if a := good.get(Prefix + "installations"); !strings.Contains(a.body, "secret-install-id") {
		t.Errorf("the installations page does not list the enrolled installation")
	}
	a := good.post(Prefix+"apps/hello/rollout", url.Values{"csrf": {csrf}, "action": {"start"}, "version": {"1.1.0"}, "percent": {"5"}})
	if a.code != http.StatusSeeOther || !slices.Equal(f.repo.decided(), []string{"hello start 1.1.0 500"}) {
		t.Fatalf("start signed in: %d, decided %v", a.code, f.repo.decided())
	}
}

// TestCSRF_R67: a signed-in browser's POST without the session's CSRF
// token, with a wrong one (another session's), from another origin, or
// marked cross-site by the browser, is refused with 403 and decides
// nothing; the same POST with the token from the page is accepted.
func TestCSRF_R67(t *testing.T) {
	f := newFixture(t, nil)
	f.repo.sign("hello", "1.0.0")
	b, csrf := f.signedIn()
	_, other := f.signedIn()
	halt := func(token string) url.Values {
		v := url.Values{"action": {"halt"}, "version": {"1.0.0"}}
		if token != "" {
			v.Set("csrf", token)
		}
		return v
	}
	for _, c := range []struct {
		name   string
		form   url.Values
		header map[string]string
	}{
		{"no token", halt(""), nil},
		{"empty token", url.Values{"csrf": {""}, "action": {"halt"}, "version": {"1.0.0"}}, nil},
		{"wrong token", halt(wrongToken(csrf)), nil},
		{"another session's token", halt(other), nil},
		{"other origin", halt(csrf), map[string]string{"Origin": "https://evil.example"}},
		{"null origin", halt(csrf), map[string]string{"Origin": "null"}},
		{"null origin from another site", halt(csrf), map[string]string{"Origin": "null", "Sec-Fetch-Site": "cross-site"}},
		{"other origin said to be same-origin", halt(csrf), map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"}},
		{"cross-site fetch", halt(csrf), map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"same-site fetch", halt(csrf), map[string]string{"Sec-Fetch-Site": "same-site"}},
	} {
		b.header = http.Header{}
		for k, v := range c.header {
			b.header.Set(k, v)
		}
		if a := b.post(Prefix+"apps/hello/rollout", c.form); a.code != http.StatusForbidden {
			t.Errorf("halt with %s: %d, want 403", c.name, a.code)
		}
		if a := b.post(Prefix+"logout", c.form); a.code != http.StatusForbidden {
			t.Errorf("sign-out with %s: %d, want 403", c.name, a.code)
		}
	}
	if d := f.repo.decided(); len(d) > 0 {
		t.Fatalf("refused requests decided %v", d)
	}
	if a := b.get(Prefix); a.code != http.StatusOK {
		t.Fatalf("the refused sign-outs ended the session: %d", a.code)
	}
	u, _ := url.Parse(f.srv.URL)
	b.header = http.Header{"Origin": {"https://" + u.Host}, "Sec-Fetch-Site": {"same-origin"}}
	if a := b.post(Prefix+"apps/hello/rollout", halt(csrf)); a.code != http.StatusSeeOther {
		t.Fatalf("halt with the right token from the dashboard's origin: %d %s", a.code, a.body)
	}
	// What Chromium sends for the dashboard's own form under its
	// Referrer-Policy no-referrer: a null Origin, and same-origin.
	b.header = http.Header{"Origin": {"null"}, "Sec-Fetch-Site": {"same-origin"}}
	if a := b.post(Prefix+"apps/hello/rollout", url.Values{"csrf": {csrf}, "action": {"resume"}, "version": {"1.0.0"}}); a.code != http.StatusSeeOther {
		t.Fatalf("resume with the right token, a null Origin and same-origin: %d %s", a.code, a.body)
	}
	if d := f.repo.decided(); !slices.Equal(d, []string{"hello halt 1.0.0 0", "hello resume 1.0.0 0"}) {
		t.Fatalf("decided %v, want the halt and the resume", d)
	}
	if !strings.Contains(f.logs.String(), "CSRF token missing or wrong") || !strings.Contains(f.logs.String(), "cross-site request refused") {
		t.Errorf("refusals not logged:\n%s", f.logs)
	}
}

// TestSignInCSRF_R67: the sign-in form has a token of its own, bound to a
// cookie: a sign-in posted from elsewhere (no cookie, or another form's
// token) is refused even with the right password, and makes no session.
func TestSignInCSRF_R67(t *testing.T) {
	f := newFixture(t, nil)
	b := f.browser()
	if a := b.post(Prefix+"login", url.Values{"password": {testPassword}}); a.code != http.StatusForbidden || a.h.Get("Set-Cookie") != "" && strings.Contains(a.h.Get("Set-Cookie"), sessionCookie+"=") {
		t.Errorf("sign-in without the form's token: %d, cookies %q", a.code, a.h.Values("Set-Cookie"))
	}
	page := f.browser().get(Prefix + "login")
	if a := b.post(Prefix+"login", url.Values{"csrf": {csrfOf(t, page.body)}, "password": {testPassword}}); a.code != http.StatusForbidden {
		t.Errorf("sign-in with another browser's form token: %d, want 403", a.code)
	}
	if a := b.get(Prefix); a.code != http.StatusSeeOther {
		t.Errorf("a refused sign-in made a session: overview %d", a.code)
	}
}

// TestSessionCookie_R67: the session cookie is Secure, HttpOnly,
// SameSite=Strict, limited to the dashboard's path, and holds 256 random
// bits; every sign-in gets a new one (a cookie planted before sign-in is
// not the session after it); sign-out ends the session on the server, so
// the old cookie no longer works; an idle session expires.
func TestSessionCookie_R67(t *testing.T) {
	f := newFixture(t, nil)
	b := f.browser()
	planted := randomID()
	b.header.Set("Cookie", sessionCookie+"="+planted)
	a := b.signIn(testPassword)
	b.header = http.Header{}
	var sess *http.Cookie
	for _, c := range (&http.Response{Header: a.h}).Cookies() {
		if c.Name == sessionCookie {
			sess = c
		}
	}
	if sess == nil {
		t.Fatalf("sign-in set no session cookie: %q", a.h.Values("Set-Cookie"))
	}
	raw := ""
	for _, v := range a.h.Values("Set-Cookie") {
		if strings.HasPrefix(v, sessionCookie+"=") {
			raw = v
		}
	}
	for _, attr := range []string{"; Secure", "; HttpOnly", "; SameSite=Strict", "; Path=/dashboard/"} {
		if !strings.Contains(raw, attr) {
			t.Errorf("session cookie %q lacks %q", raw, attr)
		}
	}
	if len(sess.Value) != 43 || sess.Value == planted {
		t.Errorf("session ID %q: want 43 base64url characters (256 bits), new at sign-in", sess.Value)
	}
	// The login page's own cookie is as strict.
	for _, v := range f.browser().get(Prefix + "login").h.Values("Set-Cookie") {
		for _, attr := range []string{"; Secure", "; HttpOnly", "; SameSite=Strict", "; Path=/dashboard/"} {
			if !strings.Contains(v, attr) {
				t.Errorf("sign-in form cookie %q lacks %q", v, attr)
			}
		}
	}
	b2, _ := f.signedIn()
	if b2.c.Jar.Cookies(mustURL(t, f.srv.URL+Prefix))[0].Value == sess.Value {
		t.Error("two sign-ins got the same session ID")
	}
	// Sign out; the old cookie, replayed, no longer works.
	ov := b.get(Prefix)
	if a := b.post(Prefix+"logout", url.Values{"csrf": {csrfOf(t, ov.body)}}); a.code != http.StatusSeeOther {
		t.Fatalf("sign out: %d", a.code)
	}
	replay := f.browser()
	replay.header.Set("Cookie", sessionCookie+"="+sess.Value)
	if a := replay.get(Prefix); a.code != http.StatusSeeOther {
		t.Errorf("the session's cookie after sign-out: %d, want 303 to sign in", a.code)
	}
	// Idle for longer than the timeout: the other session has ended.
	f.clock.add(DefaultIdleTimeout + time.Second)
	if a := b2.get(Prefix); a.code != http.StatusSeeOther {
		t.Errorf("an idle session after %v: %d, want 303 to sign in", DefaultIdleTimeout, a.code)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestSessionMaxAge_R67: a session in use all the time still ends after
// MaxSession.
func TestSessionMaxAge_R67(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxSession = time.Hour })
	b, _ := f.signedIn()
	for range 5 {
		f.clock.add(11 * time.Minute)
		if a := b.get(Prefix); a.code != http.StatusOK {
			t.Fatalf("a session in use, %v old: %d", f.clock.Now().Sub(t0), a.code)
		}
	}
	f.clock.add(11 * time.Minute)
	if a := b.get(Prefix); a.code != http.StatusSeeOther {
		t.Fatalf("a session over MaxSession: %d, want 303", a.code)
	}
}

// TestSecurityHeaders_R67: every answer — sign-in page, pages, static
// files, refusals, not found — refuses framing (CSP frame-ancestors 'none'
// and X-Frame-Options), allows only the dashboard's own script, and is
// neither sniffed, cached nor referred.
func TestSecurityHeaders_R67(t *testing.T) {
	f := newFixture(t, nil)
	f.repo.sign("hello", "1.0.0")
	b, csrf := f.signedIn()
	anon := f.browser()
	answers := map[string]answer{
		"login":        anon.get(Prefix + "login"),
		"overview":     b.get(Prefix),
		"app":          b.get(Prefix + "apps/hello"),
		"security":     b.get(Prefix + "security"),
		"installs":     b.get(Prefix + "installations"),
		"not found":    b.get(Prefix + "nope"),
		"static js":    anon.get(Prefix + "static/dash.js"),
		"static css":   anon.get(Prefix + "static/dash.css"),
		"no session":   anon.get(Prefix),
		"bad csrf":     b.post(Prefix+"apps/hello/rollout", url.Values{"csrf": {"x"}}),
		"wrong passwd": anon.signIn("not the password at all"),
		"decision":     b.post(Prefix+"apps/hello/rollout", url.Values{"csrf": {csrf}, "action": {"halt"}, "version": {"1.0.0"}}),
	}
	for name, a := range answers {
		csp := a.h.Get("Content-Security-Policy")
		for _, d := range []string{"frame-ancestors 'none'", "script-src 'self'", "default-src 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("%s: CSP %q lacks %s", name, csp, d)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP %q allows inline script or eval", name, csp)
		}
		for k, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
			"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
			if got := a.h.Get(k); got != want {
				t.Errorf("%s: %s %q, want %q", name, k, got, want)
			}
		}
	}
	if ct := answers["static js"].h.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("dash.js served as %q", ct)
	}
	if ct := answers["overview"].h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("overview served as %q", ct)
	}
}

// TestNoInlineScript_R67: the pages carry no inline script or event
// handler attribute, which the policy would block anyway: everything the
// browser runs is /dashboard/static/dash.js.
func TestNoInlineScript_R67(t *testing.T) {
	f := newFixture(t, nil)
	f.repo.sign("hello", "1.0.0")
	b, _ := f.signedIn()
	for _, p := range append(pageRoutes, Prefix+"login") {
		body := b.get(p).body
		if p == Prefix+"login" {
			body = f.browser().get(p).body
		}
		for _, bad := range []string{"<script>", " onclick=", " onload=", " onerror=", " style=", "javascript:"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", p, bad)
			}
		}
		if strings.Count(body, "<script") != strings.Count(body, `<script src="/dashboard/static/dash.js" defer></script>`) {
			t.Errorf("%s has a script other than dash.js", p)
		}
	}
}

// TestSignInRateLimited_R67: sign-in attempts from one address are limited:
// after the burst, 429 with Retry-After, also for the right password, and
// no password is checked; once the wait has passed one more attempt may
// be made. Wrong passwords answer 401 and set no session.
func TestSignInRateLimited_R67(t *testing.T) {
	f := newFixture(t, nil)
	b := f.browser()
	for i := range DefaultSignInRate.Burst {
		a := b.signIn(fmt.Sprintf("wrong password number %d", i))
		if a.code != http.StatusUnauthorized || !strings.Contains(a.body, "Wrong password") {
			t.Fatalf("wrong password %d: %d", i, a.code)
		}
		for _, c := range (&http.Response{Header: a.h}).Cookies() {
			if c.Name == sessionCookie && c.Value != "" {
				t.Fatalf("a wrong password set a session cookie")
			}
		}
	}
	a := b.signIn(testPassword)
	if a.code != http.StatusTooManyRequests {
		t.Fatalf("attempt past the burst: %d, want 429", a.code)
	}
	secs, err := strconv.Atoi(a.h.Get("Retry-After"))
	if err != nil || secs < 1 || secs > int(DefaultSignInRate.Every/time.Second) {
		t.Fatalf("Retry-After %q, want 1..%d seconds", a.h.Get("Retry-After"), int(DefaultSignInRate.Every/time.Second))
	}
	if b.get(Prefix).code != http.StatusSeeOther {
		t.Fatal("a rate-limited sign-in made a session")
	}
	f.clock.add(time.Duration(secs) * time.Second)
	if a := b.signIn(testPassword); a.code != http.StatusSeeOther {
		t.Fatalf("after Retry-After: %d, want the sign-in", a.code)
	}
	if !strings.Contains(f.logs.String(), "sign-in rate limited") || !strings.Contains(f.logs.String(), "sign-in failed") {
		t.Errorf("not logged:\n%s", f.logs)
	}
	if strings.Contains(f.logs.String(), "wrong password number") || strings.Contains(f.logs.String(), testPassword) {
		t.Errorf("a password reached the log:\n%s", f.logs)
	}
}

// TestBodyLimit_R67: a POST body over MaxForm is refused with 413 before it
// is read, from its Content-Length, and when it arrives chunked.
func TestBodyLimit_R67(t *testing.T) {
	f := newFixture(t, nil)
	f.repo.sign("hello", "1.0.0")
	b, csrf := f.signedIn()
	big := url.Values{"csrf": {csrf}, "action": {"halt"}, "version": {"1.0.0"}, "pad": {strings.Repeat("x", MaxForm)}}
	if a := b.post(Prefix+"apps/hello/rollout", big); a.code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized form: %d, want 413", a.code)
	}
	req, _ := http.NewRequest("POST", f.srv.URL+Prefix+"login", struct{ *strings.Reader }{strings.NewReader(big.Encode())})
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.ContentLength == -2 {
		t.Errorf("oversized chunked sign-in: %d, want 413", resp.StatusCode)
	}
	if d := f.repo.decided(); len(d) > 0 {
		t.Fatalf("decided %v", d)
	}
}

// hostile are strings a client controls, each trying to break out of the
// HTML, an attribute or a URL.
var hostile = []string{
	`<script>alert(1)</script>`,
	`"><img src=x onerror=alert(2)>`,
	`javascript:alert(3)`,
	`'><svg onload=alert(4)>`,
	`</textarea><iframe src=//evil>`,
}

// TestHostileClientStringsEscaped_R67: application names, versions,
// channels, causes, evidence keys and values and install IDs that
// installations reported are shown escaped on every page: none of the
// markup they carry reaches the page as markup, and each is visible as
// text.
func TestHostileClientStringsEscaped_R67(t *testing.T) {
	f := newFixture(t, nil)
	f.repo.sign("hello", "1.0.0", "1.1.0")
	ctx := context.Background()
	if err := f.st.CreateToken(ctx, store.Token{ID: "tok", Kind: store.Enroll, Scope: "*", Hash: "h", Created: t0}); err != nil {
		t.Fatal(err)
	}
	for i, h := range hostile {
		id := h + strconv.Itoa(i)
		apps := []store.App{{App: "hello", Version: h, Channel: h}, {App: h, Version: "1.0.0", Channel: "stable"}}
		if err := f.st.Enroll(ctx, store.Installation{ID: id, CredentialHash: "c", Enrolled: t0.Add(-48 * time.Hour), Apps: apps}, "h"); err != nil {
			t.Fatal(err)
		}
		f.report(id, 1,
			store.Event{Event: event.Event{Kind: event.DownloadRejected, App: h, Version: h, Cause: h, Evidence: map[string]string{h: h, "got_sha256": h}}},
			store.Event{Event: event.Event{Kind: event.InstallDone, App: "hello", Version: "1.1.0", Cause: h}},
			store.Event{Event: event.Event{Kind: event.InstallStarted, App: "hello", Version: "1.1.0"}},
			store.Event{Event: event.Event{Kind: event.InstallDone, App: "hello", Version: h}}) // a line of the chart
		if err := f.st.RecordSecurity(ctx, store.SecurityEvent{InstallID: id, Time: t0.Add(-time.Minute), Kind: "report.log_rewritten", Cause: h, Evidence: map[string]string{"line": h}}); err != nil {
			t.Fatal(err)
		}
	}
	b, csrf := f.signedIn()
	// A decision refused with a message that quotes the request.
	b.post(Prefix+"apps/hello/rollout", url.Values{"csrf": {csrf}, "action": {"start"}, "version": {"1.1.0"}, "percent": {`<b>x</b>`}})
	pages := map[string]string{}
	for _, p := range []string{Prefix + "apps/hello", Prefix, Prefix + "security", Prefix + "installations", Prefix + "security?install=" + url.QueryEscape(hostile[0]+"0")} {
		a := b.get(p)
		if a.code != http.StatusOK {
			t.Fatalf("GET %s: %d", p, a.code)
		}
		pages[p] = a.body
	}
	for p, body := range pages {
		for _, raw := range []string{"<script>alert", "<img src=x", "<svg onload", "<iframe", "<b>x</b>", `href="javascript:`, "onerror=alert(2)>"} {
			if strings.Contains(body, raw) {
				i := strings.Index(body, raw)
				t.Errorf("%s: hostile markup %q unescaped: …%s…", p, raw, body[max(0, i-80):min(len(body), i+80)])
			}
		}
	}
	// Shown as text: the escaped forms are there.
	for p, want := range map[string][]string{
		Prefix + "security":      {"&lt;script&gt;alert(1)&lt;/script&gt;", "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;", "javascript:alert(3)"},
		Prefix + "installations": {"&lt;script&gt;alert(1)&lt;/script&gt;0", "&lt;/textarea&gt;&lt;iframe src=//evil&gt;"},
		Prefix + "apps/hello":    {"&lt;b&gt;x&lt;/b&gt;", "&lt;script&gt;alert(1)&lt;/sc… (1)", "&lt;/textarea&gt;&lt;iframe s… (1)"},
	} {
		for _, w := range want {
			if !strings.Contains(pages[p], w) {
				t.Errorf("%s does not show %q as text", p, w)
			}
		}
	}
	// In a URL the hostile install ID is percent-encoded.
	if !strings.Contains(pages[Prefix+"installations"], `href="/dashboard/security?install=%3cscript%3ealert%281%29%3c%2fscript%3e0"`) &&
		!strings.Contains(pages[Prefix+"installations"], `href="/dashboard/security?install=%3Cscript%3Ealert%281%29%3C%2Fscript%3E0"`) {
		t.Errorf("the hostile install ID's link is not percent-encoded")
	}
}

// TestOverviewShowsFleet: the overview counts what the store holds: the
// installations by version and channel, stale ones, security events of
// the last day and the rollouts in progress with their counts.
func TestOverviewShowsFleet(t *testing.T) {
	f := newFixture(t, nil)
	f.repo.sign("hello", "1.0.0", "1.1.0")
	f.repo.sign("api", "2.0.0")
	f.enroll("hello", "1.0.0", "a1", "a2", "a3")
	f.enroll("hello", "1.1.0", "b1", "b2")
	ctx := context.Background()
	f.clock.add(24 * time.Hour) // everyone enrolled 25 h ago and is stale, but a1:
	if err := f.st.Seen(ctx, "a1", f.clock.Now().Add(-time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	f.report("b1", 1, store.Event{Event: event.Event{Kind: event.InstallStarted, App: "hello", Version: "1.1.0"}},
		store.Event{Event: event.Event{Kind: event.HealthFailed, App: "hello", Version: "1.1.0"}},
		store.Event{Event: event.Event{Kind: event.MetadataRejected, Cause: "signature"}})
	f.report("b2", 1, store.Event{Event: event.Event{Kind: event.InstallStarted, App: "hello", Version: "1.1.0"}})
	// One security event the server found today, one two days ago.
	for _, at := range []time.Time{f.clock.Now().Add(-time.Hour), f.clock.Now().Add(-48 * time.Hour)} {
		if err := f.st.RecordSecurity(ctx, store.SecurityEvent{InstallID: "a2", Time: at, Kind: "report.log_rewritten", Cause: "rewritten"}); err != nil {
			t.Fatal(err)
		}
	}
	b, csrf := f.signedIn()
	b.post(Prefix+"apps/hello/rollout", url.Values{"csrf": {csrf}, "action": {"start"}, "version": {"1.1.0"}, "percent": {"12.5"}})
	ov := b.get(Prefix).body
	for _, want := range []string{
		`<span class="num">4</span>
    <span class="label">stale of 5 enrolled`,
		`data-app-installations="hello">5<`, `data-app-installations="api">0<`,
		`1.0.0 · stable · <b>3</b>`, `1.1.0 · stable · <b>2</b>`,
		`<span class="num">2</span>
    <span class="label">security events`,
		`stale of 5 enrolled installations (silent over 24 h;`,
		`12.5%`,
	} {
		if !strings.Contains(ov, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if p := b.get(Prefix + "installations").body; !strings.Contains(p, `<b id="install-count">5</b> installations enrolled, <b id="stale-count">4</b> of them stale.`) {
		t.Errorf("the installations page does not count 5 installations, 4 stale")
	}
	if p := b.get(Prefix + "installations?stale=1").body; strings.Count(p, `<span class="state halted">stale</span>`) != 4 || strings.Contains(p, "<code>a1</code>") {
		t.Errorf("the stale installations are not the 4 stale ones")
	}
}

// TestRevokedNotCounted: a revoked installation, and one whose enrollment
// token was revoked, are marked on the installations page and counted
// neither in the fleet nor in a release's counts, as the guard counts
// (walk10: "started 7" beside the guard's "of 6 started").
func TestRevokedNotCounted(t *testing.T) {
	f := newFixture(t, nil)
	f.repo.sign("hello", "1.0.0")
	f.enroll("hello", "1.0.0", "ok1", "ok2", "gone")
	f.enroll("hello", "1.0.0", "disowned")
	ctx := context.Background()
	for _, id := range []string{"ok1", "ok2", "gone", "disowned"} {
		f.report(id, 1, store.Event{Event: event.Event{Kind: event.InstallStarted, App: "hello", Version: "1.0.0"}},
			store.Event{Event: event.Event{Kind: event.HealthPassed, App: "hello", Version: "1.0.0"}})
	}
	if err := f.st.RevokeInstallation(ctx, "gone", t0); err != nil {
		t.Fatal(err)
	}
	in, err := f.st.Installation(ctx, "disowned")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.RevokeToken(ctx, in.TokenID, t0); err != nil {
		t.Fatal(err)
	}
	b, _ := f.signedIn()
	app := b.get(Prefix + "apps/hello").body
	for _, want := range []string{`data-count="started">2<`, `data-count="healthy">2<`, `1.0.0 · stable · <b>2</b>`} {
		if !strings.Contains(app, want) {
			t.Errorf("the application page lacks %q", want)
		}
	}
	if ov := b.get(Prefix).body; !strings.Contains(ov, `data-app-installations="hello">2<`) {
		t.Errorf("the overview does not count 2 installations of hello")
	}
	list := b.get(Prefix + "installations").body
	row := func(id string) string {
		i := strings.Index(list, "<code>"+id+"</code>")
		if i < 0 {
			t.Fatalf("%s is not listed", id)
		}
		return list[i : i+strings.Index(list[i:], "</td>")]
	}
	if r := row("gone"); !strings.Contains(r, `data-revoked`) || !strings.Contains(r, ">revoked</span>") {
		t.Errorf("the revoked installation is not marked: %s", r)
	}
	if r := row("disowned"); !strings.Contains(r, ">disowned: token "+in.TokenID+" revoked</span>") {
		t.Errorf("the disowned installation is not marked: %s", r)
	}
	if r := row("ok1"); strings.Contains(r, "data-revoked") {
		t.Errorf("a valid installation is marked: %s", r)
	}
}

// TestAppPageCountsAndActions: the application page shows each release's
// counts from the store and the share and state of its decision; start,
// widen, halt, resume and pull through its forms are signed by the
// repository in that order, and a pull needs its confirmation.
func TestAppPageCountsAndActions(t *testing.T) {
	f := newFixture(t, nil)
	f.repo.sign("hello", "1.0.0", "1.1.0")
	f.enroll("hello", "1.0.0", "a", "b", "c")
	for i, id := range []string{"a", "b", "c"} {
		evs := []store.Event{{Event: event.Event{Kind: event.InstallStarted, App: "hello", Version: "1.1.0"}}}
		if i < 2 {
			evs = append(evs, store.Event{Event: event.Event{Kind: event.InstallDone, App: "hello", Version: "1.1.0"}},
				store.Event{Event: event.Event{Kind: event.HealthPassed, App: "hello", Version: "1.1.0"}})
		} else {
			evs = append(evs, store.Event{Event: event.Event{Kind: event.HealthFailed, App: "hello", Version: "1.1.0"}},
				store.Event{Event: event.Event{Kind: event.RolledBack, App: "hello", Version: "1.1.0"}})
		}
		f.report(id, 1, evs...)
	}
	b, csrf := f.signedIn()
	page := b.get(Prefix + "apps/hello").body
	for _, want := range []string{`data-count="started">3<`, `data-count="installed">2<`, `data-count="healthy">2<`,
		`data-count="failed">1<`, `data-count="rolled_back">1<`, "<polyline", "1.1.0 (2)"} {
		if !strings.Contains(page, want) {
			t.Errorf("app page lacks %q", want)
		}
	}
	act := func(action, percent, confirm string) string {
		t.Helper()
		v := url.Values{"csrf": {csrf}, "action": {action}, "version": {"1.1.0"}}
		if percent != "" {
			v.Set("percent", percent)
		}
		if confirm != "" {
			v.Set("confirm", confirm)
		}
		a := b.post(Prefix+"apps/hello/rollout", v)
		if a.code != http.StatusSeeOther || a.h.Get("Location") != Prefix+"apps/hello" {
			t.Fatalf("%s: %d %q", action, a.code, a.h.Get("Location"))
		}
		return b.get(Prefix + "apps/hello").body
	}
	if p := act("start", "5", ""); !strings.Contains(p, "Signed: hello 1.1.0 is active at 5% in stable.") {
		t.Errorf("start: no confirmation shown")
	}
	act("start", "25%", "")
	if p := act("halt", "", ""); !strings.Contains(p, `data-state>halted<`) || !strings.Contains(p, `value="resume"`) {
		t.Errorf("halt: the page does not show the release halted with a Resume button")
	}
	act("resume", "", "")
	if p := act("pull", "", ""); !strings.Contains(p, "Not pulled: tick the box to confirm") {
		t.Errorf("pull without confirmation: no refusal shown")
	}
	act("pull", "", "yes")
	if p := act("start", "101", ""); !strings.Contains(p, "Not started: share: invalid percent") {
		t.Errorf("start at 101%%: no refusal shown")
	}
	want := []string{"hello start 1.1.0 500", "hello start 1.1.0 2500", "hello halt 1.1.0 0", "hello resume 1.1.0 0", "hello pull 1.1.0 0"}
	if d := f.repo.decided(); !slices.Equal(d, want) {
		t.Fatalf("decided %v\nwant %v", d, want)
	}
	// A version the repository did not sign: refused by the repository's rules, shown, nothing decided.
	a := b.post(Prefix+"apps/hello/rollout", url.Values{"csrf": {csrf}, "action": {"halt"}, "version": {"9.9.9"}})
	if a.code != http.StatusSeeOther || !strings.Contains(b.get(Prefix+"apps/hello").body, "halt hello 9.9.9 refused") {
		t.Errorf("a decision about an unsigned version: %d, refusal not shown", a.code)
	}
	if a := b.post(Prefix+"apps/hello/rollout", url.Values{"csrf": {csrf}, "action": {"promote"}, "version": {"1.1.0"}}); a.code != http.StatusBadRequest {
		t.Errorf("an unknown action: %d, want 400", a.code)
	}
	if len(f.repo.decided()) != len(want) {
		t.Fatalf("refused decisions were signed: %v", f.repo.decided())
	}
}

// fakeGuard answers fixed statuses.
type fakeGuard []guard.Status

func (g fakeGuard) Status(ctx context.Context, app string) ([]guard.Status, error) {
	var out []guard.Status
	for _, s := range g {
		if app == "" || s.App == app {
			out = append(out, s)
		}
	}
	return out, nil
}

// TestGuardStatusShown: with a guard, the application page and the
// overview show each guarded rollout's stage, budget, evidence and reason.
func TestGuardStatusShown(t *testing.T) {
	g := fakeGuard{{App: "hello", Version: "1.1.0", Plan: guard.Plan{Stages: []int{100, 1000, 5000, 10000}, MinHealthy: 20, Budget: 500},
		Stage: 1, BasisPoints: 1000, Started: 40, Healthy: 30, Failed: 3, Silent: 1, Pending: 6, StageHealthy: 12, FailedShare: 0.1, Breached: true,
		Reason: "halted: failed share 10% crossed the budget of 5%"}}
	f := newFixture(t, func(c *Config) { c.Guard = g })
	f.repo.sign("hello", "1.0.0", "1.1.0")
	b, csrf := f.signedIn()
	b.post(Prefix+"apps/hello/rollout", url.Values{"csrf": {csrf}, "action": {"start"}, "version": {"1.1.0"}, "percent": {"10"}})
	for _, p := range []string{Prefix, Prefix + "apps/hello"} {
		body := b.get(p).body
		for _, want := range []string{"stage 2 of 4 (1% → 10% → 50% → 100%) at 10%", "budget 5%, failed 10.0%", "3 failed + 1 silent of 40 started, 6 pending",
			"30 healthy, 12 of them in this stage (20 needed to advance)", "budget crossed",
			"halted: failed share 10% crossed the budget of 5%"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %q", p, want)
			}
		}
	}
}

// TestDecisionsThroughDecide: with Config.Decide (the guard's Decide in
// ferry serve), every action is signed through it and nothing else.
func TestDecisionsThroughDecide(t *testing.T) {
	var calls []string
	var f *fixture
	f = newFixture(t, func(c *Config) {
		c.Decide = func(ctx context.Context, app string, a rollout.Action, plan *guard.Plan) (rollout.Entry, error) {
			calls = append(calls, a.Kind+" "+a.Version)
			return f.repo.Rollout(ctx, app, a)
		}
	})
	f.repo.sign("hello", "1.0.0")
	b, csrf := f.signedIn()
	for _, a := range []string{"halt", "resume"} {
		b.post(Prefix+"apps/hello/rollout", url.Values{"csrf": {csrf}, "action": {a}, "version": {"1.0.0"}})
	}
	if !slices.Equal(calls, []string{"halt 1.0.0", "resume 1.0.0"}) || len(f.repo.decided()) != 2 {
		t.Fatalf("Decide saw %v, the repository %v", calls, f.repo.decided())
	}
}

// cannotSignGuard is a guard whose server cannot sign rollout decisions.
type cannotSignGuard struct {
	fakeGuard
	err error
}

func (g cannotSignGuard) SignError() error { return g.err }

// TestHaltNotSignedShown: a guarded release whose budget is crossed but
// whose halt could not be signed is shown as NOT halted (not "halted"),
// it is on the overview's rollouts in progress although it is active at
// 100% with no decision, and every page has a banner saying why.
func TestHaltNotSignedShown(t *testing.T) {
	why := "the server cannot sign rollout decisions (no passphrase available): start ferry serve with --passphrase-file FILE"
	g := cannotSignGuard{fakeGuard: fakeGuard{{App: "hello", Version: "1.0.0", Plan: guard.Plan{Budget: 500}, BasisPoints: 10000,
		State: rollout.Active, Started: 1, Failed: 1, FailedShare: 1, Breached: true, Verdict: "halt", NotSigned: why,
		Reason: "budget crossed: 1 of 1 failed"}}, err: errors.New(why)}
	f := newFixture(t, func(c *Config) { c.Guard = g })
	f.repo.sign("hello", "1.0.0")
	b, _ := f.signedIn()
	for _, p := range []string{Prefix, Prefix + "apps/hello"} {
		body := b.get(p).body
		if !strings.Contains(body, "budget crossed — halt NOT signed: "+why) {
			t.Errorf("%s does not say the halt is NOT signed", p)
		}
		if strings.Contains(body, "budget crossed: halted") {
			t.Errorf("%s says halted about an active release", p)
		}
		if !strings.Contains(body, `data-sign-warning>Guarded rollouts are NOT enforced and rollout buttons fail: `+why) {
			t.Errorf("%s has no banner saying the server cannot sign", p)
		}
	}
	if ov := b.get(Prefix).body; strings.Contains(ov, "No release is held back") {
		t.Error("the overview's rollouts in progress leave out a guarded release at 100%")
	}
}

// TestLiveRefreshKeepsIdleTimeout_R67: the page's live refresh (requests
// with X-Ferry-Live: 1, sent every 5 s while the tab is visible) does not
// count as activity: an unattended dashboard left open ends at the idle
// timeout (review 9 F7: the refresh kept it alive for the whole
// MaxSession). A page the administrator opens still does.
func TestLiveRefreshKeepsIdleTimeout_R67(t *testing.T) {
	f := newFixture(t, nil)
	b, _ := f.signedIn()
	live := func() answer {
		t.Helper()
		b.header.Set(liveHeader, "1")
		defer b.header.Del(liveHeader)
		return b.get(Prefix)
	}
	step := DefaultIdleTimeout / 3
	for i := range 2 {
		f.clock.add(step)
		if a := live(); a.code != http.StatusOK {
			t.Fatalf("live refresh %d within the idle timeout: %d", i, a.code)
		}
	}
	f.clock.add(step) // idle for the whole timeout, refreshed all along
	if a := live(); a.code != http.StatusSeeOther {
		t.Fatalf("live refresh past the idle timeout since the last page opened: %d, want 303 to sign in", a.code)
	}
	// A page opened is activity.
	b, _ = f.signedIn()
	for range 4 {
		f.clock.add(step)
		if a := b.get(Prefix); a.code != http.StatusOK {
			t.Fatalf("a page opened every %v: %d", step, a.code)
		}
	}
}

// TestRefusedFlashOnce: a refused decision's flash says "refused" once.
func TestRefusedFlashOnce(t *testing.T) {
	f := newFixture(t, nil)
	f.repo.sign("hello", "1.0.0")
	b, csrf := f.signedIn()
	b.post(Prefix+"apps/hello/rollout", url.Values{"csrf": {csrf}, "action": {"start"}, "version": {"7.7.7"}, "percent": {"10"}})
	body := b.get(Prefix + "apps/hello").body
	if !strings.Contains(body, "start hello 7.7.7 refused: ") || strings.Contains(body, "refused: refused") {
		t.Errorf("the flash of a refused start does not say refused exactly once:\n%s", body)
	}
}

// wrongToken is tok with its last character changed (to another one: a
// token that already ends in "A" made the test's "wrong" token the right
// one, once in 64 runs).
func wrongToken(tok string) string {
	last := "A"
	if strings.HasSuffix(tok, "A") {
		last = "B"
	}
	return tok[:len(tok)-1] + last
}
