package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/rollout"
)

func testReleasesAndRollouts(t *testing.T, b backend) {
	ctx := context.Background()
	s := b.newStore(t)
	put := func(r Release) {
		t.Helper()
		if err := s.PutRelease(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	put(Release{App: "web", Version: "1.0.0", Channel: "stable", Created: t0})
	put(Release{App: "web", Version: "1.1.0", Channel: "beta", Created: t0.Add(time.Hour)})
	put(Release{App: "api", Version: "2.0.0", Channel: "stable", Created: t0})
	put(Release{App: "web", Version: "1.1.0", Channel: "stable", Created: t0.Add(2 * time.Hour)}) // promoted
	rs, err := s.ListReleases(ctx, "web")
	if err != nil || len(rs) != 2 || rs[1] != (Release{"web", "1.1.0", "stable", t0.Add(time.Hour)}) {
		t.Fatalf("ListReleases(web) = %+v, %v; want 1.1.0 promoted to stable, created at its first record", rs, err)
	}
	if all, _ := s.ListReleases(ctx, ""); len(all) != 3 || all[0].App != "api" {
		t.Fatalf("ListReleases() = %+v", all)
	}
	ro := Rollout{App: "web", Version: "1.1.0", BasisPoints: 500, State: rollout.Active, Salt: "00ff", Updated: t0}
	if err := s.PutRollout(ctx, ro); err != nil {
		t.Fatal(err)
	}
	ro.State, ro.Reason, ro.Updated = rollout.Halted, "failure budget of 5% crossed: 3 of 40 failed", t0.Add(time.Minute)
	if err := s.PutRollout(ctx, ro); err != nil {
		t.Fatal(err)
	}
	got, err := s.Rollout(ctx, "web", "1.1.0")
	if err != nil || got != ro {
		t.Fatalf("Rollout = %+v, %v; want %+v", got, err, ro)
	}
	if err := s.PutRollout(ctx, Rollout{App: "web", Version: "9.9.9", State: rollout.Active}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rollout of an unrecorded release: %v, want ErrNotFound", err)
	}
	if err := s.PutRollout(ctx, Rollout{App: "web", Version: "1.0.0", State: "paused"}); err == nil {
		t.Fatal("rollout state paused was accepted")
	}
	if err := s.PutRollout(ctx, Rollout{App: "web", Version: "1.0.0", State: rollout.Active, BasisPoints: rollout.Full + 1}); err == nil {
		t.Fatal("a share above 100% was accepted")
	}
	if _, err := s.Rollout(ctx, "web", "1.0.0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Rollout of a release without one: %v, want ErrNotFound", err)
	}
	if err := s.PutRollout(ctx, Rollout{App: "api", Version: "2.0.0", State: rollout.Pulled}); err != nil {
		t.Fatal(err)
	}
	if l, err := s.ListRollouts(ctx, "web"); err != nil || len(l) != 1 || l[0] != ro {
		t.Fatalf("ListRollouts(web) = %+v, %v", l, err)
	}
	if l, _ := s.ListRollouts(ctx, ""); len(l) != 2 {
		t.Fatalf("ListRollouts() = %+v", l)
	}
}

func testReleaseStats(t *testing.T, b backend) {
	ctx := context.Background()
	s := b.newStore(t)
	enroll(t, s, "a", "b", "c", "d", "e")
	report := func(id string, kinds ...event.Kind) {
		t.Helper()
		var batch []Event
		h, _ := s.ChainHead(ctx, id)
		for i, k := range kinds {
			seq := h.Seq + uint64(i) + 1
			batch = append(batch, Event{Seq: seq, Hash: lineHash(id, seq), Event: event.Event{Time: t0, Kind: k, App: "web", Version: "1.1.0"}})
		}
		if _, err := s.AppendEvents(ctx, id, batch); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendEvents(ctx, id, batch); err != nil { // resent: counts once
			t.Fatal(err)
		}
	}
	report("a", event.InstallStarted, event.Swapped, event.HealthPassed, event.InstallDone)
	report("b", event.InstallStarted, event.HealthFailed, event.RolledBack)
	report("b", event.InstallStarted, event.InstallFailed) // b again: still one installation
	report("c", event.InstallStarted, event.InstallDone)
	report("d", event.InstallStarted, event.RollbackFailed)
	// e's install.started was lost: it started all the same, and counts as
	// started, as the guard counts it.
	report("e", event.HealthFailed)
	// Another version and another application do not count.
	if _, err := s.AppendEvents(ctx, "c", []Event{{Seq: 100, Hash: "h", Event: event.Event{Time: t0, Kind: event.HealthFailed, App: "web", Version: "1.0.0"}},
		{Seq: 101, Hash: "h", Event: event.Event{Time: t0, Kind: event.HealthFailed, App: "api", Version: "1.1.0"}}}); err != nil {
		t.Fatal(err)
	}
	st, err := s.ReleaseStats(ctx, "web", "1.1.0")
	want := Stats{Started: 5, Installed: 2, Healthy: 1, Failed: 3, RolledBack: 1}
	if err != nil || st != want {
		t.Fatalf("ReleaseStats = %+v, %v; want %+v", st, err, want)
	}
	if st, err := s.ReleaseStats(ctx, "web", "7.0.0"); err != nil || st != (Stats{}) {
		t.Fatalf("ReleaseStats of a release nobody reported = %+v, %v", st, err)
	}
}

// Writers of every kind at once, through two handles on one database (as
// two server processes): nothing fails, nothing is lost.
func testConcurrentWriters(t *testing.T, b backend) {
	ctx := context.Background()
	loc := b.fresh(t)
	stores := []Store{openStore(t, loc), openStore(t, loc)}
	const n = 8
	tok := newToken(t, stores[0], Enroll, Token{ID: "fleet"})
	if err := stores[0].PutRelease(ctx, Release{App: "web", Version: "1.0.0", Channel: "stable", Created: t0}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s := stores[i%2]
			id := "w" + string(rune('a'+i))
			if err := s.Enroll(ctx, Installation{ID: id, CredentialHash: hashOf(id), Enrolled: t0}, tok); err != nil {
				t.Errorf("Enroll(%s): %v", id, err)
				return
			}
			for k := range 20 {
				at := t0.Add(time.Duration(k) * time.Second)
				if err := s.Seen(ctx, id, at, []App{{App: "web", Version: "1.0.0", Channel: "stable"}}); err != nil {
					t.Errorf("Seen(%s): %v", id, err)
				}
				if _, err := s.AppendEvents(ctx, id, chain(id, uint64(k*5+1), uint64(k*5+5))); err != nil {
					t.Errorf("AppendEvents(%s): %v", id, err)
				}
				r := Rollout{App: "web", Version: "1.0.0", BasisPoints: k * 100, State: rollout.Active, Updated: at}
				if err := s.PutRollout(ctx, r); err != nil {
					t.Errorf("PutRollout: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if c := count(t, stores[1], EventQuery{}); c != n*100 {
		t.Fatalf("%d events stored, want %d", c, n*100)
	}
	ts, _ := stores[0].ListTokens(ctx)
	if len(ts) != 1 || ts[0].Uses != n {
		t.Fatalf("token uses = %+v, want %d", ts, n)
	}
	f, err := stores[1].Fleet(ctx, "web")
	if err != nil || len(f) != 1 || f[0].Installations != n {
		t.Fatalf("Fleet = %v, %v", f, err)
	}
}
