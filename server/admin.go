package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/repo"
)

// The admin API, mounted under /api/v1/ next to the repository:
//
//	GET  /api/v1/apps/{app}/role      the application's signed role as published now
//	                                  (200 application/json; 204 when delegated but not signed yet)
//	POST /api/v1/apps/{app}/releases  multipart/form-data: optionally parts named "channel" and
//	                                  "basis_points" (the release's rollout decision, signed with
//	                                  the online rollout key in the same commit), then a part
//	                                  named "role" (the signed role, at most MaxRole bytes), then
//	                                  one part named "file" per new target, in any order
//	                                  (matched by length and sha256)
//	GET, POST /api/v1/apps/{app}/rollout  rollout status and decisions (see rollout.go)
//
// Every request carries "Authorization: Bearer TOKEN" with a token of that
// application (401 without a known token, 403 for another application's)
// and of the scope the endpoint needs (403 otherwise, see scopesFor): a
// publish token reads the role and the rollout status and uploads; a
// rollout token reads the rollout status and signs decisions. Answers are JSON: {"published":[{"path","length","sha256"}]}
// or {"error":"..."}. Limits: 413 for a body over MaxUpload (from its
// Content-Length before anything is read, or as soon as a chunked body
// crosses it) or for files beyond what the role's new targets need; 429
// with Retry-After past a client address's or a token's rate; 503 with
// Retry-After while another upload is being published. Uploads are refused
// with 422 (not as the delegation requires), 409 (a changed version or a
// role version not above the published one) and 404 (no delegation).

// Defaults for the zero values of AdminConfig.
const (
	DefaultMaxUpload = 1 << 30
	DefaultMaxRole   = 16 << 20
	DefaultUploads   = 2
)

// Default rates: a token sends 30 requests at once (a release for 15
// platforms: each publish is a GET of the role and a POST), then one every
// 2 s; one client address sends 60 requests at once, then one a second.
var (
	DefaultTokenRate = Rate{Burst: 30, Every: 2 * time.Second}
	DefaultIPRate    = Rate{Burst: 60, Every: time.Second}
)

// Publisher is the repository behind the admin API; *repo.Repo is one. Its
// errors are those of repo: ErrNoDelegation, ErrRefused, ErrStaleRole,
// ErrImmutable, ErrNoRolloutRole and ErrBusy are answered with their own
// status.
type Publisher interface {
	AppRole(ctx context.Context, app string) ([]byte, error)
	CheckUpload(ctx context.Context, app string, role []byte) (*repo.Upload, error)
	PublishUpload(ctx context.Context, app string, role []byte, files []string) (repo.Result, error)
	// PublishUploadWith is PublishUpload with a rollout decision recorded
	// in the same commit (the upload fields channel and basis_points).
	PublishUploadWith(ctx context.Context, app string, role []byte, files []string, o repo.UploadOptions) (repo.Result, error)
	Rollouter
}

// AdminConfig configures Admin. Repo, Tokens and TempDir are required.
type AdminConfig struct {
	Repo    Publisher
	Tokens  string // the tokens file (see CreateToken), read on every request
	TempDir string // uploads are streamed to files under it (on disk, not tmpfs)

	MaxUpload int64 // bytes of one request body; 0: DefaultMaxUpload
	MaxRole   int64 // bytes of the role part; 0: DefaultMaxRole
	Uploads   int   // uploads processed at once; 0: DefaultUploads
	// ReadStall is the longest an upload may send nothing; as long as it
	// progresses it may outlast the server's ReadTimeout. 0: DefaultReadTimeout.
	ReadStall time.Duration
	TokenRate Rate // per token; zero: DefaultTokenRate
	IPRate    Rate // per client address; zero: DefaultIPRate

	// Guard, if set, keeps the plans of guarded rollouts: a rollout
	// request may carry one, every decision is signed under the guard's
	// lock (uploads too), and the rollout status shows what it found.
	Guard *Guard

	Logger *slog.Logger     // publish decisions; nil: slog.Default()
	Now    func() time.Time // rate limits' clock; nil: time.Now
}

type admin struct {
	cfg     AdminConfig
	log     *slog.Logger
	byIP    *limiter
	byToken *limiter
	uploads chan struct{}
	mu      sync.Locker // one signing at a time: uploads, decisions and the guard's
	mux     *http.ServeMux
}

// Admin returns the admin API handler. It is safe for concurrent use.
func Admin(cfg AdminConfig) (http.Handler, error) {
	if cfg.Repo == nil || cfg.Tokens == "" || cfg.TempDir == "" {
		return nil, errors.New("admin api: Repo, Tokens and TempDir are required")
	}
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.MaxUpload, DefaultMaxUpload)
	def(&cfg.MaxRole, DefaultMaxRole)
	if cfg.ReadStall <= 0 {
		cfg.ReadStall = DefaultReadTimeout
	}
	if cfg.Uploads <= 0 {
		cfg.Uploads = DefaultUploads
	}
	if cfg.TokenRate.Burst <= 0 || cfg.TokenRate.Every <= 0 {
		cfg.TokenRate = DefaultTokenRate
	}
	if cfg.IPRate.Burst <= 0 || cfg.IPRate.Every <= 0 {
		cfg.IPRate = DefaultIPRate
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &admin{cfg: cfg, log: cfg.Logger, uploads: make(chan struct{}, cfg.Uploads), mux: http.NewServeMux(), mu: &sync.Mutex{}}
	if cfg.Guard != nil {
		a.mu = cfg.Guard.lock
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.byIP, a.byToken = newLimiter(cfg.IPRate, cfg.Now), newLimiter(cfg.TokenRate, cfg.Now)
	a.mux.HandleFunc("GET /api/v1/apps/{app}/role", a.role)
	a.mux.HandleFunc("POST /api/v1/apps/{app}/releases", a.upload)
	a.mux.HandleFunc("GET /api/v1/apps/{app}/rollout", a.rolloutStatus)
	a.mux.HandleFunc("POST /api/v1/apps/{app}/rollout", a.rolloutDecide)
	return a, nil
}

type tokenKey struct{}

// ServeHTTP applies, in order: the client address's rate, the token (401),
// its scope (403), the token's rate, then the endpoint.
func (a *admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	ip := clientIP(r)
	if ok, wait := a.byIP.allow(ip); !ok {
		a.tooMany(w, wait, "client", ip)
		return
	}
	ts, err := ListTokens(a.cfg.Tokens)
	if err != nil {
		a.log.Error("admin: read tokens", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	secret, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	tok, ok := authenticate(ts, secret)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ferry"`)
		// A revoked token is gone from the tokens file: its kind is
		// unknown, so the answer names both.
		msg := "a publisher or rollout token is required (Authorization: Bearer TOKEN)"
		if secret != "" {
			msg = "unknown or revoked publisher or rollout token"
		}
		writeError(w, http.StatusUnauthorized, msg)
		return
	}
	_, pattern := a.mux.Handler(r)
	if pattern == "" {
		writeError(w, http.StatusNotFound, "no such endpoint")
		return
	}
	if seg, err := url.PathUnescape(appOf(r.URL.EscapedPath())); err != nil || release.ValidApp(seg) != nil {
		writeError(w, http.StatusBadRequest, "the application in the path is not a valid application name")
		return
	}
	if app := appOf(r.URL.Path); app != tok.App {
		a.log.Warn("admin: token of another application", "token", tok.ID, "token_app", tok.App, "app", app, "remote", ip)
		writeError(w, http.StatusForbidden, fmt.Sprintf("token %s is for application %s, not %s", tok.ID, tok.App, app))
		return
	}
	if want := scopesFor(pattern); !slices.Contains(want, tok.Of()) {
		a.log.Warn("admin: token of another scope", "token", tok.ID, "scope", string(tok.Of()), "path", r.URL.Path, "method", r.Method, "remote", ip)
		writeError(w, http.StatusForbidden, scopeRefusal(tok, want))
		return
	}
	if ok, wait := a.byToken.allow(tok.ID); !ok {
		a.tooMany(w, wait, "token", tok.ID)
		return
	}
	a.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenKey{}, tok)))
}

// scopesFor returns the token scopes that may use the endpoint pattern
// ("METHOD /api/v1/apps/{app}/..."): under .../rollout, a GET is for either
// scope and anything else needs ScopeRollout; every other endpoint needs
// ScopePublish. A rule by path rather than a list, so that an endpoint
// added under .../rollout needs the rollout scope without being listed.
func scopesFor(pattern string) []Scope {
	method, path, _ := strings.Cut(pattern, " ")
	rest, _ := strings.CutPrefix(path, "/api/v1/apps/{app}/")
	if rest == "rollout" || strings.HasPrefix(rest, "rollout/") {
		if method == http.MethodGet {
			return []Scope{ScopePublish, ScopeRollout}
		}
		return []Scope{ScopeRollout}
	}
	return []Scope{ScopePublish}
}

func scopeRefusal(tok Token, want []Scope) string {
	if slices.Contains(want, ScopeRollout) {
		return fmt.Sprintf("token %s may publish %s, not make rollout decisions: use a rollout token (ferry token create --rollout --app %s)", tok.ID, tok.App, tok.App)
	}
	return fmt.Sprintf("token %s may make rollout decisions for %s, not publish: use a publish token (ferry token create --app %s)", tok.ID, tok.App, tok.App)
}

// appOf is the {app} segment of /api/v1/apps/{app}/...
func appOf(p string) string {
	rest, _ := strings.CutPrefix(p, "/api/v1/apps/")
	app, _, _ := strings.Cut(rest, "/")
	return app
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (a *admin) tooMany(w http.ResponseWriter, wait time.Duration, by, who string) {
	tooMany(w, a.log, wait, by, who)
}

// tooMany answers 429 with the seconds until the next request may pass.
func tooMany(w http.ResponseWriter, log *slog.Logger, wait time.Duration, by, who string) {
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	log.Warn("rate limited", "by", by, "who", who, "retry_after_s", max(secs, 1))
	writeError(w, http.StatusTooManyRequests, "too many requests")
}

func (a *admin) role(w http.ResponseWriter, r *http.Request) {
	data, err := a.cfg.Repo.AppRole(r.Context(), r.PathValue("app"))
	switch {
	case err != nil:
		a.fail(w, r, err)
	case data == nil:
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Write(data)
	}
}

// statusOf maps a repository error to the admin API's answer.
func statusOf(err error) int {
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &mb), errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, repo.ErrNoDelegation):
		return http.StatusNotFound
	case errors.Is(err, repo.ErrImmutable), errors.Is(err, repo.ErrStaleRole), errors.Is(err, repo.ErrNoRolloutRole):
		return http.StatusConflict
	case errors.Is(err, repo.ErrRefused):
		return http.StatusUnprocessableEntity
	case errors.Is(err, repo.ErrBusy), errors.Is(err, repo.ErrMissingKey), errors.Is(err, ErrCannotSign):
		return http.StatusServiceUnavailable
	case errors.Is(err, errBadRequest):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// fail answers err; an internal error is logged, not shown.
func (a *admin) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	tok, _ := r.Context().Value(tokenKey{}).(Token)
	a.log.Warn("admin: refused", "path", r.URL.Path, "token", tok.ID, "status", code, "err", err.Error())
	msg := err.Error()
	switch code {
	case http.StatusInternalServerError:
		msg = "internal error"
	case http.StatusServiceUnavailable:
		if errors.Is(err, ErrCannotSign) {
			// The cause (a passphrase not given) and the fix: nothing secret.
			var se *signError
			if errors.As(err, &se) {
				msg = se.Error()
			}
		} else if errors.Is(err, repo.ErrMissingKey) {
			msg = "the server cannot sign snapshot and timestamp (its online keys are not available); see its log"
		} else {
			w.Header().Set("Retry-After", "1") // busy: another publish holds the repository
		}
	}
	writeError(w, code, msg)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
