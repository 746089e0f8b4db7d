package server

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-updates/ferry/guard"
	"github.com/ferry-updates/ferry/rollout"
)

// The guard's metrics: gauges of each guarded rollout as last evaluated,
// and counters of what the guard signed. Their app and version labels
// come from plans given through the admin API (an application's token and
// a version it signed), never from what installations report.
var (
	guardFailedShareDesc = prometheus.NewDesc("ferry_rollout_failed_share",
		"Of the enrolled installations that started a guarded release, the share that failed or went silent, 0 to 1.", []string{"app", "version"}, nil)
	guardBudgetDesc = prometheus.NewDesc("ferry_rollout_budget_ratio",
		"The failure budget of a guarded release: a failed share above it halts the rollout, 0 to 1.", []string{"app", "version"}, nil)
	guardInstallsDesc = prometheus.NewDesc("ferry_rollout_installations",
		"Enrolled installations that reported on a guarded release, each once, by outcome (started, healthy, failed, silent, pending).", []string{"app", "version", "outcome"}, nil)
	guardStageDesc = prometheus.NewDesc("ferry_rollout_stage",
		"The stage a guarded release is in, from 1 (a plan without stages: 1).", []string{"app", "version"}, nil)
	guardHeldDesc = prometheus.NewDesc("ferry_rollout_stage_held",
		"1 while a guarded release's stage has waited long enough but lacks the healthy reports to advance, else 0.", []string{"app", "version"}, nil)
	guardBreachedDesc = prometheus.NewDesc("ferry_rollout_budget_breached",
		"1 if a guarded release's failure budget is crossed (the guard halts it), else 0.", []string{"app", "version"}, nil)
	guardEvaluatedDesc = prometheus.NewDesc("ferry_guard_last_evaluation_timestamp_seconds",
		"When the guard last evaluated the guarded rollouts, in seconds since the Unix epoch.", nil, nil)
	guardCanSignDesc = prometheus.NewDesc("ferry_guard_can_sign",
		"1 if the server can sign rollout decisions with its online rollout key, 0 if not (started without the online keys' passphrase, say): the guard then halts and advances nothing, and admin and dashboard decisions fail.", nil, nil)
)

type guardMetrics struct {
	actions *prometheus.CounterVec // by app and action: halt, advance

	mu        sync.Mutex
	statuses  []guard.Status
	evaluated time.Time
	canSign   *bool // nil until the guard checked its signer
}

func newGuardMetrics() *guardMetrics {
	return &guardMetrics{actions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_rollout_guard_actions_total",
		Help: "Decisions the guard signed, by application and action (halt: the failure budget was crossed; advance: a stage had its healthy reports).",
	}, []string{"app", "action"})}
}

// setGuard records the guard's latest pass.
func (m *Metrics) setGuard(all []guard.Status, at time.Time) {
	if m == nil {
		return
	}
	m.guard.mu.Lock()
	m.guard.statuses, m.guard.evaluated = all, at
	m.guard.mu.Unlock()
}

// setGuardCanSign records whether the rollout key signs.
func (m *Metrics) setGuardCanSign(ok bool) {
	if m == nil {
		return
	}
	m.guard.mu.Lock()
	m.guard.canSign = &ok
	m.guard.mu.Unlock()
}

// observeGuardAction counts a decision the guard signed.
func (m *Metrics) observeGuardAction(app, action string) {
	if m != nil {
		m.guard.actions.WithLabelValues(app, action).Inc()
	}
}

func (c *guardMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{guardFailedShareDesc, guardBudgetDesc, guardInstallsDesc, guardStageDesc, guardHeldDesc, guardBreachedDesc, guardEvaluatedDesc, guardCanSignDesc} {
		ch <- d
	}
	c.actions.Describe(ch)
}

func (c *guardMetrics) Collect(ch chan<- prometheus.Metric) {
	c.actions.Collect(ch)
	c.mu.Lock()
	all, at, canSign := c.statuses, c.evaluated, c.canSign
	c.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if canSign != nil {
		gauge(guardCanSignDesc, boolValue(*canSign))
	}
	if at.IsZero() {
		return
	}
	gauge(guardEvaluatedDesc, float64(at.UnixNano())/1e9)
	for _, st := range all {
		gauge(guardFailedShareDesc, st.FailedShare, st.App, st.Version)
		gauge(guardBudgetDesc, float64(st.Plan.WithDefaults().Budget)/rollout.Full, st.App, st.Version)
		gauge(guardStageDesc, float64(st.Stage+1), st.App, st.Version)
		gauge(guardHeldDesc, boolValue(st.Held), st.App, st.Version)
		gauge(guardBreachedDesc, boolValue(st.Breached), st.App, st.Version)
		for _, o := range []struct {
			name string
			n    int
		}{{"started", st.Started}, {"healthy", st.Healthy}, {"failed", st.Failed}, {"silent", st.Silent}, {"pending", st.Pending}} {
			gauge(guardInstallsDesc, float64(o.n), st.App, st.Version, o.name)
		}
	}
}
