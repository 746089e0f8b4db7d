package e2e_test

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/rollout"
)

// The fleet simulations: a repository published and decided on with
// package repo (its online rollout key), served over HTTPS on 127.0.0.1
// by package server, and a fleet of 1,000 installations, each an install
// ID asking one client.Repository (one shared trust state, one refresh per
// step) what it should install.

const fleetSize = 1000

// fleet is a set of installations with what each has installed.
type fleet struct {
	t         *testing.T
	s         *site
	rep       *client.Repository
	app       string
	ids       []string
	installed map[string]string // install ID -> version
	channel   map[string]string // install ID -> channel ("" = stable)
}

func newFleet(t *testing.T, s *site, app, installed string) *fleet {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(s.srv.Certificate())
	rep, err := client.NewRepository(client.RepositoryConfig{
		URLs: []string{s.srv.URL}, TrustedRootFile: repo.RootFile(s.dir), StateDir: filepath.Join(t.TempDir(), "state"), RootCAs: pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fleet{t: t, s: s, rep: rep, app: app, installed: map[string]string{}, channel: map[string]string{}}
	for range fleetSize {
		id := newInstallID(t)
		f.ids = append(f.ids, id)
		f.installed[id] = installed
	}
	return f
}

func newInstallID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// offers refreshes once and asks, for every installation, what it is
// offered: install ID -> choice (Version "" for nothing).
func (f *fleet) offers() map[string]rollout.Choice {
	f.t.Helper()
	if _, err := f.rep.Refresh(bg); err != nil {
		f.t.Fatalf("refresh: %v", err)
	}
	out := make(map[string]rollout.Choice, len(f.ids))
	for _, id := range f.ids {
		off, err := f.rep.Check(bg, client.App{Name: f.app, Platform: "linux/amd64", Channel: f.channel[id],
			Installed: f.installed[id], InstallID: id})
		if err != nil {
			f.t.Fatalf("check of installation %s: %v", id, err)
		}
		out[id] = offerChoice(off)
	}
	return out
}

// offerChoice is what an Offer proposes (Version "" when nothing).
func offerChoice(off *client.Offer) rollout.Choice {
	if off == nil || off.Release == nil {
		return rollout.Choice{}
	}
	c := off.Choice
	c.Version = off.Release.Version
	return c
}

// take installs what each installation is offered and returns the IDs
// that moved.
func (f *fleet) take(offers map[string]rollout.Choice) []string {
	var moved []string
	for _, id := range f.ids {
		if v := offers[id].Version; v != "" {
			f.installed[id] = v
			moved = append(moved, id)
		}
	}
	return moved
}

// offeredTo returns the sorted IDs offered version (a downgrade or not as
// said).
func offeredTo(offers map[string]rollout.Choice, version string, downgrade bool) []string {
	var ids []string
	for id, c := range offers {
		if c.Version == version && c.Downgrade == downgrade {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// cohort returns the sorted IDs among ids whose bucket for salt is below bp.
func cohort(ids []string, salt string, bp int) []string {
	var in []string
	for _, id := range ids {
		if rollout.Bucket(id, salt) < bp {
			in = append(in, id)
		}
	}
	slices.Sort(in)
	return in
}

// decide signs one rollout decision about app with the repository's
// online rollout key.
func (s *site) decide(app string, a rollout.Action) rollout.Entry {
	s.t.Helper()
	r, err := repo.OpenWith(s.dir, repo.Options{Passphrase: repo.Passphrase([]byte(pass))})
	if err != nil {
		s.t.Fatal(err)
	}
	e, err := r.Rollout(bg, app, a)
	if err != nil {
		s.t.Fatalf("rollout %s %s %s: %v", a.Kind, app, a.Version, err)
	}
	return e
}

// publishEntry publishes app at version with a rollout decision recorded
// in the same commit (nil: none).
func (s *site) publishEntry(app, version string, appKey keys.Signer, e *rollout.Entry) {
	s.t.Helper()
	r, err := repo.OpenWith(s.dir, repo.Options{
		Passphrase: repo.Passphrase([]byte(pass)), OfflineKeys: s.offline, AppKeys: []keys.Signer{appKey},
	})
	if err != nil {
		s.t.Fatal(err)
	}
	src := filepath.Join(s.t.TempDir(), app)
	if err := os.WriteFile(src, []byte(app+" "+version+"\n"), 0o755); err != nil {
		s.t.Fatal(err)
	}
	rel := repo.Release{App: app, Version: version, Platform: "linux/amd64", Kind: "binary", Rollout: e}
	if err := r.Publish(bg, rel, []string{src}); err != nil {
		s.t.Fatal(err)
	}
}

// checkShare checks that the installations offered version are exactly
// the cohort of bp for the release's signed salt, and that their number
// is within five standard deviations of bp/Full of the fleet.
func checkShare(t *testing.T, f *fleet, offers map[string]rollout.Choice, version, salt string, bp int) []string {
	t.Helper()
	var candidates []string
	for _, id := range f.ids {
		if f.installed[id] != version {
			candidates = append(candidates, id)
		}
	}
	got, want := offeredTo(offers, version, false), cohort(candidates, salt, bp)
	if !slices.Equal(got, want) {
		t.Fatalf("at %s, %d installations are offered %s, want the %d of the cohort (Bucket < %d)", rollout.Percent(bp), len(got), version, len(want), bp)
	}
	if n, lo, hi := len(cohort(f.ids, salt, bp)), shareBound(bp, -5), shareBound(bp, 5); n < lo || n > hi {
		t.Fatalf("at %s the cohort holds %d of %d installations, want %d..%d", rollout.Percent(bp), n, fleetSize, lo, hi)
	}
	return got
}

// shareBound is the fleet's expected count at bp plus k standard deviations.
func shareBound(bp int, k float64) int {
	p := float64(bp) / rollout.Full
	mean := p * fleetSize
	sd := 0.0
	if p > 0 && p < 1 {
		sd = math.Sqrt(fleetSize * p * (1 - p))
	}
	return int(mean + k*sd)
}

// TestFleetStagedRollout: 1,000 installations on hello 1.0.0; hello 1.1.0
// published at 0% reaches none; at 5% exactly its cohort (Bucket below
// 500 for the signed salt, about 50 installations); widened to 50% every
// installation that was in stays in and about 500 are offered it; halted,
// no new installation is offered it and those that run it keep it;
// resumed, the same cohort goes on; pulled, every installation that runs
// it is offered 1.0.0 as a downgrade and the others nothing.
func TestFleetStagedRollout(t *testing.T) {
	s := newSite(t, nil)
	k := fileKey(t)
	s.publish("hello", "1.0.0", k)
	s.publishEntry("hello", "1.1.0", k, &rollout.Entry{Channel: rollout.DefaultChannel, BasisPoints: 0, State: rollout.Active})
	f := newFleet(t, s, "hello", "1.0.0")

	if got := offeredTo(f.offers(), "1.1.0", false); len(got) != 0 {
		t.Fatalf("at 0%%, %d installations are offered 1.1.0", len(got))
	}
	e := s.decide("hello", rollout.Action{Kind: "start", Version: "1.1.0", BasisPoints: 500})
	five := checkShare(t, f, f.offers(), "1.1.0", e.Salt, 500)
	s.decide("hello", rollout.Action{Kind: "start", Version: "1.1.0", BasisPoints: 5000})
	offers := f.offers()
	half := checkShare(t, f, offers, "1.1.0", e.Salt, 5000)
	for _, id := range five {
		if !slices.Contains(half, id) {
			t.Fatalf("widening 5%% to 50%% dropped installation %s (bucket %d)", id, rollout.Bucket(id, e.Salt))
		}
	}
	t.Logf("5%%: %d of %d offered; 50%%: %d, all %d of 5%% still in", len(five), fleetSize, len(half), len(five))

	// Half of those offered install it; then the release is halted.
	var took []string
	for i, id := range half {
		if i%2 == 0 {
			f.installed[id] = "1.1.0"
			took = append(took, id)
		}
	}
	s.decide("hello", rollout.Action{Kind: "halt", Version: "1.1.0"})
	for id, c := range f.offers() {
		if c.Version != "" {
			t.Fatalf("halted: installation %s on %s is offered %s (%s)", id, f.installed[id], c.Version, c.Reason)
		}
	}
	s.decide("hello", rollout.Action{Kind: "resume", Version: "1.1.0"})
	checkShare(t, f, f.offers(), "1.1.0", e.Salt, 5000)

	// Pulled: those that run it go back to 1.0.0; nobody else moves.
	s.decide("hello", rollout.Action{Kind: "pull", Version: "1.1.0"})
	offers = f.offers()
	slices.Sort(took)
	if back := offeredTo(offers, "1.0.0", true); !slices.Equal(back, took) {
		t.Fatalf("pulled: %d installations are offered 1.0.0 as a downgrade, want the %d that run 1.1.0", len(back), len(took))
	}
	if n := len(offeredTo(offers, "1.1.0", false)); n != 0 {
		t.Fatalf("pulled: %d installations are still offered 1.1.0", n)
	}
	moved := f.take(offers)
	if len(moved) != len(took) {
		t.Fatalf("pulled: %d installations moved, want %d", len(moved), len(took))
	}
	for _, v := range f.installed {
		if v != "1.0.0" {
			t.Fatalf("after the pull an installation runs %s", v)
		}
	}
}

// TestFleetChannelPromotion: hello 1.1.0 is published into channel beta at
// 100%; of 1,000 installations the 100 on channel beta are offered it and
// the 900 on stable are not. Promoted to stable (a signed decision, no new
// upload), every installation is offered it.
func TestFleetChannelPromotion(t *testing.T) {
	s := newSite(t, nil)
	k := fileKey(t)
	s.publish("hello", "1.0.0", k)
	s.publishEntry("hello", "1.1.0", k, &rollout.Entry{Channel: "beta", BasisPoints: rollout.Full, State: rollout.Active})
	f := newFleet(t, s, "hello", "1.0.0")
	var beta []string
	for _, id := range f.ids[:100] {
		f.channel[id] = "beta"
		beta = append(beta, id)
	}
	slices.Sort(beta)
	if got := offeredTo(f.offers(), "1.1.0", false); !slices.Equal(got, beta) {
		t.Fatalf("1.1.0 in beta is offered to %d installations, want the %d on beta", len(got), len(beta))
	}
	before := maps.Clone(f.installed)
	s.decide("hello", rollout.Action{Kind: "promote", Version: "1.1.0", Channel: rollout.DefaultChannel})
	if got := offeredTo(f.offers(), "1.1.0", false); len(got) != fleetSize {
		t.Fatalf("promoted to stable, 1.1.0 is offered to %d installations, want all %d", len(got), fleetSize)
	}
	if !maps.Equal(before, f.installed) {
		t.Fatal("checking changed what the fleet runs")
	}
}
