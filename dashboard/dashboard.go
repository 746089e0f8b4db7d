// Package dashboard is ferry serve's web dashboard (docs/dashboard.md): the
// fleet, the releases and their rollouts, the security events and the
// installations, and the rollout actions, for one administrator who signs
// in with a password whose argon2id hash is the only thing stored.
//
// Pages are rendered on the server from embedded templates and work
// without JavaScript; a small script of its own (static/dash.js) refreshes
// the live parts of a page where it runs. Everything a client reported
// (application names, versions, causes, evidence, install IDs) reaches a
// page through html/template, which escapes it for where it lands (R67).
//
// Defences: a server-side session behind a random 256-bit ID in a cookie
// that is Secure, HttpOnly and SameSite=Strict, renewed at sign-in and
// expiring; a CSRF token per session in every form, compared in constant
// time, and the Origin and Sec-Fetch-Site headers checked on every POST;
// sign-in attempts limited per client address (429 with Retry-After);
// request bodies bounded (413); and on every answer a Content-Security-Policy
// that allows only the dashboard's own script and style and refuses
// framing, X-Frame-Options DENY, nosniff, no referrer and no caching.
package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/ferry-updates/ferry/guard"
	"github.com/ferry-updates/ferry/rollout"
	"github.com/ferry-updates/ferry/server"
	"github.com/ferry-updates/ferry/store"
)

// Prefix is the path the dashboard is mounted at.
const Prefix = "/dashboard/"

// Defaults of Config's zero fields.
const (
	DefaultStaleAfter  = 24 * time.Hour
	DefaultIdleTimeout = 30 * time.Minute
	DefaultMaxSession  = 12 * time.Hour
	// MaxSessions bounds the sessions kept; signing in past it ends the
	// one idle the longest.
	MaxSessions = 64
	// MaxForm bounds the body of every POST.
	MaxForm = 8 << 10
)

// DefaultSignInRate: five attempts at once from one address, then one
// every ten seconds (an hour of guessing is a few hundred passwords).
var DefaultSignInRate = server.Rate{Burst: 5, Every: 10 * time.Second}

// MaxSignInQueue bounds the sign-ins waiting for the one argon2id
// verification at a time (each takes 0.3-0.9 s with the default
// parameters): past it a sign-in is refused at once with 429, so guesses
// from many addresses cannot keep handlers and connection slots waiting
// for minutes; signInRetry is the Retry-After then, about the time the
// queue takes to drain.
const (
	MaxSignInQueue = 4
	signInRetry    = 5 // seconds
)

// Guard is what the dashboard needs of the rollout guard: the status of
// every guarded rollout of app ("" for every application).
// (*server.Guard) is one.
type Guard interface {
	Status(ctx context.Context, app string) ([]guard.Status, error)
}

// Config configures New. Store, Repo and Credential are required.
type Config struct {
	Store store.Store
	// Repo is the repository whose rollouts the dashboard shows and
	// decides, through server.Decide with its online rollout key.
	Repo server.Rollouter
	// Credential is the administrator's hashed password.
	Credential Credential
	// Guard, if set, gives the stage, budget and evidence of each guarded
	// rollout; without it the pages show the decisions alone.
	Guard Guard
	// Decide, if set, signs the dashboard's decisions: (*server.Guard)'s
	// Decide, so that they are signed under the admin API's lock, a
	// guarded start records its plan (non-nil plan, with a start only),
	// and a start by hand ends the release's plan, as the admin API's do.
	// Nil: server.Decide on Repo, under Lock, and a plan is refused (there
	// is no guard to keep it).
	Decide func(ctx context.Context, app string, a rollout.Action, plan *guard.Plan) (rollout.Entry, error)
	// Lock is held around each decision signed without Decide. Nil: the
	// dashboard's own.
	Lock sync.Locker

	Logger     *slog.Logger     // sign-ins, decisions, errors; nil: slog.Default()
	Now        func() time.Time // nil: time.Now
	StaleAfter time.Duration    // an installation silent this long is stale; 0: DefaultStaleAfter
	// IdleTimeout ends a session unused this long, MaxSession any session
	// this old. 0: DefaultIdleTimeout, DefaultMaxSession.
	IdleTimeout, MaxSession time.Duration
	SignInRate              server.Rate // per client address; zero: DefaultSignInRate
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

type dash struct {
	cfg      Config
	log      *slog.Logger
	pages    map[string]*template.Template
	sessions *sessions
	signIns  *server.Limiter
	verify   chan struct{} // argon2id verifications at once
	waiting  chan struct{} // sign-ins waiting for verify
	loginKey []byte        // HMAC key of the sign-in form's token
	mux      *http.ServeMux
}

// New returns the dashboard's handler, to be mounted at Prefix. It is safe
// for concurrent use.
func New(cfg Config) (http.Handler, error) {
	if cfg.Store == nil || cfg.Repo == nil || len(cfg.Credential.Hash) == 0 {
		return nil, errors.New("dashboard: Store, Repo and Credential are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxSession <= 0 {
		cfg.MaxSession = DefaultMaxSession
	}
	if cfg.SignInRate.Burst <= 0 || cfg.SignInRate.Every <= 0 {
		cfg.SignInRate = DefaultSignInRate
	}
	if cfg.Lock == nil {
		cfg.Lock = &sync.Mutex{}
	}
	if cfg.Decide == nil {
		repo, lock := cfg.Repo, cfg.Lock
		cfg.Decide = func(ctx context.Context, app string, a rollout.Action, plan *guard.Plan) (rollout.Entry, error) {
			if plan != nil {
				return rollout.Entry{}, errors.New("this server has no guard to keep a plan")
			}
			lock.Lock()
			defer lock.Unlock()
			return server.Decide(ctx, repo, app, a)
		}
	}
	pages, err := parsePages(cfg.Now)
	if err != nil {
		return nil, err
	}
	d := &dash{cfg: cfg, log: cfg.Logger, pages: pages, sessions: newSessions(cfg.Now, cfg.IdleTimeout, cfg.MaxSession),
		signIns: server.NewLimiter(cfg.SignInRate, cfg.Now), verify: make(chan struct{}, 1),
		waiting:  make(chan struct{}, MaxSignInQueue),
		loginKey: make([]byte, 32), mux: http.NewServeMux()}
	if d.log == nil {
		d.log = slog.Default()
	}
	rand.Read(d.loginKey)
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	d.mux.Handle("GET "+Prefix+"static/", http.StripPrefix(Prefix+"static/", http.FileServerFS(static)))
	d.mux.HandleFunc("GET "+Prefix+"login", d.loginPage)
	d.mux.HandleFunc("POST "+Prefix+"login", d.login)
	d.mux.HandleFunc("POST "+Prefix+"logout", d.authed(d.logout))
	d.mux.HandleFunc("GET "+Prefix+"{$}", d.authed(d.overview))
	d.mux.HandleFunc("GET "+Prefix+"apps/{app}", d.authed(d.appPage))
	d.mux.HandleFunc("POST "+Prefix+"apps/{app}/rollout", d.authed(d.decide))
	d.mux.HandleFunc("GET "+Prefix+"security", d.authed(d.security))
	d.mux.HandleFunc("GET "+Prefix+"installations", d.authed(d.installations))
	d.mux.HandleFunc(Prefix, d.authed(d.notFound))
	return d, nil
}

// The headers of every answer. The policy allows the dashboard's own
// script and style sheet only (no inline script or style, no eval), images
// from itself (inline SVG is part of the page), fetches to itself (the
// live refresh), forms posted to itself, and no framing by anyone.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (d *dash) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Strict-Transport-Security", "max-age=31536000")
	if r.Method == http.MethodPost {
		if r.ContentLength > MaxForm {
			w.Header().Set("Connection", "close")
			http.Error(w, fmt.Sprintf("request body of %d bytes: the dashboard takes at most %d", r.ContentLength, MaxForm), http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxForm)
		if why := crossSite(r); why != "" {
			d.log.Warn("dashboard: cross-site request refused", "path", r.URL.Path, "why", why, "remote", clientIP(r))
			http.Error(w, "refused: "+why+"; use the dashboard's own forms", http.StatusForbidden)
			return
		}
	}
	d.mux.ServeHTTP(w, r)
}

// crossSite says why a POST does not come from a page of the dashboard
// itself ("" when it may). A browser says where a request comes from in
// Sec-Fetch-Site, which must be same-origin, and in Origin, which must be
// the dashboard's own; but under the dashboard's Referrer-Policy
// (no-referrer) a browser sends "Origin: null" for its own forms, so a null
// Origin counts only as "not said" next to Sec-Fetch-Site: same-origin. A
// client that sends neither (curl) still needs the session's CSRF token.
func crossSite(r *http.Request) string {
	site, origin := r.Header.Get("Sec-Fetch-Site"), r.Header.Get("Origin")
	switch {
	case site != "" && site != "same-origin":
		return "Sec-Fetch-Site is " + strconv.Quote(site)
	case origin == "null" && site == "same-origin":
		return ""
	case origin != "" && origin != "https://"+r.Host:
		return "Origin " + strconv.Quote(origin) + " is not this dashboard's"
	}
	return ""
}

// parseForm reads a POST's form, answering 413 or 400 itself.
func parseForm(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			w.Header().Set("Connection", "close")
			http.Error(w, fmt.Sprintf("request body over %d bytes", MaxForm), http.StatusRequestEntityTooLarge)
		} else {
			http.Error(w, "unreadable form: "+err.Error(), http.StatusBadRequest)
		}
		return false
	}
	return true
}

// The cookies: the session's, and the sign-in form's nonce (its CSRF
// token is an HMAC of it, so a sign-in needs no server state).
const (
	sessionCookie = "ferry_session"
	loginCookie   = "ferry_login"
)

func setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// authed runs h for a request with a live session; a POST must carry the
// session's CSRF token as well. Without a session a page read is sent to
// the sign-in page and anything else refused.
func (d *dash) authed(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var s *session
		if c, err := r.Cookie(sessionCookie); err == nil {
			// The page's own refresh (static/dash.js, every 5 s while the
			// tab is visible) is not the administrator's activity: it must
			// not keep an unattended session alive past the idle timeout.
			s = d.sessions.get(c.Value, r.Header.Get(liveHeader) != "1")
		}
		if s == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
				return
			}
			http.Error(w, "not signed in (or the session ended): sign in again at "+Prefix+"login", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			if !parseForm(w, r) {
				return
			}
			if !equal(r.PostFormValue("csrf"), s.csrf) {
				d.log.Warn("dashboard: CSRF token missing or wrong", "path", r.URL.Path, "remote", clientIP(r))
				http.Error(w, "refused: the form's CSRF token is missing or wrong; reload the page and try again", http.StatusForbidden)
				return
			}
		}
		h(w, r, s)
	}
}

// equal compares two secrets in constant time (an empty one never matches).
func equal(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func (d *dash) loginToken(nonce string) string {
	m := hmac.New(sha256.New, d.loginKey)
	m.Write([]byte("ferry dashboard sign-in\x00" + nonce))
	return hex.EncodeToString(m.Sum(nil))
}

func (d *dash) loginPage(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil && d.sessions.get(c.Value, true) != nil {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	d.renderLogin(w, http.StatusOK, "")
}

func (d *dash) renderLogin(w http.ResponseWriter, status int, msg string) {
	nonce := randomID()
	setCookie(w, loginCookie, nonce, 900)
	d.render(w, status, "login", page{Title: "Sign in", CSRF: d.loginToken(nonce), Flash: msg, FlashErr: msg != ""})
}

func (d *dash) login(w http.ResponseWriter, r *http.Request) {
	ip := clientIP(r)
	if ok, wait := d.signIns.Allow(signInKey(ip)); !ok {
		secs := max(int(math.Ceil(wait.Seconds())), 1)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		d.log.Warn("dashboard: sign-in rate limited", "remote", ip, "retry_after_s", secs)
		http.Error(w, fmt.Sprintf("too many sign-in attempts: try again in %d s", secs), http.StatusTooManyRequests)
		return
	}
	if !parseForm(w, r) {
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !equal(r.PostFormValue("csrf"), d.loginToken(c.Value)) {
		d.log.Warn("dashboard: sign-in without the form's CSRF token", "remote", ip)
		d.renderLogin(w, http.StatusForbidden, "The sign-in form expired or did not come from this dashboard: sign in again.")
		return
	}
	// One argon2id at a time (each takes its memory), a few waiting at
	// most, and none for a client that has gone.
	select {
	case d.waiting <- struct{}{}:
	default:
		w.Header().Set("Retry-After", strconv.Itoa(signInRetry))
		d.log.Warn("dashboard: sign-in refused, too many waiting", "remote", ip, "waiting", MaxSignInQueue)
		http.Error(w, fmt.Sprintf("too many sign-ins at once: try again in %d s", signInRetry), http.StatusTooManyRequests)
		return
	}
	select {
	case d.verify <- struct{}{}:
		<-d.waiting
	case <-r.Context().Done():
		<-d.waiting
		d.log.Warn("dashboard: sign-in abandoned by the client before its turn", "remote", ip)
		http.Error(w, "sign-in abandoned", http.StatusServiceUnavailable)
		return
	}
	ok := d.cfg.Credential.Verify([]byte(r.PostFormValue("password")))
	<-d.verify
	if !ok {
		d.log.Warn("dashboard: sign-in failed", "remote", ip)
		d.renderLogin(w, http.StatusUnauthorized, "Wrong password.")
		return
	}
	// A new session, whatever the request carried: no fixation.
	if old, err := r.Cookie(sessionCookie); err == nil {
		d.sessions.end(old.Value)
	}
	id := d.sessions.start()
	setCookie(w, sessionCookie, id, int(d.cfg.MaxSession/time.Second))
	setCookie(w, loginCookie, "", -1)
	d.log.Info("dashboard: signed in", "remote", ip)
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (d *dash) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		d.sessions.end(c.Value)
	}
	setCookie(w, sessionCookie, "", -1)
	d.log.Info("dashboard: signed out", "remote", clientIP(r))
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}

func (d *dash) notFound(w http.ResponseWriter, r *http.Request, s *session) {
	d.render(w, http.StatusNotFound, "error", d.page(s, "Not found", "", errorData{Message: "No such page: " + r.URL.Path}))
}

// signInKey is the sign-in limiter's key of a client address: an IPv6
// address by its /64, which one machine or network usually holds whole,
// so a few hundred of its addresses are one bucket, not a few hundred.
func signInKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is6() || a.Is4In6() {
		return ip
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// randomID is 256 random bits, unpadded base64url.
func randomID() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sessions are the signed-in sessions, by the SHA-256 of their ID (the ID
// itself is only in the cookie).
type sessions struct {
	now       func() time.Time
	idle, age time.Duration

	mu sync.Mutex
	m  map[[32]byte]*session
}

// session is one signed-in browser. csrf and created are set at start and
// read-only after; the mutex of sessions guards seen and flash.
type session struct {
	csrf          string
	created, seen time.Time
	flash         flash
}

type flash struct {
	msg string
	err bool
}

func newSessions(now func() time.Time, idle, age time.Duration) *sessions {
	return &sessions{now: now, idle: idle, age: age, m: map[[32]byte]*session{}}
}

func (ss *sessions) start() string {
	id := randomID()
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for k, s := range ss.m {
		if ss.expired(s, now) {
			delete(ss.m, k)
		}
	}
	if len(ss.m) >= MaxSessions {
		var oldest [32]byte
		first := true
		for k, s := range ss.m {
			if first || s.seen.Before(ss.m[oldest].seen) {
				oldest, first = k, false
			}
		}
		delete(ss.m, oldest)
	}
	ss.m[sha256.Sum256([]byte(id))] = &session{csrf: randomID(), created: now, seen: now}
	return id
}

func (ss *sessions) expired(s *session, now time.Time) bool {
	return now.Sub(s.seen) >= ss.idle || now.Sub(s.created) >= ss.age
}

// liveHeader marks the requests of the page's live refresh.
const liveHeader = "X-Ferry-Live"

// get returns the live session of id, and if used marks it used (the idle
// timeout starts again); nil if none.
func (ss *sessions) get(id string, used bool) *session {
	if id == "" {
		return nil
	}
	k := sha256.Sum256([]byte(id))
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[k]
	if s == nil {
		return nil
	}
	if ss.expired(s, now) {
		delete(ss.m, k)
		return nil
	}
	if used {
		s.seen = now
	}
	return s
}

func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, sha256.Sum256([]byte(id)))
}

// setFlash keeps a message for the next page s shows; takeFlash takes it.
func (ss *sessions) setFlash(s *session, f flash) {
	ss.mu.Lock()
	s.flash = f
	ss.mu.Unlock()
}

func (ss *sessions) takeFlash(s *session) flash {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	f := s.flash
	s.flash = flash{}
	return f
}
