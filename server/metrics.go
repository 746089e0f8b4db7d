package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferry-updates/ferry/event"
)

// Metrics are the server's Prometheus metrics (docs/metrics.md lists them),
// kept in a registry of their own: nothing is registered globally. The
// request counters are created up front, so counting a request is an
// atomic add and allocates nothing. A Metrics is safe for concurrent use;
// a nil *Metrics counts nothing.
type Metrics struct {
	reg *prometheus.Registry

	requests [numFaces][numClasses]prometheus.Counter
	bytes    [numFaces]prometheus.Counter

	checkins  prometheus.Counter
	events    map[event.Kind]prometheus.Counter // every kind of package event, read-only
	otherKind prometheus.Counter                // kinds this server does not know
	security  map[event.Kind]prometheus.Counter // the Security kinds, read-only
	found     map[string]prometheus.Counter     // ServerSecurityKinds, read-only
	installs  *prometheus.CounterVec            // by app
	failures  *prometheus.CounterVec            // by app
	rollbacks *prometheus.CounterVec            // by app

	repo  *repoCollector // nil without a repository
	guard *guardMetrics  // the rollout guard's (metrics_guard.go)

	mu    sync.Mutex
	stale func(context.Context) (int, error)
}

// Faces of the server, the "face" label of the request metrics.
const (
	faceRepository = iota // /metadata/, /targets/ and anything else
	faceAdmin             // /api/v1/ but the events endpoints
	faceEvents            // /api/v1/enroll, /api/v1/events
	faceMetrics           // /metrics
	faceDashboard         // /dashboard/
	numFaces
)

var faceNames = [numFaces]string{"repository", "admin", "events", "metrics", "dashboard"}

// numClasses are the status classes 1xx..5xx, and "other" (index 0) for
// a status outside them.
const numClasses = 6

var classNames = [numClasses]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// MetricsPath is where the metrics are served.
const MetricsPath = "/metrics"

// otherApp is the "app" label of an event about an application the
// repository does not delegate (application names come from clients: only
// the repository's own become labels).
const otherApp = "_other"

// MetricsConfig configures NewMetrics; the zero value counts requests and
// events only.
type MetricsConfig struct {
	// Repo, if set, gives the gauges of the signed metadata: each role's
	// expiry and each application's rollout decisions. They are read again
	// at a scrape when PublicDir's metadata/timestamp.json has changed
	// (every commit of the repository, by this server or another process,
	// signs a new one).
	Repo      MetricsRepo
	PublicDir string
	Now       func() time.Time // the clock of the expiry gauges; nil: time.Now
}

// NewMetrics returns the metrics of one server.
func NewMetrics(cfg MetricsConfig) (*Metrics, error) {
	if cfg.Repo != nil && cfg.PublicDir == "" {
		return nil, errors.New("metrics: a repository needs its public directory")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Metrics{reg: prometheus.NewRegistry(), guard: newGuardMetrics()}
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_http_requests_total",
		Help: "HTTP requests answered, by face of the server and status class.",
	}, []string{"face", "code"})
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_http_response_bytes_total",
		Help: "Bytes of response bodies written, by face of the server.",
	}, []string{"face"})
	for f := range numFaces {
		for c := 1; c < numClasses; c++ {
			m.requests[f][c] = reqs.WithLabelValues(faceNames[f], classNames[c])
		}
		m.requests[f][0] = reqs.WithLabelValues(faceNames[f], classNames[0])
		m.bytes[f] = bytes.WithLabelValues(faceNames[f])
	}
	m.checkins = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ferry_checkins_total",
		Help: "Check-ins of enrolled installations.",
	})
	m.registerEvents()
	m.reg.MustRegister(reqs, bytes, m.checkins, m.installs, m.failures, m.rollbacks,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		staleCollector{m}, m.guard)
	if cfg.Repo != nil {
		m.repo = newRepoCollector(cfg.Repo, cfg.PublicDir, cfg.Now)
		m.reg.MustRegister(m.repo)
	}
	return m, nil
}

func (m *Metrics) registerEvents() {
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_events_total",
		Help: "Events installations reported, by kind (kinds this server does not know: \"other\").",
	}, []string{"kind"})
	security := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_security_events_total",
		Help: "Security events by kind: reported refusals of something that failed verification, and those the server found itself (report.log_rewritten, report.out_of_scope).",
	}, []string{"kind"})
	m.events, m.security = map[event.Kind]prometheus.Counter{}, map[event.Kind]prometheus.Counter{}
	for _, k := range knownKinds {
		m.events[k] = events.WithLabelValues(string(k))
		if k.Security() {
			m.security[k] = security.WithLabelValues(string(k))
		}
	}
	m.found = map[string]prometheus.Counter{}
	for _, k := range ServerSecurityKinds {
		m.found[k] = security.WithLabelValues(k)
	}
	m.otherKind = events.WithLabelValues("other")
	byApp := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"app"})
	}
	m.installs = byApp("ferry_installs_total", "Installs reported committed and healthy (install.done), by application.")
	m.failures = byApp("ferry_install_failures_total", "Installs reported failed (health.failed, install.failed, install.rollback_failed), by application.")
	m.rollbacks = byApp("ferry_rollbacks_total", "Installs reported rolled back (install.rolled_back), by application.")
	m.reg.MustRegister(events, security)
}

// ObserveCheckin counts one check-in of an enrolled installation.
func (m *Metrics) ObserveCheckin() {
	if m != nil {
		m.checkins.Inc()
	}
}

// ObserveEvent counts one event an enrolled installation reported: by
// kind, as a security event when kind.Security(), and as an install, a
// failure or a rollback of app. Call it once per event stored (not for a
// resent one). An app the repository does not delegate is counted as
// "_other", so that clients cannot create label values.
func (m *Metrics) ObserveEvent(kind event.Kind, app string) {
	if m == nil {
		return
	}
	if c, ok := m.events[kind]; ok {
		c.Inc()
	} else {
		m.otherKind.Inc()
	}
	if c, ok := m.security[kind]; ok {
		c.Inc()
	}
	var vec *prometheus.CounterVec
	switch kind {
	case event.InstallDone:
		vec = m.installs
	case event.HealthFailed, event.InstallFailed, event.RollbackFailed:
		vec = m.failures
	case event.RolledBack:
		vec = m.rollbacks
	default:
		return
	}
	if m.repo == nil || !m.repo.knownApp(app) {
		app = otherApp
	}
	vec.WithLabelValues(app).Inc()
}

// ObserveSecurity counts one security event the server found itself (one
// of ServerSecurityKinds, recorded with store.RecordSecurity), in
// ferry_security_events_total with the reported ones, so that the alert on
// a spike of security events sees it too. Other kinds are not counted:
// labels are the server's own.
func (m *Metrics) ObserveSecurity(kind string) {
	if m == nil {
		return
	}
	if c, ok := m.found[kind]; ok {
		c.Inc()
	}
}

// SetStaleInstallations sets how the gauge ferry_installations_stale is
// read at each scrape: count returns the number of enrolled installations
// that have not checked in for longer than the server allows. Until it is
// set the gauge is not exported.
func (m *Metrics) SetStaleInstallations(count func(ctx context.Context) (int, error)) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.stale = count
	m.mu.Unlock()
}

// observeRequest counts one answered request: no allocation, no lock.
func (m *Metrics) observeRequest(path string, status int, n int64) {
	if m == nil {
		return
	}
	f := faceOf(path)
	c := status / 100
	if c < 1 || c >= numClasses {
		c = 0
	}
	m.requests[f][c].Inc()
	if n > 0 {
		m.bytes[f].Add(float64(n))
	}
}

func faceOf(path string) int {
	switch {
	case !strings.HasPrefix(path, "/api/"):
		switch {
		case path == MetricsPath:
			return faceMetrics
		case strings.HasPrefix(path, "/dashboard/"):
			return faceDashboard
		}
		return faceRepository
	case strings.HasPrefix(path, "/api/v1/events"), strings.HasPrefix(path, "/api/v1/enroll"):
		return faceEvents
	}
	return faceAdmin
}

// MinMetricsToken is the shortest bearer token Handler accepts.
const MinMetricsToken = 16

// Handler serves the metrics (GET /metrics) to a client that presents
// "Authorization: Bearer TOKEN" with token: 401 without it or with another
// one (compared in constant time), 429 with Retry-After past a client
// address's rate (DefaultIPRate). The metrics are never public: they show
// the fleet's size, the applications, the rollout plan and whether an
// attack was noticed. token must have at least MinMetricsToken bytes.
func (m *Metrics) Handler(token string) (http.Handler, error) {
	if len(token) < MinMetricsToken {
		return nil, fmt.Errorf("metrics: the bearer token has %d bytes, fewer than %d", len(token), MinMetricsToken)
	}
	want := sha256.Sum256([]byte(token))
	byIP := newLimiter(DefaultIPRate, time.Now)
	prom := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if ok, wait := byIP.allow(clientIP(r)); !ok {
			w.Header().Set("Retry-After", fmt.Sprint(max(int(wait.Seconds()+0.999), 1)))
			writeError(w, http.StatusTooManyRequests, "too many requests")
			return
		}
		secret, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		got := sha256.Sum256([]byte(secret))
		if secret == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ferry metrics"`)
			msg := "the metrics token is required (Authorization: Bearer TOKEN)"
			if secret != "" {
				msg = "wrong metrics token"
			}
			writeError(w, http.StatusUnauthorized, msg)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		prom.ServeHTTP(w, r)
	}), nil
}

// staleCollector exports ferry_installations_stale once its source is set.
type staleCollector struct{ m *Metrics }

var staleDesc = prometheus.NewDesc("ferry_installations_stale",
	"Enrolled installations that have not checked in for longer than the server allows.", nil, nil)

func (c staleCollector) Describe(ch chan<- *prometheus.Desc) { ch <- staleDesc }

func (c staleCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	count := c.m.stale
	c.m.mu.Unlock()
	if count == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(staleDesc, fmt.Errorf("stale installations: %w", err))
		return
	}
	ch <- prometheus.MustNewConstMetric(staleDesc, prometheus.GaugeValue, float64(n))
}
