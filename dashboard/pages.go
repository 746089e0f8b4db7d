package dashboard

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/guard"
	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/rollout"
	"github.com/ferry-updates/ferry/server"
	"github.com/ferry-updates/ferry/store"
)

// page is what every template gets: the layout's fields and the page's own
// Data.
type page struct {
	Title    string
	Nav      string // the navigation entry to mark current
	SignedIn bool
	CSRF     string // the session's token (the sign-in form's on the sign-in page)
	Flash    string
	FlashErr bool
	Live     bool   // the page has parts the script refreshes
	Warning  string // a banner on every page: the server cannot sign rollout decisions
	Now      time.Time
	Data     any
}

var pageNames = []string{"login", "overview", "app", "security", "installations", "error"}

func parsePages(now func() time.Time) (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"pct":   pct,
		"share": func(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" },
		"when":  when,
		"ago":   func(t time.Time) string { return ago(now(), t) },
		"path":  url.PathEscape,
		"query": url.QueryEscape,
		"dur":   dur,
		"short": short,
		"stages": func(bps []int) string {
			var out []string
			for _, bp := range bps {
				out = append(out, pct(bp))
			}
			return strings.Join(out, " → ")
		},
		"add":  func(a, b int) int { return a + b },
		"inc":  func(i int) int { return i + 1 },
		"list": func(xs ...int) []int { return xs },
		"evidence": func(m map[string]string) []kv {
			var out []kv
			for _, k := range slices.Sorted(maps.Keys(m)) {
				out = append(out, kv{k, m[k]})
			}
			return out
		},
	}
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard templates: %w", err)
		}
		out[name] = t
	}
	return out, nil
}

type kv struct{ Key, Value string }

// pct is a share in basis points as a percentage: 500 is "5%", 50 "0.5%".
func pct(bp int) string {
	return strings.TrimSuffix(strings.TrimRight(strconv.FormatFloat(float64(bp)/100, 'f', 2, 64), "0"), ".") + "%"
}

// dur is a duration in words: "24 h", "90 min", "2 days".
func dur(d time.Duration) string {
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return strconv.Itoa(int(d/(24*time.Hour))) + " days"
	case d >= time.Hour && d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + " h"
	case d >= time.Minute && d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + " min"
	}
	return d.String()
}

// short is a duration as a flag takes it: "1h", "30m", "1h30m".
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in the future"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " h ago"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + " days ago"
}

// render writes a page; a template that fails is a 500, not half a page.
func (d *dash) render(w http.ResponseWriter, status int, name string, p page) {
	if p.Now.IsZero() {
		p.Now = d.cfg.Now()
	}
	var b bytes.Buffer
	if err := d.pages[name].ExecuteTemplate(&b, "layout", p); err != nil {
		d.log.Error("dashboard: render", "page", name, "err", err)
		http.Error(w, "the dashboard could not render this page (see the server's log)", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// page is the layout of a signed-in page, with the session's flash.
func (d *dash) page(s *session, title, nav string, data any) page {
	f := d.sessions.takeFlash(s)
	return page{Title: title, Nav: nav, SignedIn: true, CSRF: s.csrf, Flash: f.msg, FlashErr: f.err, Now: d.cfg.Now(), Data: data, Warning: d.signWarning()}
}

type errorData struct{ Message string }

// fail shows an error page for a store or repository that failed.
func (d *dash) fail(w http.ResponseWriter, r *http.Request, s *session, what string, err error) {
	d.log.Error("dashboard: "+what, "path", r.URL.Path, "err", err)
	d.render(w, http.StatusInternalServerError, "error", d.page(s, "Error", "", errorData{Message: what + ": " + err.Error()}))
}

// signErrorer is a Guard that knows whether the server can sign rollout
// decisions; (*server.Guard) is one.
type signErrorer interface{ SignError() error }

// signWarning is the banner's text when the server cannot sign rollout
// decisions: no halt, advance or button of this dashboard is signed then.
func (d *dash) signWarning() string {
	se, ok := d.cfg.Guard.(signErrorer)
	if !ok || se.SignError() == nil {
		return ""
	}
	return "Guarded rollouts are NOT enforced and rollout buttons fail: " + se.SignError().Error() + "."
}

// rolloutRow is one release's decision, evidence and guard status.
type rolloutRow struct {
	App string
	server.ReleaseRollout
	Stats        store.Stats
	FirstInstall time.Time
	Guard        *guard.Status
	InProgress   bool
}

// inProgress: a decision that offers the release to part of its channel,
// or holds it halted, or a guarded release (its plan runs, even at 100%,
// and a halt it asks for may be pending).
func inProgress(r server.ReleaseRollout, g *guard.Status) bool {
	if r.BelowMin {
		return false
	}
	return g != nil || r.Decided && (r.State == rollout.Halted || r.State == rollout.Active && r.BasisPoints < rollout.Full)
}

// apps are the applications the repository has signed releases of.
func (d *dash) apps(ctx context.Context) ([]string, []repo.Entry, error) {
	entries, err := d.cfg.Repo.List(ctx)
	if err != nil {
		return nil, nil, err
	}
	var apps []string
	for _, e := range entries {
		if !slices.Contains(apps, e.App) {
			apps = append(apps, e.App)
		}
	}
	slices.Sort(apps)
	return apps, entries, nil
}

// guardStatus returns the guard's status of app's rollouts by version (nil
// without a guard; a guard that fails is logged and shown as absent).
func (d *dash) guardStatus(ctx context.Context, app string) map[string]*guard.Status {
	if d.cfg.Guard == nil {
		return nil
	}
	sts, err := d.cfg.Guard.Status(ctx, app)
	if err != nil {
		d.log.Error("dashboard: guard status", "app", app, "err", err)
		return nil
	}
	out := map[string]*guard.Status{}
	for i := range sts {
		out[sts[i].App+"\x00"+sts[i].Version] = &sts[i]
	}
	return out
}

type appSummary struct {
	Name          string
	Installations int
	Fleet         []store.FleetCount
	Newest        string
}

type overviewData struct {
	Apps          []appSummary
	InProgress    []rolloutRow
	Installations int // enrolled
	Stale         int
	StaleAfter    time.Duration
	Security      int // security events in the last day
	SecurityMore  bool
	GuardAttached bool
}

// countLimit bounds the rows the overview reads to count.
const countLimit = 1000

func (d *dash) overview(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	apps, entries, err := d.apps(ctx)
	if err != nil {
		d.fail(w, r, s, "read the repository", err)
		return
	}
	data := overviewData{StaleAfter: d.cfg.StaleAfter, GuardAttached: d.cfg.Guard != nil}
	guards := d.guardStatus(ctx, "")
	for _, app := range apps {
		fleet, err := d.cfg.Store.Fleet(ctx, app)
		if err != nil {
			d.fail(w, r, s, "read the fleet", err)
			return
		}
		sum := appSummary{Name: app, Fleet: fleet}
		for _, f := range fleet {
			sum.Installations += f.Installations
		}
		st, what, err := d.rolloutStatus(app, entries)
		if err != nil {
			d.fail(w, r, s, what, err)
			return
		}
		if len(st.Releases) > 0 {
			sum.Newest = st.Releases[0].Version
		}
		for _, rel := range st.Releases {
			g := guards[app+"\x00"+rel.Version]
			if !inProgress(rel, g) {
				continue
			}
			row := rolloutRow{App: app, ReleaseRollout: rel, InProgress: true, Guard: g}
			if row.Stats, err = d.cfg.Store.ReleaseStats(ctx, app, rel.Version); err != nil {
				d.fail(w, r, s, "read the release's counts", err)
				return
			}
			data.InProgress = append(data.InProgress, row)
		}
		data.Apps = append(data.Apps, sum)
	}
	if data.Stale, err = d.cfg.Store.CountInstallations(ctx, store.InstallationQuery{SeenBefore: d.cfg.Now().Add(-d.cfg.StaleAfter)}); err != nil {
		d.fail(w, r, s, "count the stale installations", err)
		return
	}
	if data.Installations, err = d.cfg.Store.CountInstallations(ctx, store.InstallationQuery{}); err != nil {
		d.fail(w, r, s, "count the installations", err)
		return
	}
	// The last day by the server's clock, as the security page it links to.
	day := d.cfg.Now().Add(-24 * time.Hour)
	sec, err := d.cfg.Store.RecentEvents(ctx, store.EventQuery{Kinds: event.SecurityKinds(), Since: day, Limit: countLimit}, 0)
	if err != nil {
		d.fail(w, r, s, "read the security events", err)
		return
	}
	found, err := d.cfg.Store.ListSecurity(ctx, "", store.MaxLimit)
	if err != nil {
		d.fail(w, r, s, "read the security events the server found", err)
		return
	}
	data.Security, data.SecurityMore = len(sec), len(sec) == countLimit
	for _, e := range found {
		if !e.Time.Before(day) {
			data.Security++
		}
	}
	p := d.page(s, "Overview", "overview", data)
	p.Live = true
	d.render(w, http.StatusOK, "overview", p)
}

type appData struct {
	Name, MinVersion string
	Installations    int
	Fleet            []store.FleetCount
	Releases         []rolloutRow
	Chart            chart
	Range            string
	Ranges           []string
	GuardAttached    bool
	Defaults         guard.Plan // what an empty field of the guarded start form is
}

// maxReleases bounds the releases an application's page shows.
const maxReleases = 50

func (d *dash) appPage(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	app := r.PathValue("app")
	apps, entries, err := d.apps(ctx)
	if err != nil {
		d.fail(w, r, s, "read the repository", err)
		return
	}
	if release.ValidApp(app) != nil || !slices.Contains(apps, app) {
		d.render(w, http.StatusNotFound, "error", d.page(s, "Not found", "", errorData{Message: "The repository has no application " + strconv.Quote(app) + "."}))
		return
	}
	st, what, err := d.rolloutStatus(app, entries)
	if err != nil {
		d.fail(w, r, s, what, err)
		return
	}
	data := appData{Name: app, MinVersion: st.MinVersion, GuardAttached: d.cfg.Guard != nil, Defaults: guard.Plan{}.WithDefaults()}
	for _, rg := range chartRanges {
		data.Ranges = append(data.Ranges, rg.name)
	}
	if data.Fleet, err = d.cfg.Store.Fleet(ctx, app); err != nil {
		d.fail(w, r, s, "read the fleet", err)
		return
	}
	for _, f := range data.Fleet {
		data.Installations += f.Installations
	}
	guards := d.guardStatus(ctx, app)
	for i, rel := range st.Releases {
		if i == maxReleases {
			break
		}
		g := guards[app+"\x00"+rel.Version]
		row := rolloutRow{App: app, ReleaseRollout: rel, InProgress: inProgress(rel, g), Guard: g}
		if row.Stats, err = d.cfg.Store.ReleaseStats(ctx, app, rel.Version); err != nil {
			d.fail(w, r, s, "read the release's counts", err)
			return
		}
		first, err := d.cfg.Store.QueryEvents(ctx, store.EventQuery{App: app, Version: rel.Version, Kinds: []event.Kind{event.InstallDone}, Limit: 1})
		if err != nil {
			d.fail(w, r, s, "read the release's first install", err)
			return
		}
		if len(first) > 0 {
			row.FirstInstall = first[0].Time
		}
		data.Releases = append(data.Releases, row)
	}
	rg := chartRangeOf(r.URL.Query().Get("range"))
	data.Range = rg.name
	now := d.cfg.Now()
	since := now.Add(-rg.span)
	counts, err := d.cfg.Store.InstallCounts(ctx, store.InstallCountQuery{App: app, Since: since, Until: now, Step: rg.span / chartSteps})
	if err != nil {
		d.fail(w, r, s, "read the installs over time", err)
		return
	}
	data.Chart = newChart(counts, since, rg.span, chartSteps)
	p := d.page(s, app, "", data)
	p.Live = true
	d.render(w, http.StatusOK, "app", p)
}

// secRow is one security event: one an installation reported, or one the
// server found in what it reported.
type secRow struct {
	Time               time.Time // the server's: when it received or found it
	Reported           time.Time // the installation's own clock (reported events only)
	InstallID          string
	Kind, App, Version string
	Cause              string
	Evidence           map[string]string
	FoundByServer      bool
}

type secPerInstall struct {
	InstallID string
	Events    int
	Capped    bool // Events stopped at securityPerInstall: there are more
	Last      time.Time
}

type securityData struct {
	Install    string // the installation selected, "" for all
	Days       int
	Rows       []secRow
	More       bool // the list stopped at its limit, or an installation at its cap
	PerCap     int  // securityPerInstall
	PerInstall []secPerInstall
}

// securityLimit bounds the page's events, newest first by the server's
// clock; securityPerInstall bounds those of one installation, so one noisy
// installation (or one with a wrong clock) cannot push the others' newer
// evidence off the page.
const (
	securityLimit      = 500
	securityPerInstall = 50
)

func (d *dash) security(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	q := r.URL.Query()
	data := securityData{Install: q.Get("install"), Days: 7, PerCap: securityPerInstall}
	if n, err := strconv.Atoi(q.Get("days")); err == nil && n >= 1 && n <= 365 {
		data.Days = n
	}
	since := d.cfg.Now().Add(-time.Duration(data.Days) * 24 * time.Hour)
	perCap := securityPerInstall
	if data.Install != "" {
		perCap = 0 // one installation's page: its newest, up to the limit
	}
	evs, err := d.cfg.Store.RecentEvents(ctx, store.EventQuery{InstallID: data.Install, Kinds: event.SecurityKinds(), Since: since, Limit: securityLimit}, perCap)
	if err != nil {
		d.fail(w, r, s, "read the security events", err)
		return
	}
	found, err := d.cfg.Store.ListSecurity(ctx, data.Install, securityLimit)
	if err != nil {
		d.fail(w, r, s, "read the security events the server found", err)
		return
	}
	data.More = len(evs) == securityLimit || len(found) == securityLimit
	perInstall := map[string]int{}
	for _, e := range evs {
		perInstall[e.InstallID]++
		data.Rows = append(data.Rows, secRow{Time: e.Received, Reported: e.Time, InstallID: e.InstallID, Kind: string(e.Kind), App: e.App, Version: e.Version, Cause: e.Cause, Evidence: e.Evidence})
	}
	capped := map[string]bool{}
	for id, n := range perInstall {
		capped[id] = perCap > 0 && n >= perCap
	}
	foundPer := map[string]int{}
	for _, e := range found { // newest first
		if e.Time.Before(since) {
			continue
		}
		if foundPer[e.InstallID]++; perCap > 0 && foundPer[e.InstallID] > perCap {
			capped[e.InstallID] = true
			continue
		}
		data.Rows = append(data.Rows, secRow{Time: e.Time, InstallID: e.InstallID, Kind: e.Kind, Cause: e.Cause, Evidence: e.Evidence, FoundByServer: true})
	}
	slices.SortStableFunc(data.Rows, func(a, b secRow) int { return b.Time.Compare(a.Time) })
	per := map[string]*secPerInstall{}
	for _, row := range data.Rows {
		p := per[row.InstallID]
		if p == nil {
			p = &secPerInstall{InstallID: row.InstallID}
			per[row.InstallID] = p
		}
		p.Events++
		if row.Time.After(p.Last) {
			p.Last = row.Time
		}
	}
	for _, p := range per {
		if p.Capped = capped[p.InstallID]; p.Capped {
			data.More = true
		}
		data.PerInstall = append(data.PerInstall, *p)
	}
	slices.SortFunc(data.PerInstall, func(a, b secPerInstall) int {
		return cmp.Or(b.Events-a.Events, strings.Compare(a.InstallID, b.InstallID))
	})
	p := d.page(s, "Security events", "security", data)
	p.Live = true
	d.render(w, http.StatusOK, "security", p)
}

type installRow struct {
	store.Installation
	Stale bool
}

type installationsData struct {
	StaleOnly  bool
	StaleAfter time.Duration
	Rows       []installRow
	Stale      int // of all the installations
	Total      int
	More       bool // more than Rows
}

const installationsLimit = 1000

func (d *dash) installations(w http.ResponseWriter, r *http.Request, s *session) {
	data := installationsData{StaleOnly: r.URL.Query().Get("stale") == "1", StaleAfter: d.cfg.StaleAfter}
	cut := d.cfg.Now().Add(-d.cfg.StaleAfter)
	q := store.InstallationQuery{Limit: installationsLimit}
	if data.StaleOnly {
		q.SeenBefore = cut
	}
	ins, err := d.cfg.Store.ListInstallations(r.Context(), q)
	if err != nil {
		d.fail(w, r, s, "read the installations", err)
		return
	}
	if data.Total, err = d.cfg.Store.CountInstallations(r.Context(), store.InstallationQuery{}); err != nil {
		d.fail(w, r, s, "count the installations", err)
		return
	}
	if data.Stale, err = d.cfg.Store.CountInstallations(r.Context(), store.InstallationQuery{SeenBefore: cut}); err != nil {
		d.fail(w, r, s, "count the stale installations", err)
		return
	}
	data.More = len(ins) == installationsLimit
	for _, in := range ins {
		data.Rows = append(data.Rows, installRow{Installation: in, Stale: in.LastSeen.Before(cut)})
	}
	// The stale ones first, the longest silent at the top.
	slices.SortStableFunc(data.Rows, func(a, b installRow) int {
		if a.Stale != b.Stale {
			if a.Stale {
				return -1
			}
			return 1
		}
		if a.Stale {
			return a.LastSeen.Compare(b.LastSeen)
		}
		return 0
	})
	p := d.page(s, "Installations", "installations", data)
	p.Live = true
	d.render(w, http.StatusOK, "installations", p)
}

// rolloutStatus is app's rollout status from its signed decisions and
// minimum safe version, over the targets entries the caller listed once
// for every application; on an error, what names what failed to be read.
func (d *dash) rolloutStatus(app string, entries []repo.Entry) (st server.RolloutStatus, what string, err error) {
	doc, err := d.cfg.Repo.Rollouts(app)
	if err != nil {
		return st, "read the rollout decisions", err
	}
	min, err := d.cfg.Repo.MinVersion(app)
	if err != nil {
		return st, "read the minimum safe version", err
	}
	return server.NewRolloutStatus(app, doc, min, entries), "", nil
}
