package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ferry-updates/ferry/audit"
	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/store"
)

// The reporting API, next to the admin API (docs/reporting.md):
//
//	POST /api/v1/enroll  Authorization: Bearer ENROLLMENT-TOKEN
//	                     {"install_id":"HEX","hostname":"h","apps":[{"app","version","channel"}]}
//	                     200 {"install_id","credential","token_id"}
//	POST /api/v1/events  Authorization: Bearer CREDENTIAL
//	                     {"install_id":"HEX","lines":["AUDIT LINE",...],"apps":[...]}
//	                     200 {"added":N,"head":{"seq","hash"}}
//
// An enrollment token (ferry token create --enroll) is kept in the store
// by its hash; it may be scoped to one application, expire and be limited
// to a number of uses, and each enrollment counts one. The credential an
// enrollment returns is "ferryi_" INSTALLID "." and 32 random bytes in
// unpadded base64url; the store keeps its SHA-256 only, with the install
// ID it is bound to. Events are the installation's audit-log lines
// (package audit) as they were written: the server checks each line's
// form, hashes it itself, checks the links between consecutive lines and
// against the last (seq, hash) it stored, and stores the events idempotently
// by (install ID, seq).
//
// Answers: 401 without a known, usable token or credential; 403 for a
// batch of another installation than the credential's (R64), an
// enrollment outside the token's scope, or of an install ID revoked on
// its own; 409 for an install ID enrolled already, and for a batch that contradicts what the server stored (a seq
// with another hash, or a prev that does not continue the stored chain:
// the log was rewritten, R65), logged as a security event; 413 for a body
// over the limit, from its Content-Length before anything is read; 429
// with Retry-After past an installation's or an enrollment token's rate,
// and from an address that had too many requests refused.
//
// Rates. Each installation has its own rate (CredentialRate); the
// installations one enrollment token enrolled share a rate for their
// batches (TokenReportRate), so a leaked token's installations cannot
// together write more than that however many it enrolled; and each token
// has its own rate of enrollments (EnrollRate). A client address has two
// buckets. Every request from it takes one token from AddressRate, a high
// ceiling sized for a whole fleet behind one NAT or proxy (10,000
// installations enrolled in a few seconds, then hundreds of batches a
// second), so nothing from one address is unbounded. The requests the
// server refuses (any answer of 400 or more: no or a wrong credential, a
// malformed or oversized body, a batch of another installation, a rate
// exceeded, except TokenReportRate, which a whole fleet reaches together)
// also take one from IPRate, a low one: once either bucket is
// empty, every request from the address is refused with 429 before
// anything is read or looked up, until it refills. So a fleet behind one
// address is limited per installation and per token, and only by the
// ceiling as a whole; a flood of bad requests costs the server one bucket
// lookup each; and an address that floods stops the good requests from
// the same address too, for as long as it floods.

// Limits and rates of the reporting API.
const (
	DefaultMaxReport = 4 << 20  // bytes of one events request
	MaxEnrollRequest = 64 << 10 // bytes of one enrollment request
	MaxBatch         = 1000     // lines of one events request
	maxHostname      = 255
	credentialPrefix = "ferryi_"
	// EnrollTokenPrefix starts every enrollment token.
	EnrollTokenPrefix = "ferrye_"
)

var (
	// DefaultCredentialRate: an agent sends its backlog in bursts of 20
	// batches, then one a second.
	DefaultCredentialRate = Rate{Burst: 20, Every: time.Second}
	// DefaultEnrollRate is per enrollment token: a thousand machines
	// provisioned at once, then a hundred a second. Its number of uses
	// (ferry token create --uses), not its rate, bounds what a leaked
	// token can enroll.
	DefaultEnrollRate = Rate{Burst: 1000, Every: 10 * time.Millisecond}
	// DefaultReportIPRate is per client address, for refused requests
	// only: many agents may share one address behind a NAT.
	DefaultReportIPRate = Rate{Burst: 200, Every: 10 * time.Millisecond}
	// DefaultAddressRate is per client address, for every request: 10,000
	// at once (a fleet of that size enrolled together from behind one
	// NAT), then 2,000 a second, several times what 10,000 installations
	// reporting every 30 s send (333 batches a second; bench/fleet).
	DefaultAddressRate = Rate{Burst: 10000, Every: 500 * time.Microsecond}
	// DefaultTokenReportRate is per enrollment token, for the batches of
	// all the installations it enrolled: 1,000 at once, then 200 a second,
	// six times what 1,000 installations (bench/fleet's -per-token)
	// reporting every 30 s send; an hourly agent's fleet of 100,000 on one
	// token sends 28 a second. Give a larger fleet more tokens.
	DefaultTokenReportRate = Rate{Burst: 1000, Every: 5 * time.Millisecond}
)

// ReportConfig configures Reporting. Store is required.
type ReportConfig struct {
	Store          store.Store
	MaxBody        int64 // bytes of an events request; 0: DefaultMaxReport
	CredentialRate Rate  // per installation; zero: DefaultCredentialRate
	EnrollRate     Rate  // per enrollment token; zero: DefaultEnrollRate
	IPRate         Rate  // refused requests per client address; zero: DefaultReportIPRate
	AddressRate    Rate  // every request per client address; zero: DefaultAddressRate
	// TokenReportRate is per enrollment token, for the batches of the
	// installations it enrolled; zero: DefaultTokenReportRate.
	TokenReportRate Rate
	// Metrics, if set, counts each accepted batch as a check-in and each
	// new event by kind (a resent one is not counted again).
	Metrics *Metrics
	Logger  *slog.Logger
	Now     func() time.Time
}

type reporting struct {
	cfg        ReportConfig
	log        *slog.Logger
	byIP       *limiter // refused requests
	byAddr     *limiter // every request
	byCred     *limiter
	byToken    *limiter // enrollments
	byEnrolled *limiter // batches of the installations a token enrolled
	mux        *http.ServeMux
}

// Reporting returns the handler of /api/v1/enroll and /api/v1/events. It
// is safe for concurrent use.
func Reporting(cfg ReportConfig) (http.Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("reporting api: Store is required")
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxReport
	}
	if cfg.CredentialRate.Burst <= 0 || cfg.CredentialRate.Every <= 0 {
		cfg.CredentialRate = DefaultCredentialRate
	}
	if cfg.EnrollRate.Burst <= 0 || cfg.EnrollRate.Every <= 0 {
		cfg.EnrollRate = DefaultEnrollRate
	}
	if cfg.IPRate.Burst <= 0 || cfg.IPRate.Every <= 0 {
		cfg.IPRate = DefaultReportIPRate
	}
	if cfg.AddressRate.Burst <= 0 || cfg.AddressRate.Every <= 0 {
		cfg.AddressRate = DefaultAddressRate
	}
	if cfg.TokenReportRate.Burst <= 0 || cfg.TokenReportRate.Every <= 0 {
		cfg.TokenReportRate = DefaultTokenReportRate
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &reporting{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.byIP, p.byCred, p.byToken = newLimiter(cfg.IPRate, cfg.Now), newLimiter(cfg.CredentialRate, cfg.Now), newLimiter(cfg.EnrollRate, cfg.Now)
	p.byAddr, p.byEnrolled = newLimiter(cfg.AddressRate, cfg.Now), newLimiter(cfg.TokenReportRate, cfg.Now)
	p.mux.HandleFunc("POST /api/v1/enroll", p.enroll)
	p.mux.HandleFunc("POST /api/v1/events", p.events)
	return p, nil
}

func (p *reporting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	ip := clientIP(r)
	if ok, wait := p.byIP.peek(ip); !ok {
		tooMany(w, p.log, wait, "client", ip)
		return
	}
	if ok, wait := p.byAddr.allow(ip); !ok {
		tooMany(w, p.log, wait, "client", ip)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	p.mux.ServeHTTP(sw, r)
	if sw.status >= 400 && !sw.shared {
		p.byIP.charge(ip)
	}
}

// statusWriter keeps the status of the answer.
type statusWriter struct {
	http.ResponseWriter
	status int
	// shared: refused by a rate a whole fleet shares (its token's), which
	// a legitimate fleet behind one address reaches together after an
	// outage; not charged to the address's refusals, or the 429s of one
	// fleet would refuse every other request from its address too.
	shared bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController and readJSON reach the server's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// App is what an installation runs of one application, as it reports it.
type App struct {
	App     string `json:"app"`
	Version string `json:"version"`
	Channel string `json:"channel"`
}

// EnrollRequest is the body of POST /api/v1/enroll.
type EnrollRequest struct {
	InstallID string `json:"install_id"`
	Hostname  string `json:"hostname"`
	Apps      []App  `json:"apps"`
}

// EnrollAnswer is the answer to an enrollment.
type EnrollAnswer struct {
	InstallID  string `json:"install_id"`
	Credential string `json:"credential"`
	TokenID    string `json:"token_id"`
}

// EventsRequest is the body of POST /api/v1/events: audit-log lines, in
// order, and optionally what the installation runs now.
type EventsRequest struct {
	InstallID string   `json:"install_id"`
	Lines     []string `json:"lines"`
	Apps      []App    `json:"apps,omitempty"`
}

// EventsAnswer is the answer to a batch: how many events were new, and the
// end of the installation's chain as the server now knows it.
type EventsAnswer struct {
	Added int         `json:"added"`
	Head  audit.State `json:"head"`
}

func (p *reporting) enroll(w http.ResponseWriter, r *http.Request) {
	secret, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if secret == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ferry"`)
		p.refuse(w, r, "", http.StatusUnauthorized, "an enrollment token is required (Authorization: Bearer TOKEN)")
		return
	}
	var req EnrollRequest
	if err := readJSON(w, r, MaxEnrollRequest, &req); err != nil {
		p.refuse(w, r, "", statusOf(err), err.Error())
		return
	}
	if err := checkEnroll(req); err != nil {
		p.refuse(w, r, "", http.StatusBadRequest, err.Error())
		return
	}
	tok, err := p.enrollToken(r.Context(), secret)
	if err != nil {
		p.tokenError(w, r, err)
		return
	}
	if ok, wait := p.byToken.allow(tok.ID); !ok {
		tooMany(w, p.log, wait, "token", tok.ID)
		return
	}
	if tok.Scope != "*" {
		for _, a := range req.Apps {
			if a.App != tok.Scope {
				p.refuse(w, r, "", http.StatusForbidden, fmt.Sprintf("enrollment token %s is for application %s, not %s", tok.ID, tok.Scope, a.App))
				return
			}
		}
	}
	cred, hash, err := newCredential(req.InstallID)
	if err != nil {
		p.refuse(w, r, "", http.StatusInternalServerError, err.Error())
		return
	}
	now := p.cfg.Now()
	in := store.Installation{ID: req.InstallID, CredentialHash: hash, Enrolled: now, Apps: storeApps(req.Apps)}
	if err := p.cfg.Store.Enroll(r.Context(), in, hashToken(secret)); err != nil {
		p.tokenError(w, r, err)
		return
	}
	p.log.Info("report: enrolled", "install_id", req.InstallID, "hostname", req.Hostname, "token", tok.ID, "remote", clientIP(r))
	writeJSON(w, http.StatusOK, EnrollAnswer{InstallID: req.InstallID, Credential: cred, TokenID: tok.ID})
}

// enrollToken finds the enrollment token whose hash is that of secret,
// comparing every stored hash in constant time. Its use is counted by
// Enroll, in the same transaction as the enrollment.
func (p *reporting) enrollToken(ctx context.Context, secret string) (store.Token, error) {
	if len(secret) > maxTokenLength || !strings.HasPrefix(secret, EnrollTokenPrefix) {
		return store.Token{}, fmt.Errorf("not an enrollment token: %w", store.ErrNotFound)
	}
	ts, err := p.cfg.Store.ListTokens(ctx)
	if err != nil {
		return store.Token{}, err
	}
	sum := sha256.Sum256([]byte(secret))
	var found store.Token
	ok := 0
	for _, t := range ts {
		want, err := hex.DecodeString(t.Hash)
		if err != nil || t.Kind != store.Enroll {
			continue
		}
		if subtle.ConstantTimeCompare(sum[:], want) == 1 {
			found, ok = t, 1
		}
	}
	if ok == 0 {
		return store.Token{}, fmt.Errorf("unknown enrollment token: %w", store.ErrNotFound)
	}
	return found, nil
}

// tokenError answers a refused token or enrollment.
func (p *reporting) tokenError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := http.StatusInternalServerError, "internal error"
	switch {
	case errors.Is(err, store.ErrNotFound):
		code, msg = http.StatusUnauthorized, "unknown enrollment token"
	case errors.Is(err, store.ErrTokenExpired):
		code, msg = http.StatusUnauthorized, "the enrollment token has expired"
	case errors.Is(err, store.ErrTokenRevoked):
		code, msg = http.StatusUnauthorized, "the enrollment token was revoked"
	case errors.Is(err, store.ErrTokenUsedUp):
		code, msg = http.StatusUnauthorized, "the enrollment token has no uses left"
	case errors.Is(err, store.ErrConflict):
		code, msg = http.StatusConflict, "this install ID is enrolled already"
	case errors.Is(err, store.ErrInstallationRevoked):
		code, msg = http.StatusForbidden, "this install ID was revoked (ferry installation revoke): enroll from a new state directory"
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ferry"`)
	}
	p.log.Warn("report: enrollment refused", "status", code, "err", err.Error(), "remote", clientIP(r))
	writeError(w, code, msg)
}

func checkEnroll(req EnrollRequest) error {
	if err := validInstallID(req.InstallID); err != nil {
		return err
	}
	if len(req.Hostname) > maxHostname {
		return fmt.Errorf("hostname longer than %d bytes", maxHostname)
	}
	return checkApps(req.Apps)
}

func checkApps(apps []App) error {
	for _, a := range apps {
		if err := release.ValidApp(a.App); err != nil {
			return fmt.Errorf("app %q: %v", a.App, err)
		}
		if a.Version != "" && release.ValidVersion(a.Version) != nil {
			return fmt.Errorf("app %s: version %q: %v", a.App, a.Version, release.ValidVersion(a.Version))
		}
		if a.Channel != "" && release.ValidChannel(a.Channel) != nil {
			return fmt.Errorf("app %s: channel %q: %v", a.App, a.Channel, release.ValidChannel(a.Channel))
		}
	}
	return nil
}

// validInstallID: 32 lowercase hex digits, as client.InstallID makes them.
func validInstallID(id string) error {
	if b, err := hex.DecodeString(id); err != nil || len(b) != 16 || strings.ToLower(id) != id {
		return fmt.Errorf("install_id %q is not 32 lowercase hex digits", id)
	}
	return nil
}

func storeApps(apps []App) []store.App {
	out := make([]store.App, len(apps))
	for i, a := range apps {
		out[i] = store.App{App: a.App, Version: a.Version, Channel: a.Channel}
	}
	return out
}

// newCredential makes the credential of an installation and its hash.
func newCredential(installID string) (cred, hash string, err error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", "", fmt.Errorf("new credential: %w", err)
	}
	cred = credentialPrefix + installID + "." + base64.RawURLEncoding.EncodeToString(raw[:])
	return cred, hashToken(cred), nil
}

// EnrollTokenLifetime is how long an enrollment token enrolls when its
// maker chooses no other expiry (R69): a token that leaks and is never
// revoked still stops enrolling installations after a week.
const EnrollTokenLifetime = 7 * 24 * time.Hour

// NewEnrollToken makes an enrollment token's secret and its store record,
// expiring EnrollTokenLifetime after now (the caller sets Scope and
// MaxUses, may set another Expires, and stores it).
func NewEnrollToken(now time.Time) (secret string, t store.Token, err error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", store.Token{}, fmt.Errorf("create enrollment token: %w", err)
	}
	secret = EnrollTokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	h := hashToken(secret)
	created := now.UTC().Truncate(time.Second)
	return secret, store.Token{ID: h[:tokenIDLen], Kind: store.Enroll, Scope: "*", Hash: h, Created: created, Expires: created.Add(EnrollTokenLifetime)}, nil
}

func hashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// credentialInstall is the install ID a credential names ("" if it is
// not one).
func credentialInstall(cred string) string {
	rest, ok := strings.CutPrefix(cred, credentialPrefix)
	id, _, _ := strings.Cut(rest, ".")
	if !ok || len(cred) > maxTokenLength || validInstallID(id) != nil {
		return ""
	}
	return id
}

// readJSON reads one JSON object of at most limit bytes into v: 413 from
// the Content-Length before anything is read, or once the body crosses it.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if r.ContentLength > limit {
		return fmt.Errorf("%w: body of %d bytes, limit %d", errTooLarge, r.ContentLength, limit)
	}
	// MaxBytesReader tells the server's own writer to close the
	// connection after a body over the limit, rather than read the rest.
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		w = u.Unwrap()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return fmt.Errorf("read request: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", errBadRequest, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: more than one JSON value", errBadRequest)
	}
	return nil
}

func (p *reporting) refuse(w http.ResponseWriter, r *http.Request, installID string, code int, msg string) {
	p.log.Warn("report: refused", "path", r.URL.Path, "install_id", installID, "status", code, "err", msg, "remote", clientIP(r))
	if code == http.StatusInternalServerError {
		msg = "internal error"
	}
	writeError(w, code, msg)
}
