package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/rollout"
)

// MetricsRepo is the repository whose signed metadata the gauges show;
// *repo.Repo is one.
type MetricsRepo interface {
	Status(ctx context.Context) ([]repo.RoleStatus, error)
	Rollouter
}

var (
	roleExpiryDesc = prometheus.NewDesc("ferry_role_expiry_seconds",
		"Seconds until the signed metadata of a role expires (negative once expired).", []string{"role"}, nil)
	roleExpiresDesc = prometheus.NewDesc("ferry_role_expires_timestamp_seconds",
		"When the signed metadata of a role expires, in seconds since the Unix epoch.", []string{"role"}, nil)
	roleVersionDesc = prometheus.NewDesc("ferry_role_version",
		"The version of a role's signed metadata.", []string{"role"}, nil)
	rolloutStateDesc = prometheus.NewDesc("ferry_rollout_state",
		"1 for the state of a release's signed rollout decision (active, halted, pulled), 0 for the others.", []string{"app", "version", "state"}, nil)
	rolloutShareDesc = prometheus.NewDesc("ferry_rollout_share_ratio",
		"The share of installations a release's signed rollout decision offers it to, 0 to 1.", []string{"app", "version", "channel"}, nil)
	metadataUpDesc = prometheus.NewDesc("ferry_metadata_up",
		"1 if the last reading of the repository's signed metadata succeeded, else 0 (the gauges keep the last good reading).", nil, nil)
)

var rolloutStates = []rollout.State{rollout.Active, rollout.Halted, rollout.Pulled}

// repoCollector exports the gauges of the signed metadata. It reads the
// repository again when timestamp.json has changed since its last reading.
type repoCollector struct {
	src  MetricsRepo
	ts   string // public/metadata/timestamp.json
	now  func() time.Time
	mu   sync.Mutex
	seen os.FileInfo // timestamp.json at the last good reading
	snap repoSnapshot
	ok   bool
}

type repoSnapshot struct {
	roles    []repo.RoleStatus
	apps     map[string]bool
	releases []appRelease // decided releases, by app then version (newest first)
}

type appRelease struct {
	app string
	ReleaseRollout
}

func newRepoCollector(src MetricsRepo, publicDir string, now func() time.Time) *repoCollector {
	return &repoCollector{src: src, ts: filepath.Join(publicDir, "metadata", "timestamp.json"), now: now}
}

func (c *repoCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{roleExpiryDesc, roleExpiresDesc, roleVersionDesc, rolloutStateDesc, rolloutShareDesc, metadataUpDesc} {
		ch <- d
	}
}

func (c *repoCollector) Collect(ch chan<- prometheus.Metric) {
	snap, ok := c.current()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(metadataUpDesc, boolValue(ok))
	now := c.now()
	for _, r := range snap.roles {
		gauge(roleExpiryDesc, r.Expires.Sub(now).Seconds(), r.Role)
		gauge(roleExpiresDesc, float64(r.Expires.UnixNano())/1e9, r.Role)
		gauge(roleVersionDesc, float64(r.Version), r.Role)
	}
	for _, r := range snap.releases {
		for _, s := range rolloutStates {
			gauge(rolloutStateDesc, boolValue(r.State == s), r.app, r.Version, string(s))
		}
		gauge(rolloutShareDesc, float64(r.BasisPoints)/rollout.Full, r.app, r.Version, r.Channel)
	}
}

// knownApp reports whether the repository delegates app (as last read).
func (c *repoCollector) knownApp(app string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshLocked()
	return c.snap.apps[app]
}

// current returns the snapshot, read again if timestamp.json changed, and
// whether the last reading succeeded.
func (c *repoCollector) current() (repoSnapshot, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshLocked()
	return c.snap, c.ok
}

func (c *repoCollector) refreshLocked() {
	fi, err := os.Stat(c.ts)
	if err == nil && c.ok && c.seen != nil && os.SameFile(fi, c.seen) &&
		fi.Size() == c.seen.Size() && fi.ModTime().Equal(c.seen.ModTime()) {
		return // nothing was signed since the last reading
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	snap, rerr := readSnapshot(ctx, c.src)
	if rerr != nil {
		c.ok = false
		return
	}
	c.snap, c.seen, c.ok = snap, fi, err == nil
}

func readSnapshot(ctx context.Context, src MetricsRepo) (repoSnapshot, error) {
	roles, err := src.Status(ctx)
	if err != nil {
		return repoSnapshot{}, fmt.Errorf("metrics: repository status: %w", err)
	}
	snap := repoSnapshot{roles: roles, apps: map[string]bool{}}
	entries, err := src.List(ctx)
	if err != nil {
		return repoSnapshot{}, fmt.Errorf("metrics: repository targets: %w", err)
	}
	for _, r := range roles {
		if r.Custody != repo.CustodyApp {
			continue
		}
		snap.apps[r.Role] = true
		doc, err := src.Rollouts(r.Role)
		if err != nil {
			return repoSnapshot{}, fmt.Errorf("metrics: rollouts of %s: %w", r.Role, err)
		}
		min, err := src.MinVersion(r.Role)
		if err != nil {
			return repoSnapshot{}, fmt.Errorf("metrics: minimum version of %s: %w", r.Role, err)
		}
		for _, rel := range NewRolloutStatus(r.Role, doc, min, entries).Releases {
			if rel.Decided {
				snap.releases = append(snap.releases, appRelease{app: r.Role, ReleaseRollout: rel})
			}
		}
	}
	return snap, nil
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
